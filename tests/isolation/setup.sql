-- Helpers of the isolation specs (tests/isolation/specs/*.spec), in the schema `isolation`.
-- scripts/isolation.sh runs this file once, as a superuser, in the fresh database it has
-- just migrated (`cmdm migrate upgrade`: schema + the committed rules' functions); every
-- permutation of every spec then starts from isolation.reset() and ends with
-- isolation.verdict() (tests/isolation/README.md).
--
-- The data is tiny and written by hand so that the expected outputs can be reasoned about:
-- 14 companies, 21 contract keys, ~30 fact rows a month.
--   branch B01: C01..C12 (12 companies: the top 10 by AUM are strategic, the 2 smallest
--               are not); branch B02: C13, C14.
--   plan P<nn>A in PL201 (企年投资) for every company, 2 portfolios when nn is odd;
--   plan P<nn>B in PL202 (企年受托) for every even company;
--   plan P08C in PL203 (职年受托), new in 2026-02.
-- Base state (isolation.reset): months 2025-12 and 2026-01 loaded, one award and one loss,
-- hooks run. 2025-12 is the reference month of both 2025 and 2026.
--
-- The months and variants the sessions write (isolation.facts):
--   2025-12 base      A = (nn*10+1) M, B = nn*4 M: C01 (11 M) and C02 (29 M) are the two
--                     smallest of B01, so not strategic;
--   2025-12 restated  (the restatement, session c) C01 A 500 M, C02 A 300 M, C11 A 1 M,
--                     C12 A 2 M and B 1 M, C03 A 0: C11 and C12 drop out of the top 10,
--                     C01 and C02 enter it, C03 is no longer existing in PL201 — the
--                     annual flags of 2025 and 2026 change;
--   2026-01 base      ×1.01; C05 A at 0 (停缴); C06 B absent (suspended by on_missing);
--   2026-02 a         (the month's load, session a) ×1.02; C05 A back; C07 A at 0;
--                     C09 A absent; new key C08/P08C/PL203; one row of the unknown
--                     product line PL999 (a reject);
--   2026-02 a2        (a second load of the same month) ×1.5; C11 A at 0; no P08C;
--   2026-03 b         (another month: sessions b and h) ×1.03; C07 A at 0; C12 B at 0;
--                     P08C present.

CREATE SCHEMA isolation;
COMMENT ON SCHEMA isolation IS 'Helpers of the isolation specs (tests/isolation); not part of cmdm.';

-- One row per plan portfolio: the facts of every month derive from it.
CREATE TABLE isolation.portfolio (
    company_id text NOT NULL,
    plan_code text NOT NULL,
    product_line_code text NOT NULL,
    portfolio_code text NOT NULL,
    share numeric NOT NULL,        -- of the plan's AUM
    branch text NOT NULL,
    PRIMARY KEY (plan_code, portfolio_code)
);

INSERT INTO isolation.portfolio
SELECT c.company_id, c.plan_code, c.product_line_code, c.plan_code || p.n, p.share, c.branch
  FROM (SELECT 'C' || lpad(i::text, 2, '0') AS company_id,
               'P' || lpad(i::text, 2, '0') || plan AS plan_code,
               CASE plan WHEN 'A' THEN 'PL201' WHEN 'B' THEN 'PL202' ELSE 'PL203' END AS product_line_code,
               CASE WHEN i <= 12 THEN 'B01' ELSE 'B02' END AS branch,
               i, plan
          FROM generate_series(1, 14) i
          CROSS JOIN (VALUES ('A'), ('B'), ('C')) v(plan)
         WHERE plan = 'A' OR (plan = 'B' AND i % 2 = 0) OR (plan = 'C' AND i = 8)) c
  CROSS JOIN LATERAL (VALUES ('01', CASE WHEN c.plan = 'A' AND c.i % 2 = 1 THEN 0.6 ELSE 1 END),
                             ('02', CASE WHEN c.plan = 'A' AND c.i % 2 = 1 THEN 0.4 END)) p(n, share)
 WHERE p.share IS NOT NULL;

INSERT INTO customer."年金客户" (company_id, "客户名称")
SELECT DISTINCT company_id, '客户' || company_id FROM isolation.portfolio;

-- The fact rows of a month (its first day) in a variant (see the file header); NULL AUM
-- means the plan sends no rows that month.
CREATE FUNCTION isolation.facts(p_month date, p_variant text DEFAULT 'base')
RETURNS TABLE ("月度" date, "业务类型" text, "计划代码" text, company_id text, "产品线代码" text,
               "组合代码" text, "期末资产规模" numeric, "期初资产规模" numeric, "供款" numeric,
               "机构代码" text, "机构名称" text)
LANGUAGE sql STABLE AS $$
    WITH plan_aum AS (
        SELECT DISTINCT p.company_id, p.plan_code, p.product_line_code, p.branch,
               substr(p.company_id, 2)::int AS nn, right(p.plan_code, 1) AS kind
          FROM isolation.portfolio p
    ), aum AS (
        SELECT a.*,
               CASE
                   -- the plan does not exist or sends nothing this month
                   WHEN a.kind = 'C' AND NOT (p_month = DATE '2026-02-01' AND p_variant = 'a'
                                              OR p_month = DATE '2026-03-01') THEN NULL
                   WHEN p_month = DATE '2026-01-01' AND a.plan_code = 'P06B' THEN NULL
                   WHEN p_month = DATE '2026-02-01' AND p_variant = 'a' AND a.plan_code = 'P09A' THEN NULL
                   -- at 0 (停缴)
                   WHEN p_month = DATE '2026-01-01' AND a.plan_code = 'P05A' THEN 0
                   WHEN p_month = DATE '2026-02-01' AND p_variant = 'a' AND a.plan_code = 'P07A' THEN 0
                   WHEN p_month = DATE '2026-02-01' AND p_variant = 'a2' AND a.plan_code = 'P11A' THEN 0
                   WHEN p_month = DATE '2026-03-01' AND a.plan_code IN ('P07A', 'P12B') THEN 0
                   WHEN p_month = DATE '2025-12-01' AND p_variant = 'restated' AND a.plan_code = 'P03A' THEN 0
                   -- the restatement's new ranks
                   WHEN p_month = DATE '2025-12-01' AND p_variant = 'restated' AND a.plan_code IN ('P01A', 'P02A', 'P11A', 'P12A', 'P12B')
                       THEN CASE a.plan_code WHEN 'P01A' THEN 500 WHEN 'P02A' THEN 300 WHEN 'P11A' THEN 1
                                             WHEN 'P12A' THEN 2 ELSE 1 END * 1000000.0
                   WHEN a.kind = 'C' THEN 5000000.0
                   ELSE CASE a.kind WHEN 'A' THEN a.nn * 10 + 1 ELSE a.nn * 4 END * 1000000.0
                        * CASE
                              WHEN p_month = DATE '2025-12-01' THEN 1
                              WHEN p_month = DATE '2026-01-01' THEN 1.01
                              WHEN p_month = DATE '2026-02-01' AND p_variant = 'a2' THEN 1.5
                              WHEN p_month = DATE '2026-02-01' THEN 1.02
                              WHEN p_month = DATE '2026-03-01' THEN 1.03
                          END
               END AS plan_aum
          FROM plan_aum a
    )
    SELECT p_month, pl."产品线"::text, a.plan_code, a.company_id, a.product_line_code,
           p.portfolio_code, round(a.plan_aum * p.share, 2), round(a.plan_aum * p.share, 2),
           0::numeric, a.branch, a.branch || '分公司'
      FROM aum a
      JOIN isolation.portfolio p ON p.plan_code = a.plan_code
      JOIN mapping."产品线" pl ON pl."产品线代码" = a.product_line_code
     WHERE a.plan_aum IS NOT NULL
    UNION ALL
    -- one reject: a product line unknown to mapping."产品线"
    SELECT p_month, '未知', 'P10X', 'C10', 'PL999', 'P10X01', 1000000, 1000000, 0, 'B01', 'B01分公司'
     WHERE p_month = DATE '2026-02-01' AND p_variant = 'a'
$$;

-- What a session loads: the month's facts, as the ETL writes them (one INSERT).
CREATE PROCEDURE isolation.insert_facts(p_month date, p_variant text DEFAULT 'base')
LANGUAGE sql AS $$
    INSERT INTO business."规模明细" ("月度", "业务类型", "计划代码", company_id, "产品线代码", "组合代码",
                                     "期末资产规模", "期初资产规模", "供款", "机构代码", "机构名称")
    SELECT * FROM isolation.facts(p_month, p_variant)
$$;

-- The base state, computed once (below): outputs and inputs emptied, the base facts and
-- events inserted with the hooks off, then the hooks of both months run as `cmdm backfill`
-- runs them.
CREATE PROCEDURE isolation.compute_base() LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('cmdm.post_hooks', 'off', true);
    DELETE FROM customer.customer_plan_contract;
    DELETE FROM customer.contract_key;
    DELETE FROM customer.fct_customer_business_monthly_status;
    DELETE FROM customer.fct_customer_plan_monthly_status;
    DELETE FROM customer.annual_reference;
    DELETE FROM customer.annual_company_status;
    DELETE FROM customer.annual_product_line_status;
    DELETE FROM customer.annual_plan_status;
    DELETE FROM cmdm.rejected_fact;
    DELETE FROM cmdm.hook_run;
    DELETE FROM business."规模明细";
    DELETE FROM customer."当年中标";
    DELETE FROM customer."当年流失";
    CALL isolation.insert_facts(DATE '2025-12-01');
    CALL isolation.insert_facts(DATE '2026-01-01');
    INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
    VALUES ('C02', 'PL201', 'P02A', DATE '2026-01-10');
    INSERT INTO customer."当年流失" (company_id, "产品线代码", "计划代码", "上报月份")
    VALUES ('C04', 'PL202', 'P04B', DATE '2025-12-20');
    PERFORM cmdm.run_hooks('annuity_performance', ARRAY[DATE '2025-12-01'], '{}', 'cli',
                           daterange(DATE '2026-01-01', DATE '2026-02-01'));
    PERFORM cmdm.run_hooks('annuity_performance', ARRAY[DATE '2026-01-01'],
                           ARRAY[DATE '2025-12-20', DATE '2026-01-10'], 'cli');
END
$$;
CALL isolation.compute_base();

-- A copy of every table of the cmdm, input and output schemas in the base state (the
-- Alembic version tables apart): reset() puts them back. Generic, so that a table a later
-- migration adds (a log, a queue, a record of stale months) starts every permutation in
-- its base state too.
CREATE SCHEMA isolation_base;
CREATE TABLE isolation.saved_table (
    source regclass PRIMARY KEY,
    copy regclass NOT NULL,
    columns text NOT NULL,      -- the columns a copy restores (generated ones excluded)
    overriding boolean NOT NULL -- an identity GENERATED ALWAYS: OVERRIDING SYSTEM VALUE
);
DO $$
DECLARE
    v_table record;
BEGIN
    FOR v_table IN
        SELECT c.oid, n.nspname, c.relname
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('business', 'customer', 'mapping', 'cmdm')
           AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND c.relname NOT LIKE 'alembic%'
    LOOP
        EXECUTE format('CREATE TABLE isolation_base.%I AS SELECT * FROM %I.%I',
                       v_table.nspname || '.' || v_table.relname, v_table.nspname, v_table.relname);
        INSERT INTO isolation.saved_table
        SELECT v_table.oid, format('isolation_base.%I', v_table.nspname || '.' || v_table.relname)::regclass,
               string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
               bool_or(a.attidentity = 'a')
          FROM pg_attribute a
         WHERE a.attrelid = v_table.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
    END LOOP;
END
$$;

-- Every permutation's starting point (the spec's `setup`): every saved table as it was in
-- the base state, written with triggers and foreign-key checks off (replica mode: no hook
-- is queued, no propagation runs; the copies are consistent as saved).
CREATE PROCEDURE isolation.reset() LANGUAGE plpgsql AS $$
DECLARE
    v_table record;
BEGIN
    PERFORM set_config('session_replication_role', 'replica', true);
    FOR v_table IN SELECT * FROM isolation.saved_table LOOP
        EXECUTE format('DELETE FROM %s', v_table.source);
        EXECUTE format('INSERT INTO %s (%s) %s SELECT %s FROM %s', v_table.source, v_table.columns,
                       CASE WHEN v_table.overriding THEN 'OVERRIDING SYSTEM VALUE' ELSE '' END,
                       v_table.columns, v_table.copy);
    END LOOP;
    PERFORM set_config('session_replication_role', 'origin', true);
END
$$;

-- Every permutation's end (the spec's `teardown`, whose result isolationtester prints):
-- the invariants, the comparison of the stored outputs with a fresh computation (the SQL
-- `cmdm check` runs, over every loaded month), and the visible state, one line each.
CREATE FUNCTION isolation.verdict()
RETURNS TABLE (item text, value text) LANGUAGE plpgsql AS $$
DECLARE
    v_first date;
    v_last date;
    v_month date;
    v_diff record;
    v_counts jsonb := '{}';
    v_total bigint := 0;
BEGIN
    -- The facts, per loaded month: rows and AUM.
    RETURN QUERY
    SELECT 'facts ' || to_char(f."月度", 'YYYY-MM'),
           count(*) || ' rows, AUM ' || to_char(sum(f."期末资产规模"), 'FM999999999990.00')
      FROM business."规模明细" f GROUP BY f."月度" ORDER BY f."月度";
    RETURN QUERY
    SELECT 'events', (SELECT count(*) FROM customer."当年中标") || ' 中标, '
                     || (SELECT count(*) FROM customer."当年流失") || ' 流失';

    -- Invariant 1: no two versions of a key overlap (on the key itself, not key_id).
    RETURN QUERY
    SELECT 'overlapping versions', count(*)::text
      FROM customer.customer_plan_contract x
      JOIN customer.customer_plan_contract y
        ON y.company_id = x.company_id AND y.plan_code = x.plan_code
       AND y.product_line_code = x.product_line_code AND y.contract_id > x.contract_id
       AND daterange(x.valid_from, x.valid_to) && daterange(y.valid_from, y.valid_to);
    -- Invariant 2: exactly one current version per key (on_missing = suspend keeps every
    -- key current once it appeared).
    RETURN QUERY
    SELECT 'keys without exactly one current version', count(*)::text
      FROM (SELECT 1 FROM customer.customer_plan_contract c
             GROUP BY c.company_id, c.plan_code, c.product_line_code
            HAVING count(*) FILTER (WHERE c.valid_to = DATE '9999-12-31') <> 1) k;

    -- Stored = fresh computation: the annual decisions of every year, the history over the
    -- loaded range, each loaded month's snapshots; and no snapshot of a month not loaded.
    SELECT min(l), max(l) INTO v_first, v_last FROM customer.loaded_months() l;
    IF v_first IS NOT NULL THEN
        FOR v_diff IN
            SELECT c.table_name || ' ' || c.difference AS what
              FROM customer.check_annual_statuses(ARRAY(
                       SELECT generate_series(extract(year FROM v_first)::int,
                                              extract(year FROM v_last)::int))) c
            UNION ALL
            SELECT 'customer.customer_plan_contract ' || h.difference
              FROM customer.check_contract_history(v_first, v_last) h
        LOOP
            v_counts := jsonb_set(v_counts, ARRAY[v_diff.what],
                                  to_jsonb(coalesce((v_counts ->> v_diff.what)::int, 0) + 1));
            v_total := v_total + 1;
        END LOOP;
        FOR v_month IN SELECT l FROM customer.loaded_months() l ORDER BY l LOOP
            FOR v_diff IN
                SELECT s.table_name || ' ' || s.difference AS what
                  FROM customer.check_monthly_snapshot(v_month) s
            LOOP
                v_counts := jsonb_set(v_counts, ARRAY[v_diff.what],
                                      to_jsonb(coalesce((v_counts ->> v_diff.what)::int, 0) + 1));
                v_total := v_total + 1;
            END LOOP;
        END LOOP;
    END IF;
    FOR v_diff IN
        SELECT t.table_name || ' of a month not loaded' AS what, t.n
          FROM (SELECT 'customer.fct_customer_business_monthly_status' AS table_name, count(*) AS n
                  FROM customer.fct_customer_business_monthly_status s
                 WHERE s.snapshot_month NOT IN (SELECT l FROM customer.loaded_months() l)
                UNION ALL
                SELECT 'customer.fct_customer_plan_monthly_status', count(*)
                  FROM customer.fct_customer_plan_monthly_status s
                 WHERE s.snapshot_month NOT IN (SELECT l FROM customer.loaded_months() l)) t
         WHERE t.n > 0
    LOOP
        v_counts := v_counts || jsonb_build_object(v_diff.what, v_diff.n);
        v_total := v_total + v_diff.n;
    END LOOP;
    RETURN QUERY SELECT 'differences from a fresh computation', v_total::text;
    -- Which tables differ, when any do (one line each).
    RETURN QUERY SELECT '  ' || e.key, e.value #>> '{}' FROM jsonb_each(v_counts) e ORDER BY e.key COLLATE "C";

    -- The visible state: versions, snapshot rows, and the name PL201 has everywhere.
    RETURN QUERY
    SELECT 'versions (current)', count(*) || ' (' || count(*) FILTER (WHERE c.valid_to = DATE '9999-12-31') || ')'
      FROM customer.customer_plan_contract c;
    RETURN QUERY
    SELECT 'snapshot rows business/plan',
           (SELECT count(*) FROM customer.fct_customer_business_monthly_status) || '/'
           || (SELECT count(*) FROM customer.fct_customer_plan_monthly_status);
    RETURN QUERY
    SELECT 'PL201 named', string_agg(DISTINCT (n.name || ' in ' || n.t) COLLATE "C", ', '
                                     ORDER BY (n.name || ' in ' || n.t) COLLATE "C")
      FROM (SELECT m."产品线"::text AS name, 'mapping' AS t FROM mapping."产品线" m WHERE m."产品线代码" = 'PL201'
            UNION ALL
            SELECT c.product_line_name, 'versions' FROM customer.customer_plan_contract c WHERE c.product_line_code = 'PL201'
            UNION ALL
            SELECT s.product_line_name, 'snapshots' FROM customer.fct_customer_business_monthly_status s WHERE s.product_line_code = 'PL201'
            UNION ALL
            SELECT s.product_line_name, 'snapshots' FROM customer.fct_customer_plan_monthly_status s WHERE s.product_line_code = 'PL201') n;
END
$$;

-- (f) `cmdm rebuild --from M --to N` in SQL, as cmdm_admin/rebuild.py runs it in its one
-- transaction (the caller's). rebuild_begin: the range widened to whole years
-- (rebuild.rebuild_range: January of M's year through the last loaded month of N's year,
-- never before N), the domain check, the deployed rules read, then the hook lock taken
-- exclusively (rebuild._lock_hooks: cmdm.take_hook_lock('contract_sync'), or the advisory
-- lock of rules deployed before it existed). rebuild_run: the "before" copies
-- (rebuild._copy_before), every year of the range decided again
-- (customer.decide_annual_statuses), then cmdm.run_hooks of each month in ascending order
-- with the same deferred range as `cmdm backfill` (hooks.run_hooks: trigger kind 'cli').
-- Left out: the before/after comparison rebuild.py prints (reads of its own temp tables).
-- tests/isolation/mirrored-sources names the Python this follows; scripts/isolation.sh
-- warns when that changes.
CREATE PROCEDURE isolation.rebuild_begin(p_from date, p_to date) LANGUAGE plpgsql AS $$
DECLARE
    v_latest date;
BEGIN
    SELECT max(l) INTO v_latest
      FROM customer.loaded_months(date_trunc('month', p_to)::date, make_date(extract(year FROM p_to)::int, 12, 1)) l;
    CREATE TEMP TABLE isolation_rebuild_range ON COMMIT DROP AS
    SELECT make_date(extract(year FROM p_from)::int, 1, 1) AS first_month,
           coalesce(date_trunc('month', v_latest)::date, date_trunc('month', p_to)::date) AS last_month;
    PERFORM FROM cmdm.hook_domain d WHERE d.domain = 'annuity_performance';
    PERFORM d.revision, d.sha256 FROM cmdm.rule_deployment d ORDER BY d.deployment_id DESC LIMIT 1;
    IF to_regprocedure('cmdm.take_hook_lock(text, boolean)') IS NOT NULL THEN
        PERFORM cmdm.take_hook_lock('contract_sync');
    ELSE
        PERFORM pg_advisory_xact_lock(hashtext('cmdm:contract_sync'));
    END IF;
END
$$;

CREATE PROCEDURE isolation.rebuild_run() LANGUAGE plpgsql AS $$
DECLARE
    v_first date;
    v_last date;
    v_month date;
BEGIN
    SELECT r.first_month, r.last_month INTO v_first, v_last FROM pg_temp.isolation_rebuild_range r;
    CREATE TEMP TABLE cmdm_rebuild_customer_plan_contract ON COMMIT DROP AS
    SELECT * FROM customer.customer_plan_contract c WHERE c.valid_to >= v_first;
    CREATE TEMP TABLE cmdm_rebuild_fct_customer_business_monthly_status ON COMMIT DROP AS
    SELECT * FROM customer.fct_customer_business_monthly_status s WHERE s.snapshot_month >= v_first;
    CREATE TEMP TABLE cmdm_rebuild_fct_customer_plan_monthly_status ON COMMIT DROP AS
    SELECT * FROM customer.fct_customer_plan_monthly_status s WHERE s.snapshot_month >= v_first;
    PERFORM FROM customer.decide_annual_statuses(ARRAY(
        SELECT generate_series(extract(year FROM v_first)::int, extract(year FROM v_last)::int)));
    v_month := v_first;
    WHILE v_month <= v_last LOOP
        PERFORM FROM cmdm.run_hooks('annuity_performance', ARRAY[v_month], '{}', 'cli',
                                    CASE WHEN v_month < v_last
                                         THEN daterange((v_month + INTERVAL '1 month')::date,
                                                        (v_last + INTERVAL '1 month')::date) END);
        v_month := (v_month + INTERVAL '1 month')::date;
    END LOOP;
END
$$;

-- (g) A rules deploy in SQL, as the rules revision's upgrade runs in the migration's one
-- transaction (cmdm_admin/migrations/env.py, migrations/versions/NNNN_rules_*.py): the
-- project's lock_timeout, the migration lock, then every routine of the deployed rules
-- created again (CREATE OR REPLACE, with the body it has: pg_get_functiondef, so an
-- unchanged redeploy of the same rules) — deploy_record then records the deploy in
-- cmdm.rule_deployment (a copy of the newest row under a new revision name). Left out:
-- trigger DDL (a revision leaves triggers that are in place unchanged alone), the
-- managed_object registration, alembic_version and the grants script.
CREATE PROCEDURE isolation.deploy_functions() LANGUAGE plpgsql AS $$
DECLARE
    v_identity text;
BEGIN
    PERFORM set_config('lock_timeout', '5s', true);
    PERFORM pg_advisory_xact_lock(hashtext('cmdm:migrate'));
    FOR v_identity IN
        SELECT unnest(d.functions) FROM cmdm.rule_deployment d ORDER BY d.deployment_id DESC LIMIT 1
    LOOP
        EXECUTE pg_get_functiondef(to_regprocedure(v_identity));
    END LOOP;
END
$$;

CREATE PROCEDURE isolation.deploy_record() LANGUAGE sql AS $$
    INSERT INTO cmdm.rule_deployment (revision, down_revision, sha256, rules_text, functions, function_defs)
    SELECT d.revision || '_redeployed', d.revision, d.sha256, d.rules_text, d.functions, d.function_defs
      FROM cmdm.rule_deployment d ORDER BY d.deployment_id DESC LIMIT 1
$$;

-- The sessions that stand for the ETL run as cmdm_etl (SET LOCAL ROLE), as a production ETL does.
GRANT USAGE ON SCHEMA isolation TO cmdm_etl;
GRANT SELECT ON isolation.portfolio TO cmdm_etl;
GRANT EXECUTE ON FUNCTION isolation.facts(date, text) TO cmdm_etl;
GRANT EXECUTE ON PROCEDURE isolation.insert_facts(date, text) TO cmdm_etl;
