-- cmdm-verify: scratch
-- 031: the invariants customer.customer_plan_contract holds by itself (DESIGN §4):
-- no overlapping versions per key (ex_contract_no_overlap, 23P01), adjacent versions and
-- other keys allowed, one row per (key, valid_to) (uq_active_contract), hence one current
-- version per key (valid_to = 9999-12-31), month-end bounds, valid_from < valid_to,
-- status_year = year of valid_from (23514), both FKs (23503).
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched in English
SELECT plan(30);

-- fixtures: two companies; product lines PL201/PL202 come from the seed
INSERT INTO customer."年金客户" (company_id, "客户名称")
VALUES ('PGTAP_C1', 'pgTAP company 1'), ('PGTAP_C2', 'pgTAP company 2');

-- add_contract(company, plan, product line, valid_from, valid_to, status_year)
PREPARE add_contract(varchar, varchar, varchar, date, date, integer) AS
    INSERT INTO customer.customer_plan_contract
        (company_id, plan_code, product_line_code, product_line_name,
         status_year, contract_status, valid_from, valid_to)
    VALUES ($1, $2, $3, coalesce((SELECT "产品线" FROM mapping."产品线" WHERE "产品线代码" = $3), 'n/a'),
            $6, 'active', $4, $5);

-- ---------------------------------------------------------------- structure
SELECT has_table('customer', 'customer_plan_contract', 'table customer.customer_plan_contract exists');
SELECT index_is_unique('customer', 'customer_plan_contract', 'uq_active_contract',
    'uq_active_contract is unique');
SELECT is(
    (SELECT pg_catalog.pg_get_expr(indpred, indrelid) FROM pg_catalog.pg_index
      WHERE indexrelid = 'customer.uq_active_contract'::regclass),
    NULL,
    'uq_active_contract covers every version (not a partial index)');

-- ---------------------------------------------------------------- history of one key
SELECT lives_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-01-31', '2025-03-31', 2025)$$,
    'version [2025-01-31, 2025-03-31) is accepted');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-02-28', '9999-12-31', 2025)$$,
    '23P01', 'conflicting key value violates exclusion constraint "ex_contract_no_overlap"',
    'an overlapping version [2025-02-28, 9999-12-31) of the same key is rejected (exclusion_violation)');
SELECT lives_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-03-31', '9999-12-31', 2025)$$,
    'the adjacent version [2025-03-31, 9999-12-31) is accepted (half-open ranges)');
SELECT lives_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P2', 'PL201', '2025-02-28', '9999-12-31', 2025)$$,
    'the same range for another plan is accepted');
SELECT lives_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL202', '2025-02-28', '9999-12-31', 2025)$$,
    'the same range for another product line is accepted');
SELECT lives_ok(
    $$EXECUTE add_contract('PGTAP_C2', 'PGTAP_P1', 'PL201', '2025-02-28', '9999-12-31', 2025)$$,
    'the same range for another company is accepted');
SELECT lives_ok(
    $$EXECUTE add_contract('PGTAP_C2', 'PGTAP_P9', 'PL201', '2024-02-29', '2024-12-31', 2024)$$,
    'a leap-day month-end (2024-02-29) is a valid bound');
SELECT lives_ok(
    $$INSERT INTO customer.customer_plan_contract
          (company_id, plan_code, product_line_code, product_line_name, status_year,
           contract_status, valid_from)
      VALUES ('PGTAP_C2', 'PGTAP_P8', 'PL203', '职年受托', 2025, 'active', '2025-05-31')$$,
    'a version without valid_to is accepted');
SELECT results_eq(
    $$SELECT company_id::text, plan_code::text, product_line_code::text, valid_from, valid_to,
             is_strategic, is_existing
        FROM customer.customer_plan_contract
       WHERE company_id IN ('PGTAP_C1', 'PGTAP_C2')
       ORDER BY company_id, plan_code, product_line_code, valid_from$$,
    $$VALUES ('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-01-31'::date, '2025-03-31'::date, false, false),
             ('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-03-31'::date, '9999-12-31'::date, false, false),
             ('PGTAP_C1', 'PGTAP_P1', 'PL202', '2025-02-28'::date, '9999-12-31'::date, false, false),
             ('PGTAP_C1', 'PGTAP_P2', 'PL201', '2025-02-28'::date, '9999-12-31'::date, false, false),
             ('PGTAP_C2', 'PGTAP_P1', 'PL201', '2025-02-28'::date, '9999-12-31'::date, false, false),
             ('PGTAP_C2', 'PGTAP_P8', 'PL203', '2025-05-31'::date, '9999-12-31'::date, false, false),
             ('PGTAP_C2', 'PGTAP_P9', 'PL201', '2024-02-29'::date, '2024-12-31'::date, false, false)$$,
    'the history holds exactly the accepted versions; valid_to defaults to 9999-12-31, flags to false');

-- ---------------------------------------------------------------- error codes
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-02-28', '2025-04-30', 2025)$$,
    '23P01', 'conflicting key value violates exclusion constraint "ex_contract_no_overlap"',
    'a version straddling two existing versions is rejected (exclusion_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-01-31', '2025-02-28', 2025)$$,
    '23P01', 'conflicting key value violates exclusion constraint "ex_contract_no_overlap"',
    'a version inside an existing version is rejected (exclusion_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-01-31', '2025-03-31', 2025)$$,
    '23505', 'duplicate key value violates unique constraint "uq_active_contract"',
    'a second row with the same key and valid_to is rejected by uq_active_contract (unique_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P3', 'PL201', '2025-02-15', '9999-12-31', 2025)$$,
    '23514', 'new row for relation "customer_plan_contract" violates check constraint "ck_contract_month_end"',
    'valid_from that is not a month-end is rejected (check_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P3', 'PL201', '2024-02-28', '9999-12-31', 2024)$$,
    '23514', 'new row for relation "customer_plan_contract" violates check constraint "ck_contract_month_end"',
    '2024-02-28 (leap year) is not a month-end (check_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P3', 'PL201', '2025-01-31', '2025-06-15', 2025)$$,
    '23514', 'new row for relation "customer_plan_contract" violates check constraint "ck_contract_month_end"',
    'valid_to that is not a month-end is rejected (check_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P3', 'PL201', '2025-03-31', '2025-01-31', 2025)$$,
    '23514', 'new row for relation "customer_plan_contract" violates check constraint "ck_contract_valid_range"',
    'valid_from > valid_to is rejected (check_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P3', 'PL201', '2025-03-31', '2025-03-31', 2025)$$,
    '23514', 'new row for relation "customer_plan_contract" violates check constraint "ck_contract_valid_range"',
    'valid_from = valid_to (empty range) is rejected (check_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P3', 'PL201', '2025-01-31', '9999-12-31', 2024)$$,
    '23514', 'new row for relation "customer_plan_contract" violates check constraint "ck_contract_status_year"',
    'status_year other than the year of valid_from is rejected (check_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_NO_SUCH_COMPANY', 'PGTAP_P3', 'PL201', '2025-01-31', '9999-12-31', 2025)$$,
    '23503', 'insert or update on table "contract_key" violates foreign key constraint "fk_contract_company"',
    'an unknown company_id is rejected (foreign_key_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P3', 'PL999', '2025-01-31', '9999-12-31', 2025)$$,
    '23503', 'insert or update on table "contract_key" violates foreign key constraint "fk_contract_product_line"',
    'an unknown product_line_code is rejected (foreign_key_violation)');
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', NULL, 'PL201', '2025-01-31', '9999-12-31', 2025)$$,
    '23502', NULL,
    'a NULL plan_code is rejected (not_null_violation)');

-- key_id: a version inserted without one gets its key's, registered once per key; a
-- version cannot carry another key's key_id (fk_contract_key).
SELECT is(
    (SELECT count(DISTINCT c.key_id)::int FROM customer.customer_plan_contract c
      WHERE c.company_id = 'PGTAP_C1' AND c.plan_code = 'PGTAP_P1' AND c.product_line_code = 'PL201'),
    1,
    'every version of a key inserted without key_id carries the same key_id');
SELECT results_eq(
    $$SELECT k.company_id::text, k.plan_code::text, k.product_line_code::text
        FROM customer.contract_key k
        JOIN customer.customer_plan_contract c USING (key_id)
       WHERE c.company_id = 'PGTAP_C1' AND c.plan_code = 'PGTAP_P1' AND c.product_line_code = 'PL201'
       GROUP BY 1, 2, 3$$,
    $$VALUES ('PGTAP_C1', 'PGTAP_P1', 'PL201')$$,
    'the key_id names the version''s own key in customer.contract_key');
SELECT throws_ok(
    $$INSERT INTO customer.customer_plan_contract
          (key_id, company_id, plan_code, product_line_code, product_line_name,
           status_year, contract_status, valid_from, valid_to)
      SELECT k.key_id, 'PGTAP_C2', 'PGTAP_P9', 'PL201', 'x', 2020, '正常', '2020-01-31', '2020-02-29'
        FROM customer.contract_key k
       WHERE k.company_id = 'PGTAP_C1' AND k.plan_code = 'PGTAP_P1' AND k.product_line_code = 'PL201'$$,
    '23503', 'insert or update on table "customer_plan_contract" violates foreign key constraint "fk_contract_key"',
    'a version carrying another key''s key_id is rejected (fk_contract_key)');
SELECT throws_ok(
    $$UPDATE customer.customer_plan_contract SET company_id = 'PGTAP_C2'
       WHERE company_id = 'PGTAP_C1' AND plan_code = 'PGTAP_P1' AND product_line_code = 'PL201'
         AND valid_to = '2025-03-31'$$,
    '23503', 'insert or update on table "customer_plan_contract" violates foreign key constraint "fk_contract_key"',
    'changing a version''s key columns without its key_id is rejected (fk_contract_key)');

-- One current version per key, by uq_active_contract alone: with ex_contract_no_overlap in
-- place a second current version trips it first, so drop it (inside this transaction only)
-- to reach uq_active_contract. The ROLLBACK below restores it.
-- (IF EXISTS: should it be missing, the tests above report it and this one still runs.)
ALTER TABLE customer.customer_plan_contract
    DROP CONSTRAINT IF EXISTS ex_contract_no_overlap;
SELECT throws_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-06-30', '9999-12-31', 2025)$$,
    '23505', 'duplicate key value violates unique constraint "uq_active_contract"',
    'a second current version (valid_to 9999-12-31) of a key is rejected by uq_active_contract');
SELECT lives_ok(
    $$EXECUTE add_contract('PGTAP_C1', 'PGTAP_P1', 'PL201', '2025-06-30', '2025-09-30', 2025)$$,
    'uq_active_contract only refuses a second version of a key ending on the same date');

DEALLOCATE add_contract;
SELECT * FROM finish();
ROLLBACK;
