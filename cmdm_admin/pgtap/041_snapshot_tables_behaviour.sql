-- cmdm-verify: scratch
-- 041: the two monthly snapshot tables at work (their structure is 040_snapshot_tables.sql):
-- defaults filling a minimal row, the primary keys and the month-end checks rejecting rows.
-- Scratch: it writes the output tables and customer."年金客户".
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched in English
SELECT plan(11);

-- ======================================================= behaviour
INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('PGTAP_C1', 'pgTAP company 1');

SELECT lives_ok(
    $$INSERT INTO customer.fct_customer_business_monthly_status
          (snapshot_month, company_id, product_line_code, product_line_name)
      VALUES ('2025-02-28', 'PGTAP_C1', 'PL201', '企年投资')$$,
    'business snapshot: a minimal month-end row is accepted');
SELECT results_eq(
    $$SELECT is_strategic, is_existing, is_new, is_winning_this_year, is_churned_this_year,
             aum_balance, plan_count, updated_at
        FROM customer.fct_customer_business_monthly_status
       WHERE company_id = 'PGTAP_C1'$$,
    $$VALUES (false, false, false, false, false, 0::numeric, 0, now())$$,
    'business snapshot: defaults fill the flags, aum_balance, plan_count and updated_at');
SELECT lives_ok(
    $$INSERT INTO customer.fct_customer_business_monthly_status
          (snapshot_month, company_id, product_line_code, product_line_name)
      VALUES ('2025-03-31', 'PGTAP_C1', 'PL201', '企年投资'),
             ('2025-02-28', 'PGTAP_C1', 'PL202', '企年受托')$$,
    'business snapshot: another month or product line of the same company is accepted');
SELECT lives_ok(
    $$INSERT INTO customer.fct_customer_plan_monthly_status
          (snapshot_month, company_id, plan_code, product_line_code, product_line_name)
      VALUES ('2025-02-28', 'PGTAP_C1', 'PGTAP_P1', 'PL201', '企年投资'),
             ('2025-02-28', 'PGTAP_C1', 'PGTAP_P2', 'PL201', '企年投资')$$,
    'plan snapshot: two plans of one company and product line in one month are accepted');
SELECT results_eq(
    $$SELECT plan_code::text, is_strategic, is_existing, is_new, is_winning_this_year,
             is_churned_this_year, aum_balance, updated_at
        FROM customer.fct_customer_plan_monthly_status
       WHERE company_id = 'PGTAP_C1' ORDER BY plan_code$$,
    $$VALUES ('PGTAP_P1', false, false, false, false, false, 0::numeric, now()),
             ('PGTAP_P2', false, false, false, false, false, 0::numeric, now())$$,
    'plan snapshot: defaults fill the flags, aum_balance and updated_at');

-- ======================================================= error codes
SELECT throws_ok(
    $$INSERT INTO customer.fct_customer_business_monthly_status
          (snapshot_month, company_id, product_line_code, product_line_name)
      VALUES ('2025-02-27', 'PGTAP_C1', 'PL203', '职年受托')$$,
    '23514', 'new row for relation "fct_customer_business_monthly_status" violates check constraint "ck_snapshot_month_end"',
    'business snapshot: a snapshot_month that is not a month-end is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO customer.fct_customer_business_monthly_status
          (snapshot_month, company_id, product_line_code, product_line_name)
      VALUES ('2025-03-01', 'PGTAP_C1', 'PL203', '职年受托')$$,
    '23514', 'new row for relation "fct_customer_business_monthly_status" violates check constraint "ck_snapshot_month_end"',
    'business snapshot: a month start is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO customer.fct_customer_business_monthly_status
          (snapshot_month, company_id, product_line_code, product_line_name)
      VALUES ('2025-02-28', 'PGTAP_C1', 'PL201', '企年投资')$$,
    '23505', 'duplicate key value violates unique constraint "fct_customer_business_monthly_status_pkey"',
    'business snapshot: a second row for (month, company, product line) is rejected (unique_violation)');
SELECT throws_ok(
    $$INSERT INTO customer.fct_customer_business_monthly_status
          (snapshot_month, company_id, product_line_code, product_line_name, aum_balance)
      VALUES ('2025-04-30', 'PGTAP_C1', 'PL201', '企年投资', NULL)$$,
    '23502', NULL,
    'business snapshot: a NULL aum_balance is rejected (not_null_violation)');
SELECT throws_ok(
    $$INSERT INTO customer.fct_customer_plan_monthly_status
          (snapshot_month, company_id, plan_code, product_line_code, product_line_name)
      VALUES ('2025-02-15', 'PGTAP_C1', 'PGTAP_P3', 'PL201', '企年投资')$$,
    '23514', 'new row for relation "fct_customer_plan_monthly_status" violates check constraint "ck_plan_snapshot_month_end"',
    'plan snapshot: a snapshot_month that is not a month-end is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO customer.fct_customer_plan_monthly_status
          (snapshot_month, company_id, plan_code, product_line_code, product_line_name)
      VALUES ('2025-02-28', 'PGTAP_C1', 'PGTAP_P1', 'PL201', '企年投资')$$,
    '23505', 'duplicate key value violates unique constraint "fct_customer_plan_monthly_status_pkey"',
    'plan snapshot: a second row for (month, company, plan, product line) is rejected (unique_violation)');

SELECT * FROM finish();
ROLLBACK;
