-- cmdm-verify: read-only
-- 020: the five ETL input tables as 0001_base_schema creates them on a fresh database
-- (mapping."产品线", customer."年金客户", business."规模明细", customer."当年中标",
-- customer."当年流失"): columns, types, keys, indexes. Read-only (catalog only); the
-- product-line seed and rows loaded into them are 021_input_tables_behaviour.sql.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(47);

-- ---------------------------------------------------------------- mapping."产品线"
SELECT has_table('mapping', '产品线', 'table mapping."产品线" exists');
SELECT columns_are('mapping', '产品线', ARRAY['产品线代码', '产品线'],
    'mapping."产品线" has exactly its contract columns');
SELECT col_type_is('mapping', '产品线', '产品线代码', 'character varying(20)', 'mapping."产品线"."产品线代码" is varchar(20)');
SELECT col_type_is('mapping', '产品线', '产品线', 'character varying(50)', 'mapping."产品线"."产品线" is varchar(50)');
SELECT col_not_null('mapping', '产品线', '产品线', 'mapping."产品线"."产品线" is NOT NULL');
SELECT col_is_pk('mapping', '产品线', '产品线代码', 'mapping."产品线" PK is "产品线代码" (referenced by the outputs)');

-- ---------------------------------------------------------------- customer."年金客户"
SELECT has_table('customer', '年金客户', 'table customer."年金客户" exists');
SELECT columns_are('customer', '年金客户', ARRAY['company_id', '客户名称'],
    'customer."年金客户" has exactly its contract columns');
SELECT col_type_is('customer', '年金客户', 'company_id', 'character varying', 'customer."年金客户".company_id is varchar');
SELECT col_type_is('customer', '年金客户', '客户名称', 'character varying', 'customer."年金客户"."客户名称" is varchar');
SELECT col_is_pk('customer', '年金客户', 'company_id', 'customer."年金客户" PK is company_id (referenced by the outputs)');

-- ---------------------------------------------------------------- business."规模明细"
SELECT has_table('business', '规模明细', 'table business."规模明细" exists');
SELECT columns_are('business', '规模明细',
    ARRAY['id', '月度', '业务类型', '计划代码', 'company_id', '产品线代码', '组合代码',
          '期末资产规模', '期初资产规模', '供款', '机构代码', '机构名称'],
    'business."规模明细" has exactly its columns');
SELECT col_type_is('business', '规模明细', 'id', 'bigint', 'business."规模明细".id is bigint');
SELECT col_type_is('business', '规模明细', '月度', 'date', 'business."规模明细"."月度" is date');
SELECT col_type_is('business', '规模明细', '业务类型', 'character varying', 'business."规模明细"."业务类型" is varchar');
SELECT col_type_is('business', '规模明细', '计划代码', 'character varying', 'business."规模明细"."计划代码" is varchar');
SELECT col_type_is('business', '规模明细', 'company_id', 'character varying', 'business."规模明细".company_id is varchar');
SELECT col_type_is('business', '规模明细', '产品线代码', 'character varying(20)', 'business."规模明细"."产品线代码" is varchar(20)');
SELECT col_type_is('business', '规模明细', '组合代码', 'character varying', 'business."规模明细"."组合代码" is varchar');
SELECT col_type_is('business', '规模明细', '期末资产规模', 'numeric(20,2)', 'business."规模明细"."期末资产规模" is numeric(20,2)');
SELECT col_type_is('business', '规模明细', '期初资产规模', 'numeric(20,2)', 'business."规模明细"."期初资产规模" is numeric(20,2)');
SELECT col_type_is('business', '规模明细', '供款', 'numeric(20,2)', 'business."规模明细"."供款" is numeric(20,2)');
SELECT col_type_is('business', '规模明细', '机构代码', 'character varying', 'business."规模明细"."机构代码" is varchar');
SELECT col_type_is('business', '规模明细', '机构名称', 'character varying', 'business."规模明细"."机构名称" is varchar');
SELECT col_not_null('business', '规模明细', '月度', 'business."规模明细"."月度" is NOT NULL');
SELECT col_is_pk('business', '规模明细', 'id', 'business."规模明细" PK is id');
-- has_index compares with pg_get_indexdef(), which double-quotes non-ASCII column names
SELECT has_index('business', '规模明细', 'idx_规模明细_月度', ARRAY['"月度"'],
    'business."规模明细" has index idx_规模明细_月度 ("月度")');

-- ---------------------------------------------------------------- customer."当年中标"
SELECT has_table('customer', '当年中标', 'table customer."当年中标" exists');
SELECT columns_are('customer', '当年中标', ARRAY['id', 'company_id', '产品线代码', '计划代码', '上报月份'],
    'customer."当年中标" has exactly its columns');
SELECT col_type_is('customer', '当年中标', 'id', 'bigint', 'customer."当年中标".id is bigint');
SELECT col_type_is('customer', '当年中标', 'company_id', 'character varying', 'customer."当年中标".company_id is varchar');
SELECT col_type_is('customer', '当年中标', '产品线代码', 'character varying(20)', 'customer."当年中标"."产品线代码" is varchar(20)');
SELECT col_type_is('customer', '当年中标', '计划代码', 'character varying', 'customer."当年中标"."计划代码" is varchar');
SELECT col_type_is('customer', '当年中标', '上报月份', 'date', 'customer."当年中标"."上报月份" is date');
SELECT col_is_pk('customer', '当年中标', 'id', 'customer."当年中标" PK is id');
SELECT has_index('customer', '当年中标', 'idx_当年中标_key', ARRAY['company_id', '"产品线代码"', '"上报月份"'],
    'customer."当年中标" has index idx_当年中标_key (company_id, "产品线代码", "上报月份")');

-- ---------------------------------------------------------------- customer."当年流失"
SELECT has_table('customer', '当年流失', 'table customer."当年流失" exists');
SELECT columns_are('customer', '当年流失', ARRAY['id', 'company_id', '产品线代码', '计划代码', '上报月份'],
    'customer."当年流失" has exactly its columns');
SELECT col_type_is('customer', '当年流失', 'id', 'bigint', 'customer."当年流失".id is bigint');
SELECT col_type_is('customer', '当年流失', 'company_id', 'character varying', 'customer."当年流失".company_id is varchar');
SELECT col_type_is('customer', '当年流失', '产品线代码', 'character varying(20)', 'customer."当年流失"."产品线代码" is varchar(20)');
SELECT col_type_is('customer', '当年流失', '计划代码', 'character varying', 'customer."当年流失"."计划代码" is varchar');
SELECT col_type_is('customer', '当年流失', '上报月份', 'date', 'customer."当年流失"."上报月份" is date');
SELECT col_is_pk('customer', '当年流失', 'id', 'customer."当年流失" PK is id');
SELECT has_index('customer', '当年流失', 'idx_当年流失_key', ARRAY['company_id', '"产品线代码"', '"上报月份"'],
    'customer."当年流失" has index idx_当年流失_key (company_id, "产品线代码", "上报月份")');

-- ids are identities the ETL may omit (GENERATED BY DEFAULT)
SELECT set_eq(
    $$SELECT c.relname::text, a.attname::text, a.attidentity::text
        FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       WHERE a.attrelid IN ('business."规模明细"'::regclass, 'customer."当年中标"'::regclass,
                            'customer."当年流失"'::regclass)
         AND a.attidentity <> ''$$,
    $$VALUES ('规模明细', 'id', 'd'), ('当年中标', 'id', 'd'), ('当年流失', 'id', 'd')$$,
    'the id columns of the fact/event input tables are GENERATED BY DEFAULT AS IDENTITY');

SELECT * FROM finish();
ROLLBACK;
