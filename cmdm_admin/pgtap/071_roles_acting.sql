-- cmdm-verify: scratch
-- 071: the roles of 070_roles_privileges.sql at work, acting as each (SET LOCAL ROLE ... /
-- RESET ROLE): default privileges on a function cmdm_owner creates, what cmdm_reader and
-- cmdm_etl can do with the tables, and 42501 for what they must not. Scratch: it writes
-- and truncates the ETL's tables.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched in English
SELECT plan(32);

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
