-- cmdm-verify: scratch
-- 100_sync_loaded_months: customer.loaded_months(from, to), the month-ends of the months
-- with at least one fact row (DESIGN §4 "a loaded month"), ascending, bounds inclusive and
-- named by any day of their month, NULL for open; and customer.contract_dependent_months(m),
-- the months whose derived data depends on m's facts: m, the next loaded month, and every
-- loaded month of a later year whose reference month m is (the last loaded month before
-- its January 1st).
--
-- Rows kept apart: facts only in 2190-2199 with TAP-* ids; where a bound is open, only the
-- test years are looked at (production's own months lie before 2190).
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(11);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('TAP-PL1', 'TAP 产品线一');
INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('TAP-C1', 'pgTAP 客户 1'), ('TAP-C2', 'pgTAP 客户 2');

-- Loaded months: 2190-01 (a NULL-company row only: still a loaded month), 2197-11 (three
-- rows), 2197-12, 2198-01, 2198-03 (2198-02 has none).
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1'),
       ('2197-11-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2197-11-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 5, 'TAP-B1'),
       ('2197-11-01', 'TAP-P2', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 7, 'TAP-B1'),
       ('2197-12-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2198-01-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2198-03-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1');

-- ======================================================= loaded_months
SELECT results_eq(
    $$SELECT * FROM customer.loaded_months('2197-01-01', '2198-12-31')$$,
    $$VALUES ('2197-11-30'::date), ('2197-12-31'::date), ('2198-01-31'::date), ('2198-03-31'::date)$$,
    'loaded_months: each month with facts once, as its month-end, ascending');
SELECT results_eq(
    $$SELECT * FROM customer.loaded_months('2197-12-31', '2198-01-01')$$,
    $$VALUES ('2197-12-31'::date), ('2198-01-31'::date)$$,
    'loaded_months: both bounds are whole months, named by any of their days');
SELECT is_empty(
    $$SELECT * FROM customer.loaded_months('2198-02-01', '2198-02-28')$$,
    'loaded_months: a month without facts is not loaded');
SELECT results_eq(
    $$SELECT * FROM customer.loaded_months('2190-01-15', '2190-01-15')$$,
    $$VALUES ('2190-01-31'::date)$$,
    'loaded_months: a month whose only row is no contract is loaded');
SELECT results_eq(
    $$SELECT * FROM customer.loaded_months('2197-12-01', NULL)$$,
    $$VALUES ('2197-12-31'::date), ('2198-01-31'::date), ('2198-03-31'::date)$$,
    'loaded_months: NULL upper bound = through the last loaded month');
SELECT results_eq(
    $$SELECT l FROM customer.loaded_months(NULL, '2197-11-30') l WHERE l >= '2190-01-01'$$,
    $$VALUES ('2190-01-31'::date), ('2197-11-30'::date)$$,
    'loaded_months: NULL lower bound = from the first loaded month');

-- ======================================================= contract_dependent_months
SELECT results_eq(
    $$SELECT * FROM customer.contract_dependent_months('2197-11-15')$$,
    $$VALUES ('2197-11-30'::date, 'the changed month'), ('2197-12-31'::date, 'the next loaded month')$$,
    'dependent months of 2197-11: itself and the next loaded month (same year)');
SELECT results_eq(
    $$SELECT * FROM customer.contract_dependent_months('2197-12-01')$$,
    $$VALUES ('2197-12-31'::date, 'the changed month'),
             ('2198-01-31'::date, 'annual statuses of 2198 use 2197-12 as reference month'),
             ('2198-01-31'::date, 'the next loaded month'),
             ('2198-03-31'::date, 'annual statuses of 2198 use 2197-12 as reference month')$$,
    'dependent months of 2197-12, the reference month of 2198: also every loaded month of 2198');
SELECT results_eq(
    $$SELECT * FROM customer.contract_dependent_months('2198-02-28')$$,
    $$VALUES ('2198-02-28'::date, 'the changed month'), ('2198-03-31'::date, 'the next loaded month')$$,
    'dependent months of a month without facts (a deletion): itself and the next loaded month');
SELECT results_eq(
    $$SELECT * FROM customer.contract_dependent_months('2198-03-01')$$,
    $$VALUES ('2198-03-31'::date, 'the changed month')$$,
    'dependent months of the last loaded month: itself only');
SELECT results_eq(
    $$SELECT * FROM customer.contract_dependent_months('2190-02-01')$$,
    $$VALUES ('2190-02-28'::date, 'the changed month'),
             ('2197-11-30'::date, 'annual statuses of 2197 use 2190-02 as reference month'),
             ('2197-11-30'::date, 'the next loaded month'),
             ('2197-12-31'::date, 'annual statuses of 2197 use 2190-02 as reference month')$$,
    'dependent months of a gap before a later year: that year''s loaded months');

SELECT * FROM finish();
ROLLBACK;
