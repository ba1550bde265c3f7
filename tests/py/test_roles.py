"""The roles of DESIGN §8, used the way production uses them: LOGIN roles granted
cmdm_etl or cmdm_reader, connecting over TCP with a password (the cluster authenticates
127.0.0.1 with scram-sha-256), loading with COPY and committing.

- An ETL login's commit runs the post-ETL hooks under its privileges: the outputs equal a
  superuser's load of the same rows, and cmdm.hook_run names the login (run_by) and its
  transactions. It cannot write the outputs or cmdm's tables, nor execute any routine of
  ours but CALL customer.run_post_etl_hooks.
- A reader login reads the outputs and nothing else.
- A hostile caller (objects named like ours on its search_path, before pg_catalog; temp
  tables named like ours; odd date and time settings) changes nothing: its load ends in
  exactly the state of a clean load of the same rows.
- The caller cannot run its code as cmdm_owner through the hooks.

Login roles are cluster-wide: each test creates its own (uuid suffix) and drops them,
with what they own, at teardown.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

import psycopg
import pytest
from dbutil import scratch_database
from psycopg import errors, sql

from cmdm_admin import migrate
from cmdm_admin.demo import (
    AWARD_TABLE,
    CUSTOMER_COLUMNS,
    CUSTOMER_TABLE,
    EVENT_COLUMNS,
    FACT_COLUMNS,
    FACT_TABLE,
    LOSS_TABLE,
    DemoMonth,
    DemoSpec,
    customers,
    iter_months,
)

# Four months across a year end, with bad rows (rejects), awards and losses.
SPEC = DemoSpec(companies=40, months=4, seed=11, start=date(2024, 11, 1))
MONTH_ENDS = [date(2024, 11, 30), date(2024, 12, 31), date(2025, 1, 31), date(2025, 2, 28)]

OUTPUT_TABLES = (
    "customer.customer_plan_contract",
    "customer.fct_customer_business_monthly_status",
    "customer.fct_customer_plan_monthly_status",
)
CMDM_TABLES = (
    "cmdm.hook_run",
    "cmdm.hook_queue",
    "cmdm.hook_domain",
    "cmdm.post_etl_hook",
    "cmdm.backfill_run",
    "cmdm.rejected_fact",
    "cmdm.rule_deployment",
    "cmdm.managed_object",
)

STATE_SQL = {
    "contract": """
        SELECT company_id, plan_code, product_line_code, product_line_name, valid_from, valid_to,
               contract_status, status_year, is_strategic, is_existing
          FROM customer.customer_plan_contract ORDER BY 1, 2, 3, 5""",
    "business": """
        SELECT snapshot_month, company_id, product_line_code, product_line_name, aum_balance,
               plan_count, is_winning_this_year, is_churned_this_year, is_new, is_new_arrival,
               is_churned, is_strategic, is_existing
          FROM customer.fct_customer_business_monthly_status ORDER BY 1, 2, 3""",
    "plan": """
        SELECT snapshot_month, company_id, plan_code, product_line_code, product_line_name,
               aum_balance, is_winning_this_year, is_churned_this_year, is_new,
               is_new_arrival, is_churned, is_strategic, is_existing
          FROM customer.fct_customer_plan_monthly_status ORDER BY 1, 2, 3, 4""",
    "rejects": """
        SELECT period, reason, company_id, plan_code, product_line_code, portfolio_code, aum
          FROM cmdm.rejected_fact ORDER BY 1, 2, 3, 4, 5, 6, 7""",
}

# What a hook run logs, less what differs between two identical runs (ids, times, txid,
# the step timings in counts.ms).
HOOK_RUNS_SQL = """
    SELECT period, step, trigger_kind, outcome, counts - 'ms', rejects, rules_sha256, error, run_by
      FROM cmdm.hook_run ORDER BY period, step, trigger_kind, hook_run_id"""


def state(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        found = {name: conn.execute(query).fetchall() for name, query in STATE_SQL.items()}
        found["hook_runs"] = conn.execute(HOOK_RUNS_SQL).fetchall()
    return found


# --------------------------------------------------------------------------------------
# Login roles and databases
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    name: str
    password: str

    def connect(self, url: str, **kwargs: object) -> psycopg.Connection:
        """Connect to the database of `url` as this role, with its password."""
        return psycopg.connect(url, user=self.name, password=self.password, **kwargs)


@dataclass(frozen=True)
class Logins:
    etl: Login
    reader: Login


@pytest.fixture
def logins(admin_url: str, rules_url: str) -> Iterator[Logins]:
    """An ETL and a reader login, members of cmdm_etl and cmdm_reader (which the migration
    of rules_url created). At teardown: whatever they own or were granted in rules_url is
    dropped, then the roles."""
    suffix = uuid.uuid4().hex[:10]
    made = Logins(
        etl=Login(f"cmdm_test_etl_{suffix}", secrets.token_urlsafe(18)),
        reader=Login(f"cmdm_test_reader_{suffix}", secrets.token_urlsafe(18)),
    )
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for login, group in ((made.etl, "cmdm_etl"), (made.reader, "cmdm_reader")):
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(login.name), sql.Literal(login.password), sql.Identifier(group)
                )
            )
    try:
        yield made
    finally:
        names = sql.SQL(", ").join(sql.Identifier(x.name) for x in (made.etl, made.reader))
        with psycopg.connect(rules_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(%s)",
                ([made.etl.name, made.reader.name],),
            )
            conn.execute(sql.SQL("DROP OWNED BY {}").format(names))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(names))


@pytest.fixture
def second_url(admin_url: str) -> Iterator[str]:
    """A second database at head (the logins own nothing there)."""
    with scratch_database(admin_url) as url:
        migrate.upgrade(url)
        yield url


# --------------------------------------------------------------------------------------
# Loading with COPY only: the caller's own statements use no function or operator, so a
# hostile search_path can only act inside cmdm's code.
# --------------------------------------------------------------------------------------


def copy_rows(
    conn: psycopg.Connection, table: tuple[str, str], columns: Sequence[str], rows: list
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def copy_customers(conn: psycopg.Connection) -> None:
    copy_rows(conn, CUSTOMER_TABLE, CUSTOMER_COLUMNS, customers(SPEC))


def copy_demo_month(conn: psycopg.Connection, month: DemoMonth) -> None:
    copy_rows(conn, FACT_TABLE, FACT_COLUMNS, month.facts)
    copy_rows(conn, AWARD_TABLE, EVENT_COLUMNS, month.awards)
    copy_rows(conn, LOSS_TABLE, EVENT_COLUMNS, month.losses)


def load(conn: psycopg.Connection) -> list[int]:
    """The customers in one transaction, then each month in its own (its commit runs the
    hooks); returns each month's transaction id. `conn` must be in autocommit mode."""
    txids = []
    with conn.transaction():
        copy_customers(conn)
    for month in iter_months(SPEC):
        with conn.transaction():
            txids.append(
                int(conn.execute("SELECT pg_catalog.pg_current_xact_id()::text").fetchone()[0])
            )
            copy_demo_month(conn, month)
    return txids


def denied(conn: psycopg.Connection, statements: Sequence[str]) -> dict[str, str]:
    """Run each statement in its own rolled-back transaction: statement -> the name of the
    error it raised ('none' when it ran)."""
    outcome = {}
    for statement in statements:
        try:
            with conn.transaction():
                conn.execute(statement)
                raise _Undo
        except _Undo:
            outcome[statement] = "none"
        except psycopg.Error as error:
            outcome[statement] = type(error).__name__
    return outcome


class _Undo(Exception):
    """Rolls a probe's transaction back when the statement ran."""


def all_denied(statements: Sequence[str]) -> dict[str, str]:
    return dict.fromkeys(statements, "InsufficientPrivilege")


# --------------------------------------------------------------------------------------
# The ETL login
# --------------------------------------------------------------------------------------


def test_the_etl_logins_commits_run_the_hooks_as_a_superusers_would(
    rules_url: str, second_url: str, logins: Logins
) -> None:
    with logins.etl.connect(rules_url, autocommit=True) as conn:
        assert conn.execute("SELECT session_user, current_user").fetchone() == (
            logins.etl.name,
            logins.etl.name,
        )
        txids = load(conn)
    with psycopg.connect(second_url, autocommit=True) as conn:
        load(conn)  # the reference: the same rows, loaded by the superuser

    with psycopg.connect(rules_url) as conn:
        runs = conn.execute(
            "SELECT period, step, trigger_kind, outcome, run_by, txid::text::bigint "
            "FROM cmdm.hook_run WHERE step = 'contract_sync' ORDER BY period"
        ).fetchall()
        run_by = conn.execute("SELECT DISTINCT run_by FROM cmdm.hook_run").fetchall()
    # each month synced once, by the trigger, in the login's own load transaction
    assert runs == [
        (month_end, "contract_sync", "trigger", "succeeded", logins.etl.name, txid)
        for month_end, txid in zip(MONTH_ENDS, txids, strict=True)
    ]
    assert run_by == [(logins.etl.name,)]

    loaded, reference = state(rules_url), state(second_url)
    assert all(loaded[name] for name in ("contract", "business", "plan", "rejects"))
    for name in STATE_SQL:
        assert loaded[name] == reference[name], name
    # the same runs, but for who ran them
    assert [r[:-1] for r in loaded["hook_runs"]] == [r[:-1] for r in reference["hook_runs"]]


def test_the_etl_login_cannot_write_the_outputs_or_cmdms_tables(
    rules_url: str, logins: Logins
) -> None:
    with logins.etl.connect(rules_url, autocommit=True) as conn:
        load(conn)  # rows to update and delete
        statements = [
            "INSERT INTO customer.customer_plan_contract (company_id, plan_code, product_line_code,"
            " product_line_name, status_year, contract_status, valid_from)"
            " VALUES ('C1', 'P1', 'PL201', 'x', 2024, '正常', '2024-11-30')",
            "INSERT INTO customer.fct_customer_business_monthly_status"
            " (snapshot_month, company_id, product_line_code, product_line_name)"
            " VALUES ('2024-11-30', 'C1', 'PL201', 'x')",
            "INSERT INTO customer.fct_customer_plan_monthly_status"
            " (snapshot_month, company_id, plan_code, product_line_code, product_line_name)"
            " VALUES ('2024-11-30', 'C1', 'P1', 'PL201', 'x')",
            *(f"UPDATE {table} SET product_line_name = 'x'" for table in OUTPUT_TABLES),
            *(f"DELETE FROM {table}" for table in OUTPUT_TABLES),
            *(f"TRUNCATE {table}" for table in OUTPUT_TABLES),
            "INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, outcome)"
            " VALUES ('annuity_performance', '2024-11-30', 'contract_sync', 'call', 'succeeded')",
            "UPDATE cmdm.hook_run SET outcome = 'failed'",
            "DELETE FROM cmdm.hook_run",
            "INSERT INTO cmdm.hook_queue (domain, kind, period)"
            " VALUES ('annuity_performance', 'facts', '2024-11-01')",
            "DELETE FROM cmdm.hook_queue",
            "UPDATE cmdm.hook_domain SET enabled = false",
            "INSERT INTO cmdm.hook_domain (domain, description) VALUES ('d', 'd')",
            "UPDATE cmdm.post_etl_hook SET enabled = false",
            "DELETE FROM cmdm.post_etl_hook",
            "INSERT INTO cmdm.backfill_run (domain, from_period, to_period)"
            " VALUES ('annuity_performance', '2024-11-30', '2024-12-31')",
            "UPDATE cmdm.backfill_run SET finished_at = now()",
            "DELETE FROM cmdm.rejected_fact",
            "UPDATE cmdm.rejected_fact SET reason = 'null_key'",
            "UPDATE cmdm.rule_deployment SET sha256 = sha256",
            "DELETE FROM cmdm.managed_object",
            *(f"TRUNCATE {table}" for table in CMDM_TABLES),
        ]
        assert denied(conn, statements) == all_denied(statements)
        # the COPY path too
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            copy_rows(conn, ("customer", "customer_plan_contract"), ["company_id"], [])
        # and the way around the triggers
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SET session_replication_role = replica")


def test_the_etl_login_executes_no_routine_of_ours_but_the_procedure(
    rules_url: str, logins: Logins
) -> None:
    statements = [
        "SELECT * FROM cmdm.run_hooks('annuity_performance', ARRAY[DATE '2024-11-30'])",
        "SELECT cmdm.set_hook_domain('annuity_performance', false)",
        "SELECT cmdm.post_hooks_enabled()",
        "SELECT * FROM customer.sync_contract_status('2024-11-30')",
        "SELECT * FROM customer.refresh_monthly_snapshot('2024-11-30')",
        "SELECT * FROM customer.contract_dependent_months('2024-11-30')",
        "SELECT * FROM customer.event_dependent_months('2024-11-30')",
        "SELECT * FROM customer.loaded_months()",
        "SELECT cmdm.tg_facts__queue_hooks()",
        "SELECT cmdm.tg_hook_queue__run_at_commit()",
        "SELECT cmdm.tg_set_updated_at()",
    ]
    with logins.etl.connect(rules_url, autocommit=True) as conn:
        assert denied(conn, statements) == all_denied(statements)
        # what it may execute, per the catalog: exactly the procedure
        executable = conn.execute(
            "SELECT object_identity FROM unnest(%s::text[]) AS m(object_identity)"
            " WHERE has_function_privilege(object_identity, 'EXECUTE')",
            (_routines(rules_url),),
        ).fetchall()
    assert executable == [("customer.run_post_etl_hooks(text, date)",)]


def _routines(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT object_identity FROM cmdm.managed_object"
            " WHERE object_type IN ('function', 'procedure') ORDER BY 1"
        ).fetchall()
    assert len(rows) >= 10
    return [identity for (identity,) in rows]


def test_the_etl_login_calls_the_hooks_after_a_load_with_them_off(
    rules_url: str, second_url: str, logins: Logins
) -> None:
    months = list(iter_months(SPEC))
    with logins.etl.connect(rules_url, autocommit=True) as conn:
        with conn.transaction():
            copy_customers(conn)
        # the first month: hooks off, then the explicit CALL in the same transaction
        with conn.transaction():
            call_txid = int(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
            conn.execute("SET LOCAL cmdm.post_hooks = off")
            copy_demo_month(conn, months[0])
            conn.execute("CALL customer.run_post_etl_hooks('annuity_performance', '2024-11-30')")
        # the second: hooks off, CALLed in a later transaction
        with conn.transaction():
            conn.execute("SET LOCAL cmdm.post_hooks = off")
            copy_demo_month(conn, months[1])
        with conn.transaction():
            conn.execute("CALL customer.run_post_etl_hooks('annuity_performance', '2024-12-01')")
        for month in months[2:]:  # the rest by the triggers
            with conn.transaction():
                copy_demo_month(conn, month)
    with psycopg.connect(second_url, autocommit=True) as conn:
        load(conn)

    with psycopg.connect(rules_url) as conn:
        first = conn.execute(
            "SELECT period, step, trigger_kind, run_by FROM cmdm.hook_run"
            " WHERE txid = %s::text::xid8 ORDER BY step, period",
            (call_txid,),
        ).fetchall()
        synced = conn.execute(
            "SELECT period, trigger_kind FROM cmdm.hook_run WHERE step = 'contract_sync'"
            " ORDER BY period"
        ).fetchall()
    assert first == [
        (date(2024, 11, 30), "contract_sync", "call", logins.etl.name),
        (date(2024, 11, 30), "snapshot_refresh", "call", logins.etl.name),
    ]
    assert synced == [
        (MONTH_ENDS[0], "call"),
        (MONTH_ENDS[1], "call"),
        (MONTH_ENDS[2], "trigger"),
        (MONTH_ENDS[3], "trigger"),
    ]
    loaded, reference = state(rules_url), state(second_url)
    for name in STATE_SQL:
        assert loaded[name] == reference[name], name


# --------------------------------------------------------------------------------------
# The reader login
# --------------------------------------------------------------------------------------


def test_the_reader_login_reads_the_outputs_and_nothing_else(
    rules_url: str, logins: Logins
) -> None:
    with logins.etl.connect(rules_url, autocommit=True) as conn:
        load(conn)
    with psycopg.connect(rules_url) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in OUTPUT_TABLES]
    assert all(counts)

    with logins.reader.connect(rules_url, autocommit=True) as conn:
        assert [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in OUTPUT_TABLES
        ] == counts
        statements = [
            'SELECT * FROM business."规模明细"',
            'SELECT * FROM customer."年金客户"',
            'SELECT * FROM customer."当年中标"',
            'SELECT * FROM customer."当年流失"',
            'SELECT * FROM mapping."产品线"',
            *(f"SELECT * FROM {table}" for table in CMDM_TABLES),
            *(f"DELETE FROM {table}" for table in OUTPUT_TABLES),
            *(f"UPDATE {table} SET product_line_name = 'x'" for table in OUTPUT_TABLES),
            'INSERT INTO business."规模明细" ("月度") VALUES (\'2024-11-30\')',
            'DELETE FROM customer."当年中标"',
            'UPDATE customer."年金客户" SET "客户名称" = \'x\'',
            "CALL customer.run_post_etl_hooks('annuity_performance', '2024-11-30')",
            "SELECT * FROM customer.sync_contract_status('2024-11-30')",
            "SELECT * FROM customer.refresh_monthly_snapshot('2024-11-30')",
            "SELECT * FROM cmdm.run_hooks('annuity_performance', ARRAY[DATE '2024-11-30'])",
        ]
        assert denied(conn, statements) == all_denied(statements)
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            copy_rows(conn, FACT_TABLE, ["月度"], [(date(2024, 11, 30),)])


# --------------------------------------------------------------------------------------
# A hostile caller
# --------------------------------------------------------------------------------------

# Objects a caller can create in a schema of its own, named like what cmdm's code uses,
# each returning nonsense. With `evil` before pg_catalog on the search_path, an unpinned
# routine would pick them: the exact-type overloads (date_trunc(text, date), sum(numeric),
# the date and text operators) even win over pg_catalog's wherever pg_catalog is listed.
HOSTILE_DDL = r"""
CREATE FUNCTION evil.sum_step(numeric, numeric) RETURNS numeric LANGUAGE sql
    AS 'SELECT 424242::numeric';
CREATE AGGREGATE evil.sum(numeric) (sfunc = evil.sum_step, stype = numeric, initcond = '0');
CREATE FUNCTION evil.count_step(bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 4242::bigint';
CREATE AGGREGATE evil.count(*) (sfunc = evil.count_step, stype = bigint, initcond = '0');
CREATE FUNCTION evil.max_step(date, date) RETURNS date LANGUAGE sql AS 'SELECT DATE ''1901-01-31''';
CREATE AGGREGATE evil.max(date) (sfunc = evil.max_step, stype = date);
CREATE AGGREGATE evil.min(date) (sfunc = evil.max_step, stype = date);
CREATE FUNCTION evil.array_agg_step(date[], date) RETURNS date[] LANGUAGE sql
    AS 'SELECT ''{}''::date[]';
CREATE AGGREGATE evil.array_agg(date)
    (sfunc = evil.array_agg_step, stype = date[], initcond = '{}');
CREATE FUNCTION evil.bool_step(boolean, boolean) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE AGGREGATE evil.bool_or(boolean) (sfunc = evil.bool_step, stype = boolean);
CREATE AGGREGATE evil.bool_and(boolean) (sfunc = evil.bool_step, stype = boolean);

CREATE FUNCTION evil.date_trunc(text, date) RETURNS timestamp LANGUAGE sql
    AS 'SELECT TIMESTAMP ''1901-01-01''';
CREATE FUNCTION evil.date_trunc(text, timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql AS 'SELECT TIMESTAMPTZ ''1901-01-01 00:00+00''';
CREATE FUNCTION evil.current_setting(text) RETURNS text LANGUAGE sql AS 'SELECT ''off''';
CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE sql AS 'SELECT ''off''';
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS 'SELECT ''off''';
CREATE FUNCTION evil.btrim(text) RETURNS text LANGUAGE sql AS 'SELECT ''off''';
CREATE FUNCTION evil.format(text, text) RETURNS text LANGUAGE sql AS 'SELECT ''evil''';
CREATE FUNCTION evil.to_char(date, text) RETURNS text LANGUAGE sql AS 'SELECT ''evil''';
CREATE FUNCTION evil.unnest(date[]) RETURNS SETOF date LANGUAGE sql AS 'SELECT DATE ''1901-01-31''';
CREATE FUNCTION evil.hashtext(text) RETURNS integer LANGUAGE sql AS 'SELECT 0';
CREATE FUNCTION evil.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql
    AS 'SELECT TIMESTAMPTZ ''1901-01-01 00:00+00''';
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql
    AS 'SELECT TIMESTAMPTZ ''1901-01-01 00:00+00''';
CREATE FUNCTION evil.pg_current_xact_id() RETURNS xid8 LANGUAGE sql AS 'SELECT ''1''::xid8';
CREATE FUNCTION evil.cardinality(anyarray) RETURNS integer LANGUAGE sql AS 'SELECT 0';
CREATE FUNCTION evil.array_position(anycompatiblearray, anycompatible) RETURNS integer
    LANGUAGE sql AS 'SELECT 1';

CREATE FUNCTION evil.date_never(date, date) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE FUNCTION evil.date_always(date, date) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION evil.text_never(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE FUNCTION evil.varchar_never(varchar, varchar) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE FUNCTION evil.numeric_always(numeric, numeric) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION evil.date_plus(date, interval) RETURNS timestamp LANGUAGE sql
    AS 'SELECT TIMESTAMP ''1901-01-01''';
CREATE FUNCTION evil.dates_concat(date[], date[]) RETURNS date[] LANGUAGE sql
    AS 'SELECT ''{}''::date[]';
CREATE FUNCTION evil.range_always(daterange, date) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (leftarg = date, rightarg = date, function = evil.date_never);
CREATE OPERATOR evil.< (leftarg = date, rightarg = date, function = evil.date_always);
CREATE OPERATOR evil.>= (leftarg = date, rightarg = date, function = evil.date_never);
CREATE OPERATOR evil.= (leftarg = text, rightarg = text, function = evil.text_never);
CREATE OPERATOR evil.<> (leftarg = text, rightarg = text, function = evil.text_never);
CREATE OPERATOR evil.= (leftarg = varchar, rightarg = varchar, function = evil.varchar_never);
CREATE OPERATOR evil.> (leftarg = numeric, rightarg = numeric, function = evil.numeric_always);
CREATE OPERATOR evil.+ (leftarg = date, rightarg = interval, function = evil.date_plus);
CREATE OPERATOR evil.|| (leftarg = date[], rightarg = date[], function = evil.dates_concat);
CREATE OPERATOR evil.@> (leftarg = daterange, rightarg = date, function = evil.range_always);

-- tables named like cmdm's, in the schema searched first
CREATE TABLE evil.hook_queue (txid xid8, domain text, kind text, period date);
CREATE TABLE evil.hook_run (LIKE cmdm.hook_run);
CREATE TABLE evil.hook_domain (domain text, enabled boolean, description text);
INSERT INTO evil.hook_domain VALUES ('annuity_performance', false, 'evil');
CREATE TABLE evil.post_etl_hook (domain text, step_order integer, step text, enabled boolean);
CREATE TABLE evil.rule_deployment (deployment_id bigint, sha256 text);
INSERT INTO evil.rule_deployment VALUES (999999, repeat('e', 64));
CREATE TABLE evil."规模明细" (LIKE business."规模明细");
INSERT INTO evil."规模明细" (id, "月度", company_id, "计划代码", "产品线代码", "期末资产规模")
    VALUES (1, '2024-11-30', 'EVIL', 'EVIL', 'PL201', 1);
CREATE TABLE evil.customer_plan_contract (LIKE customer.customer_plan_contract);
CREATE TABLE evil.fct_customer_business_monthly_status
    (LIKE customer.fct_customer_business_monthly_status);
CREATE TABLE evil.rejected_fact (LIKE cmdm.rejected_fact);

-- usable by anyone, cmdm_owner included (functions are executable by PUBLIC by default)
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT ALL ON ALL TABLES IN SCHEMA evil TO PUBLIC;
"""

# Temporary tables (searched first for tables whenever pg_temp is not listed) named like
# cmdm's tables and like the triggers' transition tables.
HOSTILE_TEMP_DDL = """
CREATE TEMP TABLE hook_queue (txid xid8, domain text, kind text, period date);
CREATE TEMP TABLE hook_run (LIKE cmdm.hook_run);
CREATE TEMP TABLE hook_domain (domain text, enabled boolean, description text);
INSERT INTO pg_temp.hook_domain VALUES ('annuity_performance', false, 'evil');
CREATE TEMP TABLE changed_rows (LIKE business."规模明细");
INSERT INTO pg_temp.changed_rows (id, "月度") VALUES (1, '1901-01-31');
CREATE TEMP TABLE renamed_old ("产品线代码" text, "产品线" text);
CREATE TEMP TABLE renamed_new ("产品线代码" text, "产品线" text);
GRANT ALL ON pg_temp.hook_queue, pg_temp.hook_run, pg_temp.hook_domain, pg_temp.changed_rows,
             pg_temp.renamed_old, pg_temp.renamed_new TO PUBLIC;
"""

HOSTILE_SETTINGS = {
    "search_path": "evil, public, pg_catalog",
    "DateStyle": "SQL, DMY",
    "TimeZone": "Pacific/Kiritimati",
    "IntervalStyle": "sql_standard",
}


def test_a_hostile_search_path_changes_nothing(
    admin_url: str, rules_url: str, second_url: str, logins: Logins
) -> None:
    with logins.etl.connect(second_url, autocommit=True) as conn:
        load(conn)  # the clean run: same login, same rows

    with psycopg.connect(rules_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA evil AUTHORIZATION {}").format(sql.Identifier(logins.etl.name))
        )
    with logins.etl.connect(rules_url, autocommit=True) as conn:
        conn.execute(HOSTILE_DDL)
        conn.execute(HOSTILE_TEMP_DDL)
        conn.execute(f"SET search_path = {HOSTILE_SETTINGS['search_path']}")
        # the attack is real: unqualified names now resolve to the hostile objects
        probes = conn.execute(
            "SELECT date_trunc('month', DATE '2024-11-15')::text,"
            " (SELECT sum(x) FROM (VALUES (1.5::numeric)) v(x))::text,"
            " current_setting('cmdm.post_hooks', true),"
            " DATE '2024-11-30' = DATE '2024-11-30',"
            " (SELECT count(*) FROM (VALUES (1), (2)) v(x)),"
            " (SELECT enabled FROM hook_domain)"
        ).fetchone()
        assert probes == ("1901-01-01 00:00:00", "424242", "off", False, 4242, False)
        for name, value in HOSTILE_SETTINGS.items():
            if name != "search_path":
                conn.execute(
                    sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
                )
        load(conn)

    hostile, clean = state(rules_url), state(second_url)
    assert all(clean[name] for name in STATE_SQL)
    assert [r[:4] for r in clean["hook_runs"] if r[1] == "contract_sync"] == [
        (month_end, "contract_sync", "trigger", "succeeded") for month_end in MONTH_ENDS
    ]
    for name in [*STATE_SQL, "hook_runs"]:
        assert hostile[name] == clean[name], name


# --------------------------------------------------------------------------------------
# The caller's code never runs as cmdm_owner
# --------------------------------------------------------------------------------------

# A trigger function that, run as cmdm_owner (the owner of the outputs), grants its
# caller's login the right to write them.
ESCALATE = """
CREATE FUNCTION pg_temp.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user = 'cmdm_owner' THEN
        EXECUTE pg_catalog.format(
            'GRANT INSERT, UPDATE, DELETE ON customer.customer_plan_contract TO %I', session_user);
    END IF;
    RETURN NULL;
END
$$;
"""


def _can_write_contracts(url: str, login: Login) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT has_table_privilege(%s, 'customer.customer_plan_contract', 'INSERT')",
            (login.name,),
        ).fetchone()[0]


def test_a_scratch_table_name_in_pg_temp_does_not_run_the_etls_code_as_cmdm_owner(
    rules_url: str, logins: Logins
) -> None:
    """The generated routines keep scratch tables in pg_temp, the session's temporary
    schema, which the caller shares and may create tables in. A table the ETL created
    there under a scratch table's name (the shape of contract_sync's first one), with a
    trigger, must be refused or ignored, never used: a load may fail, but no code of the
    ETL's may run as cmdm_owner."""
    with logins.etl.connect(rules_url, autocommit=True) as conn:
        conn.execute(ESCALATE)
        conn.execute(
            "CREATE TEMP TABLE cmdm_sync_month (company_id text, plan_code text,"
            " product_line_code text, reason text, contract_status text)"
        )
        conn.execute("GRANT ALL ON pg_temp.cmdm_sync_month TO cmdm_owner")
        conn.execute(
            "CREATE TRIGGER escalate AFTER INSERT ON pg_temp.cmdm_sync_month"
            " FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.escalate()"
        )
        with contextlib.suppress(psycopg.Error):  # refusing the load is a fine answer
            load(conn)
        assert not _can_write_contracts(rules_url, logins.etl)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DELETE FROM customer.customer_plan_contract")


def test_an_etl_owning_its_input_table_does_not_run_code_as_cmdm_owner(
    rules_url: str, logins: Logins
) -> None:
    """In production the ETL owns its input tables (cmdm leaves them to it). An owner may
    put a row-level security policy on its table; the hooks read the table as cmdm_owner,
    so a policy's expression must not be evaluated as cmdm_owner."""
    with psycopg.connect(rules_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL('ALTER TABLE business."规模明细" OWNER TO {}').format(
                sql.Identifier(logins.etl.name)
            )
        )
        conn.execute('GRANT SELECT ON business."规模明细" TO cmdm_owner')  # as the grants do
    with logins.etl.connect(rules_url, autocommit=True) as conn:
        conn.execute(
            ESCALATE.replace("RETURNS trigger", "RETURNS boolean").replace(
                "RETURN NULL", "RETURN true"
            )
        )
        conn.execute('ALTER TABLE business."规模明细" ENABLE ROW LEVEL SECURITY')
        conn.execute('CREATE POLICY escalate ON business."规模明细" USING (pg_temp.escalate())')
        with contextlib.suppress(psycopg.Error):
            load(conn)
        assert not _can_write_contracts(rules_url, logins.etl)


# --- the command line as these roles (docs/security.md, "What each role may run") --------

READ_COMMANDS = (
    ("overview",),
    ("summary",),
    ("hooks", "list"),
    ("hooks", "runs"),
    ("explain", "--company", "{company}", "--month", "2025-01"),
    ("report", "--month", "2025-01", "--out", "{out}"),
    ("status",),
    ("migrate", "current"),
)
ADMIN_COMMANDS = (
    ("check",),
    ("rebuild", "--from", "2024-11", "--to", "2024-12", "--dry-run"),
    ("backfill", "--from", "2024-11", "--to", "2024-11"),
    ("run-hooks", "--period", "2024-11"),
    ("hooks", "disable", "annuity_performance"),
)


def login_url(url: str, login: Login) -> str:
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = f"{quote(login.name)}:{quote(login.password)}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc, query=""))


def run_cli(args: Sequence[str], url: str, **values: str):
    from typer.testing import CliRunner

    from cmdm_admin.cli import app

    filled = [a.format(**values) for a in args]
    return CliRunner().invoke(app, [*filled, "--database-url", url])


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.fixture
def loaded_logins(rules_url: str, logins: Logins) -> tuple[str, Logins, str]:
    with psycopg.connect(rules_url) as conn:
        from cmdm_admin.demo import load_demo

        load_demo(conn, SPEC)
        (company,) = conn.execute(
            "SELECT company_id FROM customer.customer_plan_contract ORDER BY 1 LIMIT 1"
        ).fetchone()
    return rules_url, logins, company


def test_an_etl_login_runs_the_reading_commands_and_is_told_off_the_others(
    loaded_logins: tuple[str, Logins, str], tmp_path
) -> None:
    url, logins, company = loaded_logins
    etl = login_url(url, logins.etl)
    for args in READ_COMMANDS:
        result = run_cli(args, etl, company=company, out=str(tmp_path / "r.html"))
        assert result.exit_code == 0, (args, result.output)
    check = run_cli(("deploy-rules", "--check"), etl)
    assert "refused" not in check.output and "Traceback" not in check.output, check.output
    for args in ADMIN_COMMANDS:
        line = one_error_line(run_cli(args, etl))
        assert "permission denied" in line, (args, line)


def test_a_reader_login_gets_one_line_for_every_command(
    loaded_logins: tuple[str, Logins, str], tmp_path
) -> None:
    url, logins, company = loaded_logins
    reader = login_url(url, logins.reader)
    for args in (*READ_COMMANDS, ("deploy-rules", "--check"), *ADMIN_COMMANDS):
        line = one_error_line(run_cli(args, reader, company=company, out=str(tmp_path / "r.html")))
        assert "permission denied" in line, (args, line)
        if args[0] not in ("run-hooks", "hooks") or args in READ_COMMANDS:
            words = itertools.takewhile(lambda a: not a.startswith("-"), args)
            assert f"`cmdm {' '.join(words)}` was refused" in line
            assert "What each role may run" in line
            expected = "a login in cmdm_etl" if args in READ_COMMANDS else "the administrator"
            assert expected in line, line
