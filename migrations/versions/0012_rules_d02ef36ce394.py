"""Rules deploy d02ef36ce394: 27 objects, rendered from rules/ and sql/ by `cmdm deploy-rules`.

Generated; do not edit. The SQL below is frozen: upgrade executes these strings and never
reads or re-renders the templates. PAYLOAD_SHA256 covers everything frozen here, so an edit
is refused by `cmdm deploy-rules` and by this revision's own upgrade and downgrade. To
change the rules, edit rules/ (or sql/) and run `cmdm deploy-rules` again; to roll this
deploy back, `cmdm migrate downgrade rules@-1`.

Objects:
    cmdm.post_hooks_enabled()                        sql/functions/cmdm.post_hooks_enabled.sql.j2
    cmdm.run_hooks(text, date[], date[], text, daterange, bigint) sql/functions/cmdm.run_hooks.sql.j2
    cmdm.scratch_table(text, text)                   sql/functions/cmdm.scratch_table.sql.j2
    cmdm.set_hook_domain(text, boolean)              sql/functions/cmdm.set_hook_domain.sql.j2
    cmdm.take_hook_lock(text, boolean)               sql/functions/cmdm.take_hook_lock.sql.j2
    customer.check_annual_statuses(integer[])        sql/functions/customer.check_annual_statuses.sql.j2
    customer.check_contract_history(date, date)      sql/functions/customer.check_contract_history.sql.j2
    customer.check_monthly_snapshot(date)            sql/functions/customer.check_monthly_snapshot.sql.j2
    customer.compute_annual_statuses(integer[])      sql/functions/customer.compute_annual_statuses.sql.j2
    customer.compute_monthly_snapshot(date)          sql/functions/customer.compute_monthly_snapshot.sql.j2
    customer.contract_dependent_months(date)         sql/functions/customer.contract_dependent_months.sql.j2
    customer.decide_annual_statuses(integer[])       sql/functions/customer.decide_annual_statuses.sql.j2
    customer.event_dependent_months(date)            sql/functions/customer.event_dependent_months.sql.j2
    customer.loaded_months(date, date)               sql/functions/customer.loaded_months.sql.j2
    customer.refresh_monthly_snapshot(date)          sql/functions/customer.refresh_monthly_snapshot.sql.j2
    customer.run_post_etl_hooks(text, date)          sql/functions/customer.run_post_etl_hooks.sql.j2
    customer.sync_compute_states(date)               sql/functions/customer.sync_compute_states.sql.j2
    customer.sync_contract_status(date)              sql/functions/customer.sync_contract_status.sql.j2
    customer.sync_merge_versions(date, boolean, date) sql/functions/customer.sync_merge_versions.sql.j2
    customer.sync_scope_keys(date, boolean, date)    sql/functions/customer.sync_scope_keys.sql.j2
    customer.sync_snapshot_months(date, date, date, integer[]) sql/functions/customer.sync_snapshot_months.sql.j2
    customer.sync_write_versions()                   sql/functions/customer.sync_write_versions.sql.j2
    cmdm.tg_facts__queue_hooks()                     sql/triggers/business.facts__queue_hooks.sql.j2
    cmdm.tg_hook_queue__run_at_commit()              sql/triggers/cmdm.hook_queue__run_at_commit.sql.j2
    cmdm.tg_events__queue_hooks()                    sql/triggers/customer.events__queue_hooks.sql.j2
    cmdm.tg_inputs__queue_truncate()                 sql/triggers/customer.inputs__queue_truncate.sql.j2
    cmdm.tg_product_line__propagate_name()           sql/triggers/mapping.product_line__propagate_name.sql.j2

Previous rules revision: 0011_rules_ab021fdffe29
Columns added: none

upgrade:   add COLUMNS_ADDED (boolean NOT NULL DEFAULT false); drop the triggers and
           routines of PREVIOUS_OBJECTS that OBJECTS no longer create; run OBJECTS' SQL,
           leaving out each trigger statement whose trigger is in place unchanged (no lock
           on its table); register them in cmdm.managed_object; record the deploy in
           cmdm.rule_deployment with the sha256 of each routine's pg_get_functiondef().
downgrade: drop what OBJECTS created that PREVIOUS_OBJECTS do not; run PREVIOUS_OBJECTS'
           SQL again (the same way); drop COLUMNS_ADDED (and their data); delete the
           deploy's record.

Revision ID: 0012_rules_d02ef36ce394
Revises: 0011_rules_ab021fdffe29
"""

# The frozen SQL and YAML keep their own line lengths:
# ruff: noqa: E501

from __future__ import annotations

import hashlib
import json
import re

import psycopg
from alembic import op
from alembic.util import CommandError
from sqlalchemy import text


class MigrationError(CommandError):
    """Alembic's own error, so that this frozen file imports nothing of cmdm_admin (which
    changes between releases); cmdm prints it as one `Error:` line, hint included."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(f"{message} ({hint})")


revision = "0012_rules_d02ef36ce394"
down_revision = "0011_rules_ab021fdffe29"
branch_labels = None
depends_on = "0011_hook_locks"

#: sha256 of the rendered SQL; every object carries it in its banner and COMMENT.
RULES_SHA256 = "d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d"
#: The rules revision whose objects downgrade restores (None: downgrade drops them all).
PREVIOUS_RULES_REVISION = "0011_rules_ab021fdffe29"
#: Status columns the target database lacked when this file was generated.
COLUMNS_ADDED = {}
#: sha256 of the frozen payload (see payload_sha256); any edit of this file changes it.
PAYLOAD_SHA256 = "b6c9922a39917f4d1c84d9bb23fe50fbe2125e34a1a13cfb94a1a1a3cd5668da"


def upgrade() -> None:
    _check_payload()
    for table, columns in COLUMNS_ADDED.items():
        for column in columns:
            _execute(
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {_quoted(column)} "
                "boolean NOT NULL DEFAULT false"
            )
    _retire(PREVIOUS_OBJECTS, OBJECTS)
    _create(OBJECTS, revision, "fix the template or rules, then run `cmdm deploy-rules` again")
    op.execute(
        text(
            "INSERT INTO cmdm.rule_deployment "
            "(revision, down_revision, sha256, rules_text, functions, function_defs) "
            "VALUES (:revision, :down_revision, :sha256, CAST(:rules_text AS jsonb), "
            "CAST(:functions AS text[]), CAST(:function_defs AS jsonb))"
        ).bindparams(
            revision=revision,
            down_revision=down_revision,
            sha256=RULES_SHA256,
            rules_text=json.dumps(RULES_TEXT, ensure_ascii=False),
            functions=[obj["identity"] for obj in OBJECTS],
            function_defs=json.dumps(_function_defs(OBJECTS), sort_keys=True),
        )
    )


def downgrade() -> None:
    _check_payload()
    _retire(OBJECTS, PREVIOUS_OBJECTS)
    _create(
        PREVIOUS_OBJECTS,
        PREVIOUS_RULES_REVISION,
        "the previous revision's frozen SQL no longer applies to this database",
    )
    for table, columns in COLUMNS_ADDED.items():
        for column in columns:
            _execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {_quoted(column)}")
    op.execute(
        text("DELETE FROM cmdm.rule_deployment WHERE revision = :revision").bindparams(
            revision=revision
        )
    )


def payload_sha256() -> str:
    """sha256 of a canonical JSON text of the payload (as cmdm_admin.revision computes it)."""
    document = {
        "revision": revision,
        "down_revision": down_revision,
        "RULES_SHA256": RULES_SHA256,
        "RULES_TEXT": RULES_TEXT,
        "OBJECTS": OBJECTS,
        "PREVIOUS_RULES_REVISION": PREVIOUS_RULES_REVISION,
        "PREVIOUS_OBJECTS": PREVIOUS_OBJECTS,
        "COLUMNS_ADDED": COLUMNS_ADDED,
    }
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_payload() -> None:
    if payload_sha256() != PAYLOAD_SHA256:
        raise MigrationError(
            f"revision {revision} was edited by hand: its payload no longer matches PAYLOAD_SHA256",
            hint="restore the file from version control; revisions are generated, not edited",
        )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _execute(sql: str) -> None:
    """Run SQL exactly as written: straight to the driver, without parameters, so no `:name`
    or `%` in it is taken for a placeholder."""
    cursor = op.get_bind().connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _retire(old: list[dict], new: list[dict]) -> None:
    """Drop the triggers and routines of `old` that `new` does not create, triggers first,
    and forget the routines in cmdm.managed_object."""
    kept_triggers = {tuple(trigger) for obj in new for trigger in obj["triggers"]}
    kept = {obj["identity"] for obj in new}
    for obj in old:
        for name, table in obj["triggers"]:
            if (name, table) not in kept_triggers:
                _execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for obj in old:
        if obj["identity"] not in kept:
            _execute(f"DROP {obj['kind'].upper()} IF EXISTS {obj['identity']}")
            op.execute(
                text(
                    "DELETE FROM cmdm.managed_object "
                    "WHERE object_type = :object_type AND object_identity = :identity"
                ).bindparams(object_type=obj["kind"], identity=obj["identity"])
            )


def _create(objects: list[dict], created_by: str | None, hint: str) -> None:
    """Run each object's frozen SQL and register the routine it creates."""
    for obj in objects:
        try:
            _create_or_replace(obj)
        except psycopg.Error as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise MigrationError(
                f"{obj['template']} ({obj['identity']}) failed in revision {revision}: {detail}",
                hint=hint,
            ) from exc
        op.execute(
            text(
                "INSERT INTO cmdm.managed_object (object_type, object_identity, created_by) "
                "VALUES (:object_type, :identity, :created_by) "
                "ON CONFLICT (object_type, object_identity) DO NOTHING"
            ).bindparams(object_type=obj["kind"], identity=obj["identity"], created_by=created_by)
        )


def _create_or_replace(obj: dict) -> None:
    """Run the object's SQL without the triggers already in place (_without_unchanged_triggers).
    CREATE OR REPLACE cannot change a routine's result type or parameter names (42P13):
    then the routine and its triggers are dropped and the whole SQL runs again."""
    savepoint = op.get_bind().begin_nested()
    try:
        _execute(_without_unchanged_triggers(obj["sql"]))
    except psycopg.errors.InvalidFunctionDefinition:
        savepoint.rollback()
    else:
        savepoint.commit()
        return
    for name, table in obj["triggers"]:
        _execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    _execute(f"DROP {obj['kind'].upper()} IF EXISTS {obj['identity']}")
    _execute(obj["sql"])


#: A trigger statement of the frozen SQL: CREATE [OR REPLACE] [CONSTRAINT] TRIGGER at the
#: start of a line up to the semicolon that ends a line, with the DROP TRIGGER IF EXISTS
#: right before it that older templates wrote (and constraint triggers still need: they
#: cannot be replaced).
_TRIGGER_STATEMENT = re.compile(
    r"^(?:DROP TRIGGER IF EXISTS \S+ ON \S+;\n)?"
    r"(CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER (\S+)\n.*?;)$",
    re.MULTILINE | re.DOTALL,
)


def _without_unchanged_triggers(sql: str) -> str:
    """`sql` without each trigger statement whose trigger exists, enabled, with the very
    definition the statement gives (pg_get_triggerdef). Creating a trigger locks its table
    (CREATE OR REPLACE TRIGGER: SHARE ROW EXCLUSIVE, DROP TRIGGER: ACCESS EXCLUSIVE), which
    queues the deploy behind the ETL's open transaction on the facts table; a deploy that
    keeps the triggers as they are leaves their tables alone."""
    statements = list(_TRIGGER_STATEMENT.finditer(sql))
    if not statements:
        return sql
    in_place = _trigger_definitions(sorted({_unquoted(m.group(2)) for m in statements}))
    return _TRIGGER_STATEMENT.sub(
        lambda m: "" if _one_line(m.group(1)) in in_place else m.group(0), sql
    )


def _one_line(statement: str) -> str:
    """A CREATE TRIGGER statement as pg_get_triggerdef prints it: without OR REPLACE and
    the semicolon, blanks collapsed."""
    statement = statement.rstrip(";").replace("CREATE OR REPLACE TRIGGER", "CREATE TRIGGER", 1)
    return " ".join(statement.split())


def _unquoted(name: str) -> str:
    """A trigger name as written in SQL, as pg_trigger stores it."""
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


def _trigger_definitions(names: list[str]) -> set[str]:
    """pg_get_triggerdef of the enabled triggers with these names, blanks collapsed."""
    rows = _catalog_rows(
        "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
        "WHERE t.tgname = ANY (CAST(:names AS text[])) AND t.tgenabled = 'O' "
        "AND NOT t.tgisinternal",
        {"names": names},
    )
    return {" ".join(definition.split()) for (definition,) in rows}


def _catalog_rows(query: str, params: dict) -> list:
    """The rows of `query`, read with search_path = pg_catalog so that the definitions it
    prints do not depend on the session (as `cmdm deploy-rules --check` reads them)."""
    bind = op.get_bind()
    saved = bind.execute(text("SELECT current_setting('search_path')")).scalar_one()
    bind.execute(text("SELECT set_config('search_path', 'pg_catalog', true)"))
    rows = bind.execute(text(query), params).all()
    bind.execute(text("SELECT set_config('search_path', :saved, true)"), {"saved": saved})
    return rows


def _function_defs(objects: list[dict]) -> dict[str, str]:
    """identity -> sha256 of pg_get_functiondef(oid) (see _catalog_rows)."""
    rows = _catalog_rows(
        "SELECT i.identity, encode(sha256(convert_to("
        "pg_get_functiondef(to_regprocedure(i.identity)), 'UTF8')), 'hex') "
        "FROM unnest(CAST(:identities AS text[])) AS i (identity)",
        {"identities": [obj["identity"] for obj in objects]},
    )
    missing = [identity for identity, digest in rows if digest is None]
    if missing:
        raise MigrationError(
            f"revision {revision} did not create {', '.join(missing)}",
            hint="the object's SQL must create the routine its header names",
        )
    return dict(rows)


# --- frozen payload -------------------------------------------------------------------------

#: The rule files (name -> YAML text) the SQL was rendered from.
RULES_TEXT = {
    "config.yml": """\
# Named numbers (referenced from rules as {config: name}) and the tables the rules read.
schema_version: 1

config:
  # is_strategic: a company whose total AUM at the reference month reaches this (CNY).
  strategic_threshold: 500000000
  # is_strategic: the N largest companies by AUM of each branch are strategic too.
  whitelist_top_n: 10

sources:
  performance:                 # monthly AUM facts, one row per plan portfolio
    kind: facts
    table: business.规模明细
    date_field: 月度
    keys: {company_id: company_id, plan_code: 计划代码, product_line_code: 产品线代码}
  award:                       # awards won (当年中标)
    kind: events
    table: customer.当年中标
    date_field: 上报月份
    keys: {company_id: company_id, plan_code: 计划代码, product_line_code: 产品线代码}
  loss:                        # losses reported (当年流失)
    kind: events
    table: customer.当年流失
    date_field: 上报月份
    keys: {company_id: company_id, plan_code: 计划代码, product_line_code: 产品线代码}
""",
    "contract.yml": """\
# The contract of a key (company_id, plan_code, product_line_code): its status each loaded
# month, and the columns whose changes open a new SCD Type 2 version.
schema_version: 1

contract:
  source: performance
  measure: 期末资产规模          # month-end AUM: SUM over the key's portfolio rows of a month
  branch_field: 机构代码
  status_values: [正常, 停缴]
  status:
    cases:
      - value: 正常              # active: the key holds assets at month end
        when: {field_compare: {field: 期末资产规模, op: gt, value: 0}}
    default: 停缴                # suspended
  on_missing: suspend
  suspended_status: 停缴
  tracked_columns: [contract_status, is_strategic, is_existing, status_year]
""",
    "statuses.yml": """\
# Boolean statuses: each is a column of the monthly snapshot tables, evaluated as of the
# snapshot month. Annual statuses are evaluated once a year at the reference month and
# stored on contract versions.
schema_version: 1

statuses:
  is_winning_this_year:
    description: >-
      当年中标 (won this year): an award for this customer and product line was reported in
      the snapshot's calendar year, on or before the snapshot month.
    grain: product_line
    rule: {exists_in_year: {source: award}}

  is_churned_this_year:
    description: >-
      当年流失 (loss reported this year): a loss for this customer and product line was
      reported in the snapshot's calendar year, on or before the snapshot month. It records
      the report, whether or not the assets have left yet.
    grain: product_line
    rule: {exists_in_year: {source: loss}}

  is_new:
    description: >-
      新客户 (new customer): won this year in a product line where the customer held no
      assets at the year's reference month.
    grain: product_line
    rule:
      all:
        - status: is_winning_this_year
        - not: {status: is_existing}

  # No grain: evaluated at the key of each row it is written on (DESIGN §4, "Each table
  # speaks for its own row"): the plan's in the plan table, the product line's in the
  # business table.
  is_new_arrival:
    description: >-
      新到账 (new arrival): the snapshot month is the first loaded month with facts for the
      row's key: this plan in the plan table, this customer and product line in the
      business table.
    rule: {first_appearance: {}}

  is_churned:
    description: >-
      已流失 (churned): the row's key (this plan in the plan table, this customer and product
      line in the business table) had facts in the previous loaded month and has none now,
      or its month-end AUM is not positive. "le 0" rather than "= 0": a negative AUM is a
      data error, and such a key is not active either.
    rule:
      any:
        - disappeared: {}
        - field_compare: {field: 期末资产规模, op: le, value: 0}

  is_strategic:
    description: >-
      战略客户 (strategic customer): at the year's reference month the company's total AUM
      reaches strategic_threshold, or it is among the whitelist_top_n largest companies by
      AUM of its branch.
    grain: company
    annual: true
    rule:
      any:
        - field_compare: {field: 期末资产规模, op: ge, value: {config: strategic_threshold}}
        - top_n: {field: 期末资产规模, n: {config: whitelist_top_n}, within: 机构代码}

  is_existing:
    description: >-
      存量客户 (existing customer): the company held assets (AUM > 0) in this product line at
      the year's reference month.
    grain: product_line
    annual: true
    rule: {field_compare: {field: 期末资产规模, op: gt, value: 0}}
""",
}

#: What upgrade creates, in order: the rendered SQL of each template, frozen.
OBJECTS = [
    {
        "template": "sql/functions/cmdm.post_hooks_enabled.sql.j2",
        "kind": "function",
        "identity": "cmdm.post_hooks_enabled()",
        "triggers": [],
        "sha256": "87b34fb0f689831cb859ae8fbb16a92e7310a4727ed036d87fc2deeec6eb656f",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.post_hooks_enabled.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.post_hooks_enabled()
    RETURNS boolean
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Does this session (or transaction) want the post-ETL hooks run by the triggers? The
 * ETL's "no post hooks" switch is `SET cmdm.post_hooks = off` (SET LOCAL for one
 * transaction); unset, on, true, yes or 1 mean run them. Anything else is refused rather
 * than guessed: a typo must not silently skip, or silently run, an hour of work.
 */
DECLARE
    v_setting text := pg_catalog.lower(pg_catalog.btrim(
        coalesce(pg_catalog.current_setting('cmdm.post_hooks', true), '')));
BEGIN
    IF v_setting IN ('', 'on', 'true', 'yes', '1') THEN
        RETURN true;
    ELSIF v_setting IN ('off', 'false', 'no', '0') THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'invalid_parameter_value',
        MESSAGE = pg_catalog.format('cmdm.post_hooks is %L, which is neither on nor off',
                                    pg_catalog.current_setting('cmdm.post_hooks', true)),
        HINT = 'SET cmdm.post_hooks = off skips the post-ETL hooks (SET LOCAL: this transaction only); RESET cmdm.post_hooks runs them again.';
END
$fn$;

COMMENT ON FUNCTION cmdm.post_hooks_enabled() IS
    'Reads the cmdm.post_hooks setting (the ETL''s no-post-hooks switch): true unless off. rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/cmdm.run_hooks.sql.j2",
        "kind": "function",
        "identity": "cmdm.run_hooks(text, date[], date[], text, daterange, bigint)",
        "triggers": [],
        "sha256": "d043ce05ee8349fdbceaa6967cb830175441acac9c89863280135940f8b8608f",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.run_hooks.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.run_hooks(p_domain text, p_periods date[], p_event_dates date[] DEFAULT '{}', p_trigger_kind text DEFAULT 'call', p_defer daterange DEFAULT NULL, p_backfill_id bigint DEFAULT NULL)
    RETURNS TABLE (hook_run_id bigint, period date, step text, outcome text, counts jsonb, rejects integer, duration interval)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * What: run the post-ETL steps registered for p_domain in cmdm.post_etl_hook, in
 * step_order, for the months whose facts changed (p_periods) and the events rows whose
 * dates are p_event_dates; log each (period, step) in cmdm.hook_run (period: the
 * month-end, as everywhere in the outputs) and return those rows.
 *   contract_sync     customer.sync_contract_status of every period, in ascending order
 *                     (a later month's sync reads the history the earlier ones repaired);
 *   snapshot_refresh  customer.refresh_monthly_snapshot of every month that depends on
 *                     the change: the syncs' snapshot_months, the periods themselves, and
 *                     customer.event_dependent_months of every events date; each once.
 * Months inside p_defer are not refreshed: a backfill passes the months its own later
 * steps will refresh anyway (matched against first days of months).
 *
 * Why one function: CALL customer.run_post_etl_hooks (one period), the commit-time trigger
 * (every month a transaction changed) and the CLI (backfill, rebuild) must do exactly the
 * same work, so they all come here.
 *
 * Failure: any step's error aborts the caller's transaction (nothing half-written), its
 * SQLSTATE kept, its message prefixed with the domain, step and period, which DETAIL
 * repeats as a JSON object with the cause's message and detail. One handler for the whole
 * run: a subtransaction per step and month would cost every concurrent session's
 * snapshots once a rebuild's run passes 64 of them. A disabled domain
 * is an error when asked for explicitly and a logged skip when reached by the trigger.
 * Two causes get a message and hint of their own, as they are the caller's settings, not
 * a step's fault: a cancel (statement_timeout limits a CALL, though not the hooks a COMMIT
 * runs: PostgreSQL stops the statement timer before the commit work) and lock_timeout
 * reached while waiting for the hook lock (it does limit a COMMIT).
 *
 * Stale months: a run that ran every step of the domain deletes the cmdm.stale_change rows
 * of its months and events dates (before any step reads the facts: a change committed
 * after that keeps its row); a load while the domain is disabled adds them.
 *
 * Concurrency: every run holds the hook lock contract_sync (cmdm.take_hook_lock: a row
 * lock only cmdm can take) exclusively until commit, taken before anything is decided, so
 * concurrent hook runs, `cmdm rebuild` and product-line renames serialize at that one lock
 * and never deadlock over month locks (refresh_monthly_snapshot takes it shared before its
 * month's lock). READ COMMITTED only: each statement must see the history a concurrent
 * hook run committed while this one waited.
 */
DECLARE
    v_enabled boolean;
    v_periods date[];
    v_months date[] := '{}'::date[];
    v_month date;
    v_step record;
    v_sync record;
    v_refresh record;
    v_started timestamptz;
    v_counts jsonb;
    v_rejects integer;
    v_outcome text;
    v_state text;
    v_message text;
    v_detail text;
    v_hint text;
    v_rules_sha256 text;
    v_failed_step text;         -- the step and month running when an error is raised
    v_failed_period date;
    v_locking boolean := false; -- waiting for the hook lock
    v_holders text;
BEGIN
    IF p_trigger_kind IS NULL OR p_trigger_kind NOT IN ('call', 'trigger', 'cli') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('trigger kind %L is not call, trigger or cli', p_trigger_kind),
            HINT = 'ETL code calls CALL customer.run_post_etl_hooks(domain, period).';
    END IF;
    SELECT d.enabled INTO v_enabled FROM cmdm.hook_domain d WHERE d.domain = p_domain;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM003',
            MESSAGE = pg_catalog.format('unknown post-ETL hook domain %L', p_domain),
            HINT = pg_catalog.format('Known domains: %s.',
                                     (SELECT pg_catalog.string_agg(d.domain, ', ' ORDER BY d.domain)
                                        FROM cmdm.hook_domain d));
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM005',
            MESSAGE = pg_catalog.format('post-ETL hooks need READ COMMITTED, not %s',
                                        pg_catalog.upper(pg_catalog.current_setting('transaction_isolation'))),
            HINT = 'Load in a READ COMMITTED transaction, or SET LOCAL cmdm.post_hooks = off and CALL customer.run_post_etl_hooks from a READ COMMITTED one: a hook must see the history concurrent hook runs committed.';
    END IF;

    -- The months, each once, ascending. (A month out of range fails in its step, which
    -- names it.)
    IF pg_catalog.array_position(p_periods, NULL) IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass the months whose facts changed, e.g. ARRAY[''2026-01-31''::date].';
    END IF;
    SELECT coalesce(pg_catalog.array_agg(DISTINCT pg_catalog.date_trunc('month', p.p)::date
                                         ORDER BY pg_catalog.date_trunc('month', p.p)::date), '{}')
      INTO v_periods
      FROM pg_catalog.unnest(coalesce(p_periods, '{}')) p(p);

    -- One error handler for the whole run (one subtransaction, not one per step and
    -- month): the failing step and month are known from v_failed_step and v_failed_period.
    BEGIN
        -- Every hook run takes the hook lock exclusively, before it reads anything it
        -- decides on (even an events-only run: the months event_dependent_months finds must
        -- include a month a concurrent hook run is committing), and holds it to commit.
        v_locking := true;
        PERFORM cmdm.take_hook_lock('contract_sync');
        v_locking := false;

        -- The deployed rules the steps run (logged with each run).
        SELECT d.sha256 INTO v_rules_sha256
          FROM cmdm.rule_deployment d ORDER BY d.deployment_id DESC LIMIT 1;

        -- What this run covers no longer needs the commit-time run (a CALL after a load).
        DELETE FROM cmdm.hook_queue q
         WHERE q.txid = pg_catalog.pg_current_xact_id()
           AND q.domain = p_domain
           AND ((q.kind = 'facts' AND q.period = ANY (v_periods))
                OR (q.kind = 'event' AND q.period = ANY (coalesce(p_event_dates, '{}'))));

        IF NOT v_enabled THEN
            IF p_trigger_kind <> 'trigger' THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'CM004',
                    MESSAGE = pg_catalog.format('post-ETL hook domain %L is disabled', p_domain),
                    HINT = pg_catalog.format('Enable it with: cmdm hooks enable %s', p_domain);
            END IF;
            -- A load while the domain is off: its months are stale (cmdm status, cmdm
            -- backfill --stale), and the log says which were left behind.
            INSERT INTO cmdm.stale_change (domain, kind, period, reason)
            SELECT p_domain, 'facts', p.p, 'domain_disabled' FROM pg_catalog.unnest(v_periods) p(p)
            UNION
            SELECT p_domain, 'event', e.e, 'domain_disabled'
              FROM pg_catalog.unnest(coalesce(p_event_dates, '{}')) e(e)
             WHERE e.e IS NOT NULL
            ON CONFLICT DO NOTHING;
            RETURN QUERY
            INSERT INTO cmdm.hook_run AS r (domain, period, step, trigger_kind, duration, outcome,
                                            rules_sha256, error, backfill_id)
            SELECT DISTINCT p_domain, (pg_catalog.date_trunc('month', s.s) + INTERVAL '1 month - 1 day')::date,
                   'all', p_trigger_kind,
                   INTERVAL '0', 'skipped', v_rules_sha256,
                   pg_catalog.format('domain %s is disabled', p_domain), p_backfill_id
              FROM (SELECT pg_catalog.unnest(v_periods)
                    UNION
                    SELECT pg_catalog.unnest(coalesce(p_event_dates, '{}'))) s(s)
             WHERE s.s IS NOT NULL
            RETURNING r.hook_run_id, r.period, r.step, r.outcome, r.counts, r.rejects, r.duration;
            RETURN;
        END IF;

        -- The months and events dates of this run are no longer stale once it commits, if
        -- every step of the domain runs. Deleted before any step reads the facts: a load
        -- committing after this statement keeps its record (READ COMMITTED: this statement
        -- does not see it, the steps may or may not).
        IF NOT EXISTS (SELECT FROM cmdm.post_etl_hook s WHERE s.domain = p_domain AND NOT s.enabled) THEN
            DELETE FROM cmdm.stale_change c
             WHERE c.domain = p_domain
               AND ((c.kind = 'facts' AND c.period = ANY (v_periods))
                    OR (c.kind = 'event' AND c.period = ANY (coalesce(p_event_dates, '{}'))));
        END IF;

        FOR v_step IN
            SELECT s.step, s.enabled FROM cmdm.post_etl_hook s
             WHERE s.domain = p_domain
             ORDER BY s.step_order
        LOOP
            IF v_step.step NOT IN ('contract_sync', 'snapshot_refresh') THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'CM006',
                    MESSAGE = pg_catalog.format('post-ETL hook domain %s has the unknown step %L',
                                                p_domain, v_step.step),
                    HINT = 'Steps are contract_sync and snapshot_refresh (cmdm.post_etl_hook).';
            END IF;

            IF v_step.step = 'contract_sync' THEN
                FOREACH v_month IN ARRAY v_periods LOOP
                    v_started := pg_catalog.clock_timestamp();
                    IF v_step.enabled THEN
                        v_failed_step := v_step.step;
                        v_failed_period := v_month;
                        SELECT * INTO STRICT v_sync FROM customer.sync_contract_status(v_month);
                        v_months := v_months || v_sync.snapshot_months;
                        v_counts := pg_catalog.to_jsonb(v_sync) - 'period';
                        v_rejects := v_sync.rejected_null_key + v_sync.rejected_blank_key
                                     + v_sync.rejected_unknown_product_line
                                     + v_sync.rejected_unknown_company;
                        v_outcome := 'succeeded';
                    ELSE
                        v_counts := '{}';
                        v_rejects := 0;
                        v_outcome := 'skipped';
                    END IF;
                    RETURN QUERY
                    INSERT INTO cmdm.hook_run AS r (domain, period, step, trigger_kind, started_at,
                                                    duration, outcome, counts, rejects, rules_sha256,
                                                    error, backfill_id)
                    VALUES (p_domain, (v_month + INTERVAL '1 month - 1 day')::date, v_step.step, p_trigger_kind, v_started,
                            pg_catalog.clock_timestamp() - v_started, v_outcome, v_counts, v_rejects,
                            v_rules_sha256,
                            CASE WHEN v_outcome = 'skipped' THEN 'step disabled' END, p_backfill_id)
                    RETURNING r.hook_run_id, r.period, r.step, r.outcome, r.counts, r.rejects, r.duration;
                END LOOP;
            ELSE
                -- Every month depending on the change, once, ascending.
                SELECT coalesce(pg_catalog.array_agg(DISTINCT m.m ORDER BY m.m), '{}') INTO v_months
                  FROM (SELECT pg_catalog.date_trunc('month', x.x)::date
                          FROM pg_catalog.unnest(v_months || v_periods) x(x)
                        UNION ALL
                        SELECT pg_catalog.date_trunc('month', e.month)::date
                          FROM pg_catalog.unnest(coalesce(p_event_dates, '{}')) d(d),
                               customer.event_dependent_months(d.d) e) m(m)
                 WHERE m.m IS NOT NULL
                   AND NOT coalesce(p_defer @> m.m, false);
                FOREACH v_month IN ARRAY v_months LOOP
                    v_started := pg_catalog.clock_timestamp();
                    IF v_step.enabled THEN
                        v_failed_step := v_step.step;
                        v_failed_period := v_month;
                        SELECT * INTO STRICT v_refresh FROM customer.refresh_monthly_snapshot(v_month);
                        v_counts := pg_catalog.to_jsonb(v_refresh) - 'snapshot_month';
                        v_rejects := v_refresh.rejected_amount_overflow;
                        v_outcome := 'succeeded';
                    ELSE
                        v_counts := '{}';
                        v_rejects := 0;
                        v_outcome := 'skipped';
                    END IF;
                    RETURN QUERY
                    INSERT INTO cmdm.hook_run AS r (domain, period, step, trigger_kind, started_at,
                                                    duration, outcome, counts, rejects, rules_sha256,
                                                    error, backfill_id)
                    VALUES (p_domain, (v_month + INTERVAL '1 month - 1 day')::date, v_step.step, p_trigger_kind, v_started,
                            pg_catalog.clock_timestamp() - v_started, v_outcome, v_counts, v_rejects,
                            v_rules_sha256,
                            CASE WHEN v_outcome = 'skipped' THEN 'step disabled' END, p_backfill_id)
                    RETURNING r.hook_run_id, r.period, r.step, r.outcome, r.counts, r.rejects, r.duration;
                END LOOP;
            END IF;
        END LOOP;
    EXCEPTION
    WHEN query_canceled THEN
        -- statement_timeout (a CALL, SET CONSTRAINTS ... IMMEDIATE) or a cancel request.
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        RAISE EXCEPTION USING
            ERRCODE = 'query_canceled',
            MESSAGE = pg_catalog.format('post-ETL hook %s: %s was canceled: %s', p_domain,
                                        CASE WHEN v_failed_step IS NULL THEN 'the run'
                                             ELSE pg_catalog.format('step %s for period %s', v_failed_step,
                                                                    pg_catalog.to_char(v_failed_period, 'YYYY-MM'))
                                        END, v_message),
            DETAIL = pg_catalog.jsonb_build_object(
                         'domain', p_domain, 'step', v_failed_step,
                         'period', pg_catalog.to_char(v_failed_period, 'YYYY-MM'),
                         'message', v_message, 'detail', NULL)::text,
            HINT = CASE WHEN v_message LIKE '%statement timeout%'
                        THEN pg_catalog.format('statement_timeout (%s) limits a CALL of the hooks like any statement (not the hooks a COMMIT runs): SET LOCAL statement_timeout = 0 before the CALL, or let COMMIT run them. Nothing was written: the transaction is aborted, its facts with it.',
                                               pg_catalog.current_setting('statement_timeout'))
                        ELSE 'The hooks were canceled (pg_cancel_backend, or the client). Nothing was written: the transaction is aborted, its facts with it; load again.'
                   END;
    WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
        IF v_locking AND v_state = '55P03' THEN
            -- lock_timeout while the hook lock is held by another transaction: who holds it
            -- (its xmax is the locker's transaction, unless several share it).
            SELECT pg_catalog.string_agg(DISTINCT l.pid::text, ', ') INTO v_holders
              FROM cmdm.hook_lock h
              JOIN pg_catalog.pg_locks l
                ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
               AND l.transactionid = h.xmax
             WHERE h.name = 'contract_sync';
            RAISE EXCEPTION USING
                ERRCODE = 'lock_not_available',
                MESSAGE = pg_catalog.format('post-ETL hook %s: waited longer than lock_timeout (%s) for the hook lock, held by %s',
                                            p_domain, pg_catalog.current_setting('lock_timeout'),
                                            coalesce('backend ' || v_holders, 'another transaction')),
                DETAIL = pg_catalog.jsonb_build_object('domain', p_domain, 'step', NULL, 'period', NULL,
                                                       'message', v_message, 'detail', NULL)::text,
                HINT = 'Another load''s hooks, cmdm rebuild or a product-line rename holds it to the end of its transaction (pg_stat_activity shows that backend). Nothing was written: the transaction is rolled back, its facts with it. Load again, or let the hooks wait their turn: SET LOCAL lock_timeout = 0 (or longer) before COMMIT or CALL.';
        END IF;
        IF v_failed_step IS NULL THEN
            RAISE;  -- before any step ran: the error says enough
        END IF;
        -- The message names the step and month for people; DETAIL carries the same as a
        -- JSON object for programs (cmdm_admin.hooks reads it), with the cause's own detail.
        RAISE EXCEPTION USING
            ERRCODE = v_state,
            MESSAGE = pg_catalog.format('post-ETL hook %s: step %s for period %s failed: %s',
                                        p_domain, v_failed_step,
                                        pg_catalog.to_char(v_failed_period, 'YYYY-MM'), v_message),
            DETAIL = pg_catalog.jsonb_build_object(
                         'domain', p_domain, 'step', v_failed_step,
                         'period', pg_catalog.to_char(v_failed_period, 'YYYY-MM'),
                         'message', v_message, 'detail', nullif(v_detail, ''))::text,
            HINT = coalesce(nullif(v_hint, ''), 'Nothing was written: the transaction is rolled back. Fix the cause and load again, or run the hooks for the period with CALL customer.run_post_etl_hooks.');
    END;
END
$fn$;

COMMENT ON FUNCTION cmdm.run_hooks(text, date[], date[], text, daterange, bigint) IS
    'Runs and logs the post-ETL steps of a domain for changed months and events dates (docs/hooks.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/cmdm.scratch_table.sql.j2",
        "kind": "function",
        "identity": "cmdm.scratch_table(text, text)",
        "triggers": [],
        "sha256": "aedeeb8c162bdd0940e3b1cac1a3f65a3f3649ce8b116b0c8183e912fc04117a",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.scratch_table.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.scratch_table(p_name text, p_columns text)
    RETURNS void
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * What: an empty scratch table pg_temp.<p_name> (<p_columns>) for the calling routine:
 * created on the first call in a transaction (ON COMMIT DROP), emptied on the next.
 *
 * Why a routine: every step of the hooks keeps its intermediate sets in such tables; one
 * guard here instead of a copy in each step. pg_temp is the caller's schema: a table of
 * that name the caller created (with a trigger of its own on it) would run the caller's
 * code as the owner of our routines, so one not owned by that owner is refused, never
 * reused. Names and column lists come from the templates, never from users.
 */
DECLARE
    v_table regclass := pg_catalog.to_regclass(pg_catalog.format('pg_temp.%I', p_name));
BEGIN
    IF v_table IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I (%s) ON COMMIT DROP', p_name, p_columns);
    ELSIF NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                       WHERE c.oid = v_table
                         AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r
                                            WHERE r.rolname = current_user)) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('the temporary table pg_temp.%I belongs to another role', p_name),
            HINT = 'cmdm keeps its scratch tables in pg_temp under that name: drop yours, or use another name.';
    ELSE
        EXECUTE pg_catalog.format('TRUNCATE pg_temp.%I', p_name);
    END IF;
END
$fn$;

COMMENT ON FUNCTION cmdm.scratch_table(text, text) IS
    'An empty pg_temp scratch table for one step of a hook (created once a transaction, emptied after). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/cmdm.set_hook_domain.sql.j2",
        "kind": "function",
        "identity": "cmdm.set_hook_domain(text, boolean)",
        "triggers": [],
        "sha256": "84f3f1cab00bfe4f7eca4e4707256499e79b6a68b0fa6365ec6ddf45a0677508",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.set_hook_domain.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.set_hook_domain(p_domain text, p_enabled boolean)
    RETURNS SETOF cmdm.hook_domain
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Turn a post-ETL hook domain on or off persistently (`cmdm hooks enable|disable`). While
 * off, loads still commit; the trigger logs each month it skipped in cmdm.hook_run, so
 * the months to backfill afterwards are known.
 */
BEGIN
    IF p_enabled IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'enabled is NULL',
            HINT = 'Pass true to enable the domain, false to disable it.';
    END IF;
    RETURN QUERY
    UPDATE cmdm.hook_domain d
       SET enabled = p_enabled, changed_at = pg_catalog.now(), changed_by = session_user
     WHERE d.domain = p_domain
    RETURNING d.*;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM003',
            MESSAGE = pg_catalog.format('unknown post-ETL hook domain %L', p_domain),
            HINT = pg_catalog.format('Known domains: %s.',
                                     (SELECT pg_catalog.string_agg(d.domain, ', ' ORDER BY d.domain)
                                        FROM cmdm.hook_domain d));
    END IF;
END
$fn$;

COMMENT ON FUNCTION cmdm.set_hook_domain(text, boolean) IS
    'Enables or disables a post-ETL hook domain persistently. rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/cmdm.take_hook_lock.sql.j2",
        "kind": "function",
        "identity": "cmdm.take_hook_lock(text, boolean)",
        "triggers": [],
        "sha256": "c5144f90d55b855f72dc2abae6501b4cdb64ee2c034a5b61707c8e9dd2c12929",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.take_hook_lock.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.take_hook_lock(p_name text, p_shared boolean DEFAULT false)
    RETURNS void
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * What: lock the row p_name of cmdm.hook_lock until the end of the transaction: FOR UPDATE
 * (exclusive), or FOR SHARE when p_shared. The names are
 *   contract_sync      every writer of the contract history and of the snapshots takes it
 *                      exclusively: a hook run (cmdm.run_hooks), a sync, an annual decision,
 *                      `cmdm rebuild`, a product-line rename; a snapshot refresh called
 *                      alone takes it shared (it waits for a sync, not for another refresh);
 *   snapshot:YYYY-MM   a refresh of that month takes it exclusively (after contract_sync:
 *                      one lock order everywhere); the row is made on first use.
 * Taking a lock already held by the transaction returns at once.
 *
 * Why a row of a table of ours, not an advisory lock: any role can take any advisory lock,
 * and a reader holding the hooks' one stalled every load (issue 18). Locking a row takes
 * UPDATE on the table (FOR KEY SHARE too), which only cmdm_owner has; this routine runs as
 * cmdm_owner. A wait is an ordinary lock wait: lock_timeout, the deadlock detector and
 * pg_blocking_pids apply.
 */
BEGIN
    IF p_shared THEN
        PERFORM FROM cmdm.hook_lock l WHERE l.name = p_name FOR SHARE;
    ELSE
        PERFORM FROM cmdm.hook_lock l WHERE l.name = p_name FOR UPDATE;
    END IF;
    IF FOUND THEN
        RETURN;
    END IF;
    -- A month's row on its first use (a concurrent first use waits here for the other
    -- transaction, then finds its row); a name the table does not allow fails its check.
    INSERT INTO cmdm.hook_lock (name) VALUES (p_name) ON CONFLICT DO NOTHING;
    IF p_shared THEN
        PERFORM FROM cmdm.hook_lock l WHERE l.name = p_name FOR SHARE;
    ELSE
        PERFORM FROM cmdm.hook_lock l WHERE l.name = p_name FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'internal_error',
            MESSAGE = pg_catalog.format('the hook lock %L could not be taken: its row vanished', p_name),
            HINT = 'Rows of cmdm.hook_lock are never deleted by cmdm: run the same command again.';
    END IF;
END
$fn$;

COMMENT ON FUNCTION cmdm.take_hook_lock(text, boolean) IS
    'Takes a post-ETL hook lock (a row of cmdm.hook_lock) until the transaction ends, exclusive or shared (docs/hooks.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.check_annual_statuses.sql.j2",
        "kind": "function",
        "identity": "customer.check_annual_statuses(integer[])",
        "triggers": [],
        "sha256": "9e8e4b3a9524f48129d604672164bfa49163bd822738b2b96ff3118a4cffbd59",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.check_annual_statuses.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.check_annual_statuses(p_years integer[])
    RETURNS TABLE (table_name text, difference text, decision jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: compare the stored decisions of the years p_years (customer.annual_reference and
 * the customer.annual_*_status tables) with what their reference months' facts decide now
 * (customer.compute_annual_statuses), both ways: one row per decision row that differs,
 * 'missing' (expected, not stored) or 'unexpected' (stored, not expected), as jsonb.
 *
 * Writes only scratch tables of this transaction; takes no lock beyond reading.
 */
BEGIN
    PERFORM customer.compute_annual_statuses(p_years);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_reference (status_year integer, reference_month date)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_company (status_year integer, company_id text, evidence jsonb, is_strategic boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_product_line (status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean)';
    RETURN QUERY
    WITH expected AS (
        SELECT n.status_year, n.reference_month FROM pg_temp.cmdm_annual_reference n
    ), stored AS (
        SELECT r.status_year, r.reference_month FROM customer.annual_reference r
         WHERE r.status_year = ANY (p_years)
    )
    SELECT 'customer.annual_reference', 'missing', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM stored) x
    UNION ALL
    SELECT 'customer.annual_reference', 'unexpected', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM expected) x;

    RETURN QUERY
    WITH expected AS (
        SELECT n.status_year, n.company_id, n.evidence, n.is_strategic
          FROM pg_temp.cmdm_annual_company n
    ), stored AS (
        SELECT a.status_year, a.company_id::text, a.evidence, a.is_strategic
          FROM customer.annual_company_status a
         WHERE a.status_year = ANY (p_years)
    )
    SELECT 'customer.annual_company_status'::text::text, 'missing', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM stored) x
    UNION ALL
    SELECT 'customer.annual_company_status'::text::text, 'unexpected', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM expected) x;

    RETURN QUERY
    WITH expected AS (
        SELECT n.status_year, n.company_id, n.product_line_code, n.evidence, n.is_existing
          FROM pg_temp.cmdm_annual_product_line n
    ), stored AS (
        SELECT a.status_year, a.company_id::text, a.product_line_code::text, a.evidence, a.is_existing
          FROM customer.annual_product_line_status a
         WHERE a.status_year = ANY (p_years)
    )
    SELECT 'customer.annual_product_line_status'::text::text, 'missing', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM stored) x
    UNION ALL
    SELECT 'customer.annual_product_line_status'::text::text, 'unexpected', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM expected) x;
END
$fn$;

COMMENT ON FUNCTION customer.check_annual_statuses(integer[]) IS
    'Differences between the stored annual decisions of the given years and what their reference months decide now (cmdm check). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.check_contract_history.sql.j2",
        "kind": "function",
        "identity": "customer.check_contract_history(date, date)",
        "triggers": [],
        "sha256": "cc85a2aa375bc7856a3b4abaf7d1d2fb9b61aade274dfb05cf9c248547765242",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.check_contract_history.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.check_contract_history(p_from date, p_to date)
    RETURNS TABLE (difference text, version jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: recompute the contract history of the months p_from..p_to from the facts alone
 * (DESIGN §4) and compare it with customer.customer_plan_contract, both ways. Returns one
 * row per version that differs: 'missing' (expected, not stored) or 'unexpected' (stored,
 * not expected), the version as jsonb. No rows: the stored history is right there.
 *
 * How: the window runs from the last loaded month before p_from (so a version boundary at
 * p_from's month is checked too) to the first loaded month after p_to. Each key's state at
 * each loaded month of the window is derived from that month's facts (status rule,
 * on_missing = suspend, the annual statuses its year's reference month decides now,
 * computed afresh by customer.compute_annual_statuses), consecutive equal states are
 * merged, and both sides are clipped to the window: a version reaching past it is compared
 * by its part inside. This is a second derivation of the history, independent of the
 * incremental sync it checks: the same definition, written as a whole-range statement.
 *
 * Writes only scratch tables of this transaction; takes no lock beyond reading.
 * Cost: the facts of the window's months, once, plus the keys seen in any earlier month (one
 * pass over the facts before the window: under suspend a key seen once has a state forever).
 */
DECLARE
    v_from_start date;
    v_to_next date;
    v_lo_start date;            -- first day of the window's first loaded month
    v_lo_end date;              -- its month-end: versions are compared from there
    v_hi date;                  -- month-end of the first loaded month after p_to (or the end of time)
BEGIN
    IF p_from IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_from < DATE '1900-01-01' OR p_from >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_from),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    IF p_to IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_to < DATE '1900-01-01' OR p_to >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_to),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_from_start := pg_catalog.date_trunc('month', p_from)::date;
    v_to_next := (pg_catalog.date_trunc('month', p_to) + INTERVAL '1 month')::date;
    IF v_to_next <= v_from_start THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('the range %s..%s is empty', pg_catalog.to_char(p_from, 'YYYY-MM'),
                                        pg_catalog.to_char(p_to, 'YYYY-MM')),
            HINT = 'Give the first month, then the last.';
    END IF;
    v_lo_start := coalesce(
        (SELECT pg_catalog.date_trunc('month', f."月度")::date FROM business."规模明细" f
          WHERE f."月度" < v_from_start ORDER BY f."月度" DESC LIMIT 1),
        v_from_start);
    v_lo_end := (v_lo_start + INTERVAL '1 month - 1 day')::date;
    v_hi := coalesce(
        (SELECT (pg_catalog.date_trunc('month', f."月度") + INTERVAL '1 month - 1 day')::date
           FROM business."规模明细" f WHERE f."月度" >= v_to_next ORDER BY f."月度" LIMIT 1),
        DATE '9999-12-31');

    -- The loaded months of the window, each with the next loaded month (v_hi after the last).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_check_month (month_end date, next_end date)';
    PERFORM cmdm.scratch_table('cmdm_check_month', 'month_end date, next_end date');
    INSERT INTO pg_temp.cmdm_check_month (month_end, next_end)
    SELECT l, lead(l, 1, v_hi) OVER (ORDER BY l)
      FROM customer.loaded_months(v_lo_start, v_to_next - 1) l;

    -- The window's years as their reference months decide them now.
    PERFORM customer.compute_annual_statuses(ARRAY(
        SELECT DISTINCT extract(year FROM m.month_end)::int FROM pg_temp.cmdm_check_month m));
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_reference (status_year integer, reference_month date)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_company (status_year integer, company_id text, evidence jsonb, is_strategic boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_product_line (status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean)';

    -- Each valid key's facts per loaded month of the window, with its contract status.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_check_fact (month_end date, company_id text, plan_code text, product_line_code text, contract_status text)';
    PERFORM cmdm.scratch_table('cmdm_check_fact', 'month_end date, company_id text, plan_code text, product_line_code text, contract_status text');
    INSERT INTO pg_temp.cmdm_check_fact (month_end, company_id, plan_code, product_line_code, contract_status)
    SELECT m.month_end, m.company_id, m.plan_code, m.product_line_code,
           CASE
               WHEN coalesce(m."sum_期末资产规模", 0) > 0::numeric
                   THEN '正常'
               ELSE '停缴'
           END
      FROM (SELECT (pg_catalog.date_trunc('month', f."月度") + INTERVAL '1 month - 1 day')::date AS month_end,
                   f.company_id::text AS company_id,
                   f."计划代码"::text AS plan_code,
                   f."产品线代码"::text AS product_line_code,
                   sum(f."期末资产规模") AS "sum_期末资产规模"
              FROM business."规模明细" f
              JOIN mapping."产品线" pl ON pl."产品线代码" = f."产品线代码"
              JOIN customer."年金客户" co ON co.company_id = f.company_id
             WHERE f."月度" >= v_lo_start AND f."月度" < v_to_next
               AND f."计划代码" IS NOT NULL
               AND NOT (pg_catalog.btrim(f.company_id, E' \\t\\r\\n') = '' OR pg_catalog.btrim(f."计划代码", E' \\t\\r\\n') = ''
                        OR pg_catalog.btrim(f."产品线代码", E' \\t\\r\\n') = '')
             GROUP BY 1, 2, 3, 4) m;

    -- Every key with a state somewhere in the window: seen in it, or seen before it (suspended
    -- from then on); first_end: its first month with facts (NULL: before the window).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_check_key (company_id text, plan_code text, product_line_code text, first_end date)';
    PERFORM cmdm.scratch_table('cmdm_check_key', 'company_id text, plan_code text, product_line_code text, first_end date');
    INSERT INTO pg_temp.cmdm_check_key (company_id, plan_code, product_line_code, first_end)
    SELECT f.company_id, f.plan_code, f.product_line_code, min(f.month_end)
      FROM pg_temp.cmdm_check_fact f
     GROUP BY 1, 2, 3;
    UPDATE pg_temp.cmdm_check_key k SET first_end = NULL
      FROM (SELECT DISTINCT f.company_id::text AS company_id, f."计划代码"::text AS plan_code,
                   f."产品线代码"::text AS product_line_code
              FROM business."规模明细" f
             WHERE f."月度" < v_lo_start) b
     WHERE b.company_id = k.company_id AND b.plan_code = k.plan_code
       AND b.product_line_code = k.product_line_code;
    INSERT INTO pg_temp.cmdm_check_key (company_id, plan_code, product_line_code, first_end)
    SELECT b.company_id, b.plan_code, b.product_line_code, NULL
      FROM (SELECT DISTINCT f.company_id::text AS company_id, f."计划代码"::text AS plan_code,
                   f."产品线代码"::text AS product_line_code
              FROM business."规模明细" f
              JOIN mapping."产品线" pl ON pl."产品线代码" = f."产品线代码"
              JOIN customer."年金客户" co ON co.company_id = f.company_id
             WHERE f."月度" < v_lo_start AND f."计划代码" IS NOT NULL
               AND NOT (pg_catalog.btrim(f.company_id, E' \\t\\r\\n') = '' OR pg_catalog.btrim(f."计划代码", E' \\t\\r\\n') = ''
                        OR pg_catalog.btrim(f."产品线代码", E' \\t\\r\\n') = '')) b
     WHERE NOT EXISTS (SELECT FROM pg_temp.cmdm_check_key k
                        WHERE k.company_id = b.company_id AND k.plan_code = b.plan_code
                          AND k.product_line_code = b.product_line_code);

    -- Expected versions: one piece per key and loaded month with a state, consecutive
    -- equal pieces merged (gaps and islands); stored versions clipped to the same window.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_check_expected (company_id text, plan_code text, product_line_code text, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_check_expected', 'company_id text, plan_code text, product_line_code text, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean');
    INSERT INTO pg_temp.cmdm_check_expected
           (company_id, plan_code, product_line_code, valid_from, valid_to, contract_status, status_year, is_strategic, is_existing)
    WITH piece AS (
        SELECT k.company_id, k.plan_code, k.product_line_code, m.month_end AS valid_from,
               m.next_end AS valid_to,
               coalesce(f.contract_status, '停缴') AS contract_status,
               extract(year FROM m.month_end)::int AS status_year,
               coalesce(a_company.is_strategic, (SELECT (coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric OR coalesce(ref_company."top_10_by_机构代码", false)) FROM (SELECT NULL::numeric AS "sum_期末资产规模", NULL::boolean AS "top_10_by_机构代码") ref_company)) AS is_strategic,
               coalesce(a_product_line.is_existing, (SELECT coalesce(ref_product_line."sum_期末资产规模", 0) > 0::numeric FROM (SELECT NULL::numeric AS "sum_期末资产规模") ref_product_line)) AS is_existing
          FROM pg_temp.cmdm_check_key k
          JOIN pg_temp.cmdm_check_month m ON m.month_end >= coalesce(k.first_end, v_lo_end)
          LEFT JOIN pg_temp.cmdm_check_fact f
                 ON f.month_end = m.month_end AND f.company_id = k.company_id
                AND f.plan_code = k.plan_code AND f.product_line_code = k.product_line_code
          LEFT JOIN pg_temp.cmdm_annual_company a_company
                 ON a_company.status_year = extract(year FROM m.month_end)::int AND a_company.company_id = k.company_id
          LEFT JOIN pg_temp.cmdm_annual_product_line a_product_line
                 ON a_product_line.status_year = extract(year FROM m.month_end)::int AND a_product_line.company_id = k.company_id AND a_product_line.product_line_code = k.product_line_code
    ), marked AS (
        SELECT p.*,
               CASE WHEN lag(p.valid_to) OVER w = p.valid_from
                     AND (lag(p.contract_status) OVER w, lag(p.status_year) OVER w, lag(p.is_strategic) OVER w, lag(p.is_existing) OVER w)
                         IS NOT DISTINCT FROM (p.contract_status, p.status_year, p.is_strategic, p.is_existing)
                    THEN 0 ELSE 1 END AS starts_version
          FROM piece p
        WINDOW w AS (PARTITION BY p.company_id, p.plan_code, p.product_line_code ORDER BY p.valid_from)
    ), numbered AS (
        SELECT m.*, sum(m.starts_version) OVER (PARTITION BY m.company_id, m.plan_code, m.product_line_code
                                                ORDER BY m.valid_from) AS version_no
          FROM marked m
    )
    SELECT n.company_id, n.plan_code, n.product_line_code, min(n.valid_from), max(n.valid_to),
n.contract_status, n.status_year, n.is_strategic, n.is_existing
      FROM numbered n
     GROUP BY n.company_id, n.plan_code, n.product_line_code, n.version_no,
n.contract_status, n.status_year, n.is_strategic, n.is_existing;

    RETURN QUERY
    WITH expected AS (
        SELECT e.company_id, e.plan_code, e.product_line_code, pl."产品线"::text AS product_line_name,
               e.valid_from, e.valid_to, e.contract_status, e.status_year, e.is_strategic, e.is_existing
          FROM pg_temp.cmdm_check_expected e
          JOIN mapping."产品线" pl ON pl."产品线代码" = e.product_line_code
    ), stored AS (
        SELECT c.company_id::text, c.plan_code::text, c.product_line_code::text,
               c.product_line_name::text, greatest(c.valid_from, v_lo_end) AS valid_from,
               least(c.valid_to, v_hi) AS valid_to, c.contract_status, c.status_year, c.is_strategic, c.is_existing
          FROM customer.customer_plan_contract c
         WHERE pg_catalog.daterange(c.valid_from, c.valid_to) && pg_catalog.daterange(v_lo_end, v_hi)
    )
    SELECT 'missing', pg_catalog.to_jsonb(x) FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM stored) x
    UNION ALL
    SELECT 'unexpected', pg_catalog.to_jsonb(x) FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM expected) x;
END
$fn$;

COMMENT ON FUNCTION customer.check_contract_history(date, date) IS
    'Differences between customer.customer_plan_contract and the history recomputed from the facts alone, over a range of months (cmdm check). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.check_monthly_snapshot.sql.j2",
        "kind": "function",
        "identity": "customer.check_monthly_snapshot(date)",
        "triggers": [],
        "sha256": "f40a577d2a55574c67f0ba22e6f3f8dbbb614437d05359cd69f5c109cdff89d9",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.check_monthly_snapshot.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.check_monthly_snapshot(p_month date)
    RETURNS TABLE (table_name text, difference text, row_key jsonb, stored jsonb, expected jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: compare the stored rows of p_month's month in both snapshot tables with what
 * customer.compute_monthly_snapshot says they must be, row by row and both ways: one row
 * per difference, 'missing' (expected, not stored), 'unexpected' (stored, not expected) or
 * 'different' (same key, other values), with the key and both sides' values as jsonb.
 * No rows: the month's snapshots are right.
 *
 * Why from the stored history: the snapshot of a month is a function of the contract
 * history and the facts; customer.check_contract_history checks the history against the
 * facts, so together they check the snapshots against the facts alone.
 *
 * Writes only scratch tables of this transaction; takes no lock beyond reading.
 */
DECLARE
    v_month_end date;
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_month < DATE '1900-01-01' OR p_month >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_month),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_month_end := (pg_catalog.date_trunc('month', p_month) + INTERVAL '1 month - 1 day')::date;
    PERFORM customer.compute_monthly_snapshot(p_month);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_business_new (company_id text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2), plan_count integer)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_plan_new (company_id text, plan_code text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2))';

    RETURN QUERY
    SELECT 'customer.fct_customer_business_monthly_status'::text::text,
           CASE WHEN s.company_id IS NULL THEN 'missing'
                WHEN n.company_id IS NULL THEN 'unexpected'
                ELSE 'different' END,
           pg_catalog.jsonb_build_object('snapshot_month', v_month_end, 'company_id'::text, coalesce(s.company_id, n.company_id), 'product_line_code'::text, coalesce(s.product_line_code, n.product_line_code)),
           CASE WHEN s.company_id IS NOT NULL
                THEN pg_catalog.jsonb_build_object('product_line_name'::text, s.product_line_name, 'is_winning_this_year'::text, s.is_winning_this_year, 'is_churned_this_year'::text, s.is_churned_this_year, 'is_new'::text, s.is_new, 'is_new_arrival'::text, s.is_new_arrival, 'is_churned'::text, s.is_churned, 'is_strategic'::text, s.is_strategic, 'is_existing'::text, s.is_existing, 'aum_balance'::text, s.aum_balance, 'plan_count'::text, s.plan_count) END,
           CASE WHEN n.company_id IS NOT NULL
                THEN pg_catalog.jsonb_build_object('product_line_name'::text, n.product_line_name, 'is_winning_this_year'::text, n.is_winning_this_year, 'is_churned_this_year'::text, n.is_churned_this_year, 'is_new'::text, n.is_new, 'is_new_arrival'::text, n.is_new_arrival, 'is_churned'::text, n.is_churned, 'is_strategic'::text, n.is_strategic, 'is_existing'::text, n.is_existing, 'aum_balance'::text, n.aum_balance, 'plan_count'::text, n.plan_count) END
      FROM (SELECT t.company_id::text, t.product_line_code::text, t.product_line_name, t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_new_arrival, t.is_churned, t.is_strategic, t.is_existing, t.aum_balance, t.plan_count
              FROM customer.fct_customer_business_monthly_status t
             WHERE t.snapshot_month = v_month_end) s
      FULL JOIN pg_temp.cmdm_snap_business_new n
        ON n.company_id = s.company_id AND n.product_line_code = s.product_line_code
     WHERE s.company_id IS NULL OR n.company_id IS NULL
        OR (s.product_line_name, s.is_winning_this_year, s.is_churned_this_year, s.is_new, s.is_new_arrival, s.is_churned, s.is_strategic, s.is_existing, s.aum_balance, s.plan_count)
           IS DISTINCT FROM (n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance, n.plan_count);

    RETURN QUERY
    SELECT 'customer.fct_customer_plan_monthly_status'::text::text,
           CASE WHEN s.company_id IS NULL THEN 'missing'
                WHEN n.company_id IS NULL THEN 'unexpected'
                ELSE 'different' END,
           pg_catalog.jsonb_build_object('snapshot_month', v_month_end, 'company_id'::text, coalesce(s.company_id, n.company_id), 'plan_code'::text, coalesce(s.plan_code, n.plan_code), 'product_line_code'::text, coalesce(s.product_line_code, n.product_line_code)),
           CASE WHEN s.company_id IS NOT NULL
                THEN pg_catalog.jsonb_build_object('product_line_name'::text, s.product_line_name, 'is_winning_this_year'::text, s.is_winning_this_year, 'is_churned_this_year'::text, s.is_churned_this_year, 'is_new'::text, s.is_new, 'is_new_arrival'::text, s.is_new_arrival, 'is_churned'::text, s.is_churned, 'is_strategic'::text, s.is_strategic, 'is_existing'::text, s.is_existing, 'aum_balance'::text, s.aum_balance) END,
           CASE WHEN n.company_id IS NOT NULL
                THEN pg_catalog.jsonb_build_object('product_line_name'::text, n.product_line_name, 'is_winning_this_year'::text, n.is_winning_this_year, 'is_churned_this_year'::text, n.is_churned_this_year, 'is_new'::text, n.is_new, 'is_new_arrival'::text, n.is_new_arrival, 'is_churned'::text, n.is_churned, 'is_strategic'::text, n.is_strategic, 'is_existing'::text, n.is_existing, 'aum_balance'::text, n.aum_balance) END
      FROM (SELECT t.company_id::text, t.plan_code::text, t.product_line_code::text, t.product_line_name, t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_new_arrival, t.is_churned, t.is_strategic, t.is_existing, t.aum_balance
              FROM customer.fct_customer_plan_monthly_status t
             WHERE t.snapshot_month = v_month_end) s
      FULL JOIN pg_temp.cmdm_snap_plan_new n
        ON n.company_id = s.company_id AND n.plan_code = s.plan_code AND n.product_line_code = s.product_line_code
     WHERE s.company_id IS NULL OR n.company_id IS NULL
        OR (s.product_line_name, s.is_winning_this_year, s.is_churned_this_year, s.is_new, s.is_new_arrival, s.is_churned, s.is_strategic, s.is_existing, s.aum_balance)
           IS DISTINCT FROM (n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance);
END
$fn$;

COMMENT ON FUNCTION customer.check_monthly_snapshot(date) IS
    'Differences between the stored snapshot rows of one month and the rows as they must be (cmdm check). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.compute_annual_statuses.sql.j2",
        "kind": "function",
        "identity": "customer.compute_annual_statuses(integer[])",
        "triggers": [],
        "sha256": "343ec2245ef52c6d3a60a84f4d04c4aafb9d63ff43e2a196928623856a953f70",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.compute_annual_statuses.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.compute_annual_statuses(p_years integer[])
    RETURNS void
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: decide the annual statuses of each year of p_years from its reference month's
 * facts alone (DESIGN §4), into scratch tables of this transaction; nothing else is written:
 *   - pg_temp.cmdm_annual_reference: (status_year, reference_month) per year with a loaded month;
 *   - pg_temp.cmdm_annual_company: per year and key of grain company with valid facts there;
 *   - pg_temp.cmdm_annual_product_line: per year and key of grain product_line with valid facts there;
 * Reference month of a year: the last loaded month before its January 1st, else its first
 * loaded month. Each key row holds what the decision read (evidence) and the statuses
 * (is_strategic, is_existing).
 *
 * Why apart from the writer: customer.decide_annual_statuses stores these rows and
 * customer.check_annual_statuses compares them with the stored ones; both read one
 * computation. A year appears once whatever p_years holds, so no reference month can be
 * read twice.
 *
 * Cost: per year, two index probes for the reference month and one scan of its facts
 * (index on "月度").
 */
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_reference (status_year integer, reference_month date)';
    PERFORM cmdm.scratch_table('cmdm_annual_reference', 'status_year integer, reference_month date');
    INSERT INTO pg_temp.cmdm_annual_reference (status_year, reference_month)
    SELECT r.status_year, (r.month_start + INTERVAL '1 month - 1 day')::date
      FROM (SELECT y.status_year,
                   coalesce(
                       (SELECT pg_catalog.date_trunc('month', f."月度")::date FROM business."规模明细" f
                         WHERE f."月度" < pg_catalog.make_date(y.status_year, 1, 1)
                         ORDER BY f."月度" DESC LIMIT 1),
                       (SELECT pg_catalog.date_trunc('month', f."月度")::date FROM business."规模明细" f
                         WHERE f."月度" >= pg_catalog.make_date(y.status_year, 1, 1)
                           AND f."月度" < pg_catalog.make_date(y.status_year + 1, 1, 1)
                         ORDER BY f."月度" LIMIT 1)) AS month_start
              FROM (SELECT DISTINCT y AS status_year FROM unnest(p_years) y WHERE y IS NOT NULL) y) r
     WHERE r.month_start IS NOT NULL
       -- a year with no loaded month of its own has no versions, hence nothing to decide
       AND EXISTS (SELECT FROM business."规模明细" f
                    WHERE f."月度" >= pg_catalog.make_date(r.status_year, 1, 1)
                      AND f."月度" < pg_catalog.make_date(r.status_year + 1, 1, 1));
    -- A scratch table has no statistics: without them the planner takes it for ~2,000 years
    -- and plans every statement below for a hundred million reference rows.
    ANALYZE pg_temp.cmdm_annual_reference;

    -- Grain company: the reference month's valid facts per key, each top_n's rank per
    -- group, then the statuses over that row (ref_company).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_company (status_year integer, company_id text, evidence jsonb, is_strategic boolean)';
    PERFORM cmdm.scratch_table('cmdm_annual_company', 'status_year integer, company_id text, evidence jsonb, is_strategic boolean');
    INSERT INTO pg_temp.cmdm_annual_company (status_year, company_id, evidence, is_strategic)
    WITH reference_fact AS MATERIALIZED (
        SELECT r.status_year, f.company_id, f."计划代码", f."产品线代码", f."期末资产规模", f."机构代码"
          FROM pg_temp.cmdm_annual_reference r
         CROSS JOIN LATERAL (
               SELECT f.* FROM business."规模明细" f
                WHERE f."月度" >= pg_catalog.date_trunc('month', r.reference_month)::date
                  AND f."月度" <= r.reference_month
               ) f
          JOIN mapping."产品线" pl ON pl."产品线代码" = f."产品线代码"
          JOIN customer."年金客户" co ON co.company_id = f.company_id
         WHERE f."计划代码" IS NOT NULL
           AND NOT (pg_catalog.btrim(f.company_id, E' \\t\\r\\n') = '' OR pg_catalog.btrim(f."计划代码", E' \\t\\r\\n') = ''
                    OR pg_catalog.btrim(f."产品线代码", E' \\t\\r\\n') = '')
    ), top_1 AS (
        -- "top_10_by_机构代码": rank by SUM("期末资产规模") within each "机构代码"; ties share a rank,
        -- so all keys tied at place 10 are in
        SELECT ranked.status_year, ranked.company_id,
               bool_or(ranked.position <= 10) AS hit,
               pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'group', ranked.group_value, 'rank', ranked.position, 'of', ranked.group_size)
                   ORDER BY ranked.group_value) AS ranks
          FROM (SELECT f.status_year, f.company_id::text AS company_id,
                       f."机构代码"::text AS group_value,
                       -- a key whose values are all NULL holds 0, as everywhere else
                       rank() OVER (PARTITION BY f.status_year, f."机构代码"
                                    ORDER BY coalesce(sum(f."期末资产规模"), 0) DESC) AS position,
                       count(*) OVER (PARTITION BY f.status_year, f."机构代码") AS group_size
                  FROM reference_fact f
                 -- rows without a group (a NULL "机构代码") rank in none
                 WHERE f."机构代码" IS NOT NULL
                 GROUP BY f.status_year, f.company_id, f."机构代码") ranked
         GROUP BY ranked.status_year, ranked.company_id
    )
    SELECT ref_company.status_year, ref_company.company_id,
           pg_catalog.jsonb_build_object('sum_期末资产规模', ref_company."sum_期末资产规模", 'top_10_by_机构代码', pg_catalog.jsonb_build_object('field', '期末资产规模', 'n', 10, 'within', '机构代码', 'ranks', top_1.ranks)),
           -- is_strategic
           (coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric OR coalesce(ref_company."top_10_by_机构代码", false))
      FROM (SELECT a.*, coalesce(top_1.hit, false) AS "top_10_by_机构代码"
              FROM (SELECT f.status_year, f.company_id::text AS company_id,
                           sum(f."期末资产规模") AS "sum_期末资产规模"
                      FROM reference_fact f
                     GROUP BY f.status_year, f.company_id) a
              LEFT JOIN top_1 ON top_1.status_year = a.status_year AND top_1.company_id = a.company_id
           ) ref_company
      LEFT JOIN top_1 ON top_1.status_year = ref_company.status_year AND top_1.company_id = ref_company.company_id;

    -- Grain product_line: the reference month's valid facts per key, each top_n's rank per
    -- group, then the statuses over that row (ref_product_line).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_product_line (status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_annual_product_line', 'status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean');
    INSERT INTO pg_temp.cmdm_annual_product_line (status_year, company_id, product_line_code, evidence, is_existing)
    WITH reference_fact AS MATERIALIZED (
        SELECT r.status_year, f.company_id, f."计划代码", f."产品线代码", f."期末资产规模", f."机构代码"
          FROM pg_temp.cmdm_annual_reference r
         CROSS JOIN LATERAL (
               SELECT f.* FROM business."规模明细" f
                WHERE f."月度" >= pg_catalog.date_trunc('month', r.reference_month)::date
                  AND f."月度" <= r.reference_month
               ) f
          JOIN mapping."产品线" pl ON pl."产品线代码" = f."产品线代码"
          JOIN customer."年金客户" co ON co.company_id = f.company_id
         WHERE f."计划代码" IS NOT NULL
           AND NOT (pg_catalog.btrim(f.company_id, E' \\t\\r\\n') = '' OR pg_catalog.btrim(f."计划代码", E' \\t\\r\\n') = ''
                    OR pg_catalog.btrim(f."产品线代码", E' \\t\\r\\n') = '')
    )
    SELECT ref_product_line.status_year, ref_product_line.company_id, ref_product_line.product_line_code,
           pg_catalog.jsonb_build_object('sum_期末资产规模', ref_product_line."sum_期末资产规模"),
           -- is_existing
           coalesce(ref_product_line."sum_期末资产规模", 0) > 0::numeric
      FROM (SELECT a.*
              FROM (SELECT f.status_year, f.company_id::text AS company_id, f."产品线代码"::text AS product_line_code,
                           sum(f."期末资产规模") AS "sum_期末资产规模"
                      FROM reference_fact f
                     GROUP BY f.status_year, f.company_id, f."产品线代码") a
           ) ref_product_line;
END
$fn$;

COMMENT ON FUNCTION customer.compute_annual_statuses(integer[]) IS
    'Annual statuses of the given years decided from their reference months into pg_temp scratch tables (DESIGN §4). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.compute_monthly_snapshot.sql.j2",
        "kind": "function",
        "identity": "customer.compute_monthly_snapshot(date)",
        "triggers": [],
        "sha256": "46ede63e97e86767959c5d5f100812ff4366692ba5fa47414e9bac862f35f623",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.compute_monthly_snapshot.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.compute_monthly_snapshot(p_month date)
    RETURNS void
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
    SET default_statistics_target = 10
AS $fn$
/*
 * What: the rows p_month's month must have in customer.fct_customer_business_monthly_status
 * (per company and product line) and customer.fct_customer_plan_monthly_status (per
 * contract key), as DESIGN §4 defines them, into pg_temp.cmdm_snap_business_new and
 * pg_temp.cmdm_snap_plan_new, and the keys left out in pg_temp.cmdm_snap_overflow;
 * nothing else is written (docs/snapshots.md):
 *   - population: the contract keys with a version covering the month-end (and their
 *     (company, product line) pairs); none when the month has no facts;
 *   - aum_balance: SUM of the month's fact rows of the key (pair); plan_count: its keys;
 *     a pair whose plan or total AUM does not fit numeric(20, 2) is left out, its keys in
 *     pg_temp.cmdm_snap_overflow (the refresh rejects their rows as amount_overflow);
 *   - annual statuses (is_strategic, is_existing): the covering versions' values (bool_or per pair);
 *   - monthly statuses: each evaluated at the key of the row it is written on, or at the
 *     grain its rule pins (bool_or over the row's keys for a finer pinned grain), from the
 *     month's facts, the previous loaded month's keys (disappeared), the history before
 *     the month (first_appearance), events up to the month-end.
 *
 * Why apart from the writer: customer.refresh_monthly_snapshot writes these rows and
 * customer.check_monthly_snapshot compares them with the stored ones; both read one
 * computation. As of the month: the population and annual statuses come from the contract
 * history (a pure function of the facts), events count up to the month-end, presence
 * compares with the loaded months before it. Nothing reads now() or later months.
 *
 * Cost: the month's facts and the previous loaded month's (index on "月度"), the
 * versions covering the month (GiST on the validity range), an index probe into the
 * history only for keys whose covering version starts this month, an events probe per
 * key. Never the whole history.
 */
DECLARE
    v_month_start date;
    v_next_start date;
    v_month_end date;
    v_prev_start date;          -- first day of the last loaded month before this one
    v_loaded boolean;
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_month < DATE '1900-01-01' OR p_month >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_month),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_month_start := pg_catalog.date_trunc('month', p_month)::date;
    v_next_start := (v_month_start + INTERVAL '1 month')::date;
    v_month_end := v_next_start - 1;

    -- The nearest fact month below a bound: ORDER BY … LIMIT 1 is one index probe whatever
    -- the statistics say (min()/max() may be planned as an aggregate over a month's rows).
    v_loaded := coalesce((SELECT f."月度" >= v_month_start FROM business."规模明细" f
                           WHERE f."月度" < v_next_start ORDER BY f."月度" DESC LIMIT 1), false);
    v_prev_start := (SELECT pg_catalog.date_trunc('month', f."月度")::date FROM business."规模明细" f
                      WHERE f."月度" < v_month_start ORDER BY f."月度" DESC LIMIT 1);

    -- 1. One row per contract key with a version covering the month: its annual statuses,
    --    its facts of the month aggregated (the aggregates every status reads), whether it
    --    had facts this month, in the previous loaded month, and in any month before (a
    --    version starting earlier: the covering one, or one ending at this month-end, found
    --    by the same index scan; probed in the history only when neither exists).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_plan (company_id text, plan_code text, product_line_code text, valid_from date, _present boolean, _present_before boolean, _seen_before boolean, is_strategic boolean, is_existing boolean, "sum_期末资产规模" numeric)';
    PERFORM cmdm.scratch_table('cmdm_snap_plan', 'company_id text, plan_code text, product_line_code text, valid_from date, _present boolean, _present_before boolean, _seen_before boolean, is_strategic boolean, is_existing boolean, "sum_期末资产规模" numeric');
    IF v_loaded THEN
        INSERT INTO pg_temp.cmdm_snap_plan
               (company_id, plan_code, product_line_code, valid_from, _present, _present_before,
                _seen_before, is_strategic, is_existing, "sum_期末资产规模")
        WITH v AS MATERIALIZED (
            -- the versions covering the month-end and those ending at it
            SELECT c.company_id::text AS company_id, c.plan_code::text AS plan_code,
                   c.product_line_code::text AS product_line_code, c.valid_from, c.valid_to, c.is_strategic, c.is_existing
              FROM customer.customer_plan_contract c
             WHERE pg_catalog.daterange(c.valid_from, c.valid_to, '[]') @> v_month_end)
        SELECT c.company_id, c.plan_code, c.product_line_code, c.valid_from,
               m.company_id IS NOT NULL, p.company_id IS NOT NULL,
               c.valid_from < v_month_end OR e.company_id IS NOT NULL,
               c.is_strategic,
               c.is_existing,
               m."sum_期末资产规模"
          FROM (SELECT * FROM v WHERE v.valid_to > v_month_end) c
          -- a version ending here started earlier (every January: the year's new versions)
          LEFT JOIN (SELECT * FROM v WHERE v.valid_to = v_month_end) e
                 ON e.company_id = c.company_id AND e.plan_code = c.plan_code AND e.product_line_code = c.product_line_code
          LEFT JOIN (SELECT f.company_id::text AS company_id, f."计划代码"::text AS plan_code,
                            f."产品线代码"::text AS product_line_code,
                            sum(f."期末资产规模") AS "sum_期末资产规模"
                       FROM business."规模明细" f
                      WHERE f."月度" >= v_month_start AND f."月度" < v_next_start
                      GROUP BY 1, 2, 3) m
                 ON m.company_id = c.company_id AND m.plan_code = c.plan_code AND m.product_line_code = c.product_line_code
          LEFT JOIN (SELECT DISTINCT f.company_id::text AS company_id, f."计划代码"::text AS plan_code,
                            f."产品线代码"::text AS product_line_code
                       FROM business."规模明细" f
                      WHERE f."月度" >= v_prev_start
                        AND f."月度" < (v_prev_start + INTERVAL '1 month')::date) p
                 ON p.company_id = c.company_id AND p.plan_code = c.plan_code AND p.product_line_code = c.product_line_code;
    END IF;
    -- A key whose covering version starts this month, with no version ending here, may
    -- still have had facts before (under close, an earlier version may have ended before a
    -- gap): one index probe each, for these few keys only (new keys, mostly). (A scalar subquery, not EXISTS, so it
    -- stays a probe rather than becoming a hash of the whole history.)
    UPDATE pg_temp.cmdm_snap_plan k
       SET _seen_before = true
     WHERE NOT k._seen_before
       AND v_prev_start IS NOT NULL
       AND (SELECT true FROM customer.customer_plan_contract e
             WHERE e.company_id = k.company_id AND e.plan_code = k.plan_code
               AND e.product_line_code = k.product_line_code AND e.valid_from < v_month_end
             LIMIT 1);
    -- An AUM that aum_balance (numeric(20, 2): below 10^18 once rounded to cents) cannot
    -- hold, at a plan or summed over a (company, product line): that pair is left out of
    -- the month (its business row and all its plan rows), into pg_temp.cmdm_snap_overflow
    -- (its keys), so that the rest of the month is written; the refresh records its fact
    -- rows as amount_overflow rejects. One aggregate over the keys first: when the sum of
    -- every |AUM| fits, no plan and no pair can overflow (the case of every real month).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_overflow (company_id text, plan_code text, product_line_code text)';
    PERFORM cmdm.scratch_table('cmdm_snap_overflow', 'company_id text, plan_code text, product_line_code text');
    IF (SELECT pg_catalog.abs(pg_catalog.round(coalesce(sum(pg_catalog.abs(k."sum_期末资产规模")), 0), 2)) >= 1e18
          FROM pg_temp.cmdm_snap_plan k) THEN
        INSERT INTO pg_temp.cmdm_snap_overflow (company_id, plan_code, product_line_code)
        SELECT k.company_id, k.plan_code, k.product_line_code
          FROM pg_temp.cmdm_snap_plan k
          JOIN (SELECT p.company_id, p.product_line_code
                  FROM pg_temp.cmdm_snap_plan p
                 GROUP BY p.company_id, p.product_line_code
                HAVING bool_or(pg_catalog.abs(pg_catalog.round(coalesce(p."sum_期末资产规模", 0), 2)) >= 1e18)
                    OR pg_catalog.abs(pg_catalog.round(coalesce(sum(p."sum_期末资产规模"), 0), 2)) >= 1e18) o
            ON o.company_id = k.company_id AND o.product_line_code = k.product_line_code;
        DELETE FROM pg_temp.cmdm_snap_plan k
         USING pg_temp.cmdm_snap_overflow o
         WHERE o.company_id = k.company_id AND o.plan_code = k.plan_code AND o.product_line_code = k.product_line_code;
    END IF;
    -- Statistics for the joins below (a scratch table has none until analyzed).
    ANALYZE pg_temp.cmdm_snap_plan;

    -- The same rows rolled up to grain product_line; seen before: a key of it was (probed in
    -- the history when none covering the month was: under close, a key of it may have
    -- ended earlier).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_product_line (company_id text, product_line_code text, plan_count bigint, _present boolean, _present_before boolean, _seen_before boolean, is_strategic boolean, is_existing boolean, "sum_期末资产规模" numeric)';
    PERFORM cmdm.scratch_table('cmdm_snap_product_line', 'company_id text, product_line_code text, plan_count bigint, _present boolean, _present_before boolean, _seen_before boolean, is_strategic boolean, is_existing boolean, "sum_期末资产规模" numeric');
    INSERT INTO pg_temp.cmdm_snap_product_line
           (company_id, product_line_code, plan_count, _present, _present_before, _seen_before, is_strategic, is_existing, "sum_期末资产规模")
    SELECT r.company_id, r.product_line_code, r.plan_count, r._present, r._present_before, r._seen_before, r.is_strategic, r.is_existing, r."sum_期末资产规模"
      FROM (SELECT k.company_id, k.product_line_code, count(*) AS plan_count,
                   bool_or(k._present) AS _present, bool_or(k._present_before) AS _present_before,
                   bool_or(k._seen_before) AS _seen_before,
                   bool_or(k.is_strategic) AS is_strategic,
                   bool_or(k.is_existing) AS is_existing,
                   sum(k."sum_期末资产规模") AS "sum_期末资产规模"
              FROM pg_temp.cmdm_snap_plan k
             GROUP BY k.company_id, k.product_line_code) r;
    UPDATE pg_temp.cmdm_snap_product_line r
       SET _seen_before = true
     WHERE NOT r._seen_before
       AND v_prev_start IS NOT NULL
       AND (SELECT true FROM customer.customer_plan_contract e
             WHERE e.company_id = r.company_id AND e.product_line_code = r.product_line_code AND e.valid_from < v_month_end
             LIMIT 1);
    ANALYZE pg_temp.cmdm_snap_product_line;

    -- 2. The month's rows as they must be, each monthly status (rules/) evaluated at its
    --    grain as the rows are produced: on the row itself at the row's grain, over the
    --    rows of a coarser grain joined by its key, any of the plan rows of a pair for the
    --    business table. (Not materialized: a status is read by one statement of each table.)
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_business_new (company_id text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2), plan_count integer)';
    PERFORM cmdm.scratch_table('cmdm_snap_business_new', 'company_id text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2), plan_count integer');
    INSERT INTO pg_temp.cmdm_snap_business_new
           (company_id, product_line_code, product_line_name, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned, is_strategic, is_existing, aum_balance, plan_count)
    SELECT r.company_id, r.product_line_code, pl."产品线",
           coalesce(s_product_line.is_winning_this_year, false),
           coalesce(s_product_line.is_churned_this_year, false),
           coalesce(s_product_line.is_new, false),
           coalesce(s_product_line.is_new_arrival, false),
           coalesce(s_product_line.is_churned, false),
           coalesce(r.is_strategic, false),
           coalesce(r.is_existing, false),
           coalesce(r."sum_期末资产规模", 0), r.plan_count
      FROM pg_temp.cmdm_snap_product_line r
      JOIN mapping."产品线" pl ON pl."产品线代码" = r.product_line_code
      LEFT JOIN (SELECT r.company_id, r.product_line_code,
                        -- is_new_arrival
                        bool_or((r._present AND NOT r._seen_before)) AS is_new_arrival,
                        -- is_churned
                        bool_or(((r._present_before AND NOT r._present) OR coalesce(r."sum_期末资产规模", 0) <= 0::numeric)) AS is_churned
                   FROM pg_temp.cmdm_snap_plan r
                  GROUP BY r.company_id, r.product_line_code) s_plan
             ON s_plan.company_id = r.company_id AND s_plan.product_line_code = r.product_line_code
     CROSS JOIN LATERAL (
           SELECT
                  -- is_winning_this_year
                  EXISTS (SELECT FROM customer."当年中标" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end) AS is_winning_this_year,
                  -- is_churned_this_year
                  EXISTS (SELECT FROM customer."当年流失" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end) AS is_churned_this_year,
                  -- is_new
                  ((EXISTS (SELECT FROM customer."当年中标" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end)) AND NOT (coalesce(r.is_existing, false))) AS is_new,
                  -- is_new_arrival
                  (r._present AND NOT r._seen_before) AS is_new_arrival,
                  -- is_churned
                  ((r._present_before AND NOT r._present) OR coalesce(r."sum_期末资产规模", 0) <= 0::numeric) AS is_churned
           ) s_product_line
    ;

    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_plan_new (company_id text, plan_code text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2))';
    PERFORM cmdm.scratch_table('cmdm_snap_plan_new', 'company_id text, plan_code text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2)');
    INSERT INTO pg_temp.cmdm_snap_plan_new
           (company_id, plan_code, product_line_code, product_line_name, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned, is_strategic, is_existing, aum_balance)
    SELECT r.company_id, r.plan_code, r.product_line_code, pl."产品线",
           coalesce(s_product_line.is_winning_this_year, false),
           coalesce(s_product_line.is_churned_this_year, false),
           coalesce(s_product_line.is_new, false),
           coalesce(s_plan.is_new_arrival, false),
           coalesce(s_plan.is_churned, false),
           coalesce(r.is_strategic, false),
           coalesce(r.is_existing, false),
           coalesce(r."sum_期末资产规模", 0)
      FROM pg_temp.cmdm_snap_plan r
      JOIN mapping."产品线" pl ON pl."产品线代码" = r.product_line_code
     CROSS JOIN LATERAL (
           SELECT
                  -- is_new_arrival
                  (r._present AND NOT r._seen_before) AS is_new_arrival,
                  -- is_churned
                  ((r._present_before AND NOT r._present) OR coalesce(r."sum_期末资产规模", 0) <= 0::numeric) AS is_churned
           ) s_plan
      LEFT JOIN (SELECT r.company_id, r.product_line_code,
                        -- is_winning_this_year
                        EXISTS (SELECT FROM customer."当年中标" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end) AS is_winning_this_year,
                        -- is_churned_this_year
                        EXISTS (SELECT FROM customer."当年流失" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end) AS is_churned_this_year,
                        -- is_new
                        ((EXISTS (SELECT FROM customer."当年中标" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end)) AND NOT (coalesce(r.is_existing, false))) AS is_new,
                        -- is_new_arrival
                        (r._present AND NOT r._seen_before) AS is_new_arrival,
                        -- is_churned
                        ((r._present_before AND NOT r._present) OR coalesce(r."sum_期末资产规模", 0) <= 0::numeric) AS is_churned
                   FROM pg_temp.cmdm_snap_product_line r) s_product_line
             ON s_product_line.company_id = r.company_id AND s_product_line.product_line_code = r.product_line_code
    ;

END
$fn$;

COMMENT ON FUNCTION customer.compute_monthly_snapshot(date) IS
    'The rows of one month of both snapshot tables as they must be, into pg_temp scratch tables (docs/snapshots.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.contract_dependent_months.sql.j2",
        "kind": "function",
        "identity": "customer.contract_dependent_months(date)",
        "triggers": [],
        "sha256": "ce53cfef91f00dd7037356118b72999f8cc4a4391ee57ec29a42ab4640e63c86",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.contract_dependent_months.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.contract_dependent_months(p_month date)
    RETURNS TABLE (month date, reason text)
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Which months' derived data (contract states, snapshots) depend on the facts of p_month,
 * evaluated on the facts as they are now (call it after the change; it is the same before
 * or after for a month that was added, restated or deleted):
 *
 *   - p_month itself;
 *   - the next loaded month: its versions may split or merge with p_month's, and presence
 *     statuses (disappeared, first_appearance) compare it with p_month;
 *   - every loaded month of a year whose reference month for annual statuses is, or was,
 *     p_month: the year of the next loaded month when that is a later year, and p_month's
 *     own year when no month before it is loaded.
 *
 * customer.sync_contract_status(p_month) repairs all contract versions itself; this list
 * is for the snapshot refresh. Cost: a few index probes on "月度".
 */
DECLARE
    v_month_end date;
    v_prev date;
    v_next date;
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_month < DATE '1900-01-01' OR p_month >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_month),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_month_end := (pg_catalog.date_trunc('month', p_month) + INTERVAL '1 month' - INTERVAL '1 day')::date;
    SELECT max(l) INTO v_prev
      FROM customer.loaded_months(NULL, (v_month_end - INTERVAL '1 month')::date) l;
    SELECT min(l) INTO v_next
      FROM customer.loaded_months((v_month_end + 1), NULL) l;

    RETURN QUERY
    SELECT d.month, d.reason
      FROM (
        SELECT v_month_end AS month, 'the changed month' AS reason
        UNION ALL
        SELECT v_next, 'the next loaded month'
         WHERE v_next IS NOT NULL
        UNION ALL
        SELECT l, pg_catalog.format('annual statuses of %s use %s as reference month',
                                    extract(year FROM v_next), pg_catalog.to_char(v_month_end, 'YYYY-MM'))
          FROM customer.loaded_months(pg_catalog.make_date(extract(year FROM v_next)::int, 1, 1),
                                      pg_catalog.make_date(extract(year FROM v_next)::int, 12, 31)) l
         WHERE v_next IS NOT NULL
           AND extract(year FROM v_next) > extract(year FROM v_month_end)
        UNION ALL
        SELECT l, pg_catalog.format('annual statuses of %s use the first loaded month of the year',
                                    extract(year FROM v_month_end))
          FROM customer.loaded_months(pg_catalog.make_date(extract(year FROM v_month_end)::int, 1, 1),
                                      pg_catalog.make_date(extract(year FROM v_month_end)::int, 12, 31)) l
         WHERE v_prev IS NULL
      ) d
     ORDER BY d.month, d.reason;
END
$fn$;

COMMENT ON FUNCTION customer.contract_dependent_months(date) IS
    'Months whose derived data depends on the facts of a month (the month, the next loaded month, years whose reference month it is). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.decide_annual_statuses.sql.j2",
        "kind": "function",
        "identity": "customer.decide_annual_statuses(integer[])",
        "triggers": [],
        "sha256": "f97660e6ec55407f91bf73fb58253b1f539f6f5378d8fe91f8010a6853c18dc8",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.decide_annual_statuses.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.decide_annual_statuses(p_years integer[])
    RETURNS TABLE (status_year integer, reference_month date, rewritten boolean, statuses_changed boolean, versions_reflagged bigint)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: make the stored decision of each year of p_years (customer.annual_reference and
 * the customer.annual_*_status tables) what its reference month's facts decide now
 * (customer.compute_annual_statuses), and give the contract versions of a year whose
 * statuses changed their new annual flags. Returns one row per year of p_years that has,
 * or had, a decision: whether it was rewritten, whether its statuses changed, and how many
 * versions took new flags.
 *
 * Why in place: a version never spans two years and every version of a key in a year
 * carries the same annual flags, so re-flagging a year changes no version boundary.
 * A key without a row had no facts at the reference month: its flags are the rule's value
 * over no facts. A year left without any loaded month loses its decision.
 *
 * Called by customer.sync_contract_status for the years whose reference month the synced
 * month is, was or becomes, and by `cmdm rebuild` for every year of its range (so a rule
 * change reaches the years it touches). Runs under the sync's lock (the hook lock
 * contract_sync, cmdm.take_hook_lock).
 */
DECLARE
    v_rewrite integer[];        -- years whose stored decision differs from the new one
    v_reflag integer[];         -- of those, years whose statuses (not only evidence) differ
BEGIN
    PERFORM cmdm.take_hook_lock('contract_sync');
    PERFORM customer.compute_annual_statuses(p_years);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_reference (status_year integer, reference_month date)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_company (status_year integer, company_id text, evidence jsonb, is_strategic boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_product_line (status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean)';

    -- Which years differ, and how: the reference month, the rows with their evidence, and
    -- the statuses alone.
    v_rewrite := ARRAY(
        SELECT y.y FROM (SELECT DISTINCT y FROM unnest(p_years) y WHERE y IS NOT NULL) y
         WHERE (SELECT r.reference_month FROM customer.annual_reference r WHERE r.status_year = y.y)
               IS DISTINCT FROM
               (SELECT n.reference_month FROM pg_temp.cmdm_annual_reference n WHERE n.status_year = y.y)
            OR EXISTS (SELECT company_id, evidence, is_strategic FROM pg_temp.cmdm_annual_company n WHERE n.status_year = y.y
                       EXCEPT
                       SELECT company_id::text, evidence, is_strategic FROM customer.annual_company_status a WHERE a.status_year = y.y)
            OR EXISTS (SELECT company_id::text, evidence, is_strategic FROM customer.annual_company_status a WHERE a.status_year = y.y
                       EXCEPT
                       SELECT company_id, evidence, is_strategic FROM pg_temp.cmdm_annual_company n WHERE n.status_year = y.y)
            OR EXISTS (SELECT company_id, product_line_code, evidence, is_existing FROM pg_temp.cmdm_annual_product_line n WHERE n.status_year = y.y
                       EXCEPT
                       SELECT company_id::text, product_line_code::text, evidence, is_existing FROM customer.annual_product_line_status a WHERE a.status_year = y.y)
            OR EXISTS (SELECT company_id::text, product_line_code::text, evidence, is_existing FROM customer.annual_product_line_status a WHERE a.status_year = y.y
                       EXCEPT
                       SELECT company_id, product_line_code, evidence, is_existing FROM pg_temp.cmdm_annual_product_line n WHERE n.status_year = y.y)
         ORDER BY 1);
    IF cardinality(v_rewrite) = 0 THEN
        RETURN QUERY SELECT n.status_year, n.reference_month, false, false, 0::bigint
                       FROM pg_temp.cmdm_annual_reference n ORDER BY 1;
        RETURN;
    END IF;
    v_reflag := ARRAY(
        SELECT y FROM unnest(v_rewrite) y
         WHERE NOT EXISTS (SELECT FROM customer.annual_reference r WHERE r.status_year = y)
            OR EXISTS (SELECT company_id, is_strategic FROM pg_temp.cmdm_annual_company n WHERE n.status_year = y
                       EXCEPT
                       SELECT company_id::text, is_strategic FROM customer.annual_company_status a WHERE a.status_year = y)
            OR EXISTS (SELECT company_id::text, is_strategic FROM customer.annual_company_status a WHERE a.status_year = y
                       EXCEPT
                       SELECT company_id, is_strategic FROM pg_temp.cmdm_annual_company n WHERE n.status_year = y)
            OR EXISTS (SELECT company_id, product_line_code, is_existing FROM pg_temp.cmdm_annual_product_line n WHERE n.status_year = y
                       EXCEPT
                       SELECT company_id::text, product_line_code::text, is_existing FROM customer.annual_product_line_status a WHERE a.status_year = y)
            OR EXISTS (SELECT company_id::text, product_line_code::text, is_existing FROM customer.annual_product_line_status a WHERE a.status_year = y
                       EXCEPT
                       SELECT company_id, product_line_code, is_existing FROM pg_temp.cmdm_annual_product_line n WHERE n.status_year = y)
         ORDER BY 1);

    -- Rewrite those years whole.
    RETURN QUERY
    SELECT r.status_year, r.reference_month, true, r.status_year = ANY (v_reflag), 0::bigint
      FROM customer.annual_reference r
     WHERE r.status_year = ANY (v_rewrite)
       AND NOT EXISTS (SELECT FROM pg_temp.cmdm_annual_reference n WHERE n.status_year = r.status_year);
    -- (every grain's table: a rules change may have left rows of a grain no status has now)
    DELETE FROM customer.annual_company_status a WHERE a.status_year = ANY (v_rewrite);
    DELETE FROM customer.annual_product_line_status a WHERE a.status_year = ANY (v_rewrite);
    DELETE FROM customer.annual_plan_status a WHERE a.status_year = ANY (v_rewrite);
    DELETE FROM customer.annual_reference r WHERE r.status_year = ANY (v_rewrite);
    INSERT INTO customer.annual_reference (status_year, reference_month)
    SELECT n.status_year, n.reference_month
      FROM pg_temp.cmdm_annual_reference n
     WHERE n.status_year = ANY (v_rewrite);
    INSERT INTO customer.annual_company_status (status_year, company_id, evidence, is_strategic)
    SELECT n.status_year, n.company_id, n.evidence, n.is_strategic
      FROM pg_temp.cmdm_annual_company n
     WHERE n.status_year = ANY (v_rewrite);
    INSERT INTO customer.annual_product_line_status (status_year, company_id, product_line_code, evidence, is_existing)
    SELECT n.status_year, n.company_id, n.product_line_code, n.evidence, n.is_existing
      FROM pg_temp.cmdm_annual_product_line n
     WHERE n.status_year = ANY (v_rewrite);
    -- The versions of the re-flagged years take their flags from the decision; each year
    -- is reported with how many of its versions changed.
    RETURN QUERY
    WITH reflagged AS (
        UPDATE customer.customer_plan_contract c
           SET is_strategic = x.is_strategic,
is_existing = x.is_existing
          FROM (SELECT c2.contract_id,
                       coalesce(a_company.is_strategic,
                                (SELECT (coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric OR coalesce(ref_company."top_10_by_机构代码", false)) FROM (SELECT NULL::numeric AS "sum_期末资产规模", NULL::boolean AS "top_10_by_机构代码") ref_company)) AS is_strategic,
                       coalesce(a_product_line.is_existing,
                                (SELECT coalesce(ref_product_line."sum_期末资产规模", 0) > 0::numeric FROM (SELECT NULL::numeric AS "sum_期末资产规模") ref_product_line)) AS is_existing
                  FROM customer.customer_plan_contract c2
                  LEFT JOIN customer.annual_company_status a_company
                         ON a_company.status_year = c2.status_year AND a_company.company_id = c2.company_id
                  LEFT JOIN customer.annual_product_line_status a_product_line
                         ON a_product_line.status_year = c2.status_year AND a_product_line.company_id = c2.company_id AND a_product_line.product_line_code = c2.product_line_code
                 WHERE c2.status_year = ANY (v_reflag)) x
         -- joined on the primary key only: a second condition on status_year here lets a
         -- planner with stale statistics (right after a load) pick a nested loop over it
         WHERE c.contract_id = x.contract_id
           AND (c.is_strategic, c.is_existing)
               IS DISTINCT FROM (x.is_strategic, x.is_existing)
        RETURNING c.status_year
    )
    SELECT n.status_year, n.reference_month, n.status_year = ANY (v_rewrite),
           n.status_year = ANY (v_reflag),
           (SELECT count(*) FROM reflagged f WHERE f.status_year = n.status_year)
      FROM pg_temp.cmdm_annual_reference n
     ORDER BY 1;
END
$fn$;

COMMENT ON FUNCTION customer.decide_annual_statuses(integer[]) IS
    'Stores what the reference month of each given year decides (customer.annual_reference, customer.annual_*_status) and re-flags that year''s contract versions when its statuses changed. rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.event_dependent_months.sql.j2",
        "kind": "function",
        "identity": "customer.event_dependent_months(date)",
        "triggers": [],
        "sha256": "c9bfbdc2b1afdad66998b8247c422c4051312204cacafe2543c5f43ed2a2bd03",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.event_dependent_months.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.event_dependent_months(p_reported date)
    RETURNS TABLE (month date, reason text)
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Which snapshot months can see an events row (an award, a loss: any events source of
 * rules/) reported on p_reported: the loaded months from p_reported's month on, as far as
 * the events conditions of the monthly statuses reach (1 kind(s): exists_in_year
 * through December of that year, exists_in_window of N months through N-1 months later).
 * After inserting, deleting or re-dating such a row, refresh these months (for a re-dated
 * row, those of its old and of its new date). A row without a date is seen by no month.
 * Cost: a few index probes on "月度".
 */
DECLARE
    v_month_start date;
    v_until date;
BEGIN
    IF p_reported IS NULL OR p_reported < DATE '1900-01-01' OR p_reported >= DATE '2201-01-01' THEN
        RETURN;  -- seen by no loaded month
    END IF;
    v_month_start := pg_catalog.date_trunc('month', p_reported)::date;
    v_until := (pg_catalog.date_trunc('year', v_month_start) + INTERVAL '1 year - 1 day')::date;

    RETURN QUERY
    SELECT l, pg_catalog.format('statuses of %s see events reported on %s',
                                pg_catalog.to_char(l, 'YYYY-MM'), p_reported)
      FROM customer.loaded_months(v_month_start, v_until) l
     ORDER BY 1;
END
$fn$;

COMMENT ON FUNCTION customer.event_dependent_months(date) IS
    'Loaded months whose snapshot statuses can see an events row reported on a date (docs/snapshots.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.loaded_months.sql.j2",
        "kind": "function",
        "identity": "customer.loaded_months(date, date)",
        "triggers": [],
        "sha256": "baa50bb6e27d2ef57eb1e274b0ee692a77154c60b5bb213e88fb68776f8d6078",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.loaded_months.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.loaded_months(p_from date DEFAULT NULL, p_to date DEFAULT NULL)
    RETURNS SETOF date
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * The loaded months (months with at least one row in business."规模明细") from p_from's month
 * through p_to's month, as month-end dates, ascending. NULL bounds mean "from the first" /
 * "through the last".
 *
 * Cost: a loose index scan over "月度": one index probe per loaded month, however
 * many fact rows each month holds.
 */
DECLARE
    v_from date := pg_catalog.date_trunc('month', coalesce(p_from, DATE '1900-01-01'))::date;
    v_until date := (pg_catalog.date_trunc('month', coalesce(p_to, DATE '2200-12-01'))
                     + INTERVAL '1 month')::date;
BEGIN
    RETURN QUERY
    WITH RECURSIVE loaded (first_day) AS (
        -- ORDER BY … LIMIT 1, not min(): always one index probe, whatever the statistics say
        SELECT (SELECT pg_catalog.date_trunc('month', f."月度")::date
                  FROM business."规模明细" f
                 WHERE f."月度" >= v_from
                   AND f."月度" < v_until
                 ORDER BY f."月度" LIMIT 1)
        UNION ALL
        SELECT (SELECT pg_catalog.date_trunc('month', f."月度")::date
                  FROM business."规模明细" f
                 WHERE f."月度" >= (l.first_day + INTERVAL '1 month')::date
                   AND f."月度" < v_until
                 ORDER BY f."月度" LIMIT 1)
          FROM loaded l
         WHERE l.first_day IS NOT NULL
    )
    SELECT (l.first_day + INTERVAL '1 month' - INTERVAL '1 day')::date
      FROM loaded l
     WHERE l.first_day IS NOT NULL
     ORDER BY 1;
END
$fn$;

COMMENT ON FUNCTION customer.loaded_months(date, date) IS
    'Month-ends of the months with facts between two months (loose index scan). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.refresh_monthly_snapshot.sql.j2",
        "kind": "function",
        "identity": "customer.refresh_monthly_snapshot(date)",
        "triggers": [],
        "sha256": "f7657438131828565777b679b60388a0a53aa17269cc73a6d2cf24b8ffc51f2a",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.refresh_monthly_snapshot.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.refresh_monthly_snapshot(p_month date)
    RETURNS TABLE (snapshot_month date, business_rows bigint, business_inserted bigint, business_updated bigint, business_deleted bigint, plan_rows bigint, plan_inserted bigint, plan_updated bigint, plan_deleted bigint, rejected_amount_overflow bigint, ms jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
    SET default_statistics_target = 10
AS $fn$
/*
 * What: make the rows of p_month's month in customer.fct_customer_business_monthly_status
 * and customer.fct_customer_plan_monthly_status exactly what DESIGN §4 defines, as of that
 * month: customer.compute_monthly_snapshot says what they must be; rows that no longer
 * belong are deleted, only rows whose values differ are written, so a second run changes
 * nothing and updated_at stays.
 *
 * Cost: the computation's, plus this month's snapshot rows (primary key prefix).
 *
 * Rejects: a (company, product line) whose AUM does not fit aum_balance is left out of
 * the month by the computation; its fact rows of the month go to cmdm.rejected_fact as
 * amount_overflow (replacing the month's earlier ones) and are counted.
 *
 * Concurrency: a contract sync in progress is waited for (the hook lock contract_sync,
 * shared, taken first), so the history read is one consistent state; then refreshes of
 * one month are serialized (the hook lock of the month). cmdm.take_hook_lock.
 */
DECLARE
    v_month_start date;
    v_next_start date;
    v_month_end date;
    v_business_rows bigint := 0;
    v_business_inserted bigint := 0;
    v_business_updated bigint := 0;
    v_business_deleted bigint := 0;
    v_plan_rows bigint := 0;
    v_plan_inserted bigint := 0;
    v_plan_updated bigint := 0;
    v_plan_deleted bigint := 0;
    v_overflow bigint := 0;
    v_step_started timestamptz;
    v_ms jsonb := '{}'::jsonb;  -- milliseconds per step
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_month < DATE '1900-01-01' OR p_month >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_month),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_month_start := pg_catalog.date_trunc('month', p_month)::date;
    v_next_start := (v_month_start + INTERVAL '1 month')::date;
    v_month_end := v_next_start - 1;
    -- Lock order, everywhere: the sync lock first, then a month's lock (no deadlock with a
    -- hook run that holds the sync lock and refreshes this month).
    PERFORM cmdm.take_hook_lock('contract_sync', true);
    PERFORM cmdm.take_hook_lock('snapshot:' || pg_catalog.to_char(v_month_start, 'YYYY-MM'));

    -- 1. The month's rows as they must be (pg_temp.cmdm_snap_business_new, _plan_new),
    --    analyzed so that the writes below are planned from their counts.
    v_step_started := pg_catalog.clock_timestamp();
    PERFORM customer.compute_monthly_snapshot(p_month);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_business_new (company_id text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2), plan_count integer)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_plan_new (company_id text, plan_code text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2))';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_overflow (company_id text, plan_code text, product_line_code text)';
    ANALYZE pg_temp.cmdm_snap_business_new;
    ANALYZE pg_temp.cmdm_snap_plan_new;
    SELECT count(*) INTO v_business_rows FROM pg_temp.cmdm_snap_business_new;
    SELECT count(*) INTO v_plan_rows FROM pg_temp.cmdm_snap_plan_new;
    v_ms := v_ms || jsonb_build_object('compute', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));
    v_step_started := pg_catalog.clock_timestamp();

    -- 2. Write the difference, per table: rows that no longer belong, rows whose values
    --    changed, new rows.
    DELETE FROM customer.fct_customer_business_monthly_status t
     WHERE t.snapshot_month = v_month_end
       AND NOT EXISTS (SELECT FROM pg_temp.cmdm_snap_business_new n WHERE n.company_id = t.company_id AND n.product_line_code = t.product_line_code);
    GET DIAGNOSTICS v_business_deleted = ROW_COUNT;
    UPDATE customer.fct_customer_business_monthly_status t
       SET product_line_name = n.product_line_name,
           is_winning_this_year = n.is_winning_this_year,
           is_churned_this_year = n.is_churned_this_year,
           is_new = n.is_new,
           is_new_arrival = n.is_new_arrival,
           is_churned = n.is_churned,
           is_strategic = n.is_strategic,
           is_existing = n.is_existing,
           aum_balance = n.aum_balance,
           plan_count = n.plan_count
      FROM pg_temp.cmdm_snap_business_new n
     WHERE t.snapshot_month = v_month_end
       AND n.company_id = t.company_id AND n.product_line_code = t.product_line_code
       AND (t.product_line_name, t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_new_arrival, t.is_churned, t.is_strategic, t.is_existing, t.aum_balance, t.plan_count)
           IS DISTINCT FROM (n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance, n.plan_count);
    GET DIAGNOSTICS v_business_updated = ROW_COUNT;
    INSERT INTO customer.fct_customer_business_monthly_status (snapshot_month, company_id, product_line_code, product_line_name, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned, is_strategic, is_existing, aum_balance, plan_count)
    SELECT v_month_end, n.company_id, n.product_line_code, n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance, n.plan_count
      FROM pg_temp.cmdm_snap_business_new n
     WHERE NOT EXISTS (SELECT FROM customer.fct_customer_business_monthly_status t
                        WHERE t.snapshot_month = v_month_end AND t.company_id = n.company_id AND t.product_line_code = n.product_line_code)
     -- in key order: each index page is then visited once, not once per row
     ORDER BY n.company_id, n.product_line_code;
    GET DIAGNOSTICS v_business_inserted = ROW_COUNT;
    DELETE FROM customer.fct_customer_plan_monthly_status t
     WHERE t.snapshot_month = v_month_end
       AND NOT EXISTS (SELECT FROM pg_temp.cmdm_snap_plan_new n WHERE n.company_id = t.company_id AND n.plan_code = t.plan_code AND n.product_line_code = t.product_line_code);
    GET DIAGNOSTICS v_plan_deleted = ROW_COUNT;
    UPDATE customer.fct_customer_plan_monthly_status t
       SET product_line_name = n.product_line_name,
           is_winning_this_year = n.is_winning_this_year,
           is_churned_this_year = n.is_churned_this_year,
           is_new = n.is_new,
           is_new_arrival = n.is_new_arrival,
           is_churned = n.is_churned,
           is_strategic = n.is_strategic,
           is_existing = n.is_existing,
           aum_balance = n.aum_balance
      FROM pg_temp.cmdm_snap_plan_new n
     WHERE t.snapshot_month = v_month_end
       AND n.company_id = t.company_id AND n.plan_code = t.plan_code AND n.product_line_code = t.product_line_code
       AND (t.product_line_name, t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_new_arrival, t.is_churned, t.is_strategic, t.is_existing, t.aum_balance)
           IS DISTINCT FROM (n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance);
    GET DIAGNOSTICS v_plan_updated = ROW_COUNT;
    INSERT INTO customer.fct_customer_plan_monthly_status (snapshot_month, company_id, plan_code, product_line_code, product_line_name, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned, is_strategic, is_existing, aum_balance)
    SELECT v_month_end, n.company_id, n.plan_code, n.product_line_code, n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance
      FROM pg_temp.cmdm_snap_plan_new n
     WHERE NOT EXISTS (SELECT FROM customer.fct_customer_plan_monthly_status t
                        WHERE t.snapshot_month = v_month_end AND t.company_id = n.company_id AND t.plan_code = n.plan_code AND t.product_line_code = n.product_line_code)
     -- in key order: each index page is then visited once, not once per row
     ORDER BY n.company_id, n.plan_code, n.product_line_code;
    GET DIAGNOSTICS v_plan_inserted = ROW_COUNT;

    -- 3. The fact rows of the pairs left out (amounts too large to store), replacing the
    --    month's earlier ones: a probe of the month's rejects, and a scan of the month's
    --    facts only when there are any.
    DELETE FROM cmdm.rejected_fact r WHERE r.period = v_month_end AND r.reason = 'amount_overflow';
    IF EXISTS (SELECT FROM pg_temp.cmdm_snap_overflow) THEN
        INSERT INTO cmdm.rejected_fact
               (period, reason, company_id, plan_code, product_line_code, portfolio_code, aum)
        SELECT v_month_end, 'amount_overflow', f.company_id, f."计划代码",
               f."产品线代码", f."组合代码", f."期末资产规模"
          FROM business."规模明细" f
          JOIN pg_temp.cmdm_snap_overflow o
            ON o.company_id = f.company_id::text
           AND o.plan_code = f."计划代码"::text
           AND o.product_line_code = f."产品线代码"::text
         WHERE f."月度" >= v_month_start AND f."月度" < v_next_start;
        GET DIAGNOSTICS v_overflow = ROW_COUNT;
    END IF;

    RETURN QUERY SELECT v_month_end, v_business_rows, v_business_inserted, v_business_updated,
                        v_business_deleted, v_plan_rows, v_plan_inserted, v_plan_updated,
                        v_plan_deleted, v_overflow,
                        v_ms || jsonb_build_object('writes', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));
END
$fn$;

COMMENT ON FUNCTION customer.refresh_monthly_snapshot(date) IS
    'Monthly status snapshot of one month at product-line and plan grain, as of that month (docs/snapshots.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.run_post_etl_hooks.sql.j2",
        "kind": "procedure",
        "identity": "customer.run_post_etl_hooks(text, date)",
        "triggers": [],
        "sha256": "a00da60747527d95f7f5dac3c4e15ba8cadb88a3e1a650190fd2a19a5441f6ba",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.run_post_etl_hooks.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE PROCEDURE customer.run_post_etl_hooks(p_domain text, p_period date)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * The ETL's explicit hook: CALL customer.run_post_etl_hooks('annuity_performance', '2026-01-31')
 * after loading a month with `SET LOCAL cmdm.post_hooks = off`, in the same transaction or
 * a later one. Runs the domain's registered steps for the period (cmdm.run_hooks:
 * contract sync, then the snapshot refresh of every month depending on it) and logs them
 * in cmdm.hook_run. Months the same transaction already queued for its commit-time run
 * are not run twice.
 */
BEGIN
    IF p_period IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_period < DATE '1900-01-01' OR p_period >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_period),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    PERFORM FROM cmdm.run_hooks(p_domain, ARRAY[p_period], '{}', 'call');
END
$fn$;

COMMENT ON PROCEDURE customer.run_post_etl_hooks(text, date) IS
    'Runs and logs the post-ETL steps of a domain for one month (docs/hooks.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.sync_compute_states.sql.j2",
        "kind": "function",
        "identity": "customer.sync_compute_states(date)",
        "triggers": [],
        "sha256": "2c0b8bbc5c9438844131273c76c05009f615d935e27bd6f5ff348679eaaafef5",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_compute_states.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_compute_states(p_month_end date)
    RETURNS bigint
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
AS $fn$
/*
 * What: step 2 of customer.sync_contract_status: the new state of every key in
 * pg_temp.cmdm_sync_key at each loaded month of its window, into pg_temp.cmdm_sync_state
 * (valid_from: the month-end, valid_to: the next loaded month's, or the end of time);
 * returns how many. The loaded months of the windows, each with the one after it, go to
 * pg_temp.cmdm_sync_months first.
 *
 * A state is (contract status, status year, annual statuses): the status from this
 * month's facts where the key is seen, else the suspended status under suspend (a key
 * absent from a loaded month after its first appearance); the annual statuses from the
 * stored decision of the month's year (customer.annual_*_status, one probe per key and
 * year), or for a key without a row there (no facts at the reference month) the rule's
 * value over no facts. The years of the windows are decided before this step.
 */
DECLARE
    v_month_end date := p_month_end;
    v_month_start date := pg_catalog.date_trunc('month', p_month_end)::date;
    v_states bigint;
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    -- The loaded months inside the windows, each with the loaded month after it.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_months (month_end date, next_end date)';
    PERFORM cmdm.scratch_table('cmdm_sync_months', 'month_end date, next_end date');
    INSERT INTO pg_temp.cmdm_sync_months (month_end, next_end)
    SELECT l, lead(l, 1, DATE '9999-12-31') OVER (ORDER BY l)
      FROM customer.loaded_months(v_month_start,
                                  (SELECT max(k.window_end) FROM pg_temp.cmdm_sync_key k)) l;
    ANALYZE pg_temp.cmdm_sync_months;  -- usually one month: probes, not hashes, below


    -- The new states at the loaded months of each window, with the annual statuses of each
    -- month's year as decided (a key without a decided row: the rule over no facts).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_state (key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_sync_state', 'key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean');
    INSERT INTO pg_temp.cmdm_sync_state (key_no, valid_from, valid_to, contract_status, status_year, is_strategic, is_existing)
    SELECT k.key_no, s.month_end, s.next_end,
           CASE WHEN s.month_end = v_month_end AND k.present THEN k.contract_status
                ELSE '停缴' END,
           extract(year FROM s.month_end)::int,
           coalesce(a_company.is_strategic, (SELECT (coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric OR coalesce(ref_company."top_10_by_机构代码", false)) FROM (SELECT NULL::numeric AS "sum_期末资产规模", NULL::boolean AS "top_10_by_机构代码") ref_company)),
           coalesce(a_product_line.is_existing, (SELECT coalesce(ref_product_line."sum_期末资产规模", 0) > 0::numeric FROM (SELECT NULL::numeric AS "sum_期末资产规模") ref_product_line))
      FROM pg_temp.cmdm_sync_key k
      JOIN pg_temp.cmdm_sync_months s
        ON s.month_end >= v_month_end AND s.month_end < k.window_end
      LEFT JOIN customer.annual_company_status a_company
             ON a_company.status_year = extract(year FROM s.month_end)::int AND a_company.company_id = k.company_id
      LEFT JOIN customer.annual_product_line_status a_product_line
             ON a_product_line.status_year = extract(year FROM s.month_end)::int AND a_product_line.company_id = k.company_id AND a_product_line.product_line_code = k.product_line_code
     WHERE (s.month_end = v_month_end AND k.present)
        OR k.appeared_before
        OR (k.present AND s.month_end > v_month_end)
    ;
    GET DIAGNOSTICS v_states = ROW_COUNT;
    RETURN v_states;
END
$fn$;

COMMENT ON FUNCTION customer.sync_compute_states(date) IS
    'Step 2 of the contract sync: the new states of the keys in scope at the loaded months of their windows, into pg_temp.cmdm_sync_state (docs/contract-sync.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.sync_contract_status.sql.j2",
        "kind": "function",
        "identity": "customer.sync_contract_status(date)",
        "triggers": [],
        "sha256": "0206b2209f62ae92be4731b53351c5a73a98ea2db39a464d21aa15ec9a68d8f1",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_contract_status.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_contract_status(p_period date)
    RETURNS TABLE (period date, keys_seen bigint, keys_changed bigint, keys_unchanged bigint, versions_opened bigint, versions_closed bigint, versions_removed bigint, versions_reflagged bigint, rejected_null_key bigint, rejected_blank_key bigint, rejected_unknown_product_line bigint, rejected_unknown_company bigint, changed_until date, snapshot_months date[], ms jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET default_statistics_target = 10
AS $fn$
/*
 * What: make customer.customer_plan_contract exactly the SCD Type 2 history of DESIGN §4
 * after the facts of p_period's month changed (loaded, restated, deleted) or did not (a
 * second run changes nothing). The tracked state of a key at a loaded month is
 * (contract_status, status_year, is_strategic, is_existing); the history is its run-length
 * encoding over the loaded months from the key's first appearance; a key absent from a
 * loaded month is handled by on_missing = suspend.
 *
 * Why it can be incremental: a change to one month's facts changes the states at that
 * month only, plus
 *   - the annual statuses of a year whose reference month this month is, was or becomes
 *     (a year decided from it; the year of the next loaded month; this year when no
 *     earlier month is loaded): customer.decide_annual_statuses stores the new decision and
 *     re-flags that year's versions in place, as a version never spans two years;
 *   - under suspend, for a key whose first appearance moves to or away from this month,
 *     its suspended states up to its next appearance.
 * A key is provably unchanged when its state at this month equals that of the version
 * covering the month (same year, so same annual statuses). Every other key gets its
 * versions around the month rebuilt: the parts of its old versions outside the window,
 * one piece per loaded month inside it, consecutive equal states merged; the difference
 * is written (deletes, valid_to moves, inserts). Unchanged versions keep their row.
 *
 * Annual statuses of a key's year come from the year's stored decision
 * (customer.annual_*_status, one probe per key and year); a key without a row there had no
 * facts at the reference month and gets the rule's value over no facts.
 *
 * The steps, one routine each, pass sets to each other in pg_temp scratch tables
 * (pg_temp.cmdm_sync_*, ANALYZEd after they are filled, so the planner plans from counts):
 *   1 customer.sync_scope_keys        the keys whose history may change (+ rejects)
 *   - customer.decide_annual_statuses the years this month decides, and any year a
 *                                     window reaches that is not decided yet
 *   2 customer.sync_compute_states    their new states at the loaded months of the window
 *   3 customer.sync_merge_versions    the versions they must have (gaps and islands)
 *   4 customer.sync_write_versions    the difference written
 *   5 customer.sync_snapshot_months   the snapshot months the change can affect
 * Each step's time (ms) is returned in the column ms, which the hook log keeps.
 *
 * Cost: one scan of the month's facts (index on "月度"), the versions covering the
 * month (GiST on the validity range), index lookups for the keys that change, and the
 * reference month's facts only when a year must be decided. Never the whole history.
 *
 * Rejects: fact rows with a NULL or blank key part, an unknown product line or an unknown
 * company go to cmdm.rejected_fact (replacing the month's earlier rejects of these reasons)
 * and are counted.
 * Concurrency: one sync at a time (the hook lock contract_sync, cmdm.take_hook_lock).
 */
DECLARE
    v_month_start date;
    v_month_end date;
    v_next_start date;
    v_year integer;
    v_prev date;                -- month-end of the last loaded month before this one
    v_next date;                -- month-end of the first loaded month after this one
    v_loaded boolean;           -- does this month have facts (any row)?
    v_window_end date;          -- end of a default window: the next loaded month, or the end of time
    v_decide_years integer[];   -- years whose reference month this month is, was or becomes
    v_candidate_years integer[];  -- years a window reaches that are not decided yet
    v_reflagged_years integer[] := '{}'::integer[];  -- years whose versions took new annual flags
    v_flags_updated bigint := 0;
    v_scope record;             -- customer.sync_scope_keys' counts
    v_written record;           -- customer.sync_write_versions' counts
    v_changed_until date;
    v_step_started timestamptz;
    v_ms jsonb := '{}'::jsonb;  -- milliseconds per step
BEGIN
    IF p_period IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_period < DATE '1900-01-01' OR p_period >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_period),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    -- Syncs of neighbouring months rewrite the same versions: one at a time, and never
    -- beside another writer of the outputs (cmdm.take_hook_lock).
    PERFORM cmdm.take_hook_lock('contract_sync');

    v_month_start := pg_catalog.date_trunc('month', p_period)::date;
    v_next_start := (v_month_start + INTERVAL '1 month')::date;
    v_month_end := v_next_start - 1;
    v_year := extract(year FROM v_month_start)::int;
    -- The nearest fact month below or above a bound: ORDER BY … LIMIT 1 is one index probe
    -- whatever the statistics say (right after a load they do not know the new month, and
    -- min()/max() may then be planned as an aggregate over all of its rows).
    v_loaded := coalesce((SELECT f."月度" >= v_month_start FROM business."规模明细" f
                           WHERE f."月度" < v_next_start ORDER BY f."月度" DESC LIMIT 1), false);
    v_prev := (SELECT (pg_catalog.date_trunc('month', f."月度") + INTERVAL '1 month - 1 day')::date
                 FROM business."规模明细" f WHERE f."月度" < v_month_start ORDER BY f."月度" DESC LIMIT 1);
    v_next := (SELECT (pg_catalog.date_trunc('month', f."月度") + INTERVAL '1 month - 1 day')::date
                 FROM business."规模明细" f WHERE f."月度" >= v_next_start ORDER BY f."月度" LIMIT 1);
    v_window_end := coalesce(v_next, DATE '9999-12-31');
    -- A year's decision depends on its reference month only: the years to decide again are
    -- those decided from this month (its facts changed or are gone), the next loaded
    -- month's year when it is a later one (this month may now be its last month before
    -- January), this year when no earlier month is loaded (its first month may have moved),
    -- and this year when it is loaded and undecided, or no longer loaded at all.
    v_decide_years := ARRAY(
        SELECT r.status_year FROM customer.annual_reference r WHERE r.reference_month = v_month_end
        UNION
        SELECT extract(year FROM v_next)::int WHERE extract(year FROM v_next) > v_year
        UNION
        SELECT v_year WHERE v_prev IS NULL
        UNION
        SELECT v_year
         WHERE v_loaded AND NOT EXISTS (SELECT FROM customer.annual_reference r WHERE r.status_year = v_year)
        UNION
        SELECT v_year
         WHERE NOT v_loaded
           AND EXISTS (SELECT FROM customer.annual_reference r WHERE r.status_year = v_year)
           AND NOT EXISTS (SELECT FROM business."规模明细" f
                            WHERE f."月度" >= pg_catalog.make_date(v_year, 1, 1)
                              AND f."月度" < pg_catalog.make_date(v_year + 1, 1, 1))
        ORDER BY 1);

    -- A month with no facts that no version starts in, covers or ends at, and that is no
    -- year's reference month: nothing to do but forget its rejects.
    IF NOT v_loaded AND cardinality(v_decide_years) = 0 AND NOT EXISTS (
           SELECT FROM customer.customer_plan_contract c
            WHERE pg_catalog.daterange(c.valid_from, c.valid_to, '[]') @> v_month_end) THEN
        DELETE FROM cmdm.rejected_fact r WHERE r.period = v_month_end;
        RETURN QUERY SELECT v_month_end, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
                            0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, NULL::date,
                            ARRAY[v_month_end], v_ms;
        RETURN;
    END IF;

    -- The years this month decides: their decisions stored, their versions re-flagged in
    -- place where a status changed.
    v_step_started := pg_catalog.clock_timestamp();
    IF cardinality(v_decide_years) > 0 THEN
        SELECT coalesce(sum(d.versions_reflagged), 0),
               coalesce(array_agg(d.status_year) FILTER (WHERE d.versions_reflagged > 0), '{}')
          INTO v_flags_updated, v_reflagged_years
          FROM customer.decide_annual_statuses(v_decide_years) d;
    END IF;
    v_ms := v_ms || jsonb_build_object('decide', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));

    -- 1. The keys whose history may change.
    v_step_started := pg_catalog.clock_timestamp();
    SELECT * INTO STRICT v_scope FROM customer.sync_scope_keys(v_month_end, v_loaded, v_window_end);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    ANALYZE pg_temp.cmdm_sync_key;
    v_ms := v_ms || jsonb_build_object('scope', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));
    SELECT max(k.window_end) INTO v_changed_until FROM pg_temp.cmdm_sync_key k;

    -- A window may reach a year not decided yet (a history older than the decisions, or a
    -- later month loaded but not synced yet): decide it before the states read it.
    v_step_started := pg_catalog.clock_timestamp();
    v_candidate_years := ARRAY(
        SELECT DISTINCT extract(year FROM l)::int
          FROM customer.loaded_months(v_month_start, v_changed_until) l
         WHERE NOT EXISTS (SELECT FROM customer.annual_reference r
                            WHERE r.status_year = extract(year FROM l)::int));
    IF cardinality(v_candidate_years) > 0 THEN
        SELECT v_flags_updated + coalesce(sum(d.versions_reflagged), 0),
               v_reflagged_years
               || coalesce(array_agg(d.status_year) FILTER (WHERE d.versions_reflagged > 0), '{}')
          INTO v_flags_updated, v_reflagged_years
          FROM customer.decide_annual_statuses(v_candidate_years) d;
    END IF;
    v_ms := jsonb_set(v_ms, '{decide}', to_jsonb((v_ms->>'decide')::numeric + round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1)));

    -- 2. Their new states at the loaded months of their windows.
    v_step_started := pg_catalog.clock_timestamp();
    PERFORM customer.sync_compute_states(v_month_end);
    ANALYZE pg_temp.cmdm_sync_state;
    v_ms := v_ms || jsonb_build_object('states', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));

    -- 3. The versions they must have.
    v_step_started := pg_catalog.clock_timestamp();
    PERFORM customer.sync_merge_versions(v_month_end, v_loaded, v_window_end);
    ANALYZE pg_temp.cmdm_sync_old;
    ANALYZE pg_temp.cmdm_sync_new;
    v_ms := v_ms || jsonb_build_object('history', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));

    -- 4. The difference written.
    v_step_started := pg_catalog.clock_timestamp();
    SELECT * INTO STRICT v_written FROM customer.sync_write_versions();
    v_ms := v_ms || jsonb_build_object('writes', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));

    -- 5. The snapshot months the change can affect.
    v_step_started := pg_catalog.clock_timestamp();
    RETURN QUERY
    SELECT v_month_end, v_scope.keys_seen, v_written.keys_changed,
           v_scope.keys_in_scope - v_written.keys_changed, v_written.versions_opened,
           v_written.versions_closed, v_written.versions_removed, v_flags_updated,
           v_scope.rejected_null_key, v_scope.rejected_blank_key,
           v_scope.rejected_unknown_product_line, v_scope.rejected_unknown_company,
           CASE WHEN v_written.keys_changed > 0 THEN v_changed_until END,
           m.months,
           v_ms || jsonb_build_object('dependents', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1))
      FROM (SELECT customer.sync_snapshot_months(
                       v_month_end, v_next,
                       CASE WHEN v_written.keys_changed > 0 THEN v_changed_until END,
                       v_reflagged_years) AS months) m;
END
$fn$;

COMMENT ON FUNCTION customer.sync_contract_status(date) IS
    'SCD Type 2 sync of customer.customer_plan_contract for one month. Contract status: 正常 when coalesce(m."sum_期末资产规模", 0) > 0::numeric; else 停缴; on_missing suspend (停缴). Annual statuses: is_strategic: 战略客户 (strategic customer): at the year''s reference month the company''s total AUM reaches strategic_threshold, or it is among the whitelist_top_n largest companies by AUM of its branch.; is_existing: 存量客户 (existing customer): the company held assets (AUM > 0) in this product line at the year''s reference month.. rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.sync_merge_versions.sql.j2",
        "kind": "function",
        "identity": "customer.sync_merge_versions(date, boolean, date)",
        "triggers": [],
        "sha256": "a211ac59c724a690bf01f0b764c6d21fd78d9e0b1f5223cb293c9c2ca94ada6f",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_merge_versions.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_merge_versions(p_month_end date, p_loaded boolean, p_window_end date)
    RETURNS bigint
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
AS $fn$
/*
 * What: step 3 of customer.sync_contract_status: the versions the keys in scope must
 * have around their windows, into pg_temp.cmdm_sync_new; returns how many. Their current
 * versions that overlap or touch the windows go to pg_temp.cmdm_sync_old (the write step
 * compares the two).
 *
 * How: the old versions cut at the window (the part before it, up to the first loaded
 * month in it; the part after it), plus the new states inside it
 * (pg_temp.cmdm_sync_state) are pieces of one timeline per key; consecutive pieces with
 * equal states merge into one version (gaps and islands). A version may not span two
 * years; the pieces never make one (a piece after the window from a history that is
 * behind its facts is dropped, see below), so the CM002 check at the end is a guard that
 * names the month rather than a violated constraint, should that ever change.
 *
 * Cost: an index lookup per key (company, plan, product line, valid_to), then hash and
 * sort work over the scratch tables.
 */
DECLARE
    v_month_end date := p_month_end;
    v_loaded boolean := p_loaded;
    v_window_end date := p_window_end;
    v_versions bigint;
    v_candidate date;
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_state (key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    -- The versions of these keys that overlap or touch their windows (an index lookup
    -- per key).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_old (contract_id bigint, key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_sync_old', 'contract_id bigint, key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean');
    INSERT INTO pg_temp.cmdm_sync_old (contract_id, key_no, valid_from, valid_to, contract_status, status_year, is_strategic, is_existing)
    SELECT c.contract_id, k.key_no, c.valid_from, c.valid_to, c.contract_status, c.status_year, c.is_strategic, c.is_existing
      FROM pg_temp.cmdm_sync_key k
     CROSS JOIN LATERAL (
           SELECT c.*
             FROM customer.customer_plan_contract c
            WHERE c.company_id = k.company_id AND c.plan_code = k.plan_code
              AND c.product_line_code = k.product_line_code
              AND c.valid_to >= v_month_end
              AND c.valid_from <= k.window_end
           ) c;

    -- Pieces -> merged versions: the old versions cut at the window, the new states inside
    -- it; consecutive pieces with equal states merge (gaps and islands).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_new (key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_sync_new', 'key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean');
    INSERT INTO pg_temp.cmdm_sync_new (key_no, valid_from, valid_to, contract_status, status_year, is_strategic, is_existing)
    WITH piece AS (
        -- the part of an old version before the window, up to the first loaded month in
        -- it; when this month is no longer loaded, its last month now runs to the next one
        SELECT o.key_no, o.valid_from,
               CASE WHEN v_loaded THEN least(o.valid_to, v_month_end) ELSE v_window_end END AS valid_to,
               o.contract_status, o.status_year, o.is_strategic, o.is_existing
          FROM pg_temp.cmdm_sync_old o
         WHERE o.valid_from < v_month_end
        UNION ALL
        -- the part of an old version after the window. One whose year is not the year it
        -- would start in was written before a later month was loaded, and that month is
        -- still to be synced: its states there are unknown until then, so it is dropped
        -- (in a history that is up to date this never happens).
        SELECT o.key_no, greatest(o.valid_from, k.window_end), o.valid_to, o.contract_status, o.status_year, o.is_strategic, o.is_existing
          FROM pg_temp.cmdm_sync_old o
          JOIN pg_temp.cmdm_sync_key k ON k.key_no = o.key_no
         WHERE o.valid_to > k.window_end
           AND o.status_year = extract(year FROM greatest(o.valid_from, k.window_end))
        UNION ALL
        -- the new states inside the window
        SELECT s.key_no, s.valid_from, s.valid_to, s.contract_status, s.status_year, s.is_strategic, s.is_existing
          FROM pg_temp.cmdm_sync_state s
    ), marked AS (
        SELECT p.*,
               CASE WHEN lag(p.valid_to) OVER w = p.valid_from
                     AND (lag(p.contract_status) OVER w, lag(p.status_year) OVER w, lag(p.is_strategic) OVER w, lag(p.is_existing) OVER w)
                         IS NOT DISTINCT FROM (p.contract_status, p.status_year, p.is_strategic, p.is_existing)
                    THEN 0 ELSE 1 END AS starts_version
          FROM piece p
        WINDOW w AS (PARTITION BY p.key_no ORDER BY p.valid_from)
    ), numbered AS (
        SELECT m.*, sum(m.starts_version) OVER (PARTITION BY m.key_no ORDER BY m.valid_from) AS version_no
          FROM marked m
    )
    SELECT n.key_no, min(n.valid_from), max(n.valid_to), n.contract_status, n.status_year, n.is_strategic, n.is_existing
      FROM numbered n
     GROUP BY n.key_no, n.version_no, n.contract_status, n.status_year, n.is_strategic, n.is_existing;
    GET DIAGNOSTICS v_versions = ROW_COUNT;

    -- A version may not span two years. Only a history that is behind its facts (a later
    -- month loaded but never synced) gives one here: say so rather than violate the
    -- ck_contract_status_year constraint.
    SELECT min(n.valid_from) INTO v_candidate
      FROM pg_temp.cmdm_sync_new n
     WHERE n.status_year <> extract(year FROM n.valid_from);
    IF v_candidate IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM002',
            MESSAGE = pg_catalog.format(
                'the contract history is behind the facts: %s is loaded but was never synced',
                pg_catalog.to_char(v_candidate, 'YYYY-MM')),
            HINT = 'Sync every loaded month after its load (the post-ETL hook does), or rebuild '
                   'the history from the first month whose facts changed.';
    END IF;
    RETURN v_versions;
END
$fn$;

COMMENT ON FUNCTION customer.sync_merge_versions(date, boolean, date) IS
    'Step 3 of the contract sync: the versions the keys in scope must have around their windows, into pg_temp.cmdm_sync_new (docs/contract-sync.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.sync_scope_keys.sql.j2",
        "kind": "function",
        "identity": "customer.sync_scope_keys(date, boolean, date)",
        "triggers": [],
        "sha256": "2c8035294f3ce8a340a921218dfaa0fbb6e1414502b3f19ade450d2fff138902",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_scope_keys.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_scope_keys(p_month_end date, p_loaded boolean, p_window_end date)
    RETURNS TABLE (keys_seen bigint, keys_in_scope bigint, keys_to_rebuild bigint, rejected_null_key bigint, rejected_blank_key bigint, rejected_unknown_product_line bigint, rejected_unknown_company bigint)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
AS $fn$
/*
 * What: step 1 of customer.sync_contract_status: the contract keys whose history may
 * change because the month ending p_month_end changed, into pg_temp.cmdm_sync_key, one
 * row each (key_no numbers them for the later steps):
 *   - the month's facts aggregated per key in one scan, with the key's contract status
 *     (rules: contract.status), into pg_temp.cmdm_sync_month;
 *   - every key seen this month or with a version covering the month-end (or ending at
 *     it), minus those provably unchanged: a state at this month equal to the covering
 *     version's, in the same year (same year, so the same annual statuses);
 *   - window_end: the states of a key are recomputed at the loaded months in
 *     [this month, window_end): p_window_end (the next loaded month), or under suspend,
 *     for a key whose first appearance moves to or away from this month, its next
 *     appearance in the facts.
 * Keys seen this month that are not contracts (a NULL or blank key part, an unknown
 * product line or company) leave the scope; their fact rows go to cmdm.rejected_fact,
 * which is cleared of the month's earlier rejects of these reasons first (the snapshot
 * refresh keeps its own, amount_overflow).
 *
 * Cost: one scan of the month's facts (index on "月度"), the versions covering the
 * month-end (GiST on the validity range); rejects: one more scan of the month.
 */
DECLARE
    v_month_end date := p_month_end;
    v_month_start date := pg_catalog.date_trunc('month', p_month_end)::date;
    v_next_start date := p_month_end + 1;
    v_year integer := extract(year FROM p_month_end)::int;
    v_loaded boolean := p_loaded;
    v_window_end date := p_window_end;
    v_keys_seen bigint := 0;
    v_scope bigint := 0;
    v_changed bigint := 0;
    v_rejected_keys bigint := 0;
    v_null_key bigint := 0;
    v_blank_key bigint := 0;
    v_unknown_product_line bigint := 0;
    v_unknown_company bigint := 0;
    v_candidate date;
BEGIN
    -- The month's facts in one scan, aggregated per key as they come, with each key's
    -- contract status. Which of these keys are not contracts (rejects) is decided below,
    -- for the few keys that have no version covering the month: a version's key is known
    -- to be valid.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_month (company_id text, plan_code text, product_line_code text, contract_status text)';
    PERFORM cmdm.scratch_table('cmdm_sync_month', 'company_id text, plan_code text, product_line_code text, contract_status text');
    INSERT INTO pg_temp.cmdm_sync_month (company_id, plan_code, product_line_code, contract_status)
    SELECT m.company_id, m.plan_code, m.product_line_code,
           CASE
               WHEN coalesce(m."sum_期末资产规模", 0) > 0::numeric
                   THEN '正常'
               ELSE '停缴'
           END
      FROM (SELECT f.company_id::text AS company_id,
                   f."计划代码"::text AS plan_code,
                   f."产品线代码"::text AS product_line_code,
                   sum(f."期末资产规模") AS "sum_期末资产规模"
              FROM business."规模明细" f
             WHERE f."月度" >= v_month_start AND f."月度" < v_next_start
             GROUP BY 1, 2, 3) m;
    GET DIAGNOSTICS v_keys_seen = ROW_COUNT;
    ANALYZE pg_temp.cmdm_sync_month;  -- its size and keys, for the join below
    DELETE FROM cmdm.rejected_fact r WHERE r.period = v_month_end AND r.reason <> 'amount_overflow';


    -- The keys whose history may change (see the header).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_sync_key', 'key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean');
    WITH stab AS MATERIALIZED (
        SELECT c.company_id::text AS company_id, c.plan_code::text AS plan_code,
               c.product_line_code::text AS product_line_code,
               c.key_id, c.contract_id, c.valid_from, c.valid_to, c.contract_status, c.status_year, c.is_strategic, c.is_existing
          FROM customer.customer_plan_contract c
         WHERE pg_catalog.daterange(c.valid_from, c.valid_to, '[]') @> v_month_end
    ), scope AS (
        -- stab holds, per key, the version covering the month (valid_to > v_month_end) and
        -- one ending at it (valid_to = v_month_end: the key was absent, or changed state, here)
        SELECT coalesce(m.company_id, v.company_id) AS company_id,
               coalesce(m.plan_code, v.plan_code) AS plan_code,
               coalesce(m.product_line_code, v.product_line_code) AS product_line_code,
               v.key_id,
               m.seen IS NOT NULL AS present,
               m.contract_status,
               -- a version before this month: the covering one starts earlier, or another
               -- ends here
               coalesce(v.valid_from < v_month_end, false)
               OR (v.valid_from = v_month_end
                   AND EXISTS (SELECT FROM stab e
                                WHERE e.valid_to = v_month_end AND e.company_id = v.company_id AND e.plan_code = v.plan_code AND e.product_line_code = v.product_line_code)) AS appeared_before,
               v.contract_id AS covering_id, v.valid_from AS covering_from,
v.contract_status AS old_contract_status, v.status_year AS old_status_year, v.is_strategic AS old_is_strategic, v.is_existing AS old_is_existing
          FROM (SELECT m.*, true AS seen FROM pg_temp.cmdm_sync_month m) m
          FULL JOIN (SELECT * FROM stab WHERE stab.valid_to > v_month_end) v ON v.company_id = m.company_id AND v.plan_code = m.plan_code AND v.product_line_code = m.product_line_code
        UNION ALL
        -- keys whose only version ends here and that are not seen now
        SELECT e.company_id, e.plan_code, e.product_line_code, e.key_id, false, NULL, true,
               NULL, NULL, NULL, NULL, NULL, NULL
          FROM stab e
         WHERE e.valid_to = v_month_end
           AND NOT EXISTS (SELECT FROM stab v WHERE v.valid_to > v_month_end AND v.company_id = e.company_id AND v.plan_code = e.plan_code AND v.product_line_code = e.product_line_code)
           AND NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_month m WHERE m.company_id = e.company_id AND m.plan_code = e.plan_code AND m.product_line_code = e.product_line_code)
    ), decided AS (
        SELECT s.*,
               -- the new status at this month, if the key has a state here
               CASE WHEN s.present THEN s.contract_status
                    WHEN s.appeared_before THEN '停缴'
               END AS new_status
          FROM scope s
    ), counted AS (
        SELECT count(*) AS n FROM decided
    ), candidate AS (
        INSERT INTO pg_temp.cmdm_sync_key
               (key_no, key_id, company_id, plan_code, product_line_code, present, contract_status,
                appeared_before, window_end, covering_id, covering_from,
                old_contract_status, old_status_year, old_is_strategic, old_is_existing)
        SELECT row_number() OVER (), s.key_id, s.company_id, s.plan_code, s.product_line_code, s.present,
               s.contract_status, s.appeared_before,
               CASE
                   -- seen before this month, or first seen here and still here
                   WHEN s.appeared_before OR (s.covering_id IS NOT NULL AND s.present)
                       THEN v_window_end
                   -- the first appearance moves to or away from this month: the suspended
                   -- states up to the key's next appearance change (found below)
               END,
               s.covering_id, s.covering_from, s.old_contract_status, s.old_status_year, s.old_is_strategic, s.old_is_existing
          FROM decided s
         WHERE NOT CASE
                   WHEN v_loaded THEN
                        (s.covering_id IS NOT NULL AND s.old_status_year = v_year
                         AND s.new_status IS NOT DISTINCT FROM s.old_contract_status)
                        OR (s.covering_id IS NULL AND s.new_status IS NULL)
                   ELSE s.covering_id IS NOT NULL AND s.covering_from < v_month_end
               END
        RETURNING 1
    )
    SELECT (SELECT n FROM counted), (SELECT count(*) FROM candidate) INTO v_scope, v_changed;

    -- Keys seen this month that have no version covering it: those with a NULL or blank
    -- key part, an unknown product line or an unknown company are not contracts. They
    -- leave the scope, and their fact rows go to cmdm.rejected_fact (the month's earlier
    -- rejects were deleted above). A key with a covering version passed these checks, and
    -- the foreign keys and ck_contract_key_not_blank of customer.contract_key hold it
    -- valid since.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_reject (company_id text, plan_code text, product_line_code text, reason text)';
    PERFORM cmdm.scratch_table('cmdm_sync_reject', 'company_id text, plan_code text, product_line_code text, reason text');
    WITH rejected AS (
        DELETE FROM pg_temp.cmdm_sync_key k
         USING (SELECT n.key_no,
                       CASE WHEN n.company_id IS NULL OR n.plan_code IS NULL
                                 OR n.product_line_code IS NULL THEN 'null_key'
                            WHEN pg_catalog.btrim(n.company_id, E' \\t\\r\\n') = '' OR pg_catalog.btrim(n.plan_code, E' \\t\\r\\n') = ''
                                 OR pg_catalog.btrim(n.product_line_code, E' \\t\\r\\n') = '' THEN 'blank_key'
                            WHEN pl."产品线代码" IS NULL THEN 'unknown_product_line'
                            WHEN co.company_id IS NULL THEN 'unknown_company'
                       END AS reason
                  FROM pg_temp.cmdm_sync_key n
                  LEFT JOIN mapping."产品线" pl ON pl."产品线代码" = n.product_line_code
                  LEFT JOIN customer."年金客户" co ON co.company_id = n.company_id
                 WHERE n.present AND n.covering_id IS NULL) r
         WHERE k.key_no = r.key_no AND r.reason IS NOT NULL
        RETURNING k.company_id, k.plan_code, k.product_line_code, r.reason
    )
    INSERT INTO pg_temp.cmdm_sync_reject (company_id, plan_code, product_line_code, reason)
    SELECT r.company_id, r.plan_code, r.product_line_code, r.reason FROM rejected r;
    GET DIAGNOSTICS v_rejected_keys = ROW_COUNT;
    IF v_rejected_keys > 0 THEN
        v_keys_seen := v_keys_seen - v_rejected_keys;
        v_scope := v_scope - v_rejected_keys;
        v_changed := v_changed - v_rejected_keys;
        -- one more scan of the month: rows with a NULL key part, and (an equality join,
        -- their key parts are not NULL) the rows of the other rejected keys (blank ones too)
        INSERT INTO cmdm.rejected_fact
               (period, reason, company_id, plan_code, product_line_code, portfolio_code, aum)
        SELECT v_month_end, coalesce(r.reason, 'null_key'), f.company_id, f."计划代码",
               f."产品线代码", f."组合代码", f."期末资产规模"
          FROM business."规模明细" f
          LEFT JOIN pg_temp.cmdm_sync_reject r
            ON r.company_id = f.company_id::text
           AND r.plan_code = f."计划代码"::text
           AND r.product_line_code = f."产品线代码"::text
           AND r.reason <> 'null_key'
         WHERE f."月度" >= v_month_start AND f."月度" < v_next_start
           AND (f.company_id IS NULL OR f."计划代码" IS NULL
                OR f."产品线代码" IS NULL OR r.reason IS NOT NULL);
        SELECT count(*) FILTER (WHERE r.reason = 'null_key'),
               count(*) FILTER (WHERE r.reason = 'blank_key'),
               count(*) FILTER (WHERE r.reason = 'unknown_product_line'),
               count(*) FILTER (WHERE r.reason = 'unknown_company')
          INTO v_null_key, v_blank_key, v_unknown_product_line, v_unknown_company
          FROM cmdm.rejected_fact r
         WHERE r.period = v_month_end;
    END IF;

    -- A key whose first appearance moves to or away from this month: its suspended states
    -- run up to its next appearance in the facts, found month by month (usually the next
    -- loaded month; none at all when this is the latest month).
    IF EXISTS (SELECT FROM pg_temp.cmdm_sync_key k WHERE k.window_end IS NULL) THEN
        FOR v_candidate IN SELECT l FROM customer.loaded_months(v_next_start, NULL) l LOOP
            UPDATE pg_temp.cmdm_sync_key k
               SET window_end = v_candidate
             WHERE k.window_end IS NULL
               AND EXISTS (SELECT FROM business."规模明细" f
                            WHERE f."月度" >= pg_catalog.date_trunc('month', v_candidate)::date
                              AND f."月度" <= v_candidate
                              AND f.company_id = k.company_id
                              AND f."计划代码" = k.plan_code
                              AND f."产品线代码" = k.product_line_code);
            EXIT WHEN NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_key k WHERE k.window_end IS NULL);
        END LOOP;
        UPDATE pg_temp.cmdm_sync_key k SET window_end = DATE '9999-12-31' WHERE k.window_end IS NULL;
    END IF;


    RETURN QUERY SELECT v_keys_seen, v_scope, v_changed, v_null_key, v_blank_key,
                        v_unknown_product_line, v_unknown_company;
END
$fn$;

COMMENT ON FUNCTION customer.sync_scope_keys(date, boolean, date) IS
    'Step 1 of the contract sync: the keys whose history may change, into pg_temp.cmdm_sync_key (docs/contract-sync.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.sync_snapshot_months.sql.j2",
        "kind": "function",
        "identity": "customer.sync_snapshot_months(date, date, date, integer[])",
        "triggers": [],
        "sha256": "46999e026dbf3dfe2198e4aea708206f577b470a1c97a1501d99f8925631ce47",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_snapshot_months.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_snapshot_months(p_month_end date, p_next date, p_changed_until date, p_reflagged_years integer[])
    RETURNS date[]
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: step 5 of customer.sync_contract_status: the snapshot months (month-ends,
 * ascending) the sync of p_month_end's month can have changed (docs/snapshots.md): this
 * month; the next loaded month p_next (presence compares with this one); the loaded
 * months whose states were recomputed, through p_changed_until (NULL: no version was
 * rewritten); the loaded months of the re-flagged years; and where a first appearance
 * moved to or away from this month, the other first appearance of that key, at each grain
 * first_appearance is evaluated at.
 *
 * Reads pg_temp.cmdm_sync_key (the keys in scope) and the history as written.
 */
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    RETURN ARRAY(
        SELECT DISTINCT d.month
          FROM (SELECT p_month_end AS month
                UNION ALL
                SELECT p_next
                UNION ALL
                SELECT l FROM customer.loaded_months(p_month_end + 1, p_changed_until) l
                 WHERE p_changed_until IS NOT NULL
                UNION ALL
                SELECT l FROM unnest(p_reflagged_years) y (status_year),
                       customer.loaded_months(pg_catalog.make_date(y.status_year, 1, 1),
                                              pg_catalog.make_date(y.status_year, 12, 1)) l
                UNION ALL
                -- first appearances at grain product_line: for each product_line key of a key
                -- whose presence here changed (it had a state here and no facts now, or
                -- facts now and no state before) and that has no version before this month:
                -- the first version of each of its contract keys, the first after this
                -- month, and the end of its suspended window
                SELECT x.month
                  FROM (SELECT DISTINCT k.company_id, k.product_line_code                          FROM pg_temp.cmdm_sync_key k
                         WHERE NOT k.appeared_before
                           AND k.present <> (k.covering_id IS NOT NULL)) g
                 CROSS JOIN LATERAL (
                       SELECT c.plan_code, min(c.valid_from) AS first_from,
                              min(c.valid_from) FILTER (WHERE c.valid_from > p_month_end) AS next_from
                         FROM customer.customer_plan_contract c
                        WHERE c.company_id = g.company_id AND c.product_line_code = g.product_line_code
                        GROUP BY c.product_line_code, c.plan_code
                       ) v
                 CROSS JOIN LATERAL (VALUES (v.first_from), (v.next_from)) x (month)
                 WHERE p_next IS NOT NULL  -- else no month after this one: nothing to find
                   AND NOT EXISTS (SELECT FROM customer.customer_plan_contract e
                                    WHERE e.company_id = g.company_id AND e.product_line_code = g.product_line_code AND e.valid_from < p_month_end)
                UNION ALL
                SELECT k.window_end
                  FROM pg_temp.cmdm_sync_key k
                 WHERE p_next IS NOT NULL
                   AND NOT k.appeared_before
                   AND k.present <> (k.covering_id IS NOT NULL)
                   AND NOT EXISTS (SELECT FROM customer.customer_plan_contract e
                                    WHERE e.company_id = k.company_id AND e.product_line_code = k.product_line_code AND e.valid_from < p_month_end)
                UNION ALL
                -- first appearances at grain plan: for each plan key of a key
                -- whose presence here changed (it had a state here and no facts now, or
                -- facts now and no state before) and that has no version before this month:
                -- the first version of each of its contract keys, the first after this
                -- month, and the end of its suspended window
                SELECT x.month
                  FROM (SELECT DISTINCT k.company_id, k.plan_code, k.product_line_code                          FROM pg_temp.cmdm_sync_key k
                         WHERE NOT k.appeared_before
                           AND k.present <> (k.covering_id IS NOT NULL)) g
                 CROSS JOIN LATERAL (
                       SELECT c.plan_code, min(c.valid_from) AS first_from,
                              min(c.valid_from) FILTER (WHERE c.valid_from > p_month_end) AS next_from
                         FROM customer.customer_plan_contract c
                        WHERE c.company_id = g.company_id AND c.plan_code = g.plan_code AND c.product_line_code = g.product_line_code
                        GROUP BY c.product_line_code, c.plan_code
                       ) v
                 CROSS JOIN LATERAL (VALUES (v.first_from), (v.next_from)) x (month)
                 WHERE p_next IS NOT NULL  -- else no month after this one: nothing to find
                   AND NOT EXISTS (SELECT FROM customer.customer_plan_contract e
                                    WHERE e.company_id = g.company_id AND e.plan_code = g.plan_code AND e.product_line_code = g.product_line_code AND e.valid_from < p_month_end)
                UNION ALL
                SELECT k.window_end
                  FROM pg_temp.cmdm_sync_key k
                 WHERE p_next IS NOT NULL
                   AND NOT k.appeared_before
                   AND k.present <> (k.covering_id IS NOT NULL)
                   AND NOT EXISTS (SELECT FROM customer.customer_plan_contract e
                                    WHERE e.company_id = k.company_id AND e.plan_code = k.plan_code AND e.product_line_code = k.product_line_code AND e.valid_from < p_month_end)
               ) d
         WHERE d.month IS NOT NULL AND d.month >= p_month_end AND d.month < DATE '9999-12-31'
         ORDER BY 1);
END
$fn$;

COMMENT ON FUNCTION customer.sync_snapshot_months(date, date, date, integer[]) IS
    'Step 5 of the contract sync: the snapshot months its change can affect (docs/snapshots.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/functions/customer.sync_write_versions.sql.j2",
        "kind": "function",
        "identity": "customer.sync_write_versions()",
        "triggers": [],
        "sha256": "18e9893ce282c3571b8a596a5dce47635b31341d1d7d06e8ef388ba1c0f4c762",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_write_versions.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_write_versions()
    RETURNS TABLE (keys_changed bigint, versions_opened bigint, versions_closed bigint, versions_removed bigint)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = auto
AS $fn$
/*
 * What: step 4 of customer.sync_contract_status: make the keys in scope have exactly the
 * versions of pg_temp.cmdm_sync_new, writing only the difference with their current ones
 * (pg_temp.cmdm_sync_old): versions no longer wanted are deleted, versions that keep
 * their start and state but end elsewhere get their valid_to moved (and keep their row:
 * contract_id, created_at), new versions are inserted. A key seen for the first time is
 * registered in customer.contract_key; a key left without versions leaves it.
 *
 * Why plan_cache_mode = auto here (the other steps force custom plans): a foreign-key
 * check is a query the server plans once per session; under force_custom_plan it would be
 * planned again for every row written (measured: ~80 µs a row, most of a write's cost).
 *
 * Why the deletes and valid_to moves join a scratch table (pg_temp.cmdm_sync_write, one
 * row per old version that goes or moves) instead of `contract_id = ANY (array of ids)`:
 * a row a concurrent transaction had written is re-checked under EvalPlanQual, and a
 * condition on a parameter array is then evaluated against the whole array for each such
 * row (issue 18: 64 s for 32,000 moves after a product-line rename). A join re-checks one
 * scratch row. (Since the rename takes the hook lock, no writer of these rows runs
 * beside a sync any more; the plan stays right if one ever does.)
 */
DECLARE
    v_changed bigint := 0;
    v_opened bigint := 0;
    v_closed bigint := 0;
    v_removed bigint := 0;
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_old (contract_id bigint, key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_new (key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    -- The old versions that change: no longer wanted (valid_to NULL: deleted), or wanted
    -- with the same start and state but another end (their valid_to moves, the row stays).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_write (contract_id bigint, key_no bigint, valid_to date)';
    PERFORM cmdm.scratch_table('cmdm_sync_write', 'contract_id bigint, key_no bigint, valid_to date');
    INSERT INTO pg_temp.cmdm_sync_write (contract_id, key_no, valid_to)
    SELECT o.contract_id, o.key_no, n.valid_to
      FROM pg_temp.cmdm_sync_old o
      LEFT JOIN pg_temp.cmdm_sync_new n
        ON n.key_no = o.key_no AND n.valid_from = o.valid_from
       AND (n.contract_status, n.status_year, n.is_strategic, n.is_existing) IS NOT DISTINCT FROM (o.contract_status, o.status_year, o.is_strategic, o.is_existing)
     WHERE n.key_no IS NULL OR n.valid_to <> o.valid_to;
    ANALYZE pg_temp.cmdm_sync_write;

    -- Deletes first, then valid_to moves (safe in any order once the deleted versions are
    -- gone), then inserts: never a transient overlap.
    DELETE FROM customer.customer_plan_contract c
     USING pg_temp.cmdm_sync_write w
     WHERE c.contract_id = w.contract_id AND w.valid_to IS NULL;
    GET DIAGNOSTICS v_removed = ROW_COUNT;

    UPDATE customer.customer_plan_contract c
       SET valid_to = w.valid_to
      FROM pg_temp.cmdm_sync_write w
     WHERE c.contract_id = w.contract_id AND w.valid_to IS NOT NULL;
    GET DIAGNOSTICS v_closed = ROW_COUNT;

    -- Keys that get versions and had none covering the month: their key_id, registered
    -- when the key is new (index probes, a few per new key).
    INSERT INTO customer.contract_key (company_id, plan_code, product_line_code)
    SELECT k.company_id, k.plan_code, k.product_line_code
      FROM pg_temp.cmdm_sync_key k
     WHERE k.key_id IS NULL
       AND EXISTS (SELECT FROM pg_temp.cmdm_sync_new n WHERE n.key_no = k.key_no)
    ON CONFLICT ON CONSTRAINT uq_contract_key DO NOTHING;
    UPDATE pg_temp.cmdm_sync_key k
       SET key_id = (SELECT ck.key_id FROM customer.contract_key ck
                      WHERE ck.company_id = k.company_id AND ck.plan_code = k.plan_code AND ck.product_line_code = k.product_line_code)
     WHERE k.key_id IS NULL;

    INSERT INTO customer.customer_plan_contract
           (key_id, company_id, plan_code, product_line_code, product_line_name, valid_from, valid_to,
            contract_status, status_year, is_strategic, is_existing)
    SELECT k.key_id, k.company_id, k.plan_code, k.product_line_code, pl."产品线", n.valid_from, n.valid_to,
           n.contract_status, n.status_year, n.is_strategic, n.is_existing
      FROM pg_temp.cmdm_sync_new n
      JOIN pg_temp.cmdm_sync_key k ON k.key_no = n.key_no
      JOIN mapping."产品线" pl ON pl."产品线代码" = k.product_line_code
     WHERE NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_old o
                        WHERE o.key_no = n.key_no AND o.valid_from = n.valid_from
                          AND (n.contract_status, n.status_year, n.is_strategic, n.is_existing) IS NOT DISTINCT FROM (o.contract_status, o.status_year, o.is_strategic, o.is_existing))
     -- in key order: each index page is then visited once, not once per row (January
     -- opens a version of every key)
     ORDER BY k.company_id, k.plan_code, k.product_line_code, n.valid_from;
    GET DIAGNOSTICS v_opened = ROW_COUNT;

    -- A key left without any version leaves the key registry (so that, as before there
    -- was one, a company or product line with no contracts can be deleted).
    IF v_removed > 0 THEN
        DELETE FROM customer.contract_key ck
         USING (SELECT DISTINCT k.key_id
                  FROM pg_temp.cmdm_sync_write w
                  JOIN pg_temp.cmdm_sync_key k ON k.key_no = w.key_no
                 WHERE w.valid_to IS NULL) g
         WHERE ck.key_id = g.key_id
           AND NOT EXISTS (SELECT FROM customer.customer_plan_contract c WHERE c.key_id = ck.key_id);
    END IF;

    -- keys whose versions were rewritten (inserted, moved or deleted)
    SELECT count(DISTINCT x.key_no) INTO v_changed
      FROM (SELECT w.key_no FROM pg_temp.cmdm_sync_write w
            UNION ALL
            SELECT n.key_no FROM pg_temp.cmdm_sync_new n
             WHERE NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_old o
                                WHERE o.key_no = n.key_no AND o.valid_from = n.valid_from
                                  AND (n.contract_status, n.status_year, n.is_strategic, n.is_existing) IS NOT DISTINCT FROM (o.contract_status, o.status_year, o.is_strategic, o.is_existing))) x;

    RETURN QUERY SELECT v_changed, v_opened, v_closed, v_removed;
END
$fn$;

COMMENT ON FUNCTION customer.sync_write_versions() IS
    'Step 4 of the contract sync: write the difference between the wanted and the current versions of the keys in scope (docs/contract-sync.md). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';
""",
    },
    {
        "template": "sql/triggers/business.facts__queue_hooks.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_facts__queue_hooks()",
        "triggers": [
            ["_200_post_etl_hooks_insert", 'business."规模明细"'],
            ["_200_post_etl_hooks_delete", 'business."规模明细"'],
            ["_200_post_etl_hooks_update_old", 'business."规模明细"'],
            ["_200_post_etl_hooks_update_new", 'business."规模明细"'],
        ],
        "sha256": "a2e81503e318dbbba396eed8c30d01aed2229f0c2b36c5fa4f6e19101060d8ac",
        "sql": """\
-- Generated by cmdm from sql/triggers/business.facts__queue_hooks.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_facts__queue_hooks()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * AFTER statement triggers on business."规模明细" (INSERT, UPDATE, DELETE): note the
 * months the statement changed in cmdm.hook_queue, once per month per transaction. The
 * queue's deferred trigger (cmdm.tg_hook_queue__run_at_commit) runs the hooks for them at
 * commit, so a load of 50 statements costs one run per month, not 50.
 * `SET cmdm.post_hooks = off` skips the queue (the ETL then CALLs
 * customer.run_post_etl_hooks): the months are recorded in cmdm.stale_change instead, until
 * a hook run of each month deletes them (`cmdm status`, `cmdm backfill --stale`). That row
 * carries this transaction's id, so recording it never waits for another load.
 * TG_ARGV[0]: the hook domain. Every trigger names its one transition table changed_rows
 * (an UPDATE has two triggers, one for the old rows and one for the new), so one query
 * serves them all.
 */
BEGIN
    IF NOT cmdm.post_hooks_enabled() THEN
        INSERT INTO cmdm.stale_change (domain, kind, period, reason)
        SELECT DISTINCT TG_ARGV[0], 'facts', pg_catalog.date_trunc('month', c."月度")::date, 'hooks_off'
          FROM changed_rows c
         WHERE c."月度" IS NOT NULL
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END IF;
    INSERT INTO cmdm.hook_queue (domain, kind, period)
    SELECT DISTINCT TG_ARGV[0], 'facts', pg_catalog.date_trunc('month', c."月度")::date
      FROM changed_rows c
     WHERE c."月度" IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_facts__queue_hooks() IS
    'Queues the months a statement changed in the facts for the commit-time post-ETL hooks. rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_insert
    AFTER INSERT ON business."规模明细"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_facts__queue_hooks('annuity_performance');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_delete
    AFTER DELETE ON business."规模明细"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_facts__queue_hooks('annuity_performance');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_update_old
    AFTER UPDATE ON business."规模明细"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_facts__queue_hooks('annuity_performance');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_update_new
    AFTER UPDATE ON business."规模明细"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_facts__queue_hooks('annuity_performance');
""",
    },
    {
        "template": "sql/triggers/cmdm.hook_queue__run_at_commit.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_hook_queue__run_at_commit()",
        "triggers": [["_100_run_at_commit", "cmdm.hook_queue"]],
        "sha256": "f94f88e273c425583af213bd642aab2b3eb7f0a5e8b1b49ffe11018874e54b05",
        "sql": """\
-- Generated by cmdm from sql/triggers/cmdm.hook_queue__run_at_commit.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_hook_queue__run_at_commit()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Deferred constraint trigger on cmdm.hook_queue: at commit, run the post-ETL hooks for
 * everything the transaction queued. The first queued row to fire takes the whole queue
 * of its transaction (every month and events date, per domain: cmdm.run_hooks syncs the
 * months in ascending order, then refreshes each dependent snapshot month once); the
 * rows after it find themselves gone and return. An error aborts the commit with the
 * step, period and cause: the load and everything derived from it roll back together.
 * (SET CONSTRAINTS ... IMMEDIATE runs it at the end of each statement instead.)
 */
DECLARE
    v_domain text;
    v_periods date[];
    v_events date[];
BEGIN
    IF NOT EXISTS (SELECT FROM cmdm.hook_queue q
                    WHERE q.txid = NEW.txid AND q.domain = NEW.domain
                      AND q.kind = NEW.kind AND q.period = NEW.period) THEN
        RETURN NULL;
    END IF;
    FOR v_domain IN
        SELECT DISTINCT q.domain FROM cmdm.hook_queue q
         WHERE q.txid = NEW.txid ORDER BY q.domain
    LOOP
        WITH taken AS (
            DELETE FROM cmdm.hook_queue q
             WHERE q.txid = NEW.txid AND q.domain = v_domain
            RETURNING q.kind, q.period
        )
        SELECT coalesce(pg_catalog.array_agg(t.period) FILTER (WHERE t.kind = 'facts'), '{}'),
               coalesce(pg_catalog.array_agg(t.period) FILTER (WHERE t.kind = 'event'), '{}')
          INTO v_periods, v_events
          FROM taken t;
        PERFORM FROM cmdm.run_hooks(v_domain, v_periods, v_events, 'trigger');
    END LOOP;
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_hook_queue__run_at_commit() IS
    'Runs the post-ETL hooks once per queued month at commit (deferred constraint trigger). rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';

DROP TRIGGER IF EXISTS _100_run_at_commit ON cmdm.hook_queue;
CREATE CONSTRAINT TRIGGER _100_run_at_commit
    AFTER INSERT ON cmdm.hook_queue
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    EXECUTE FUNCTION cmdm.tg_hook_queue__run_at_commit();
""",
    },
    {
        "template": "sql/triggers/customer.events__queue_hooks.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_events__queue_hooks()",
        "triggers": [
            ["_200_post_etl_hooks_insert", 'customer."当年中标"'],
            ["_200_post_etl_hooks_delete", 'customer."当年中标"'],
            ["_200_post_etl_hooks_update_old", 'customer."当年中标"'],
            ["_200_post_etl_hooks_update_new", 'customer."当年中标"'],
            ["_200_post_etl_hooks_insert", 'customer."当年流失"'],
            ["_200_post_etl_hooks_delete", 'customer."当年流失"'],
            ["_200_post_etl_hooks_update_old", 'customer."当年流失"'],
            ["_200_post_etl_hooks_update_new", 'customer."当年流失"'],
        ],
        "sha256": "4328072d94923b67ed4fec8c4ddf50b7acaaa8fca5b0dfd5df498b3c25e2f3c0",
        "sql": """\
-- Generated by cmdm from sql/triggers/customer.events__queue_hooks.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_events__queue_hooks()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * AFTER statement triggers on the events tables of rules/ (customer.当年中标, customer.当年流失):
 * note the dates of the events rows a statement added, removed or re-dated in
 * cmdm.hook_queue. At commit the snapshot months that see those dates are refreshed
 * (customer.event_dependent_months); contract history does not read events.
 * `SET cmdm.post_hooks = off` skips the queue: the dates are recorded in
 * cmdm.stale_change instead, until a hook run given them deletes them (`cmdm backfill
 * --stale`). TG_ARGV[0]: the hook domain; TG_ARGV[1]: the table's date column (tables may
 * name it differently, hence the dynamic statements).
 */
BEGIN
    IF NOT cmdm.post_hooks_enabled() THEN
        EXECUTE pg_catalog.format(
            'INSERT INTO cmdm.stale_change (domain, kind, period, reason) '
            'SELECT DISTINCT $1, ''event'', c.%1$I, ''hooks_off'' FROM changed_rows c WHERE c.%1$I IS NOT NULL '
            'ON CONFLICT DO NOTHING', TG_ARGV[1])
        USING TG_ARGV[0];
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format(
        'INSERT INTO cmdm.hook_queue (domain, kind, period) '
        'SELECT DISTINCT $1, ''event'', c.%1$I FROM changed_rows c WHERE c.%1$I IS NOT NULL '
        'ON CONFLICT DO NOTHING', TG_ARGV[1])
    USING TG_ARGV[0];
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_events__queue_hooks() IS
    'Queues the dates of changed events rows for the commit-time snapshot refresh. rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_insert
    AFTER INSERT ON customer."当年中标"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_delete
    AFTER DELETE ON customer."当年中标"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_update_old
    AFTER UPDATE ON customer."当年中标"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_update_new
    AFTER UPDATE ON customer."当年中标"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_insert
    AFTER INSERT ON customer."当年流失"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_delete
    AFTER DELETE ON customer."当年流失"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_update_old
    AFTER UPDATE ON customer."当年流失"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_update_new
    AFTER UPDATE ON customer."当年流失"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');
""",
    },
    {
        "template": "sql/triggers/customer.inputs__queue_truncate.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_inputs__queue_truncate()",
        "triggers": [
            ["_200_post_etl_hooks_truncate", 'business."规模明细"'],
            ["_200_post_etl_hooks_truncate", 'customer."当年中标"'],
            ["_200_post_etl_hooks_truncate", 'customer."当年流失"'],
        ],
        "sha256": "7e4613df649a29d1d5276e4cea20e2222a7d15e16bb129e1b19417408600fe50",
        "sql": """\
-- Generated by cmdm from sql/triggers/customer.inputs__queue_truncate.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_inputs__queue_truncate()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * BEFORE TRUNCATE statement triggers on the facts table and the events tables: a TRUNCATE
 * has no transition table, so before the rows go, queue what they covered, for the
 * commit-time hooks: every loaded month (the facts: customer.loaded_months, one index
 * probe per month) or every events date. An ETL that truncates and reloads in one
 * transaction then gets exactly the months that changed or vanished synced, once each.
 * `SET cmdm.post_hooks = off` skips the queue: the same months or dates are recorded in
 * cmdm.stale_change instead (`cmdm backfill --stale`). TG_ARGV: the hook domain, the kind
 * ('facts' or 'event') and, for events, the date column.
 */
BEGIN
    IF NOT cmdm.post_hooks_enabled() THEN
        IF TG_ARGV[1] = 'facts' THEN
            INSERT INTO cmdm.stale_change (domain, kind, period, reason)
            SELECT TG_ARGV[0], 'facts', pg_catalog.date_trunc('month', l.l)::date, 'hooks_off'
              FROM customer.loaded_months() l(l)
            ON CONFLICT DO NOTHING;
        ELSE
            EXECUTE pg_catalog.format(
                'INSERT INTO cmdm.stale_change (domain, kind, period, reason) '
                'SELECT DISTINCT $1, ''event'', e.%1$I, ''hooks_off'' FROM %2$I.%3$I e WHERE e.%1$I IS NOT NULL '
                'ON CONFLICT DO NOTHING', TG_ARGV[2], TG_TABLE_SCHEMA, TG_TABLE_NAME)
            USING TG_ARGV[0];
        END IF;
        RETURN NULL;
    END IF;
    IF TG_ARGV[1] = 'facts' THEN
        INSERT INTO cmdm.hook_queue (domain, kind, period)
        SELECT TG_ARGV[0], 'facts', pg_catalog.date_trunc('month', l.l)::date
          FROM customer.loaded_months() l(l)
        ON CONFLICT DO NOTHING;
    ELSE
        EXECUTE pg_catalog.format(
            'INSERT INTO cmdm.hook_queue (domain, kind, period) '
            'SELECT DISTINCT $1, ''event'', e.%1$I FROM %2$I.%3$I e WHERE e.%1$I IS NOT NULL '
            'ON CONFLICT DO NOTHING', TG_ARGV[2], TG_TABLE_SCHEMA, TG_TABLE_NAME)
        USING TG_ARGV[0];
    END IF;
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_inputs__queue_truncate() IS
    'Queues every loaded month (facts) or events date before a TRUNCATE, for the commit-time post-ETL hooks. rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_truncate
    BEFORE TRUNCATE ON business."规模明细"
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_inputs__queue_truncate('annuity_performance', 'facts');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_truncate
    BEFORE TRUNCATE ON customer."当年中标"
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_inputs__queue_truncate('annuity_performance', 'event', '上报月份');

CREATE OR REPLACE TRIGGER _200_post_etl_hooks_truncate
    BEFORE TRUNCATE ON customer."当年流失"
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_inputs__queue_truncate('annuity_performance', 'event', '上报月份');
""",
    },
    {
        "template": "sql/triggers/mapping.product_line__propagate_name.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_product_line__propagate_name()",
        "triggers": [["_100_propagate_name", 'mapping."产品线"']],
        "sha256": "75443078f9b4b61865ca193d39282c467cf23958b07d3a9f8821bd6a81edb9ec",
        "sql": """\
-- Generated by cmdm from sql/triggers/mapping.product_line__propagate_name.sql.j2 and rules/ (sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_product_line__propagate_name()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * AFTER UPDATE statement trigger on mapping."产品线": a renamed product line's name is
 * copied into the redundant product_line_name columns of the output tables, in place.
 * A name is not tracked state, so no version opens. One UPDATE per table for the whole
 * statement (transition tables), touching only rows of renamed product lines.
 *
 * Concurrency: a rename takes the hook lock contract_sync (cmdm.take_hook_lock) before it
 * writes, like every writer of the outputs, and holds it to commit. A load's hooks that
 * run meanwhile wait for the rename to commit and then read the new name; a rename that
 * comes while a load's hooks are uncommitted waits for them and then renames the rows
 * they wrote too (before, those rows kept the old name for good: issue 18).
 */
BEGIN
    IF NOT EXISTS (SELECT FROM renamed_old o
                     JOIN renamed_new n ON n."产品线代码" = o."产品线代码"
                    WHERE o."产品线" IS DISTINCT FROM n."产品线") THEN
        RETURN NULL;  -- no name changed: nothing to propagate, no lock to take
    END IF;
    PERFORM cmdm.take_hook_lock('contract_sync');

    UPDATE customer.customer_plan_contract c
       SET product_line_name = n."产品线"
      FROM renamed_old o
      JOIN renamed_new n ON n."产品线代码" = o."产品线代码"
     WHERE c.product_line_code = n."产品线代码"
       AND o."产品线" IS DISTINCT FROM n."产品线"
       AND c.product_line_name IS DISTINCT FROM n."产品线";

    UPDATE customer.fct_customer_business_monthly_status b
       SET product_line_name = n."产品线"
      FROM renamed_old o
      JOIN renamed_new n ON n."产品线代码" = o."产品线代码"
     WHERE b.product_line_code = n."产品线代码"
       AND o."产品线" IS DISTINCT FROM n."产品线"
       AND b.product_line_name IS DISTINCT FROM n."产品线";

    UPDATE customer.fct_customer_plan_monthly_status p
       SET product_line_name = n."产品线"
      FROM renamed_old o
      JOIN renamed_new n ON n."产品线代码" = o."产品线代码"
     WHERE p.product_line_code = n."产品线代码"
       AND o."产品线" IS DISTINCT FROM n."产品线"
       AND p.product_line_name IS DISTINCT FROM n."产品线";
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_product_line__propagate_name() IS
    'Copies renamed product line names into the output tables without opening versions. rules sha256 d02ef36ce394c32fc700bdd9c9d9794b4092f63b23f1451f2da23328b36e589d';

CREATE OR REPLACE TRIGGER _100_propagate_name
    AFTER UPDATE ON mapping."产品线"
    REFERENCING OLD TABLE AS renamed_old NEW TABLE AS renamed_new
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_product_line__propagate_name();
""",
    },
]

#: What the previous rules revision created: downgrade restores exactly this.
PREVIOUS_OBJECTS = [
    {
        "template": "sql/functions/cmdm.post_hooks_enabled.sql.j2",
        "kind": "function",
        "identity": "cmdm.post_hooks_enabled()",
        "triggers": [],
        "sha256": "0b58c2b5c5e6a2c31232a927e258cca6eac4ad287d378416c7a2f97cc58ccfd2",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.post_hooks_enabled.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.post_hooks_enabled()
    RETURNS boolean
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Does this session (or transaction) want the post-ETL hooks run by the triggers? The
 * ETL's "no post hooks" switch is `SET cmdm.post_hooks = off` (SET LOCAL for one
 * transaction); unset, on, true, yes or 1 mean run them. Anything else is refused rather
 * than guessed: a typo must not silently skip, or silently run, an hour of work.
 */
DECLARE
    v_setting text := pg_catalog.lower(pg_catalog.btrim(
        coalesce(pg_catalog.current_setting('cmdm.post_hooks', true), '')));
BEGIN
    IF v_setting IN ('', 'on', 'true', 'yes', '1') THEN
        RETURN true;
    ELSIF v_setting IN ('off', 'false', 'no', '0') THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'invalid_parameter_value',
        MESSAGE = pg_catalog.format('cmdm.post_hooks is %L, which is neither on nor off',
                                    pg_catalog.current_setting('cmdm.post_hooks', true)),
        HINT = 'SET cmdm.post_hooks = off skips the post-ETL hooks (SET LOCAL: this transaction only); RESET cmdm.post_hooks runs them again.';
END
$fn$;

COMMENT ON FUNCTION cmdm.post_hooks_enabled() IS
    'Reads the cmdm.post_hooks setting (the ETL''s no-post-hooks switch): true unless off. rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/cmdm.run_hooks.sql.j2",
        "kind": "function",
        "identity": "cmdm.run_hooks(text, date[], date[], text, daterange, bigint)",
        "triggers": [],
        "sha256": "837e8fcd8428aa8f8c8df76abf1acd0ba2b90289e060d2cabed7de7502f93dc1",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.run_hooks.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.run_hooks(p_domain text, p_periods date[], p_event_dates date[] DEFAULT '{}', p_trigger_kind text DEFAULT 'call', p_defer daterange DEFAULT NULL, p_backfill_id bigint DEFAULT NULL)
    RETURNS TABLE (hook_run_id bigint, period date, step text, outcome text, counts jsonb, rejects integer, duration interval)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * What: run the post-ETL steps registered for p_domain in cmdm.post_etl_hook, in
 * step_order, for the months whose facts changed (p_periods) and the events rows whose
 * dates are p_event_dates; log each (period, step) in cmdm.hook_run (period: the
 * month-end, as everywhere in the outputs) and return those rows.
 *   contract_sync     customer.sync_contract_status of every period, in ascending order
 *                     (a later month's sync reads the history the earlier ones repaired);
 *   snapshot_refresh  customer.refresh_monthly_snapshot of every month that depends on
 *                     the change: the syncs' snapshot_months, the periods themselves, and
 *                     customer.event_dependent_months of every events date; each once.
 * Months inside p_defer are not refreshed: a backfill passes the months its own later
 * steps will refresh anyway (matched against first days of months).
 *
 * Why one function: CALL customer.run_post_etl_hooks (one period), the commit-time trigger
 * (every month a transaction changed) and the CLI (backfill, rebuild) must do exactly the
 * same work, so they all come here.
 *
 * Failure: any step's error aborts the caller's transaction (nothing half-written), its
 * SQLSTATE kept, its message prefixed with the domain, step and period, which DETAIL
 * repeats as a JSON object with the cause's message and detail. One handler for the whole
 * run: a subtransaction per step and month would cost every concurrent session's
 * snapshots once a rebuild's run passes 64 of them. A disabled domain
 * is an error when asked for explicitly and a logged skip when reached by the trigger.
 *
 * Concurrency: every run holds the sync lock exclusively until commit, taken here before
 * anything is decided, so concurrent hook runs serialize at that one lock and never deadlock
 * over month locks (refresh_monthly_snapshot takes the sync lock, shared, before its
 * month's lock). READ COMMITTED only: each statement must see the history a concurrent
 * hook run committed while this one waited.
 */
DECLARE
    v_enabled boolean;
    v_periods date[];
    v_months date[] := '{}'::date[];
    v_month date;
    v_step record;
    v_sync record;
    v_refresh record;
    v_started timestamptz;
    v_counts jsonb;
    v_rejects integer;
    v_outcome text;
    v_state text;
    v_message text;
    v_detail text;
    v_hint text;
    v_rules_sha256 text;
    v_failed_step text;         -- the step and month running when an error is raised
    v_failed_period date;
BEGIN
    IF p_trigger_kind IS NULL OR p_trigger_kind NOT IN ('call', 'trigger', 'cli') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('trigger kind %L is not call, trigger or cli', p_trigger_kind),
            HINT = 'ETL code calls CALL customer.run_post_etl_hooks(domain, period).';
    END IF;
    SELECT d.enabled INTO v_enabled FROM cmdm.hook_domain d WHERE d.domain = p_domain;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM003',
            MESSAGE = pg_catalog.format('unknown post-ETL hook domain %L', p_domain),
            HINT = pg_catalog.format('Known domains: %s.',
                                     (SELECT pg_catalog.string_agg(d.domain, ', ' ORDER BY d.domain)
                                        FROM cmdm.hook_domain d));
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM005',
            MESSAGE = pg_catalog.format('post-ETL hooks need READ COMMITTED, not %s',
                                        pg_catalog.upper(pg_catalog.current_setting('transaction_isolation'))),
            HINT = 'Load in a READ COMMITTED transaction, or SET LOCAL cmdm.post_hooks = off and CALL customer.run_post_etl_hooks from a READ COMMITTED one: a hook must see the history concurrent hook runs committed.';
    END IF;

    -- The months, each once, ascending. (A month out of range fails in its step, which
    -- names it.)
    IF pg_catalog.array_position(p_periods, NULL) IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass the months whose facts changed, e.g. ARRAY[''2026-01-31''::date].';
    END IF;
    SELECT coalesce(pg_catalog.array_agg(DISTINCT pg_catalog.date_trunc('month', p.p)::date
                                         ORDER BY pg_catalog.date_trunc('month', p.p)::date), '{}')
      INTO v_periods
      FROM pg_catalog.unnest(coalesce(p_periods, '{}')) p(p);

    -- Every hook run takes the sync lock exclusively, before it reads anything it decides
    -- on (even an events-only run: the months event_dependent_months finds must include a
    -- month a concurrent hook run is committing), and holds it to commit.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('cmdm:contract_sync'));

    -- The deployed rules the steps run (logged with each run).
    SELECT d.sha256 INTO v_rules_sha256
      FROM cmdm.rule_deployment d ORDER BY d.deployment_id DESC LIMIT 1;

    -- What this run covers no longer needs the commit-time run (a CALL after a load).
    DELETE FROM cmdm.hook_queue q
     WHERE q.txid = pg_catalog.pg_current_xact_id()
       AND q.domain = p_domain
       AND ((q.kind = 'facts' AND q.period = ANY (v_periods))
            OR (q.kind = 'event' AND q.period = ANY (coalesce(p_event_dates, '{}'))));

    IF NOT v_enabled THEN
        IF p_trigger_kind <> 'trigger' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'CM004',
                MESSAGE = pg_catalog.format('post-ETL hook domain %L is disabled', p_domain),
                HINT = pg_catalog.format('Enable it with: cmdm hooks enable %s', p_domain);
        END IF;
        -- A load while the domain is off: say which months were left behind.
        RETURN QUERY
        INSERT INTO cmdm.hook_run AS r (domain, period, step, trigger_kind, duration, outcome,
                                        rules_sha256, error, backfill_id)
        SELECT DISTINCT p_domain, (pg_catalog.date_trunc('month', s.s) + INTERVAL '1 month - 1 day')::date,
               'all', p_trigger_kind,
               INTERVAL '0', 'skipped', v_rules_sha256,
               pg_catalog.format('domain %s is disabled', p_domain), p_backfill_id
          FROM (SELECT pg_catalog.unnest(v_periods)
                UNION
                SELECT pg_catalog.unnest(coalesce(p_event_dates, '{}'))) s(s)
         WHERE s.s IS NOT NULL
        RETURNING r.hook_run_id, r.period, r.step, r.outcome, r.counts, r.rejects, r.duration;
        RETURN;
    END IF;

    -- One error handler for the whole run (one subtransaction, not one per step and
    -- month): the failing step and month are known from v_failed_step and v_failed_period.
    BEGIN
        FOR v_step IN
            SELECT s.step, s.enabled FROM cmdm.post_etl_hook s
             WHERE s.domain = p_domain
             ORDER BY s.step_order
        LOOP
            IF v_step.step NOT IN ('contract_sync', 'snapshot_refresh') THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'CM006',
                    MESSAGE = pg_catalog.format('post-ETL hook domain %s has the unknown step %L',
                                                p_domain, v_step.step),
                    HINT = 'Steps are contract_sync and snapshot_refresh (cmdm.post_etl_hook).';
            END IF;

            IF v_step.step = 'contract_sync' THEN
                FOREACH v_month IN ARRAY v_periods LOOP
                    v_started := pg_catalog.clock_timestamp();
                    IF v_step.enabled THEN
                        v_failed_step := v_step.step;
                        v_failed_period := v_month;
                        SELECT * INTO STRICT v_sync FROM customer.sync_contract_status(v_month);
                        v_months := v_months || v_sync.snapshot_months;
                        v_counts := pg_catalog.to_jsonb(v_sync) - 'period';
                        v_rejects := v_sync.rejected_null_key + v_sync.rejected_unknown_product_line
                                     + v_sync.rejected_unknown_company;
                        v_outcome := 'succeeded';
                    ELSE
                        v_counts := '{}';
                        v_rejects := 0;
                        v_outcome := 'skipped';
                    END IF;
                    RETURN QUERY
                    INSERT INTO cmdm.hook_run AS r (domain, period, step, trigger_kind, started_at,
                                                    duration, outcome, counts, rejects, rules_sha256,
                                                    error, backfill_id)
                    VALUES (p_domain, (v_month + INTERVAL '1 month - 1 day')::date, v_step.step, p_trigger_kind, v_started,
                            pg_catalog.clock_timestamp() - v_started, v_outcome, v_counts, v_rejects,
                            v_rules_sha256,
                            CASE WHEN v_outcome = 'skipped' THEN 'step disabled' END, p_backfill_id)
                    RETURNING r.hook_run_id, r.period, r.step, r.outcome, r.counts, r.rejects, r.duration;
                END LOOP;
            ELSE
                -- Every month depending on the change, once, ascending.
                SELECT coalesce(pg_catalog.array_agg(DISTINCT m.m ORDER BY m.m), '{}') INTO v_months
                  FROM (SELECT pg_catalog.date_trunc('month', x.x)::date
                          FROM pg_catalog.unnest(v_months || v_periods) x(x)
                        UNION ALL
                        SELECT pg_catalog.date_trunc('month', e.month)::date
                          FROM pg_catalog.unnest(coalesce(p_event_dates, '{}')) d(d),
                               customer.event_dependent_months(d.d) e) m(m)
                 WHERE m.m IS NOT NULL
                   AND NOT coalesce(p_defer @> m.m, false);
                FOREACH v_month IN ARRAY v_months LOOP
                    v_started := pg_catalog.clock_timestamp();
                    IF v_step.enabled THEN
                        v_failed_step := v_step.step;
                        v_failed_period := v_month;
                        SELECT * INTO STRICT v_refresh FROM customer.refresh_monthly_snapshot(v_month);
                        v_counts := pg_catalog.to_jsonb(v_refresh) - 'snapshot_month';
                        v_outcome := 'succeeded';
                    ELSE
                        v_counts := '{}';
                        v_outcome := 'skipped';
                    END IF;
                    RETURN QUERY
                    INSERT INTO cmdm.hook_run AS r (domain, period, step, trigger_kind, started_at,
                                                    duration, outcome, counts, rejects, rules_sha256,
                                                    error, backfill_id)
                    VALUES (p_domain, (v_month + INTERVAL '1 month - 1 day')::date, v_step.step, p_trigger_kind, v_started,
                            pg_catalog.clock_timestamp() - v_started, v_outcome, v_counts, 0,
                            v_rules_sha256,
                            CASE WHEN v_outcome = 'skipped' THEN 'step disabled' END, p_backfill_id)
                    RETURNING r.hook_run_id, r.period, r.step, r.outcome, r.counts, r.rejects, r.duration;
                END LOOP;
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
        IF v_failed_step IS NULL THEN
            RAISE;  -- before any step ran: the error says enough
        END IF;
        -- The message names the step and month for people; DETAIL carries the same as a
        -- JSON object for programs (cmdm_admin.hooks reads it), with the cause's own detail.
        RAISE EXCEPTION USING
            ERRCODE = v_state,
            MESSAGE = pg_catalog.format('post-ETL hook %s: step %s for period %s failed: %s',
                                        p_domain, v_failed_step,
                                        pg_catalog.to_char(v_failed_period, 'YYYY-MM'), v_message),
            DETAIL = pg_catalog.jsonb_build_object(
                         'domain', p_domain, 'step', v_failed_step,
                         'period', pg_catalog.to_char(v_failed_period, 'YYYY-MM'),
                         'message', v_message, 'detail', nullif(v_detail, ''))::text,
            HINT = coalesce(nullif(v_hint, ''), 'Nothing was written: the transaction is rolled back. Fix the cause and load again, or run the hooks for the period with CALL customer.run_post_etl_hooks.');
    END;
END
$fn$;

COMMENT ON FUNCTION cmdm.run_hooks(text, date[], date[], text, daterange, bigint) IS
    'Runs and logs the post-ETL steps of a domain for changed months and events dates (docs/hooks.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/cmdm.scratch_table.sql.j2",
        "kind": "function",
        "identity": "cmdm.scratch_table(text, text)",
        "triggers": [],
        "sha256": "fca469b031016b70f702d0e78ecc89040bbe67f1b992526f9da6d54fac51b736",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.scratch_table.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.scratch_table(p_name text, p_columns text)
    RETURNS void
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * What: an empty scratch table pg_temp.<p_name> (<p_columns>) for the calling routine:
 * created on the first call in a transaction (ON COMMIT DROP), emptied on the next.
 *
 * Why a routine: every step of the hooks keeps its intermediate sets in such tables; one
 * guard here instead of a copy in each step. pg_temp is the caller's schema: a table of
 * that name the caller created (with a trigger of its own on it) would run the caller's
 * code as the owner of our routines, so one not owned by that owner is refused, never
 * reused. Names and column lists come from the templates, never from users.
 */
DECLARE
    v_table regclass := pg_catalog.to_regclass(pg_catalog.format('pg_temp.%I', p_name));
BEGIN
    IF v_table IS NULL THEN
        EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I (%s) ON COMMIT DROP', p_name, p_columns);
    ELSIF NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                       WHERE c.oid = v_table
                         AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r
                                            WHERE r.rolname = current_user)) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('the temporary table pg_temp.%I belongs to another role', p_name),
            HINT = 'cmdm keeps its scratch tables in pg_temp under that name: drop yours, or use another name.';
    ELSE
        EXECUTE pg_catalog.format('TRUNCATE pg_temp.%I', p_name);
    END IF;
END
$fn$;

COMMENT ON FUNCTION cmdm.scratch_table(text, text) IS
    'An empty pg_temp scratch table for one step of a hook (created once a transaction, emptied after). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/cmdm.set_hook_domain.sql.j2",
        "kind": "function",
        "identity": "cmdm.set_hook_domain(text, boolean)",
        "triggers": [],
        "sha256": "eaf93c5f09f48af08a7afb5c918837e977e5451946be13f2d658611204c0841a",
        "sql": """\
-- Generated by cmdm from sql/functions/cmdm.set_hook_domain.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.set_hook_domain(p_domain text, p_enabled boolean)
    RETURNS SETOF cmdm.hook_domain
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Turn a post-ETL hook domain on or off persistently (`cmdm hooks enable|disable`). While
 * off, loads still commit; the trigger logs each month it skipped in cmdm.hook_run, so
 * the months to backfill afterwards are known.
 */
BEGIN
    IF p_enabled IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'enabled is NULL',
            HINT = 'Pass true to enable the domain, false to disable it.';
    END IF;
    RETURN QUERY
    UPDATE cmdm.hook_domain d
       SET enabled = p_enabled, changed_at = pg_catalog.now(), changed_by = session_user
     WHERE d.domain = p_domain
    RETURNING d.*;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM003',
            MESSAGE = pg_catalog.format('unknown post-ETL hook domain %L', p_domain),
            HINT = pg_catalog.format('Known domains: %s.',
                                     (SELECT pg_catalog.string_agg(d.domain, ', ' ORDER BY d.domain)
                                        FROM cmdm.hook_domain d));
    END IF;
END
$fn$;

COMMENT ON FUNCTION cmdm.set_hook_domain(text, boolean) IS
    'Enables or disables a post-ETL hook domain persistently. rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.check_annual_statuses.sql.j2",
        "kind": "function",
        "identity": "customer.check_annual_statuses(integer[])",
        "triggers": [],
        "sha256": "af9a3621e1ae9124c0844acca6139a9b46e78ffe57ac7c54bbf6c2ecb40632f1",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.check_annual_statuses.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.check_annual_statuses(p_years integer[])
    RETURNS TABLE (table_name text, difference text, decision jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: compare the stored decisions of the years p_years (customer.annual_reference and
 * the customer.annual_*_status tables) with what their reference months' facts decide now
 * (customer.compute_annual_statuses), both ways: one row per decision row that differs,
 * 'missing' (expected, not stored) or 'unexpected' (stored, not expected), as jsonb.
 *
 * Writes only scratch tables of this transaction; takes no lock beyond reading.
 */
BEGIN
    PERFORM customer.compute_annual_statuses(p_years);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_reference (status_year integer, reference_month date)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_company (status_year integer, company_id text, evidence jsonb, is_strategic boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_product_line (status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean)';
    RETURN QUERY
    WITH expected AS (
        SELECT n.status_year, n.reference_month FROM pg_temp.cmdm_annual_reference n
    ), stored AS (
        SELECT r.status_year, r.reference_month FROM customer.annual_reference r
         WHERE r.status_year = ANY (p_years)
    )
    SELECT 'customer.annual_reference', 'missing', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM stored) x
    UNION ALL
    SELECT 'customer.annual_reference', 'unexpected', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM expected) x;

    RETURN QUERY
    WITH expected AS (
        SELECT n.status_year, n.company_id, n.evidence, n.is_strategic
          FROM pg_temp.cmdm_annual_company n
    ), stored AS (
        SELECT a.status_year, a.company_id::text, a.evidence, a.is_strategic
          FROM customer.annual_company_status a
         WHERE a.status_year = ANY (p_years)
    )
    SELECT 'customer.annual_company_status'::text::text, 'missing', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM stored) x
    UNION ALL
    SELECT 'customer.annual_company_status'::text::text, 'unexpected', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM expected) x;

    RETURN QUERY
    WITH expected AS (
        SELECT n.status_year, n.company_id, n.product_line_code, n.evidence, n.is_existing
          FROM pg_temp.cmdm_annual_product_line n
    ), stored AS (
        SELECT a.status_year, a.company_id::text, a.product_line_code::text, a.evidence, a.is_existing
          FROM customer.annual_product_line_status a
         WHERE a.status_year = ANY (p_years)
    )
    SELECT 'customer.annual_product_line_status'::text::text, 'missing', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM stored) x
    UNION ALL
    SELECT 'customer.annual_product_line_status'::text::text, 'unexpected', pg_catalog.to_jsonb(x)
      FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM expected) x;
END
$fn$;

COMMENT ON FUNCTION customer.check_annual_statuses(integer[]) IS
    'Differences between the stored annual decisions of the given years and what their reference months decide now (cmdm check). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.check_contract_history.sql.j2",
        "kind": "function",
        "identity": "customer.check_contract_history(date, date)",
        "triggers": [],
        "sha256": "765ff7b18cf96ff559aa20084f330ed6623cba6b3d8036b06283f66df3921c3a",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.check_contract_history.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.check_contract_history(p_from date, p_to date)
    RETURNS TABLE (difference text, version jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: recompute the contract history of the months p_from..p_to from the facts alone
 * (DESIGN §4) and compare it with customer.customer_plan_contract, both ways. Returns one
 * row per version that differs: 'missing' (expected, not stored) or 'unexpected' (stored,
 * not expected), the version as jsonb. No rows: the stored history is right there.
 *
 * How: the window runs from the last loaded month before p_from (so a version boundary at
 * p_from's month is checked too) to the first loaded month after p_to. Each key's state at
 * each loaded month of the window is derived from that month's facts (status rule,
 * on_missing = suspend, the annual statuses its year's reference month decides now,
 * computed afresh by customer.compute_annual_statuses), consecutive equal states are
 * merged, and both sides are clipped to the window: a version reaching past it is compared
 * by its part inside. This is a second derivation of the history, independent of the
 * incremental sync it checks: the same definition, written as a whole-range statement.
 *
 * Writes only scratch tables of this transaction; takes no lock beyond reading.
 * Cost: the facts of the window's months, once, plus the keys seen in any earlier month (one
 * pass over the facts before the window: under suspend a key seen once has a state forever).
 */
DECLARE
    v_from_start date;
    v_to_next date;
    v_lo_start date;            -- first day of the window's first loaded month
    v_lo_end date;              -- its month-end: versions are compared from there
    v_hi date;                  -- month-end of the first loaded month after p_to (or the end of time)
BEGIN
    IF p_from IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_from < DATE '1900-01-01' OR p_from >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_from),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    IF p_to IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_to < DATE '1900-01-01' OR p_to >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_to),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_from_start := pg_catalog.date_trunc('month', p_from)::date;
    v_to_next := (pg_catalog.date_trunc('month', p_to) + INTERVAL '1 month')::date;
    IF v_to_next <= v_from_start THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('the range %s..%s is empty', pg_catalog.to_char(p_from, 'YYYY-MM'),
                                        pg_catalog.to_char(p_to, 'YYYY-MM')),
            HINT = 'Give the first month, then the last.';
    END IF;
    v_lo_start := coalesce(
        (SELECT pg_catalog.date_trunc('month', f."月度")::date FROM business."规模明细" f
          WHERE f."月度" < v_from_start ORDER BY f."月度" DESC LIMIT 1),
        v_from_start);
    v_lo_end := (v_lo_start + INTERVAL '1 month - 1 day')::date;
    v_hi := coalesce(
        (SELECT (pg_catalog.date_trunc('month', f."月度") + INTERVAL '1 month - 1 day')::date
           FROM business."规模明细" f WHERE f."月度" >= v_to_next ORDER BY f."月度" LIMIT 1),
        DATE '9999-12-31');

    -- The loaded months of the window, each with the next loaded month (v_hi after the last).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_check_month (month_end date, next_end date)';
    PERFORM cmdm.scratch_table('cmdm_check_month', 'month_end date, next_end date');
    INSERT INTO pg_temp.cmdm_check_month (month_end, next_end)
    SELECT l, lead(l, 1, v_hi) OVER (ORDER BY l)
      FROM customer.loaded_months(v_lo_start, v_to_next - 1) l;

    -- The window's years as their reference months decide them now.
    PERFORM customer.compute_annual_statuses(ARRAY(
        SELECT DISTINCT extract(year FROM m.month_end)::int FROM pg_temp.cmdm_check_month m));
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_reference (status_year integer, reference_month date)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_company (status_year integer, company_id text, evidence jsonb, is_strategic boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_product_line (status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean)';

    -- Each valid key's facts per loaded month of the window, with its contract status.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_check_fact (month_end date, company_id text, plan_code text, product_line_code text, contract_status text)';
    PERFORM cmdm.scratch_table('cmdm_check_fact', 'month_end date, company_id text, plan_code text, product_line_code text, contract_status text');
    INSERT INTO pg_temp.cmdm_check_fact (month_end, company_id, plan_code, product_line_code, contract_status)
    SELECT m.month_end, m.company_id, m.plan_code, m.product_line_code,
           CASE
               WHEN coalesce(m."sum_期末资产规模", 0) > 0::numeric
                   THEN '正常'
               ELSE '停缴'
           END
      FROM (SELECT (pg_catalog.date_trunc('month', f."月度") + INTERVAL '1 month - 1 day')::date AS month_end,
                   f.company_id::text AS company_id,
                   f."计划代码"::text AS plan_code,
                   f."产品线代码"::text AS product_line_code,
                   sum(f."期末资产规模") AS "sum_期末资产规模"
              FROM business."规模明细" f
              JOIN mapping."产品线" pl ON pl."产品线代码" = f."产品线代码"
              JOIN customer."年金客户" co ON co.company_id = f.company_id
             WHERE f."月度" >= v_lo_start AND f."月度" < v_to_next
               AND f."计划代码" IS NOT NULL
             GROUP BY 1, 2, 3, 4) m;

    -- Every key with a state somewhere in the window: seen in it, or seen before it (suspended
    -- from then on); first_end: its first month with facts (NULL: before the window).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_check_key (company_id text, plan_code text, product_line_code text, first_end date)';
    PERFORM cmdm.scratch_table('cmdm_check_key', 'company_id text, plan_code text, product_line_code text, first_end date');
    INSERT INTO pg_temp.cmdm_check_key (company_id, plan_code, product_line_code, first_end)
    SELECT f.company_id, f.plan_code, f.product_line_code, min(f.month_end)
      FROM pg_temp.cmdm_check_fact f
     GROUP BY 1, 2, 3;
    UPDATE pg_temp.cmdm_check_key k SET first_end = NULL
      FROM (SELECT DISTINCT f.company_id::text AS company_id, f."计划代码"::text AS plan_code,
                   f."产品线代码"::text AS product_line_code
              FROM business."规模明细" f
             WHERE f."月度" < v_lo_start) b
     WHERE b.company_id = k.company_id AND b.plan_code = k.plan_code
       AND b.product_line_code = k.product_line_code;
    INSERT INTO pg_temp.cmdm_check_key (company_id, plan_code, product_line_code, first_end)
    SELECT b.company_id, b.plan_code, b.product_line_code, NULL
      FROM (SELECT DISTINCT f.company_id::text AS company_id, f."计划代码"::text AS plan_code,
                   f."产品线代码"::text AS product_line_code
              FROM business."规模明细" f
              JOIN mapping."产品线" pl ON pl."产品线代码" = f."产品线代码"
              JOIN customer."年金客户" co ON co.company_id = f.company_id
             WHERE f."月度" < v_lo_start AND f."计划代码" IS NOT NULL) b
     WHERE NOT EXISTS (SELECT FROM pg_temp.cmdm_check_key k
                        WHERE k.company_id = b.company_id AND k.plan_code = b.plan_code
                          AND k.product_line_code = b.product_line_code);

    -- Expected versions: one piece per key and loaded month with a state, consecutive
    -- equal pieces merged (gaps and islands); stored versions clipped to the same window.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_check_expected (company_id text, plan_code text, product_line_code text, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_check_expected', 'company_id text, plan_code text, product_line_code text, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean');
    INSERT INTO pg_temp.cmdm_check_expected
           (company_id, plan_code, product_line_code, valid_from, valid_to, contract_status, status_year, is_strategic, is_existing)
    WITH piece AS (
        SELECT k.company_id, k.plan_code, k.product_line_code, m.month_end AS valid_from,
               m.next_end AS valid_to,
               coalesce(f.contract_status, '停缴') AS contract_status,
               extract(year FROM m.month_end)::int AS status_year,
               coalesce(a_company.is_strategic, (SELECT (coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric OR coalesce(ref_company."top_10_by_机构代码", false)) FROM (SELECT NULL::numeric AS "sum_期末资产规模", NULL::boolean AS "top_10_by_机构代码") ref_company)) AS is_strategic,
               coalesce(a_product_line.is_existing, (SELECT coalesce(ref_product_line."sum_期末资产规模", 0) > 0::numeric FROM (SELECT NULL::numeric AS "sum_期末资产规模") ref_product_line)) AS is_existing
          FROM pg_temp.cmdm_check_key k
          JOIN pg_temp.cmdm_check_month m ON m.month_end >= coalesce(k.first_end, v_lo_end)
          LEFT JOIN pg_temp.cmdm_check_fact f
                 ON f.month_end = m.month_end AND f.company_id = k.company_id
                AND f.plan_code = k.plan_code AND f.product_line_code = k.product_line_code
          LEFT JOIN pg_temp.cmdm_annual_company a_company
                 ON a_company.status_year = extract(year FROM m.month_end)::int AND a_company.company_id = k.company_id
          LEFT JOIN pg_temp.cmdm_annual_product_line a_product_line
                 ON a_product_line.status_year = extract(year FROM m.month_end)::int AND a_product_line.company_id = k.company_id AND a_product_line.product_line_code = k.product_line_code
    ), marked AS (
        SELECT p.*,
               CASE WHEN lag(p.valid_to) OVER w = p.valid_from
                     AND (lag(p.contract_status) OVER w, lag(p.status_year) OVER w, lag(p.is_strategic) OVER w, lag(p.is_existing) OVER w)
                         IS NOT DISTINCT FROM (p.contract_status, p.status_year, p.is_strategic, p.is_existing)
                    THEN 0 ELSE 1 END AS starts_version
          FROM piece p
        WINDOW w AS (PARTITION BY p.company_id, p.plan_code, p.product_line_code ORDER BY p.valid_from)
    ), numbered AS (
        SELECT m.*, sum(m.starts_version) OVER (PARTITION BY m.company_id, m.plan_code, m.product_line_code
                                                ORDER BY m.valid_from) AS version_no
          FROM marked m
    )
    SELECT n.company_id, n.plan_code, n.product_line_code, min(n.valid_from), max(n.valid_to),
n.contract_status, n.status_year, n.is_strategic, n.is_existing
      FROM numbered n
     GROUP BY n.company_id, n.plan_code, n.product_line_code, n.version_no,
n.contract_status, n.status_year, n.is_strategic, n.is_existing;

    RETURN QUERY
    WITH expected AS (
        SELECT e.company_id, e.plan_code, e.product_line_code, pl."产品线"::text AS product_line_name,
               e.valid_from, e.valid_to, e.contract_status, e.status_year, e.is_strategic, e.is_existing
          FROM pg_temp.cmdm_check_expected e
          JOIN mapping."产品线" pl ON pl."产品线代码" = e.product_line_code
    ), stored AS (
        SELECT c.company_id::text, c.plan_code::text, c.product_line_code::text,
               c.product_line_name::text, greatest(c.valid_from, v_lo_end) AS valid_from,
               least(c.valid_to, v_hi) AS valid_to, c.contract_status, c.status_year, c.is_strategic, c.is_existing
          FROM customer.customer_plan_contract c
         WHERE pg_catalog.daterange(c.valid_from, c.valid_to) && pg_catalog.daterange(v_lo_end, v_hi)
    )
    SELECT 'missing', pg_catalog.to_jsonb(x) FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM stored) x
    UNION ALL
    SELECT 'unexpected', pg_catalog.to_jsonb(x) FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM expected) x;
END
$fn$;

COMMENT ON FUNCTION customer.check_contract_history(date, date) IS
    'Differences between customer.customer_plan_contract and the history recomputed from the facts alone, over a range of months (cmdm check). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.check_monthly_snapshot.sql.j2",
        "kind": "function",
        "identity": "customer.check_monthly_snapshot(date)",
        "triggers": [],
        "sha256": "b83878f298e65e3b849042feeea73e66345e56484258fe062d4e1bb0aaec0d38",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.check_monthly_snapshot.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.check_monthly_snapshot(p_month date)
    RETURNS TABLE (table_name text, difference text, row_key jsonb, stored jsonb, expected jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: compare the stored rows of p_month's month in both snapshot tables with what
 * customer.compute_monthly_snapshot says they must be, row by row and both ways: one row
 * per difference, 'missing' (expected, not stored), 'unexpected' (stored, not expected) or
 * 'different' (same key, other values), with the key and both sides' values as jsonb.
 * No rows: the month's snapshots are right.
 *
 * Why from the stored history: the snapshot of a month is a function of the contract
 * history and the facts; customer.check_contract_history checks the history against the
 * facts, so together they check the snapshots against the facts alone.
 *
 * Writes only scratch tables of this transaction; takes no lock beyond reading.
 */
DECLARE
    v_month_end date;
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_month < DATE '1900-01-01' OR p_month >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_month),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_month_end := (pg_catalog.date_trunc('month', p_month) + INTERVAL '1 month - 1 day')::date;
    PERFORM customer.compute_monthly_snapshot(p_month);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_business_new (company_id text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2), plan_count integer)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_plan_new (company_id text, plan_code text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2))';

    RETURN QUERY
    SELECT 'customer.fct_customer_business_monthly_status'::text::text,
           CASE WHEN s.company_id IS NULL THEN 'missing'
                WHEN n.company_id IS NULL THEN 'unexpected'
                ELSE 'different' END,
           pg_catalog.jsonb_build_object('snapshot_month', v_month_end, 'company_id'::text, coalesce(s.company_id, n.company_id), 'product_line_code'::text, coalesce(s.product_line_code, n.product_line_code)),
           CASE WHEN s.company_id IS NOT NULL
                THEN pg_catalog.jsonb_build_object('product_line_name'::text, s.product_line_name, 'is_winning_this_year'::text, s.is_winning_this_year, 'is_churned_this_year'::text, s.is_churned_this_year, 'is_new'::text, s.is_new, 'is_new_arrival'::text, s.is_new_arrival, 'is_churned'::text, s.is_churned, 'is_strategic'::text, s.is_strategic, 'is_existing'::text, s.is_existing, 'aum_balance'::text, s.aum_balance, 'plan_count'::text, s.plan_count) END,
           CASE WHEN n.company_id IS NOT NULL
                THEN pg_catalog.jsonb_build_object('product_line_name'::text, n.product_line_name, 'is_winning_this_year'::text, n.is_winning_this_year, 'is_churned_this_year'::text, n.is_churned_this_year, 'is_new'::text, n.is_new, 'is_new_arrival'::text, n.is_new_arrival, 'is_churned'::text, n.is_churned, 'is_strategic'::text, n.is_strategic, 'is_existing'::text, n.is_existing, 'aum_balance'::text, n.aum_balance, 'plan_count'::text, n.plan_count) END
      FROM (SELECT t.company_id::text, t.product_line_code::text, t.product_line_name, t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_new_arrival, t.is_churned, t.is_strategic, t.is_existing, t.aum_balance, t.plan_count
              FROM customer.fct_customer_business_monthly_status t
             WHERE t.snapshot_month = v_month_end) s
      FULL JOIN pg_temp.cmdm_snap_business_new n
        ON n.company_id = s.company_id AND n.product_line_code = s.product_line_code
     WHERE s.company_id IS NULL OR n.company_id IS NULL
        OR (s.product_line_name, s.is_winning_this_year, s.is_churned_this_year, s.is_new, s.is_new_arrival, s.is_churned, s.is_strategic, s.is_existing, s.aum_balance, s.plan_count)
           IS DISTINCT FROM (n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance, n.plan_count);

    RETURN QUERY
    SELECT 'customer.fct_customer_plan_monthly_status'::text::text,
           CASE WHEN s.company_id IS NULL THEN 'missing'
                WHEN n.company_id IS NULL THEN 'unexpected'
                ELSE 'different' END,
           pg_catalog.jsonb_build_object('snapshot_month', v_month_end, 'company_id'::text, coalesce(s.company_id, n.company_id), 'plan_code'::text, coalesce(s.plan_code, n.plan_code), 'product_line_code'::text, coalesce(s.product_line_code, n.product_line_code)),
           CASE WHEN s.company_id IS NOT NULL
                THEN pg_catalog.jsonb_build_object('product_line_name'::text, s.product_line_name, 'is_winning_this_year'::text, s.is_winning_this_year, 'is_churned_this_year'::text, s.is_churned_this_year, 'is_new'::text, s.is_new, 'is_new_arrival'::text, s.is_new_arrival, 'is_churned'::text, s.is_churned, 'is_strategic'::text, s.is_strategic, 'is_existing'::text, s.is_existing, 'aum_balance'::text, s.aum_balance) END,
           CASE WHEN n.company_id IS NOT NULL
                THEN pg_catalog.jsonb_build_object('product_line_name'::text, n.product_line_name, 'is_winning_this_year'::text, n.is_winning_this_year, 'is_churned_this_year'::text, n.is_churned_this_year, 'is_new'::text, n.is_new, 'is_new_arrival'::text, n.is_new_arrival, 'is_churned'::text, n.is_churned, 'is_strategic'::text, n.is_strategic, 'is_existing'::text, n.is_existing, 'aum_balance'::text, n.aum_balance) END
      FROM (SELECT t.company_id::text, t.plan_code::text, t.product_line_code::text, t.product_line_name, t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_new_arrival, t.is_churned, t.is_strategic, t.is_existing, t.aum_balance
              FROM customer.fct_customer_plan_monthly_status t
             WHERE t.snapshot_month = v_month_end) s
      FULL JOIN pg_temp.cmdm_snap_plan_new n
        ON n.company_id = s.company_id AND n.plan_code = s.plan_code AND n.product_line_code = s.product_line_code
     WHERE s.company_id IS NULL OR n.company_id IS NULL
        OR (s.product_line_name, s.is_winning_this_year, s.is_churned_this_year, s.is_new, s.is_new_arrival, s.is_churned, s.is_strategic, s.is_existing, s.aum_balance)
           IS DISTINCT FROM (n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance);
END
$fn$;

COMMENT ON FUNCTION customer.check_monthly_snapshot(date) IS
    'Differences between the stored snapshot rows of one month and the rows as they must be (cmdm check). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.compute_annual_statuses.sql.j2",
        "kind": "function",
        "identity": "customer.compute_annual_statuses(integer[])",
        "triggers": [],
        "sha256": "cd92acca16f562f5df33d4de326c975f8c9475ceaeb84d7f3fbada93a55205a2",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.compute_annual_statuses.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.compute_annual_statuses(p_years integer[])
    RETURNS void
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: decide the annual statuses of each year of p_years from its reference month's
 * facts alone (DESIGN §4), into scratch tables of this transaction; nothing else is written:
 *   - pg_temp.cmdm_annual_reference: (status_year, reference_month) per year with a loaded month;
 *   - pg_temp.cmdm_annual_company: per year and key of grain company with valid facts there;
 *   - pg_temp.cmdm_annual_product_line: per year and key of grain product_line with valid facts there;
 * Reference month of a year: the last loaded month before its January 1st, else its first
 * loaded month. Each key row holds what the decision read (evidence) and the statuses
 * (is_strategic, is_existing).
 *
 * Why apart from the writer: customer.decide_annual_statuses stores these rows and
 * customer.check_annual_statuses compares them with the stored ones; both read one
 * computation. A year appears once whatever p_years holds, so no reference month can be
 * read twice.
 *
 * Cost: per year, two index probes for the reference month and one scan of its facts
 * (index on "月度").
 */
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_reference (status_year integer, reference_month date)';
    PERFORM cmdm.scratch_table('cmdm_annual_reference', 'status_year integer, reference_month date');
    INSERT INTO pg_temp.cmdm_annual_reference (status_year, reference_month)
    SELECT r.status_year, (r.month_start + INTERVAL '1 month - 1 day')::date
      FROM (SELECT y.status_year,
                   coalesce(
                       (SELECT pg_catalog.date_trunc('month', f."月度")::date FROM business."规模明细" f
                         WHERE f."月度" < pg_catalog.make_date(y.status_year, 1, 1)
                         ORDER BY f."月度" DESC LIMIT 1),
                       (SELECT pg_catalog.date_trunc('month', f."月度")::date FROM business."规模明细" f
                         WHERE f."月度" >= pg_catalog.make_date(y.status_year, 1, 1)
                           AND f."月度" < pg_catalog.make_date(y.status_year + 1, 1, 1)
                         ORDER BY f."月度" LIMIT 1)) AS month_start
              FROM (SELECT DISTINCT y AS status_year FROM unnest(p_years) y WHERE y IS NOT NULL) y) r
     WHERE r.month_start IS NOT NULL
       -- a year with no loaded month of its own has no versions, hence nothing to decide
       AND EXISTS (SELECT FROM business."规模明细" f
                    WHERE f."月度" >= pg_catalog.make_date(r.status_year, 1, 1)
                      AND f."月度" < pg_catalog.make_date(r.status_year + 1, 1, 1));
    -- A scratch table has no statistics: without them the planner takes it for ~2,000 years
    -- and plans every statement below for a hundred million reference rows.
    ANALYZE pg_temp.cmdm_annual_reference;

    -- Grain company: the reference month's valid facts per key, each top_n's rank per
    -- group, then the statuses over that row (ref_company).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_company (status_year integer, company_id text, evidence jsonb, is_strategic boolean)';
    PERFORM cmdm.scratch_table('cmdm_annual_company', 'status_year integer, company_id text, evidence jsonb, is_strategic boolean');
    INSERT INTO pg_temp.cmdm_annual_company (status_year, company_id, evidence, is_strategic)
    WITH reference_fact AS MATERIALIZED (
        SELECT r.status_year, f.company_id, f."计划代码", f."产品线代码", f."期末资产规模", f."机构代码"
          FROM pg_temp.cmdm_annual_reference r
         CROSS JOIN LATERAL (
               SELECT f.* FROM business."规模明细" f
                WHERE f."月度" >= pg_catalog.date_trunc('month', r.reference_month)::date
                  AND f."月度" <= r.reference_month
               ) f
          JOIN mapping."产品线" pl ON pl."产品线代码" = f."产品线代码"
          JOIN customer."年金客户" co ON co.company_id = f.company_id
         WHERE f."计划代码" IS NOT NULL
    ), top_1 AS (
        -- "top_10_by_机构代码": rank by SUM("期末资产规模") within each "机构代码"; ties share a rank,
        -- so all keys tied at place 10 are in
        SELECT ranked.status_year, ranked.company_id,
               bool_or(ranked.position <= 10) AS hit,
               pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'group', ranked.group_value, 'rank', ranked.position, 'of', ranked.group_size)
                   ORDER BY ranked.group_value) AS ranks
          FROM (SELECT f.status_year, f.company_id::text AS company_id,
                       f."机构代码"::text AS group_value,
                       -- a key whose values are all NULL holds 0, as everywhere else
                       rank() OVER (PARTITION BY f.status_year, f."机构代码"
                                    ORDER BY coalesce(sum(f."期末资产规模"), 0) DESC) AS position,
                       count(*) OVER (PARTITION BY f.status_year, f."机构代码") AS group_size
                  FROM reference_fact f
                 -- rows without a group (a NULL "机构代码") rank in none
                 WHERE f."机构代码" IS NOT NULL
                 GROUP BY f.status_year, f.company_id, f."机构代码") ranked
         GROUP BY ranked.status_year, ranked.company_id
    )
    SELECT ref_company.status_year, ref_company.company_id,
           pg_catalog.jsonb_build_object('sum_期末资产规模', ref_company."sum_期末资产规模", 'top_10_by_机构代码', pg_catalog.jsonb_build_object('field', '期末资产规模', 'n', 10, 'within', '机构代码', 'ranks', top_1.ranks)),
           -- is_strategic
           (coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric OR coalesce(ref_company."top_10_by_机构代码", false))
      FROM (SELECT a.*, coalesce(top_1.hit, false) AS "top_10_by_机构代码"
              FROM (SELECT f.status_year, f.company_id::text AS company_id,
                           sum(f."期末资产规模") AS "sum_期末资产规模"
                      FROM reference_fact f
                     GROUP BY f.status_year, f.company_id) a
              LEFT JOIN top_1 ON top_1.status_year = a.status_year AND top_1.company_id = a.company_id
           ) ref_company
      LEFT JOIN top_1 ON top_1.status_year = ref_company.status_year AND top_1.company_id = ref_company.company_id;

    -- Grain product_line: the reference month's valid facts per key, each top_n's rank per
    -- group, then the statuses over that row (ref_product_line).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_product_line (status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_annual_product_line', 'status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean');
    INSERT INTO pg_temp.cmdm_annual_product_line (status_year, company_id, product_line_code, evidence, is_existing)
    WITH reference_fact AS MATERIALIZED (
        SELECT r.status_year, f.company_id, f."计划代码", f."产品线代码", f."期末资产规模", f."机构代码"
          FROM pg_temp.cmdm_annual_reference r
         CROSS JOIN LATERAL (
               SELECT f.* FROM business."规模明细" f
                WHERE f."月度" >= pg_catalog.date_trunc('month', r.reference_month)::date
                  AND f."月度" <= r.reference_month
               ) f
          JOIN mapping."产品线" pl ON pl."产品线代码" = f."产品线代码"
          JOIN customer."年金客户" co ON co.company_id = f.company_id
         WHERE f."计划代码" IS NOT NULL
    )
    SELECT ref_product_line.status_year, ref_product_line.company_id, ref_product_line.product_line_code,
           pg_catalog.jsonb_build_object('sum_期末资产规模', ref_product_line."sum_期末资产规模"),
           -- is_existing
           coalesce(ref_product_line."sum_期末资产规模", 0) > 0::numeric
      FROM (SELECT a.*
              FROM (SELECT f.status_year, f.company_id::text AS company_id, f."产品线代码"::text AS product_line_code,
                           sum(f."期末资产规模") AS "sum_期末资产规模"
                      FROM reference_fact f
                     GROUP BY f.status_year, f.company_id, f."产品线代码") a
           ) ref_product_line;
END
$fn$;

COMMENT ON FUNCTION customer.compute_annual_statuses(integer[]) IS
    'Annual statuses of the given years decided from their reference months into pg_temp scratch tables (DESIGN §4). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.compute_monthly_snapshot.sql.j2",
        "kind": "function",
        "identity": "customer.compute_monthly_snapshot(date)",
        "triggers": [],
        "sha256": "b2ed933102e0fd9a92d6dd36ac2ba8d277796de41cf1c18c9f13d647444dec5b",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.compute_monthly_snapshot.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.compute_monthly_snapshot(p_month date)
    RETURNS void
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
    SET default_statistics_target = 10
AS $fn$
/*
 * What: the rows p_month's month must have in customer.fct_customer_business_monthly_status
 * (per company and product line) and customer.fct_customer_plan_monthly_status (per
 * contract key), as DESIGN §4 defines them, into pg_temp.cmdm_snap_business_new and
 * pg_temp.cmdm_snap_plan_new; nothing else is written (docs/snapshots.md):
 *   - population: the contract keys with a version covering the month-end (and their
 *     (company, product line) pairs); none when the month has no facts;
 *   - aum_balance: SUM of the month's fact rows of the key (pair); plan_count: its keys;
 *   - annual statuses (is_strategic, is_existing): the covering versions' values (bool_or per pair);
 *   - monthly statuses: each evaluated at the key of the row it is written on, or at the
 *     grain its rule pins (bool_or over the row's keys for a finer pinned grain), from the
 *     month's facts, the previous loaded month's keys (disappeared), the history before
 *     the month (first_appearance), events up to the month-end.
 *
 * Why apart from the writer: customer.refresh_monthly_snapshot writes these rows and
 * customer.check_monthly_snapshot compares them with the stored ones; both read one
 * computation. As of the month: the population and annual statuses come from the contract
 * history (a pure function of the facts), events count up to the month-end, presence
 * compares with the loaded months before it. Nothing reads now() or later months.
 *
 * Cost: the month's facts and the previous loaded month's (index on "月度"), the
 * versions covering the month (GiST on the validity range), an index probe into the
 * history only for keys whose covering version starts this month, an events probe per
 * key. Never the whole history.
 */
DECLARE
    v_month_start date;
    v_next_start date;
    v_month_end date;
    v_prev_start date;          -- first day of the last loaded month before this one
    v_loaded boolean;
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_month < DATE '1900-01-01' OR p_month >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_month),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_month_start := pg_catalog.date_trunc('month', p_month)::date;
    v_next_start := (v_month_start + INTERVAL '1 month')::date;
    v_month_end := v_next_start - 1;

    -- The nearest fact month below a bound: ORDER BY … LIMIT 1 is one index probe whatever
    -- the statistics say (min()/max() may be planned as an aggregate over a month's rows).
    v_loaded := coalesce((SELECT f."月度" >= v_month_start FROM business."规模明细" f
                           WHERE f."月度" < v_next_start ORDER BY f."月度" DESC LIMIT 1), false);
    v_prev_start := (SELECT pg_catalog.date_trunc('month', f."月度")::date FROM business."规模明细" f
                      WHERE f."月度" < v_month_start ORDER BY f."月度" DESC LIMIT 1);

    -- 1. One row per contract key with a version covering the month: its annual statuses,
    --    its facts of the month aggregated (the aggregates every status reads), whether it
    --    had facts this month, in the previous loaded month, and in any month before (a
    --    version starting earlier: the covering one, or one ending at this month-end, found
    --    by the same index scan; probed in the history only when neither exists).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_plan (company_id text, plan_code text, product_line_code text, valid_from date, _present boolean, _present_before boolean, _seen_before boolean, is_strategic boolean, is_existing boolean, "sum_期末资产规模" numeric)';
    PERFORM cmdm.scratch_table('cmdm_snap_plan', 'company_id text, plan_code text, product_line_code text, valid_from date, _present boolean, _present_before boolean, _seen_before boolean, is_strategic boolean, is_existing boolean, "sum_期末资产规模" numeric');
    IF v_loaded THEN
        INSERT INTO pg_temp.cmdm_snap_plan
               (company_id, plan_code, product_line_code, valid_from, _present, _present_before,
                _seen_before, is_strategic, is_existing, "sum_期末资产规模")
        WITH v AS MATERIALIZED (
            -- the versions covering the month-end and those ending at it
            SELECT c.company_id::text AS company_id, c.plan_code::text AS plan_code,
                   c.product_line_code::text AS product_line_code, c.valid_from, c.valid_to, c.is_strategic, c.is_existing
              FROM customer.customer_plan_contract c
             WHERE pg_catalog.daterange(c.valid_from, c.valid_to, '[]') @> v_month_end)
        SELECT c.company_id, c.plan_code, c.product_line_code, c.valid_from,
               m.company_id IS NOT NULL, p.company_id IS NOT NULL,
               c.valid_from < v_month_end OR e.company_id IS NOT NULL,
               c.is_strategic,
               c.is_existing,
               m."sum_期末资产规模"
          FROM (SELECT * FROM v WHERE v.valid_to > v_month_end) c
          -- a version ending here started earlier (every January: the year's new versions)
          LEFT JOIN (SELECT * FROM v WHERE v.valid_to = v_month_end) e
                 ON e.company_id = c.company_id AND e.plan_code = c.plan_code AND e.product_line_code = c.product_line_code
          LEFT JOIN (SELECT f.company_id::text AS company_id, f."计划代码"::text AS plan_code,
                            f."产品线代码"::text AS product_line_code,
                            sum(f."期末资产规模") AS "sum_期末资产规模"
                       FROM business."规模明细" f
                      WHERE f."月度" >= v_month_start AND f."月度" < v_next_start
                      GROUP BY 1, 2, 3) m
                 ON m.company_id = c.company_id AND m.plan_code = c.plan_code AND m.product_line_code = c.product_line_code
          LEFT JOIN (SELECT DISTINCT f.company_id::text AS company_id, f."计划代码"::text AS plan_code,
                            f."产品线代码"::text AS product_line_code
                       FROM business."规模明细" f
                      WHERE f."月度" >= v_prev_start
                        AND f."月度" < (v_prev_start + INTERVAL '1 month')::date) p
                 ON p.company_id = c.company_id AND p.plan_code = c.plan_code AND p.product_line_code = c.product_line_code;
    END IF;
    -- A key whose covering version starts this month, with no version ending here, may
    -- still have had facts before (under close, an earlier version may have ended before a
    -- gap): one index probe each, for these few keys only (new keys, mostly). (A scalar subquery, not EXISTS, so it
    -- stays a probe rather than becoming a hash of the whole history.)
    UPDATE pg_temp.cmdm_snap_plan k
       SET _seen_before = true
     WHERE NOT k._seen_before
       AND v_prev_start IS NOT NULL
       AND (SELECT true FROM customer.customer_plan_contract e
             WHERE e.company_id = k.company_id AND e.plan_code = k.plan_code
               AND e.product_line_code = k.product_line_code AND e.valid_from < v_month_end
             LIMIT 1);
    -- Statistics for the joins below (a scratch table has none until analyzed).
    ANALYZE pg_temp.cmdm_snap_plan;

    -- The same rows rolled up to grain product_line; seen before: a key of it was (probed in
    -- the history when none covering the month was: under close, a key of it may have
    -- ended earlier).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_product_line (company_id text, product_line_code text, plan_count bigint, _present boolean, _present_before boolean, _seen_before boolean, is_strategic boolean, is_existing boolean, "sum_期末资产规模" numeric)';
    PERFORM cmdm.scratch_table('cmdm_snap_product_line', 'company_id text, product_line_code text, plan_count bigint, _present boolean, _present_before boolean, _seen_before boolean, is_strategic boolean, is_existing boolean, "sum_期末资产规模" numeric');
    INSERT INTO pg_temp.cmdm_snap_product_line
           (company_id, product_line_code, plan_count, _present, _present_before, _seen_before, is_strategic, is_existing, "sum_期末资产规模")
    SELECT r.company_id, r.product_line_code, r.plan_count, r._present, r._present_before, r._seen_before, r.is_strategic, r.is_existing, r."sum_期末资产规模"
      FROM (SELECT k.company_id, k.product_line_code, count(*) AS plan_count,
                   bool_or(k._present) AS _present, bool_or(k._present_before) AS _present_before,
                   bool_or(k._seen_before) AS _seen_before,
                   bool_or(k.is_strategic) AS is_strategic,
                   bool_or(k.is_existing) AS is_existing,
                   sum(k."sum_期末资产规模") AS "sum_期末资产规模"
              FROM pg_temp.cmdm_snap_plan k
             GROUP BY k.company_id, k.product_line_code) r;
    UPDATE pg_temp.cmdm_snap_product_line r
       SET _seen_before = true
     WHERE NOT r._seen_before
       AND v_prev_start IS NOT NULL
       AND (SELECT true FROM customer.customer_plan_contract e
             WHERE e.company_id = r.company_id AND e.product_line_code = r.product_line_code AND e.valid_from < v_month_end
             LIMIT 1);
    ANALYZE pg_temp.cmdm_snap_product_line;

    -- 2. The month's rows as they must be, each monthly status (rules/) evaluated at its
    --    grain as the rows are produced: on the row itself at the row's grain, over the
    --    rows of a coarser grain joined by its key, any of the plan rows of a pair for the
    --    business table. (Not materialized: a status is read by one statement of each table.)
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_business_new (company_id text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2), plan_count integer)';
    PERFORM cmdm.scratch_table('cmdm_snap_business_new', 'company_id text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2), plan_count integer');
    INSERT INTO pg_temp.cmdm_snap_business_new
           (company_id, product_line_code, product_line_name, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned, is_strategic, is_existing, aum_balance, plan_count)
    SELECT r.company_id, r.product_line_code, pl."产品线",
           coalesce(s_product_line.is_winning_this_year, false),
           coalesce(s_product_line.is_churned_this_year, false),
           coalesce(s_product_line.is_new, false),
           coalesce(s_product_line.is_new_arrival, false),
           coalesce(s_product_line.is_churned, false),
           coalesce(r.is_strategic, false),
           coalesce(r.is_existing, false),
           coalesce(r."sum_期末资产规模", 0), r.plan_count
      FROM pg_temp.cmdm_snap_product_line r
      JOIN mapping."产品线" pl ON pl."产品线代码" = r.product_line_code
      LEFT JOIN (SELECT r.company_id, r.product_line_code,
                        -- is_new_arrival
                        bool_or((r._present AND NOT r._seen_before)) AS is_new_arrival,
                        -- is_churned
                        bool_or(((r._present_before AND NOT r._present) OR coalesce(r."sum_期末资产规模", 0) <= 0::numeric)) AS is_churned
                   FROM pg_temp.cmdm_snap_plan r
                  GROUP BY r.company_id, r.product_line_code) s_plan
             ON s_plan.company_id = r.company_id AND s_plan.product_line_code = r.product_line_code
     CROSS JOIN LATERAL (
           SELECT
                  -- is_winning_this_year
                  EXISTS (SELECT FROM customer."当年中标" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end) AS is_winning_this_year,
                  -- is_churned_this_year
                  EXISTS (SELECT FROM customer."当年流失" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end) AS is_churned_this_year,
                  -- is_new
                  ((EXISTS (SELECT FROM customer."当年中标" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end)) AND NOT (coalesce(r.is_existing, false))) AS is_new,
                  -- is_new_arrival
                  (r._present AND NOT r._seen_before) AS is_new_arrival,
                  -- is_churned
                  ((r._present_before AND NOT r._present) OR coalesce(r."sum_期末资产规模", 0) <= 0::numeric) AS is_churned
           ) s_product_line
    ;

    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_plan_new (company_id text, plan_code text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2))';
    PERFORM cmdm.scratch_table('cmdm_snap_plan_new', 'company_id text, plan_code text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2)');
    INSERT INTO pg_temp.cmdm_snap_plan_new
           (company_id, plan_code, product_line_code, product_line_name, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned, is_strategic, is_existing, aum_balance)
    SELECT r.company_id, r.plan_code, r.product_line_code, pl."产品线",
           coalesce(s_product_line.is_winning_this_year, false),
           coalesce(s_product_line.is_churned_this_year, false),
           coalesce(s_product_line.is_new, false),
           coalesce(s_plan.is_new_arrival, false),
           coalesce(s_plan.is_churned, false),
           coalesce(r.is_strategic, false),
           coalesce(r.is_existing, false),
           coalesce(r."sum_期末资产规模", 0)
      FROM pg_temp.cmdm_snap_plan r
      JOIN mapping."产品线" pl ON pl."产品线代码" = r.product_line_code
     CROSS JOIN LATERAL (
           SELECT
                  -- is_new_arrival
                  (r._present AND NOT r._seen_before) AS is_new_arrival,
                  -- is_churned
                  ((r._present_before AND NOT r._present) OR coalesce(r."sum_期末资产规模", 0) <= 0::numeric) AS is_churned
           ) s_plan
      LEFT JOIN (SELECT r.company_id, r.product_line_code,
                        -- is_winning_this_year
                        EXISTS (SELECT FROM customer."当年中标" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end) AS is_winning_this_year,
                        -- is_churned_this_year
                        EXISTS (SELECT FROM customer."当年流失" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end) AS is_churned_this_year,
                        -- is_new
                        ((EXISTS (SELECT FROM customer."当年中标" e WHERE e.company_id = r.company_id AND e."产品线代码" = r.product_line_code AND e."上报月份" >= pg_catalog.date_trunc('year', v_month_start)::date AND e."上报月份" <= v_month_end)) AND NOT (coalesce(r.is_existing, false))) AS is_new,
                        -- is_new_arrival
                        (r._present AND NOT r._seen_before) AS is_new_arrival,
                        -- is_churned
                        ((r._present_before AND NOT r._present) OR coalesce(r."sum_期末资产规模", 0) <= 0::numeric) AS is_churned
                   FROM pg_temp.cmdm_snap_product_line r) s_product_line
             ON s_product_line.company_id = r.company_id AND s_product_line.product_line_code = r.product_line_code
    ;

END
$fn$;

COMMENT ON FUNCTION customer.compute_monthly_snapshot(date) IS
    'The rows of one month of both snapshot tables as they must be, into pg_temp scratch tables (docs/snapshots.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.contract_dependent_months.sql.j2",
        "kind": "function",
        "identity": "customer.contract_dependent_months(date)",
        "triggers": [],
        "sha256": "226ada17e3347fe206e0e17fea8701f731d822a0802a29a6cb35d9ffa752be57",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.contract_dependent_months.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.contract_dependent_months(p_month date)
    RETURNS TABLE (month date, reason text)
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Which months' derived data (contract states, snapshots) depend on the facts of p_month,
 * evaluated on the facts as they are now (call it after the change; it is the same before
 * or after for a month that was added, restated or deleted):
 *
 *   - p_month itself;
 *   - the next loaded month: its versions may split or merge with p_month's, and presence
 *     statuses (disappeared, first_appearance) compare it with p_month;
 *   - every loaded month of a year whose reference month for annual statuses is, or was,
 *     p_month: the year of the next loaded month when that is a later year, and p_month's
 *     own year when no month before it is loaded.
 *
 * customer.sync_contract_status(p_month) repairs all contract versions itself; this list
 * is for the snapshot refresh. Cost: a few index probes on "月度".
 */
DECLARE
    v_month_end date;
    v_prev date;
    v_next date;
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_month < DATE '1900-01-01' OR p_month >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_month),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_month_end := (pg_catalog.date_trunc('month', p_month) + INTERVAL '1 month' - INTERVAL '1 day')::date;
    SELECT max(l) INTO v_prev
      FROM customer.loaded_months(NULL, (v_month_end - INTERVAL '1 month')::date) l;
    SELECT min(l) INTO v_next
      FROM customer.loaded_months((v_month_end + 1), NULL) l;

    RETURN QUERY
    SELECT d.month, d.reason
      FROM (
        SELECT v_month_end AS month, 'the changed month' AS reason
        UNION ALL
        SELECT v_next, 'the next loaded month'
         WHERE v_next IS NOT NULL
        UNION ALL
        SELECT l, pg_catalog.format('annual statuses of %s use %s as reference month',
                                    extract(year FROM v_next), pg_catalog.to_char(v_month_end, 'YYYY-MM'))
          FROM customer.loaded_months(pg_catalog.make_date(extract(year FROM v_next)::int, 1, 1),
                                      pg_catalog.make_date(extract(year FROM v_next)::int, 12, 31)) l
         WHERE v_next IS NOT NULL
           AND extract(year FROM v_next) > extract(year FROM v_month_end)
        UNION ALL
        SELECT l, pg_catalog.format('annual statuses of %s use the first loaded month of the year',
                                    extract(year FROM v_month_end))
          FROM customer.loaded_months(pg_catalog.make_date(extract(year FROM v_month_end)::int, 1, 1),
                                      pg_catalog.make_date(extract(year FROM v_month_end)::int, 12, 31)) l
         WHERE v_prev IS NULL
      ) d
     ORDER BY d.month, d.reason;
END
$fn$;

COMMENT ON FUNCTION customer.contract_dependent_months(date) IS
    'Months whose derived data depends on the facts of a month (the month, the next loaded month, years whose reference month it is). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.decide_annual_statuses.sql.j2",
        "kind": "function",
        "identity": "customer.decide_annual_statuses(integer[])",
        "triggers": [],
        "sha256": "a60ba9659469b6cc1440eb1448de4c8e97da7cd4c2db781530a5830e25282659",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.decide_annual_statuses.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.decide_annual_statuses(p_years integer[])
    RETURNS TABLE (status_year integer, reference_month date, rewritten boolean, statuses_changed boolean, versions_reflagged bigint)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: make the stored decision of each year of p_years (customer.annual_reference and
 * the customer.annual_*_status tables) what its reference month's facts decide now
 * (customer.compute_annual_statuses), and give the contract versions of a year whose
 * statuses changed their new annual flags. Returns one row per year of p_years that has,
 * or had, a decision: whether it was rewritten, whether its statuses changed, and how many
 * versions took new flags.
 *
 * Why in place: a version never spans two years and every version of a key in a year
 * carries the same annual flags, so re-flagging a year changes no version boundary.
 * A key without a row had no facts at the reference month: its flags are the rule's value
 * over no facts. A year left without any loaded month loses its decision.
 *
 * Called by customer.sync_contract_status for the years whose reference month the synced
 * month is, was or becomes, and by `cmdm rebuild` for every year of its range (so a rule
 * change reaches the years it touches). Runs under the sync's lock.
 */
DECLARE
    v_rewrite integer[];        -- years whose stored decision differs from the new one
    v_reflag integer[];         -- of those, years whose statuses (not only evidence) differ
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('cmdm:contract_sync'));
    PERFORM customer.compute_annual_statuses(p_years);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_reference (status_year integer, reference_month date)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_company (status_year integer, company_id text, evidence jsonb, is_strategic boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_annual_product_line (status_year integer, company_id text, product_line_code text, evidence jsonb, is_existing boolean)';

    -- Which years differ, and how: the reference month, the rows with their evidence, and
    -- the statuses alone.
    v_rewrite := ARRAY(
        SELECT y.y FROM (SELECT DISTINCT y FROM unnest(p_years) y WHERE y IS NOT NULL) y
         WHERE (SELECT r.reference_month FROM customer.annual_reference r WHERE r.status_year = y.y)
               IS DISTINCT FROM
               (SELECT n.reference_month FROM pg_temp.cmdm_annual_reference n WHERE n.status_year = y.y)
            OR EXISTS (SELECT company_id, evidence, is_strategic FROM pg_temp.cmdm_annual_company n WHERE n.status_year = y.y
                       EXCEPT
                       SELECT company_id::text, evidence, is_strategic FROM customer.annual_company_status a WHERE a.status_year = y.y)
            OR EXISTS (SELECT company_id::text, evidence, is_strategic FROM customer.annual_company_status a WHERE a.status_year = y.y
                       EXCEPT
                       SELECT company_id, evidence, is_strategic FROM pg_temp.cmdm_annual_company n WHERE n.status_year = y.y)
            OR EXISTS (SELECT company_id, product_line_code, evidence, is_existing FROM pg_temp.cmdm_annual_product_line n WHERE n.status_year = y.y
                       EXCEPT
                       SELECT company_id::text, product_line_code::text, evidence, is_existing FROM customer.annual_product_line_status a WHERE a.status_year = y.y)
            OR EXISTS (SELECT company_id::text, product_line_code::text, evidence, is_existing FROM customer.annual_product_line_status a WHERE a.status_year = y.y
                       EXCEPT
                       SELECT company_id, product_line_code, evidence, is_existing FROM pg_temp.cmdm_annual_product_line n WHERE n.status_year = y.y)
         ORDER BY 1);
    IF cardinality(v_rewrite) = 0 THEN
        RETURN QUERY SELECT n.status_year, n.reference_month, false, false, 0::bigint
                       FROM pg_temp.cmdm_annual_reference n ORDER BY 1;
        RETURN;
    END IF;
    v_reflag := ARRAY(
        SELECT y FROM unnest(v_rewrite) y
         WHERE NOT EXISTS (SELECT FROM customer.annual_reference r WHERE r.status_year = y)
            OR EXISTS (SELECT company_id, is_strategic FROM pg_temp.cmdm_annual_company n WHERE n.status_year = y
                       EXCEPT
                       SELECT company_id::text, is_strategic FROM customer.annual_company_status a WHERE a.status_year = y)
            OR EXISTS (SELECT company_id::text, is_strategic FROM customer.annual_company_status a WHERE a.status_year = y
                       EXCEPT
                       SELECT company_id, is_strategic FROM pg_temp.cmdm_annual_company n WHERE n.status_year = y)
            OR EXISTS (SELECT company_id, product_line_code, is_existing FROM pg_temp.cmdm_annual_product_line n WHERE n.status_year = y
                       EXCEPT
                       SELECT company_id::text, product_line_code::text, is_existing FROM customer.annual_product_line_status a WHERE a.status_year = y)
            OR EXISTS (SELECT company_id::text, product_line_code::text, is_existing FROM customer.annual_product_line_status a WHERE a.status_year = y
                       EXCEPT
                       SELECT company_id, product_line_code, is_existing FROM pg_temp.cmdm_annual_product_line n WHERE n.status_year = y)
         ORDER BY 1);

    -- Rewrite those years whole.
    RETURN QUERY
    SELECT r.status_year, r.reference_month, true, r.status_year = ANY (v_reflag), 0::bigint
      FROM customer.annual_reference r
     WHERE r.status_year = ANY (v_rewrite)
       AND NOT EXISTS (SELECT FROM pg_temp.cmdm_annual_reference n WHERE n.status_year = r.status_year);
    -- (every grain's table: a rules change may have left rows of a grain no status has now)
    DELETE FROM customer.annual_company_status a WHERE a.status_year = ANY (v_rewrite);
    DELETE FROM customer.annual_product_line_status a WHERE a.status_year = ANY (v_rewrite);
    DELETE FROM customer.annual_plan_status a WHERE a.status_year = ANY (v_rewrite);
    DELETE FROM customer.annual_reference r WHERE r.status_year = ANY (v_rewrite);
    INSERT INTO customer.annual_reference (status_year, reference_month)
    SELECT n.status_year, n.reference_month
      FROM pg_temp.cmdm_annual_reference n
     WHERE n.status_year = ANY (v_rewrite);
    INSERT INTO customer.annual_company_status (status_year, company_id, evidence, is_strategic)
    SELECT n.status_year, n.company_id, n.evidence, n.is_strategic
      FROM pg_temp.cmdm_annual_company n
     WHERE n.status_year = ANY (v_rewrite);
    INSERT INTO customer.annual_product_line_status (status_year, company_id, product_line_code, evidence, is_existing)
    SELECT n.status_year, n.company_id, n.product_line_code, n.evidence, n.is_existing
      FROM pg_temp.cmdm_annual_product_line n
     WHERE n.status_year = ANY (v_rewrite);
    -- The versions of the re-flagged years take their flags from the decision; each year
    -- is reported with how many of its versions changed.
    RETURN QUERY
    WITH reflagged AS (
        UPDATE customer.customer_plan_contract c
           SET is_strategic = x.is_strategic,
is_existing = x.is_existing
          FROM (SELECT c2.contract_id,
                       coalesce(a_company.is_strategic,
                                (SELECT (coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric OR coalesce(ref_company."top_10_by_机构代码", false)) FROM (SELECT NULL::numeric AS "sum_期末资产规模", NULL::boolean AS "top_10_by_机构代码") ref_company)) AS is_strategic,
                       coalesce(a_product_line.is_existing,
                                (SELECT coalesce(ref_product_line."sum_期末资产规模", 0) > 0::numeric FROM (SELECT NULL::numeric AS "sum_期末资产规模") ref_product_line)) AS is_existing
                  FROM customer.customer_plan_contract c2
                  LEFT JOIN customer.annual_company_status a_company
                         ON a_company.status_year = c2.status_year AND a_company.company_id = c2.company_id
                  LEFT JOIN customer.annual_product_line_status a_product_line
                         ON a_product_line.status_year = c2.status_year AND a_product_line.company_id = c2.company_id AND a_product_line.product_line_code = c2.product_line_code
                 WHERE c2.status_year = ANY (v_reflag)) x
         -- joined on the primary key only: a second condition on status_year here lets a
         -- planner with stale statistics (right after a load) pick a nested loop over it
         WHERE c.contract_id = x.contract_id
           AND (c.is_strategic, c.is_existing)
               IS DISTINCT FROM (x.is_strategic, x.is_existing)
        RETURNING c.status_year
    )
    SELECT n.status_year, n.reference_month, n.status_year = ANY (v_rewrite),
           n.status_year = ANY (v_reflag),
           (SELECT count(*) FROM reflagged f WHERE f.status_year = n.status_year)
      FROM pg_temp.cmdm_annual_reference n
     ORDER BY 1;
END
$fn$;

COMMENT ON FUNCTION customer.decide_annual_statuses(integer[]) IS
    'Stores what the reference month of each given year decides (customer.annual_reference, customer.annual_*_status) and re-flags that year''s contract versions when its statuses changed. rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.event_dependent_months.sql.j2",
        "kind": "function",
        "identity": "customer.event_dependent_months(date)",
        "triggers": [],
        "sha256": "dde2c900e162534185aa896707854d5d32e531e4a67b000dbb46544dab2b22dc",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.event_dependent_months.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.event_dependent_months(p_reported date)
    RETURNS TABLE (month date, reason text)
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Which snapshot months can see an events row (an award, a loss: any events source of
 * rules/) reported on p_reported: the loaded months from p_reported's month on, as far as
 * the events conditions of the monthly statuses reach (1 kind(s): exists_in_year
 * through December of that year, exists_in_window of N months through N-1 months later).
 * After inserting, deleting or re-dating such a row, refresh these months (for a re-dated
 * row, those of its old and of its new date). A row without a date is seen by no month.
 * Cost: a few index probes on "月度".
 */
DECLARE
    v_month_start date;
    v_until date;
BEGIN
    IF p_reported IS NULL OR p_reported < DATE '1900-01-01' OR p_reported >= DATE '2201-01-01' THEN
        RETURN;  -- seen by no loaded month
    END IF;
    v_month_start := pg_catalog.date_trunc('month', p_reported)::date;
    v_until := (pg_catalog.date_trunc('year', v_month_start) + INTERVAL '1 year - 1 day')::date;

    RETURN QUERY
    SELECT l, pg_catalog.format('statuses of %s see events reported on %s',
                                pg_catalog.to_char(l, 'YYYY-MM'), p_reported)
      FROM customer.loaded_months(v_month_start, v_until) l
     ORDER BY 1;
END
$fn$;

COMMENT ON FUNCTION customer.event_dependent_months(date) IS
    'Loaded months whose snapshot statuses can see an events row reported on a date (docs/snapshots.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.loaded_months.sql.j2",
        "kind": "function",
        "identity": "customer.loaded_months(date, date)",
        "triggers": [],
        "sha256": "740b375b9b0cba796c25b229b13a7bc1d552247414c846ac521e8e87b2714da8",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.loaded_months.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.loaded_months(p_from date DEFAULT NULL, p_to date DEFAULT NULL)
    RETURNS SETOF date
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * The loaded months (months with at least one row in business."规模明细") from p_from's month
 * through p_to's month, as month-end dates, ascending. NULL bounds mean "from the first" /
 * "through the last".
 *
 * Cost: a loose index scan over "月度": one index probe per loaded month, however
 * many fact rows each month holds.
 */
DECLARE
    v_from date := pg_catalog.date_trunc('month', coalesce(p_from, DATE '1900-01-01'))::date;
    v_until date := (pg_catalog.date_trunc('month', coalesce(p_to, DATE '2200-12-01'))
                     + INTERVAL '1 month')::date;
BEGIN
    RETURN QUERY
    WITH RECURSIVE loaded (first_day) AS (
        -- ORDER BY … LIMIT 1, not min(): always one index probe, whatever the statistics say
        SELECT (SELECT pg_catalog.date_trunc('month', f."月度")::date
                  FROM business."规模明细" f
                 WHERE f."月度" >= v_from
                   AND f."月度" < v_until
                 ORDER BY f."月度" LIMIT 1)
        UNION ALL
        SELECT (SELECT pg_catalog.date_trunc('month', f."月度")::date
                  FROM business."规模明细" f
                 WHERE f."月度" >= (l.first_day + INTERVAL '1 month')::date
                   AND f."月度" < v_until
                 ORDER BY f."月度" LIMIT 1)
          FROM loaded l
         WHERE l.first_day IS NOT NULL
    )
    SELECT (l.first_day + INTERVAL '1 month' - INTERVAL '1 day')::date
      FROM loaded l
     WHERE l.first_day IS NOT NULL
     ORDER BY 1;
END
$fn$;

COMMENT ON FUNCTION customer.loaded_months(date, date) IS
    'Month-ends of the months with facts between two months (loose index scan). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.refresh_monthly_snapshot.sql.j2",
        "kind": "function",
        "identity": "customer.refresh_monthly_snapshot(date)",
        "triggers": [],
        "sha256": "af9f5c19f0fe3ad2e2a9e8e7d4f60f80d7129eb824a5b024305dc30ab17388cb",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.refresh_monthly_snapshot.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.refresh_monthly_snapshot(p_month date)
    RETURNS TABLE (snapshot_month date, business_rows bigint, business_inserted bigint, business_updated bigint, business_deleted bigint, plan_rows bigint, plan_inserted bigint, plan_updated bigint, plan_deleted bigint, ms jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
    SET default_statistics_target = 10
AS $fn$
/*
 * What: make the rows of p_month's month in customer.fct_customer_business_monthly_status
 * and customer.fct_customer_plan_monthly_status exactly what DESIGN §4 defines, as of that
 * month: customer.compute_monthly_snapshot says what they must be; rows that no longer
 * belong are deleted, only rows whose values differ are written, so a second run changes
 * nothing and updated_at stays.
 *
 * Cost: the computation's, plus this month's snapshot rows (primary key prefix).
 *
 * Concurrency: a contract sync in progress is waited for (the sync's lock, shared, taken
 * first), so the history read is one consistent state; then refreshes of one month are
 * serialized (transaction-level advisory lock per month).
 */
DECLARE
    v_month_start date;
    v_next_start date;
    v_month_end date;
    v_business_rows bigint := 0;
    v_business_inserted bigint := 0;
    v_business_updated bigint := 0;
    v_business_deleted bigint := 0;
    v_plan_rows bigint := 0;
    v_plan_inserted bigint := 0;
    v_plan_updated bigint := 0;
    v_plan_deleted bigint := 0;
    v_step_started timestamptz;
    v_ms jsonb := '{}'::jsonb;  -- milliseconds per step
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_month < DATE '1900-01-01' OR p_month >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_month),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    v_month_start := pg_catalog.date_trunc('month', p_month)::date;
    v_next_start := (v_month_start + INTERVAL '1 month')::date;
    v_month_end := v_next_start - 1;
    -- Lock order, everywhere: the sync lock first, then a month's lock (no deadlock with a
    -- hook run that holds the sync lock and refreshes this month).
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtext('cmdm:contract_sync'));
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('cmdm:snapshot'),
                                             extract(year FROM v_month_start)::int * 100
                                             + extract(month FROM v_month_start)::int);

    -- 1. The month's rows as they must be (pg_temp.cmdm_snap_business_new, _plan_new),
    --    analyzed so that the writes below are planned from their counts.
    v_step_started := pg_catalog.clock_timestamp();
    PERFORM customer.compute_monthly_snapshot(p_month);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_business_new (company_id text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2), plan_count integer)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_snap_plan_new (company_id text, plan_code text, product_line_code text, product_line_name text, is_winning_this_year boolean, is_churned_this_year boolean, is_new boolean, is_new_arrival boolean, is_churned boolean, is_strategic boolean, is_existing boolean, aum_balance numeric(20, 2))';
    ANALYZE pg_temp.cmdm_snap_business_new;
    ANALYZE pg_temp.cmdm_snap_plan_new;
    SELECT count(*) INTO v_business_rows FROM pg_temp.cmdm_snap_business_new;
    SELECT count(*) INTO v_plan_rows FROM pg_temp.cmdm_snap_plan_new;
    v_ms := v_ms || jsonb_build_object('compute', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));
    v_step_started := pg_catalog.clock_timestamp();

    -- 2. Write the difference, per table: rows that no longer belong, rows whose values
    --    changed, new rows.
    DELETE FROM customer.fct_customer_business_monthly_status t
     WHERE t.snapshot_month = v_month_end
       AND NOT EXISTS (SELECT FROM pg_temp.cmdm_snap_business_new n WHERE n.company_id = t.company_id AND n.product_line_code = t.product_line_code);
    GET DIAGNOSTICS v_business_deleted = ROW_COUNT;
    UPDATE customer.fct_customer_business_monthly_status t
       SET product_line_name = n.product_line_name,
           is_winning_this_year = n.is_winning_this_year,
           is_churned_this_year = n.is_churned_this_year,
           is_new = n.is_new,
           is_new_arrival = n.is_new_arrival,
           is_churned = n.is_churned,
           is_strategic = n.is_strategic,
           is_existing = n.is_existing,
           aum_balance = n.aum_balance,
           plan_count = n.plan_count
      FROM pg_temp.cmdm_snap_business_new n
     WHERE t.snapshot_month = v_month_end
       AND n.company_id = t.company_id AND n.product_line_code = t.product_line_code
       AND (t.product_line_name, t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_new_arrival, t.is_churned, t.is_strategic, t.is_existing, t.aum_balance, t.plan_count)
           IS DISTINCT FROM (n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance, n.plan_count);
    GET DIAGNOSTICS v_business_updated = ROW_COUNT;
    INSERT INTO customer.fct_customer_business_monthly_status (snapshot_month, company_id, product_line_code, product_line_name, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned, is_strategic, is_existing, aum_balance, plan_count)
    SELECT v_month_end, n.company_id, n.product_line_code, n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance, n.plan_count
      FROM pg_temp.cmdm_snap_business_new n
     WHERE NOT EXISTS (SELECT FROM customer.fct_customer_business_monthly_status t
                        WHERE t.snapshot_month = v_month_end AND t.company_id = n.company_id AND t.product_line_code = n.product_line_code)
     -- in key order: each index page is then visited once, not once per row
     ORDER BY n.company_id, n.product_line_code;
    GET DIAGNOSTICS v_business_inserted = ROW_COUNT;
    DELETE FROM customer.fct_customer_plan_monthly_status t
     WHERE t.snapshot_month = v_month_end
       AND NOT EXISTS (SELECT FROM pg_temp.cmdm_snap_plan_new n WHERE n.company_id = t.company_id AND n.plan_code = t.plan_code AND n.product_line_code = t.product_line_code);
    GET DIAGNOSTICS v_plan_deleted = ROW_COUNT;
    UPDATE customer.fct_customer_plan_monthly_status t
       SET product_line_name = n.product_line_name,
           is_winning_this_year = n.is_winning_this_year,
           is_churned_this_year = n.is_churned_this_year,
           is_new = n.is_new,
           is_new_arrival = n.is_new_arrival,
           is_churned = n.is_churned,
           is_strategic = n.is_strategic,
           is_existing = n.is_existing,
           aum_balance = n.aum_balance
      FROM pg_temp.cmdm_snap_plan_new n
     WHERE t.snapshot_month = v_month_end
       AND n.company_id = t.company_id AND n.plan_code = t.plan_code AND n.product_line_code = t.product_line_code
       AND (t.product_line_name, t.is_winning_this_year, t.is_churned_this_year, t.is_new, t.is_new_arrival, t.is_churned, t.is_strategic, t.is_existing, t.aum_balance)
           IS DISTINCT FROM (n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance);
    GET DIAGNOSTICS v_plan_updated = ROW_COUNT;
    INSERT INTO customer.fct_customer_plan_monthly_status (snapshot_month, company_id, plan_code, product_line_code, product_line_name, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned, is_strategic, is_existing, aum_balance)
    SELECT v_month_end, n.company_id, n.plan_code, n.product_line_code, n.product_line_name, n.is_winning_this_year, n.is_churned_this_year, n.is_new, n.is_new_arrival, n.is_churned, n.is_strategic, n.is_existing, n.aum_balance
      FROM pg_temp.cmdm_snap_plan_new n
     WHERE NOT EXISTS (SELECT FROM customer.fct_customer_plan_monthly_status t
                        WHERE t.snapshot_month = v_month_end AND t.company_id = n.company_id AND t.plan_code = n.plan_code AND t.product_line_code = n.product_line_code)
     -- in key order: each index page is then visited once, not once per row
     ORDER BY n.company_id, n.plan_code, n.product_line_code;
    GET DIAGNOSTICS v_plan_inserted = ROW_COUNT;

    RETURN QUERY SELECT v_month_end, v_business_rows, v_business_inserted, v_business_updated,
                        v_business_deleted, v_plan_rows, v_plan_inserted, v_plan_updated,
                        v_plan_deleted,
                        v_ms || jsonb_build_object('writes', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));
END
$fn$;

COMMENT ON FUNCTION customer.refresh_monthly_snapshot(date) IS
    'Monthly status snapshot of one month at product-line and plan grain, as of that month (docs/snapshots.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.run_post_etl_hooks.sql.j2",
        "kind": "procedure",
        "identity": "customer.run_post_etl_hooks(text, date)",
        "triggers": [],
        "sha256": "340f9e896bca7c941a15564b2a07ad3eac00a93e36ef36bcaee83b7f5c7a696f",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.run_post_etl_hooks.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE PROCEDURE customer.run_post_etl_hooks(p_domain text, p_period date)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * The ETL's explicit hook: CALL customer.run_post_etl_hooks('annuity_performance', '2026-01-31')
 * after loading a month with `SET LOCAL cmdm.post_hooks = off`, in the same transaction or
 * a later one. Runs the domain's registered steps for the period (cmdm.run_hooks:
 * contract sync, then the snapshot refresh of every month depending on it) and logs them
 * in cmdm.hook_run. Months the same transaction already queued for its commit-time run
 * are not run twice.
 */
BEGIN
    IF p_period IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_period < DATE '1900-01-01' OR p_period >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_period),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    PERFORM FROM cmdm.run_hooks(p_domain, ARRAY[p_period], '{}', 'call');
END
$fn$;

COMMENT ON PROCEDURE customer.run_post_etl_hooks(text, date) IS
    'Runs and logs the post-ETL steps of a domain for one month (docs/hooks.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.sync_compute_states.sql.j2",
        "kind": "function",
        "identity": "customer.sync_compute_states(date)",
        "triggers": [],
        "sha256": "ff820eff7109918605bf0a80f552a327df0b8403bbfab38c6eb3ca4982195abd",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_compute_states.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_compute_states(p_month_end date)
    RETURNS bigint
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
AS $fn$
/*
 * What: step 2 of customer.sync_contract_status: the new state of every key in
 * pg_temp.cmdm_sync_key at each loaded month of its window, into pg_temp.cmdm_sync_state
 * (valid_from: the month-end, valid_to: the next loaded month's, or the end of time);
 * returns how many. The loaded months of the windows, each with the one after it, go to
 * pg_temp.cmdm_sync_months first.
 *
 * A state is (contract status, status year, annual statuses): the status from this
 * month's facts where the key is seen, else the suspended status under suspend (a key
 * absent from a loaded month after its first appearance); the annual statuses from the
 * stored decision of the month's year (customer.annual_*_status, one probe per key and
 * year), or for a key without a row there (no facts at the reference month) the rule's
 * value over no facts. The years of the windows are decided before this step.
 */
DECLARE
    v_month_end date := p_month_end;
    v_month_start date := pg_catalog.date_trunc('month', p_month_end)::date;
    v_states bigint;
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    -- The loaded months inside the windows, each with the loaded month after it.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_months (month_end date, next_end date)';
    PERFORM cmdm.scratch_table('cmdm_sync_months', 'month_end date, next_end date');
    INSERT INTO pg_temp.cmdm_sync_months (month_end, next_end)
    SELECT l, lead(l, 1, DATE '9999-12-31') OVER (ORDER BY l)
      FROM customer.loaded_months(v_month_start,
                                  (SELECT max(k.window_end) FROM pg_temp.cmdm_sync_key k)) l;
    ANALYZE pg_temp.cmdm_sync_months;  -- usually one month: probes, not hashes, below


    -- The new states at the loaded months of each window, with the annual statuses of each
    -- month's year as decided (a key without a decided row: the rule over no facts).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_state (key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_sync_state', 'key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean');
    INSERT INTO pg_temp.cmdm_sync_state (key_no, valid_from, valid_to, contract_status, status_year, is_strategic, is_existing)
    SELECT k.key_no, s.month_end, s.next_end,
           CASE WHEN s.month_end = v_month_end AND k.present THEN k.contract_status
                ELSE '停缴' END,
           extract(year FROM s.month_end)::int,
           coalesce(a_company.is_strategic, (SELECT (coalesce(ref_company."sum_期末资产规模", 0) >= 500000000::numeric OR coalesce(ref_company."top_10_by_机构代码", false)) FROM (SELECT NULL::numeric AS "sum_期末资产规模", NULL::boolean AS "top_10_by_机构代码") ref_company)),
           coalesce(a_product_line.is_existing, (SELECT coalesce(ref_product_line."sum_期末资产规模", 0) > 0::numeric FROM (SELECT NULL::numeric AS "sum_期末资产规模") ref_product_line))
      FROM pg_temp.cmdm_sync_key k
      JOIN pg_temp.cmdm_sync_months s
        ON s.month_end >= v_month_end AND s.month_end < k.window_end
      LEFT JOIN customer.annual_company_status a_company
             ON a_company.status_year = extract(year FROM s.month_end)::int AND a_company.company_id = k.company_id
      LEFT JOIN customer.annual_product_line_status a_product_line
             ON a_product_line.status_year = extract(year FROM s.month_end)::int AND a_product_line.company_id = k.company_id AND a_product_line.product_line_code = k.product_line_code
     WHERE (s.month_end = v_month_end AND k.present)
        OR k.appeared_before
        OR (k.present AND s.month_end > v_month_end)
    ;
    GET DIAGNOSTICS v_states = ROW_COUNT;
    RETURN v_states;
END
$fn$;

COMMENT ON FUNCTION customer.sync_compute_states(date) IS
    'Step 2 of the contract sync: the new states of the keys in scope at the loaded months of their windows, into pg_temp.cmdm_sync_state (docs/contract-sync.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.sync_contract_status.sql.j2",
        "kind": "function",
        "identity": "customer.sync_contract_status(date)",
        "triggers": [],
        "sha256": "a367009b3566c2c47dd54c04c5463780554a65001c51c298871a407da8255029",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_contract_status.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_contract_status(p_period date)
    RETURNS TABLE (period date, keys_seen bigint, keys_changed bigint, keys_unchanged bigint, versions_opened bigint, versions_closed bigint, versions_removed bigint, versions_reflagged bigint, rejected_null_key bigint, rejected_unknown_product_line bigint, rejected_unknown_company bigint, changed_until date, snapshot_months date[], ms jsonb)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET default_statistics_target = 10
AS $fn$
/*
 * What: make customer.customer_plan_contract exactly the SCD Type 2 history of DESIGN §4
 * after the facts of p_period's month changed (loaded, restated, deleted) or did not (a
 * second run changes nothing). The tracked state of a key at a loaded month is
 * (contract_status, status_year, is_strategic, is_existing); the history is its run-length
 * encoding over the loaded months from the key's first appearance; a key absent from a
 * loaded month is handled by on_missing = suspend.
 *
 * Why it can be incremental: a change to one month's facts changes the states at that
 * month only, plus
 *   - the annual statuses of a year whose reference month this month is, was or becomes
 *     (a year decided from it; the year of the next loaded month; this year when no
 *     earlier month is loaded): customer.decide_annual_statuses stores the new decision and
 *     re-flags that year's versions in place, as a version never spans two years;
 *   - under suspend, for a key whose first appearance moves to or away from this month,
 *     its suspended states up to its next appearance.
 * A key is provably unchanged when its state at this month equals that of the version
 * covering the month (same year, so same annual statuses). Every other key gets its
 * versions around the month rebuilt: the parts of its old versions outside the window,
 * one piece per loaded month inside it, consecutive equal states merged; the difference
 * is written (deletes, valid_to moves, inserts). Unchanged versions keep their row.
 *
 * Annual statuses of a key's year come from the year's stored decision
 * (customer.annual_*_status, one probe per key and year); a key without a row there had no
 * facts at the reference month and gets the rule's value over no facts.
 *
 * The steps, one routine each, pass sets to each other in pg_temp scratch tables
 * (pg_temp.cmdm_sync_*, ANALYZEd after they are filled, so the planner plans from counts):
 *   1 customer.sync_scope_keys        the keys whose history may change (+ rejects)
 *   - customer.decide_annual_statuses the years this month decides, and any year a
 *                                     window reaches that is not decided yet
 *   2 customer.sync_compute_states    their new states at the loaded months of the window
 *   3 customer.sync_merge_versions    the versions they must have (gaps and islands)
 *   4 customer.sync_write_versions    the difference written
 *   5 customer.sync_snapshot_months   the snapshot months the change can affect
 * Each step's time (ms) is returned in the column ms, which the hook log keeps.
 *
 * Cost: one scan of the month's facts (index on "月度"), the versions covering the
 * month (GiST on the validity range), index lookups for the keys that change, and the
 * reference month's facts only when a year must be decided. Never the whole history.
 *
 * Rejects: fact rows with a NULL key part, an unknown product line or an unknown company
 * go to cmdm.rejected_fact (replacing the month's earlier rejects) and are counted.
 * Concurrency: one sync at a time (transaction-level advisory lock).
 */
DECLARE
    v_month_start date;
    v_month_end date;
    v_next_start date;
    v_year integer;
    v_prev date;                -- month-end of the last loaded month before this one
    v_next date;                -- month-end of the first loaded month after this one
    v_loaded boolean;           -- does this month have facts (any row)?
    v_window_end date;          -- end of a default window: the next loaded month, or the end of time
    v_decide_years integer[];   -- years whose reference month this month is, was or becomes
    v_candidate_years integer[];  -- years a window reaches that are not decided yet
    v_reflagged_years integer[] := '{}'::integer[];  -- years whose versions took new annual flags
    v_flags_updated bigint := 0;
    v_scope record;             -- customer.sync_scope_keys' counts
    v_written record;           -- customer.sync_write_versions' counts
    v_changed_until date;
    v_step_started timestamptz;
    v_ms jsonb := '{}'::jsonb;  -- milliseconds per step
BEGIN
    IF p_period IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = 'period is NULL',
            HINT = 'Pass a date in the month to process, e.g. ''2026-01-31'' or ''2026-01-01''.';
    END IF;
    IF p_period < DATE '1900-01-01' OR p_period >= DATE '2201-01-01' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = pg_catalog.format('period %s is out of range', p_period),
            HINT = 'Periods are months from 1900-01 to 2200-12.';
    END IF;
    -- Syncs of neighbouring months rewrite the same versions: one at a time.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('cmdm:contract_sync'));

    v_month_start := pg_catalog.date_trunc('month', p_period)::date;
    v_next_start := (v_month_start + INTERVAL '1 month')::date;
    v_month_end := v_next_start - 1;
    v_year := extract(year FROM v_month_start)::int;
    -- The nearest fact month below or above a bound: ORDER BY … LIMIT 1 is one index probe
    -- whatever the statistics say (right after a load they do not know the new month, and
    -- min()/max() may then be planned as an aggregate over all of its rows).
    v_loaded := coalesce((SELECT f."月度" >= v_month_start FROM business."规模明细" f
                           WHERE f."月度" < v_next_start ORDER BY f."月度" DESC LIMIT 1), false);
    v_prev := (SELECT (pg_catalog.date_trunc('month', f."月度") + INTERVAL '1 month - 1 day')::date
                 FROM business."规模明细" f WHERE f."月度" < v_month_start ORDER BY f."月度" DESC LIMIT 1);
    v_next := (SELECT (pg_catalog.date_trunc('month', f."月度") + INTERVAL '1 month - 1 day')::date
                 FROM business."规模明细" f WHERE f."月度" >= v_next_start ORDER BY f."月度" LIMIT 1);
    v_window_end := coalesce(v_next, DATE '9999-12-31');
    -- A year's decision depends on its reference month only: the years to decide again are
    -- those decided from this month (its facts changed or are gone), the next loaded
    -- month's year when it is a later one (this month may now be its last month before
    -- January), this year when no earlier month is loaded (its first month may have moved),
    -- and this year when it is loaded and undecided, or no longer loaded at all.
    v_decide_years := ARRAY(
        SELECT r.status_year FROM customer.annual_reference r WHERE r.reference_month = v_month_end
        UNION
        SELECT extract(year FROM v_next)::int WHERE extract(year FROM v_next) > v_year
        UNION
        SELECT v_year WHERE v_prev IS NULL
        UNION
        SELECT v_year
         WHERE v_loaded AND NOT EXISTS (SELECT FROM customer.annual_reference r WHERE r.status_year = v_year)
        UNION
        SELECT v_year
         WHERE NOT v_loaded
           AND EXISTS (SELECT FROM customer.annual_reference r WHERE r.status_year = v_year)
           AND NOT EXISTS (SELECT FROM business."规模明细" f
                            WHERE f."月度" >= pg_catalog.make_date(v_year, 1, 1)
                              AND f."月度" < pg_catalog.make_date(v_year + 1, 1, 1))
        ORDER BY 1);

    -- A month with no facts that no version starts in, covers or ends at, and that is no
    -- year's reference month: nothing to do but forget its rejects.
    IF NOT v_loaded AND cardinality(v_decide_years) = 0 AND NOT EXISTS (
           SELECT FROM customer.customer_plan_contract c
            WHERE pg_catalog.daterange(c.valid_from, c.valid_to, '[]') @> v_month_end) THEN
        DELETE FROM cmdm.rejected_fact r WHERE r.period = v_month_end;
        RETURN QUERY SELECT v_month_end, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
                            0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, NULL::date,
                            ARRAY[v_month_end], v_ms;
        RETURN;
    END IF;

    -- The years this month decides: their decisions stored, their versions re-flagged in
    -- place where a status changed.
    v_step_started := pg_catalog.clock_timestamp();
    IF cardinality(v_decide_years) > 0 THEN
        SELECT coalesce(sum(d.versions_reflagged), 0),
               coalesce(array_agg(d.status_year) FILTER (WHERE d.versions_reflagged > 0), '{}')
          INTO v_flags_updated, v_reflagged_years
          FROM customer.decide_annual_statuses(v_decide_years) d;
    END IF;
    v_ms := v_ms || jsonb_build_object('decide', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));

    -- 1. The keys whose history may change.
    v_step_started := pg_catalog.clock_timestamp();
    SELECT * INTO STRICT v_scope FROM customer.sync_scope_keys(v_month_end, v_loaded, v_window_end);
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    ANALYZE pg_temp.cmdm_sync_key;
    v_ms := v_ms || jsonb_build_object('scope', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));
    SELECT max(k.window_end) INTO v_changed_until FROM pg_temp.cmdm_sync_key k;

    -- A window may reach a year not decided yet (a history older than the decisions, or a
    -- later month loaded but not synced yet): decide it before the states read it.
    v_step_started := pg_catalog.clock_timestamp();
    v_candidate_years := ARRAY(
        SELECT DISTINCT extract(year FROM l)::int
          FROM customer.loaded_months(v_month_start, v_changed_until) l
         WHERE NOT EXISTS (SELECT FROM customer.annual_reference r
                            WHERE r.status_year = extract(year FROM l)::int));
    IF cardinality(v_candidate_years) > 0 THEN
        SELECT v_flags_updated + coalesce(sum(d.versions_reflagged), 0),
               v_reflagged_years
               || coalesce(array_agg(d.status_year) FILTER (WHERE d.versions_reflagged > 0), '{}')
          INTO v_flags_updated, v_reflagged_years
          FROM customer.decide_annual_statuses(v_candidate_years) d;
    END IF;
    v_ms := jsonb_set(v_ms, '{decide}', to_jsonb((v_ms->>'decide')::numeric + round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1)));

    -- 2. Their new states at the loaded months of their windows.
    v_step_started := pg_catalog.clock_timestamp();
    PERFORM customer.sync_compute_states(v_month_end);
    ANALYZE pg_temp.cmdm_sync_state;
    v_ms := v_ms || jsonb_build_object('states', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));

    -- 3. The versions they must have.
    v_step_started := pg_catalog.clock_timestamp();
    PERFORM customer.sync_merge_versions(v_month_end, v_loaded, v_window_end);
    ANALYZE pg_temp.cmdm_sync_old;
    ANALYZE pg_temp.cmdm_sync_new;
    v_ms := v_ms || jsonb_build_object('history', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));

    -- 4. The difference written.
    v_step_started := pg_catalog.clock_timestamp();
    SELECT * INTO STRICT v_written FROM customer.sync_write_versions();
    v_ms := v_ms || jsonb_build_object('writes', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1));

    -- 5. The snapshot months the change can affect.
    v_step_started := pg_catalog.clock_timestamp();
    RETURN QUERY
    SELECT v_month_end, v_scope.keys_seen, v_written.keys_changed,
           v_scope.keys_in_scope - v_written.keys_changed, v_written.versions_opened,
           v_written.versions_closed, v_written.versions_removed, v_flags_updated,
           v_scope.rejected_null_key, v_scope.rejected_unknown_product_line,
           v_scope.rejected_unknown_company,
           CASE WHEN v_written.keys_changed > 0 THEN v_changed_until END,
           m.months,
           v_ms || jsonb_build_object('dependents', round(1000 * extract(epoch FROM pg_catalog.clock_timestamp() - v_step_started), 1))
      FROM (SELECT customer.sync_snapshot_months(
                       v_month_end, v_next,
                       CASE WHEN v_written.keys_changed > 0 THEN v_changed_until END,
                       v_reflagged_years) AS months) m;
END
$fn$;

COMMENT ON FUNCTION customer.sync_contract_status(date) IS
    'SCD Type 2 sync of customer.customer_plan_contract for one month. Contract status: 正常 when coalesce(m."sum_期末资产规模", 0) > 0::numeric; else 停缴; on_missing suspend (停缴). Annual statuses: is_strategic: 战略客户 (strategic customer): at the year''s reference month the company''s total AUM reaches strategic_threshold, or it is among the whitelist_top_n largest companies by AUM of its branch.; is_existing: 存量客户 (existing customer): the company held assets (AUM > 0) in this product line at the year''s reference month.. rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.sync_merge_versions.sql.j2",
        "kind": "function",
        "identity": "customer.sync_merge_versions(date, boolean, date)",
        "triggers": [],
        "sha256": "f924e62954f882431b696bba4b0e8d60117435a428de23f870b9d0bd708cc0ce",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_merge_versions.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_merge_versions(p_month_end date, p_loaded boolean, p_window_end date)
    RETURNS bigint
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
AS $fn$
/*
 * What: step 3 of customer.sync_contract_status: the versions the keys in scope must
 * have around their windows, into pg_temp.cmdm_sync_new; returns how many. Their current
 * versions that overlap or touch the windows go to pg_temp.cmdm_sync_old (the write step
 * compares the two).
 *
 * How: the old versions cut at the window (the part before it, up to the first loaded
 * month in it; the part after it), plus the new states inside it
 * (pg_temp.cmdm_sync_state) are pieces of one timeline per key; consecutive pieces with
 * equal states merge into one version (gaps and islands). A version may not span two
 * years; the pieces never make one (a piece after the window from a history that is
 * behind its facts is dropped, see below), so the CM002 check at the end is a guard that
 * names the month rather than a violated constraint, should that ever change.
 *
 * Cost: an index lookup per key (company, plan, product line, valid_to), then hash and
 * sort work over the scratch tables.
 */
DECLARE
    v_month_end date := p_month_end;
    v_loaded boolean := p_loaded;
    v_window_end date := p_window_end;
    v_versions bigint;
    v_candidate date;
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_state (key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    -- The versions of these keys that overlap or touch their windows (an index lookup
    -- per key).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_old (contract_id bigint, key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_sync_old', 'contract_id bigint, key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean');
    INSERT INTO pg_temp.cmdm_sync_old (contract_id, key_no, valid_from, valid_to, contract_status, status_year, is_strategic, is_existing)
    SELECT c.contract_id, k.key_no, c.valid_from, c.valid_to, c.contract_status, c.status_year, c.is_strategic, c.is_existing
      FROM pg_temp.cmdm_sync_key k
     CROSS JOIN LATERAL (
           SELECT c.*
             FROM customer.customer_plan_contract c
            WHERE c.company_id = k.company_id AND c.plan_code = k.plan_code
              AND c.product_line_code = k.product_line_code
              AND c.valid_to >= v_month_end
              AND c.valid_from <= k.window_end
           ) c;

    -- Pieces -> merged versions: the old versions cut at the window, the new states inside
    -- it; consecutive pieces with equal states merge (gaps and islands).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_new (key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_sync_new', 'key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean');
    INSERT INTO pg_temp.cmdm_sync_new (key_no, valid_from, valid_to, contract_status, status_year, is_strategic, is_existing)
    WITH piece AS (
        -- the part of an old version before the window, up to the first loaded month in
        -- it; when this month is no longer loaded, its last month now runs to the next one
        SELECT o.key_no, o.valid_from,
               CASE WHEN v_loaded THEN least(o.valid_to, v_month_end) ELSE v_window_end END AS valid_to,
               o.contract_status, o.status_year, o.is_strategic, o.is_existing
          FROM pg_temp.cmdm_sync_old o
         WHERE o.valid_from < v_month_end
        UNION ALL
        -- the part of an old version after the window. One whose year is not the year it
        -- would start in was written before a later month was loaded, and that month is
        -- still to be synced: its states there are unknown until then, so it is dropped
        -- (in a history that is up to date this never happens).
        SELECT o.key_no, greatest(o.valid_from, k.window_end), o.valid_to, o.contract_status, o.status_year, o.is_strategic, o.is_existing
          FROM pg_temp.cmdm_sync_old o
          JOIN pg_temp.cmdm_sync_key k ON k.key_no = o.key_no
         WHERE o.valid_to > k.window_end
           AND o.status_year = extract(year FROM greatest(o.valid_from, k.window_end))
        UNION ALL
        -- the new states inside the window
        SELECT s.key_no, s.valid_from, s.valid_to, s.contract_status, s.status_year, s.is_strategic, s.is_existing
          FROM pg_temp.cmdm_sync_state s
    ), marked AS (
        SELECT p.*,
               CASE WHEN lag(p.valid_to) OVER w = p.valid_from
                     AND (lag(p.contract_status) OVER w, lag(p.status_year) OVER w, lag(p.is_strategic) OVER w, lag(p.is_existing) OVER w)
                         IS NOT DISTINCT FROM (p.contract_status, p.status_year, p.is_strategic, p.is_existing)
                    THEN 0 ELSE 1 END AS starts_version
          FROM piece p
        WINDOW w AS (PARTITION BY p.key_no ORDER BY p.valid_from)
    ), numbered AS (
        SELECT m.*, sum(m.starts_version) OVER (PARTITION BY m.key_no ORDER BY m.valid_from) AS version_no
          FROM marked m
    )
    SELECT n.key_no, min(n.valid_from), max(n.valid_to), n.contract_status, n.status_year, n.is_strategic, n.is_existing
      FROM numbered n
     GROUP BY n.key_no, n.version_no, n.contract_status, n.status_year, n.is_strategic, n.is_existing;
    GET DIAGNOSTICS v_versions = ROW_COUNT;

    -- A version may not span two years. Only a history that is behind its facts (a later
    -- month loaded but never synced) gives one here: say so rather than violate the
    -- ck_contract_status_year constraint.
    SELECT min(n.valid_from) INTO v_candidate
      FROM pg_temp.cmdm_sync_new n
     WHERE n.status_year <> extract(year FROM n.valid_from);
    IF v_candidate IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM002',
            MESSAGE = pg_catalog.format(
                'the contract history is behind the facts: %s is loaded but was never synced',
                pg_catalog.to_char(v_candidate, 'YYYY-MM')),
            HINT = 'Sync every loaded month after its load (the post-ETL hook does), or rebuild '
                   'the history from the first month whose facts changed.';
    END IF;
    RETURN v_versions;
END
$fn$;

COMMENT ON FUNCTION customer.sync_merge_versions(date, boolean, date) IS
    'Step 3 of the contract sync: the versions the keys in scope must have around their windows, into pg_temp.cmdm_sync_new (docs/contract-sync.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.sync_scope_keys.sql.j2",
        "kind": "function",
        "identity": "customer.sync_scope_keys(date, boolean, date)",
        "triggers": [],
        "sha256": "becf7ab1f0955744aee1ef9251bd8bc8041817cd35242bb5717a72af81ef8044",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_scope_keys.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_scope_keys(p_month_end date, p_loaded boolean, p_window_end date)
    RETURNS TABLE (keys_seen bigint, keys_in_scope bigint, keys_to_rebuild bigint, rejected_null_key bigint, rejected_unknown_product_line bigint, rejected_unknown_company bigint)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = force_custom_plan
AS $fn$
/*
 * What: step 1 of customer.sync_contract_status: the contract keys whose history may
 * change because the month ending p_month_end changed, into pg_temp.cmdm_sync_key, one
 * row each (key_no numbers them for the later steps):
 *   - the month's facts aggregated per key in one scan, with the key's contract status
 *     (rules: contract.status), into pg_temp.cmdm_sync_month;
 *   - every key seen this month or with a version covering the month-end (or ending at
 *     it), minus those provably unchanged: a state at this month equal to the covering
 *     version's, in the same year (same year, so the same annual statuses);
 *   - window_end: the states of a key are recomputed at the loaded months in
 *     [this month, window_end): p_window_end (the next loaded month), or under suspend,
 *     for a key whose first appearance moves to or away from this month, its next
 *     appearance in the facts.
 * Keys seen this month that are not contracts (a NULL key part, an unknown product line
 * or company) leave the scope; their fact rows go to cmdm.rejected_fact, which is cleared
 * of the month's earlier rejects first.
 *
 * Cost: one scan of the month's facts (index on "月度"), the versions covering the
 * month-end (GiST on the validity range); rejects: one more scan of the month.
 */
DECLARE
    v_month_end date := p_month_end;
    v_month_start date := pg_catalog.date_trunc('month', p_month_end)::date;
    v_next_start date := p_month_end + 1;
    v_year integer := extract(year FROM p_month_end)::int;
    v_loaded boolean := p_loaded;
    v_window_end date := p_window_end;
    v_keys_seen bigint := 0;
    v_scope bigint := 0;
    v_changed bigint := 0;
    v_rejected_keys bigint := 0;
    v_null_key bigint := 0;
    v_unknown_product_line bigint := 0;
    v_unknown_company bigint := 0;
    v_candidate date;
BEGIN
    -- The month's facts in one scan, aggregated per key as they come, with each key's
    -- contract status. Which of these keys are not contracts (rejects) is decided below,
    -- for the few keys that have no version covering the month: a version's key is known
    -- to be valid.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_month (company_id text, plan_code text, product_line_code text, contract_status text)';
    PERFORM cmdm.scratch_table('cmdm_sync_month', 'company_id text, plan_code text, product_line_code text, contract_status text');
    INSERT INTO pg_temp.cmdm_sync_month (company_id, plan_code, product_line_code, contract_status)
    SELECT m.company_id, m.plan_code, m.product_line_code,
           CASE
               WHEN coalesce(m."sum_期末资产规模", 0) > 0::numeric
                   THEN '正常'
               ELSE '停缴'
           END
      FROM (SELECT f.company_id::text AS company_id,
                   f."计划代码"::text AS plan_code,
                   f."产品线代码"::text AS product_line_code,
                   sum(f."期末资产规模") AS "sum_期末资产规模"
              FROM business."规模明细" f
             WHERE f."月度" >= v_month_start AND f."月度" < v_next_start
             GROUP BY 1, 2, 3) m;
    GET DIAGNOSTICS v_keys_seen = ROW_COUNT;
    ANALYZE pg_temp.cmdm_sync_month;  -- its size and keys, for the join below
    DELETE FROM cmdm.rejected_fact r WHERE r.period = v_month_end;


    -- The keys whose history may change (see the header).
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    PERFORM cmdm.scratch_table('cmdm_sync_key', 'key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean');
    WITH stab AS MATERIALIZED (
        SELECT c.company_id::text AS company_id, c.plan_code::text AS plan_code,
               c.product_line_code::text AS product_line_code,
               c.key_id, c.contract_id, c.valid_from, c.valid_to, c.contract_status, c.status_year, c.is_strategic, c.is_existing
          FROM customer.customer_plan_contract c
         WHERE pg_catalog.daterange(c.valid_from, c.valid_to, '[]') @> v_month_end
    ), scope AS (
        -- stab holds, per key, the version covering the month (valid_to > v_month_end) and
        -- one ending at it (valid_to = v_month_end: the key was absent, or changed state, here)
        SELECT coalesce(m.company_id, v.company_id) AS company_id,
               coalesce(m.plan_code, v.plan_code) AS plan_code,
               coalesce(m.product_line_code, v.product_line_code) AS product_line_code,
               v.key_id,
               m.seen IS NOT NULL AS present,
               m.contract_status,
               -- a version before this month: the covering one starts earlier, or another
               -- ends here
               coalesce(v.valid_from < v_month_end, false)
               OR (v.valid_from = v_month_end
                   AND EXISTS (SELECT FROM stab e
                                WHERE e.valid_to = v_month_end AND e.company_id = v.company_id AND e.plan_code = v.plan_code AND e.product_line_code = v.product_line_code)) AS appeared_before,
               v.contract_id AS covering_id, v.valid_from AS covering_from,
v.contract_status AS old_contract_status, v.status_year AS old_status_year, v.is_strategic AS old_is_strategic, v.is_existing AS old_is_existing
          FROM (SELECT m.*, true AS seen FROM pg_temp.cmdm_sync_month m) m
          FULL JOIN (SELECT * FROM stab WHERE stab.valid_to > v_month_end) v ON v.company_id = m.company_id AND v.plan_code = m.plan_code AND v.product_line_code = m.product_line_code
        UNION ALL
        -- keys whose only version ends here and that are not seen now
        SELECT e.company_id, e.plan_code, e.product_line_code, e.key_id, false, NULL, true,
               NULL, NULL, NULL, NULL, NULL, NULL
          FROM stab e
         WHERE e.valid_to = v_month_end
           AND NOT EXISTS (SELECT FROM stab v WHERE v.valid_to > v_month_end AND v.company_id = e.company_id AND v.plan_code = e.plan_code AND v.product_line_code = e.product_line_code)
           AND NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_month m WHERE m.company_id = e.company_id AND m.plan_code = e.plan_code AND m.product_line_code = e.product_line_code)
    ), decided AS (
        SELECT s.*,
               -- the new status at this month, if the key has a state here
               CASE WHEN s.present THEN s.contract_status
                    WHEN s.appeared_before THEN '停缴'
               END AS new_status
          FROM scope s
    ), counted AS (
        SELECT count(*) AS n FROM decided
    ), candidate AS (
        INSERT INTO pg_temp.cmdm_sync_key
               (key_no, key_id, company_id, plan_code, product_line_code, present, contract_status,
                appeared_before, window_end, covering_id, covering_from,
                old_contract_status, old_status_year, old_is_strategic, old_is_existing)
        SELECT row_number() OVER (), s.key_id, s.company_id, s.plan_code, s.product_line_code, s.present,
               s.contract_status, s.appeared_before,
               CASE
                   -- seen before this month, or first seen here and still here
                   WHEN s.appeared_before OR (s.covering_id IS NOT NULL AND s.present)
                       THEN v_window_end
                   -- the first appearance moves to or away from this month: the suspended
                   -- states up to the key's next appearance change (found below)
               END,
               s.covering_id, s.covering_from, s.old_contract_status, s.old_status_year, s.old_is_strategic, s.old_is_existing
          FROM decided s
         WHERE NOT CASE
                   WHEN v_loaded THEN
                        (s.covering_id IS NOT NULL AND s.old_status_year = v_year
                         AND s.new_status IS NOT DISTINCT FROM s.old_contract_status)
                        OR (s.covering_id IS NULL AND s.new_status IS NULL)
                   ELSE s.covering_id IS NOT NULL AND s.covering_from < v_month_end
               END
        RETURNING 1
    )
    SELECT (SELECT n FROM counted), (SELECT count(*) FROM candidate) INTO v_scope, v_changed;

    -- Keys seen this month that have no version covering it: those with a NULL key part,
    -- an unknown product line or an unknown company are not contracts. They leave the
    -- scope, and their fact rows go to cmdm.rejected_fact (the month's earlier rejects were
    -- deleted above). A key with a covering version passed these checks, and the
    -- foreign keys of customer.contract_key hold it valid since.
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_reject (company_id text, plan_code text, product_line_code text, reason text)';
    PERFORM cmdm.scratch_table('cmdm_sync_reject', 'company_id text, plan_code text, product_line_code text, reason text');
    WITH rejected AS (
        DELETE FROM pg_temp.cmdm_sync_key k
         USING (SELECT n.key_no,
                       CASE WHEN n.company_id IS NULL OR n.plan_code IS NULL
                                 OR n.product_line_code IS NULL THEN 'null_key'
                            WHEN pl."产品线代码" IS NULL THEN 'unknown_product_line'
                            WHEN co.company_id IS NULL THEN 'unknown_company'
                       END AS reason
                  FROM pg_temp.cmdm_sync_key n
                  LEFT JOIN mapping."产品线" pl ON pl."产品线代码" = n.product_line_code
                  LEFT JOIN customer."年金客户" co ON co.company_id = n.company_id
                 WHERE n.present AND n.covering_id IS NULL) r
         WHERE k.key_no = r.key_no AND r.reason IS NOT NULL
        RETURNING k.company_id, k.plan_code, k.product_line_code, r.reason
    )
    INSERT INTO pg_temp.cmdm_sync_reject (company_id, plan_code, product_line_code, reason)
    SELECT r.company_id, r.plan_code, r.product_line_code, r.reason FROM rejected r;
    GET DIAGNOSTICS v_rejected_keys = ROW_COUNT;
    IF v_rejected_keys > 0 THEN
        v_keys_seen := v_keys_seen - v_rejected_keys;
        v_scope := v_scope - v_rejected_keys;
        v_changed := v_changed - v_rejected_keys;
        -- one more scan of the month: rows with a NULL key part, and (an equality join,
        -- their key parts are not NULL) the rows of the other rejected keys
        INSERT INTO cmdm.rejected_fact
               (period, reason, company_id, plan_code, product_line_code, portfolio_code, aum)
        SELECT v_month_end, coalesce(r.reason, 'null_key'), f.company_id, f."计划代码",
               f."产品线代码", f."组合代码", f."期末资产规模"
          FROM business."规模明细" f
          LEFT JOIN pg_temp.cmdm_sync_reject r
            ON r.company_id = f.company_id::text
           AND r.plan_code = f."计划代码"::text
           AND r.product_line_code = f."产品线代码"::text
           AND r.reason <> 'null_key'
         WHERE f."月度" >= v_month_start AND f."月度" < v_next_start
           AND (f.company_id IS NULL OR f."计划代码" IS NULL
                OR f."产品线代码" IS NULL OR r.reason IS NOT NULL);
        SELECT count(*) FILTER (WHERE r.reason = 'null_key'),
               count(*) FILTER (WHERE r.reason = 'unknown_product_line'),
               count(*) FILTER (WHERE r.reason = 'unknown_company')
          INTO v_null_key, v_unknown_product_line, v_unknown_company
          FROM cmdm.rejected_fact r
         WHERE r.period = v_month_end;
    END IF;

    -- A key whose first appearance moves to or away from this month: its suspended states
    -- run up to its next appearance in the facts, found month by month (usually the next
    -- loaded month; none at all when this is the latest month).
    IF EXISTS (SELECT FROM pg_temp.cmdm_sync_key k WHERE k.window_end IS NULL) THEN
        FOR v_candidate IN SELECT l FROM customer.loaded_months(v_next_start, NULL) l LOOP
            UPDATE pg_temp.cmdm_sync_key k
               SET window_end = v_candidate
             WHERE k.window_end IS NULL
               AND EXISTS (SELECT FROM business."规模明细" f
                            WHERE f."月度" >= pg_catalog.date_trunc('month', v_candidate)::date
                              AND f."月度" <= v_candidate
                              AND f.company_id = k.company_id
                              AND f."计划代码" = k.plan_code
                              AND f."产品线代码" = k.product_line_code);
            EXIT WHEN NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_key k WHERE k.window_end IS NULL);
        END LOOP;
        UPDATE pg_temp.cmdm_sync_key k SET window_end = DATE '9999-12-31' WHERE k.window_end IS NULL;
    END IF;


    RETURN QUERY SELECT v_keys_seen, v_scope, v_changed, v_null_key, v_unknown_product_line,
                        v_unknown_company;
END
$fn$;

COMMENT ON FUNCTION customer.sync_scope_keys(date, boolean, date) IS
    'Step 1 of the contract sync: the keys whose history may change, into pg_temp.cmdm_sync_key (docs/contract-sync.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.sync_snapshot_months.sql.j2",
        "kind": "function",
        "identity": "customer.sync_snapshot_months(date, date, date, integer[])",
        "triggers": [],
        "sha256": "5602bdde456b63ecf6d3dfb3c460027097d24f48fbaf0ae605835f3d120bd229",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_snapshot_months.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_snapshot_months(p_month_end date, p_next date, p_changed_until date, p_reflagged_years integer[])
    RETURNS date[]
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
AS $fn$
/*
 * What: step 5 of customer.sync_contract_status: the snapshot months (month-ends,
 * ascending) the sync of p_month_end's month can have changed (docs/snapshots.md): this
 * month; the next loaded month p_next (presence compares with this one); the loaded
 * months whose states were recomputed, through p_changed_until (NULL: no version was
 * rewritten); the loaded months of the re-flagged years; and where a first appearance
 * moved to or away from this month, the other first appearance of that key, at each grain
 * first_appearance is evaluated at.
 *
 * Reads pg_temp.cmdm_sync_key (the keys in scope) and the history as written.
 */
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    RETURN ARRAY(
        SELECT DISTINCT d.month
          FROM (SELECT p_month_end AS month
                UNION ALL
                SELECT p_next
                UNION ALL
                SELECT l FROM customer.loaded_months(p_month_end + 1, p_changed_until) l
                 WHERE p_changed_until IS NOT NULL
                UNION ALL
                SELECT l FROM unnest(p_reflagged_years) y (status_year),
                       customer.loaded_months(pg_catalog.make_date(y.status_year, 1, 1),
                                              pg_catalog.make_date(y.status_year, 12, 1)) l
                UNION ALL
                -- first appearances at grain product_line: for each product_line key of a key
                -- whose presence here changed (it had a state here and no facts now, or
                -- facts now and no state before) and that has no version before this month:
                -- the first version of each of its contract keys, the first after this
                -- month, and the end of its suspended window
                SELECT x.month
                  FROM (SELECT DISTINCT k.company_id, k.product_line_code                          FROM pg_temp.cmdm_sync_key k
                         WHERE NOT k.appeared_before
                           AND k.present <> (k.covering_id IS NOT NULL)) g
                 CROSS JOIN LATERAL (
                       SELECT c.plan_code, min(c.valid_from) AS first_from,
                              min(c.valid_from) FILTER (WHERE c.valid_from > p_month_end) AS next_from
                         FROM customer.customer_plan_contract c
                        WHERE c.company_id = g.company_id AND c.product_line_code = g.product_line_code
                        GROUP BY c.product_line_code, c.plan_code
                       ) v
                 CROSS JOIN LATERAL (VALUES (v.first_from), (v.next_from)) x (month)
                 WHERE p_next IS NOT NULL  -- else no month after this one: nothing to find
                   AND NOT EXISTS (SELECT FROM customer.customer_plan_contract e
                                    WHERE e.company_id = g.company_id AND e.product_line_code = g.product_line_code AND e.valid_from < p_month_end)
                UNION ALL
                SELECT k.window_end
                  FROM pg_temp.cmdm_sync_key k
                 WHERE p_next IS NOT NULL
                   AND NOT k.appeared_before
                   AND k.present <> (k.covering_id IS NOT NULL)
                   AND NOT EXISTS (SELECT FROM customer.customer_plan_contract e
                                    WHERE e.company_id = k.company_id AND e.product_line_code = k.product_line_code AND e.valid_from < p_month_end)
                UNION ALL
                -- first appearances at grain plan: for each plan key of a key
                -- whose presence here changed (it had a state here and no facts now, or
                -- facts now and no state before) and that has no version before this month:
                -- the first version of each of its contract keys, the first after this
                -- month, and the end of its suspended window
                SELECT x.month
                  FROM (SELECT DISTINCT k.company_id, k.plan_code, k.product_line_code                          FROM pg_temp.cmdm_sync_key k
                         WHERE NOT k.appeared_before
                           AND k.present <> (k.covering_id IS NOT NULL)) g
                 CROSS JOIN LATERAL (
                       SELECT c.plan_code, min(c.valid_from) AS first_from,
                              min(c.valid_from) FILTER (WHERE c.valid_from > p_month_end) AS next_from
                         FROM customer.customer_plan_contract c
                        WHERE c.company_id = g.company_id AND c.plan_code = g.plan_code AND c.product_line_code = g.product_line_code
                        GROUP BY c.product_line_code, c.plan_code
                       ) v
                 CROSS JOIN LATERAL (VALUES (v.first_from), (v.next_from)) x (month)
                 WHERE p_next IS NOT NULL  -- else no month after this one: nothing to find
                   AND NOT EXISTS (SELECT FROM customer.customer_plan_contract e
                                    WHERE e.company_id = g.company_id AND e.plan_code = g.plan_code AND e.product_line_code = g.product_line_code AND e.valid_from < p_month_end)
                UNION ALL
                SELECT k.window_end
                  FROM pg_temp.cmdm_sync_key k
                 WHERE p_next IS NOT NULL
                   AND NOT k.appeared_before
                   AND k.present <> (k.covering_id IS NOT NULL)
                   AND NOT EXISTS (SELECT FROM customer.customer_plan_contract e
                                    WHERE e.company_id = k.company_id AND e.plan_code = k.plan_code AND e.product_line_code = k.product_line_code AND e.valid_from < p_month_end)
               ) d
         WHERE d.month IS NOT NULL AND d.month >= p_month_end AND d.month < DATE '9999-12-31'
         ORDER BY 1);
END
$fn$;

COMMENT ON FUNCTION customer.sync_snapshot_months(date, date, date, integer[]) IS
    'Step 5 of the contract sync: the snapshot months its change can affect (docs/snapshots.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/functions/customer.sync_write_versions.sql.j2",
        "kind": "function",
        "identity": "customer.sync_write_versions()",
        "triggers": [],
        "sha256": "e9aa076f90badaa45fadb76d458243dc89cadedb9c2ce9bbc4c45af858d58879",
        "sql": """\
-- Generated by cmdm from sql/functions/customer.sync_write_versions.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION customer.sync_write_versions()
    RETURNS TABLE (keys_changed bigint, versions_opened bigint, versions_closed bigint, versions_removed bigint)
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
    SET jit = off
    SET plan_cache_mode = auto
AS $fn$
/*
 * What: step 4 of customer.sync_contract_status: make the keys in scope have exactly the
 * versions of pg_temp.cmdm_sync_new, writing only the difference with their current ones
 * (pg_temp.cmdm_sync_old): versions no longer wanted are deleted, versions that keep
 * their start and state but end elsewhere get their valid_to moved (and keep their row:
 * contract_id, created_at), new versions are inserted. A key seen for the first time is
 * registered in customer.contract_key; a key left without versions leaves it.
 *
 * Why plan_cache_mode = auto here (the other steps force custom plans): a foreign-key
 * check is a query the server plans once per session; under force_custom_plan it would be
 * planned again for every row written (measured: ~80 µs a row, most of a write's cost).
 */
DECLARE
    v_changed bigint := 0;
    v_opened bigint := 0;
    v_closed bigint := 0;
    v_removed bigint := 0;
    v_delete_ids bigint[];
    v_move_ids bigint[];
    v_move_to date[];
BEGIN
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_key (key_no bigint, key_id integer, company_id text, plan_code text, product_line_code text, present boolean, contract_status text, appeared_before boolean, window_end date, covering_id bigint, covering_from date, old_contract_status text, old_status_year integer, old_is_strategic boolean, old_is_existing boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_old (contract_id bigint, key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.cmdm_sync_new (key_no bigint, valid_from date, valid_to date, contract_status text, status_year integer, is_strategic boolean, is_existing boolean)';
    -- Deletes first, then valid_to moves (safe in any order once the deleted versions are
    -- gone), then inserts: never a transient overlap.
    SELECT coalesce(array_agg(o.contract_id), '{}') INTO v_delete_ids
      FROM pg_temp.cmdm_sync_old o
     WHERE NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_new n
                        WHERE n.key_no = o.key_no AND n.valid_from = o.valid_from
                          AND (n.contract_status, n.status_year, n.is_strategic, n.is_existing) IS NOT DISTINCT FROM (o.contract_status, o.status_year, o.is_strategic, o.is_existing));
    DELETE FROM customer.customer_plan_contract c WHERE c.contract_id = ANY (v_delete_ids);
    GET DIAGNOSTICS v_removed = ROW_COUNT;

    SELECT coalesce(array_agg(o.contract_id), '{}'), coalesce(array_agg(n.valid_to), '{}')
      INTO v_move_ids, v_move_to
      FROM pg_temp.cmdm_sync_old o
      JOIN pg_temp.cmdm_sync_new n
        ON n.key_no = o.key_no AND n.valid_from = o.valid_from
       AND (n.contract_status, n.status_year, n.is_strategic, n.is_existing) IS NOT DISTINCT FROM (o.contract_status, o.status_year, o.is_strategic, o.is_existing)
     WHERE n.valid_to <> o.valid_to;
    UPDATE customer.customer_plan_contract c
       SET valid_to = m.valid_to
      FROM unnest(v_move_ids, v_move_to) AS m (contract_id, valid_to)
     WHERE c.contract_id = ANY (v_move_ids)
       AND c.contract_id = m.contract_id;
    GET DIAGNOSTICS v_closed = ROW_COUNT;

    -- Keys that get versions and had none covering the month: their key_id, registered
    -- when the key is new (index probes, a few per new key).
    INSERT INTO customer.contract_key (company_id, plan_code, product_line_code)
    SELECT k.company_id, k.plan_code, k.product_line_code
      FROM pg_temp.cmdm_sync_key k
     WHERE k.key_id IS NULL
       AND EXISTS (SELECT FROM pg_temp.cmdm_sync_new n WHERE n.key_no = k.key_no)
    ON CONFLICT ON CONSTRAINT uq_contract_key DO NOTHING;
    UPDATE pg_temp.cmdm_sync_key k
       SET key_id = (SELECT ck.key_id FROM customer.contract_key ck
                      WHERE ck.company_id = k.company_id AND ck.plan_code = k.plan_code AND ck.product_line_code = k.product_line_code)
     WHERE k.key_id IS NULL;

    INSERT INTO customer.customer_plan_contract
           (key_id, company_id, plan_code, product_line_code, product_line_name, valid_from, valid_to,
            contract_status, status_year, is_strategic, is_existing)
    SELECT k.key_id, k.company_id, k.plan_code, k.product_line_code, pl."产品线", n.valid_from, n.valid_to,
           n.contract_status, n.status_year, n.is_strategic, n.is_existing
      FROM pg_temp.cmdm_sync_new n
      JOIN pg_temp.cmdm_sync_key k ON k.key_no = n.key_no
      JOIN mapping."产品线" pl ON pl."产品线代码" = k.product_line_code
     WHERE NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_old o
                        WHERE o.key_no = n.key_no AND o.valid_from = n.valid_from
                          AND (n.contract_status, n.status_year, n.is_strategic, n.is_existing) IS NOT DISTINCT FROM (o.contract_status, o.status_year, o.is_strategic, o.is_existing))
     -- in key order: each index page is then visited once, not once per row (January
     -- opens a version of every key)
     ORDER BY k.company_id, k.plan_code, k.product_line_code, n.valid_from;
    GET DIAGNOSTICS v_opened = ROW_COUNT;

    -- A key left without any version leaves the key registry (so that, as before there
    -- was one, a company or product line with no contracts can be deleted).
    IF v_removed > 0 THEN
        DELETE FROM customer.contract_key ck
         WHERE ck.key_id = ANY (ARRAY(SELECT k.key_id
                                        FROM pg_temp.cmdm_sync_old o
                                        JOIN pg_temp.cmdm_sync_key k ON k.key_no = o.key_no
                                       WHERE o.contract_id = ANY (v_delete_ids)))
           AND NOT EXISTS (SELECT FROM customer.customer_plan_contract c WHERE c.key_id = ck.key_id);
    END IF;

    -- keys whose versions were rewritten (inserted, moved or deleted)
    SELECT count(DISTINCT x.key_no) INTO v_changed
      FROM (SELECT o.key_no FROM pg_temp.cmdm_sync_old o WHERE o.contract_id = ANY (v_delete_ids || v_move_ids)
            UNION ALL
            SELECT n.key_no FROM pg_temp.cmdm_sync_new n
             WHERE NOT EXISTS (SELECT FROM pg_temp.cmdm_sync_old o
                                WHERE o.key_no = n.key_no AND o.valid_from = n.valid_from
                                  AND (n.contract_status, n.status_year, n.is_strategic, n.is_existing) IS NOT DISTINCT FROM (o.contract_status, o.status_year, o.is_strategic, o.is_existing))) x;

    RETURN QUERY SELECT v_changed, v_opened, v_closed, v_removed;
END
$fn$;

COMMENT ON FUNCTION customer.sync_write_versions() IS
    'Step 4 of the contract sync: write the difference between the wanted and the current versions of the keys in scope (docs/contract-sync.md). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';
""",
    },
    {
        "template": "sql/triggers/business.facts__queue_hooks.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_facts__queue_hooks()",
        "triggers": [
            ["_200_post_etl_hooks_insert", 'business."规模明细"'],
            ["_200_post_etl_hooks_delete", 'business."规模明细"'],
            ["_200_post_etl_hooks_update_old", 'business."规模明细"'],
            ["_200_post_etl_hooks_update_new", 'business."规模明细"'],
        ],
        "sha256": "9d995bad4b449acf3c68263c764b68691be2da5a5bffc0806c6c3b805e56b087",
        "sql": """\
-- Generated by cmdm from sql/triggers/business.facts__queue_hooks.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_facts__queue_hooks()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * AFTER statement triggers on business."规模明细" (INSERT, UPDATE, DELETE): note the
 * months the statement changed in cmdm.hook_queue, once per month per transaction. The
 * queue's deferred trigger (cmdm.tg_hook_queue__run_at_commit) runs the hooks for them at
 * commit, so a load of 50 statements costs one run per month, not 50.
 * `SET cmdm.post_hooks = off` skips this (the ETL then CALLs customer.run_post_etl_hooks).
 * TG_ARGV[0]: the hook domain. Every trigger names its one transition table changed_rows
 * (an UPDATE has two triggers, one for the old rows and one for the new), so one query
 * serves them all.
 */
BEGIN
    IF NOT cmdm.post_hooks_enabled() THEN
        RETURN NULL;
    END IF;
    INSERT INTO cmdm.hook_queue (domain, kind, period)
    SELECT DISTINCT TG_ARGV[0], 'facts', pg_catalog.date_trunc('month', c."月度")::date
      FROM changed_rows c
     WHERE c."月度" IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_facts__queue_hooks() IS
    'Queues the months a statement changed in the facts for the commit-time post-ETL hooks. rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';

DROP TRIGGER IF EXISTS _200_post_etl_hooks_insert ON business."规模明细";
CREATE TRIGGER _200_post_etl_hooks_insert
    AFTER INSERT ON business."规模明细"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_facts__queue_hooks('annuity_performance');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_delete ON business."规模明细";
CREATE TRIGGER _200_post_etl_hooks_delete
    AFTER DELETE ON business."规模明细"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_facts__queue_hooks('annuity_performance');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_update_old ON business."规模明细";
CREATE TRIGGER _200_post_etl_hooks_update_old
    AFTER UPDATE ON business."规模明细"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_facts__queue_hooks('annuity_performance');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_update_new ON business."规模明细";
CREATE TRIGGER _200_post_etl_hooks_update_new
    AFTER UPDATE ON business."规模明细"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_facts__queue_hooks('annuity_performance');
""",
    },
    {
        "template": "sql/triggers/cmdm.hook_queue__run_at_commit.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_hook_queue__run_at_commit()",
        "triggers": [["_100_run_at_commit", "cmdm.hook_queue"]],
        "sha256": "3ba04e2a9b20497ca1e77c5476a8feaa8860e67737dbea9a04c6680b9f071140",
        "sql": """\
-- Generated by cmdm from sql/triggers/cmdm.hook_queue__run_at_commit.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_hook_queue__run_at_commit()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * Deferred constraint trigger on cmdm.hook_queue: at commit, run the post-ETL hooks for
 * everything the transaction queued. The first queued row to fire takes the whole queue
 * of its transaction (every month and events date, per domain: cmdm.run_hooks syncs the
 * months in ascending order, then refreshes each dependent snapshot month once); the
 * rows after it find themselves gone and return. An error aborts the commit with the
 * step, period and cause: the load and everything derived from it roll back together.
 * (SET CONSTRAINTS ... IMMEDIATE runs it at the end of each statement instead.)
 */
DECLARE
    v_domain text;
    v_periods date[];
    v_events date[];
BEGIN
    IF NOT EXISTS (SELECT FROM cmdm.hook_queue q
                    WHERE q.txid = NEW.txid AND q.domain = NEW.domain
                      AND q.kind = NEW.kind AND q.period = NEW.period) THEN
        RETURN NULL;
    END IF;
    FOR v_domain IN
        SELECT DISTINCT q.domain FROM cmdm.hook_queue q
         WHERE q.txid = NEW.txid ORDER BY q.domain
    LOOP
        WITH taken AS (
            DELETE FROM cmdm.hook_queue q
             WHERE q.txid = NEW.txid AND q.domain = v_domain
            RETURNING q.kind, q.period
        )
        SELECT coalesce(pg_catalog.array_agg(t.period) FILTER (WHERE t.kind = 'facts'), '{}'),
               coalesce(pg_catalog.array_agg(t.period) FILTER (WHERE t.kind = 'event'), '{}')
          INTO v_periods, v_events
          FROM taken t;
        PERFORM FROM cmdm.run_hooks(v_domain, v_periods, v_events, 'trigger');
    END LOOP;
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_hook_queue__run_at_commit() IS
    'Runs the post-ETL hooks once per queued month at commit (deferred constraint trigger). rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';

DROP TRIGGER IF EXISTS _100_run_at_commit ON cmdm.hook_queue;
CREATE CONSTRAINT TRIGGER _100_run_at_commit
    AFTER INSERT ON cmdm.hook_queue
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    EXECUTE FUNCTION cmdm.tg_hook_queue__run_at_commit();
""",
    },
    {
        "template": "sql/triggers/customer.events__queue_hooks.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_events__queue_hooks()",
        "triggers": [
            ["_200_post_etl_hooks_insert", 'customer."当年中标"'],
            ["_200_post_etl_hooks_delete", 'customer."当年中标"'],
            ["_200_post_etl_hooks_update_old", 'customer."当年中标"'],
            ["_200_post_etl_hooks_update_new", 'customer."当年中标"'],
            ["_200_post_etl_hooks_insert", 'customer."当年流失"'],
            ["_200_post_etl_hooks_delete", 'customer."当年流失"'],
            ["_200_post_etl_hooks_update_old", 'customer."当年流失"'],
            ["_200_post_etl_hooks_update_new", 'customer."当年流失"'],
        ],
        "sha256": "e85e477099d6d3205b42525d7ff227174c9d41209a257bab5279744a517f718e",
        "sql": """\
-- Generated by cmdm from sql/triggers/customer.events__queue_hooks.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_events__queue_hooks()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * AFTER statement triggers on the events tables of rules/ (customer.当年中标, customer.当年流失):
 * note the dates of the events rows a statement added, removed or re-dated in
 * cmdm.hook_queue. At commit the snapshot months that see those dates are refreshed
 * (customer.event_dependent_months); contract history does not read events.
 * `SET cmdm.post_hooks = off` skips this. TG_ARGV[0]: the hook domain; TG_ARGV[1]: the
 * table's date column (tables may name it differently, hence the dynamic statement).
 */
BEGIN
    IF NOT cmdm.post_hooks_enabled() THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format(
        'INSERT INTO cmdm.hook_queue (domain, kind, period) '
        'SELECT DISTINCT $1, ''event'', c.%1$I FROM changed_rows c WHERE c.%1$I IS NOT NULL '
        'ON CONFLICT DO NOTHING', TG_ARGV[1])
    USING TG_ARGV[0];
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_events__queue_hooks() IS
    'Queues the dates of changed events rows for the commit-time snapshot refresh. rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';

DROP TRIGGER IF EXISTS _200_post_etl_hooks_insert ON customer."当年中标";
CREATE TRIGGER _200_post_etl_hooks_insert
    AFTER INSERT ON customer."当年中标"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_delete ON customer."当年中标";
CREATE TRIGGER _200_post_etl_hooks_delete
    AFTER DELETE ON customer."当年中标"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_update_old ON customer."当年中标";
CREATE TRIGGER _200_post_etl_hooks_update_old
    AFTER UPDATE ON customer."当年中标"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_update_new ON customer."当年中标";
CREATE TRIGGER _200_post_etl_hooks_update_new
    AFTER UPDATE ON customer."当年中标"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_insert ON customer."当年流失";
CREATE TRIGGER _200_post_etl_hooks_insert
    AFTER INSERT ON customer."当年流失"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_delete ON customer."当年流失";
CREATE TRIGGER _200_post_etl_hooks_delete
    AFTER DELETE ON customer."当年流失"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_update_old ON customer."当年流失";
CREATE TRIGGER _200_post_etl_hooks_update_old
    AFTER UPDATE ON customer."当年流失"
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_update_new ON customer."当年流失";
CREATE TRIGGER _200_post_etl_hooks_update_new
    AFTER UPDATE ON customer."当年流失"
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_events__queue_hooks('annuity_performance', '上报月份');
""",
    },
    {
        "template": "sql/triggers/customer.inputs__queue_truncate.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_inputs__queue_truncate()",
        "triggers": [
            ["_200_post_etl_hooks_truncate", 'business."规模明细"'],
            ["_200_post_etl_hooks_truncate", 'customer."当年中标"'],
            ["_200_post_etl_hooks_truncate", 'customer."当年流失"'],
        ],
        "sha256": "deaf4fd6b4e183bbbf7b3f489adee818327ba7c976efc08a678d905db09f6c4f",
        "sql": """\
-- Generated by cmdm from sql/triggers/customer.inputs__queue_truncate.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_inputs__queue_truncate()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * BEFORE TRUNCATE statement triggers on the facts table and the events tables: a TRUNCATE
 * has no transition table, so before the rows go, queue what they covered, for the
 * commit-time hooks: every loaded month (the facts: customer.loaded_months, one index
 * probe per month) or every events date. An ETL that truncates and reloads in one
 * transaction then gets exactly the months that changed or vanished synced, once each.
 * `SET cmdm.post_hooks = off` skips this. TG_ARGV: the hook domain, the kind ('facts' or
 * 'event') and, for events, the date column.
 */
BEGIN
    IF NOT cmdm.post_hooks_enabled() THEN
        RETURN NULL;
    END IF;
    IF TG_ARGV[1] = 'facts' THEN
        INSERT INTO cmdm.hook_queue (domain, kind, period)
        SELECT TG_ARGV[0], 'facts', pg_catalog.date_trunc('month', l.l)::date
          FROM customer.loaded_months() l(l)
        ON CONFLICT DO NOTHING;
    ELSE
        EXECUTE pg_catalog.format(
            'INSERT INTO cmdm.hook_queue (domain, kind, period) '
            'SELECT DISTINCT $1, ''event'', e.%1$I FROM %2$I.%3$I e WHERE e.%1$I IS NOT NULL '
            'ON CONFLICT DO NOTHING', TG_ARGV[2], TG_TABLE_SCHEMA, TG_TABLE_NAME)
        USING TG_ARGV[0];
    END IF;
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_inputs__queue_truncate() IS
    'Queues every loaded month (facts) or events date before a TRUNCATE, for the commit-time post-ETL hooks. rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';

DROP TRIGGER IF EXISTS _200_post_etl_hooks_truncate ON business."规模明细";
CREATE TRIGGER _200_post_etl_hooks_truncate
    BEFORE TRUNCATE ON business."规模明细"
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_inputs__queue_truncate('annuity_performance', 'facts');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_truncate ON customer."当年中标";
CREATE TRIGGER _200_post_etl_hooks_truncate
    BEFORE TRUNCATE ON customer."当年中标"
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_inputs__queue_truncate('annuity_performance', 'event', '上报月份');

DROP TRIGGER IF EXISTS _200_post_etl_hooks_truncate ON customer."当年流失";
CREATE TRIGGER _200_post_etl_hooks_truncate
    BEFORE TRUNCATE ON customer."当年流失"
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_inputs__queue_truncate('annuity_performance', 'event', '上报月份');
""",
    },
    {
        "template": "sql/triggers/mapping.product_line__propagate_name.sql.j2",
        "kind": "function",
        "identity": "cmdm.tg_product_line__propagate_name()",
        "triggers": [["_100_propagate_name", 'mapping."产品线"']],
        "sha256": "57c0d87cca6f43fd32fafc69f5227004747952cf782190c81aca4b7b402d8590",
        "sql": """\
-- Generated by cmdm from sql/triggers/mapping.product_line__propagate_name.sql.j2 and rules/ (sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd).
-- Do not edit in the database: `cmdm deploy-rules --check` reports hand edits.
CREATE OR REPLACE FUNCTION cmdm.tg_product_line__propagate_name()
    RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET row_security = off
AS $fn$
/*
 * AFTER UPDATE statement trigger on mapping."产品线": a renamed product line's name is
 * copied into the redundant product_line_name columns of the output tables, in place.
 * A name is not tracked state, so no version opens. One UPDATE per table for the whole
 * statement (transition tables), touching only rows of renamed product lines.
 */
BEGIN
    UPDATE customer.customer_plan_contract c
       SET product_line_name = n."产品线"
      FROM renamed_old o
      JOIN renamed_new n ON n."产品线代码" = o."产品线代码"
     WHERE c.product_line_code = n."产品线代码"
       AND o."产品线" IS DISTINCT FROM n."产品线"
       AND c.product_line_name IS DISTINCT FROM n."产品线";

    UPDATE customer.fct_customer_business_monthly_status b
       SET product_line_name = n."产品线"
      FROM renamed_old o
      JOIN renamed_new n ON n."产品线代码" = o."产品线代码"
     WHERE b.product_line_code = n."产品线代码"
       AND o."产品线" IS DISTINCT FROM n."产品线"
       AND b.product_line_name IS DISTINCT FROM n."产品线";

    UPDATE customer.fct_customer_plan_monthly_status p
       SET product_line_name = n."产品线"
      FROM renamed_old o
      JOIN renamed_new n ON n."产品线代码" = o."产品线代码"
     WHERE p.product_line_code = n."产品线代码"
       AND o."产品线" IS DISTINCT FROM n."产品线"
       AND p.product_line_name IS DISTINCT FROM n."产品线";
    RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION cmdm.tg_product_line__propagate_name() IS
    'Copies renamed product line names into the output tables without opening versions. rules sha256 ab021fdffe29af3dcacf2f0a3e7d88b85f84fdb861000c558a7ad868f93dc2dd';

DROP TRIGGER IF EXISTS _100_propagate_name ON mapping."产品线";
CREATE TRIGGER _100_propagate_name
    AFTER UPDATE ON mapping."产品线"
    REFERENCING OLD TABLE AS renamed_old NEW TABLE AS renamed_new
    FOR EACH STATEMENT
    EXECUTE FUNCTION cmdm.tg_product_line__propagate_name();
""",
    },
]
