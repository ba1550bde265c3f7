-- cmdm-verify: scratch
-- 100_sync_strategic: the annual flag is_strategic as customer.sync_contract_status writes
-- it on contract versions (DESIGN §4, rules/statuses.yml, rules/config.yml): the company's
-- total AUM at the year's reference month >= strategic_threshold (500000000), or the company
-- is in the top whitelist_top_n (10) by AUM of its branch (机构代码), ranked with rank(): ties
-- share a place. Flags are checked for 2191 (reference month 2190-12) and 2192 (reference
-- month 2191-01, the last loaded month of 2191), both inside the test data.
--
-- Rows kept apart: years 2190-2199, TAP-* ids and branches only, assertions on TAP-* keys
-- only. The sentinel month 2190-01 (one NULL-company row, no contract) makes the flags of
-- 2190 false for TAP keys in any database (see 100_sync_status.sql).
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(9);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线")
VALUES ('TAP-PL1', 'TAP 产品线一'), ('TAP-PL2', 'TAP 产品线二');
INSERT INTO customer."年金客户" (company_id, "客户名称")
SELECT c, 'pgTAP ' || c
  FROM unnest(ARRAY['TAP-T1', 'TAP-T2', 'TAP-T3']
              || ARRAY(SELECT 'TAP-BIG' || lpad(i::text, 2, '0') FROM generate_series(1, 10) i)
              || ARRAY(SELECT 'TAP-S' || lpad(i::text, 2, '0') FROM generate_series(1, 12) i)) c;

CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2190-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);
CREATE TEMP VIEW tap_version AS
SELECT company_id::text, plan_code::text, product_line_code::text, valid_from, valid_to,
       contract_status::text, status_year, is_strategic, is_existing
  FROM customer.customer_plan_contract
 WHERE company_id LIKE 'TAP-%';

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');  -- sentinel
EXECUTE sync('2190-01-01');

-- Facts of 2190-12 (reference month of 2191); every key has one portfolio, AUM > 0.
--
-- Branch TAP-B1 (threshold): TAP-BIG01..10 at 1 000 000 000 each (all rank 1);
--   TAP-T1 500 000 000.00 (rank 11: strategic only by the threshold, which is >=);
--   TAP-T3 300 000 000 in TAP-PL1 + 200 000 000 in TAP-PL2 (plans TAP-P1, TAP-P2): its
--     company total is 500 000 000 -> strategic by the threshold (rank 11 too);
--   TAP-T2 499 999 999.99 (rank 13, below the threshold) -> not strategic.
-- Branch TAP-B2 (top 10 by company AUM in the branch, all far below the threshold):
--   S01 1200, S02 1100, S03 1000, S04 900, S05 800, S06 700, S07 600, S08 500 (ranks 1-8),
--   S09 250 (plan TAP-P1) + 150 (plan TAP-P2) = 400 (rank 9: the company's sum ranks, not
--     a key's; by key its best, 250, would rank 11),
--   S10 300, S11 300 (a tie: both rank 10, both strategic),
--   S12 200 (rank 12: not strategic, although the 12th company only because of the tie).
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
SELECT '2190-12-01', 'TAP-P1', 'TAP-BIG' || lpad(i::text, 2, '0'), 'TAP-PL1', 'TAP-G1', 1000000000, 'TAP-B1'
  FROM generate_series(1, 10) i;
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-12-01', 'TAP-P1', 'TAP-T1', 'TAP-PL1', 'TAP-G1', 500000000.00, 'TAP-B1'),
       ('2190-12-01', 'TAP-P1', 'TAP-T2', 'TAP-PL1', 'TAP-G1', 499999999.99, 'TAP-B1'),
       ('2190-12-01', 'TAP-P1', 'TAP-T3', 'TAP-PL1', 'TAP-G1', 300000000, 'TAP-B1'),
       ('2190-12-01', 'TAP-P2', 'TAP-T3', 'TAP-PL2', 'TAP-G1', 200000000, 'TAP-B1'),
       ('2190-12-01', 'TAP-P1', 'TAP-S01', 'TAP-PL1', 'TAP-G1', 1200, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S02', 'TAP-PL1', 'TAP-G1', 1100, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S03', 'TAP-PL1', 'TAP-G1', 1000, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S04', 'TAP-PL1', 'TAP-G1', 900, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S05', 'TAP-PL1', 'TAP-G1', 800, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S06', 'TAP-PL1', 'TAP-G1', 700, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S07', 'TAP-PL1', 'TAP-G1', 600, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S08', 'TAP-PL1', 'TAP-G1', 500, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S09', 'TAP-PL1', 'TAP-G1', 250, 'TAP-B2'),
       ('2190-12-01', 'TAP-P2', 'TAP-S09', 'TAP-PL1', 'TAP-G1', 150, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S10', 'TAP-PL1', 'TAP-G1', 300, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S11', 'TAP-PL1', 'TAP-G1', 300, 'TAP-B2'),
       ('2190-12-01', 'TAP-P1', 'TAP-S12', 'TAP-PL1', 'TAP-G1', 200, 'TAP-B2');
EXECUTE sync('2190-12-01');

-- 2191-01: the same keys, new amounts (the reference month of 2192):
--   TAP-T1 drops to 1 (rank 13 in TAP-B1) -> not strategic in 2192;
--   TAP-T2 reaches 500 000 000.00 -> strategic in 2192; T3 and the BIGs unchanged.
--   TAP-S12 grows to 2000 (rank 1), TAP-S01 drops to 100: S02..S08 rank 2-8, S09 400 rank 9,
--   S10 and S11 300 rank 10, S01 rank 12 -> S01 not strategic in 2192, S12 strategic.
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
SELECT '2191-01-01', "计划代码", company_id, "产品线代码", "组合代码",
       CASE company_id WHEN 'TAP-T1' THEN 1 WHEN 'TAP-T2' THEN 500000000.00
                       WHEN 'TAP-S12' THEN 2000 WHEN 'TAP-S01' THEN 100
                       ELSE "期末资产规模" END,
       "机构代码"
  FROM business."规模明细"
 WHERE "月度" = '2190-12-01' AND company_id LIKE 'TAP-%';
EXECUTE sync('2191-01-01');

-- 2192-01: the same facts again (only to have versions of 2192).
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
SELECT '2192-01-01', "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码"
  FROM business."规模明细"
 WHERE "月度" = '2191-01-01' AND company_id LIKE 'TAP-%';
EXECUTE sync('2192-01-01');

-- ======================================================= behaviour
-- Every key: 正常 throughout (AUM > 0), one version per year; existing every year (AUM > 0
-- in its product line at both reference months); 2190 flags false.
SELECT is(
    (SELECT count(*)::int FROM tap_version), 81,
    '27 TAP keys, three versions each (2190-12, 2191-01, 2192-01)');
SELECT set_eq(
    $$SELECT valid_from, valid_to, contract_status, status_year, is_existing FROM tap_version$$,
    $$VALUES ('2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false),
             ('2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true),
             ('2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true)$$,
    'every TAP key: 正常 2190-12 / 2191 / 2192 versions, existing from 2191 on');

-- Threshold, exact rows.
SELECT results_eq(
    $$SELECT * FROM tap_version WHERE company_id IN ('TAP-T1', 'TAP-T2', 'TAP-T3') ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-T1', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-T1', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-T1', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, false, true),
             ('TAP-T2', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-T2', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, false, true),
             ('TAP-T2', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true),
             ('TAP-T3', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-T3', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-T3', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true),
             ('TAP-T3', 'TAP-P2', 'TAP-PL2', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-T3', 'TAP-P2', 'TAP-PL2', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-T3', 'TAP-P2', 'TAP-PL2', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true)$$,
    'threshold: company total >= 500000000 at the reference month (T1 2191, T2 2192, T3 over two product lines)');

-- Branch top 10 with a tie, exact rows for the companies around place 10.
SELECT results_eq(
    $$SELECT * FROM tap_version
       WHERE company_id IN ('TAP-S01', 'TAP-S08', 'TAP-S09', 'TAP-S10', 'TAP-S11', 'TAP-S12')
       ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-S01', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-S01', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-S01', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, false, true),
             ('TAP-S08', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-S08', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-S08', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true),
             ('TAP-S09', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-S09', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-S09', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true),
             ('TAP-S09', 'TAP-P2', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-S09', 'TAP-P2', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-S09', 'TAP-P2', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true),
             ('TAP-S10', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-S10', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-S10', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true),
             ('TAP-S11', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-S11', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-S11', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true),
             ('TAP-S12', 'TAP-P1', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-S12', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, false, true),
             ('TAP-S12', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true)$$,
    'branch top 10: company sums ranked in the branch, ties (S10, S11) share place 10, place 12 is out');

-- Every TAP company per year (a company's versions agree: the flag is per company).
SELECT set_eq(
    $$SELECT DISTINCT company_id, is_strategic FROM tap_version WHERE status_year = 2191$$,
    $$SELECT 'TAP-BIG' || lpad(i::text, 2, '0') AS company_id, true AS is_strategic FROM generate_series(1, 10) i
      UNION ALL
      SELECT 'TAP-S' || lpad(i::text, 2, '0'), i <= 11 FROM generate_series(1, 12) i
      UNION ALL
      VALUES ('TAP-T1', true), ('TAP-T2', false), ('TAP-T3', true)$$,
    '2191 (reference 2190-12): strategic = the BIGs, T1, T3, S01-S11; not T2, S12');
SELECT set_eq(
    $$SELECT DISTINCT company_id, is_strategic FROM tap_version WHERE status_year = 2192$$,
    $$SELECT 'TAP-BIG' || lpad(i::text, 2, '0') AS company_id, true AS is_strategic FROM generate_series(1, 10) i
      UNION ALL
      SELECT 'TAP-S' || lpad(i::text, 2, '0'), i <> 1 FROM generate_series(1, 12) i
      UNION ALL
      VALUES ('TAP-T1', false), ('TAP-T2', true), ('TAP-T3', true)$$,
    '2192 (reference 2191-01): strategic = the BIGs, T2, T3, S02-S12; not T1, S01');
SELECT is_empty(
    $$SELECT company_id, status_year FROM tap_version
       GROUP BY 1, 2 HAVING count(DISTINCT is_strategic) > 1$$,
    'is_strategic is the same on all versions of a company in a year');

-- The flags change only with the year: a second sync of the reference months re-flags nothing.
TRUNCATE sync_log;
EXECUTE sync('2190-12-01');
EXECUTE sync('2191-01-01');
SELECT is_empty(
    $$SELECT period FROM sync_log
       WHERE keys_changed <> 0 OR versions_opened <> 0 OR versions_closed <> 0
          OR versions_removed <> 0 OR versions_reflagged <> 0$$,
    'a second sync of the reference months changes nothing');
SELECT results_eq(
    $$SELECT period, keys_seen FROM sync_log ORDER BY period$$,
    $$VALUES ('2190-12-31'::date, 27::bigint), ('2191-01-31'::date, 27::bigint)$$,
    'each month has the 27 TAP keys');

SELECT * FROM finish();
ROLLBACK;
