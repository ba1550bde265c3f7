-- 070: roles, ownership and privileges from sql/idempotent/roles_and_grants.sql (DESIGN §8):
-- cmdm_owner owns cmdm's objects; cmdm_etl writes the input tables, reads the outputs and
-- its hook runs/rejects; cmdm_reader reads the outputs only; PUBLIC gets nothing of ours.
-- Checked in the catalog, then by acting as each role (SET LOCAL ROLE ... / RESET ROLE).
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched in English
SELECT plan(106);

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
-- default privileges: a function cmdm_owner creates later is not executable by PUBLIC either
SET LOCAL ROLE cmdm_owner;
SELECT lives_ok(
    $$CREATE FUNCTION customer.pgtap_default_privs_probe() RETURNS integer
          LANGUAGE sql AS 'SELECT 1'$$,
    'cmdm_owner can create a function in schema customer');
RESET ROLE;
SELECT function_privs_are('customer', 'pgtap_default_privs_probe', ARRAY[]::name[], 'public', ARRAY[]::name[],
    'a function created later by cmdm_owner is not executable by PUBLIC (default privileges)');

-- ======================================================= behaviour: acting as the roles
INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('PGTAP_C1', 'pgTAP company 1');

SET LOCAL ROLE cmdm_reader;
SELECT lives_ok($$SELECT * FROM customer.customer_plan_contract LIMIT 1$$,
    'cmdm_reader can read customer_plan_contract');
SELECT lives_ok($$SELECT * FROM customer.fct_customer_business_monthly_status LIMIT 1$$,
    'cmdm_reader can read fct_customer_business_monthly_status');
SELECT lives_ok($$SELECT * FROM customer.fct_customer_plan_monthly_status LIMIT 1$$,
    'cmdm_reader can read fct_customer_plan_monthly_status');
RESET ROLE;

SET LOCAL ROLE cmdm_etl;
SELECT lives_ok(
    $$INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('PGTAP_C2', 'pgTAP company 2');
      UPDATE customer."年金客户" SET "客户名称" = 'pgTAP company 2b' WHERE company_id = 'PGTAP_C2';
      DELETE FROM customer."年金客户" WHERE company_id = 'PGTAP_C2'$$,
    'cmdm_etl can insert, update and delete customer."年金客户"');
SELECT lives_ok(
    $$INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('PGTAP_PL', 'pgTAP');
      UPDATE mapping."产品线" SET "产品线" = 'pgTAP 2' WHERE "产品线代码" = 'PGTAP_PL';
      DELETE FROM mapping."产品线" WHERE "产品线代码" = 'PGTAP_PL'$$,
    'cmdm_etl can insert, update and delete mapping."产品线"');
SELECT lives_ok(
    $$INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "期末资产规模")
      VALUES ('2025-01-31', 'PGTAP_P1', 'PGTAP_C1', 'PL201', 1);
      UPDATE business."规模明细" SET "期末资产规模" = 2 WHERE "计划代码" = 'PGTAP_P1';
      DELETE FROM business."规模明细" WHERE "计划代码" = 'PGTAP_P1'$$,
    'cmdm_etl can insert (identity id), update and delete business."规模明细"');
SELECT lives_ok(
    $$INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
      VALUES ('PGTAP_C1', 'PL201', 'PGTAP_P1', '2025-01-31');
      INSERT INTO customer."当年流失" (company_id, "产品线代码", "计划代码", "上报月份")
      VALUES ('PGTAP_C1', 'PL201', 'PGTAP_P1', '2025-01-31')$$,
    'cmdm_etl can load customer."当年中标" and customer."当年流失"');
SELECT lives_ok($$TRUNCATE business."规模明细"$$,
    'cmdm_etl can truncate business."规模明细" (rolled back)');
SELECT lives_ok($$SELECT * FROM customer.customer_plan_contract LIMIT 1$$,
    'cmdm_etl can read customer_plan_contract');
SELECT lives_ok($$SELECT * FROM customer.fct_customer_business_monthly_status LIMIT 1$$,
    'cmdm_etl can read fct_customer_business_monthly_status');
SELECT lives_ok($$SELECT * FROM customer.fct_customer_plan_monthly_status LIMIT 1$$,
    'cmdm_etl can read fct_customer_plan_monthly_status');
SELECT lives_ok(
    $$SELECT (SELECT count(*) FROM cmdm.hook_run), (SELECT count(*) FROM cmdm.rejected_fact),
             (SELECT count(*) FROM cmdm.hook_domain), (SELECT count(*) FROM cmdm.post_etl_hook)$$,
    'cmdm_etl can read cmdm.hook_run, rejected_fact, hook_domain and post_etl_hook');
RESET ROLE;

-- ======================================================= error codes: insufficient_privilege
SET LOCAL ROLE cmdm_reader;
SELECT throws_ok(
    $$INSERT INTO customer.customer_plan_contract
          (company_id, plan_code, product_line_code, product_line_name, status_year,
           contract_status, valid_from)
      VALUES ('PGTAP_C1', 'PGTAP_P1', 'PL201', '企年投资', 2025, 'active', '2025-01-31')$$,
    '42501', 'permission denied for table customer_plan_contract',
    'cmdm_reader cannot insert into customer_plan_contract');
SELECT throws_ok(
    $$UPDATE customer.fct_customer_business_monthly_status SET plan_count = 0$$,
    '42501', 'permission denied for table fct_customer_business_monthly_status',
    'cmdm_reader cannot update fct_customer_business_monthly_status');
SELECT throws_ok(
    $$DELETE FROM customer.fct_customer_plan_monthly_status$$,
    '42501', 'permission denied for table fct_customer_plan_monthly_status',
    'cmdm_reader cannot delete from fct_customer_plan_monthly_status');
SELECT throws_ok(
    $$SELECT * FROM customer."年金客户"$$,
    '42501', 'permission denied for table 年金客户',
    'cmdm_reader cannot read the input table customer."年金客户"');
SELECT throws_ok(
    $$SELECT * FROM cmdm.hook_run$$,
    '42501', 'permission denied for schema cmdm',
    'cmdm_reader cannot reach schema cmdm');
SELECT throws_ok(
    $$CREATE TABLE customer.pgtap_shadow (x integer)$$,
    '42501', 'permission denied for schema customer',
    'cmdm_reader cannot create objects in schema customer');
RESET ROLE;

SET LOCAL ROLE cmdm_etl;
SELECT throws_ok(
    $$INSERT INTO customer.fct_customer_business_monthly_status
          (snapshot_month, company_id, product_line_code, product_line_name)
      VALUES ('2025-01-31', 'PGTAP_C1', 'PL201', '企年投资')$$,
    '42501', 'permission denied for table fct_customer_business_monthly_status',
    'cmdm_etl cannot insert into fct_customer_business_monthly_status');
SELECT throws_ok(
    $$INSERT INTO customer.fct_customer_plan_monthly_status
          (snapshot_month, company_id, plan_code, product_line_code, product_line_name)
      VALUES ('2025-01-31', 'PGTAP_C1', 'PGTAP_P1', 'PL201', '企年投资')$$,
    '42501', 'permission denied for table fct_customer_plan_monthly_status',
    'cmdm_etl cannot insert into fct_customer_plan_monthly_status');
SELECT throws_ok(
    $$INSERT INTO customer.customer_plan_contract
          (company_id, plan_code, product_line_code, product_line_name, status_year,
           contract_status, valid_from)
      VALUES ('PGTAP_C1', 'PGTAP_P1', 'PL201', '企年投资', 2025, 'active', '2025-01-31')$$,
    '42501', 'permission denied for table customer_plan_contract',
    'cmdm_etl cannot insert into customer_plan_contract');
SELECT throws_ok(
    $$UPDATE customer.customer_plan_contract SET is_strategic = true$$,
    '42501', 'permission denied for table customer_plan_contract',
    'cmdm_etl cannot update customer_plan_contract');
SELECT throws_ok(
    $$TRUNCATE customer.fct_customer_business_monthly_status$$,
    '42501', 'permission denied for table fct_customer_business_monthly_status',
    'cmdm_etl cannot truncate fct_customer_business_monthly_status');
SELECT throws_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome)
      VALUES ('annuity_performance', '2025-01-31', 'contract_sync', 'call', 'succeeded')$$,
    '42501', 'permission denied for table hook_run',
    'cmdm_etl cannot insert into cmdm.hook_run');
SELECT throws_ok(
    $$UPDATE cmdm.hook_domain SET enabled = false$$,
    '42501', 'permission denied for table hook_domain',
    'cmdm_etl cannot switch hook domains directly');
SELECT throws_ok(
    $$UPDATE cmdm.rule_deployment SET deployed_by = 'me'$$,
    '42501', 'permission denied for table rule_deployment',
    'cmdm_etl cannot change cmdm.rule_deployment');
SELECT throws_ok(
    $$DELETE FROM cmdm.managed_object$$,
    '42501', 'permission denied for table managed_object',
    'cmdm_etl cannot change cmdm.managed_object');
SELECT throws_ok(
    $$CREATE TABLE cmdm.pgtap_shadow (x integer)$$,
    '42501', 'permission denied for schema cmdm',
    'cmdm_etl cannot create objects in schema cmdm');
SELECT throws_ok(
    $$CREATE TABLE customer.pgtap_shadow (x integer)$$,
    '42501', 'permission denied for schema customer',
    'cmdm_etl cannot create objects in schema customer');
SELECT throws_ok(
    $$SELECT cmdm.tg_set_updated_at()$$,
    '42501', 'permission denied for function tg_set_updated_at',
    'cmdm_etl cannot execute cmdm.tg_set_updated_at()');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
