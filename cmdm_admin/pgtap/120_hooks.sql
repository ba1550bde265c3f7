-- cmdm-verify: scratch
-- 120_hooks: the post-ETL hooks (DESIGN §7, docs/hooks.md): the statement triggers on the
-- facts and events tables, the deferred constraint trigger that runs the hooks once per
-- month at commit, CALL customer.run_post_etl_hooks, the cmdm.post_hooks off switch, a
-- disabled domain, and a failing step rolling back with a message naming step and period.
--
-- A pgTAP file runs in one transaction that is rolled back, so it never commits:
-- `SET CONSTRAINTS ALL IMMEDIATE` fires the deferred trigger's pending events exactly as
-- COMMIT would (retroactively, once), and `SET CONSTRAINTS ALL DEFERRED` restores the
-- commit-time behaviour for the next case.
--
-- Rows kept apart (a scratch suite, yet written to leave any other rows alone):
-- only years 2191 and 2250, only TAP-* companies, plans, portfolios, branches and product
-- lines; assertions on hook runs only for those months.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';
SELECT plan(52);

-- ======================================================= fixtures
INSERT INTO mapping."产品线" ("产品线代码", "产品线") VALUES ('TAP-PL1', 'TAP 产品线一');
INSERT INTO customer."年金客户" (company_id, "客户名称")
SELECT c, 'pgTAP ' || c FROM unnest(ARRAY['TAP-C1', 'TAP-C2', 'TAP-C3']) c;
-- fact(month, company, plan, AUM): product line TAP-PL1, portfolio TAP-G1, branch TAP-B1
PREPARE fact(date, text, text, numeric) AS
    INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码",
                                   "期末资产规模", "机构代码")
    VALUES ($1, $2, $3, 'TAP-PL1', 'TAP-G1', $4, 'TAP-B1');
CREATE TEMP VIEW tap_runs AS
SELECT r.period, r.step, r.trigger_kind, r.outcome, r.error
  FROM cmdm.hook_run r
 WHERE r.period >= DATE '2191-01-01' AND r.period < DATE '2193-01-01';
CREATE TEMP VIEW tap_contracts AS
SELECT c.company_id, c.plan_code, c.valid_from, c.valid_to, c.contract_status
  FROM customer.customer_plan_contract c
 WHERE c.company_id LIKE 'TAP-%';
CREATE TEMP VIEW tap_snapshots AS
SELECT s.snapshot_month, s.company_id, s.aum_balance, s.is_winning_this_year
  FROM customer.fct_customer_business_monthly_status s
 WHERE s.company_id LIKE 'TAP-%';

-- ======================================================= structure
SELECT trigger_is('business', '规模明细', '_200_post_etl_hooks_insert',
                  'cmdm', 'tg_facts__queue_hooks', 'facts INSERT queues the months');
SELECT trigger_is('business', '规模明细', '_200_post_etl_hooks_delete',
                  'cmdm', 'tg_facts__queue_hooks', 'facts DELETE queues the months');
SELECT trigger_is('business', '规模明细', '_200_post_etl_hooks_update_old',
                  'cmdm', 'tg_facts__queue_hooks', 'facts UPDATE queues the old months');
SELECT trigger_is('business', '规模明细', '_200_post_etl_hooks_update_new',
                  'cmdm', 'tg_facts__queue_hooks', 'facts UPDATE queues the new months');
SELECT trigger_is('customer', '当年中标', '_200_post_etl_hooks_insert',
                  'cmdm', 'tg_events__queue_hooks', 'award INSERT queues the dates');
SELECT trigger_is('customer', '当年流失', '_200_post_etl_hooks_update_new',
                  'cmdm', 'tg_events__queue_hooks', 'loss UPDATE queues the new dates');
SELECT trigger_is('business', '规模明细', '_200_post_etl_hooks_truncate',
                  'cmdm', 'tg_inputs__queue_truncate', 'facts TRUNCATE queues every loaded month');
SELECT trigger_is('customer', '当年中标', '_200_post_etl_hooks_truncate',
                  'cmdm', 'tg_inputs__queue_truncate', 'award TRUNCATE queues every date');
SELECT trigger_is('cmdm', 'hook_queue', '_100_run_at_commit',
                  'cmdm', 'tg_hook_queue__run_at_commit', 'the queue runs the hooks');
SELECT set_eq(
    $$SELECT t.tgname::text, t.tgtype & 1 = 0, t.tgoldtable::text, t.tgnewtable::text
        FROM pg_catalog.pg_trigger t
       WHERE t.tgrelid = 'business."规模明细"'::regclass AND t.tgname LIKE '_200_post_etl_hooks_%'$$,
    $$VALUES ('_200_post_etl_hooks_insert', true, NULL, 'changed_rows'),
             ('_200_post_etl_hooks_delete', true, 'changed_rows', NULL),
             ('_200_post_etl_hooks_update_old', true, 'changed_rows', NULL),
             ('_200_post_etl_hooks_update_new', true, NULL, 'changed_rows'),
             ('_200_post_etl_hooks_truncate', true, NULL, NULL)$$,
    'the facts triggers are statement-level, each with one transition table changed_rows (TRUNCATE has none)');
SELECT results_eq(
    $$SELECT t.tgdeferrable, t.tginitdeferred, t.tgtype & 1 = 1, t.tgconstraint <> 0
        FROM pg_catalog.pg_trigger t
       WHERE t.tgrelid = 'cmdm.hook_queue'::regclass AND t.tgname = '_100_run_at_commit'$$,
    $$VALUES (true, true, true, true)$$,
    'the queue trigger is a row-level constraint trigger, deferred to commit');

-- ======================================================= coalescing: one run per month
-- A load in three statements (two months, one UPDATE of a row) queues each month once
-- and runs nothing before commit.
SELECT lives_ok($$EXECUTE fact('2191-01-31', 'TAP-C1', 'TAP-P1', 100)$$, 'statement 1 (January)');
SELECT lives_ok($$INSERT INTO business."规模明细" ("月度", company_id, "计划代码", "产品线代码", "组合代码", "期末资产规模", "机构代码")
                  VALUES ('2191-01-31', 'TAP-C2', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 5, 'TAP-B1'),
                         ('2191-02-28', 'TAP-C1', 'TAP-P1', 'TAP-PL1', 'TAP-G1', 110, 'TAP-B1')$$,
                'statement 2 (January and February)');
SELECT lives_ok($$UPDATE business."规模明细" SET "期末资产规模" = 120
                   WHERE company_id = 'TAP-C1' AND "月度" = '2191-02-28'$$, 'statement 3 (an UPDATE)');
SELECT set_eq(
    $$SELECT q.domain, q.kind, q.period FROM cmdm.hook_queue q WHERE q.txid = pg_current_xact_id()$$,
    $$VALUES ('annuity_performance', 'facts', DATE '2191-01-01'),
             ('annuity_performance', 'facts', DATE '2191-02-01')$$,
    'three statements queue each month once');
SELECT is_empty('SELECT * FROM tap_runs', 'nothing runs before commit');
SELECT is_empty('SELECT * FROM tap_contracts', 'no contract version before commit');

SET CONSTRAINTS ALL IMMEDIATE;  -- = COMMIT for the deferred trigger
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(
    $$SELECT period, step, trigger_kind, outcome FROM tap_runs ORDER BY step, period$$,
    $$VALUES (DATE '2191-01-31', 'contract_sync', 'trigger', 'succeeded'),
             (DATE '2191-02-28', 'contract_sync', 'trigger', 'succeeded'),
             (DATE '2191-01-31', 'snapshot_refresh', 'trigger', 'succeeded'),
             (DATE '2191-02-28', 'snapshot_refresh', 'trigger', 'succeeded')$$,
    'at commit: one sync and one refresh per month, whatever the number of statements');
SELECT ok((SELECT bool_and(r.rules_sha256 = d.sha256 AND r.duration >= INTERVAL '0'
                           AND r.run_by = session_user AND r.txid = pg_current_xact_id())
             FROM cmdm.hook_run r,
                  (SELECT sha256 FROM cmdm.rule_deployment ORDER BY deployment_id DESC LIMIT 1) d
            WHERE r.period >= DATE '2191-01-01' AND r.period < DATE '2193-01-01'),
          'each run names the deployed rules sha256, its duration, who and which transaction');
SELECT results_eq(
    $$SELECT (counts->>'keys_seen')::int, (counts->>'versions_opened')::int
        FROM cmdm.hook_run WHERE step = 'contract_sync' AND period >= '2191-01-01' AND period < '2193-01-01'
       ORDER BY period$$,
    $$VALUES (2, 3), (1, 0)$$,
    'the sync counts are logged (January: two keys, TAP-C2 suspended in February)');
SELECT set_eq('SELECT company_id, valid_from, valid_to, contract_status FROM tap_contracts',
    $$VALUES ('TAP-C1', DATE '2191-01-31', DATE '9999-12-31', '正常'),
             ('TAP-C2', DATE '2191-01-31', DATE '2191-02-28', '正常'),
             ('TAP-C2', DATE '2191-02-28', DATE '9999-12-31', '停缴')$$,
    'the contract history is synced for both months');
SELECT set_eq('SELECT snapshot_month, company_id, aum_balance FROM tap_snapshots',
    $$VALUES (DATE '2191-01-31', 'TAP-C1', 100.00), (DATE '2191-01-31', 'TAP-C2', 5.00),
             (DATE '2191-02-28', 'TAP-C1', 120.00), (DATE '2191-02-28', 'TAP-C2', 0.00)$$,
    'the snapshots are refreshed for both months (with the UPDATE''s value)');
SELECT is_empty('SELECT * FROM cmdm.hook_queue WHERE txid = pg_current_xact_id()',
                'the queue is empty after the run');

-- ======================================================= events refresh their months
SELECT lives_ok($$INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
                  VALUES ('TAP-C2', 'TAP-PL1', 'TAP-P1', '2191-02-10')$$, 'an award reported in February');
SELECT set_eq(
    $$SELECT q.kind, q.period FROM cmdm.hook_queue q WHERE q.txid = pg_current_xact_id()$$,
    $$VALUES ('event', DATE '2191-02-10')$$, 'the award''s date is queued');
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(
    $$SELECT snapshot_month, is_winning_this_year FROM tap_snapshots WHERE company_id = 'TAP-C2' ORDER BY 1$$,
    $$VALUES (DATE '2191-01-31', false), (DATE '2191-02-28', true)$$,
    'the award is seen from its month on, not before');
SELECT is((SELECT count(*)::int FROM tap_runs WHERE step = 'snapshot_refresh' AND period = '2191-02-28'),
          2, 'the event refreshed February only (a second refresh run of it)');

-- ======================================================= the off switch
SET LOCAL cmdm.post_hooks = off;
SELECT lives_ok($$EXECUTE fact('2191-03-31', 'TAP-C1', 'TAP-P1', 130)$$, 'March loaded with post_hooks off');
SELECT is_empty('SELECT * FROM cmdm.hook_queue WHERE txid = pg_current_xact_id()',
                'post_hooks = off: nothing queued');
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT is_empty($$SELECT * FROM tap_runs WHERE period = '2191-03-31'$$, 'post_hooks = off: nothing ran');
SELECT results_eq(
    $$SELECT domain, kind, period, reason FROM cmdm.stale_change WHERE txid = pg_current_xact_id()$$,
    $$VALUES ('annuity_performance', 'facts', '2191-03-01'::date, 'hooks_off')$$,
    'post_hooks = off: March is recorded stale (cmdm.stale_change), once');

-- the ETL's explicit CALL instead
SELECT lives_ok($$CALL customer.run_post_etl_hooks('annuity_performance', '2191-03-01')$$,
                'CALL customer.run_post_etl_hooks for March');
SELECT results_eq(
    $$SELECT step, trigger_kind, outcome FROM tap_runs WHERE period = '2191-03-31' ORDER BY step$$,
    $$VALUES ('contract_sync', 'call', 'succeeded'), ('snapshot_refresh', 'call', 'succeeded')$$,
    'the CALL ran and logged both steps');
SELECT is((SELECT aum_balance FROM tap_snapshots WHERE company_id = 'TAP-C1' AND snapshot_month = '2191-03-31'),
          130.00, 'the CALL refreshed March');
SELECT is_empty($$SELECT * FROM cmdm.stale_change WHERE period = '2191-03-01'$$,
                'the CALL''s run cleared March''s stale record');

SET LOCAL cmdm.post_hooks = 'sometimes';
SELECT throws_ok($$EXECUTE fact('2191-04-30', 'TAP-C1', 'TAP-P1', 1)$$, '22023',
                 'cmdm.post_hooks is ''sometimes'', which is neither on nor off',
                 'an unreadable switch is refused, not guessed');
SET LOCAL cmdm.post_hooks = on;

-- ======================================================= domains
SELECT throws_ok($$CALL customer.run_post_etl_hooks('no_such_domain', '2191-03-01')$$, 'CM003',
                 'unknown post-ETL hook domain ''no_such_domain''', 'an unknown domain is named');
SELECT throws_ok($$CALL customer.run_post_etl_hooks('annuity_performance', NULL)$$, 'CM001',
                 'period is NULL', 'a NULL period is refused');
SELECT lives_ok($$SELECT cmdm.set_hook_domain('annuity_performance', false)$$, 'disable the domain');
SELECT throws_ok($$CALL customer.run_post_etl_hooks('annuity_performance', '2191-03-01')$$, 'CM004',
                 'post-ETL hook domain ''annuity_performance'' is disabled',
                 'CALL on a disabled domain says so');
SELECT lives_ok($$EXECUTE fact('2191-05-31', 'TAP-C3', 'TAP-P1', 50)$$, 'May loaded while disabled');
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(
    $$SELECT step, trigger_kind, outcome, error FROM tap_runs WHERE period = '2191-05-31'$$,
    $$VALUES ('all', 'trigger', 'skipped', 'domain annuity_performance is disabled')$$,
    'a load while disabled commits and logs the month it skipped');
SELECT is_empty($$SELECT * FROM tap_contracts WHERE company_id = 'TAP-C3'$$,
                'nothing was synced while disabled');
SELECT lives_ok($$SELECT cmdm.set_hook_domain('annuity_performance', true)$$, 'enable the domain');
SELECT throws_ok($$SELECT cmdm.set_hook_domain('nope', true)$$, 'CM003',
                 'unknown post-ETL hook domain ''nope''', 'set_hook_domain names an unknown domain');

-- a disabled step is skipped and logged
UPDATE cmdm.post_etl_hook SET enabled = false WHERE domain = 'annuity_performance' AND step = 'snapshot_refresh';
SELECT lives_ok($$CALL customer.run_post_etl_hooks('annuity_performance', '2191-05-31')$$, 'CALL with a disabled step');
SELECT results_eq(
    $$SELECT step, outcome FROM tap_runs WHERE period = '2191-05-31' AND trigger_kind = 'call' ORDER BY step$$,
    $$VALUES ('contract_sync', 'succeeded'), ('snapshot_refresh', 'skipped')$$,
    'a disabled step is logged as skipped');
UPDATE cmdm.post_etl_hook SET enabled = true WHERE domain = 'annuity_performance' AND step = 'snapshot_refresh';

-- ======================================================= a failing step rolls back
-- A fact dated 2250 (outside the periods cmdm accepts) fails the sync of its month at
-- commit: the load is refused with the step, the period and the cause.
SELECT lives_ok($$EXECUTE fact('2191-06-30', 'TAP-C1', 'TAP-P2', 60)$$, 'June loaded');
SELECT lives_ok($$EXECUTE fact('2250-06-30', 'TAP-C1', 'TAP-P2', 60)$$, 'a fact of 2250 loaded with it (synced after June)');
CREATE TEMP TABLE before_failure ON COMMIT DROP AS
SELECT (SELECT count(*) FROM cmdm.hook_run) AS runs,
       (SELECT count(*) FROM customer.customer_plan_contract) AS versions,
       (SELECT count(*) FROM customer.fct_customer_business_monthly_status) AS business_rows;
SELECT throws_like('SET CONSTRAINTS ALL IMMEDIATE',
                   'post-ETL hook annuity_performance: step contract_sync for period 2250-06 failed: period 2250-06-01 is out of range',
                   'the commit fails with the domain, step, period and cause');
SELECT throws_ok('SET CONSTRAINTS ALL IMMEDIATE', 'CM001', NULL, 'keeping the cause''s SQLSTATE');
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM cmdm.hook_run), (SELECT count(*) FROM customer.customer_plan_contract),
             (SELECT count(*) FROM customer.fct_customer_business_monthly_status)$$,
    'SELECT runs, versions, business_rows FROM before_failure',
    'nothing half-written: no run logged, no version, no snapshot row');
DELETE FROM cmdm.hook_queue WHERE txid = pg_current_xact_id();

SELECT * FROM finish();
ROLLBACK;
