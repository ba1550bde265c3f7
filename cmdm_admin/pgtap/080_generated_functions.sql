-- cmdm-verify: read-only
-- 080: structure of the routines rendered from rules/ (sql/functions/, sql/triggers/):
-- customer.sync_contract_status(date), customer.loaded_months(date, date),
-- customer.contract_dependent_months(date), customer.refresh_monthly_snapshot(date),
-- customer.event_dependent_months(date) and the trigger function
-- cmdm.tg_product_line__propagate_name() with its trigger _100_propagate_name on
-- mapping."产品线". Each: signature and result, plpgsql, volatility, SECURITY DEFINER with a
-- pinned search_path, a COMMENT carrying the rules sha256 (STYLE.md "SQL objects").
-- Ownership and EXECUTE privileges come from sql/idempotent/roles_and_grants.sql, which
-- applies them to the routines registered in cmdm.managed_object (a rules deploy registers
-- them); for a routine created otherwise those checks are skipped, and say so.
-- Behaviour: 100_sync_*.sql.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(72);

-- The routines under test, with whether a deploy registered them.
CREATE TEMP TABLE generated_routine ON COMMIT DROP AS
SELECT r.identity, to_regprocedure(r.identity)::oid AS oid,
       EXISTS (SELECT FROM cmdm.managed_object m
                WHERE m.object_type = 'function'
                  AND to_regprocedure(m.object_identity) = to_regprocedure(r.identity)) AS registered
  FROM (VALUES ('customer.sync_contract_status(date)'),
               ('customer.loaded_months(date,date)'),
               ('customer.contract_dependent_months(date)'),
               ('customer.refresh_monthly_snapshot(date)'),
               ('customer.event_dependent_months(date)'),
               ('cmdm.tg_product_line__propagate_name()')) AS r (identity);

-- ======================================================= customer.sync_contract_status(date)
SELECT has_function('customer', 'sync_contract_status', ARRAY['date'],
    'function customer.sync_contract_status(date) exists');
SELECT function_returns('customer', 'sync_contract_status', ARRAY['date'], 'setof record',
    'customer.sync_contract_status(date) returns a set of rows');
SELECT is(
    pg_catalog.pg_get_function_result('customer.sync_contract_status(date)'::regprocedure),
    'TABLE(period date, keys_seen bigint, keys_changed bigint, keys_unchanged bigint, '
        'versions_opened bigint, versions_closed bigint, versions_removed bigint, '
        'versions_reflagged bigint, rejected_null_key bigint, rejected_blank_key bigint, '
        'rejected_unknown_product_line bigint, rejected_unknown_company bigint, '
        'changed_until date, snapshot_months date[], ms jsonb)',
    'customer.sync_contract_status(date) returns its fifteen result columns');
SELECT is(
    pg_catalog.pg_get_function_arguments('customer.sync_contract_status(date)'::regprocedure),
    'p_period date',
    'customer.sync_contract_status takes p_period date');
SELECT function_lang_is('customer', 'sync_contract_status', ARRAY['date'], 'plpgsql',
    'customer.sync_contract_status(date) is plpgsql');
SELECT volatility_is('customer', 'sync_contract_status', ARRAY['date'], 'volatile',
    'customer.sync_contract_status(date) is VOLATILE');
SELECT is_definer('customer', 'sync_contract_status', ARRAY['date'],
    'customer.sync_contract_status(date) is SECURITY DEFINER');
SELECT ok(
    (SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_catalog.pg_proc
      WHERE oid = 'customer.sync_contract_status(date)'::regprocedure),
    'customer.sync_contract_status(date) pins search_path = pg_catalog, pg_temp');
SELECT matches(
    obj_description('customer.sync_contract_status(date)'::regprocedure, 'pg_proc'),
    'rules sha256 [0-9a-f]{64}',
    'customer.sync_contract_status(date) has a COMMENT with the rules sha256');

-- ======================================================= customer.loaded_months(date, date)
SELECT has_function('customer', 'loaded_months', ARRAY['date', 'date'],
    'function customer.loaded_months(date, date) exists');
SELECT function_returns('customer', 'loaded_months', ARRAY['date', 'date'], 'setof date',
    'customer.loaded_months(date, date) returns SETOF date');
SELECT is(
    pg_catalog.pg_get_function_arguments('customer.loaded_months(date,date)'::regprocedure),
    'p_from date DEFAULT NULL::date, p_to date DEFAULT NULL::date',
    'customer.loaded_months takes p_from and p_to, both defaulting to NULL');
SELECT function_lang_is('customer', 'loaded_months', ARRAY['date', 'date'], 'plpgsql',
    'customer.loaded_months(date, date) is plpgsql');
SELECT volatility_is('customer', 'loaded_months', ARRAY['date', 'date'], 'stable',
    'customer.loaded_months(date, date) is STABLE');
SELECT is_definer('customer', 'loaded_months', ARRAY['date', 'date'],
    'customer.loaded_months(date, date) is SECURITY DEFINER');
SELECT ok(
    (SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_catalog.pg_proc
      WHERE oid = 'customer.loaded_months(date,date)'::regprocedure),
    'customer.loaded_months(date, date) pins search_path = pg_catalog, pg_temp');
SELECT matches(
    obj_description('customer.loaded_months(date,date)'::regprocedure, 'pg_proc'),
    'rules sha256 [0-9a-f]{64}',
    'customer.loaded_months(date, date) has a COMMENT with the rules sha256');

-- ======================================================= customer.contract_dependent_months(date)
SELECT has_function('customer', 'contract_dependent_months', ARRAY['date'],
    'function customer.contract_dependent_months(date) exists');
SELECT function_returns('customer', 'contract_dependent_months', ARRAY['date'], 'setof record',
    'customer.contract_dependent_months(date) returns a set of rows');
SELECT is(
    pg_catalog.pg_get_function_result('customer.contract_dependent_months(date)'::regprocedure),
    'TABLE(month date, reason text)',
    'customer.contract_dependent_months(date) returns TABLE(month date, reason text)');
SELECT is(
    pg_catalog.pg_get_function_arguments('customer.contract_dependent_months(date)'::regprocedure),
    'p_month date',
    'customer.contract_dependent_months takes p_month date');
SELECT function_lang_is('customer', 'contract_dependent_months', ARRAY['date'], 'plpgsql',
    'customer.contract_dependent_months(date) is plpgsql');
SELECT volatility_is('customer', 'contract_dependent_months', ARRAY['date'], 'stable',
    'customer.contract_dependent_months(date) is STABLE');
SELECT is_definer('customer', 'contract_dependent_months', ARRAY['date'],
    'customer.contract_dependent_months(date) is SECURITY DEFINER');
SELECT ok(
    (SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_catalog.pg_proc
      WHERE oid = 'customer.contract_dependent_months(date)'::regprocedure),
    'customer.contract_dependent_months(date) pins search_path = pg_catalog, pg_temp');
SELECT matches(
    obj_description('customer.contract_dependent_months(date)'::regprocedure, 'pg_proc'),
    'rules sha256 [0-9a-f]{64}',
    'customer.contract_dependent_months(date) has a COMMENT with the rules sha256');

-- ======================================================= customer.refresh_monthly_snapshot(date)
SELECT has_function('customer', 'refresh_monthly_snapshot', ARRAY['date'],
    'function customer.refresh_monthly_snapshot(date) exists');
SELECT function_returns('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'setof record',
    'customer.refresh_monthly_snapshot(date) returns a set of rows');
SELECT is(
    pg_catalog.pg_get_function_result('customer.refresh_monthly_snapshot(date)'::regprocedure),
    'TABLE(snapshot_month date, business_rows bigint, business_inserted bigint, business_updated bigint, business_deleted bigint, plan_rows bigint, plan_inserted bigint, plan_updated bigint, plan_deleted bigint, rejected_amount_overflow bigint, ms jsonb)',
    'customer.refresh_monthly_snapshot(date) returns TABLE(snapshot_month date, business_rows bigint, business_inserted bigint, business_updated bigint, business_deleted bigint, plan_rows bigint, plan_inserted bigint, plan_updated bigint, plan_deleted bigint, rejected_amount_overflow bigint, ms jsonb)');
SELECT is(
    pg_catalog.pg_get_function_arguments('customer.refresh_monthly_snapshot(date)'::regprocedure),
    'p_month date',
    'customer.refresh_monthly_snapshot takes p_month date');
SELECT function_lang_is('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'plpgsql',
    'customer.refresh_monthly_snapshot(date) is plpgsql');
SELECT volatility_is('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'volatile',
    'customer.refresh_monthly_snapshot(date) is VOLATILE');
SELECT is_definer('customer', 'refresh_monthly_snapshot', ARRAY['date'],
    'customer.refresh_monthly_snapshot(date) is SECURITY DEFINER');
SELECT ok(
    (SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_catalog.pg_proc
      WHERE oid = 'customer.refresh_monthly_snapshot(date)'::regprocedure),
    'customer.refresh_monthly_snapshot(date) pins search_path = pg_catalog, pg_temp');
SELECT matches(
    obj_description('customer.refresh_monthly_snapshot(date)'::regprocedure, 'pg_proc'),
    'rules sha256 [0-9a-f]{64}',
    'customer.refresh_monthly_snapshot(date) has a COMMENT with the rules sha256');

-- ======================================================= customer.event_dependent_months(date)
SELECT has_function('customer', 'event_dependent_months', ARRAY['date'],
    'function customer.event_dependent_months(date) exists');
SELECT function_returns('customer', 'event_dependent_months', ARRAY['date'], 'setof record',
    'customer.event_dependent_months(date) returns a set of rows');
SELECT is(
    pg_catalog.pg_get_function_result('customer.event_dependent_months(date)'::regprocedure),
    'TABLE(month date, reason text)',
    'customer.event_dependent_months(date) returns TABLE(month date, reason text)');
SELECT is(
    pg_catalog.pg_get_function_arguments('customer.event_dependent_months(date)'::regprocedure),
    'p_reported date',
    'customer.event_dependent_months takes p_reported date');
SELECT function_lang_is('customer', 'event_dependent_months', ARRAY['date'], 'plpgsql',
    'customer.event_dependent_months(date) is plpgsql');
SELECT volatility_is('customer', 'event_dependent_months', ARRAY['date'], 'stable',
    'customer.event_dependent_months(date) is STABLE');
SELECT is_definer('customer', 'event_dependent_months', ARRAY['date'],
    'customer.event_dependent_months(date) is SECURITY DEFINER');
SELECT ok(
    (SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_catalog.pg_proc
      WHERE oid = 'customer.event_dependent_months(date)'::regprocedure),
    'customer.event_dependent_months(date) pins search_path = pg_catalog, pg_temp');
SELECT matches(
    obj_description('customer.event_dependent_months(date)'::regprocedure, 'pg_proc'),
    'rules sha256 [0-9a-f]{64}',
    'customer.event_dependent_months(date) has a COMMENT with the rules sha256');

-- ======================================================= cmdm.tg_product_line__propagate_name()
SELECT has_function('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[],
    'function cmdm.tg_product_line__propagate_name() exists');
SELECT function_returns('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'trigger',
    'cmdm.tg_product_line__propagate_name() returns trigger');
SELECT function_lang_is('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'plpgsql',
    'cmdm.tg_product_line__propagate_name() is plpgsql');
SELECT volatility_is('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'volatile',
    'cmdm.tg_product_line__propagate_name() is VOLATILE');
SELECT is_definer('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[],
    'cmdm.tg_product_line__propagate_name() is SECURITY DEFINER');
SELECT ok(
    (SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_catalog.pg_proc
      WHERE oid = 'cmdm.tg_product_line__propagate_name()'::regprocedure),
    'cmdm.tg_product_line__propagate_name() pins search_path = pg_catalog, pg_temp');
SELECT matches(
    obj_description('cmdm.tg_product_line__propagate_name()'::regprocedure, 'pg_proc'),
    'rules sha256 [0-9a-f]{64}',
    'cmdm.tg_product_line__propagate_name() has a COMMENT with the rules sha256');

-- the trigger
SELECT has_trigger('mapping', '产品线', '_100_propagate_name',
    'mapping."产品线" has trigger _100_propagate_name');
SELECT trigger_is('mapping', '产品线', '_100_propagate_name', 'cmdm', 'tg_product_line__propagate_name',
    'mapping."产品线"._100_propagate_name calls cmdm.tg_product_line__propagate_name()');
SELECT is(
    (SELECT pg_catalog.pg_get_triggerdef(oid) FROM pg_catalog.pg_trigger
      WHERE tgrelid = 'mapping."产品线"'::regclass AND tgname = '_100_propagate_name'),
    'CREATE TRIGGER _100_propagate_name AFTER UPDATE ON mapping."产品线" '
        'REFERENCING OLD TABLE AS renamed_old NEW TABLE AS renamed_new '
        'FOR EACH STATEMENT EXECUTE FUNCTION cmdm.tg_product_line__propagate_name()',
    '_100_propagate_name: AFTER UPDATE FOR EACH STATEMENT with transition tables renamed_old/renamed_new');
SELECT is(
    (SELECT tgenabled::text FROM pg_catalog.pg_trigger
      WHERE tgrelid = 'mapping."产品线"'::regclass AND tgname = '_100_propagate_name'),
    'O',
    '_100_propagate_name is enabled');

-- ======================================================= one deploy
SELECT is(
    (SELECT count(DISTINCT substring(obj_description(g.oid, 'pg_proc') FROM 'rules sha256 ([0-9a-f]{64})'))::int
       FROM generated_routine g),
    1,
    'the generated routines carry the same rules sha256 (rendered together)');

-- ======================================================= ownership and EXECUTE
-- Applied by roles_and_grants.sql to registered routines only: asserted when registered,
-- skipped (with the reason) when the routine was created without a deploy.
SELECT CASE WHEN g.registered
            THEN function_owner_is('customer', 'sync_contract_status', ARRAY['date'], 'cmdm_owner',
                     'customer.sync_contract_status(date) is owned by cmdm_owner')
            ELSE skip('customer.sync_contract_status(date) is not registered in cmdm.managed_object: '
                      'roles_and_grants.sql does not manage its owner', 1)
       END
  FROM generated_routine g WHERE g.identity = 'customer.sync_contract_status(date)';
SELECT CASE WHEN g.registered
            THEN function_owner_is('customer', 'loaded_months', ARRAY['date', 'date'], 'cmdm_owner',
                     'customer.loaded_months(date, date) is owned by cmdm_owner')
            ELSE skip('customer.loaded_months(date, date) is not registered in cmdm.managed_object: '
                      'roles_and_grants.sql does not manage its owner', 1)
       END
  FROM generated_routine g WHERE g.identity = 'customer.loaded_months(date,date)';
SELECT CASE WHEN g.registered
            THEN function_owner_is('customer', 'contract_dependent_months', ARRAY['date'], 'cmdm_owner',
                     'customer.contract_dependent_months(date) is owned by cmdm_owner')
            ELSE skip('customer.contract_dependent_months(date) is not registered in cmdm.managed_object: '
                      'roles_and_grants.sql does not manage its owner', 1)
       END
  FROM generated_routine g WHERE g.identity = 'customer.contract_dependent_months(date)';
SELECT CASE WHEN g.registered
            THEN function_owner_is('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'cmdm_owner',
                     'customer.refresh_monthly_snapshot(date) is owned by cmdm_owner')
            ELSE skip('customer.refresh_monthly_snapshot(date) is not registered in cmdm.managed_object: '
                      'roles_and_grants.sql does not manage its owner', 1)
       END
  FROM generated_routine g WHERE g.identity = 'customer.refresh_monthly_snapshot(date)';
SELECT CASE WHEN g.registered
            THEN function_owner_is('customer', 'event_dependent_months', ARRAY['date'], 'cmdm_owner',
                     'customer.event_dependent_months(date) is owned by cmdm_owner')
            ELSE skip('customer.event_dependent_months(date) is not registered in cmdm.managed_object: '
                      'roles_and_grants.sql does not manage its owner', 1)
       END
  FROM generated_routine g WHERE g.identity = 'customer.event_dependent_months(date)';
SELECT CASE WHEN g.registered
            THEN function_owner_is('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'cmdm_owner',
                     'cmdm.tg_product_line__propagate_name() is owned by cmdm_owner')
            ELSE skip('cmdm.tg_product_line__propagate_name() is not registered in cmdm.managed_object: '
                      'roles_and_grants.sql does not manage its owner', 1)
       END
  FROM generated_routine g WHERE g.identity = 'cmdm.tg_product_line__propagate_name()';

-- PUBLIC executes nothing of ours (DESIGN §8); cmdm_reader reads outputs only.
SELECT CASE WHEN g.registered
            THEN is(pg_catalog.has_function_privilege('public', g.oid, 'EXECUTE'), false,
                    'PUBLIC cannot EXECUTE ' || g.identity)
            ELSE skip(g.identity || ' is not registered in cmdm.managed_object: '
                      'roles_and_grants.sql does not revoke its EXECUTE from PUBLIC', 1)
       END
  FROM generated_routine g ORDER BY g.identity;
SELECT CASE WHEN g.registered
            THEN function_privs_are('customer', 'sync_contract_status', ARRAY['date'], 'cmdm_reader',
                     ARRAY[]::name[], 'cmdm_reader cannot EXECUTE customer.sync_contract_status(date)')
            ELSE skip('customer.sync_contract_status(date) is not registered in cmdm.managed_object: '
                      'PUBLIC (and so cmdm_reader) may still EXECUTE it', 1)
       END
  FROM generated_routine g WHERE g.identity = 'customer.sync_contract_status(date)';
SELECT CASE WHEN g.registered
            THEN function_privs_are('customer', 'loaded_months', ARRAY['date', 'date'], 'cmdm_reader',
                     ARRAY[]::name[], 'cmdm_reader cannot EXECUTE customer.loaded_months(date, date)')
            ELSE skip('customer.loaded_months(date, date) is not registered in cmdm.managed_object: '
                      'PUBLIC (and so cmdm_reader) may still EXECUTE it', 1)
       END
  FROM generated_routine g WHERE g.identity = 'customer.loaded_months(date,date)';
SELECT CASE WHEN g.registered
            THEN function_privs_are('customer', 'contract_dependent_months', ARRAY['date'], 'cmdm_reader',
                     ARRAY[]::name[], 'cmdm_reader cannot EXECUTE customer.contract_dependent_months(date)')
            ELSE skip('customer.contract_dependent_months(date) is not registered in cmdm.managed_object: '
                      'PUBLIC (and so cmdm_reader) may still EXECUTE it', 1)
       END
  FROM generated_routine g WHERE g.identity = 'customer.contract_dependent_months(date)';
SELECT CASE WHEN g.registered
            THEN function_privs_are('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'cmdm_reader',
                     ARRAY[]::name[], 'cmdm_reader cannot EXECUTE cmdm.tg_product_line__propagate_name()')
            ELSE skip('cmdm.tg_product_line__propagate_name() is not registered in cmdm.managed_object: '
                      'PUBLIC (and so cmdm_reader) may still EXECUTE it', 1)
       END
  FROM generated_routine g WHERE g.identity = 'cmdm.tg_product_line__propagate_name()';

SELECT * FROM finish();
ROLLBACK;
