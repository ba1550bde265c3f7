-- cmdm-verify: scratch
-- 100_sync_periods: periods as customer.sync_contract_status and
-- customer.contract_dependent_months take them (DESIGN §4 "Periods"): any day of a month
-- names that month, month-ends are stored (2196-02-29 in a leap year); NULL or a year
-- outside 1900-2200 raises SQLSTATE CM001 with a HINT; 1900-01 and 2200-12 are accepted.
--
-- Rows kept apart: years 2190-2199 for facts, TAP-* ids only, assertions on TAP rows only.
-- The boundary months 1900-01 and 2200-12 have no facts: their syncs change nothing.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched
SELECT plan(19);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('TAP-PL1', 'TAP 产品线一');
INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('TAP-C1', 'pgTAP 客户 1');

CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2190-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);

-- SQLSTATE and HINT of the error a statement raises (NULL when it raises none)
CREATE FUNCTION pg_temp.error_of(p_sql text, OUT error_code text, OUT hint text)
    LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE p_sql;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS error_code = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
END
$fn$;

-- the sentinel month 2190-01 (one NULL-company row; see 100_sync_status.sql)
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');
EXECUTE sync('2190-01-01');

-- ======================================================= any day names its month
-- TAP-C1/TAP-P1/TAP-PL1: 100 in 2196-02 (a leap year), 0 in 2196-05; each month synced
-- by a date in the middle of it.
TRUNCATE sync_log;
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2196-02-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1');
EXECUTE sync('2196-02-10');
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2196-05-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 0, 'TAP-B1');
EXECUTE sync('2196-05-17');
SELECT results_eq(
    $$SELECT period, keys_seen FROM sync_log ORDER BY period$$,
    $$VALUES ('2196-02-29'::date, 1::bigint), ('2196-05-31'::date, 1::bigint)$$,
    'a mid-month date syncs its month; the result names the month-end (2196-02-29: leap year)');
SELECT results_eq(
    $$SELECT valid_from, valid_to, contract_status::text, status_year
        FROM customer.customer_plan_contract WHERE company_id = 'TAP-C1' ORDER BY valid_from$$,
    $$VALUES ('2196-02-29'::date, '2196-05-31'::date, '正常', 2196),
             ('2196-05-31'::date, '9999-12-31'::date, '停缴', 2196)$$,
    'versions are bounded by month-ends');
TRUNCATE sync_log;
EXECUTE sync('2196-05-01');
EXECUTE sync('2196-05-31');
EXECUTE sync('2196-02-29');
EXECUTE sync('2196-02-01');
SELECT results_eq(
    $$SELECT period, keys_seen, keys_changed FROM sync_log$$,
    $$VALUES ('2196-05-31'::date, 1::bigint, 0::bigint), ('2196-05-31'::date, 1::bigint, 0::bigint),
             ('2196-02-29'::date, 1::bigint, 0::bigint), ('2196-02-29'::date, 1::bigint, 0::bigint)$$,
    'the first and the last day name the same month: the same sync, nothing to change');

-- ======================================================= the accepted range
TRUNCATE sync_log;
SELECT lives_ok($$EXECUTE sync('1900-01-01')$$, 'sync of 1900-01 (the first month accepted) runs');
SELECT lives_ok($$EXECUTE sync('2200-12-31')$$, 'sync of 2200-12 (the last month accepted) runs');
SELECT results_eq(
    $$SELECT period, keys_seen, keys_changed FROM sync_log$$,
    $$VALUES ('1900-01-31'::date, 0::bigint, 0::bigint), ('2200-12-31'::date, 0::bigint, 0::bigint)$$,
    'months without facts at both ends of the range change nothing');
SELECT lives_ok($$SELECT * FROM customer.contract_dependent_months('1900-01-01')$$,
    'contract_dependent_months of 1900-01 runs');
SELECT lives_ok($$SELECT * FROM customer.contract_dependent_months('2200-12-31')$$,
    'contract_dependent_months of 2200-12 runs');

-- ======================================================= error codes
SELECT throws_ok(
    $$SELECT * FROM customer.sync_contract_status(NULL)$$,
    'CM001', 'period is NULL',
    'sync_contract_status(NULL) raises CM001');
SELECT throws_ok(
    $$SELECT * FROM customer.sync_contract_status('1800-01-01')$$,
    'CM001', 'period 1800-01-01 is out of range',
    'sync_contract_status(1800-01-01) raises CM001');
SELECT throws_ok(
    $$SELECT * FROM customer.sync_contract_status('1899-12-31')$$,
    'CM001', NULL,
    'sync_contract_status(1899-12-31), the day before the range, raises CM001');
SELECT throws_ok(
    $$SELECT * FROM customer.sync_contract_status('2201-01-01')$$,
    'CM001', NULL,
    'sync_contract_status(2201-01-01), the day after the range, raises CM001');
SELECT throws_ok(
    $$SELECT * FROM customer.contract_dependent_months(NULL)$$,
    'CM001', 'period is NULL',
    'contract_dependent_months(NULL) raises CM001');
SELECT throws_ok(
    $$SELECT * FROM customer.contract_dependent_months('1800-01-01')$$,
    'CM001', 'period 1800-01-01 is out of range',
    'contract_dependent_months(1800-01-01) raises CM001');

-- the HINT says what to pass
SELECT matches(
    (SELECT hint FROM pg_temp.error_of($$SELECT * FROM customer.sync_contract_status(NULL)$$)),
    '\d{4}-\d{2}',
    'sync_contract_status(NULL): the HINT shows a valid period');
SELECT matches(
    (SELECT hint FROM pg_temp.error_of($$SELECT * FROM customer.sync_contract_status('1800-01-01')$$)),
    '1900.*2200',
    'sync_contract_status(1800-01-01): the HINT names the accepted range');
SELECT matches(
    (SELECT hint FROM pg_temp.error_of($$SELECT * FROM customer.contract_dependent_months(NULL)$$)),
    '\d{4}-\d{2}',
    'contract_dependent_months(NULL): the HINT shows a valid period');
SELECT matches(
    (SELECT hint FROM pg_temp.error_of($$SELECT * FROM customer.contract_dependent_months('1800-01-01')$$)),
    '1900.*2200',
    'contract_dependent_months(1800-01-01): the HINT names the accepted range');

-- a failed call changes nothing
SELECT results_eq(
    $$SELECT valid_from, valid_to, contract_status::text, status_year
        FROM customer.customer_plan_contract WHERE company_id = 'TAP-C1' ORDER BY valid_from$$,
    $$VALUES ('2196-02-29'::date, '2196-05-31'::date, '正常', 2196),
             ('2196-05-31'::date, '9999-12-31'::date, '停缴', 2196)$$,
    'after the errors the TAP history is unchanged');

SELECT * FROM finish();
ROLLBACK;
