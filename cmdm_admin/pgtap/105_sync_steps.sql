-- cmdm-verify: scratch
-- 105_sync_steps: the step routines of customer.sync_contract_status, each on its own
-- (docs/contract-sync.md, "The routines, one step each"), called in the order and with the
-- arguments the sync computes, on a hand-built history; after each step its return value and
-- the pg_temp scratch tables it filled are compared with what DESIGN §4 says by hand:
--   cmdm.scratch_table             creates, empties on a second call, refuses a foreign table
--   customer.sync_scope_keys       pg_temp.cmdm_sync_month, cmdm_sync_key, cmdm_sync_reject,
--                                  cmdm.rejected_fact, and its counts
--   customer.decide_annual_statuses (between scope and states; the year is decided already)
--   customer.sync_compute_states   pg_temp.cmdm_sync_months, cmdm_sync_state
--   customer.sync_merge_versions   pg_temp.cmdm_sync_old, cmdm_sync_new; CM002 (its guard)
--   customer.sync_write_versions   its counts, customer.customer_plan_contract, contract_key
--   customer.sync_snapshot_months  this month, the next loaded month, the changed months,
--                                  the loaded months of re-flagged years
-- Part 1 syncs 2193-03 (the latest month: a key appears, one disappears, one changes
-- status, one reappears, rejects); part 2 restates 2193-02 (a window that ends at the next
-- loaded month, an old version after it kept, pieces merged across it, a version deleted).
-- After each part a full customer.sync_contract_status of the same months changes nothing:
-- the steps left what the sync leaves.
--
-- Rows kept apart (a scratch suite, yet written to leave any other rows alone):
-- years 2191-2193 only, TAP-* companies, plans, portfolios, branches and product lines.
-- The sentinel month 2191-12 holds a single fact row that is no contract (NULL company): it
-- is the last loaded month before 2192 in every database, so 2192 is decided from no TAP
-- facts (flags false); 2192-12 (K0 only) is then the reference month of 2193 everywhere.
-- In production every real key with a current version is in the scope of these far-future
-- months too (its version covers them); it is suspended in 2192-12/2193-01 by the setup
-- syncs and provably unchanged from then on, so it is in no scratch table below, but it is
-- counted in keys_in_scope: that count is asserted as 6 (or 5) plus the real keys.
-- The scratch tables are ON COMMIT DROP: this transaction reads them between the steps.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL cmdm.post_hooks = off;   -- the direct calls below are the only sync
SELECT plan(42);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线")
VALUES ('TAP-PL1', 'TAP 产品线一'), ('TAP-PL2', 'TAP 产品线二');
INSERT INTO customer."年金客户" (company_id, "客户名称")
VALUES ('TAP-C1', 'pgTAP 客户 1'), ('TAP-C2', 'pgTAP 客户 2'), ('TAP-C3', 'pgTAP 客户 3');

-- fact(month, company, plan, product line, portfolio, AUM), branch TAP-B1
PREPARE fact(date, text, text, text, text, numeric) AS
    INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码", "期末资产规模", "机构代码")
    VALUES ($1, $2, $3, $4, $5, $6, 'TAP-B1');
CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2193-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);
CREATE TEMP VIEW tap_version AS
SELECT company_id::text, plan_code::text, product_line_code::text, valid_from, valid_to,
       contract_status::text, status_year, is_strategic, is_existing
  FROM customer.customer_plan_contract
 WHERE company_id LIKE 'TAP-%';

-- Facts (portfolio TAP-G1 unless said; all in branch TAP-B1):
--
--   key (company/plan/product line)    2191-12  2192-12  2193-01  2193-02  2193-03
--   sentinel NULL/TAP-P0/TAP-PL1       1        -        -        -        -
--   K0 TAP-C1/TAP-P0/TAP-PL1           -        100      -        -        -
--   K1 TAP-C1/TAP-P1/TAP-PL1           -        -        100      100      60 (G1) + 40 (G2)
--   K2 TAP-C2/TAP-P2/TAP-PL1           -        -        50       50 (*)   0
--   K3 TAP-C3/TAP-P3/TAP-PL1           -        -        30       30       -
--   K4 TAP-C1/TAP-P4/TAP-PL2           -        -        -        -        20
--   K5 TAP-C2/TAP-P5/TAP-PL2           -        -        10       -        10
--   2193-03 rejects: TAP-C2/NULL/TAP-PL1 7, TAP-C2/TAP-P9/TAP-PL999 9 (unknown product
--   line), TAP-C404/TAP-P8/TAP-PL1 3 (unknown company).
--   (*) restated to 0 in part 2.
--
-- Annual statuses (DESIGN §4): 2192's reference month is 2191-12 (no valid fact: all false);
-- 2193's is 2192-12: TAP-C1 is the only company of branch TAP-B1 there, so it is in the
-- branch's top 10 -> is_strategic for every TAP-C1 key; (TAP-C1, TAP-PL1) had 100 > 0 ->
-- is_existing; (TAP-C1, TAP-PL2), TAP-C2 and TAP-C3 had no facts there -> false.
EXECUTE fact('2191-12-01', NULL, 'TAP-P0', 'TAP-PL1', 'TAP-G0', 1);   -- sentinel, not synced
EXECUTE fact('2192-12-01', 'TAP-C1', 'TAP-P0', 'TAP-PL1', 'TAP-G1', 100);
EXECUTE sync('2192-12-01');
EXECUTE fact('2193-01-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 100);
EXECUTE fact('2193-01-01', 'TAP-C2', 'TAP-P2', 'TAP-PL1', 'TAP-G1', 50);
EXECUTE fact('2193-01-01', 'TAP-C3', 'TAP-P3', 'TAP-PL1', 'TAP-G1', 30);
EXECUTE fact('2193-01-01', 'TAP-C2', 'TAP-P5', 'TAP-PL2', 'TAP-G1', 10);
EXECUTE sync('2193-01-01');
EXECUTE fact('2193-02-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 100);
EXECUTE fact('2193-02-01', 'TAP-C2', 'TAP-P2', 'TAP-PL1', 'TAP-G1', 50);
EXECUTE fact('2193-02-01', 'TAP-C3', 'TAP-P3', 'TAP-PL1', 'TAP-G1', 30);
EXECUTE sync('2193-02-01');

-- ======================================================= cmdm.scratch_table
SELECT lives_ok($$SELECT cmdm.scratch_table('tap_scratch', 'n integer')$$,
    'cmdm.scratch_table creates pg_temp.tap_scratch');
CREATE TEMP TABLE tap_scratch_first ON COMMIT DROP AS
SELECT 'pg_temp.tap_scratch'::regclass::oid AS relid;
INSERT INTO pg_temp.tap_scratch (n) VALUES (1), (2), (3);
SELECT cmdm.scratch_table('tap_scratch', 'n integer');
SELECT results_eq(
    $$SELECT (SELECT count(*)::int FROM pg_temp.tap_scratch), c.oid = f.relid,
             r.rolname = 'cmdm_owner', c.relpersistence = 't'
        FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner CROSS JOIN tap_scratch_first f
       WHERE c.oid = 'pg_temp.tap_scratch'::regclass$$,
    $$VALUES (0, true, true, true)$$,
    'a second call empties the same temporary table (owned by cmdm_owner) of its three rows');

-- a pg_temp table of that name owned by another role (the ETL's, as in 130_hook_privileges)
CREATE TEMP TABLE tap_scratch_etl (n integer);
INSERT INTO tap_scratch_etl VALUES (1);
ALTER TABLE pg_temp.tap_scratch_etl OWNER TO cmdm_etl;
SELECT throws_ok(
    $$SELECT cmdm.scratch_table('tap_scratch_etl', 'n integer')$$,
    '42501', 'the temporary table pg_temp.tap_scratch_etl belongs to another role',
    'cmdm.scratch_table refuses a pg_temp table of that name owned by another role');
SELECT is((SELECT count(*)::int FROM pg_temp.tap_scratch_etl), 1,
    'the refused table is left as it was (not emptied)');

-- ======================================================= the history before the steps
-- K0: 正常 at 2192-12 (flags of 2192: false), absent from 2193-01 on -> 停缴, a 2193 version
-- with the 2193 flags of (TAP-C1, TAP-PL1). K5: absent in 2193-02 -> 停缴.
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P0', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
             ('TAP-C1', 'TAP-P0', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '停缴', 2193, true, true),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, true, true),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-01-31'::date, '2193-02-28'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-02-28'::date, '9999-12-31'::date, '停缴', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'setup: the history after syncing 2192-12, 2193-01 and 2193-02');
SELECT results_eq(
    $$SELECT 'reference'::text, status_year, reference_month::text, NULL::text, NULL::boolean
        FROM customer.annual_reference WHERE status_year IN (2192, 2193)
      UNION ALL
      SELECT 'company', status_year, company_id::text, NULL, is_strategic
        FROM customer.annual_company_status WHERE status_year IN (2192, 2193) AND company_id LIKE 'TAP-%'
      UNION ALL
      SELECT 'product_line', status_year, company_id::text, product_line_code::text, is_existing
        FROM customer.annual_product_line_status WHERE status_year IN (2192, 2193) AND company_id LIKE 'TAP-%'
      ORDER BY 1, 2, 3$$,
    $$VALUES ('company', 2193, 'TAP-C1', NULL, true),
             ('product_line', 2193, 'TAP-C1', 'TAP-PL1', true),
             ('reference', 2192, '2191-12-31', NULL, NULL),
             ('reference', 2193, '2192-12-31', NULL, NULL)$$,
    'setup: 2193 is decided from 2192-12 (TAP-C1 strategic, (TAP-C1, TAP-PL1) existing); 2192 from 2191-12');

-- ======================================================= part 1: 2193-03, step by step
-- The sync's arguments for 2193-03: loaded; no later loaded month, so the window ends at
-- 9999-12-31; the years to decide first: none (2193 is decided, 2193-03 decides no year).
EXECUTE fact('2193-03-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 60);
EXECUTE fact('2193-03-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G2', 40);
EXECUTE fact('2193-03-01', 'TAP-C2', 'TAP-P2', 'TAP-PL1', 'TAP-G1', 0);
EXECUTE fact('2193-03-01', 'TAP-C1', 'TAP-P4', 'TAP-PL2', 'TAP-G1', 20);
EXECUTE fact('2193-03-01', 'TAP-C2', 'TAP-P5', 'TAP-PL2', 'TAP-G1', 10);
EXECUTE fact('2193-03-01', 'TAP-C2', NULL, 'TAP-PL1', 'TAP-G1', 7);
EXECUTE fact('2193-03-01', 'TAP-C2', 'TAP-P9', 'TAP-PL999', 'TAP-G1', 9);
EXECUTE fact('2193-03-01', 'TAP-C404', 'TAP-P8', 'TAP-PL1', 'TAP-G1', 3);

-- ----------------------------------------------- step 1: customer.sync_scope_keys
-- Seen with valid facts: K1, K2, K4, K5 (4). In scope: those plus the keys with a version
-- covering 2193-03-31, K0 and K3 (6, plus production's real keys). To rebuild: K2 (正常 ->
-- 停缴), K3 (absent: 停缴 under suspend, was 正常), K4 (no version yet), K5 (停缴 -> 正常);
-- not K1 (正常 again, same year) nor K0 (停缴 again, same year). Rejects: one fact row each.
SELECT results_eq(
    $$SELECT * FROM customer.sync_scope_keys('2193-03-31', true, '9999-12-31')$$,
    $$SELECT 4::bigint,
             6 + (SELECT count(DISTINCT (c.company_id, c.plan_code, c.product_line_code))
                    FROM customer.customer_plan_contract c
                   WHERE c.company_id NOT LIKE 'TAP-%'
                     AND daterange(c.valid_from, c.valid_to, '[]') @> DATE '2193-03-31'),
             4::bigint, 1::bigint, 0::bigint, 1::bigint, 1::bigint$$,
    'scope 2193-03: keys_seen 4, keys_in_scope 6, keys_to_rebuild 4, one reject of each reason (no blank key)');
ANALYZE pg_temp.cmdm_sync_key;   -- as the sync does after this step

-- the month's facts aggregated once per key (K1's two portfolios: one row), rejects included
SELECT results_eq(
    $$SELECT company_id, plan_code, product_line_code, contract_status
        FROM pg_temp.cmdm_sync_month ORDER BY 1, 2, 3$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '正常'),
             ('TAP-C1', 'TAP-P4', 'TAP-PL2', '正常'),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '停缴'),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '正常'),
             ('TAP-C2', 'TAP-P9', 'TAP-PL999', '正常'),
             ('TAP-C2', NULL, 'TAP-PL1', '正常'),
             ('TAP-C404', 'TAP-P8', 'TAP-PL1', '正常')$$,
    'scope 2193-03: pg_temp.cmdm_sync_month holds one row per key of the month with its status from the SUM');

-- the keys to rebuild, each with its covering version (the one whose start is covering_from)
-- and its window: all to the end of time (no later loaded month; K4's next appearance: none)
SELECT results_eq(
    $$SELECT k.company_id, k.plan_code, k.product_line_code,
             ck.key_id IS NOT NULL AS registered, k.key_id IS NOT DISTINCT FROM ck.key_id AS key_id_ok,
             k.present, k.contract_status, k.appeared_before, k.window_end,
             k.covering_from, c.valid_from AS covering_row_from,
             k.old_contract_status, k.old_status_year, k.old_is_strategic, k.old_is_existing
        FROM pg_temp.cmdm_sync_key k
        LEFT JOIN customer.contract_key ck
               ON ck.company_id = k.company_id AND ck.plan_code = k.plan_code AND ck.product_line_code = k.product_line_code
        LEFT JOIN customer.customer_plan_contract c
               ON c.contract_id = k.covering_id AND c.company_id = k.company_id
              AND c.plan_code = k.plan_code AND c.product_line_code = k.product_line_code
       ORDER BY 1, 2, 3$$,
    $$VALUES ('TAP-C1', 'TAP-P4', 'TAP-PL2', false, true, true, '正常', false, '9999-12-31'::date,
              NULL::date, NULL::date, NULL::text, NULL::integer, NULL::boolean, NULL::boolean),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', true, true, true, '停缴', true, '9999-12-31'::date,
              '2193-01-31'::date, '2193-01-31'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', true, true, true, '正常', true, '9999-12-31'::date,
              '2193-02-28'::date, '2193-02-28'::date, '停缴', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', true, true, false, NULL, true, '9999-12-31'::date,
              '2193-01-31'::date, '2193-01-31'::date, '正常', 2193, false, false)$$,
    'scope 2193-03: pg_temp.cmdm_sync_key holds K4 (new), K2, K5, K3 (absent) with their covering versions and windows');
SELECT results_eq(
    $$SELECT count(*)::int, count(DISTINCT key_no)::int, count(key_no)::int FROM pg_temp.cmdm_sync_key$$,
    $$VALUES (4, 4, 4)$$,
    'scope 2193-03: key_no numbers the keys, once each');

SELECT results_eq(
    $$SELECT company_id, plan_code, product_line_code, reason FROM pg_temp.cmdm_sync_reject ORDER BY reason$$,
    $$VALUES ('TAP-C2', NULL, 'TAP-PL1', 'null_key'),
             ('TAP-C404', 'TAP-P8', 'TAP-PL1', 'unknown_company'),
             ('TAP-C2', 'TAP-P9', 'TAP-PL999', 'unknown_product_line')$$,
    'scope 2193-03: pg_temp.cmdm_sync_reject names the three keys that are no contracts, with their reasons');
SELECT results_eq(
    $$SELECT period, reason, company_id, plan_code, product_line_code, portfolio_code, aum
        FROM cmdm.rejected_fact WHERE period = '2193-03-31' ORDER BY reason$$,
    $$VALUES ('2193-03-31'::date, 'null_key', 'TAP-C2', NULL, 'TAP-PL1', 'TAP-G1', 7::numeric),
             ('2193-03-31'::date, 'unknown_company', 'TAP-C404', 'TAP-P8', 'TAP-PL1', 'TAP-G1', 3::numeric),
             ('2193-03-31'::date, 'unknown_product_line', 'TAP-C2', 'TAP-P9', 'TAP-PL999', 'TAP-G1', 9::numeric)$$,
    'scope 2193-03: each rejected fact row is in cmdm.rejected_fact with its reason, portfolio and AUM');

-- ----------------------------------------------- the years, before the states
-- The sync decides here only the years its windows reach that are not decided yet: none
-- (2193 is). Deciding 2193 again changes nothing: same reference month, no version re-flagged.
SELECT results_eq(
    $$SELECT status_year, reference_month, rewritten, statuses_changed, versions_reflagged
        FROM customer.decide_annual_statuses(ARRAY[2193])$$,
    $$VALUES (2193, '2192-12-31'::date, false, false, 0::bigint)$$,
    'decide 2193 again: reference month 2192-12, nothing rewritten or re-flagged');

-- ----------------------------------------------- step 2: customer.sync_compute_states
-- One loaded month in the windows (2193-03, followed by none): one state per key there.
-- K3 is absent: 停缴 (suspend). Annual statuses of 2193: TAP-C1 strategic, (TAP-C1,
-- TAP-PL2) not existing; TAP-C2, TAP-C3 have no decided row: false.
SELECT is(customer.sync_compute_states('2193-03-31'), 4::bigint,
    'states 2193-03: four states, one per key at its one loaded month');
ANALYZE pg_temp.cmdm_sync_state;
SELECT results_eq(
    $$SELECT month_end, next_end FROM pg_temp.cmdm_sync_months ORDER BY 1$$,
    $$VALUES ('2193-03-31'::date, '9999-12-31'::date)$$,
    'states 2193-03: pg_temp.cmdm_sync_months is 2193-03, with no loaded month after it');
SELECT results_eq(
    $$SELECT k.company_id, k.plan_code, k.product_line_code, s.valid_from, s.valid_to,
             s.contract_status, s.status_year, s.is_strategic, s.is_existing
        FROM pg_temp.cmdm_sync_state s JOIN pg_temp.cmdm_sync_key k USING (key_no)
       ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P4', 'TAP-PL2', '2193-03-31'::date, '9999-12-31'::date, '正常', 2193, true, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-03-31'::date, '9999-12-31'::date, '停缴', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-03-31'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-03-31'::date, '9999-12-31'::date, '停缴', 2193, false, false)$$,
    'states 2193-03: pg_temp.cmdm_sync_state holds each key''s new state, with the annual statuses of 2193');

-- ----------------------------------------------- step 3: customer.sync_merge_versions
-- Old versions touching the window: the covering ones of K2, K5, K3. Each is cut at
-- 2193-03-31 and followed by a state that differs: 2 versions each, plus K4's first: 7.
SELECT is(customer.sync_merge_versions('2193-03-31', true, '9999-12-31'), 7::bigint,
    'merge 2193-03: seven versions wanted');
ANALYZE pg_temp.cmdm_sync_old;
ANALYZE pg_temp.cmdm_sync_new;
SELECT results_eq(
    $$SELECT k.company_id, k.plan_code, k.product_line_code, o.contract_id = k.covering_id,
             o.valid_from, o.valid_to, o.contract_status, o.status_year, o.is_strategic, o.is_existing
        FROM pg_temp.cmdm_sync_old o JOIN pg_temp.cmdm_sync_key k USING (key_no)
       ORDER BY 1, 2, 3, 5$$,
    $$VALUES ('TAP-C2', 'TAP-P2', 'TAP-PL1', true, '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', true, '2193-02-28'::date, '9999-12-31'::date, '停缴', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', true, '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, false, false)$$,
    'merge 2193-03: pg_temp.cmdm_sync_old holds the current versions of the keys (the covering ones)');
SELECT results_eq(
    $$SELECT k.company_id, k.plan_code, k.product_line_code, n.valid_from, n.valid_to,
             n.contract_status, n.status_year, n.is_strategic, n.is_existing
        FROM pg_temp.cmdm_sync_new n JOIN pg_temp.cmdm_sync_key k USING (key_no)
       ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P4', 'TAP-PL2', '2193-03-31'::date, '9999-12-31'::date, '正常', 2193, true, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '2193-03-31'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-03-31'::date, '9999-12-31'::date, '停缴', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-02-28'::date, '2193-03-31'::date, '停缴', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-03-31'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-01-31'::date, '2193-03-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-03-31'::date, '9999-12-31'::date, '停缴', 2193, false, false)$$,
    'merge 2193-03: pg_temp.cmdm_sync_new holds the run-length encoded versions around 2193-03');

-- ----------------------------------------------- step 4: customer.sync_write_versions
-- Each old version keeps its start and state, its valid_to moves to 2193-03-31 (3 closed);
-- four versions open (K4's first, K2 停缴, K5 正常, K3 停缴); none removed; 4 keys changed.
SELECT results_eq(
    $$SELECT * FROM customer.sync_write_versions()$$,
    $$VALUES (4::bigint, 4::bigint, 3::bigint, 0::bigint)$$,
    'writes 2193-03: keys_changed 4, versions_opened 4, versions_closed 3, versions_removed 0');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P0', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
             ('TAP-C1', 'TAP-P0', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '停缴', 2193, true, true),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, true, true),
             ('TAP-C1', 'TAP-P4', 'TAP-PL2', '2193-03-31'::date, '9999-12-31'::date, '正常', 2193, true, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '2193-03-31'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-03-31'::date, '9999-12-31'::date, '停缴', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-01-31'::date, '2193-02-28'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-02-28'::date, '2193-03-31'::date, '停缴', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-03-31'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-01-31'::date, '2193-03-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-03-31'::date, '9999-12-31'::date, '停缴', 2193, false, false)$$,
    'writes 2193-03: the TAP history is exactly DESIGN §4''s (new, status change, suspend, reappearance)');
SELECT results_eq(
    $$SELECT k.company_id, k.plan_code, k.product_line_code, c.valid_from, c.valid_to
        FROM pg_temp.cmdm_sync_key k JOIN customer.customer_plan_contract c ON c.contract_id = k.covering_id
       ORDER BY 1, 2, 3$$,
    $$VALUES ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '2193-03-31'::date),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-02-28'::date, '2193-03-31'::date),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-01-31'::date, '2193-03-31'::date)$$,
    'writes 2193-03: a version that keeps its start and state keeps its row (contract_id), its valid_to moved');
SELECT results_eq(
    $$SELECT k.company_id, k.plan_code, k.product_line_code, k.key_id = ck.key_id,
             (SELECT bool_and(c.key_id = ck.key_id) FROM customer.customer_plan_contract c
               WHERE c.company_id = k.company_id AND c.plan_code = k.plan_code
                 AND c.product_line_code = k.product_line_code)
        FROM pg_temp.cmdm_sync_key k
        JOIN customer.contract_key ck
          ON ck.company_id = k.company_id AND ck.plan_code = k.plan_code AND ck.product_line_code = k.product_line_code
       ORDER BY 1, 2, 3$$,
    $$VALUES ('TAP-C1', 'TAP-P4', 'TAP-PL2', true, true),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', true, true),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', true, true),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', true, true)$$,
    'writes 2193-03: K4 is registered in customer.contract_key; every key''s versions carry its key_id');

-- ----------------------------------------------- step 5: customer.sync_snapshot_months
-- changed_until = max(window_end) = 9999-12-31 (keys changed), no next loaded month, no
-- year re-flagged: only this month.
SELECT is(customer.sync_snapshot_months('2193-03-31', NULL, '9999-12-31', '{}'),
          ARRAY['2193-03-31']::date[],
    'snapshot months 2193-03: the latest month alone');

-- the steps left what the sync leaves: syncing 2193-03 again changes nothing
TRUNCATE sync_log;
EXECUTE sync('2193-03-01');
SELECT results_eq(
    $$SELECT keys_seen, keys_changed, versions_opened, versions_closed, versions_removed,
             versions_reflagged, changed_until, rejected_null_key, rejected_unknown_product_line,
             rejected_unknown_company
        FROM sync_log$$,
    $$VALUES (4::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, NULL::date,
              1::bigint, 1::bigint, 1::bigint)$$,
    'a full sync of 2193-03 after the steps changes nothing');

-- ======================================================= part 2: 2193-02 restated, step by step
-- K2's February AUM becomes 0. The sync's arguments for 2193-02: loaded; the next loaded
-- month is 2193-03, so the window ends at 2193-03-31; no year to decide (2193 is decided
-- from 2192-12, and 2193-02 is no year's reference month).
UPDATE business."规模明细" SET "期末资产规模" = 0
 WHERE "月度" = '2193-02-01' AND company_id = 'TAP-C2' AND "计划代码" = 'TAP-P2';

-- ----------------------------------------------- step 1
-- Seen: K1, K2, K3 (3). In scope: those plus K0 and K5 (their versions cover 2193-02-28):
-- 5, plus production's real keys. To rebuild: K2 alone (正常 -> 停缴); K5 is absent and its
-- covering version (from 2193-02-28, after one ending there) is 停缴 already.
SELECT results_eq(
    $$SELECT * FROM customer.sync_scope_keys('2193-02-28', true, '2193-03-31')$$,
    $$SELECT 3::bigint,
             5 + (SELECT count(DISTINCT (c.company_id, c.plan_code, c.product_line_code))
                    FROM customer.customer_plan_contract c
                   WHERE c.company_id NOT LIKE 'TAP-%'
                     AND daterange(c.valid_from, c.valid_to, '[]') @> DATE '2193-02-28'),
             1::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint$$,
    'scope 2193-02: keys_seen 3, keys_in_scope 5, keys_to_rebuild 1, no rejects');
ANALYZE pg_temp.cmdm_sync_key;
SELECT results_eq(
    $$SELECT company_id, plan_code, product_line_code, key_id IS NOT NULL, present, contract_status,
             appeared_before, window_end, covering_from, old_contract_status, old_status_year,
             old_is_strategic, old_is_existing
        FROM pg_temp.cmdm_sync_key$$,
    $$VALUES ('TAP-C2', 'TAP-P2', 'TAP-PL1', true, true, '停缴', true, '2193-03-31'::date,
              '2193-01-31'::date, '正常', 2193, false, false)$$,
    'scope 2193-02: pg_temp.cmdm_sync_key holds K2 alone (emptied of 2193-03''s keys), its window ending at 2193-03-31');
SELECT results_eq(
    $$SELECT period, count(*)::int FROM cmdm.rejected_fact
       WHERE period BETWEEN '2193-01-01' AND '2193-12-31' GROUP BY 1 ORDER BY 1$$,
    $$VALUES ('2193-03-31'::date, 3)$$,
    'scope 2193-02: no rejects for 2193-02; those of 2193-03 are left alone');

-- ----------------------------------------------- step 2
SELECT is(customer.sync_compute_states('2193-02-28'), 1::bigint,
    'states 2193-02: one state (K2 at 2193-02; 2193-03 is outside its window)');
ANALYZE pg_temp.cmdm_sync_state;
SELECT results_eq(
    $$SELECT month_end, next_end FROM pg_temp.cmdm_sync_months ORDER BY 1$$,
    $$VALUES ('2193-02-28'::date, '2193-03-31'::date), ('2193-03-31'::date, '9999-12-31'::date)$$,
    'states 2193-02: pg_temp.cmdm_sync_months is 2193-02 -> 2193-03 -> none');
SELECT results_eq(
    $$SELECT k.company_id, k.plan_code, k.product_line_code, s.valid_from, s.valid_to,
             s.contract_status, s.status_year, s.is_strategic, s.is_existing
        FROM pg_temp.cmdm_sync_state s JOIN pg_temp.cmdm_sync_key k USING (key_no)$$,
    $$VALUES ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-02-28'::date, '2193-03-31'::date, '停缴', 2193, false, false)$$,
    'states 2193-02: K2 is 停缴 at 2193-02, up to the next loaded month');

-- ----------------------------------------------- step 3
-- Pieces: [01, 02) 正常 (the old version cut at the window), [02, 03) 停缴 (the state),
-- [03, ∞) 停缴 (the old version after the window): the last two merge.
SELECT is(customer.sync_merge_versions('2193-02-28', true, '2193-03-31'), 2::bigint,
    'merge 2193-02: two versions wanted');
ANALYZE pg_temp.cmdm_sync_old;
ANALYZE pg_temp.cmdm_sync_new;
SELECT results_eq(
    $$SELECT o.contract_id = k.covering_id, o.valid_from, o.valid_to, o.contract_status
        FROM pg_temp.cmdm_sync_old o JOIN pg_temp.cmdm_sync_key k USING (key_no) ORDER BY 2$$,
    $$VALUES (true, '2193-01-31'::date, '2193-03-31'::date, '正常'),
             (false, '2193-03-31'::date, '9999-12-31'::date, '停缴')$$,
    'merge 2193-02: pg_temp.cmdm_sync_old holds K2''s covering version and the one after the window');
SELECT results_eq(
    $$SELECT k.company_id, k.plan_code, k.product_line_code, n.valid_from, n.valid_to,
             n.contract_status, n.status_year, n.is_strategic, n.is_existing
        FROM pg_temp.cmdm_sync_new n JOIN pg_temp.cmdm_sync_key k USING (key_no) ORDER BY 4$$,
    $$VALUES ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '2193-02-28'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '停缴', 2193, false, false)$$,
    'merge 2193-02: pg_temp.cmdm_sync_new merges February''s state with the version after the window');

-- ----------------------------------------------- step 4
SELECT results_eq(
    $$SELECT * FROM customer.sync_write_versions()$$,
    $$VALUES (1::bigint, 1::bigint, 1::bigint, 1::bigint)$$,
    'writes 2193-02: one key changed; one version opened, one closed (moved), one removed');
SELECT results_eq(
    $$SELECT c.valid_from, c.valid_to, c.contract_status::text, c.contract_id = k.covering_id
        FROM customer.customer_plan_contract c
        JOIN pg_temp.cmdm_sync_key k
          ON c.company_id = k.company_id AND c.plan_code = k.plan_code AND c.product_line_code = k.product_line_code
       ORDER BY 1$$,
    $$VALUES ('2193-01-31'::date, '2193-02-28'::date, '正常', true),
             ('2193-02-28'::date, '9999-12-31'::date, '停缴', false)$$,
    'writes 2193-02: K2 is 正常 to 2193-02 (its old row), then 停缴 (a new row)');

-- ----------------------------------------------- step 5
-- this month, the next loaded month, and the changed months through changed_until (2193-03-31)
SELECT is(customer.sync_snapshot_months('2193-02-28', '2193-03-31', '2193-03-31', '{}'),
          ARRAY['2193-02-28', '2193-03-31']::date[],
    'snapshot months 2193-02: this month and the next loaded month');
-- called with other arguments (pg_temp.cmdm_sync_key holds K2 alone, seen before: no
-- first appearance moved): the next loaded month alone, then a re-flagged year's loaded months
-- (as when 2192-12, 2193's reference month, is restated)
SELECT is(customer.sync_snapshot_months('2193-01-31', '2193-02-28', NULL, '{}'),
          ARRAY['2193-01-31', '2193-02-28']::date[],
    'snapshot months: this month and the next loaded month, nothing changed after it');
SELECT is(customer.sync_snapshot_months('2192-12-31', '2193-01-31', NULL, ARRAY[2193]),
          ARRAY['2192-12-31', '2193-01-31', '2193-02-28', '2193-03-31']::date[],
    'snapshot months: this month, the next loaded month and every loaded month of a re-flagged year');

-- ----------------------------------------------- sync_merge_versions' CM002 guard
-- Its header: a version may not span two years (status_year is the year of valid_from).
-- From a history that satisfies ck_contract_status_year the pieces cannot give one: the
-- header's case (a later month loaded, never synced) drops the old piece after the window
-- instead. So the guard is tested with a forged input: K2's February state claims 2192.
UPDATE pg_temp.cmdm_sync_state SET status_year = 2192;
SELECT throws_ok(
    $$SELECT customer.sync_merge_versions('2193-02-28', true, '2193-03-31')$$,
    'CM002', 'the contract history is behind the facts: 2193-02 is loaded but was never synced',
    'merge: a version whose status_year is not the year it starts in raises CM002 (forged state)');

-- ======================================================= the steps left what the sync leaves
TRUNCATE sync_log;
EXECUTE sync('2193-02-01');
EXECUTE sync('2193-03-01');
SELECT results_eq(
    $$SELECT period, keys_changed, versions_opened, versions_closed, versions_removed, versions_reflagged
        FROM sync_log ORDER BY period$$,
    $$VALUES ('2193-02-28'::date, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint),
             ('2193-03-31'::date, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'full syncs of 2193-02 and 2193-03 after the steps change nothing');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P0', 'TAP-PL1', '2192-12-31'::date, '2193-01-31'::date, '正常', 2192, false, false),
             ('TAP-C1', 'TAP-P0', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '停缴', 2193, true, true),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2193-01-31'::date, '9999-12-31'::date, '正常', 2193, true, true),
             ('TAP-C1', 'TAP-P4', 'TAP-PL2', '2193-03-31'::date, '9999-12-31'::date, '正常', 2193, true, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-01-31'::date, '2193-02-28'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2193-02-28'::date, '9999-12-31'::date, '停缴', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-01-31'::date, '2193-02-28'::date, '正常', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-02-28'::date, '2193-03-31'::date, '停缴', 2193, false, false),
             ('TAP-C2', 'TAP-P5', 'TAP-PL2', '2193-03-31'::date, '9999-12-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-01-31'::date, '2193-03-31'::date, '正常', 2193, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2193-03-31'::date, '9999-12-31'::date, '停缴', 2193, false, false)$$,
    'the final TAP history: DESIGN §4 over the facts as they stand');

SELECT * FROM finish();
ROLLBACK;
