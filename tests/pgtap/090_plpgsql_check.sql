-- plpgsql_check sweep: every PL/pgSQL function cmdm created (cmdm.managed_object) compiles
-- cleanly: no error and no warning from plpgsql_check, including trigger functions, which
-- are checked against each table they are attached to.
BEGIN;
CREATE EXTENSION IF NOT EXISTS plpgsql_check;
SELECT plan(2);

CREATE TEMP TABLE swept AS
SELECT p.oid::regprocedure AS fn,
       t.tgrelid AS relid,
       c.message
  FROM cmdm.managed_object m
  JOIN pg_proc p ON p.oid = to_regprocedure(m.object_identity)
  JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
  LEFT JOIN pg_trigger t ON t.tgfoid = p.oid AND NOT t.tgisinternal
  LEFT JOIN LATERAL plpgsql_check_function(
           p.oid,
           relid => coalesce(t.tgrelid, 0),
           fatal_errors => false,
           extra_warnings => true) AS c(message) ON true
 WHERE m.object_type IN ('function', 'procedure');

SELECT cmp_ok((SELECT count(DISTINCT fn)::int FROM swept), '>=', 1,
              'the sweep found the PL/pgSQL functions cmdm created');
SELECT is_empty(
    $$SELECT fn::text || ' on ' || coalesce(relid::regclass::text, '-') || ': ' || message
        FROM swept WHERE message IS NOT NULL$$,
    'plpgsql_check reports nothing for any function cmdm created');

SELECT * FROM finish();
ROLLBACK;
