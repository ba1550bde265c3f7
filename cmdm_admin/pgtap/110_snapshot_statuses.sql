-- cmdm-verify: scratch
-- 110_snapshot_statuses: customer.refresh_monthly_snapshot(month), status by status
-- (docs/snapshots.md, DESIGN §4, rules/statuses.yml). Four months are loaded, each synced in
-- ascending order, then each snapshot is refreshed; the exact rows of both snapshot tables,
-- then one concern at a time:
--   is_winning_this_year / is_churned_this_year: events of the snapshot's calendar year up to
--     its month-end (an award of December 2191 is not seen in January 2192; one reported in
--     November is not seen in March, but in November and December; one dated after the
--     month-end is not seen); an award without facts makes no row;
--   is_new vs is_existing: won this year with AUM > 0 in the product line at the reference
--     month -> existing, not new; without (no facts, or AUM 0) -> new;
--   is_new_arrival: the row's key's first loaded month with facts, once: on the business
--     table the pair's (a second plan of the pair appearing later does not make the pair a
--     new arrival again), on the plan table the plan's (that second plan is one, on its row);
--   is_churned: disappeared since the previous loaded month (under on_missing suspend the
--     key stays in the population, 停缴, AUM 0 -> still churned the month after), or month
--     AUM <= 0 (a single portfolio at 0, portfolios summing to a negative; a zero portfolio
--     beside a positive one is not churned);
--   aum_balance is the SUM over portfolios and plans, plan_count the keys of the pair;
--   is_strategic / is_existing are the covering versions' (bool_or on the business table);
--   the population is exactly the keys with a version covering the month.
--
-- Rows kept apart (a scratch suite, yet written to leave any other rows alone):
-- only years 2190-2199, only TAP-* companies, plans, portfolios, branches and product lines,
-- and assertions only on TAP-* rows. The sentinel month 2190-01 holds a single fact row that
-- is no contract (NULL company): it is the reference month of 2191 in an empty database (in
-- production the last real month is), so 2191's TAP annual flags are false everywhere.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(18);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线")
VALUES ('TAP-PL1', 'TAP 产品线一'), ('TAP-PL2', 'TAP 产品线二');
INSERT INTO customer."年金客户" (company_id, "客户名称")
SELECT c, 'pgTAP ' || c
  FROM unnest(ARRAY['TAP-C1', 'TAP-C2', 'TAP-C3', 'TAP-C4', 'TAP-C5', 'TAP-C6']) c;

CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2190-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);
CREATE TEMP TABLE refresh_log ON COMMIT DROP AS
SELECT * FROM customer.refresh_monthly_snapshot('2190-01-01') WITH NO DATA;
PREPARE refresh(date) AS
    INSERT INTO refresh_log SELECT * FROM customer.refresh_monthly_snapshot($1);

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

-- Facts (branch TAP-B1 for all; portfolio TAP-G1 unless two are shown as G1,G2):
--
--   key (company/plan/product line)   2191-03   2191-11   2191-12   2192-01
--   K1 TAP-C1/TAP-P1/TAP-PL1 G1,G2    100,0     100,20    150,0     200,0
--   K2 TAP-C1/TAP-P2/TAP-PL1          -         30        30        30      (2nd plan of the pair)
--   K3 TAP-C1/TAP-P3/TAP-PL2          -         -         -         40
--   K4 TAP-C2/TAP-P4/TAP-PL1          50        50        -         -       (disappears)
--   K5 TAP-C3/TAP-P5/TAP-PL1          10        0         0         10
--   K6 TAP-C3/TAP-P6/TAP-PL2          -         -         5         5
--   K7 TAP-C4/TAP-P7/TAP-PL2 G1,G2    -         50,-80    20,0      20,0
--   K8 TAP-C5/TAP-P8/TAP-PL1          60        60        60        60
--
-- Awards (当年中标), by (company, product line):
--   (C5, PL1) 2191-11-15 -> 2191-11, 2191-12; not 2191-03 (before), not 2192-01 (next year)
--   (C5, PL1) 2192-02-01 -> after 2192-01's month-end: not in 2192-01
--   (C4, PL2) 2191-12-31 -> 2191-12 (the month-end itself); not 2192-01
--   (C1, PL1) 2192-01-20, (C1, PL2) 2192-01-05, (C3, PL1) 2192-01-31 -> 2192-01
--   (C6, PL1) 2191-11-01 -> C6 has no facts: no row at all
-- Losses (当年流失): (C2, PL1) 2191-11-20 -> 2191-11, 2191-12; not 2191-03, not 2192-01.
--
-- Reference months: 2191 -> the sentinel (or production's last month): TAP flags false;
-- 2192 -> 2191-12. Company totals at 2191-12: C1 180, C5 60, C4 20, C3 5 (all in the top 10
-- of TAP-B1: strategic), C2 none (not strategic). Existing in 2192 (AUM > 0 at 2191-12):
-- (C1, PL1) 180, (C3, PL2) 5, (C4, PL2) 20, (C5, PL1) 60; not (C1, PL2) (no facts),
-- (C2, PL1) (no facts), (C3, PL1) (AUM 0).
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');  -- sentinel
EXECUTE sync('2190-01-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2191-03-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2191-03-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 0, 'TAP-B1'),
       ('2191-03-01', 'TAP-P4', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 50, 'TAP-B1'),
       ('2191-03-01', 'TAP-P5', 'TAP-C3', 'TAP-PL1', 'TAP-G1', 10, 'TAP-B1'),
       ('2191-03-01', 'TAP-P8', 'TAP-C5', 'TAP-PL1', 'TAP-G1', 60, 'TAP-B1');
EXECUTE sync('2191-03-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2191-11-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2191-11-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 20, 'TAP-B1'),
       ('2191-11-01', 'TAP-P2', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 30, 'TAP-B1'),
       ('2191-11-01', 'TAP-P4', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 50, 'TAP-B1'),
       ('2191-11-01', 'TAP-P5', 'TAP-C3', 'TAP-PL1', 'TAP-G1', 0, 'TAP-B1'),
       ('2191-11-01', 'TAP-P7', 'TAP-C4', 'TAP-PL2', 'TAP-G1', 50, 'TAP-B1'),
       ('2191-11-01', 'TAP-P7', 'TAP-C4', 'TAP-PL2', 'TAP-G2', -80, 'TAP-B1'),
       ('2191-11-01', 'TAP-P8', 'TAP-C5', 'TAP-PL1', 'TAP-G1', 60, 'TAP-B1');
EXECUTE sync('2191-11-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2191-12-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 150, 'TAP-B1'),
       ('2191-12-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 0, 'TAP-B1'),
       ('2191-12-01', 'TAP-P2', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 30, 'TAP-B1'),
       ('2191-12-01', 'TAP-P5', 'TAP-C3', 'TAP-PL1', 'TAP-G1', 0, 'TAP-B1'),
       ('2191-12-01', 'TAP-P6', 'TAP-C3', 'TAP-PL2', 'TAP-G1', 5, 'TAP-B1'),
       ('2191-12-01', 'TAP-P7', 'TAP-C4', 'TAP-PL2', 'TAP-G1', 20, 'TAP-B1'),
       ('2191-12-01', 'TAP-P7', 'TAP-C4', 'TAP-PL2', 'TAP-G2', 0, 'TAP-B1'),
       ('2191-12-01', 'TAP-P8', 'TAP-C5', 'TAP-PL1', 'TAP-G1', 60, 'TAP-B1');
EXECUTE sync('2191-12-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2192-01-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 200, 'TAP-B1'),
       ('2192-01-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 0, 'TAP-B1'),
       ('2192-01-01', 'TAP-P2', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 30, 'TAP-B1'),
       ('2192-01-01', 'TAP-P3', 'TAP-C1', 'TAP-PL2', 'TAP-G1', 40, 'TAP-B1'),
       ('2192-01-01', 'TAP-P5', 'TAP-C3', 'TAP-PL1', 'TAP-G1', 10, 'TAP-B1'),
       ('2192-01-01', 'TAP-P6', 'TAP-C3', 'TAP-PL2', 'TAP-G1', 5, 'TAP-B1'),
       ('2192-01-01', 'TAP-P7', 'TAP-C4', 'TAP-PL2', 'TAP-G1', 20, 'TAP-B1'),
       ('2192-01-01', 'TAP-P7', 'TAP-C4', 'TAP-PL2', 'TAP-G2', 0, 'TAP-B1'),
       ('2192-01-01', 'TAP-P8', 'TAP-C5', 'TAP-PL1', 'TAP-G1', 60, 'TAP-B1');
EXECUTE sync('2192-01-01');

INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
VALUES ('TAP-C5', 'TAP-PL1', 'TAP-P8', '2191-11-15'),
       ('TAP-C5', 'TAP-PL1', 'TAP-P8', '2192-02-01'),
       ('TAP-C4', 'TAP-PL2', 'TAP-P7', '2191-12-31'),
       ('TAP-C1', 'TAP-PL1', 'TAP-P1', '2192-01-20'),
       ('TAP-C1', 'TAP-PL2', 'TAP-P3', '2192-01-05'),
       ('TAP-C3', 'TAP-PL1', 'TAP-P5', '2192-01-31'),
       ('TAP-C6', 'TAP-PL1', 'TAP-P9', '2191-11-01');
INSERT INTO customer."当年流失" (company_id, "产品线代码", "计划代码", "上报月份")
VALUES ('TAP-C2', 'TAP-PL1', 'TAP-P4', '2191-11-20');

EXECUTE refresh('2191-03-01');
EXECUTE refresh('2191-11-30');
EXECUTE refresh('2191-12-15');
EXECUTE refresh('2192-01-31');

-- ======================================================= what the refresh returns
-- Any day names the month; the first refresh of a month inserts every row (these months
-- hold TAP rows only).
SELECT results_eq(
    $$SELECT snapshot_month, business_rows, business_inserted, business_updated, business_deleted,
             plan_rows, plan_inserted, plan_updated, plan_deleted
        FROM refresh_log ORDER BY snapshot_month$$,
    $$VALUES ('2191-03-31'::date, 4::bigint, 4::bigint, 0::bigint, 0::bigint, 4::bigint, 4::bigint, 0::bigint, 0::bigint),
             ('2191-11-30'::date, 5::bigint, 5::bigint, 0::bigint, 0::bigint, 6::bigint, 6::bigint, 0::bigint, 0::bigint),
             ('2191-12-31'::date, 6::bigint, 6::bigint, 0::bigint, 0::bigint, 7::bigint, 7::bigint, 0::bigint, 0::bigint),
             ('2192-01-31'::date, 7::bigint, 7::bigint, 0::bigint, 0::bigint, 8::bigint, 8::bigint, 0::bigint, 0::bigint)$$,
    'each refresh returns its month-end, the rows of the month and that it inserted them all');

-- ======================================================= the exact rows
-- columns: month, company, product line, aum_balance, plan_count, is_new_arrival, is_churned,
--          is_winning_this_year, is_churned_this_year, is_new, is_strategic, is_existing
SELECT results_eq(
    $$SELECT * FROM tap_business ORDER BY 1, 2, 3$$,
    $$VALUES ('2191-03-31'::date, 'TAP-C1', 'TAP-PL1', 100.00, 1, true,  false, false, false, false, false, false),
             ('2191-03-31'::date, 'TAP-C2', 'TAP-PL1',  50.00, 1, true,  false, false, false, false, false, false),
             ('2191-03-31'::date, 'TAP-C3', 'TAP-PL1',  10.00, 1, true,  false, false, false, false, false, false),
             ('2191-03-31'::date, 'TAP-C5', 'TAP-PL1',  60.00, 1, true,  false, false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C1', 'TAP-PL1', 150.00, 2, false, false, false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C2', 'TAP-PL1',  50.00, 1, false, false, false, true,  false, false, false),
             ('2191-11-30'::date, 'TAP-C3', 'TAP-PL1',   0.00, 1, false, true,  false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C4', 'TAP-PL2', -30.00, 1, true,  true,  false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C5', 'TAP-PL1',  60.00, 1, false, false, true,  false, true,  false, false),
             ('2191-12-31'::date, 'TAP-C1', 'TAP-PL1', 180.00, 2, false, false, false, false, false, false, false),
             ('2191-12-31'::date, 'TAP-C2', 'TAP-PL1',   0.00, 1, false, true,  false, true,  false, false, false),
             ('2191-12-31'::date, 'TAP-C3', 'TAP-PL1',   0.00, 1, false, true,  false, false, false, false, false),
             ('2191-12-31'::date, 'TAP-C3', 'TAP-PL2',   5.00, 1, true,  false, false, false, false, false, false),
             ('2191-12-31'::date, 'TAP-C4', 'TAP-PL2',  20.00, 1, false, false, true,  false, true,  false, false),
             ('2191-12-31'::date, 'TAP-C5', 'TAP-PL1',  60.00, 1, false, false, true,  false, true,  false, false),
             ('2192-01-31'::date, 'TAP-C1', 'TAP-PL1', 230.00, 2, false, false, true,  false, false, true,  true),
             ('2192-01-31'::date, 'TAP-C1', 'TAP-PL2',  40.00, 1, true,  false, true,  false, true,  true,  false),
             ('2192-01-31'::date, 'TAP-C2', 'TAP-PL1',   0.00, 1, false, true,  false, false, false, false, false),
             ('2192-01-31'::date, 'TAP-C3', 'TAP-PL1',  10.00, 1, false, false, true,  false, true,  true,  false),
             ('2192-01-31'::date, 'TAP-C3', 'TAP-PL2',   5.00, 1, false, false, false, false, false, true,  true),
             ('2192-01-31'::date, 'TAP-C4', 'TAP-PL2',  20.00, 1, false, false, false, false, false, true,  true),
             ('2192-01-31'::date, 'TAP-C5', 'TAP-PL1',  60.00, 1, false, false, false, false, false, true,  true)$$,
    'business snapshot: the exact TAP rows of the four months');

-- columns: month, company, plan, product line, aum_balance, is_new_arrival, is_churned,
--          is_winning_this_year, is_churned_this_year, is_new, is_strategic, is_existing
-- The statuses pinned to grain product_line are the pair's on every plan row of the pair;
-- is_new_arrival and is_churned (no grain) are each plan's own.
SELECT results_eq(
    $$SELECT * FROM tap_plan ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('2191-03-31'::date, 'TAP-C1', 'TAP-P1', 'TAP-PL1', 100.00, true,  false, false, false, false, false, false),
             ('2191-03-31'::date, 'TAP-C2', 'TAP-P4', 'TAP-PL1',  50.00, true,  false, false, false, false, false, false),
             ('2191-03-31'::date, 'TAP-C3', 'TAP-P5', 'TAP-PL1',  10.00, true,  false, false, false, false, false, false),
             ('2191-03-31'::date, 'TAP-C5', 'TAP-P8', 'TAP-PL1',  60.00, true,  false, false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C1', 'TAP-P1', 'TAP-PL1', 120.00, false, false, false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C1', 'TAP-P2', 'TAP-PL1',  30.00, true,  false, false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C2', 'TAP-P4', 'TAP-PL1',  50.00, false, false, false, true,  false, false, false),
             ('2191-11-30'::date, 'TAP-C3', 'TAP-P5', 'TAP-PL1',   0.00, false, true,  false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C4', 'TAP-P7', 'TAP-PL2', -30.00, true,  true,  false, false, false, false, false),
             ('2191-11-30'::date, 'TAP-C5', 'TAP-P8', 'TAP-PL1',  60.00, false, false, true,  false, true,  false, false),
             ('2191-12-31'::date, 'TAP-C1', 'TAP-P1', 'TAP-PL1', 150.00, false, false, false, false, false, false, false),
             ('2191-12-31'::date, 'TAP-C1', 'TAP-P2', 'TAP-PL1',  30.00, false, false, false, false, false, false, false),
             ('2191-12-31'::date, 'TAP-C2', 'TAP-P4', 'TAP-PL1',   0.00, false, true,  false, true,  false, false, false),
             ('2191-12-31'::date, 'TAP-C3', 'TAP-P5', 'TAP-PL1',   0.00, false, true,  false, false, false, false, false),
             ('2191-12-31'::date, 'TAP-C3', 'TAP-P6', 'TAP-PL2',   5.00, true,  false, false, false, false, false, false),
             ('2191-12-31'::date, 'TAP-C4', 'TAP-P7', 'TAP-PL2',  20.00, false, false, true,  false, true,  false, false),
             ('2191-12-31'::date, 'TAP-C5', 'TAP-P8', 'TAP-PL1',  60.00, false, false, true,  false, true,  false, false),
             ('2192-01-31'::date, 'TAP-C1', 'TAP-P1', 'TAP-PL1', 200.00, false, false, true,  false, false, true,  true),
             ('2192-01-31'::date, 'TAP-C1', 'TAP-P2', 'TAP-PL1',  30.00, false, false, true,  false, false, true,  true),
             ('2192-01-31'::date, 'TAP-C1', 'TAP-P3', 'TAP-PL2',  40.00, true,  false, true,  false, true,  true,  false),
             ('2192-01-31'::date, 'TAP-C2', 'TAP-P4', 'TAP-PL1',   0.00, false, true,  false, false, false, false, false),
             ('2192-01-31'::date, 'TAP-C3', 'TAP-P5', 'TAP-PL1',  10.00, false, false, true,  false, true,  true,  false),
             ('2192-01-31'::date, 'TAP-C3', 'TAP-P6', 'TAP-PL2',   5.00, false, false, false, false, false, true,  true),
             ('2192-01-31'::date, 'TAP-C4', 'TAP-P7', 'TAP-PL2',  20.00, false, false, false, false, false, true,  true),
             ('2192-01-31'::date, 'TAP-C5', 'TAP-P8', 'TAP-PL1',  60.00, false, false, false, false, false, true,  true)$$,
    'plan snapshot: the exact TAP rows of the four months');

-- ======================================================= is_winning_this_year: the calendar year, up to the month-end
-- (C5, PL1): reported 2191-11-15 -> not in March, in November and December, not in January
-- 2192; the award of 2192-02-01 is after January's month-end. (C4, PL2): reported on
-- 2191-12-31 -> December (the month-end counts), not January 2192.
SELECT results_eq(
    $$SELECT snapshot_month, company_id, product_line_code, is_winning_this_year
        FROM tap_business WHERE (company_id, product_line_code) IN (('TAP-C5', 'TAP-PL1'), ('TAP-C4', 'TAP-PL2'))
       ORDER BY 2, 1$$,
    $$VALUES ('2191-11-30'::date, 'TAP-C4', 'TAP-PL2', false),
             ('2191-12-31'::date, 'TAP-C4', 'TAP-PL2', true),
             ('2192-01-31'::date, 'TAP-C4', 'TAP-PL2', false),
             ('2191-03-31'::date, 'TAP-C5', 'TAP-PL1', false),
             ('2191-11-30'::date, 'TAP-C5', 'TAP-PL1', true),
             ('2191-12-31'::date, 'TAP-C5', 'TAP-PL1', true),
             ('2192-01-31'::date, 'TAP-C5', 'TAP-PL1', false)$$,
    'is_winning_this_year: awards of the snapshot''s year up to its month-end, not before, not the year before');

SELECT is_empty(
    $$SELECT snapshot_month FROM customer.fct_customer_business_monthly_status WHERE company_id = 'TAP-C6'
      UNION ALL
      SELECT snapshot_month FROM customer.fct_customer_plan_monthly_status WHERE company_id = 'TAP-C6'$$,
    'an award of a company without facts (no contract version) makes no snapshot row');

-- ======================================================= is_churned_this_year
SELECT results_eq(
    $$SELECT snapshot_month, is_churned_this_year, is_churned FROM tap_business
       WHERE company_id = 'TAP-C2' ORDER BY 1$$,
    $$VALUES ('2191-03-31'::date, false, false),
             ('2191-11-30'::date, true, false),
             ('2191-12-31'::date, true, true),
             ('2192-01-31'::date, false, true)$$,
    'is_churned_this_year: the loss reported 2191-11-20 counts in November and December 2191 only (whether or not the assets left)');

-- ======================================================= is_new vs is_existing (2192, reference month 2191-12)
-- won this year: (C1, PL1) had 180 at 2191-12 -> existing, not new; (C1, PL2) had no facts
-- and (C3, PL1) had AUM 0 (AUM > 0 is required) -> not existing, new. Not won -> not new.
SELECT results_eq(
    $$SELECT company_id, product_line_code, is_winning_this_year, is_existing, is_new
        FROM tap_business WHERE snapshot_month = '2192-01-31' ORDER BY 1, 2$$,
    $$VALUES ('TAP-C1', 'TAP-PL1', true,  true,  false),
             ('TAP-C1', 'TAP-PL2', true,  false, true),
             ('TAP-C2', 'TAP-PL1', false, false, false),
             ('TAP-C3', 'TAP-PL1', true,  false, true),
             ('TAP-C3', 'TAP-PL2', false, true,  false),
             ('TAP-C4', 'TAP-PL2', false, true,  false),
             ('TAP-C5', 'TAP-PL1', false, true,  false)$$,
    'is_new = won this year and not existing (AUM > 0 in the product line at the reference month)');

SELECT is_empty(
    $$SELECT * FROM tap_business
       WHERE snapshot_month < '2192-01-01' AND (is_existing OR is_new IS DISTINCT FROM is_winning_this_year)$$,
    'in 2191 (no TAP facts at its reference month) nothing is existing, so is_new = is_winning_this_year');

-- ======================================================= is_new_arrival: the pair's first loaded month with facts
-- (C1, PL1): 2191-03 only, although its second plan TAP-P2 first appears in 2191-11;
-- (C4, PL2) 2191-11 (at a negative AUM: rows are rows); (C3, PL2) 2191-12; (C1, PL2) 2192-01.
SELECT results_eq(
    $$SELECT snapshot_month, company_id, product_line_code FROM tap_business
       WHERE is_new_arrival ORDER BY 1, 2, 3$$,
    $$VALUES ('2191-03-31'::date, 'TAP-C1', 'TAP-PL1'), ('2191-03-31'::date, 'TAP-C2', 'TAP-PL1'),
             ('2191-03-31'::date, 'TAP-C3', 'TAP-PL1'), ('2191-03-31'::date, 'TAP-C5', 'TAP-PL1'),
             ('2191-11-30'::date, 'TAP-C4', 'TAP-PL2'), ('2191-12-31'::date, 'TAP-C3', 'TAP-PL2'),
             ('2192-01-31'::date, 'TAP-C1', 'TAP-PL2')$$,
    'is_new_arrival: once per pair, at its first loaded month with facts');
SELECT results_eq(
    $$SELECT snapshot_month, plan_code, is_new_arrival FROM tap_plan
       WHERE company_id = 'TAP-C1' AND product_line_code = 'TAP-PL1' ORDER BY 1, 2$$,
    $$VALUES ('2191-03-31'::date, 'TAP-P1', true),
             ('2191-11-30'::date, 'TAP-P1', false), ('2191-11-30'::date, 'TAP-P2', true),
             ('2191-12-31'::date, 'TAP-P1', false), ('2191-12-31'::date, 'TAP-P2', false),
             ('2192-01-31'::date, 'TAP-P1', false), ('2192-01-31'::date, 'TAP-P2', false)$$,
    'a second plan appearing later in the pair is a new arrival on its own plan row, once (not on the pair''s)');

-- ======================================================= is_churned
-- Disappearance: K4 (C2) had facts in 2191-11, none in 2191-12: churned; under on_missing
-- suspend it stays in the population (its version 停缴), AUM 0. In 2192-01 it did not
-- disappear again (no facts in 2191-12 either), but its AUM (0 without rows) is <= 0.
SELECT results_eq(
    $$SELECT p.snapshot_month, p.aum_balance, p.is_churned, v.contract_status
        FROM tap_plan p
        JOIN tap_version v
          ON (v.company_id, v.plan_code, v.product_line_code) = (p.company_id, p.plan_code, p.product_line_code)
         AND v.valid_from <= p.snapshot_month AND p.snapshot_month < v.valid_to
       WHERE p.company_id = 'TAP-C2' ORDER BY 1$$,
    $$VALUES ('2191-03-31'::date, 50.00, false, '正常'),
             ('2191-11-30'::date, 50.00, false, '正常'),
             ('2191-12-31'::date, 0.00, true, '停缴'),
             ('2192-01-31'::date, 0.00, true, '停缴')$$,
    'is_churned by disappearance: the suspended key stays in the population (停缴, AUM 0), churned');
-- AUM <= 0: (C3, PL1) a single portfolio at 0 in 2191-11 and 2191-12 -> churned, 10 again
-- in 2192-01 -> not; (C4, PL2) portfolios 50 and -80 -> -30 in 2191-11 -> churned, 20 + 0
-- later -> not; (C1, PL1) has a zero portfolio every month beside positive ones -> never.
SELECT results_eq(
    $$SELECT snapshot_month, company_id, product_line_code, aum_balance, is_churned FROM tap_business
       WHERE (company_id, product_line_code) IN (('TAP-C3', 'TAP-PL1'), ('TAP-C4', 'TAP-PL2'), ('TAP-C1', 'TAP-PL1'))
       ORDER BY 2, 3, 1$$,
    $$VALUES ('2191-03-31'::date, 'TAP-C1', 'TAP-PL1', 100.00, false),
             ('2191-11-30'::date, 'TAP-C1', 'TAP-PL1', 150.00, false),
             ('2191-12-31'::date, 'TAP-C1', 'TAP-PL1', 180.00, false),
             ('2192-01-31'::date, 'TAP-C1', 'TAP-PL1', 230.00, false),
             ('2191-03-31'::date, 'TAP-C3', 'TAP-PL1', 10.00, false),
             ('2191-11-30'::date, 'TAP-C3', 'TAP-PL1', 0.00, true),
             ('2191-12-31'::date, 'TAP-C3', 'TAP-PL1', 0.00, true),
             ('2192-01-31'::date, 'TAP-C3', 'TAP-PL1', 10.00, false),
             ('2191-11-30'::date, 'TAP-C4', 'TAP-PL2', -30.00, true),
             ('2191-12-31'::date, 'TAP-C4', 'TAP-PL2', 20.00, false),
             ('2192-01-31'::date, 'TAP-C4', 'TAP-PL2', 20.00, false)$$,
    'is_churned by month AUM <= 0 (the SUM over portfolios: zero, negative), not for a zero portfolio beside a positive one');

-- ======================================================= aum_balance and plan_count
-- (C1, PL1): K1's portfolios plus K2: 100+0; 100+20+30; 150+0+30; 200+0+30; two plans from
-- 2191-11.
SELECT results_eq(
    $$SELECT snapshot_month, aum_balance, plan_count FROM tap_business
       WHERE company_id = 'TAP-C1' AND product_line_code = 'TAP-PL1' ORDER BY 1$$,
    $$VALUES ('2191-03-31'::date, 100.00, 1), ('2191-11-30'::date, 150.00, 2),
             ('2191-12-31'::date, 180.00, 2), ('2192-01-31'::date, 230.00, 2)$$,
    'aum_balance is the SUM over the pair''s plans and portfolios; plan_count its plans');
SELECT is_empty(
    $$SELECT b.snapshot_month, b.company_id, b.product_line_code
        FROM tap_business b
        LEFT JOIN (SELECT date_trunc('month', "月度")::date AS m, company_id, "产品线代码" AS pl,
                          sum("期末资产规模") AS aum
                     FROM business."规模明细"
                    WHERE company_id LIKE 'TAP-%' AND "月度" >= '2191-01-01' AND "月度" < '2193-01-01'
                    GROUP BY 1, 2, 3) f
          ON f.m = date_trunc('month', b.snapshot_month)::date AND f.company_id = b.company_id
         AND f.pl = b.product_line_code
       WHERE b.aum_balance <> coalesce(f.aum, 0)$$,
    'every business row''s aum_balance is the SUM of its pair''s facts of the month (0 without)');

-- ======================================================= annual statuses come from the contract versions
SELECT is_empty(
    $$SELECT p.snapshot_month, p.company_id, p.plan_code, p.product_line_code
        FROM tap_plan p
        LEFT JOIN tap_version v
          ON (v.company_id, v.plan_code, v.product_line_code) = (p.company_id, p.plan_code, p.product_line_code)
         AND v.valid_from <= p.snapshot_month AND p.snapshot_month < v.valid_to
       WHERE (p.is_strategic, p.is_existing) IS DISTINCT FROM (v.is_strategic, v.is_existing)$$,
    'plan rows: is_strategic and is_existing are the covering version''s');
SELECT is_empty(
    $$SELECT b.snapshot_month, b.company_id, b.product_line_code
        FROM tap_business b
        LEFT JOIN (SELECT m.snapshot_month, v.company_id, v.product_line_code,
                          bool_or(v.is_strategic) AS is_strategic, bool_or(v.is_existing) AS is_existing
                     FROM (SELECT DISTINCT snapshot_month FROM tap_business) m
                     JOIN tap_version v ON v.valid_from <= m.snapshot_month AND m.snapshot_month < v.valid_to
                    GROUP BY 1, 2, 3) v
          USING (snapshot_month, company_id, product_line_code)
       WHERE (b.is_strategic, b.is_existing) IS DISTINCT FROM (v.is_strategic, v.is_existing)$$,
    'business rows: is_strategic and is_existing are the bool_or over the pair''s covering versions');

-- ======================================================= population and names
-- Plan rows: exactly the keys with a version covering the month (valid_from <= month-end <
-- valid_to), for each refreshed month.
SELECT set_eq(
    $$SELECT snapshot_month, company_id, plan_code, product_line_code FROM tap_plan$$,
    $$SELECT m.snapshot_month, v.company_id, v.plan_code, v.product_line_code
        FROM (VALUES ('2191-03-31'::date), ('2191-11-30'::date), ('2191-12-31'::date), ('2192-01-31'::date)) m (snapshot_month)
        JOIN tap_version v ON v.valid_from <= m.snapshot_month AND m.snapshot_month < v.valid_to$$,
    'the population: the keys with a contract version covering the month');
SELECT is_empty(
    $$SELECT snapshot_month, company_id, product_line_code, product_line_name
        FROM customer.fct_customer_business_monthly_status
       WHERE company_id LIKE 'TAP-%'
         AND product_line_name IS DISTINCT FROM
             (SELECT "产品线" FROM mapping."产品线" WHERE "产品线代码" = product_line_code)
      UNION ALL
      SELECT snapshot_month, company_id, product_line_code, product_line_name
        FROM customer.fct_customer_plan_monthly_status
       WHERE company_id LIKE 'TAP-%'
         AND product_line_name IS DISTINCT FROM
             (SELECT "产品线" FROM mapping."产品线" WHERE "产品线代码" = product_line_code)$$,
    'every snapshot row carries its product line''s name from mapping."产品线"');

SELECT * FROM finish();
ROLLBACK;
