-- cmdm-verify: read-only
-- 050: cmdm's own tables (rule_deployment, hook_domain, post_etl_hook, hook_run,
-- rejected_fact, managed_object, hook_queue, backfill_run, hook_lock, stale_change):
-- columns, types, nullability,
-- defaults, keys, indexes, check constraints. Read-only (catalog only); the hook-registry
-- seed and the checks and keys at work are 051_cmdm_tables_behaviour.sql.
BEGIN;
SET LOCAL search_path = public, pg_catalog;
SELECT plan(97);

-- ======================================================= tables and columns
SELECT tables_are('cmdm',
    ARRAY['managed_object', 'rule_deployment', 'hook_domain', 'post_etl_hook', 'hook_run', 'rejected_fact',
          'hook_queue', 'backfill_run', 'hook_lock', 'stale_change'],
    'schema cmdm holds exactly its ten tables');
-- the rows the hooks lock to serialize (issue 18), and the stale months record
SELECT columns_are('cmdm', 'hook_lock', ARRAY['name'], 'cmdm.hook_lock has exactly its columns');
SELECT col_is_pk('cmdm', 'hook_lock', 'name', 'hook_lock PK is name');
SELECT columns_are('cmdm', 'stale_change',
    ARRAY['domain', 'kind', 'period', 'txid', 'reason', 'changed_at', 'changed_by'],
    'cmdm.stale_change has exactly its columns');
SELECT col_is_pk('cmdm', 'stale_change', ARRAY['domain', 'kind', 'period', 'txid'],
    'stale_change PK is (domain, kind, period, txid): a load records its months without waiting for another');
SELECT is((SELECT relpersistence::text FROM pg_catalog.pg_class WHERE oid = 'cmdm.stale_change'::regclass), 'p',
    'cmdm.stale_change is logged: the record of stale months survives a crash');
SELECT ok(EXISTS (SELECT FROM cmdm.hook_lock WHERE name = 'contract_sync'), 'cmdm.hook_lock holds the row contract_sync');
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
        ('cmdm.rejected_fact', 'CHECK ((reason = ANY (ARRAY[''null_key''::text, ''blank_key''::text, ''unknown_product_line''::text, ''unknown_company''::text, ''amount_overflow''::text])))'),
        ('cmdm.hook_lock', 'CHECK (((name = ''contract_sync''::text) OR (name ~ ''^snapshot:[0-9]{4}-[0-9]{2}$''::text)))'),
        ('cmdm.stale_change', 'CHECK ((kind = ANY (ARRAY[''facts''::text, ''event''::text])))'),
        ('cmdm.stale_change', 'CHECK ((reason = ANY (ARRAY[''hooks_off''::text, ''domain_disabled''::text, ''upgrade''::text])))')$$,
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

SELECT * FROM finish();
ROLLBACK;
