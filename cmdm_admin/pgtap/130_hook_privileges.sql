-- cmdm-verify: read-only
-- 130_hook_privileges: who may run what of the post-ETL hooks (DESIGN §8, docs/security.md),
-- in the catalog. cmdm_etl loads the inputs and its loads' commits run the hooks (the
-- trigger functions and cmdm.run_hooks are SECURITY DEFINER, owned by cmdm_owner); its one
-- routine of ours is CALL customer.run_post_etl_hooks. It cannot write the outputs or
-- cmdm's tables, nor execute any other routine. cmdm_reader reads the outputs only; PUBLIC
-- executes nothing. Tables and schemas of the base schema are 070's; this file is about
-- routines and the hooks' tables (hook_queue, backfill_run). Read-only; acting as each
-- role, and a load's commit under the ETL's privileges, are 131_hook_privileges_acting.sql.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(68);

-- ======================================================= every routine of ours is listed here
-- A new routine fails this test until its privileges are asserted below.
SELECT set_eq(
    $$SELECT object_identity FROM cmdm.managed_object WHERE object_type IN ('function', 'procedure')$$,
    $$VALUES ('cmdm.tg_set_updated_at()'),
             ('cmdm.post_hooks_enabled()'),
             ('cmdm.run_hooks(text, date[], date[], text, daterange, bigint)'),
             ('cmdm.set_hook_domain(text, boolean)'),
             ('customer.contract_dependent_months(date)'),
             ('customer.event_dependent_months(date)'),
             ('customer.loaded_months(date, date)'),
             ('customer.refresh_monthly_snapshot(date)'),
             ('customer.run_post_etl_hooks(text, date)'),
             ('customer.sync_contract_status(date)'),
             ('customer.sync_scope_keys(date, boolean, date)'),
             ('customer.sync_compute_states(date)'),
             ('customer.sync_merge_versions(date, boolean, date)'),
             ('customer.sync_write_versions()'),
             ('customer.sync_snapshot_months(date, date, date, integer[])'),
             ('cmdm.scratch_table(text, text)'),
             ('cmdm.take_hook_lock(text, boolean)'),
             ('customer.compute_annual_statuses(integer[])'),
             ('customer.decide_annual_statuses(integer[])'),
             ('customer.compute_monthly_snapshot(date)'),
             ('customer.check_annual_statuses(integer[])'),
             ('customer.check_contract_history(date, date)'),
             ('customer.check_monthly_snapshot(date)'),
             ('cmdm.tg_facts__queue_hooks()'),
             ('cmdm.tg_hook_queue__run_at_commit()'),
             ('cmdm.tg_events__queue_hooks()'),
             ('cmdm.tg_inputs__queue_truncate()'),
             ('cmdm.tg_product_line__propagate_name()'),
             ('cmdm.tg_assign_contract_key()')$$,
    'the routines cmdm registered are exactly those whose privileges this file asserts');

-- ======================================================= how every routine runs
-- SECURITY DEFINER as cmdm_owner with a search_path the caller cannot extend (pg_temp
-- last, so it is never searched for functions or operators). tg_set_updated_at only sets
-- NEW.updated_at: it runs as the caller, with the same pinned search_path.
SELECT is_empty(
    $$SELECT m.object_identity FROM cmdm.managed_object m
       WHERE m.object_type IN ('function', 'procedure')
         AND pg_catalog.to_regprocedure(m.object_identity) IS NULL$$,
    'every registered routine exists');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.oid IN (SELECT pg_catalog.to_regprocedure(m.object_identity) FROM cmdm.managed_object m
                        WHERE m.object_type IN ('function', 'procedure'))
         AND p.proowner <> 'cmdm_owner'::regrole$$,
    'every registered routine is owned by cmdm_owner');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.oid IN (SELECT pg_catalog.to_regprocedure(m.object_identity) FROM cmdm.managed_object m
                        WHERE m.object_type IN ('function', 'procedure'))
         AND p.oid <> 'cmdm.tg_set_updated_at()'::regprocedure
         AND NOT p.prosecdef$$,
    'every registered routine but tg_set_updated_at is SECURITY DEFINER');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.oid IN (SELECT pg_catalog.to_regprocedure(m.object_identity) FROM cmdm.managed_object m
                        WHERE m.object_type IN ('function', 'procedure'))
         AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
    'every registered routine pins search_path = pg_catalog, pg_temp');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.pronamespace = 'cmdm'::regnamespace
         AND p.oid NOT IN (SELECT pg_catalog.to_regprocedure(m.object_identity) FROM cmdm.managed_object m
                            WHERE m.object_type IN ('function', 'procedure'))$$,
    'schema cmdm holds no routine cmdm did not register');

-- ======================================================= EXECUTE: sweeps over every routine of ours
SELECT set_eq(
    $$SELECT m.object_identity FROM cmdm.managed_object m
       WHERE m.object_type IN ('function', 'procedure')
         AND pg_catalog.has_function_privilege('cmdm_etl', pg_catalog.to_regprocedure(m.object_identity), 'EXECUTE')$$,
    $$VALUES ('customer.run_post_etl_hooks(text, date)')$$,
    'cmdm_etl executes one routine of ours: the procedure customer.run_post_etl_hooks');
SELECT is_empty(
    $$SELECT m.object_identity FROM cmdm.managed_object m
       WHERE m.object_type IN ('function', 'procedure')
         AND pg_catalog.has_function_privilege('cmdm_reader', pg_catalog.to_regprocedure(m.object_identity), 'EXECUTE')$$,
    'cmdm_reader executes no routine of ours');
SELECT is_empty(
    $$SELECT m.object_identity FROM cmdm.managed_object m
       WHERE m.object_type IN ('function', 'procedure')
         AND pg_catalog.has_function_privilege('public', pg_catalog.to_regprocedure(m.object_identity), 'EXECUTE')$$,
    'PUBLIC executes no routine of ours');
SELECT results_eq(
    $$SELECT p.prokind::text, p.proacl::text[] FROM pg_catalog.pg_proc p
       WHERE p.oid = 'customer.run_post_etl_hooks(text, date)'::regprocedure$$,
    $$VALUES ('p', ARRAY['cmdm_owner=X/cmdm_owner', 'cmdm_etl=X/cmdm_owner'])$$,
    'customer.run_post_etl_hooks is a procedure executable by its owner and cmdm_etl, nobody else');

-- ======================================================= EXECUTE: each routine, each role
-- (function_privs_are reads has_function_privilege, which takes procedures too.)
SELECT function_privs_are('customer', 'run_post_etl_hooks', ARRAY['text', 'date'], 'cmdm_etl', ARRAY['EXECUTE'],
    'cmdm_etl can CALL customer.run_post_etl_hooks(text, date)');
SELECT function_privs_are('customer', 'run_post_etl_hooks', ARRAY['text', 'date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot CALL customer.run_post_etl_hooks(text, date)');
SELECT function_privs_are('customer', 'run_post_etl_hooks', ARRAY['text', 'date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot CALL customer.run_post_etl_hooks(text, date)');

SELECT function_privs_are('cmdm', 'run_hooks', ARRAY['text', 'date[]', 'date[]', 'text', 'daterange', 'bigint'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.run_hooks');
SELECT function_privs_are('cmdm', 'run_hooks', ARRAY['text', 'date[]', 'date[]', 'text', 'daterange', 'bigint'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.run_hooks');
SELECT function_privs_are('cmdm', 'run_hooks', ARRAY['text', 'date[]', 'date[]', 'text', 'daterange', 'bigint'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.run_hooks');

SELECT function_privs_are('cmdm', 'set_hook_domain', ARRAY['text', 'boolean'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.set_hook_domain');
SELECT function_privs_are('cmdm', 'set_hook_domain', ARRAY['text', 'boolean'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.set_hook_domain');
SELECT function_privs_are('cmdm', 'set_hook_domain', ARRAY['text', 'boolean'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.set_hook_domain');

-- the hook lock (issue 18): only cmdm's routines take it
SELECT function_privs_are('cmdm', 'take_hook_lock', ARRAY['text', 'boolean'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.take_hook_lock');
SELECT function_privs_are('cmdm', 'take_hook_lock', ARRAY['text', 'boolean'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.take_hook_lock');
SELECT function_privs_are('cmdm', 'take_hook_lock', ARRAY['text', 'boolean'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.take_hook_lock');

SELECT function_privs_are('cmdm', 'post_hooks_enabled', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.post_hooks_enabled');
SELECT function_privs_are('cmdm', 'post_hooks_enabled', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.post_hooks_enabled');
SELECT function_privs_are('cmdm', 'post_hooks_enabled', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.post_hooks_enabled');

SELECT function_privs_are('customer', 'sync_contract_status', ARRAY['date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.sync_contract_status');
SELECT function_privs_are('customer', 'sync_contract_status', ARRAY['date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.sync_contract_status');
SELECT function_privs_are('customer', 'sync_contract_status', ARRAY['date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.sync_contract_status');

SELECT function_privs_are('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.refresh_monthly_snapshot');
SELECT function_privs_are('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.refresh_monthly_snapshot');
SELECT function_privs_are('customer', 'refresh_monthly_snapshot', ARRAY['date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.refresh_monthly_snapshot');

SELECT function_privs_are('customer', 'contract_dependent_months', ARRAY['date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.contract_dependent_months');
SELECT function_privs_are('customer', 'contract_dependent_months', ARRAY['date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.contract_dependent_months');
SELECT function_privs_are('customer', 'contract_dependent_months', ARRAY['date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.contract_dependent_months');

SELECT function_privs_are('customer', 'event_dependent_months', ARRAY['date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.event_dependent_months');
SELECT function_privs_are('customer', 'event_dependent_months', ARRAY['date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.event_dependent_months');
SELECT function_privs_are('customer', 'event_dependent_months', ARRAY['date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.event_dependent_months');

SELECT function_privs_are('customer', 'loaded_months', ARRAY['date', 'date'], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE customer.loaded_months');
SELECT function_privs_are('customer', 'loaded_months', ARRAY['date', 'date'], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE customer.loaded_months');
SELECT function_privs_are('customer', 'loaded_months', ARRAY['date', 'date'], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE customer.loaded_months');

SELECT function_privs_are('cmdm', 'tg_facts__queue_hooks', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_facts__queue_hooks (its trigger runs it as cmdm_owner)');
SELECT function_privs_are('cmdm', 'tg_facts__queue_hooks', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_facts__queue_hooks');
SELECT function_privs_are('cmdm', 'tg_facts__queue_hooks', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_facts__queue_hooks');

SELECT function_privs_are('cmdm', 'tg_events__queue_hooks', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_events__queue_hooks');
SELECT function_privs_are('cmdm', 'tg_events__queue_hooks', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_events__queue_hooks');
SELECT function_privs_are('cmdm', 'tg_events__queue_hooks', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_events__queue_hooks');

SELECT function_privs_are('cmdm', 'tg_hook_queue__run_at_commit', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_hook_queue__run_at_commit');
SELECT function_privs_are('cmdm', 'tg_hook_queue__run_at_commit', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_hook_queue__run_at_commit');
SELECT function_privs_are('cmdm', 'tg_hook_queue__run_at_commit', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_hook_queue__run_at_commit');

SELECT function_privs_are('cmdm', 'tg_inputs__queue_truncate', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_inputs__queue_truncate');
SELECT function_privs_are('cmdm', 'tg_inputs__queue_truncate', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_inputs__queue_truncate');
SELECT function_privs_are('cmdm', 'tg_inputs__queue_truncate', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_inputs__queue_truncate');

SELECT function_privs_are('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_product_line__propagate_name');
SELECT function_privs_are('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_product_line__propagate_name');
SELECT function_privs_are('cmdm', 'tg_product_line__propagate_name', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_product_line__propagate_name');

SELECT function_privs_are('cmdm', 'tg_assign_contract_key', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_assign_contract_key');
SELECT function_privs_are('cmdm', 'tg_assign_contract_key', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_assign_contract_key');
SELECT function_privs_are('cmdm', 'tg_assign_contract_key', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_assign_contract_key');

-- ======================================================= the hooks' tables
SELECT table_privs_are('cmdm', 'hook_queue', 'cmdm_etl', ARRAY[]::name[], 'cmdm_etl: nothing on cmdm.hook_queue');
SELECT table_privs_are('cmdm', 'hook_queue', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.hook_queue');
SELECT table_privs_are('cmdm', 'hook_queue', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.hook_queue');
SELECT table_privs_are('cmdm', 'backfill_run', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on cmdm.backfill_run');
SELECT table_privs_are('cmdm', 'backfill_run', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.backfill_run');
SELECT table_privs_are('cmdm', 'backfill_run', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.backfill_run');
SELECT table_owner_is('cmdm', 'hook_queue', 'cmdm_owner', 'cmdm.hook_queue is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'backfill_run', 'cmdm_owner', 'cmdm.backfill_run is owned by cmdm_owner');
SELECT is_empty(
    $$SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'cmdm'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
         AND (pg_catalog.has_table_privilege('cmdm_etl', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
              OR pg_catalog.has_table_privilege('cmdm_reader', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))$$,
    'no table of schema cmdm is writable by cmdm_etl or reachable by cmdm_reader');
SELECT is_empty(
    $$SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.oid IN ('customer.customer_plan_contract'::regclass,
                       'customer.fct_customer_business_monthly_status'::regclass,
                       'customer.fct_customer_plan_monthly_status'::regclass)
         AND (pg_catalog.has_table_privilege('cmdm_etl', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
              OR pg_catalog.has_table_privilege('cmdm_reader', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
              OR pg_catalog.has_any_column_privilege('cmdm_etl', c.oid, 'INSERT, UPDATE, REFERENCES'))$$,
    'no output table (nor any of its columns) is writable by cmdm_etl or cmdm_reader');

SELECT * FROM finish();
ROLLBACK;
