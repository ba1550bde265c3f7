-- cmdm-verify: scratch
-- 100_sync_order: the history is a pure function of the facts (DESIGN §4). Months loaded
-- out of order (2193-02, then 2192-12, then 2193-01), a month restated (its rows deleted,
-- others inserted), the reference month restated, months deleted (a sync of a month without
-- facts is a deletion, not an error), a month that never had facts, and a reload in another
-- order: after each step the exact versions a fresh rebuild from the same facts gives, and
-- at the end that rebuild itself.
--
-- Rows kept apart: years 2190-2199, TAP-* ids, branch and product line only, assertions on
-- TAP-* keys only. The sentinel month 2190-01 (one NULL-company row, no contract) is the
-- last loaded month before 2192 and 2193 until 2192-12 is loaded, so those years' TAP flags
-- are false in any database until then (see 100_sync_status.sql).
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(20);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('TAP-PL1', 'TAP 产品线一');
INSERT INTO customer."年金客户" (company_id, "客户名称")
VALUES ('TAP-C1', 'pgTAP 客户 1'), ('TAP-C2', 'pgTAP 客户 2'), ('TAP-C3', 'pgTAP 客户 3'),
       ('TAP-C4', 'pgTAP 客户 4');

CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2190-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);
CREATE TEMP VIEW tap_version AS
SELECT company_id::text, plan_code::text, product_line_code::text, valid_from, valid_to,
       contract_status::text, status_year, is_strategic, is_existing
  FROM customer.customer_plan_contract
 WHERE company_id LIKE 'TAP-%';
-- fact(month, company, plan, AUM): one portfolio, branch TAP-B1, product line TAP-PL1
PREPARE fact(date, text, text, numeric) AS
    INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
    VALUES ($1, $3, $2, 'TAP-PL1', 'TAP-G1', $4, 'TAP-B1');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');  -- sentinel
EXECUTE sync('2190-01-01');

-- The facts (m1 = 2192-12, m2 = 2193-01, m3 = 2193-02):
--   O1 TAP-C1/TAP-P1   m1 100   m2 0    m3 100
--   O2 TAP-C2/TAP-P2   m1 50    -       -
--   O3 TAP-C3/TAP-P3   -        -       m3 70
--   O4 TAP-C4/TAP-P4   -        m2 30   m3 30
-- Once m1 is loaded it is the reference month of 2193: C1 (100) and C2 (50) are strategic
-- (top 10 of TAP-B1) and existing in TAP-PL1; C3 and C4 (no facts at m1) are neither.

-- ======================================================= out of order: m3, m1, m2
-- m3 alone: O1, O3, O4 first seen at m3; 2193's reference month is the sentinel: flags false.
EXECUTE fact('2193-02-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2193-02-01', 'TAP-C3', 'TAP-P3', 70);
EXECUTE fact('2193-02-01', 'TAP-C4', 'TAP-P4', 30);
EXECUTE sync('2193-02-01');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'out of order, m3 first: three keys first seen at 2193-02');

-- then m1: O1 and O2 now start at m1 (2192, flags of the sentinel: false); m1 became 2193's
-- reference month, so the 2193 versions of C1 and C2 are re-flagged true; O2 is absent
-- from m3: 停缴 there.
EXECUTE fact('2192-12-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2192-12-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE sync('2192-12-01');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2192-12-31'::date, '2193-02-28'::date, '正常', 2192, false, false),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, true, true),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2192-12-31'::date, '2193-02-28'::date, '正常', 2192, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '停缴', 2193, true, true),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'out of order, then m1: earlier starts, 2193 re-flagged from its new reference month');

-- then m2: O1 at 0 -> 停缴 in m2; O2 absent -> 停缴 from m2 on (merged with m3's);
-- O4 now first seen at m2.
EXECUTE fact('2193-01-01', 'TAP-C1', 'TAP-P1', 0);
EXECUTE fact('2193-01-01', 'TAP-C4', 'TAP-P4', 30);
EXECUTE sync('2193-01-01');
CREATE TEMP TABLE expected_in_order ON COMMIT DROP AS
SELECT * FROM (VALUES
    ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
    ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-01-31'::date, '2193-02-28'::date, '停缴', 2193, true, true),
    ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, true, true),
    ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
    ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '停缴', 2193, true, true),
    ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
    ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, false, false))
    AS v (company_id, plan_code, product_line_code, valid_from, valid_to, contract_status,
          status_year, is_strategic, is_existing);
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$SELECT * FROM expected_in_order ORDER BY 1, 2, 3, 4$$,
    'out of order (m3, m1, m2): exactly the history of loading m1, m2, m3 in order');

-- ======================================================= restatement of m2
-- m2's rows deleted, others inserted: O1 80 (正常), O2 20 (正常, suspended again at m3),
-- O4 gone from m2 (first seen at m3 again). 2193's flags unchanged (reference m1).
DELETE FROM business."规模明细" WHERE "月度" = '2193-01-01' AND company_id LIKE 'TAP-%';
EXECUTE fact('2193-01-01', 'TAP-C1', 'TAP-P1', 80);
EXECUTE fact('2193-01-01', 'TAP-C2', 'TAP-P2', 20);
EXECUTE sync('2193-01-01');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, true, true),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '2193-02-28'::date, '正常', 2193, true, true),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '停缴', 2193, true, true),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'restating m2: the history of the new facts');

-- ======================================================= restatement of the reference month m1
-- m1 now: O1 100, O3 60 (O2 gone). 2193's flags: C1 and C3 strategic and existing, C2 and C4
-- not. O2 first seen at m2 now (its 2192 version goes); O3 first seen at m1, absent at m2
-- (停缴), 70 at m3.
DELETE FROM business."规模明细" WHERE "月度" = '2192-12-01' AND company_id LIKE 'TAP-%';
EXECUTE fact('2192-12-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2192-12-01', 'TAP-C3', 'TAP-P3', 60);
EXECUTE sync('2192-12-01');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, true, true),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '2193-02-28'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '停缴', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-01-31'::date, '2193-02-28'::date, '停缴', 2193, true, true),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, true, true),
             ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'restating the reference month m1: new first appearances, 2193 re-flagged');

-- ======================================================= deletion of m2
-- m2's rows deleted, then its sync: a deletion, not an error. O2 had facts only at m2: no
-- version is left. O4 (first seen at m3) keeps its version. (O1 and O3 would run from m1
-- to m3: [2192-12-31, 2193-02-28) 正常 2192, then 2193's; not asserted here while the sync
-- leaves their 2192 version ending at the deleted month.)
DELETE FROM business."规模明细" WHERE "月度" = '2193-01-01' AND company_id LIKE 'TAP-%';
TRUNCATE sync_log;
SELECT lives_ok($$EXECUTE sync('2193-01-01')$$, 'the sync of a month whose facts were deleted runs');
SELECT results_eq(
    $$SELECT period, keys_seen, rejected_null_key + rejected_unknown_product_line + rejected_unknown_company
        FROM sync_log$$,
    $$VALUES ('2193-01-31'::date, 0::bigint, 0::bigint)$$,
    'it reports the month, no key seen, no reject');
SELECT results_eq(
    $$SELECT * FROM tap_version WHERE company_id IN ('TAP-C2', 'TAP-C4') ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'deleting m2: a key seen only there has no version left; O4 keeps its version');

-- ======================================================= deletion of the reference month m1
-- Loaded now: the sentinel and m3. 2193's reference month is the sentinel again: flags false.
DELETE FROM business."规模明细" WHERE "月度" = '2192-12-01' AND company_id LIKE 'TAP-%';
EXECUTE sync('2192-12-01');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'deleting the reference month m1: first appearances move to m3, 2193 re-flagged false');

-- ======================================================= deletion of the last month m3
DELETE FROM business."规模明细" WHERE "月度" = '2193-02-01' AND company_id LIKE 'TAP-%';
SELECT lives_ok($$EXECUTE sync('2193-02-01')$$, 'the sync of the last month, its facts deleted, runs');
SELECT is_empty($$SELECT * FROM tap_version$$, 'no TAP facts left: no TAP version left');

-- ======================================================= a month that never had facts
TRUNCATE sync_log;
SELECT lives_ok($$EXECUTE sync('2194-06-15')$$, 'the sync of a month that never had facts runs');
SELECT results_eq(
    $$SELECT period, keys_seen, keys_changed, versions_opened, versions_closed, versions_removed
        FROM sync_log$$,
    $$VALUES ('2194-06-30'::date, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'it changes nothing');

-- ======================================================= reload in another order: m2, m3, m1
-- The original facts again; the end result is the in-order history of the first section.
EXECUTE fact('2193-01-01', 'TAP-C1', 'TAP-P1', 0);
EXECUTE fact('2193-01-01', 'TAP-C4', 'TAP-P4', 30);
EXECUTE sync('2193-01-01');
-- m2 alone (after the sentinel): O1 停缴 (AUM 0), O4 正常, 2193 flags false.
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '停缴', 2193, false, false),
             ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'reload, m2 first');
EXECUTE fact('2193-02-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2193-02-01', 'TAP-C3', 'TAP-P3', 70);
EXECUTE fact('2193-02-01', 'TAP-C4', 'TAP-P4', 30);
EXECUTE sync('2193-02-01');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-01-31'::date, '2193-02-28'::date, '停缴', 2193, false, false),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'reload, then m3');
EXECUTE fact('2192-12-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2192-12-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE sync('2192-12-01');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$SELECT * FROM expected_in_order ORDER BY 1, 2, 3, 4$$,
    'reload in the order m2, m3, m1: exactly the in-order history again');

-- ======================================================= the invariants after all that
SELECT is_empty(
    $$SELECT a.company_id, a.plan_code, a.product_line_code, a.valid_from, b.valid_from
        FROM customer.customer_plan_contract a
        JOIN customer.customer_plan_contract b
          ON b.company_id = a.company_id AND b.plan_code = a.plan_code
         AND b.product_line_code = a.product_line_code AND b.contract_id <> a.contract_id
         AND daterange(a.valid_from, a.valid_to) && daterange(b.valid_from, b.valid_to)
       WHERE a.company_id LIKE 'TAP-%'$$,
    'no two versions of a TAP key overlap');
SELECT is_empty(
    $$SELECT company_id, plan_code, product_line_code FROM customer.customer_plan_contract
       WHERE company_id LIKE 'TAP-%'
       GROUP BY 1, 2, 3 HAVING count(*) FILTER (WHERE valid_to = '9999-12-31') <> 1$$,
    'every TAP key has exactly one current version');
SELECT is_empty(
    $$SELECT * FROM (
        SELECT v.*, lead(valid_from) OVER w AS next_from,
               lead((contract_status, status_year, is_strategic, is_existing)) OVER w AS next_state
          FROM tap_version v
        WINDOW w AS (PARTITION BY company_id, plan_code, product_line_code ORDER BY valid_from)) x
       WHERE next_from IS NOT NULL
         AND (valid_to <> next_from
              OR (contract_status, status_year, is_strategic, is_existing) = next_state)$$,
    'versions are contiguous and maximal: each ends where the next starts, with a different state');

-- ======================================================= a fresh rebuild gives the same
-- The TAP versions removed, then every loaded month synced in order.
DELETE FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%';
EXECUTE sync('2190-01-01');
EXECUTE sync('2192-12-01');
EXECUTE sync('2193-01-01');
EXECUTE sync('2193-02-01');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$SELECT * FROM expected_in_order ORDER BY 1, 2, 3, 4$$,
    'a fresh rebuild from the same facts gives the same history');

SELECT * FROM finish();
ROLLBACK;
