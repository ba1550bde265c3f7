-- cmdm-verify: scratch
-- 100_sync_rejects: fact rows that are no contract (DESIGN §4): a NULL key part
-- (company_id, 计划代码 or 产品线代码), a blank one ('' or only blanks, issue 18: reason
-- blank_key), a product line unknown to mapping."产品线", a company
-- unknown to customer."年金客户". customer.sync_contract_status counts them (per row) in its
-- result, records each row with its reason and offending values in cmdm.rejected_fact for
-- the month, opens no version for them and does not fail. A re-sync replaces the month's
-- rejects (no duplicates) and leaves other months' alone; fixing the data removes them.
--
-- Rows kept apart: years 2190-2199, TAP-* ids only (the unknown product line is TAP-PL999,
-- the unknown company TAP-C404), assertions on TAP rows and on these test months only.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(20);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('TAP-PL1', 'TAP 产品线一');
INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('TAP-C1', 'pgTAP 客户 1');

CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2190-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);
CREATE TEMP VIEW tap_version AS
SELECT company_id::text, plan_code::text, product_line_code::text, valid_from, valid_to,
       contract_status::text, status_year, is_strategic, is_existing
  FROM customer.customer_plan_contract
 WHERE company_id LIKE 'TAP-%';
CREATE TEMP VIEW tap_reject AS
SELECT period, reason, company_id, plan_code, product_line_code, portfolio_code, aum
  FROM cmdm.rejected_fact
 WHERE period BETWEEN '2190-01-01' AND '2199-12-31';

-- the sentinel month 2190-01: one NULL-company row, rejected; it must outlive what follows
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');
EXECUTE sync('2190-01-01');

-- 2194-03: one contract row and six rows that are none.
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2194-03-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),      -- a contract
       ('2194-03-01', NULL, 'TAP-C1', 'TAP-PL1', 'TAP-G2', 10, 'TAP-B1'),           -- NULL plan
       ('2194-03-01', NULL, 'TAP-C1', 'TAP-PL1', 'TAP-G3', 15, 'TAP-B1'),           -- NULL plan, 2nd portfolio
       ('2194-03-01', 'TAP-P2', 'TAP-C1', NULL, 'TAP-G4', 11, 'TAP-B1'),            -- NULL product line
       ('2194-03-01', 'TAP-P3', 'TAP-C1', 'TAP-PL999', 'TAP-G5', 12, 'TAP-B1'),     -- unknown product line
       ('2194-03-01', 'TAP-P3', 'TAP-C1', 'TAP-PL999', 'TAP-G6', 13, 'TAP-B1'),     -- same key, 2nd portfolio
       ('2194-03-01', 'TAP-P4', 'TAP-C404', 'TAP-PL1', 'TAP-G7', 14, 'TAP-B1');     -- unknown company

-- ======================================================= the first sync
SELECT lives_ok($$EXECUTE sync('2194-03-01')$$, 'a month with rejected rows syncs without error');
SELECT results_eq(
    $$SELECT period, keys_seen, rejected_null_key, rejected_unknown_product_line, rejected_unknown_company
        FROM sync_log WHERE period = '2194-03-31'$$,
    $$VALUES ('2194-03-31'::date, 1::bigint, 3::bigint, 2::bigint, 1::bigint)$$,
    'the result counts one key and the rejected rows: 3 NULL key, 2 unknown product line, 1 unknown company');
SELECT set_eq(
    $$SELECT * FROM tap_reject WHERE period = '2194-03-31'$$,
    $$VALUES ('2194-03-31'::date, 'null_key', 'TAP-C1', NULL, 'TAP-PL1', 'TAP-G2', 10::numeric),
             ('2194-03-31'::date, 'null_key', 'TAP-C1', NULL, 'TAP-PL1', 'TAP-G3', 15::numeric),
             ('2194-03-31'::date, 'null_key', 'TAP-C1', 'TAP-P2', NULL, 'TAP-G4', 11::numeric),
             ('2194-03-31'::date, 'unknown_product_line', 'TAP-C1', 'TAP-P3', 'TAP-PL999', 'TAP-G5', 12::numeric),
             ('2194-03-31'::date, 'unknown_product_line', 'TAP-C1', 'TAP-P3', 'TAP-PL999', 'TAP-G6', 13::numeric),
             ('2194-03-31'::date, 'unknown_company', 'TAP-C404', 'TAP-P4', 'TAP-PL1', 'TAP-G7', 14::numeric)$$,
    'cmdm.rejected_fact holds each rejected row with its reason, key, portfolio and AUM');
SELECT is(
    (SELECT count(*)::int FROM tap_reject WHERE period = '2194-03-31'), 6,
    'one reject row per rejected fact row');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2194-03-31'::date, '9999-12-31'::date, '正常', 2194, false, false)$$,
    'only the contract row opens a version; rejected rows open none');
SELECT set_eq(
    $$SELECT * FROM tap_reject WHERE period = '2190-01-31'$$,
    $$VALUES ('2190-01-31'::date, 'null_key', NULL, 'TAP-P0', 'TAP-PL1', 'TAP-G0', 1::numeric)$$,
    'the sentinel month has its own reject');

-- ======================================================= a re-sync replaces them
TRUNCATE sync_log;
EXECUTE sync('2194-03-01');
SELECT results_eq(
    $$SELECT keys_seen, keys_changed, rejected_null_key, rejected_unknown_product_line, rejected_unknown_company
        FROM sync_log$$,
    $$VALUES (1::bigint, 0::bigint, 3::bigint, 2::bigint, 1::bigint)$$,
    're-sync: the same counts, no key changed');
SELECT is(
    (SELECT count(*)::int FROM tap_reject WHERE period = '2194-03-31'), 6,
    're-sync: still six reject rows for the month, no duplicates');
SELECT set_eq(
    $$SELECT reason, company_id, plan_code, product_line_code, portfolio_code, aum
        FROM tap_reject WHERE period = '2194-03-31'$$,
    $$VALUES ('null_key', 'TAP-C1', NULL, 'TAP-PL1', 'TAP-G2', 10::numeric),
             ('null_key', 'TAP-C1', NULL, 'TAP-PL1', 'TAP-G3', 15::numeric),
             ('null_key', 'TAP-C1', 'TAP-P2', NULL, 'TAP-G4', 11::numeric),
             ('unknown_product_line', 'TAP-C1', 'TAP-P3', 'TAP-PL999', 'TAP-G5', 12::numeric),
             ('unknown_product_line', 'TAP-C1', 'TAP-P3', 'TAP-PL999', 'TAP-G6', 13::numeric),
             ('unknown_company', 'TAP-C404', 'TAP-P4', 'TAP-PL1', 'TAP-G7', 14::numeric)$$,
    're-sync: the same rejects');

-- ======================================================= fixing the data
-- The NULL-plan rows get plan TAP-P1 (they join the contract: 100 + 10 + 15), TAP-C404
-- becomes a known company (its row a contract). Left: the NULL product line row and the two
-- TAP-PL999 rows.
UPDATE business."规模明细" SET "计划代码" = 'TAP-P1'
 WHERE "月度" = '2194-03-01' AND company_id = 'TAP-C1' AND "计划代码" IS NULL;
INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('TAP-C404', 'pgTAP 客户 404');
TRUNCATE sync_log;
EXECUTE sync('2194-03-01');
SELECT results_eq(
    $$SELECT keys_seen, rejected_null_key, rejected_unknown_product_line, rejected_unknown_company
        FROM sync_log$$,
    $$VALUES (2::bigint, 1::bigint, 2::bigint, 0::bigint)$$,
    'after the fix: two keys, 1 NULL key and 2 unknown product line rows left');
SELECT set_eq(
    $$SELECT reason, company_id, plan_code, product_line_code, portfolio_code, aum
        FROM tap_reject WHERE period = '2194-03-31'$$,
    $$VALUES ('null_key', 'TAP-C1', 'TAP-P2', NULL, 'TAP-G4', 11::numeric),
             ('unknown_product_line', 'TAP-C1', 'TAP-P3', 'TAP-PL999', 'TAP-G5', 12::numeric),
             ('unknown_product_line', 'TAP-C1', 'TAP-P3', 'TAP-PL999', 'TAP-G6', 13::numeric)$$,
    'after the fix: only the rows still rejected are recorded');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2194-03-31'::date, '9999-12-31'::date, '正常', 2194, false, false),
             ('TAP-C404', 'TAP-P4', 'TAP-PL1', '2194-03-31'::date, '9999-12-31'::date, '正常', 2194, false, false)$$,
    'after the fix: the formerly unknown company has its contract');

-- ======================================================= a month of rejects only, then deleted
-- 2194-04: only a TAP-PL999 row. The month is loaded (any fact row); TAP-C1's contract and
-- TAP-C404's are absent from it: 停缴 (suspend).
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2194-04-01', 'TAP-P3', 'TAP-C1', 'TAP-PL999', 'TAP-G5', 12, 'TAP-B1');
TRUNCATE sync_log;
EXECUTE sync('2194-04-01');
SELECT results_eq(
    $$SELECT keys_seen, rejected_null_key, rejected_unknown_product_line, rejected_unknown_company
        FROM sync_log$$,
    $$VALUES (0::bigint, 0::bigint, 1::bigint, 0::bigint)$$,
    'a month of rejected rows only: no key, one reject');
SELECT results_eq(
    $$SELECT * FROM tap_version ORDER BY 1, 2, 3, 4$$,
    $$VALUES ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2194-03-31'::date, '2194-04-30'::date, '正常', 2194, false, false),
             ('TAP-C1', 'TAP-P1', 'TAP-PL1', '2194-04-30'::date, '9999-12-31'::date, '停缴', 2194, false, false),
             ('TAP-C404', 'TAP-P4', 'TAP-PL1', '2194-03-31'::date, '2194-04-30'::date, '正常', 2194, false, false),
             ('TAP-C404', 'TAP-P4', 'TAP-PL1', '2194-04-30'::date, '9999-12-31'::date, '停缴', 2194, false, false)$$,
    'a month holding only rejected rows is still a loaded month: the contracts are suspended');

-- 2194-03's facts deleted and synced: its rejects go, 2194-04's and the sentinel's stay.
DELETE FROM business."规模明细" WHERE "月度" = '2194-03-01' AND "组合代码" LIKE 'TAP-%';
EXECUTE sync('2194-03-01');
SELECT set_eq(
    $$SELECT * FROM tap_reject$$,
    $$VALUES ('2190-01-31'::date, 'null_key', NULL, 'TAP-P0', 'TAP-PL1', 'TAP-G0', 1::numeric),
             ('2194-04-30'::date, 'unknown_product_line', 'TAP-C1', 'TAP-P3', 'TAP-PL999', 'TAP-G5', 12::numeric)$$,
    'deleting a month''s facts removes its rejects and no other month''s');
SELECT is_empty($$SELECT * FROM tap_version$$,
    'the contracts seen only in the deleted month have no version left');

-- ======================================================= blank key parts (issue 18)
-- 2195-05: plan codes '' and ' ' (and a tab) were contract keys; they are blank_key rejects.
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2195-05-01', '', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 21, 'TAP-B1'),
       ('2195-05-01', ' ', 'TAP-C1', 'TAP-PL1', 'TAP-G2', 22, 'TAP-B1'),
       ('2195-05-01', E'\t', 'TAP-C1', 'TAP-PL1', 'TAP-G3', 23, 'TAP-B1');
TRUNCATE sync_log;
EXECUTE sync('2195-05-01');
SELECT results_eq(
    $$SELECT keys_seen, rejected_null_key, rejected_blank_key FROM sync_log$$,
    $$VALUES (0::bigint, 0::bigint, 3::bigint)$$,
    'plan codes '''', '' '' and a tab are no keys: three blank_key rejects');
SELECT set_eq(
    $$SELECT reason, plan_code, aum FROM tap_reject WHERE period = '2195-05-31'$$,
    $$VALUES ('blank_key', '', 21::numeric), ('blank_key', ' ', 22::numeric), ('blank_key', E'\t', 23::numeric)$$,
    'each blank-key row is recorded with its reason and values');
SELECT is_empty($$SELECT * FROM tap_version WHERE valid_from >= '2195-01-01'$$,
    'no version for a blank key');
SELECT throws_ok(
    $$INSERT INTO customer.contract_key (company_id, plan_code, product_line_code) VALUES ('TAP-C1', ' ', 'TAP-PL1')$$,
    '23514', NULL,
    'customer.contract_key refuses a blank key part (ck_contract_key_not_blank)');

SELECT * FROM finish();
ROLLBACK;
