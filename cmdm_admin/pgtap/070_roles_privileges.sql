-- cmdm-verify: read-only
-- 070: roles, ownership and privileges from sql/idempotent/roles_and_grants.sql (DESIGN §8):
-- cmdm_owner owns cmdm's objects; cmdm_etl writes the input tables, reads the outputs and
-- its hook runs/rejects; cmdm_reader reads the outputs only; PUBLIC gets nothing of ours.
-- Read-only: checked in the catalog. Acting as each role is 071_roles_acting.sql.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(82);

-- ======================================================= roles and ownership
SELECT has_role('cmdm_owner', 'role cmdm_owner exists');
SELECT has_role('cmdm_etl', 'role cmdm_etl exists');
SELECT has_role('cmdm_reader', 'role cmdm_reader exists');
SELECT set_eq(
    $$SELECT rolname::text, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls
        FROM pg_catalog.pg_roles WHERE rolname IN ('cmdm_owner', 'cmdm_etl', 'cmdm_reader')$$,
    $$VALUES ('cmdm_owner', false, false, false, false, false),
             ('cmdm_etl', false, false, false, false, false),
             ('cmdm_reader', false, false, false, false, false)$$,
    'the three roles are plain NOLOGIN groups');

SELECT schema_owner_is('cmdm', 'cmdm_owner', 'schema cmdm is owned by cmdm_owner');
SELECT table_owner_is('customer', 'customer_plan_contract', 'cmdm_owner', 'customer.customer_plan_contract is owned by cmdm_owner');
SELECT table_owner_is('customer', 'fct_customer_business_monthly_status', 'cmdm_owner', 'customer.fct_customer_business_monthly_status is owned by cmdm_owner');
SELECT table_owner_is('customer', 'fct_customer_plan_monthly_status', 'cmdm_owner', 'customer.fct_customer_plan_monthly_status is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'rule_deployment', 'cmdm_owner', 'cmdm.rule_deployment is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'hook_domain', 'cmdm_owner', 'cmdm.hook_domain is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'post_etl_hook', 'cmdm_owner', 'cmdm.post_etl_hook is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'hook_run', 'cmdm_owner', 'cmdm.hook_run is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'rejected_fact', 'cmdm_owner', 'cmdm.rejected_fact is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'managed_object', 'cmdm_owner', 'cmdm.managed_object is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'hook_lock', 'cmdm_owner', 'cmdm.hook_lock is owned by cmdm_owner');
SELECT table_owner_is('cmdm', 'stale_change', 'cmdm_owner', 'cmdm.stale_change is owned by cmdm_owner');
SELECT function_owner_is('cmdm', 'tg_set_updated_at', ARRAY[]::name[], 'cmdm_owner',
    'cmdm.tg_set_updated_at() is owned by cmdm_owner');

-- ======================================================= schema privileges
SELECT schema_privs_are('cmdm', 'cmdm_etl', ARRAY['USAGE'], 'cmdm_etl has USAGE (only) on schema cmdm');
SELECT schema_privs_are('cmdm', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader has nothing on schema cmdm');
SELECT schema_privs_are('cmdm', 'public', ARRAY[]::name[], 'PUBLIC has nothing on schema cmdm');
SELECT schema_privs_are('customer', 'cmdm_reader', ARRAY['USAGE'], 'cmdm_reader has USAGE (only) on schema customer');
SELECT schema_privs_are('customer', 'cmdm_etl', ARRAY['USAGE'], 'cmdm_etl has USAGE (only) on schema customer');
SELECT schema_privs_are('customer', 'public', ARRAY[]::name[], 'PUBLIC has nothing on schema customer');
SELECT schema_privs_are('mapping', 'cmdm_etl', ARRAY['USAGE'], 'cmdm_etl has USAGE (only) on schema mapping');
SELECT schema_privs_are('mapping', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader has nothing on schema mapping');
SELECT schema_privs_are('business', 'cmdm_etl', ARRAY['USAGE'], 'cmdm_etl has USAGE (only) on schema business');
SELECT schema_privs_are('business', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader has nothing on schema business');

-- ======================================================= table privileges: cmdm_reader
SELECT table_privs_are('customer', 'customer_plan_contract', 'cmdm_reader', ARRAY['SELECT'], 'cmdm_reader: SELECT only on customer_plan_contract');
SELECT table_privs_are('customer', 'fct_customer_business_monthly_status', 'cmdm_reader', ARRAY['SELECT'], 'cmdm_reader: SELECT only on fct_customer_business_monthly_status');
SELECT table_privs_are('customer', 'fct_customer_plan_monthly_status', 'cmdm_reader', ARRAY['SELECT'], 'cmdm_reader: SELECT only on fct_customer_plan_monthly_status');
SELECT table_privs_are('mapping', '产品线', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on mapping."产品线"');
SELECT table_privs_are('customer', '年金客户', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on customer."年金客户"');
SELECT table_privs_are('business', '规模明细', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on business."规模明细"');
SELECT table_privs_are('customer', '当年中标', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on customer."当年中标"');
SELECT table_privs_are('customer', '当年流失', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on customer."当年流失"');
SELECT table_privs_are('cmdm', 'rule_deployment', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.rule_deployment');
SELECT table_privs_are('cmdm', 'hook_domain', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.hook_domain');
SELECT table_privs_are('cmdm', 'post_etl_hook', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.post_etl_hook');
SELECT table_privs_are('cmdm', 'hook_run', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.hook_run');
SELECT table_privs_are('cmdm', 'rejected_fact', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.rejected_fact');
SELECT table_privs_are('cmdm', 'managed_object', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.managed_object');
-- the hooks' serialization lock: locking a row of it takes UPDATE, so no role but its
-- owner can hold the hooks up (issue 18)
SELECT table_privs_are('cmdm', 'hook_lock', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.hook_lock');
SELECT table_privs_are('cmdm', 'stale_change', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on cmdm.stale_change');

-- ======================================================= table privileges: cmdm_etl
SELECT table_privs_are('mapping', '产品线', 'cmdm_etl', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'], 'cmdm_etl: SELECT/INSERT/UPDATE/DELETE/TRUNCATE on mapping."产品线"');
SELECT table_privs_are('customer', '年金客户', 'cmdm_etl', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'], 'cmdm_etl: SELECT/INSERT/UPDATE/DELETE/TRUNCATE on customer."年金客户"');
SELECT table_privs_are('business', '规模明细', 'cmdm_etl', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'], 'cmdm_etl: SELECT/INSERT/UPDATE/DELETE/TRUNCATE on business."规模明细"');
SELECT table_privs_are('customer', '当年中标', 'cmdm_etl', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'], 'cmdm_etl: SELECT/INSERT/UPDATE/DELETE/TRUNCATE on customer."当年中标"');
SELECT table_privs_are('customer', '当年流失', 'cmdm_etl', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'], 'cmdm_etl: SELECT/INSERT/UPDATE/DELETE/TRUNCATE on customer."当年流失"');
SELECT table_privs_are('customer', 'customer_plan_contract', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on customer_plan_contract');
SELECT table_privs_are('customer', 'fct_customer_business_monthly_status', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on fct_customer_business_monthly_status');
SELECT table_privs_are('customer', 'fct_customer_plan_monthly_status', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on fct_customer_plan_monthly_status');
SELECT table_privs_are('cmdm', 'hook_run', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on cmdm.hook_run');
SELECT table_privs_are('cmdm', 'rejected_fact', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on cmdm.rejected_fact');
SELECT table_privs_are('cmdm', 'hook_domain', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on cmdm.hook_domain');
SELECT table_privs_are('cmdm', 'post_etl_hook', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on cmdm.post_etl_hook');
SELECT table_privs_are('cmdm', 'hook_lock', 'cmdm_etl', ARRAY[]::name[], 'cmdm_etl: nothing on cmdm.hook_lock (it cannot lock its rows)');
SELECT table_privs_are('cmdm', 'stale_change', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT only on cmdm.stale_change (the months its loads left stale)');
-- The monitoring commands (cmdm status, explain, report, …) read which rules are deployed.
SELECT table_privs_are('cmdm', 'rule_deployment', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT on cmdm.rule_deployment');
SELECT table_privs_are('cmdm', 'managed_object', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT on cmdm.managed_object');
SELECT table_privs_are('public', 'cmdm_alembic_version', 'cmdm_etl', ARRAY['SELECT'], 'cmdm_etl: SELECT on the migration version');
SELECT table_privs_are('public', 'cmdm_alembic_version', 'cmdm_reader', ARRAY[]::name[], 'cmdm_reader: nothing on the migration version');

-- ======================================================= table privileges: PUBLIC
SELECT table_privs_are('customer', 'customer_plan_contract', 'public', ARRAY[]::name[], 'PUBLIC: nothing on customer_plan_contract');
SELECT table_privs_are('customer', 'fct_customer_business_monthly_status', 'public', ARRAY[]::name[], 'PUBLIC: nothing on fct_customer_business_monthly_status');
SELECT table_privs_are('customer', 'fct_customer_plan_monthly_status', 'public', ARRAY[]::name[], 'PUBLIC: nothing on fct_customer_plan_monthly_status');
SELECT table_privs_are('cmdm', 'rule_deployment', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.rule_deployment');
SELECT table_privs_are('cmdm', 'hook_domain', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.hook_domain');
SELECT table_privs_are('cmdm', 'post_etl_hook', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.post_etl_hook');
SELECT table_privs_are('cmdm', 'hook_run', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.hook_run');
SELECT table_privs_are('cmdm', 'rejected_fact', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.rejected_fact');
SELECT table_privs_are('cmdm', 'managed_object', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.managed_object');
SELECT table_privs_are('cmdm', 'hook_lock', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.hook_lock');
SELECT table_privs_are('cmdm', 'stale_change', 'public', ARRAY[]::name[], 'PUBLIC: nothing on cmdm.stale_change');
SELECT table_privs_are('mapping', '产品线', 'public', ARRAY[]::name[], 'PUBLIC: nothing on mapping."产品线"');
SELECT table_privs_are('customer', '年金客户', 'public', ARRAY[]::name[], 'PUBLIC: nothing on customer."年金客户"');
SELECT table_privs_are('business', '规模明细', 'public', ARRAY[]::name[], 'PUBLIC: nothing on business."规模明细"');
SELECT table_privs_are('customer', '当年中标', 'public', ARRAY[]::name[], 'PUBLIC: nothing on customer."当年中标"');
SELECT table_privs_are('customer', '当年流失', 'public', ARRAY[]::name[], 'PUBLIC: nothing on customer."当年流失"');

-- cmdm_owner's functions read the input tables (owned by cmdm_owner here, by the ETL elsewhere)
SELECT is_empty(
    $$SELECT t FROM unnest(ARRAY['mapping."产品线"', 'customer."年金客户"', 'business."规模明细"',
                                 'customer."当年中标"', 'customer."当年流失"']) AS t
       WHERE NOT pg_catalog.has_table_privilege('cmdm_owner', t, 'SELECT')$$,
    'cmdm_owner can SELECT every input table');

-- ======================================================= function privileges
SELECT function_privs_are('cmdm', 'tg_set_updated_at', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'PUBLIC cannot EXECUTE cmdm.tg_set_updated_at()');
SELECT function_privs_are('cmdm', 'tg_set_updated_at', ARRAY[]::name[], 'cmdm_etl', ARRAY[]::name[],
    'cmdm_etl cannot EXECUTE cmdm.tg_set_updated_at()');
SELECT function_privs_are('cmdm', 'tg_set_updated_at', ARRAY[]::name[], 'cmdm_reader', ARRAY[]::name[],
    'cmdm_reader cannot EXECUTE cmdm.tg_set_updated_at()');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
       WHERE p.pronamespace = 'cmdm'::regnamespace
         AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'PUBLIC can EXECUTE no function in schema cmdm');

SELECT * FROM finish();
ROLLBACK;
