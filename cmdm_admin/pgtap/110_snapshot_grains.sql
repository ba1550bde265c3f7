-- cmdm-verify: scratch
-- 110_snapshot_grains: the two grains of customer.refresh_monthly_snapshot(month)
-- (docs/snapshots.md "What a snapshot row is", "Monthly statuses and their grain"): the
-- business table has one row per (company, product line), the plan table one per contract
-- key. A company with two plans in one product line, one of which disappears (and later a
-- third plan, then all of them): the business row's aum_balance is the SUM over the pair's
-- plans and portfolios, plan_count its keys in the population (a suspended plan still
-- counts); the plan rows carry their own aum_balance, and each table speaks for its own row
-- (DESIGN §4): is_churned and is_new_arrival have no grain, so on a plan row they are the
-- plan's (the plan that disappeared is churned while its pair holds assets, and a plan first
-- seen after its pair is a new arrival on its own row, not on the pair's), while the
-- statuses pinned to grain product_line (is_winning_this_year, is_churned_this_year,
-- is_new) are the pair's on every plan row. Events match at grain product_line (their
-- 计划代码 is not a match key). Rejected fact
-- rows (NULL plan code, NULL product line, unknown product line, unknown company) never
-- count: not in aum_balance, not as presence (a pair whose only rows of a month are
-- rejects has disappeared; rejects before a pair's first valid rows do not take away its
-- new arrival), no row of their own.
--
-- Rows kept apart (a scratch suite, yet written to leave any other rows alone):
-- only years 2190-2199, only TAP-* companies, plans, portfolios, branches and product lines
-- (the unknown ones are TAP-C404 and TAP-PL999), and assertions only on TAP-* rows. The
-- sentinel month 2190-01 (a single NULL-company row) is the reference month of 2193 in an
-- empty database (in production the last real month is): TAP flags of 2193 are false.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(12);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线")
VALUES ('TAP-PL1', 'TAP 产品线一'), ('TAP-PL2', 'TAP 产品线二');
INSERT INTO customer."年金客户" (company_id, "客户名称")
VALUES ('TAP-C1', 'pgTAP 客户 1'), ('TAP-C2', 'pgTAP 客户 2');

CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2190-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);
CREATE TEMP TABLE refresh_log ON COMMIT DROP AS
SELECT * FROM customer.refresh_monthly_snapshot('2190-01-01') WITH NO DATA;
PREPARE refresh(date) AS
    INSERT INTO refresh_log SELECT * FROM customer.refresh_monthly_snapshot($1);
-- fact(month, company, plan, product line, portfolio, AUM), branch TAP-B1
PREPARE fact(date, text, text, text, text, numeric) AS
    INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码", "期末资产规模", "机构代码")
    VALUES ($1, $2, $3, $4, $5, $6, 'TAP-B1');
-- the rejected rows, the same every month
PREPARE rejects(date) AS
    INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码", "期末资产规模", "机构代码")
    VALUES ($1, 'TAP-C1', NULL, 'TAP-PL1', 'TAP-G9', 1000, 'TAP-B1'),            -- NULL plan code
           ($1, 'TAP-C2', 'TAP-P5', NULL, 'TAP-G9', 8000, 'TAP-B1'),             -- NULL product line
           ($1, 'TAP-C2', NULL, 'TAP-PL2', 'TAP-G9', 500, 'TAP-B1'),             -- NULL plan code
           ($1, 'TAP-C2', 'TAP-P4', 'TAP-PL999', 'TAP-G9', 4000, 'TAP-B1'),      -- unknown product line
           ($1, 'TAP-C404', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 2000, 'TAP-B1');      -- unknown company

CREATE TEMP VIEW tap_business AS
SELECT snapshot_month, company_id::text, product_line_code::text, aum_balance, plan_count,
       is_new_arrival, is_churned, is_winning_this_year, is_churned_this_year, is_new,
       is_strategic, is_existing
  FROM customer.fct_customer_business_monthly_status
 WHERE company_id LIKE 'TAP-%';
CREATE TEMP VIEW tap_plan AS
SELECT snapshot_month, company_id::text, plan_code::text, product_line_code::text, aum_balance,
       is_new_arrival, is_churned, is_winning_this_year, is_churned_this_year, is_new,
       is_strategic, is_existing
  FROM customer.fct_customer_plan_monthly_status
 WHERE company_id LIKE 'TAP-%';
CREATE TEMP VIEW tap_version AS
SELECT company_id::text, plan_code::text, product_line_code::text, valid_from, valid_to,
       contract_status::text, status_year, is_strategic, is_existing
  FROM customer.customer_plan_contract
 WHERE company_id LIKE 'TAP-%';

-- Facts (branch TAP-B1; portfolio TAP-G1 unless two are shown as G1,G2):
--
--   key (company/plan/product line)   2193-11   2193-12   2194-01   2194-02
--   K1 TAP-C1/TAP-P1/TAP-PL1 G1,G2    60,40     70,0      70,0      -
--   K2 TAP-C1/TAP-P2/TAP-PL1          50        -         -         -       (disappears)
--   K3 TAP-C1/TAP-P3/TAP-PL1          -         -         25        -       (a third plan)
--   K4 TAP-C2/TAP-P4/TAP-PL1          10        10        10        10
--   K5 TAP-C2/TAP-P5/TAP-PL2          -         0         30        30
--   rejects, every month: (C1, NULL plan, PL1) 1000, (C2, P5, NULL product line) 8000,
--   (C2, NULL plan, PL2) 500, (C2, P4, TAP-PL999) 4000, (TAP-C404, P1, PL1) 2000
--
-- Pair (C1, PL1): 150 = 60+40+50 with 2 plans; 70 with 2 plans (P2 suspended); 95 = 70+25
-- with 3; 0 with 3 in 2194-02, where its only row is the NULL-plan reject: disappeared.
-- Pair (C2, PL2): its NULL-plan reject in 2193-11 is no appearance: a new arrival in 2193-12.
-- Events: award (C1, PL1) with 计划代码 TAP-P2, 2193-11-05 -> the pair won in 2193-11 and
-- 2193-12, on all its plan rows; award (C2, PL2) without 计划代码, 2194-01-15 -> 2194-01 and
-- 2194-02; loss (C1, PL1) with 计划代码 TAP-P2, 2194-02-10 -> 2194-02 on all three plan rows.
-- Reference months: 2193 -> sentinel (flags false); 2194 -> 2193-12: C1 (70) and C2 (10)
-- strategic; existing (C1, PL1) 70 and (C2, PL1) 10, not (C2, PL2) (AUM 0).
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');  -- sentinel
EXECUTE sync('2190-01-01');

EXECUTE fact('2193-11-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 60);
EXECUTE fact('2193-11-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G2', 40);
EXECUTE fact('2193-11-01', 'TAP-C1', 'TAP-P2', 'TAP-PL1', 'TAP-G1', 50);
EXECUTE fact('2193-11-01', 'TAP-C2', 'TAP-P4', 'TAP-PL1', 'TAP-G1', 10);
EXECUTE rejects('2193-11-01');
EXECUTE sync('2193-11-01');

EXECUTE fact('2193-12-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 70);
EXECUTE fact('2193-12-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G2', 0);
EXECUTE fact('2193-12-01', 'TAP-C2', 'TAP-P4', 'TAP-PL1', 'TAP-G1', 10);
EXECUTE fact('2193-12-01', 'TAP-C2', 'TAP-P5', 'TAP-PL2', 'TAP-G1', 0);
EXECUTE rejects('2193-12-01');
EXECUTE sync('2193-12-01');

EXECUTE fact('2194-01-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 70);
EXECUTE fact('2194-01-01', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G2', 0);
EXECUTE fact('2194-01-01', 'TAP-C1', 'TAP-P3', 'TAP-PL1', 'TAP-G1', 25);
EXECUTE fact('2194-01-01', 'TAP-C2', 'TAP-P4', 'TAP-PL1', 'TAP-G1', 10);
EXECUTE fact('2194-01-01', 'TAP-C2', 'TAP-P5', 'TAP-PL2', 'TAP-G1', 30);
EXECUTE rejects('2194-01-01');
EXECUTE sync('2194-01-01');

EXECUTE fact('2194-02-01', 'TAP-C2', 'TAP-P4', 'TAP-PL1', 'TAP-G1', 10);
EXECUTE fact('2194-02-01', 'TAP-C2', 'TAP-P5', 'TAP-PL2', 'TAP-G1', 30);
EXECUTE rejects('2194-02-01');
EXECUTE sync('2194-02-01');

INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
VALUES ('TAP-C1', 'TAP-PL1', 'TAP-P2', '2193-11-05'),
       ('TAP-C2', 'TAP-PL2', NULL, '2194-01-15');
INSERT INTO customer."当年流失" (company_id, "产品线代码", "计划代码", "上报月份")
VALUES ('TAP-C1', 'TAP-PL1', 'TAP-P2', '2194-02-10');

EXECUTE refresh('2193-11-01');
EXECUTE refresh('2193-12-01');
EXECUTE refresh('2194-01-01');
EXECUTE refresh('2194-02-01');

-- ======================================================= the rejects were in the facts
SELECT results_eq(
    $$SELECT period, keys_seen, rejected_null_key, rejected_unknown_product_line, rejected_unknown_company
        FROM sync_log WHERE period > '2190-12-31' ORDER BY period$$,
    $$VALUES ('2193-11-30'::date, 3::bigint, 3::bigint, 1::bigint, 1::bigint),
             ('2193-12-31'::date, 3::bigint, 3::bigint, 1::bigint, 1::bigint),
             ('2194-01-31'::date, 4::bigint, 3::bigint, 1::bigint, 1::bigint),
             ('2194-02-28'::date, 2::bigint, 3::bigint, 1::bigint, 1::bigint)$$,
    'every month holds the five rejected rows (three NULL key parts, an unknown product line, an unknown company)');

SELECT results_eq(
    $$SELECT snapshot_month, business_rows, plan_rows FROM refresh_log ORDER BY 1$$,
    $$VALUES ('2193-11-30'::date, 2::bigint, 3::bigint), ('2193-12-31'::date, 3::bigint, 4::bigint),
             ('2194-01-31'::date, 3::bigint, 5::bigint), ('2194-02-28'::date, 3::bigint, 5::bigint)$$,
    'refresh returns the rows of each table: pairs on the business table, contract keys on the plan table');

-- ======================================================= the exact rows
-- columns: month, company, product line, aum_balance, plan_count, is_new_arrival, is_churned,
--          is_winning_this_year, is_churned_this_year, is_new, is_strategic, is_existing
SELECT results_eq(
    $$SELECT * FROM tap_business ORDER BY 1, 2, 3$$,
    $$VALUES ('2193-11-30'::date, 'TAP-C1', 'TAP-PL1', 150.00, 2, true,  false, true,  false, true,  false, false),
             ('2193-11-30'::date, 'TAP-C2', 'TAP-PL1',  10.00, 1, true,  false, false, false, false, false, false),
             ('2193-12-31'::date, 'TAP-C1', 'TAP-PL1',  70.00, 2, false, false, true,  false, true,  false, false),
             ('2193-12-31'::date, 'TAP-C2', 'TAP-PL1',  10.00, 1, false, false, false, false, false, false, false),
             ('2193-12-31'::date, 'TAP-C2', 'TAP-PL2',   0.00, 1, true,  true,  false, false, false, false, false),
             ('2194-01-31'::date, 'TAP-C1', 'TAP-PL1',  95.00, 3, false, false, false, false, false, true,  true),
             ('2194-01-31'::date, 'TAP-C2', 'TAP-PL1',  10.00, 1, false, false, false, false, false, true,  true),
             ('2194-01-31'::date, 'TAP-C2', 'TAP-PL2',  30.00, 1, false, false, true,  false, true,  true,  false),
             ('2194-02-28'::date, 'TAP-C1', 'TAP-PL1',   0.00, 3, false, true,  false, true,  false, true,  true),
             ('2194-02-28'::date, 'TAP-C2', 'TAP-PL1',  10.00, 1, false, false, false, false, false, true,  true),
             ('2194-02-28'::date, 'TAP-C2', 'TAP-PL2',  30.00, 1, false, false, true,  false, true,  true,  false)$$,
    'business snapshot (grain company x product line): the exact TAP rows');

-- columns: month, company, plan, product line, aum_balance, is_new_arrival, is_churned,
--          is_winning_this_year, is_churned_this_year, is_new, is_strategic, is_existing
SELECT results_eq(
    $$SELECT * FROM tap_plan ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('2193-11-30'::date, 'TAP-C1', 'TAP-P1', 'TAP-PL1', 100.00, true,  false, true,  false, true,  false, false),
             ('2193-11-30'::date, 'TAP-C1', 'TAP-P2', 'TAP-PL1',  50.00, true,  false, true,  false, true,  false, false),
             ('2193-11-30'::date, 'TAP-C2', 'TAP-P4', 'TAP-PL1',  10.00, true,  false, false, false, false, false, false),
             ('2193-12-31'::date, 'TAP-C1', 'TAP-P1', 'TAP-PL1',  70.00, false, false, true,  false, true,  false, false),
             ('2193-12-31'::date, 'TAP-C1', 'TAP-P2', 'TAP-PL1',   0.00, false, true,  true,  false, true,  false, false),
             ('2193-12-31'::date, 'TAP-C2', 'TAP-P4', 'TAP-PL1',  10.00, false, false, false, false, false, false, false),
             ('2193-12-31'::date, 'TAP-C2', 'TAP-P5', 'TAP-PL2',   0.00, true,  true,  false, false, false, false, false),
             ('2194-01-31'::date, 'TAP-C1', 'TAP-P1', 'TAP-PL1',  70.00, false, false, false, false, false, true,  true),
             ('2194-01-31'::date, 'TAP-C1', 'TAP-P2', 'TAP-PL1',   0.00, false, true,  false, false, false, true,  true),
             ('2194-01-31'::date, 'TAP-C1', 'TAP-P3', 'TAP-PL1',  25.00, true,  false, false, false, false, true,  true),
             ('2194-01-31'::date, 'TAP-C2', 'TAP-P4', 'TAP-PL1',  10.00, false, false, false, false, false, true,  true),
             ('2194-01-31'::date, 'TAP-C2', 'TAP-P5', 'TAP-PL2',  30.00, false, false, true,  false, true,  true,  false),
             ('2194-02-28'::date, 'TAP-C1', 'TAP-P1', 'TAP-PL1',   0.00, false, true,  false, true,  false, true,  true),
             ('2194-02-28'::date, 'TAP-C1', 'TAP-P2', 'TAP-PL1',   0.00, false, true,  false, true,  false, true,  true),
             ('2194-02-28'::date, 'TAP-C1', 'TAP-P3', 'TAP-PL1',   0.00, false, true,  false, true,  false, true,  true),
             ('2194-02-28'::date, 'TAP-C2', 'TAP-P4', 'TAP-PL1',  10.00, false, false, false, false, false, true,  true),
             ('2194-02-28'::date, 'TAP-C2', 'TAP-P5', 'TAP-PL2',  30.00, false, false, true,  false, true,  true,  false)$$,
    'plan snapshot (grain contract key): the exact TAP rows');

-- ======================================================= one plan disappears, its pair stays
-- 2193-12: TAP-P2 has no facts (its version 停缴, still in the population): its plan row
-- has AUM 0 and is churned (it disappeared), while the pair is not (C1 still holds 70 in
-- TAP-PL1); the business row counts both plans and sums only TAP-P1's facts.
SELECT results_eq(
    $$SELECT p.plan_code, p.aum_balance, p.is_churned, v.contract_status, b.aum_balance, b.plan_count, b.is_churned
        FROM tap_plan p
        JOIN tap_version v
          ON (v.company_id, v.plan_code, v.product_line_code) = (p.company_id, p.plan_code, p.product_line_code)
         AND v.valid_from <= p.snapshot_month AND p.snapshot_month < v.valid_to
        JOIN tap_business b
          ON (b.snapshot_month, b.company_id, b.product_line_code) = (p.snapshot_month, p.company_id, p.product_line_code)
       WHERE p.snapshot_month = '2193-12-31' AND p.company_id = 'TAP-C1'
       ORDER BY 1$$,
    $$VALUES ('TAP-P1', 70.00, false, '正常', 70.00, 2, false),
             ('TAP-P2', 0.00, true, '停缴', 70.00, 2, false)$$,
    'a plan that disappeared while its pair holds assets: own AUM 0, churned on its own row, not on the pair''s; still counted in plan_count');
-- 2194-01: TAP-P3 first appears, the pair did in 2193-11: a new arrival on its own plan row
-- only; TAP-P2, still suspended, has AUM 0: churned.
-- 2194-02: all three plans gone: the pair disappeared, every plan row says so.
SELECT results_eq(
    $$SELECT snapshot_month, plan_code, is_new_arrival, is_churned FROM tap_plan
       WHERE company_id = 'TAP-C1' AND snapshot_month >= '2194-01-01' ORDER BY 1, 2$$,
    $$VALUES ('2194-01-31'::date, 'TAP-P1', false, false), ('2194-01-31'::date, 'TAP-P2', false, true),
             ('2194-01-31'::date, 'TAP-P3', true, false),
             ('2194-02-28'::date, 'TAP-P1', false, true), ('2194-02-28'::date, 'TAP-P2', false, true),
             ('2194-02-28'::date, 'TAP-P3', false, true)$$,
    'a plan first seen after its pair is a new arrival on its own row; when the pair disappears, every plan row is churned');

-- ======================================================= the grains agree
SELECT is_empty(
    $$SELECT p.snapshot_month, p.company_id, p.plan_code, p.product_line_code
        FROM tap_plan p
        LEFT JOIN tap_business b USING (snapshot_month, company_id, product_line_code)
       WHERE (p.is_winning_this_year, p.is_churned_this_year, p.is_new)
             IS DISTINCT FROM
             (b.is_winning_this_year, b.is_churned_this_year, b.is_new)$$,
    'every plan row shows its pair''s value of the statuses pinned to grain product_line');
SELECT is_empty(
    $$SELECT b.snapshot_month, b.company_id, b.product_line_code
        FROM tap_business b
        LEFT JOIN (SELECT snapshot_month, company_id, product_line_code, count(*)::int AS plans,
                          sum(aum_balance) AS aum, bool_or(is_strategic) AS is_strategic,
                          bool_or(is_existing) AS is_existing
                     FROM tap_plan GROUP BY 1, 2, 3) p USING (snapshot_month, company_id, product_line_code)
       WHERE (b.plan_count, b.aum_balance, b.is_strategic, b.is_existing)
             IS DISTINCT FROM (p.plans, p.aum, p.is_strategic, p.is_existing)$$,
    'every business row: plan_count = its plan rows, aum_balance = their sum, annual statuses = their bool_or');

-- ======================================================= events match at grain product_line
SELECT results_eq(
    $$SELECT snapshot_month, plan_code, is_winning_this_year, is_churned_this_year FROM tap_plan
       WHERE company_id = 'TAP-C1' ORDER BY 1, 2$$,
    $$VALUES ('2193-11-30'::date, 'TAP-P1', true, false), ('2193-11-30'::date, 'TAP-P2', true, false),
             ('2193-12-31'::date, 'TAP-P1', true, false), ('2193-12-31'::date, 'TAP-P2', true, false),
             ('2194-01-31'::date, 'TAP-P1', false, false), ('2194-01-31'::date, 'TAP-P2', false, false),
             ('2194-01-31'::date, 'TAP-P3', false, false),
             ('2194-02-28'::date, 'TAP-P1', false, true), ('2194-02-28'::date, 'TAP-P2', false, true),
             ('2194-02-28'::date, 'TAP-P3', false, true)$$,
    'an award or loss naming one plan (TAP-P2) is the pair''s: it shows on every plan row of the pair');

-- ======================================================= rejects never count
-- Valid TAP facts per month: 160 (150 + 10), 80 (70 + 10 + 0), 135 (95 + 10 + 30), 40 (10 + 30);
-- the rejects (15500 a month) are in none of them.
SELECT results_eq(
    $$SELECT snapshot_month, sum(aum_balance) FROM tap_business GROUP BY 1 ORDER BY 1$$,
    $$VALUES ('2193-11-30'::date, 160.00), ('2193-12-31'::date, 80.00),
             ('2194-01-31'::date, 135.00), ('2194-02-28'::date, 40.00)$$,
    'business aum_balance: rejected rows (NULL plan code or product line, unknown product line or company) never counted');
SELECT results_eq(
    $$SELECT snapshot_month, sum(aum_balance) FROM tap_plan GROUP BY 1 ORDER BY 1$$,
    $$VALUES ('2193-11-30'::date, 160.00), ('2193-12-31'::date, 80.00),
             ('2194-01-31'::date, 135.00), ('2194-02-28'::date, 40.00)$$,
    'plan aum_balance: rejected rows never counted either');
SELECT is_empty(
    $$SELECT snapshot_month, company_id, product_line_code FROM customer.fct_customer_business_monthly_status
       WHERE company_id = 'TAP-C404' OR product_line_code = 'TAP-PL999'
         OR (company_id LIKE 'TAP-%' AND snapshot_month BETWEEN '2193-01-01' AND '2194-12-31'
             AND (company_id, product_line_code) NOT IN (('TAP-C1', 'TAP-PL1'), ('TAP-C2', 'TAP-PL1'), ('TAP-C2', 'TAP-PL2')))
      UNION ALL
      SELECT snapshot_month, company_id, product_line_code FROM customer.fct_customer_plan_monthly_status
       WHERE company_id = 'TAP-C404' OR product_line_code = 'TAP-PL999'
         OR (company_id LIKE 'TAP-%' AND snapshot_month BETWEEN '2193-01-01' AND '2194-12-31'
             AND plan_code NOT IN ('TAP-P1', 'TAP-P2', 'TAP-P3', 'TAP-P4', 'TAP-P5'))$$,
    'rejected rows make no snapshot row of their own');

SELECT * FROM finish();
ROLLBACK;
