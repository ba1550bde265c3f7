-- cmdm-verify: scratch
-- 021: the five ETL input tables at work (their structure is 020_input_tables.sql): the
-- product-line seed of a fresh database, rows loading without ids (identities), numeric
-- precision, and the unique and NOT NULL violations. Scratch: it writes the ETL's tables.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(7);

-- ---------------------------------------------------------------- behaviour
SELECT set_eq(
    $$SELECT "产品线代码"::text, "产品线"::text FROM mapping."产品线"$$,
    $$VALUES ('PL201', '企年投资'), ('PL202', '企年受托'), ('PL203', '职年受托'),
             ('PL204', '职年投资'), ('PL205', '养老保障')$$,
    'mapping."产品线" is seeded with exactly PL201..PL205');

SELECT lives_ok(
    $$INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "期末资产规模")
      VALUES ('2025-01-31', 'PGTAP_P1', 'PGTAP_C1', 'PL201', 1234.56)$$,
    'a 规模明细 row loads without an id (identity fills it)');
SELECT is(
    (SELECT "期末资产规模" FROM business."规模明细" WHERE "计划代码" = 'PGTAP_P1'),
    1234.56::numeric,
    'numeric(20,2) keeps two decimals');
SELECT lives_ok(
    $$INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
      VALUES ('PGTAP_C1', 'PL201', 'PGTAP_P1', '2025-01-31');
      INSERT INTO customer."当年流失" (company_id, "产品线代码", "计划代码", "上报月份")
      VALUES ('PGTAP_C1', 'PL201', 'PGTAP_P1', '2025-01-31')$$,
    'win and churn rows load without an id');

-- ---------------------------------------------------------------- error codes
SELECT throws_ok(
    $$INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('PL201', 'dup')$$,
    '23505', NULL,
    'a duplicate product-line code is rejected (unique_violation)');
SELECT throws_ok(
    $$INSERT INTO customer."年金客户" (company_id) VALUES ('PGTAP_C1'), ('PGTAP_C1')$$,
    '23505', NULL,
    'a duplicate company_id is rejected (unique_violation)');
SELECT throws_ok(
    $$INSERT INTO business."规模明细" ("计划代码") VALUES ('PGTAP_P2')$$,
    '23502', NULL,
    'a 规模明细 row without "月度" is rejected (not_null_violation)');

SELECT * FROM finish();
ROLLBACK;
