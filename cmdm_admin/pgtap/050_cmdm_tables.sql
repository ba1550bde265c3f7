-- 050: cmdm's own tables (rule_deployment, hook_domain, post_etl_hook, hook_run,
-- rejected_fact, managed_object, hook_queue, backfill_run): columns, types, nullability, defaults, keys, indexes,
-- check constraints; the hook-registry seed; then the checks and keys at work.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SET LOCAL lc_messages = 'C';  -- the error texts below are matched in English
SELECT plan(115);

-- ======================================================= tables and columns
SELECT tables_are('cmdm',
    ARRAY['managed_object', 'rule_deployment', 'hook_domain', 'post_etl_hook', 'hook_run', 'rejected_fact',
          'hook_queue', 'backfill_run'],
    'schema cmdm holds exactly its eight tables');
SELECT columns_are('cmdm', 'hook_queue', ARRAY['txid', 'domain', 'kind', 'period'],
    'cmdm.hook_queue has exactly its columns');
SELECT columns_are('cmdm', 'backfill_run',
    ARRAY['backfill_id', 'domain', 'from_period', 'to_period', 'started_at', 'finished_at', 'started_by'],
    'cmdm.backfill_run has exactly its columns');
SELECT is((SELECT relpersistence::text FROM pg_catalog.pg_class WHERE oid = 'cmdm.hook_queue'::regclass), 'u',
    'cmdm.hook_queue is UNLOGGED (its rows never outlive their transaction)');

SELECT columns_are('cmdm', 'rule_deployment',
    ARRAY['deployment_id', 'revision', 'down_revision', 'sha256', 'rules_text', 'functions',
          'deployed_at', 'deployed_by', 'function_defs'],
    'cmdm.rule_deployment has exactly its columns');
SELECT col_type_is('cmdm', 'rule_deployment', 'deployment_id', 'bigint', 'rule_deployment.deployment_id is bigint');
SELECT col_type_is('cmdm', 'rule_deployment', 'revision', 'text', 'rule_deployment.revision is text');
SELECT col_type_is('cmdm', 'rule_deployment', 'down_revision', 'text', 'rule_deployment.down_revision is text');
SELECT col_type_is('cmdm', 'rule_deployment', 'sha256', 'text', 'rule_deployment.sha256 is text');
SELECT col_type_is('cmdm', 'rule_deployment', 'rules_text', 'jsonb', 'rule_deployment.rules_text is jsonb');
SELECT col_type_is('cmdm', 'rule_deployment', 'functions', 'text[]', 'rule_deployment.functions is text[]');
SELECT col_type_is('cmdm', 'rule_deployment', 'deployed_at', 'timestamp with time zone', 'rule_deployment.deployed_at is timestamptz');
SELECT col_type_is('cmdm', 'rule_deployment', 'deployed_by', 'text', 'rule_deployment.deployed_by is text');
SELECT col_type_is('cmdm', 'rule_deployment', 'function_defs', 'jsonb', 'rule_deployment.function_defs is jsonb');

SELECT columns_are('cmdm', 'hook_domain',
    ARRAY['domain', 'enabled', 'description', 'changed_at', 'changed_by'],
    'cmdm.hook_domain has exactly its columns');
SELECT col_type_is('cmdm', 'hook_domain', 'domain', 'text', 'hook_domain.domain is text');
SELECT col_type_is('cmdm', 'hook_domain', 'enabled', 'boolean', 'hook_domain.enabled is boolean');
SELECT col_type_is('cmdm', 'hook_domain', 'description', 'text', 'hook_domain.description is text');
SELECT col_type_is('cmdm', 'hook_domain', 'changed_at', 'timestamp with time zone', 'hook_domain.changed_at is timestamptz');
SELECT col_type_is('cmdm', 'hook_domain', 'changed_by', 'text', 'hook_domain.changed_by is text');

SELECT columns_are('cmdm', 'post_etl_hook',
    ARRAY['domain', 'step_order', 'step', 'enabled', 'description'],
    'cmdm.post_etl_hook has exactly its columns');
SELECT col_type_is('cmdm', 'post_etl_hook', 'domain', 'text', 'post_etl_hook.domain is text');
SELECT col_type_is('cmdm', 'post_etl_hook', 'step_order', 'integer', 'post_etl_hook.step_order is integer');
SELECT col_type_is('cmdm', 'post_etl_hook', 'step', 'text', 'post_etl_hook.step is text');
SELECT col_type_is('cmdm', 'post_etl_hook', 'enabled', 'boolean', 'post_etl_hook.enabled is boolean');
SELECT col_type_is('cmdm', 'post_etl_hook', 'description', 'text', 'post_etl_hook.description is text');

SELECT columns_are('cmdm', 'hook_run',
    ARRAY['hook_run_id', 'domain', 'period', 'step', 'trigger_kind', 'started_at', 'duration',
          'outcome', 'counts', 'rejects', 'rules_sha256', 'error', 'run_by', 'txid', 'backfill_id'],
    'cmdm.hook_run has exactly its columns');
SELECT col_type_is('cmdm', 'hook_run', 'hook_run_id', 'bigint', 'hook_run.hook_run_id is bigint');
SELECT col_type_is('cmdm', 'hook_run', 'domain', 'text', 'hook_run.domain is text');
SELECT col_type_is('cmdm', 'hook_run', 'period', 'date', 'hook_run.period is date');
SELECT col_type_is('cmdm', 'hook_run', 'step', 'text', 'hook_run.step is text');
SELECT col_type_is('cmdm', 'hook_run', 'trigger_kind', 'text', 'hook_run.trigger_kind is text');
SELECT col_type_is('cmdm', 'hook_run', 'started_at', 'timestamp with time zone', 'hook_run.started_at is timestamptz');
SELECT col_type_is('cmdm', 'hook_run', 'duration', 'interval', 'hook_run.duration is interval');
SELECT col_type_is('cmdm', 'hook_run', 'outcome', 'text', 'hook_run.outcome is text');
SELECT col_type_is('cmdm', 'hook_run', 'counts', 'jsonb', 'hook_run.counts is jsonb');
SELECT col_type_is('cmdm', 'hook_run', 'rejects', 'integer', 'hook_run.rejects is integer');
SELECT col_type_is('cmdm', 'hook_run', 'rules_sha256', 'text', 'hook_run.rules_sha256 is text');
SELECT col_type_is('cmdm', 'hook_run', 'error', 'text', 'hook_run.error is text');
SELECT col_type_is('cmdm', 'hook_run', 'run_by', 'text', 'hook_run.run_by is text');
SELECT col_type_is('cmdm', 'hook_run', 'txid', 'xid8', 'hook_run.txid is xid8');

SELECT columns_are('cmdm', 'rejected_fact',
    ARRAY['rejected_fact_id', 'period', 'reason', 'company_id', 'plan_code', 'product_line_code',
          'portfolio_code', 'aum', 'rejected_at'],
    'cmdm.rejected_fact has exactly its columns');
SELECT col_type_is('cmdm', 'rejected_fact', 'rejected_fact_id', 'bigint', 'rejected_fact.rejected_fact_id is bigint');
SELECT col_type_is('cmdm', 'rejected_fact', 'period', 'date', 'rejected_fact.period is date');
SELECT col_type_is('cmdm', 'rejected_fact', 'reason', 'text', 'rejected_fact.reason is text');
SELECT col_type_is('cmdm', 'rejected_fact', 'company_id', 'text', 'rejected_fact.company_id is text');
SELECT col_type_is('cmdm', 'rejected_fact', 'plan_code', 'text', 'rejected_fact.plan_code is text');
SELECT col_type_is('cmdm', 'rejected_fact', 'product_line_code', 'text', 'rejected_fact.product_line_code is text');
SELECT col_type_is('cmdm', 'rejected_fact', 'portfolio_code', 'text', 'rejected_fact.portfolio_code is text');
SELECT col_type_is('cmdm', 'rejected_fact', 'aum', 'numeric', 'rejected_fact.aum is numeric');
SELECT col_type_is('cmdm', 'rejected_fact', 'rejected_at', 'timestamp with time zone', 'rejected_fact.rejected_at is timestamptz');

SELECT columns_are('cmdm', 'managed_object',
    ARRAY['managed_object_id', 'object_type', 'object_identity', 'created_by', 'created_at'],
    'cmdm.managed_object has exactly its columns');
SELECT col_type_is('cmdm', 'managed_object', 'managed_object_id', 'bigint', 'managed_object.managed_object_id is bigint');
SELECT col_type_is('cmdm', 'managed_object', 'object_type', 'text', 'managed_object.object_type is text');
SELECT col_type_is('cmdm', 'managed_object', 'object_identity', 'text', 'managed_object.object_identity is text');
SELECT col_type_is('cmdm', 'managed_object', 'created_by', 'text', 'managed_object.created_by is text');
SELECT col_type_is('cmdm', 'managed_object', 'created_at', 'timestamp with time zone', 'managed_object.created_at is timestamptz');

-- nullability: these are the only nullable columns of schema cmdm
SELECT set_eq(
    $$SELECT c.relname::text, a.attname::text
        FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       WHERE c.relnamespace = 'cmdm'::regnamespace AND c.relkind = 'r'
         AND a.attnum > 0 AND NOT a.attisdropped AND NOT a.attnotnull$$,
    $$VALUES ('rule_deployment', 'down_revision'),
             ('hook_run', 'duration'), ('hook_run', 'rules_sha256'), ('hook_run', 'error'),
             ('hook_run', 'backfill_id'), ('backfill_run', 'finished_at'),
             ('rejected_fact', 'company_id'), ('rejected_fact', 'plan_code'),
             ('rejected_fact', 'product_line_code'), ('rejected_fact', 'portfolio_code'),
             ('rejected_fact', 'aum')$$,
    'every other column of the cmdm tables is NOT NULL');

-- defaults
SELECT set_eq(
    $$SELECT c.relname::text, a.attname::text, a.attidentity::text
        FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       WHERE c.relnamespace = 'cmdm'::regnamespace AND c.relkind = 'r' AND a.attidentity <> ''$$,
    $$VALUES ('rule_deployment', 'deployment_id', 'a'), ('hook_run', 'hook_run_id', 'a'),
             ('rejected_fact', 'rejected_fact_id', 'a'), ('managed_object', 'managed_object_id', 'a'),
             ('backfill_run', 'backfill_id', 'a')$$,
    'the surrogate ids are GENERATED ALWAYS AS IDENTITY');
SELECT col_default_is('cmdm', 'rule_deployment', 'functions', '{}'::text, 'rule_deployment.functions defaults to {}');
SELECT col_default_is('cmdm', 'rule_deployment', 'deployed_at', 'now()', 'rule_deployment.deployed_at defaults to now()');
SELECT col_default_is('cmdm', 'rule_deployment', 'deployed_by', 'SESSION_USER', 'rule_deployment.deployed_by defaults to session_user');
SELECT col_default_is('cmdm', 'rule_deployment', 'function_defs', '{}'::text, 'rule_deployment.function_defs defaults to {}');
SELECT col_default_is('cmdm', 'hook_domain', 'enabled', true, 'hook_domain.enabled defaults to true');
SELECT col_default_is('cmdm', 'hook_domain', 'changed_at', 'now()', 'hook_domain.changed_at defaults to now()');
SELECT col_default_is('cmdm', 'hook_domain', 'changed_by', 'SESSION_USER', 'hook_domain.changed_by defaults to session_user');
SELECT col_default_is('cmdm', 'post_etl_hook', 'enabled', true, 'post_etl_hook.enabled defaults to true');
SELECT col_default_is('cmdm', 'hook_run', 'started_at', 'clock_timestamp()', 'hook_run.started_at defaults to clock_timestamp()');
SELECT col_default_is('cmdm', 'hook_run', 'counts', '{}'::text, 'hook_run.counts defaults to {}');
SELECT col_default_is('cmdm', 'hook_run', 'rejects', 0, 'hook_run.rejects defaults to 0');
SELECT col_default_is('cmdm', 'hook_run', 'run_by', 'SESSION_USER', 'hook_run.run_by defaults to session_user');
SELECT col_default_is('cmdm', 'hook_run', 'txid', 'pg_current_xact_id()', 'hook_run.txid defaults to pg_current_xact_id()');
SELECT col_default_is('cmdm', 'rejected_fact', 'rejected_at', 'now()', 'rejected_fact.rejected_at defaults to now()');
SELECT col_default_is('cmdm', 'managed_object', 'created_at', 'now()', 'managed_object.created_at defaults to now()');

-- keys
SELECT col_is_pk('cmdm', 'rule_deployment', 'deployment_id', 'rule_deployment PK is deployment_id');
SELECT col_is_pk('cmdm', 'hook_domain', 'domain', 'hook_domain PK is domain');
SELECT col_is_pk('cmdm', 'post_etl_hook', ARRAY['domain', 'step_order'], 'post_etl_hook PK is (domain, step_order)');
SELECT col_is_pk('cmdm', 'hook_run', 'hook_run_id', 'hook_run PK is hook_run_id');
SELECT col_is_pk('cmdm', 'rejected_fact', 'rejected_fact_id', 'rejected_fact PK is rejected_fact_id');
SELECT col_is_pk('cmdm', 'managed_object', 'managed_object_id', 'managed_object PK is managed_object_id');
SELECT col_is_unique('cmdm', 'rule_deployment', ARRAY['revision'], 'rule_deployment.revision is unique');
SELECT col_is_unique('cmdm', 'post_etl_hook', ARRAY['domain', 'step'], 'post_etl_hook (domain, step) is unique');
SELECT col_is_unique('cmdm', 'managed_object', ARRAY['object_type', 'object_identity'],
    'managed_object (object_type, object_identity) is unique');
SELECT fk_ok('cmdm', 'post_etl_hook', 'domain', 'cmdm', 'hook_domain', 'domain',
    'post_etl_hook.domain references hook_domain(domain)');
SELECT is(
    (SELECT confdeltype::text FROM pg_catalog.pg_constraint
      WHERE conrelid = 'cmdm.post_etl_hook'::regclass AND contype = 'f'),
    'c', 'post_etl_hook.domain is ON DELETE CASCADE');

-- check constraints of the whole schema, by table and definition
SELECT set_eq(
    $$SELECT conrelid::regclass::text, pg_catalog.pg_get_constraintdef(oid)
        FROM pg_catalog.pg_constraint
       WHERE connamespace = 'cmdm'::regnamespace AND contype = 'c'$$,
    $$VALUES
        ('cmdm.managed_object', 'CHECK ((object_type = ANY (ARRAY[''schema''::text, ''extension''::text, ''table''::text, ''function''::text, ''procedure''::text])))'),
        ('cmdm.rule_deployment', 'CHECK ((sha256 ~ ''^[0-9a-f]{64}$''::text))'),
        ('cmdm.rule_deployment', 'CHECK ((jsonb_typeof(function_defs) = ''object''::text))'),
        ('cmdm.post_etl_hook', 'CHECK ((step_order > 0))'),
        ('cmdm.hook_run', 'CHECK ((trigger_kind = ANY (ARRAY[''call''::text, ''trigger''::text, ''cli''::text])))'),
        ('cmdm.hook_run', 'CHECK ((outcome = ANY (ARRAY[''succeeded''::text, ''failed''::text, ''skipped''::text])))'),
        ('cmdm.hook_run', 'CHECK ((rejects >= 0))'),
        ('cmdm.hook_queue', 'CHECK ((kind = ANY (ARRAY[''facts''::text, ''event''::text])))'),
        ('cmdm.backfill_run', 'CHECK ((from_period <= to_period))'),
        ('cmdm.rejected_fact', 'CHECK ((EXTRACT(day FROM (period + 1)) = (1)::numeric))'),
        ('cmdm.rejected_fact', 'CHECK ((reason = ANY (ARRAY[''null_key''::text, ''unknown_product_line''::text, ''unknown_company''::text])))')$$,
    'the cmdm tables carry exactly these check constraints');

-- indexes
SELECT indexes_are('cmdm', 'hook_run', ARRAY['hook_run_pkey', 'idx_hook_run_domain_period', 'idx_hook_run_failures'],
    'hook_run has exactly its PK and two indexes');
SELECT is(
    pg_catalog.pg_get_indexdef('cmdm.idx_hook_run_domain_period'::regclass),
    'CREATE INDEX idx_hook_run_domain_period ON cmdm.hook_run USING btree (domain, period, started_at DESC)',
    'idx_hook_run_domain_period is on (domain, period, started_at DESC)');
SELECT is(
    pg_catalog.pg_get_indexdef('cmdm.idx_hook_run_failures'::regclass),
    'CREATE INDEX idx_hook_run_failures ON cmdm.hook_run USING btree (started_at DESC) WHERE (outcome = ''failed''::text)',
    'idx_hook_run_failures is on (started_at DESC) WHERE outcome = failed');
SELECT indexes_are('cmdm', 'rejected_fact', ARRAY['rejected_fact_pkey', 'idx_rejected_fact_period'],
    'rejected_fact has exactly its PK and one index');
SELECT has_index('cmdm', 'rejected_fact', 'idx_rejected_fact_period', ARRAY['period', 'reason'],
    'idx_rejected_fact_period is on (period, reason)');

-- ======================================================= behaviour
SELECT results_eq(
    $$SELECT domain, enabled FROM cmdm.hook_domain ORDER BY domain$$,
    $$VALUES ('annuity_performance', true)$$,
    'hook_domain is seeded with annuity_performance, enabled');
SELECT results_eq(
    $$SELECT domain, step_order, step, enabled FROM cmdm.post_etl_hook ORDER BY domain, step_order$$,
    $$VALUES ('annuity_performance', 1, 'contract_sync', true),
             ('annuity_performance', 2, 'snapshot_refresh', true)$$,
    'post_etl_hook is seeded with contract_sync (1) then snapshot_refresh (2)');
SELECT lives_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome)
      VALUES ('pgtap_domain', '2025-01-31', 'contract_sync', 'call', 'succeeded')$$,
    'a minimal hook_run row is accepted');
SELECT results_eq(
    $$SELECT counts, rejects, run_by = session_user, txid = pg_current_xact_id(), started_at >= now()
        FROM cmdm.hook_run WHERE domain = 'pgtap_domain'$$,
    $$VALUES ('{}'::jsonb, 0, true, true, true)$$,
    'hook_run defaults: counts {}, rejects 0, run_by session_user, txid of this transaction, started_at clock time');
SELECT lives_ok(
    $$INSERT INTO cmdm.rejected_fact (period, reason, plan_code, aum)
      VALUES ('2025-02-28', 'null_key', 'PGTAP_P1', 1.5),
             ('2025-02-28', 'unknown_product_line', 'PGTAP_P1', 1.5),
             ('2025-02-28', 'unknown_company', 'PGTAP_P1', 1.5)$$,
    'rejected_fact accepts each allowed reason at a month-end period');
SELECT lives_ok(
    $$INSERT INTO cmdm.rule_deployment (revision, sha256, rules_text)
      VALUES ('pgtap_rev', repeat('0123456789abcdef', 4), '{}'::jsonb)$$,
    'rule_deployment accepts a lower-case hex sha256');
SELECT results_eq(
    $$SELECT functions, deployed_by = session_user, down_revision FROM cmdm.rule_deployment WHERE revision = 'pgtap_rev'$$,
    $$VALUES ('{}'::text[], true, NULL::text)$$,
    'rule_deployment defaults: functions {}, deployed_by session_user');
SELECT lives_ok(
    $$DELETE FROM cmdm.hook_domain WHERE domain = 'annuity_performance'$$,
    'a hook domain can be deleted');
SELECT is_empty(
    $$SELECT * FROM cmdm.post_etl_hook WHERE domain = 'annuity_performance'$$,
    'deleting a hook domain deletes its steps (ON DELETE CASCADE)');

-- ======================================================= error codes
SELECT throws_ok(
    $$INSERT INTO cmdm.rejected_fact (period, reason) VALUES ('2025-02-28', 'bogus')$$,
    '23514', 'new row for relation "rejected_fact" violates check constraint "rejected_fact_reason_check"',
    'rejected_fact.reason outside the allowed set is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rejected_fact (period, reason) VALUES ('2025-02-15', 'null_key')$$,
    '23514', 'new row for relation "rejected_fact" violates check constraint "rejected_fact_period_check"',
    'rejected_fact.period that is not a month-end is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rejected_fact (rejected_fact_id, period, reason) VALUES (1, '2025-02-28', 'null_key')$$,
    '428C9', NULL,
    'rejected_fact_id cannot be set explicitly (GENERATED ALWAYS)');
SELECT throws_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome)
      VALUES ('pgtap_domain', '2025-01-31', 'contract_sync', 'cron', 'succeeded')$$,
    '23514', 'new row for relation "hook_run" violates check constraint "hook_run_trigger_kind_check"',
    'hook_run.trigger_kind outside call/trigger/cli is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome)
      VALUES ('pgtap_domain', '2025-01-31', 'contract_sync', 'call', 'ok')$$,
    '23514', 'new row for relation "hook_run" violates check constraint "hook_run_outcome_check"',
    'hook_run.outcome outside succeeded/failed/skipped is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome, rejects)
      VALUES ('pgtap_domain', '2025-01-31', 'contract_sync', 'call', 'failed', -1)$$,
    '23514', 'new row for relation "hook_run" violates check constraint "hook_run_rejects_check"',
    'a negative hook_run.rejects is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rule_deployment (revision, sha256, rules_text)
      VALUES ('pgtap_rev_2', repeat('0123456789ABCDEF', 4), '{}'::jsonb)$$,
    '23514', 'new row for relation "rule_deployment" violates check constraint "rule_deployment_sha256_check"',
    'an upper-case sha256 is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rule_deployment (revision, sha256, rules_text)
      VALUES ('pgtap_rev_2', repeat('0123456789abcdef', 4) || '0', '{}'::jsonb)$$,
    '23514', 'new row for relation "rule_deployment" violates check constraint "rule_deployment_sha256_check"',
    'a sha256 of 65 hex digits is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.rule_deployment (revision, sha256, rules_text)
      VALUES ('pgtap_rev', repeat('fedcba9876543210', 4), '{}'::jsonb)$$,
    '23505', 'duplicate key value violates unique constraint "rule_deployment_revision_key"',
    'a revision is deployed at most once (unique_violation)');
INSERT INTO cmdm.hook_domain (domain, description) VALUES ('pgtap_domain', 'pgTAP domain');
SELECT throws_ok(
    $$INSERT INTO cmdm.post_etl_hook (domain, step_order, step, description)
      VALUES ('pgtap_domain', 0, 'contract_sync', 'x')$$,
    '23514', 'new row for relation "post_etl_hook" violates check constraint "post_etl_hook_step_order_check"',
    'post_etl_hook.step_order 0 is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.post_etl_hook (domain, step_order, step, description)
      VALUES ('pgtap_domain', 1, 'contract_sync', 'x'), ('pgtap_domain', 2, 'contract_sync', 'y')$$,
    '23505', 'duplicate key value violates unique constraint "post_etl_hook_domain_step_key"',
    'a step appears once per domain (unique_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.post_etl_hook (domain, step_order, step, description)
      VALUES ('pgtap_domain', 1, 'contract_sync', 'x'), ('pgtap_domain', 1, 'snapshot_refresh', 'y')$$,
    '23505', 'duplicate key value violates unique constraint "post_etl_hook_pkey"',
    'a step_order appears once per domain (unique_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.post_etl_hook (domain, step_order, step, description)
      VALUES ('pgtap_no_such_domain', 1, 'contract_sync', 'x')$$,
    '23503', 'insert or update on table "post_etl_hook" violates foreign key constraint "post_etl_hook_domain_fkey"',
    'a step of an unknown domain is rejected (foreign_key_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.managed_object (object_type, object_identity, created_by)
      VALUES ('view', 'customer.pgtap_view', 'pgtap')$$,
    '23514', 'new row for relation "managed_object" violates check constraint "managed_object_object_type_check"',
    'managed_object.object_type outside the allowed set is rejected (check_violation)');
SELECT throws_ok(
    $$INSERT INTO cmdm.managed_object (object_type, object_identity, created_by)
      SELECT object_type, object_identity, 'pgtap' FROM cmdm.managed_object
       WHERE object_identity = 'customer.customer_plan_contract'$$,
    '23505', 'duplicate key value violates unique constraint "managed_object_object_type_object_identity_key"',
    'an object is registered at most once (unique_violation)');

SELECT * FROM finish();
ROLLBACK;
