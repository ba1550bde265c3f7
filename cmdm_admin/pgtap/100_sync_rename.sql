-- cmdm-verify: scratch
-- 100_sync_rename: a rename in mapping."产品线" propagates to the redundant
-- product_line_name of customer.customer_plan_contract and of both snapshot tables, in
-- place, without opening versions (DESIGN §4 "Name changes"); done by the statement-level
-- trigger _100_propagate_name (cmdm.tg_product_line__propagate_name(), transition tables).
-- Only renamed product lines' rows change; an UPDATE that renames nothing touches no row;
-- several renames in one statement all propagate; later syncs write the new name and do
-- not treat the name as state.
--
-- Rows kept apart: years 2190-2199, TAP-* ids and product lines only (no real product
-- line is renamed), assertions on TAP rows only.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(12);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线")
VALUES ('TAP-PL1', 'TAP 产品线一'), ('TAP-PL2', 'TAP 产品线二');
INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES ('TAP-C1', 'pgTAP 客户 1');

CREATE TEMP TABLE sync_log ON COMMIT DROP AS
SELECT * FROM customer.sync_contract_status('2190-01-01') WITH NO DATA;
PREPARE sync(date) AS
    INSERT INTO sync_log SELECT * FROM customer.sync_contract_status($1);

-- the sentinel month 2190-01 (one NULL-company row; see 100_sync_status.sql)
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2190-01-01', 'TAP-P0', NULL, 'TAP-PL1', 'TAP-G0', 1, 'TAP-B1');
EXECUTE sync('2190-01-01');

-- TAP-C1/TAP-P1/TAP-PL1: 100 in 2195-01, 0 in 2195-02 (two versions);
-- TAP-C1/TAP-P2/TAP-PL2: 50 in both (one version).
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2195-01-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2195-01-01', 'TAP-P2', 'TAP-C1', 'TAP-PL2', 'TAP-G1', 50, 'TAP-B1');
EXECUTE sync('2195-01-01');
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2195-02-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 0, 'TAP-B1'),
       ('2195-02-01', 'TAP-P2', 'TAP-C1', 'TAP-PL2', 'TAP-G1', 50, 'TAP-B1');
EXECUTE sync('2195-02-01');

-- snapshot rows (written directly: only their product_line_name matters here)
INSERT INTO customer.fct_customer_business_monthly_status
    (snapshot_month, company_id, product_line_code, product_line_name)
VALUES ('2195-01-31', 'TAP-C1', 'TAP-PL1', 'TAP 产品线一'), ('2195-02-28', 'TAP-C1', 'TAP-PL1', 'TAP 产品线一'),
       ('2195-01-31', 'TAP-C1', 'TAP-PL2', 'TAP 产品线二');
INSERT INTO customer.fct_customer_plan_monthly_status
    (snapshot_month, company_id, plan_code, product_line_code, product_line_name)
VALUES ('2195-01-31', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP 产品线一'),
       ('2195-01-31', 'TAP-C1', 'TAP-P2', 'TAP-PL2', 'TAP 产品线二');

CREATE TEMP TABLE before_rename ON COMMIT DROP AS
SELECT contract_id, company_id, plan_code, product_line_code, valid_from, valid_to,
       contract_status, status_year, is_strategic, is_existing, created_at
  FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%';

SELECT results_eq(
    $$SELECT plan_code::text, valid_from, valid_to, contract_status::text, product_line_name::text
        FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%' ORDER BY 1, 2$$,
    $$VALUES ('TAP-P1', '2195-01-31'::date, '2195-02-28'::date, '正常', 'TAP 产品线一'),
             ('TAP-P1', '2195-02-28'::date, '9999-12-31'::date, '停缴', 'TAP 产品线一'),
             ('TAP-P2', '2195-01-31'::date, '9999-12-31'::date, '正常', 'TAP 产品线二')$$,
    'before: three versions, each with its product line''s name');

-- ======================================================= a rename
UPDATE mapping."产品线" SET "产品线" = 'TAP 产品线一（新）' WHERE "产品线代码" = 'TAP-PL1';
SELECT results_eq(
    $$SELECT plan_code::text, valid_from, product_line_name::text
        FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%' ORDER BY 1, 2$$,
    $$VALUES ('TAP-P1', '2195-01-31'::date, 'TAP 产品线一（新）'),
             ('TAP-P1', '2195-02-28'::date, 'TAP 产品线一（新）'),
             ('TAP-P2', '2195-01-31'::date, 'TAP 产品线二')$$,
    'rename: every version of the renamed product line has the new name, the other keeps its own');
SELECT set_eq(
    $$SELECT contract_id, company_id, plan_code, product_line_code, valid_from, valid_to,
             contract_status, status_year, is_strategic, is_existing, created_at
        FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%'$$,
    $$SELECT * FROM before_rename$$,
    'rename: no version opened, closed or removed; the same rows, updated in place');
SELECT results_eq(
    $$SELECT snapshot_month, product_line_code::text, product_line_name::text
        FROM customer.fct_customer_business_monthly_status WHERE company_id LIKE 'TAP-%' ORDER BY 1, 2$$,
    $$VALUES ('2195-01-31'::date, 'TAP-PL1', 'TAP 产品线一（新）'),
             ('2195-01-31'::date, 'TAP-PL2', 'TAP 产品线二'),
             ('2195-02-28'::date, 'TAP-PL1', 'TAP 产品线一（新）')$$,
    'rename: fct_customer_business_monthly_status has the new name');
SELECT results_eq(
    $$SELECT snapshot_month, plan_code::text, product_line_name::text
        FROM customer.fct_customer_plan_monthly_status WHERE company_id LIKE 'TAP-%' ORDER BY 1, 2$$,
    $$VALUES ('2195-01-31'::date, 'TAP-P1', 'TAP 产品线一（新）'),
             ('2195-01-31'::date, 'TAP-P2', 'TAP 产品线二')$$,
    'rename: fct_customer_plan_monthly_status has the new name');

-- ======================================================= an UPDATE that renames nothing
CREATE TEMP TABLE before_noop ON COMMIT DROP AS
SELECT 'contract' AS t, ctid::text AS tid FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%'
UNION ALL
SELECT 'business', ctid::text FROM customer.fct_customer_business_monthly_status WHERE company_id LIKE 'TAP-%'
UNION ALL
SELECT 'plan', ctid::text FROM customer.fct_customer_plan_monthly_status WHERE company_id LIKE 'TAP-%';
UPDATE mapping."产品线" SET "产品线" = "产品线" WHERE "产品线代码" IN ('TAP-PL1', 'TAP-PL2');
SELECT set_eq(
    $$SELECT 'contract' AS t, ctid::text AS tid FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%'
      UNION ALL
      SELECT 'business', ctid::text FROM customer.fct_customer_business_monthly_status WHERE company_id LIKE 'TAP-%'
      UNION ALL
      SELECT 'plan', ctid::text FROM customer.fct_customer_plan_monthly_status WHERE company_id LIKE 'TAP-%'$$,
    $$SELECT * FROM before_noop$$,
    'an UPDATE that keeps the names rewrites no output row (same ctid)');

-- ======================================================= two renames in one statement
UPDATE mapping."产品线"
   SET "产品线" = CASE "产品线代码" WHEN 'TAP-PL1' THEN 'TAP 产品线一 v3' ELSE 'TAP 产品线二 v2' END
 WHERE "产品线代码" IN ('TAP-PL1', 'TAP-PL2');
SELECT results_eq(
    $$SELECT plan_code::text, valid_from, product_line_name::text
        FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%' ORDER BY 1, 2$$,
    $$VALUES ('TAP-P1', '2195-01-31'::date, 'TAP 产品线一 v3'),
             ('TAP-P1', '2195-02-28'::date, 'TAP 产品线一 v3'),
             ('TAP-P2', '2195-01-31'::date, 'TAP 产品线二 v2')$$,
    'two renames in one statement: both propagate');
SELECT set_eq(
    $$SELECT product_line_code::text, product_line_name::text FROM customer.fct_customer_business_monthly_status
       WHERE company_id LIKE 'TAP-%'
      UNION
      SELECT product_line_code::text, product_line_name::text FROM customer.fct_customer_plan_monthly_status
       WHERE company_id LIKE 'TAP-%'$$,
    $$VALUES ('TAP-PL1', 'TAP 产品线一 v3'), ('TAP-PL2', 'TAP 产品线二 v2')$$,
    'two renames in one statement: both snapshot tables follow');
SELECT set_eq(
    $$SELECT contract_id, company_id, plan_code, product_line_code, valid_from, valid_to,
             contract_status, status_year, is_strategic, is_existing, created_at
        FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%'$$,
    $$SELECT * FROM before_rename$$,
    'two renames: still the same versions');

-- ======================================================= syncs after a rename
-- A re-sync of both months: the name is no tracked state, nothing changes.
TRUNCATE sync_log;
EXECUTE sync('2195-01-01');
EXECUTE sync('2195-02-01');
SELECT is_empty(
    $$SELECT period FROM sync_log
       WHERE keys_changed <> 0 OR versions_opened <> 0 OR versions_closed <> 0 OR versions_removed <> 0$$,
    'a re-sync after a rename changes no key');
-- 2195-03: TAP-P1 back to 100 -> a new 正常 version, written with the current name.
INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码", "期末资产规模", "机构代码")
VALUES ('2195-03-01', 'TAP-P1', 'TAP-C1', 'TAP-PL1', 'TAP-G1', 100, 'TAP-B1'),
       ('2195-03-01', 'TAP-P2', 'TAP-C1', 'TAP-PL2', 'TAP-G1', 50, 'TAP-B1');
EXECUTE sync('2195-03-01');
SELECT results_eq(
    $$SELECT plan_code::text, valid_from, valid_to, contract_status::text, product_line_name::text
        FROM customer.customer_plan_contract WHERE company_id LIKE 'TAP-%' ORDER BY 1, 2$$,
    $$VALUES ('TAP-P1', '2195-01-31'::date, '2195-02-28'::date, '正常', 'TAP 产品线一 v3'),
             ('TAP-P1', '2195-02-28'::date, '2195-03-31'::date, '停缴', 'TAP 产品线一 v3'),
             ('TAP-P1', '2195-03-31'::date, '9999-12-31'::date, '正常', 'TAP 产品线一 v3'),
             ('TAP-P2', '2195-01-31'::date, '9999-12-31'::date, '正常', 'TAP 产品线二 v2')$$,
    'a version opened after the rename carries the new name');
SELECT is_empty(
    $$SELECT c.contract_id FROM customer.customer_plan_contract c
        JOIN mapping."产品线" pl ON pl."产品线代码" = c.product_line_code
       WHERE c.company_id LIKE 'TAP-%' AND c.product_line_name IS DISTINCT FROM pl."产品线"$$,
    'every TAP version carries its product line''s current name');

SELECT * FROM finish();
ROLLBACK;
