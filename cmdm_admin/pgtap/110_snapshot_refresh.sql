-- cmdm-verify: scratch
-- 110_snapshot_refresh: customer.refresh_monthly_snapshot(month) as an operation
-- (docs/snapshots.md "What it returns", "As of m", "Which months to refresh after a
-- change"): what it returns; idempotency (a second run changes nothing: zero counts, the
-- same rows with the same ctid and updated_at); as-of correctness (March refreshed again
-- after later months, a November award and restatements gives the same rows, untouched);
-- the dependency functions: the snapshot_months returned by customer.sync_contract_status
-- for appended months, a restated middle month, a key removed from a month (its stale rows
-- deleted, also from the later months where it was suspended), the reference month
-- (December) whose next-year months are re-flagged, a month deleted entirely (its rows
-- deleted), the reference month deleted, two months changed at once (synced in ascending
-- order, the union refreshed); customer.event_dependent_months for an award added and a
-- loss re-dated. After each change only the months these functions name are refreshed;
-- then refreshing every month of 2195-2196 (loaded or not) must change nothing. Last, bad input: a NULL or out of
-- range month (SQLSTATE CM001), a month without facts (its rows deleted, zeros returned).
--
-- Rows kept apart (a scratch suite, yet written to leave any other rows alone):
-- only years 2190-2199, only TAP-* companies, plans, portfolios, branches and product lines,
-- and assertions only on TAP-* rows and on the test months. The sentinel month 2190-01 (a
-- single NULL-company row) is the reference month of 2195 in an empty database (in
-- production the last real month is): TAP flags of 2195 are false.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(40);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('TAP-PL1', 'TAP 产品线一');
INSERT INTO customer."年金客户" (company_id, "客户名称")
SELECT c, 'pgTAP ' || c FROM unnest(ARRAY['TAP-C1', 'TAP-C2', 'TAP-C3', 'TAP-C4', 'TAP-C5']) c;

CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2190-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);
CREATE TEMP TABLE refresh_log ON COMMIT DROP AS
SELECT * FROM customer.refresh_monthly_snapshot('2190-01-01') WITH NO DATA;
PREPARE refresh(date) AS
    INSERT INTO refresh_log SELECT * FROM customer.refresh_monthly_snapshot($1);
-- the counts without the step timings (ms), which vary from run to run
CREATE TEMP VIEW refresh_counts AS
SELECT snapshot_month, business_rows, business_inserted, business_updated, business_deleted,
       plan_rows, plan_inserted, plan_updated, plan_deleted
  FROM refresh_log;
-- refresh the union of the snapshot_months of the syncs in sync_log
PREPARE refresh_synced AS
    INSERT INTO refresh_log
    SELECT r.* FROM (SELECT DISTINCT unnest(s.snapshot_months) AS m FROM sync_log s) d
     CROSS JOIN LATERAL customer.refresh_monthly_snapshot(d.m) r;
-- refresh the months that can see an events row reported on a date
PREPARE refresh_events(date) AS
    INSERT INTO refresh_log
    SELECT r.* FROM customer.event_dependent_months($1) d
     CROSS JOIN LATERAL customer.refresh_monthly_snapshot(d.month) r;
-- refresh every month of 2195-2196, loaded or not, into check_log
CREATE TEMP TABLE check_log ON COMMIT DROP AS SELECT * FROM refresh_log WITH NO DATA;
PREPARE refresh_everything AS
    INSERT INTO check_log
    SELECT r.* FROM generate_series(DATE '2195-01-01', DATE '2196-12-01', INTERVAL '1 month') g (d)
     CROSS JOIN LATERAL customer.refresh_monthly_snapshot(g.d::date) r;
CREATE TEMP VIEW check_changes AS
SELECT snapshot_month FROM check_log
 WHERE business_inserted + business_updated + business_deleted
       + plan_inserted + plan_updated + plan_deleted <> 0
    OR (SELECT count(*) FROM check_log) <> 24;
-- fact(month, company, plan, AUM): product line TAP-PL1, portfolio TAP-G1, branch TAP-B1
PREPARE fact(date, text, text, numeric) AS
    INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码", "期末资产规模", "机构代码")
    VALUES ($1, $2, $3, 'TAP-PL1', 'TAP-G1', $4, 'TAP-B1');

CREATE TEMP VIEW tap_business AS
SELECT snapshot_month, company_id::text, product_line_code::text, aum_balance, plan_count,
       is_new_arrival, is_churned, is_winning_this_year, is_churned_this_year, is_new,
       is_strategic, is_existing
  FROM customer.fct_customer_business_monthly_status
 WHERE company_id LIKE 'TAP-%';
-- the physical rows: a rewrite (even to the same values) moves a row's ctid
CREATE TEMP VIEW tap_rows AS
SELECT 'business' AS tbl, t.ctid::text AS tid, t.snapshot_month, t.company_id::text,
       NULL::text AS plan_code, t.product_line_code::text, t.aum_balance, t.plan_count,
       t.is_new_arrival, t.is_churned, t.is_winning_this_year, t.is_churned_this_year, t.is_new,
       t.is_strategic, t.is_existing, t.updated_at
  FROM customer.fct_customer_business_monthly_status t
 WHERE t.company_id LIKE 'TAP-%'
UNION ALL
SELECT 'plan', t.ctid::text, t.snapshot_month, t.company_id::text, t.plan_code::text,
       t.product_line_code::text, t.aum_balance, NULL::int, t.is_new_arrival, t.is_churned,
       t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_strategic, t.is_existing,
       t.updated_at
  FROM customer.fct_customer_plan_monthly_status t
 WHERE t.company_id LIKE 'TAP-%';

-- Facts (product line TAP-PL1, one portfolio, branch TAP-B1), as first loaded, then changed:
--
--   key (company/plan)   2195-03  2195-05  2195-11  2195-12  2196-01  2196-02
--   K1 TAP-C1/TAP-P1     100      0        100      100      100      100
--   K2 TAP-C2/TAP-P2     50       50       50       50       50       50
--   K3 TAP-C3/TAP-P3     30       -        -        -        -        -
--   K4 TAP-C4/TAP-P4     -        20       20       20       20       20
--   K5 TAP-C5/TAP-P5     -        -        70       -        -        -
--
-- Events: award (C2) 2195-02-10 and loss (C3) 2195-04-01 from the start; award (C1)
-- 2195-11-10 added after March was refreshed. Changes, each followed by the refresh of the
-- months named by the dependency functions only:
--   (1) 2195-05 restated: K2 60 instead of 50;
--   (2) 2195-11 restated without K5 (its only month);
--   (3) 2195-12 (reference month of 2196) restated without K4: C4 no longer strategic nor
--       existing in 2196;
--   (4) 2195-05 deleted entirely: K4 now first appears in 2195-11;
--   (5) the loss of C3 re-dated from 2195-04-01 to 2195-12-05;
--   (6) after the end state is checked, 2195-12 (the reference month) deleted entirely;
--   (7) two months changed in one go: 2195-08 loaded (between 2195-03 and 2195-11) and
--       2196-01 restated with K5 back.
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');  -- sentinel
EXECUTE sync('2190-01-01');
TRUNCATE sync_log;
INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
VALUES ('TAP-C2', 'TAP-PL1', 'TAP-P2', '2195-02-10');
INSERT INTO customer."当年流失" (company_id, "产品线代码", "计划代码", "上报月份")
VALUES ('TAP-C3', 'TAP-PL1', 'TAP-P3', '2195-04-01');

-- ======================================================= March: first refresh, second refresh
EXECUTE fact('2195-03-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2195-03-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE fact('2195-03-01', 'TAP-C3', 'TAP-P3', 30);
EXECUTE sync('2195-03-01');
EXECUTE refresh('2195-03-01');
SELECT results_eq(
    $$SELECT * FROM refresh_counts$$,
    $$VALUES ('2195-03-31'::date, 3::bigint, 3::bigint, 0::bigint, 0::bigint, 3::bigint, 3::bigint, 0::bigint, 0::bigint)$$,
    'first refresh of 2195-03: three rows per table, all inserted');
-- March as of March: the award of 2195-02-10 is seen (C2 won, new: nothing is existing in
-- 2195), the loss of 2195-04-01 is not.
SELECT results_eq(
    $$SELECT * FROM tap_business ORDER BY 1, 2, 3$$,
    $$VALUES ('2195-03-31'::date, 'TAP-C1', 'TAP-PL1', 100.00, 1, true, false, false, false, false, false, false),
             ('2195-03-31'::date, 'TAP-C2', 'TAP-PL1',  50.00, 1, true, false, true,  false, true,  false, false),
             ('2195-03-31'::date, 'TAP-C3', 'TAP-PL1',  30.00, 1, true, false, false, false, false, false, false)$$,
    'the 2195-03 business rows');
CREATE TEMP TABLE march_rows ON COMMIT DROP AS SELECT * FROM tap_rows;

TRUNCATE refresh_log;
EXECUTE refresh('2195-03-31');
SELECT results_eq(
    $$SELECT * FROM refresh_counts$$,
    $$VALUES ('2195-03-31'::date, 3::bigint, 0::bigint, 0::bigint, 0::bigint, 3::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'a second refresh returns zero inserted, updated, deleted');
SELECT set_eq(
    $$SELECT * FROM tap_rows$$, $$SELECT * FROM march_rows$$,
    'a second refresh leaves every row untouched (same ctid, values, updated_at)');

-- ======================================================= appended months
-- 2195-05: K1 at 0 (停缴), K3 gone (停缴), K4 new.
EXECUTE fact('2195-05-01', 'TAP-C1', 'TAP-P1', 0);
EXECUTE fact('2195-05-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE fact('2195-05-01', 'TAP-C4', 'TAP-P4', 20);
EXECUTE sync('2195-05-01');
EXECUTE refresh('2195-05-01');
EXECUTE fact('2195-11-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2195-11-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE fact('2195-11-01', 'TAP-C4', 'TAP-P4', 20);
EXECUTE fact('2195-11-01', 'TAP-C5', 'TAP-P5', 70);
EXECUTE sync('2195-11-01');
EXECUTE refresh('2195-11-01');
EXECUTE fact('2195-12-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2195-12-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE fact('2195-12-01', 'TAP-C4', 'TAP-P4', 20);
EXECUTE sync('2195-12-01');
EXECUTE refresh('2195-12-01');
EXECUTE fact('2196-01-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2196-01-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE fact('2196-01-01', 'TAP-C4', 'TAP-P4', 20);
EXECUTE sync('2196-01-01');
EXECUTE refresh('2196-01-01');
EXECUTE fact('2196-02-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2196-02-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE fact('2196-02-01', 'TAP-C4', 'TAP-P4', 20);
EXECUTE sync('2196-02-01');
EXECUTE refresh('2196-02-01');

SELECT results_eq(
    $$SELECT period, snapshot_months FROM sync_log ORDER BY period$$,
    $$VALUES ('2195-03-31'::date, ARRAY['2195-03-31']::date[]),
             ('2195-05-31'::date, ARRAY['2195-05-31']::date[]),
             ('2195-11-30'::date, ARRAY['2195-11-30']::date[]),
             ('2195-12-31'::date, ARRAY['2195-12-31']::date[]),
             ('2196-01-31'::date, ARRAY['2196-01-31']::date[]),
             ('2196-02-29'::date, ARRAY['2196-02-29']::date[])$$,
    'sync of an appended month (no later month loaded, not a reference month yet): snapshot_months = that month');
-- 2195-11: K5 new; 2195-12 onwards K5 suspended (still in the population).
SELECT results_eq(
    $$SELECT snapshot_month, business_rows, business_inserted, plan_rows, plan_inserted FROM refresh_log
       WHERE snapshot_month > '2195-03-31' ORDER BY 1$$,
    $$VALUES ('2195-05-31'::date, 4::bigint, 4::bigint, 4::bigint, 4::bigint),
             ('2195-11-30'::date, 5::bigint, 5::bigint, 5::bigint, 5::bigint),
             ('2195-12-31'::date, 5::bigint, 5::bigint, 5::bigint, 5::bigint),
             ('2196-01-31'::date, 5::bigint, 5::bigint, 5::bigint, 5::bigint),
             ('2196-02-29'::date, 5::bigint, 5::bigint, 5::bigint, 5::bigint)$$,
    'the appended months refreshed: suspended keys stay in the population');

-- ======================================================= an award added: event_dependent_months
SELECT results_eq(
    $$SELECT month FROM customer.event_dependent_months('2195-03-15') ORDER BY 1$$,
    $$VALUES ('2195-03-31'::date), ('2195-05-31'::date), ('2195-11-30'::date), ('2195-12-31'::date)$$,
    'event_dependent_months(a day in March): the loaded months from March through December of that year');
SELECT results_eq(
    $$SELECT d, array_agg(e.month ORDER BY e.month)
        FROM unnest(ARRAY['2195-06-15', '2195-11-10', '2195-12-31', '2196-01-01', '2194-06-01']::date[]) d
        LEFT JOIN LATERAL customer.event_dependent_months(d) e ON true
       GROUP BY d ORDER BY d$$,
    $$VALUES ('2194-06-01'::date, ARRAY[NULL]::date[]),
             ('2195-06-15'::date, ARRAY['2195-11-30', '2195-12-31']::date[]),
             ('2195-11-10'::date, ARRAY['2195-11-30', '2195-12-31']::date[]),
             ('2195-12-31'::date, ARRAY['2195-12-31']::date[]),
             ('2196-01-01'::date, ARRAY['2196-01-31', '2196-02-29']::date[])$$,
    'event_dependent_months: loaded months only, from the day''s month, never into the next year');

INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
VALUES ('TAP-C1', 'TAP-PL1', 'TAP-P1', '2195-11-10');
TRUNCATE refresh_log;
EXECUTE refresh_events('2195-11-10');
SELECT results_eq(
    $$SELECT * FROM refresh_counts ORDER BY 1$$,
    $$VALUES ('2195-11-30'::date, 5::bigint, 0::bigint, 1::bigint, 0::bigint, 5::bigint, 0::bigint, 1::bigint, 0::bigint),
             ('2195-12-31'::date, 5::bigint, 0::bigint, 1::bigint, 0::bigint, 5::bigint, 0::bigint, 1::bigint, 0::bigint)$$,
    'the November award updates C1''s rows of 2195-11 and 2195-12, nothing else');
TRUNCATE check_log;
EXECUTE refresh_everything;
SELECT is_empty($$SELECT * FROM check_changes$$,
    'after the award: refreshing every month of 2195-2196 changes nothing more');

-- ======================================================= as of March
TRUNCATE refresh_log;
EXECUTE refresh('2195-03-01');
SELECT results_eq(
    $$SELECT * FROM refresh_counts$$,
    $$VALUES ('2195-03-31'::date, 3::bigint, 0::bigint, 0::bigint, 0::bigint, 3::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'March refreshed again after later months and a November award: no change');
SELECT set_eq(
    $$SELECT * FROM tap_rows WHERE snapshot_month = '2195-03-31'$$, $$SELECT * FROM march_rows$$,
    'as of March: the same rows, untouched (no later fact, award or loss is seen)');

-- ======================================================= (1) a middle month restated
DELETE FROM business."规模明细" WHERE "月度" = '2195-05-01' AND company_id LIKE 'TAP-%';
EXECUTE fact('2195-05-01', 'TAP-C1', 'TAP-P1', 0);
EXECUTE fact('2195-05-01', 'TAP-C2', 'TAP-P2', 60);
EXECUTE fact('2195-05-01', 'TAP-C4', 'TAP-P4', 20);
TRUNCATE sync_log;
EXECUTE sync('2195-05-01');
SELECT results_eq(
    $$SELECT snapshot_months FROM sync_log$$,
    $$VALUES (ARRAY['2195-05-31', '2195-11-30']::date[])$$,
    'sync of a restated middle month (no state changed): snapshot_months = the month and the next loaded month');
TRUNCATE refresh_log;
EXECUTE refresh_synced;
SELECT results_eq(
    $$SELECT * FROM refresh_counts ORDER BY 1$$,
    $$VALUES ('2195-05-31'::date, 4::bigint, 0::bigint, 1::bigint, 0::bigint, 4::bigint, 0::bigint, 1::bigint, 0::bigint),
             ('2195-11-30'::date, 5::bigint, 0::bigint, 0::bigint, 0::bigint, 5::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'refreshing them: C2''s AUM updated in 2195-05, 2195-11 unchanged');
TRUNCATE check_log;
EXECUTE refresh_everything;
SELECT is_empty($$SELECT * FROM check_changes$$,
    'after (1): refreshing every month of 2195-2196 changes nothing more');

-- ======================================================= (2) a key removed from a month: stale rows
DELETE FROM business."规模明细" WHERE "月度" = '2195-11-01' AND company_id = 'TAP-C5';
TRUNCATE sync_log;
EXECUTE sync('2195-11-01');
SELECT results_eq(
    $$SELECT snapshot_months FROM sync_log$$,
    $$VALUES (ARRAY['2195-11-30', '2195-12-31', '2196-01-31', '2196-02-29']::date[])$$,
    'sync of 2195-11 without K5: the month, and the later months where K5 was suspended (their states recomputed)');
TRUNCATE refresh_log;
EXECUTE refresh_synced;
SELECT results_eq(
    $$SELECT * FROM refresh_counts ORDER BY 1$$,
    $$VALUES ('2195-11-30'::date, 4::bigint, 0::bigint, 0::bigint, 1::bigint, 4::bigint, 0::bigint, 0::bigint, 1::bigint),
             ('2195-12-31'::date, 4::bigint, 0::bigint, 0::bigint, 1::bigint, 4::bigint, 0::bigint, 0::bigint, 1::bigint),
             ('2196-01-31'::date, 4::bigint, 0::bigint, 0::bigint, 1::bigint, 4::bigint, 0::bigint, 0::bigint, 1::bigint),
             ('2196-02-29'::date, 4::bigint, 0::bigint, 0::bigint, 1::bigint, 4::bigint, 0::bigint, 0::bigint, 1::bigint)$$,
    'refreshing them deletes C5''s stale row from each table in each month');
SELECT is_empty(
    $$SELECT snapshot_month FROM customer.fct_customer_business_monthly_status WHERE company_id = 'TAP-C5'
      UNION ALL
      SELECT snapshot_month FROM customer.fct_customer_plan_monthly_status WHERE company_id = 'TAP-C5'$$,
    'no row of the removed key is left');
TRUNCATE check_log;
EXECUTE refresh_everything;
SELECT is_empty($$SELECT * FROM check_changes$$,
    'after (2): refreshing every month of 2195-2196 changes nothing more');

-- ======================================================= (3) the reference month restated
-- 2195-12 without K4: C4 has no facts at 2196's reference month -> its 2196 versions are
-- re-flagged (no longer strategic, no longer existing).
DELETE FROM business."规模明细" WHERE "月度" = '2195-12-01' AND company_id = 'TAP-C4';
TRUNCATE sync_log;
EXECUTE sync('2195-12-01');
SELECT results_eq(
    $$SELECT snapshot_months FROM sync_log$$,
    $$VALUES (ARRAY['2195-12-31', '2196-01-31', '2196-02-29']::date[])$$,
    'sync of the restated reference month: the month and every loaded month of the re-flagged year 2196');
TRUNCATE refresh_log;
EXECUTE refresh_synced;
SELECT results_eq(
    $$SELECT * FROM refresh_counts ORDER BY 1$$,
    $$VALUES ('2195-12-31'::date, 4::bigint, 0::bigint, 1::bigint, 0::bigint, 4::bigint, 0::bigint, 1::bigint, 0::bigint),
             ('2196-01-31'::date, 4::bigint, 0::bigint, 1::bigint, 0::bigint, 4::bigint, 0::bigint, 1::bigint, 0::bigint),
             ('2196-02-29'::date, 4::bigint, 0::bigint, 1::bigint, 0::bigint, 4::bigint, 0::bigint, 1::bigint, 0::bigint)$$,
    'refreshing them updates C4''s row in each of them');
SELECT results_eq(
    $$SELECT snapshot_month, aum_balance, is_churned, is_strategic, is_existing FROM tap_business
       WHERE company_id = 'TAP-C4' AND snapshot_month >= '2195-12-01' ORDER BY 1$$,
    $$VALUES ('2195-12-31'::date, 0.00, true, false, false),
             ('2196-01-31'::date, 20.00, false, false, false),
             ('2196-02-29'::date, 20.00, false, false, false)$$,
    'C4: disappeared in 2195-12; in 2196 neither strategic nor existing (no facts at the reference month)');
TRUNCATE check_log;
EXECUTE refresh_everything;
SELECT is_empty($$SELECT * FROM check_changes$$,
    'after (3): refreshing every month of 2195-2196 changes nothing more');

-- ======================================================= (4) a month deleted entirely
DELETE FROM business."规模明细" WHERE "月度" = '2195-05-01' AND company_id LIKE 'TAP-%';
TRUNCATE sync_log;
EXECUTE sync('2195-05-01');
SELECT ok(
    (SELECT snapshot_months[1] = '2195-05-31' AND snapshot_months @> ARRAY['2195-05-31', '2195-11-30']::date[]
       FROM sync_log),
    'sync of a deleted month: snapshot_months starts with it and holds the next loaded month');
TRUNCATE refresh_log;
EXECUTE refresh_synced;
SELECT results_eq(
    $$SELECT * FROM refresh_counts WHERE snapshot_month IN ('2195-05-31', '2195-11-30') ORDER BY 1$$,
    $$VALUES ('2195-05-31'::date, 0::bigint, 0::bigint, 0::bigint, 4::bigint, 0::bigint, 0::bigint, 0::bigint, 4::bigint),
             ('2195-11-30'::date, 4::bigint, 0::bigint, 1::bigint, 0::bigint, 4::bigint, 0::bigint, 1::bigint, 0::bigint)$$,
    'refreshing the deleted month deletes all its rows; 2195-11 updates C4 (its first appearance now)');
SELECT is_empty(
    $$SELECT * FROM tap_rows WHERE snapshot_month = '2195-05-31'$$,
    'no row is left for the deleted month');
TRUNCATE check_log;
EXECUTE refresh_everything;
SELECT is_empty($$SELECT * FROM check_changes$$,
    'after (4): refreshing every month of 2195-2196 changes nothing more');

-- ======================================================= (5) an events row re-dated
UPDATE customer."当年流失" SET "上报月份" = '2195-12-05'
 WHERE company_id = 'TAP-C3' AND "上报月份" = '2195-04-01';
TRUNCATE refresh_log;
EXECUTE refresh_events('2195-04-01');
EXECUTE refresh_events('2195-12-05');
SELECT results_eq(
    $$SELECT snapshot_month, sum(business_updated)::bigint, sum(plan_updated)::bigint
        FROM refresh_log GROUP BY 1 ORDER BY 1$$,
    $$VALUES ('2195-11-30'::date, 1::bigint, 1::bigint), ('2195-12-31'::date, 0::bigint, 0::bigint)$$,
    'the loss re-dated from April to December: the months of both dates refreshed; 2195-11 no longer sees it');
TRUNCATE check_log;
EXECUTE refresh_everything;
SELECT is_empty($$SELECT * FROM check_changes$$,
    'after (5): refreshing every month of 2195-2196 changes nothing more');

-- ======================================================= the end state, from scratch
-- Facts now: 2195-03 K1 100, K2 50, K3 30; 2195-11 K1 100, K2 50, K4 20; 2195-12 K1 100,
-- K2 50; 2196-01 and 2196-02 K1 100, K2 50, K4 20. Previous loaded month of 2195-11: 2195-03
-- (C3 disappeared there). 2196's reference month 2195-12: C1, C2 strategic and existing.
-- columns: month, company, product line, aum_balance, plan_count, is_new_arrival, is_churned,
--          is_winning_this_year, is_churned_this_year, is_new, is_strategic, is_existing
SELECT results_eq(
    $$SELECT * FROM tap_business ORDER BY 1, 2, 3$$,
    $$VALUES ('2195-03-31'::date, 'TAP-C1', 'TAP-PL1', 100.00, 1, true,  false, false, false, false, false, false),
             ('2195-03-31'::date, 'TAP-C2', 'TAP-PL1',  50.00, 1, true,  false, true,  false, true,  false, false),
             ('2195-03-31'::date, 'TAP-C3', 'TAP-PL1',  30.00, 1, true,  false, false, false, false, false, false),
             ('2195-11-30'::date, 'TAP-C1', 'TAP-PL1', 100.00, 1, false, false, true,  false, true,  false, false),
             ('2195-11-30'::date, 'TAP-C2', 'TAP-PL1',  50.00, 1, false, false, true,  false, true,  false, false),
             ('2195-11-30'::date, 'TAP-C3', 'TAP-PL1',   0.00, 1, false, true,  false, false, false, false, false),
             ('2195-11-30'::date, 'TAP-C4', 'TAP-PL1',  20.00, 1, true,  false, false, false, false, false, false),
             ('2195-12-31'::date, 'TAP-C1', 'TAP-PL1', 100.00, 1, false, false, true,  false, true,  false, false),
             ('2195-12-31'::date, 'TAP-C2', 'TAP-PL1',  50.00, 1, false, false, true,  false, true,  false, false),
             ('2195-12-31'::date, 'TAP-C3', 'TAP-PL1',   0.00, 1, false, true,  false, true,  false, false, false),
             ('2195-12-31'::date, 'TAP-C4', 'TAP-PL1',   0.00, 1, false, true,  false, false, false, false, false),
             ('2196-01-31'::date, 'TAP-C1', 'TAP-PL1', 100.00, 1, false, false, false, false, false, true,  true),
             ('2196-01-31'::date, 'TAP-C2', 'TAP-PL1',  50.00, 1, false, false, false, false, false, true,  true),
             ('2196-01-31'::date, 'TAP-C3', 'TAP-PL1',   0.00, 1, false, true,  false, false, false, false, false),
             ('2196-01-31'::date, 'TAP-C4', 'TAP-PL1',  20.00, 1, false, false, false, false, false, false, false),
             ('2196-02-29'::date, 'TAP-C1', 'TAP-PL1', 100.00, 1, false, false, false, false, false, true,  true),
             ('2196-02-29'::date, 'TAP-C2', 'TAP-PL1',  50.00, 1, false, false, false, false, false, true,  true),
             ('2196-02-29'::date, 'TAP-C3', 'TAP-PL1',   0.00, 1, false, true,  false, false, false, false, false),
             ('2196-02-29'::date, 'TAP-C4', 'TAP-PL1',  20.00, 1, false, false, false, false, false, false, false)$$,
    'after all the changes, incremental refreshes left exactly the rows of the final facts');

-- ======================================================= (6) the reference month deleted entirely
-- Without 2195-12, 2196's reference month is 2195-11, where C4 had 20: its 2196 versions
-- are re-flagged strategic and existing, so 2196's snapshots must be refreshed although no
-- fact of 2196 changed.
DELETE FROM business."规模明细" WHERE "月度" = '2195-12-01' AND company_id LIKE 'TAP-%';
TRUNCATE sync_log;
EXECUTE sync('2195-12-01');
SELECT ok(
    (SELECT snapshot_months[1] = '2195-12-31'
            AND snapshot_months @> ARRAY['2195-12-31', '2196-01-31', '2196-02-29']::date[]
       FROM sync_log),
    'sync of the deleted reference month: snapshot_months starts with it and holds every loaded month of 2196');
TRUNCATE refresh_log;
EXECUTE refresh_synced;
SELECT results_eq(
    $$SELECT * FROM refresh_counts WHERE snapshot_month IN ('2195-12-31', '2196-01-31', '2196-02-29') ORDER BY 1$$,
    $$VALUES ('2195-12-31'::date, 0::bigint, 0::bigint, 0::bigint, 4::bigint, 0::bigint, 0::bigint, 0::bigint, 4::bigint),
             ('2196-01-31'::date, 4::bigint, 0::bigint, 1::bigint, 0::bigint, 4::bigint, 0::bigint, 1::bigint, 0::bigint),
             ('2196-02-29'::date, 4::bigint, 0::bigint, 1::bigint, 0::bigint, 4::bigint, 0::bigint, 1::bigint, 0::bigint)$$,
    'refreshing them deletes the month''s rows and updates C4''s rows of 2196');
SELECT results_eq(
    $$SELECT snapshot_month, company_id, is_strategic, is_existing FROM tap_business
       WHERE snapshot_month > '2196-01-01' ORDER BY 1, 2$$,
    $$VALUES ('2196-01-31'::date, 'TAP-C1', true, true), ('2196-01-31'::date, 'TAP-C2', true, true),
             ('2196-01-31'::date, 'TAP-C3', false, false), ('2196-01-31'::date, 'TAP-C4', true, true),
             ('2196-02-29'::date, 'TAP-C1', true, true), ('2196-02-29'::date, 'TAP-C2', true, true),
             ('2196-02-29'::date, 'TAP-C3', false, false), ('2196-02-29'::date, 'TAP-C4', true, true)$$,
    '2196''s annual statuses now from 2195-11');
TRUNCATE check_log;
EXECUTE refresh_everything;
SELECT is_empty($$SELECT * FROM check_changes$$,
    'after (6): refreshing every month of 2195-2196 changes nothing more');

-- ======================================================= (7) two months changed in one go
-- 2195-08 loaded (a new month between 2195-03 and 2195-11: K1 100, K2 50, K3 40, K4 20) and
-- 2196-01 restated with K5 back (70): both synced in ascending order, then the union of
-- their snapshot_months refreshed. 2195-11 changes through its previous loaded month (C4
-- first appears in 2195-08 now, C3 disappears in 2195-11).
EXECUTE fact('2195-08-01', 'TAP-C1', 'TAP-P1', 100);
EXECUTE fact('2195-08-01', 'TAP-C2', 'TAP-P2', 50);
EXECUTE fact('2195-08-01', 'TAP-C3', 'TAP-P3', 40);
EXECUTE fact('2195-08-01', 'TAP-C4', 'TAP-P4', 20);
EXECUTE fact('2196-01-01', 'TAP-C5', 'TAP-P5', 70);
TRUNCATE sync_log;
EXECUTE sync('2195-08-01');
EXECUTE sync('2196-01-01');
TRUNCATE refresh_log;
EXECUTE refresh_synced;
SELECT results_eq(
    $$SELECT snapshot_month, company_id, aum_balance, plan_count, is_new_arrival, is_churned FROM tap_business
       WHERE snapshot_month IN ('2195-08-31', '2195-11-30', '2196-01-31') AND company_id IN ('TAP-C3', 'TAP-C4', 'TAP-C5')
       ORDER BY 1, 2$$,
    $$VALUES ('2195-08-31'::date, 'TAP-C3', 40.00, 1, false, false),
             ('2195-08-31'::date, 'TAP-C4', 20.00, 1, true,  false),
             ('2195-11-30'::date, 'TAP-C3',  0.00, 1, false, true),
             ('2195-11-30'::date, 'TAP-C4', 20.00, 1, false, false),
             ('2196-01-31'::date, 'TAP-C3',  0.00, 1, false, true),
             ('2196-01-31'::date, 'TAP-C4', 20.00, 1, false, false),
             ('2196-01-31'::date, 'TAP-C5', 70.00, 1, true,  false)$$,
    'two months changed, synced in ascending order, the union refreshed: the new rows');
TRUNCATE check_log;
EXECUTE refresh_everything;
SELECT is_empty($$SELECT * FROM check_changes$$,
    'after (7): refreshing every month of 2195-2196 changes nothing more');

-- ======================================================= bad input
SELECT throws_ok(
    $$SELECT * FROM customer.refresh_monthly_snapshot(NULL::date)$$, 'CM001', NULL,
    'a NULL month: SQLSTATE CM001');
SELECT throws_ok(
    $$SELECT * FROM customer.refresh_monthly_snapshot('2201-01-01')$$, 'CM001', NULL,
    'a month outside 1900-2200: SQLSTATE CM001');
-- A month without facts: rows someone left there are deleted, the counts are the zeros of
-- an empty month.
INSERT INTO customer.fct_customer_business_monthly_status (snapshot_month, company_id, product_line_code, product_line_name)
VALUES ('2195-07-31', 'TAP-C1', 'TAP-PL1', 'TAP 产品线一');
INSERT INTO customer.fct_customer_plan_monthly_status (snapshot_month, company_id, plan_code, product_line_code, product_line_name)
VALUES ('2195-07-31', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP 产品线一');
TRUNCATE refresh_log;
EXECUTE refresh('2195-07-15');
EXECUTE refresh('2195-09-01');
SELECT results_eq(
    $$SELECT * FROM refresh_counts ORDER BY 1$$,
    $$VALUES ('2195-07-31'::date, 0::bigint, 0::bigint, 0::bigint, 1::bigint, 0::bigint, 0::bigint, 0::bigint, 1::bigint),
             ('2195-09-30'::date, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'a month without facts: its rows deleted, business_rows = plan_rows = 0; without rows either: all zeros');
SELECT is_empty(
    $$SELECT * FROM tap_rows WHERE snapshot_month = '2195-07-31'$$,
    'no row is left for the month without facts');

SELECT * FROM finish();
ROLLBACK;
