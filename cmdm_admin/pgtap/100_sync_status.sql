-- cmdm-verify: scratch
-- 100_sync_status: customer.sync_contract_status(month), months loaded in order, each
-- followed by its sync; the exact SCD Type 2 versions it leaves (DESIGN §4): status from the
-- SUM of a key's portfolio rows (正常 when > 0, else 停缴), a flip and back, absence after the
-- first appearance (on_missing suspend: 停缴), reappearance, a new version every January
-- with the annual flags re-evaluated at the year's reference month, is_existing per product
-- line; then idempotency (a second sync rewrites nothing) and the history's shape.
--
-- Rows kept apart (a scratch suite, yet written to leave any other rows alone):
-- only years 2190-2199, only TAP-* companies, plans, portfolios, branches and product lines,
-- and assertions only on TAP-* keys. The sentinel month 2190-01 holds a single fact row
-- that is no contract (NULL company): it makes 2190-01 a loaded month, so the reference
-- month of 2190 holds no TAP facts in any database (an empty one: 2190-01, the first loaded
-- month of 2190; production: its last real month); TAP flags of 2190 are false everywhere.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(16);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线")
VALUES ('TAP-PL1', 'TAP 产品线一'), ('TAP-PL2', 'TAP 产品线二');
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

-- Facts (all in branch TAP-B1, so every TAP company with facts at a reference month is in
-- its branch's top 10 and strategic; 100_sync_strategic.sql tests the rank itself):
--
--   key (company/plan/product line)   2190-11  2190-12  2191-01  2191-02  2191-03  2192-01
--   K1 TAP-C1/TAP-P1/TAP-PL1 G1,G2    100,0    100,0    200,0    50,-50   200,0    300,0
--   K2 TAP-C2/TAP-P2/TAP-PL1          50       50       0        0        80       80
--   K6 TAP-C2/TAP-P6/TAP-PL2          -        0        5        5        5        5
--   K3 TAP-C3/TAP-P3/TAP-PL1          30       -        -        40       -        -
--   K4 TAP-C4/TAP-P4/TAP-PL1          -        -        -        10       10       -
--   K5 TAP-C1/TAP-P5/TAP-PL2          -        -        20       20       20       20
--
-- Reference months: 2191 -> 2190-12 (the last loaded month before 2191-01-01);
-- 2192 -> 2191-03 (the last loaded month of 2191: not December).
--   2191: C1 total 100, C2 total 50 -> strategic; C3, C4 without facts -> not.
--         existing: (C1, PL1) 100, (C2, PL1) 50; (C2, PL2) = 0 and (C1, PL2) absent -> false.
--   2192: C1 220, C2 85, C4 10 -> strategic; C3 absent -> not.
--         existing: (C1, PL1), (C1, PL2), (C2, PL1), (C2, PL2), (C4, PL1); not (C3, PL1).
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');  -- sentinel
EXECUTE sync('2190-01-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-11-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2190-11-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 0, 'TAP-B1'),
       ('2190-11-01', 'TAP-P2', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 50, 'TAP-B1'),
       ('2190-11-01', 'TAP-P3', 'TAP-C3', 'TAP-PL1', 'TAP-G1', 30, 'TAP-B1');
EXECUTE sync('2190-11-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-12-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2190-12-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 0, 'TAP-B1'),
       ('2190-12-01', 'TAP-P2', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 50, 'TAP-B1'),
       ('2190-12-01', 'TAP-P6', 'TAP-C2', 'TAP-PL2', 'TAP-G1', 0, 'TAP-B1');
EXECUTE sync('2190-12-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2191-01-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 200, 'TAP-B1'),
       ('2191-01-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 0, 'TAP-B1'),
       ('2191-01-01', 'TAP-P2', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 0, 'TAP-B1'),
       ('2191-01-01', 'TAP-P6', 'TAP-C2', 'TAP-PL2', 'TAP-G1', 5, 'TAP-B1'),
       ('2191-01-01', 'TAP-P5', 'TAP-C1', 'TAP-PL2', 'TAP-G1', 20, 'TAP-B1');
EXECUTE sync('2191-01-01');

-- ======================================================= after 2191-01: the whole TAP history
-- K1, K2: one 2190 version (flags false), then 2191 with the flags of 2190-12; K2 at 0 -> 停缴.
-- K3: 正常 in 2190-11, absent since -> 停缴 (2190-12) and 停缴 again in 2191 (a new year,
-- a new version), the open one. K5 first seen in 2191-01: no earlier version; strategic
-- through C1, not existing (C1 had nothing in PL2 at 2190-12). K6 first seen at 0 -> 停缴.
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2190-11-30'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '9999-12-31'::date, '正常', 2191, true, true),
             ('TAP-C1', 'TAP-P5', 'TAP-PL2', '2191-01-31'::date, '9999-12-31'::date, '正常', 2191, true, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2190-11-30'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2191-01-31'::date, '9999-12-31'::date, '停缴', 2191, true, true),
             ('TAP-C2', 'TAP-P6', 'TAP-PL2', '2190-12-31'::date, '2191-01-31'::date, '停缴', 2190, false, false),
             ('TAP-C2', 'TAP-P6', 'TAP-PL2', '2191-01-31'::date, '9999-12-31'::date, '正常', 2191, true, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2190-11-30'::date, '2190-12-31'::date, '正常', 2190, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '停缴', 2190, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2191-01-31'::date, '9999-12-31'::date, '停缴', 2191, false, false)$$,
    'after 2190-11..2191-01: the exact TAP versions');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2191-02-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 50, 'TAP-B1'),
       ('2191-02-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', -50, 'TAP-B1'),
       ('2191-02-01', 'TAP-P2', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 0, 'TAP-B1'),
       ('2191-02-01', 'TAP-P6', 'TAP-C2', 'TAP-PL2', 'TAP-G1', 5, 'TAP-B1'),
       ('2191-02-01', 'TAP-P3', 'TAP-C3', 'TAP-PL1', 'TAP-G1', 40, 'TAP-B1'),
       ('2191-02-01', 'TAP-P4', 'TAP-C4', 'TAP-PL1', 'TAP-G1', 10, 'TAP-B1'),
       ('2191-02-01', 'TAP-P5', 'TAP-C1', 'TAP-PL2', 'TAP-G1', 20, 'TAP-B1');
EXECUTE sync('2191-02-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2191-03-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 200, 'TAP-B1'),
       ('2191-03-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 0, 'TAP-B1'),
       ('2191-03-01', 'TAP-P2', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 80, 'TAP-B1'),
       ('2191-03-01', 'TAP-P6', 'TAP-C2', 'TAP-PL2', 'TAP-G1', 5, 'TAP-B1'),
       ('2191-03-01', 'TAP-P4', 'TAP-C4', 'TAP-PL1', 'TAP-G1', 10, 'TAP-B1'),
       ('2191-03-01', 'TAP-P5', 'TAP-C1', 'TAP-PL2', 'TAP-G1', 20, 'TAP-B1');
EXECUTE sync('2191-03-01');

INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2192-01-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 300, 'TAP-B1'),
       ('2192-01-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 0, 'TAP-B1'),
       ('2192-01-01', 'TAP-P2', 'TAP-C2', 'TAP-PL1', 'TAP-G1', 80, 'TAP-B1'),
       ('2192-01-01', 'TAP-P6', 'TAP-C2', 'TAP-PL2', 'TAP-G1', 5, 'TAP-B1'),
       ('2192-01-01', 'TAP-P5', 'TAP-C1', 'TAP-PL2', 'TAP-G1', 20, 'TAP-B1');
EXECUTE sync('2192-01-01');

-- ======================================================= the sync's own counts
-- keys_seen: the keys with facts in the month (rows of several portfolios are one key).
SELECT results_eq(
    $$SELECT period, keys_seen, rejected_null_key, rejected_unknown_product_line, rejected_unknown_company
        FROM sync_log ORDER BY period$$,
    $$VALUES ('2190-01-31'::date, 0::bigint, 1::bigint, 0::bigint, 0::bigint),
             ('2190-11-30'::date, 3::bigint, 0::bigint, 0::bigint, 0::bigint),
             ('2190-12-31'::date, 3::bigint, 0::bigint, 0::bigint, 0::bigint),
             ('2191-01-31'::date, 4::bigint, 0::bigint, 0::bigint, 0::bigint),
             ('2191-02-28'::date, 6::bigint, 0::bigint, 0::bigint, 0::bigint),
             ('2191-03-31'::date, 5::bigint, 0::bigint, 0::bigint, 0::bigint),
             ('2192-01-31'::date, 4::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'each sync returns its month-end, the keys seen, and the sentinel''s one NULL-key reject');

-- ======================================================= final history, one concern at a time
-- Aggregation over portfolios: K1's status is that of SUM(期末资产规模) over G1 and G2.
-- G2 at 0 beside G1 > 0 is 正常; in 2191-02 G1 50 and G2 -50 sum to 0: 停缴 (a SUM, not
-- "any portfolio > 0"); back to 正常 in 2191-03. A version per January.
SELECT results_eq(
    $$SELECT * FROM tap_version WHERE company_id = 'TAP-C1' AND plan_code = 'TAP-P1' ORDER BY valid_from$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2190-11-30'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2191-01-31'::date, '2191-02-28'::date, '正常', 2191, true, true),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2191-02-28'::date, '2191-03-31'::date, '停缴', 2191, true, true),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2191-03-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true)$$,
    'aggregation: a key''s status is that of the SUM of its portfolios');

-- Status flip and back: K2 正常 (2190), 0 in 2191-01 and 2191-02 -> one 停缴 version over
-- both months, 80 in 2191-03 -> 正常 again; 2192 a new version (正常, flags of 2191-03).
SELECT results_eq(
    $$SELECT * FROM tap_version WHERE company_id = 'TAP-C2' AND plan_code = 'TAP-P2' ORDER BY valid_from$$,
    $$VALUES ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2190-11-30'::date, '2191-01-31'::date, '正常', 2190, false, false),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2191-01-31'::date, '2191-03-31'::date, '停缴', 2191, true, true),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2191-03-31'::date, '2192-01-31'::date, '正常', 2191, true, true),
             ('TAP-C2', 'TAP-P2', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true)$$,
    'status flip: 正常 -> 停缴 (AUM 0) over two months -> 正常');

-- Disappearance under on_missing = suspend, reappearance: K3 absent in 2190-12, 2191-01,
-- 2191-03 and 2192-01 -> 停缴 at each; present again in 2191-02 -> 正常. C3 had no facts at
-- either reference month: not strategic, not existing.
SELECT results_eq(
    $$SELECT * FROM tap_version WHERE company_id = 'TAP-C3' ORDER BY valid_from$$,
    $$VALUES ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2190-11-30'::date, '2190-12-31'::date, '正常', 2190, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2190-12-31'::date, '2191-01-31'::date, '停缴', 2190, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2191-01-31'::date, '2191-02-28'::date, '停缴', 2191, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2191-02-28'::date, '2191-03-31'::date, '正常', 2191, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2191-03-31'::date, '2192-01-31'::date, '停缴', 2191, false, false),
             ('TAP-C3', 'TAP-P3', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '停缴', 2192, false, false)$$,
    'suspend: absent after the first appearance is 停缴; reappearing is 正常 again');

-- Year boundary, flags re-evaluated: K4 first seen 2191-02 (nothing before its first
-- appearance), without facts at 2190-12 -> 2191 flags false; it had 10 at 2191-03, the
-- reference month of 2192 -> 2192 flags true, although it is absent (停缴) in 2192-01.
SELECT results_eq(
    $$SELECT * FROM tap_version WHERE company_id = 'TAP-C4' ORDER BY valid_from$$,
    $$VALUES ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2191-02-28'::date, '2192-01-31'::date, '正常', 2191, false, false),
             ('TAP-C4', 'TAP-P4', 'TAP-PL1', '2192-01-31'::date, '9999-12-31'::date, '停缴', 2192, true, true)$$,
    'year boundary: a new version in January with the flags of the new reference month');

-- is_existing is per (company, product line): C1 is strategic (its PL1 AUM) but had no PL2
-- facts at 2190-12 -> K5 not existing in 2191; 20 in PL2 at 2191-03 -> existing in 2192.
-- C2's PL2 (K6) had AUM 0 at 2190-12 -> not existing in 2191 (AUM > 0 is required); 5 at
-- 2191-03 -> existing in 2192. K6's first state (AUM 0 at its first appearance) is 停缴.
SELECT results_eq(
    $$SELECT * FROM tap_version WHERE product_line_code = 'TAP-PL2' ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P5', 'TAP-PL2', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, false),
             ('TAP-C1', 'TAP-P5', 'TAP-PL2', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true),
             ('TAP-C2', 'TAP-P6', 'TAP-PL2', '2190-12-31'::date, '2191-01-31'::date, '停缴', 2190, false, false),
             ('TAP-C2', 'TAP-P6', 'TAP-PL2', '2191-01-31'::date, '2192-01-31'::date, '正常', 2191, true, false),
             ('TAP-C2', 'TAP-P6', 'TAP-PL2', '2192-01-31'::date, '9999-12-31'::date, '正常', 2192, true, true)$$,
    'is_existing: AUM > 0 in the product line at the reference month');

SELECT is(
    (SELECT count(*)::int FROM tap_version), 22,
    'the TAP history has exactly the 22 versions above');

SELECT is_empty(
    $$SELECT company_id, plan_code, product_line_code, valid_from FROM customer.customer_plan_contract
       WHERE company_id LIKE 'TAP-%'
         AND product_line_name IS DISTINCT FROM
             (SELECT "产品线" FROM mapping."产品线" WHERE "产品线代码" = product_line_code)$$,
    'every version carries its product line''s name');

-- ======================================================= idempotency
-- A second sync of every month (latest first) changes nothing: no key changed, no version
-- opened, closed, removed or re-flagged, and the TAP rows are the same rows. now() is the
-- same all transaction long, so updated_at cannot tell a rewrite; the row's physical
-- address (ctid) can: an UPDATE, even one that changes nothing, writes a new tuple.
CREATE TEMP TABLE before_resync ON COMMIT DROP AS
SELECT c.ctid::text AS tid, c.* FROM customer.customer_plan_contract c WHERE c.company_id LIKE 'TAP-%';
TRUNCATE sync_log;
EXECUTE sync('2192-01-01');
EXECUTE sync('2191-03-01');
EXECUTE sync('2191-02-01');
EXECUTE sync('2191-01-01');
EXECUTE sync('2190-12-01');
EXECUTE sync('2190-11-01');
EXECUTE sync('2190-01-01');
SELECT is(
    (SELECT count(*)::int FROM sync_log), 7, 'the seven months were synced again');
SELECT is_empty(
    $$SELECT period FROM sync_log
       WHERE keys_changed <> 0 OR versions_opened <> 0 OR versions_closed <> 0
          OR versions_removed <> 0 OR versions_reflagged <> 0 OR changed_until IS NOT NULL$$,
    'a second sync: keys_changed = 0, nothing opened, closed, removed or re-flagged');
SELECT results_eq(
    $$SELECT period, keys_seen FROM sync_log ORDER BY period$$,
    $$VALUES ('2190-01-31'::date, 0::bigint), ('2190-11-30'::date, 3::bigint),
             ('2190-12-31'::date, 3::bigint), ('2191-01-31'::date, 4::bigint),
             ('2191-02-28'::date, 6::bigint), ('2191-03-31'::date, 5::bigint),
             ('2192-01-31'::date, 4::bigint)$$,
    'a second sync sees the same keys');
SELECT set_eq(
    $$SELECT c.ctid::text AS tid, c.* FROM customer.customer_plan_contract c WHERE c.company_id LIKE 'TAP-%'$$,
    $$SELECT * FROM before_resync$$,
    'a second sync leaves every TAP row untouched (same ctid, contract_id, created_at, updated_at, values)');

-- ======================================================= the history's shape
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

SELECT * FROM finish();
ROLLBACK;
