-- cmdm-verify: scratch
-- 061: the _100_set_updated_at trigger at work (its definition is 060_updated_at_trigger.sql):
-- an UPDATE that changes nothing keeps updated_at; a real change stamps it with now() (the
-- transaction start, inside this test's transaction). Scratch: it writes the output tables.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(13);

-- ======================================================= behaviour
-- fixtures: one row per output table, stamped far in the past
INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('PGTAP_C1', 'pgTAP company 1');
INSERT INTO customer.customer_plan_contract
    (company_id, plan_code, product_line_code, product_line_name, status_year, contract_status,
     valid_from, created_at, updated_at)
VALUES ('PGTAP_C1', 'PGTAP_P1', 'PL201', '企年投资', 2025, 'active', '2025-01-31',
        '2000-01-01', '2000-01-01');
INSERT INTO customer.fct_customer_business_monthly_status
    (snapshot_month, company_id, product_line_code, product_line_name, updated_at)
VALUES ('2025-01-31', 'PGTAP_C1', 'PL201', '企年投资', '2000-01-01');
INSERT INTO customer.fct_customer_plan_monthly_status
    (snapshot_month, company_id, plan_code, product_line_code, product_line_name, updated_at)
VALUES ('2025-01-31', 'PGTAP_C1', 'PGTAP_P1', 'PL201', '企年投资', '2000-01-01');

-- customer_plan_contract
UPDATE customer.customer_plan_contract SET contract_status = contract_status, is_strategic = false
 WHERE company_id = 'PGTAP_C1';
SELECT is(
    (SELECT updated_at FROM customer.customer_plan_contract WHERE company_id = 'PGTAP_C1'),
    '2000-01-01'::timestamptz,
    'customer_plan_contract: an UPDATE that changes nothing keeps updated_at');
UPDATE customer.customer_plan_contract SET is_strategic = true WHERE company_id = 'PGTAP_C1';
SELECT is(
    (SELECT updated_at FROM customer.customer_plan_contract WHERE company_id = 'PGTAP_C1'),
    now(),
    'customer_plan_contract: a real change sets updated_at = now()');
SELECT is(
    (SELECT created_at FROM customer.customer_plan_contract WHERE company_id = 'PGTAP_C1'),
    '2000-01-01'::timestamptz,
    'customer_plan_contract: the trigger leaves created_at alone');
UPDATE customer.customer_plan_contract SET updated_at = '2000-01-01' WHERE company_id = 'PGTAP_C1';
SELECT is(
    (SELECT updated_at FROM customer.customer_plan_contract WHERE company_id = 'PGTAP_C1'),
    now(),
    'customer_plan_contract: updated_at cannot be backdated by an UPDATE');

-- fct_customer_business_monthly_status
UPDATE customer.fct_customer_business_monthly_status SET aum_balance = aum_balance, plan_count = 0
 WHERE company_id = 'PGTAP_C1';
SELECT is(
    (SELECT updated_at FROM customer.fct_customer_business_monthly_status WHERE company_id = 'PGTAP_C1'),
    '2000-01-01'::timestamptz,
    'fct_customer_business_monthly_status: an UPDATE that changes nothing keeps updated_at');
UPDATE customer.fct_customer_business_monthly_status SET aum_balance = 100.25 WHERE company_id = 'PGTAP_C1';
SELECT is(
    (SELECT updated_at FROM customer.fct_customer_business_monthly_status WHERE company_id = 'PGTAP_C1'),
    now(),
    'fct_customer_business_monthly_status: a real change sets updated_at = now()');

-- fct_customer_plan_monthly_status
UPDATE customer.fct_customer_plan_monthly_status SET is_new = is_new WHERE company_id = 'PGTAP_C1';
SELECT is(
    (SELECT updated_at FROM customer.fct_customer_plan_monthly_status WHERE company_id = 'PGTAP_C1'),
    '2000-01-01'::timestamptz,
    'fct_customer_plan_monthly_status: an UPDATE that changes nothing keeps updated_at');
UPDATE customer.fct_customer_plan_monthly_status SET is_new = true WHERE company_id = 'PGTAP_C1';
SELECT is(
    (SELECT updated_at FROM customer.fct_customer_plan_monthly_status WHERE company_id = 'PGTAP_C1'),
    now(),
    'fct_customer_plan_monthly_status: a real change sets updated_at = now()');

-- the row content is what the UPDATEs wrote (the trigger only touches updated_at)
SELECT results_eq(
    $$SELECT is_strategic, contract_status::text FROM customer.customer_plan_contract WHERE company_id = 'PGTAP_C1'$$,
    $$VALUES (true, 'active')$$,
    'customer_plan_contract: the trigger keeps the updated values');
SELECT results_eq(
    $$SELECT aum_balance, plan_count FROM customer.fct_customer_business_monthly_status WHERE company_id = 'PGTAP_C1'$$,
    $$VALUES (100.25::numeric, 0)$$,
    'fct_customer_business_monthly_status: the trigger keeps the updated values');
SELECT results_eq(
    $$SELECT is_new FROM customer.fct_customer_plan_monthly_status WHERE company_id = 'PGTAP_C1'$$,
    $$VALUES (true)$$,
    'fct_customer_plan_monthly_status: the trigger keeps the updated values');

-- INSERTs are not stamped by the trigger (BEFORE UPDATE only): the explicit value stays
INSERT INTO customer.fct_customer_business_monthly_status
    (snapshot_month, company_id, product_line_code, product_line_name, updated_at)
VALUES ('2025-02-28', 'PGTAP_C1', 'PL201', '企年投资', '2000-01-01');
SELECT is(
    (SELECT updated_at FROM customer.fct_customer_business_monthly_status
      WHERE company_id = 'PGTAP_C1' AND snapshot_month = '2025-02-28'),
    '2000-01-01'::timestamptz,
    'an INSERT keeps the updated_at it was given');

-- ======================================================= error codes
SELECT throws_ok(
    $$SELECT cmdm.tg_set_updated_at()$$,
    '0A000', NULL,
    'cmdm.tg_set_updated_at() cannot be called outside a trigger (feature_not_supported)');

SELECT * FROM finish();
ROLLBACK;
