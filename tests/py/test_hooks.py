"""The post-ETL hooks as an ETL sees them through psycopg (DESIGN §7, docs/hooks.md).

A load written in many statements in one transaction runs the hooks once per month, at
COMMIT; `SET LOCAL cmdm.post_hooks = off` plus `CALL customer.run_post_etl_hooks` gives
the same outputs; the hooks refuse isolation levels other than READ COMMITTED; a failing
step makes COMMIT fail with the step, the period and the cause, and nothing is written;
an award or loss committed alone refreshes the snapshots of the months that see it.
(cmdm_admin/pgtap/120_hooks.sql holds the same behaviour inside one rolled-back transaction;
here every transaction really commits.)
"""

from __future__ import annotations

from datetime import date

import psycopg
import pytest
from psycopg import sql
from test_hook_concurrency import (
    COPY_SQL,
    FACT_COLUMNS,
    SPEC,
    UNIVERSE,
    contract_keys,
    is_contract,
    new_database,
    state,
    state_diff,
)

from cmdm_admin.demo import load_customers

DOMAIN = "annuity_performance"
BATCHES = 50
#: September 2024 of the demo universe: 213 rows, no rejects, about 120 keys.
MONTH = UNIVERSE[0]
MONTH_END = date(2024, 9, 30)

INSERT_SQL = sql.SQL("INSERT INTO {table} ({columns}) VALUES ").format(
    table=sql.Identifier("business", "规模明细"),
    columns=sql.SQL(", ").join(map(sql.Identifier, FACT_COLUMNS)),
)
RUNS_SQL = """
SELECT period, step, trigger_kind, outcome FROM cmdm.hook_run ORDER BY hook_run_id
"""
# counts without the step timings (ms), which differ from run to run
COUNTS_SQL = "SELECT step, counts - 'ms', rejects FROM cmdm.hook_run ORDER BY hook_run_id"
QUEUED_SQL = """
SELECT kind, period FROM cmdm.hook_queue WHERE txid = pg_current_xact_id() ORDER BY 1, 2
"""
OUTPUT_COUNTS_SQL = """
SELECT (SELECT count(*) FROM business."规模明细"),
       (SELECT count(*) FROM customer.customer_plan_contract),
       (SELECT count(*) FROM customer.fct_customer_business_monthly_status),
       (SELECT count(*) FROM customer.fct_customer_plan_monthly_status),
       (SELECT count(*) FROM cmdm.rejected_fact),
       (SELECT count(*) FROM cmdm.hook_run),
       (SELECT count(*) FROM cmdm.hook_queue)
"""
NOTHING = (0, 0, 0, 0, 0, 0, 0)


def batches(rows: list[tuple], n: int = BATCHES) -> list[list[tuple]]:
    chunks = [rows[k * len(rows) // n : (k + 1) * len(rows) // n] for k in range(n)]
    assert all(chunks), "every batch must hold rows"
    return chunks


def write_in_statements(conn: psycopg.Connection, rows: list[tuple], how: str) -> None:
    """The rows in BATCHES statements: multi-row INSERTs, or one COPY per batch."""
    with conn.cursor() as cur:
        for chunk in batches(rows):
            if how == "insert":
                insert_facts(conn, chunk)
            else:
                with cur.copy(COPY_SQL) as copy:
                    for r in chunk:
                        copy.write_row(r)


def insert_facts(conn: psycopg.Connection, rows: list[tuple]) -> None:
    """The rows in one INSERT statement."""
    row = sql.SQL("({})").format(sql.SQL(", ").join([sql.Placeholder()] * len(FACT_COLUMNS)))
    conn.execute(INSERT_SQL + sql.SQL(", ").join([row] * len(rows)), [v for r in rows for v in r])


def fresh(url: str) -> str:
    with psycopg.connect(url) as conn:
        load_customers(conn, SPEC)
    return url


def fact(month_end: date, company: str, aum: int = 100) -> tuple:
    """A FACT_COLUMNS row of plan P-<company>, product line PL201, one portfolio."""
    plan = f"P{company[1:]}A"
    key = (plan, company, "PL201", f"{plan}01")
    return (month_end, "企年投资", *key, aum, aum, 0, "B01", "北京分公司")


def one(conn: psycopg.Connection, query: str, params: tuple | None = None) -> tuple:
    return conn.execute(query, params).fetchone()


# ---------------------------------------------------------------------------------------


def test_the_month_has_no_rejects_and_spans_the_batches() -> None:
    assert len(MONTH.facts) >= BATCHES * 4 and all(is_contract(r) for r in MONTH.facts)
    assert {r[0] for r in MONTH.facts} == {date(2024, 9, 1)}  # any day names the month


@pytest.mark.parametrize("how", ["insert", "copy"])
def test_a_load_in_50_statements_runs_each_step_once_at_commit(rules_url: str, how: str) -> None:
    keys = contract_keys(MONTH.facts)
    with psycopg.connect(fresh(rules_url)) as conn:
        conn.execute("SET LOCAL track_functions = 'pl'")
        write_in_statements(conn, MONTH.facts, how)
        calls = one(
            conn,
            "SELECT calls FROM pg_stat_xact_user_functions"
            " WHERE schemaname = 'cmdm' AND funcname = 'tg_facts__queue_hooks'",
        )
        assert calls == (BATCHES,), "the statement trigger fires once per statement"
        assert conn.execute(QUEUED_SQL).fetchall() == [("facts", date(2024, 9, 1))]
        assert conn.execute(RUNS_SQL).fetchall() == [], "nothing runs before COMMIT"
        assert one(conn, "SELECT count(*) FROM customer.customer_plan_contract") == (0,)
        conn.commit()

        assert conn.execute(RUNS_SQL).fetchall() == [
            (MONTH_END, "contract_sync", "trigger", "succeeded"),
            (MONTH_END, "snapshot_refresh", "trigger", "succeeded"),
        ]
        sync, refresh = conn.execute(COUNTS_SQL).fetchall()
        assert (sync[1]["keys_seen"], sync[1]["versions_opened"], sync[2]) == (
            len(keys),
            len(keys),
            0,
        )
        pairs = {(c, line) for c, _, line in keys}
        assert (refresh[1]["plan_rows"], refresh[1]["business_rows"]) == (len(keys), len(pairs))
        assert one(conn, OUTPUT_COUNTS_SQL) == (
            len(MONTH.facts),
            len(keys),
            len(pairs),
            len(keys),
            0,
            2,
            0,
        )
        aum = one(conn, "SELECT sum(aum_balance) FROM customer.fct_customer_plan_monthly_status")
        assert aum == (sum(r[6] for r in MONTH.facts),)


def test_post_hooks_off_then_call_gives_the_trigger_outputs(rules_url: str, admin_url: str) -> None:
    """The same 50-statement load: hooks at commit in one database; in another,
    `SET LOCAL cmdm.post_hooks = off` and CALL run_post_etl_hooks in the transaction."""
    with psycopg.connect(rules_url) as conn:
        load_customers(conn, SPEC)
        conn.commit()
        write_in_statements(conn, MONTH.facts, "insert")
        conn.commit()
        by_trigger = conn.execute(COUNTS_SQL).fetchall()
    expected = state(rules_url)

    with new_database(admin_url) as url, psycopg.connect(url) as conn:
        conn.execute("SET LOCAL cmdm.post_hooks = off")
        write_in_statements(conn, MONTH.facts, "insert")
        assert conn.execute(QUEUED_SQL).fetchall() == [], "post_hooks = off: nothing queued"
        conn.execute("CALL customer.run_post_etl_hooks(%s, %s)", (DOMAIN, MONTH_END))
        conn.commit()
        assert conn.execute(RUNS_SQL).fetchall() == [
            (MONTH_END, "contract_sync", "call", "succeeded"),
            (MONTH_END, "snapshot_refresh", "call", "succeeded"),
        ]
        by_call = conn.execute(COUNTS_SQL).fetchall()
        diff = state_diff(expected, state(url))
    assert not diff, diff
    assert by_call == by_trigger


def test_the_connection_option_skips_the_hooks(rules_url: str) -> None:
    """`-c cmdm.post_hooks=off` on the connection: the load commits without hooks; a later
    CALL in a READ COMMITTED transaction does the work."""
    url = fresh(rules_url)
    with psycopg.connect(url, options="-c cmdm.post_hooks=off") as conn:
        write_in_statements(conn, MONTH.facts, "copy")
        conn.commit()
        assert one(conn, OUTPUT_COUNTS_SQL) == (len(MONTH.facts), 0, 0, 0, 0, 0, 0)
        conn.execute("CALL customer.run_post_etl_hooks(%s, %s)", (DOMAIN, date(2024, 9, 15)))
        conn.commit()
        keys = len(contract_keys(MONTH.facts))
        assert one(conn, "SELECT count(*) FROM customer.customer_plan_contract") == (keys,)
        assert [r[2] for r in conn.execute(RUNS_SQL)] == ["call", "call"]


@pytest.mark.parametrize(
    "level",
    [psycopg.IsolationLevel.REPEATABLE_READ, psycopg.IsolationLevel.SERIALIZABLE],
    ids=["repeatable-read", "serializable"],
)
def test_a_load_outside_read_committed_fails_at_commit(
    rules_url: str, level: psycopg.IsolationLevel
) -> None:
    url = fresh(rules_url)
    with psycopg.connect(url) as conn:
        conn.isolation_level = level
        write_in_statements(conn, MONTH.facts, "insert")
        with pytest.raises(psycopg.Error) as failure:
            conn.commit()
    error = failure.value
    assert error.sqlstate == "CM005"
    name = level.name.replace("_", " ")
    assert error.diag.message_primary == f"post-ETL hooks need READ COMMITTED, not {name}"
    assert error.diag.message_hint.startswith("Load in a READ COMMITTED transaction")
    with psycopg.connect(url) as conn:
        assert one(conn, OUTPUT_COUNTS_SQL) == NOTHING, "not even the facts are committed"


def test_a_failing_step_aborts_the_commit(rules_url: str) -> None:
    """A fact dated 2250-06-30 (periods end at 2200-12) loaded with a good month: 2024-09
    syncs first, then 2250-06 fails; COMMIT fails and nothing of either month is written."""
    url = fresh(rules_url)
    with psycopg.connect(url) as conn:
        write_in_statements(conn, MONTH.facts, "insert")
        insert_facts(conn, [fact(date(2250, 6, 30), "C000001")])
        assert conn.execute(QUEUED_SQL).fetchall() == [
            ("facts", date(2024, 9, 1)),
            ("facts", date(2250, 6, 1)),
        ]
        with pytest.raises(psycopg.Error) as failure:
            conn.commit()
    error = failure.value
    assert error.sqlstate == "CM001"
    assert error.diag.message_primary == (
        f"post-ETL hook {DOMAIN}: step contract_sync for period 2250-06 failed: "
        "period 2250-06-01 is out of range"
    )
    assert error.diag.message_hint == "Periods are months from 1900-01 to 2200-12."
    with psycopg.connect(url) as conn:
        assert one(conn, OUTPUT_COUNTS_SQL) == NOTHING


@pytest.mark.parametrize(
    ("table", "flag"),
    [("当年中标", "is_winning_this_year"), ("当年流失", "is_churned_this_year")],
)
def test_an_event_committed_alone_refreshes_the_months_that_see_it(
    rules_url: str, table: str, flag: str
) -> None:
    """January and February loaded; an event of C000001 reported on January 15 commits in
    its own transaction: both months' snapshots turn the flag on for C000001/PL201 (only);
    one reported on February 3 for C000002 turns it on for February only."""
    url = fresh(rules_url)
    jan, feb = date(2024, 1, 31), date(2024, 2, 29)
    flags_sql, plan_flags_sql = (
        sql.SQL("SELECT snapshot_month, company_id, {flag} FROM {table} ORDER BY 1, 2").format(
            flag=sql.Identifier(flag), table=sql.Identifier("customer", snapshot)
        )
        for snapshot in ("fct_customer_business_monthly_status", "fct_customer_plan_monthly_status")
    )
    insert_event = sql.SQL(
        'INSERT INTO {table} (company_id, "产品线代码", "计划代码", "上报月份")'
        " VALUES (%s, %s, %s, %s)"
    ).format(table=sql.Identifier("customer", table))
    with psycopg.connect(url) as conn:
        for month_end in (jan, feb):
            insert_facts(conn, [fact(month_end, "C000001"), fact(month_end, "C000002")])
            conn.commit()
        assert [r[2] for r in conn.execute(flags_sql)] == [False] * 4
        runs_before = one(conn, "SELECT max(hook_run_id) FROM cmdm.hook_run")[0]

        conn.execute(insert_event, ("C000001", "PL201", "P000001A", date(2024, 1, 15)))
        conn.commit()
        expected = [
            (jan, "C000001", True),
            (jan, "C000002", False),
            (feb, "C000001", True),
            (feb, "C000002", False),
        ]
        assert conn.execute(flags_sql).fetchall() == expected
        assert conn.execute(plan_flags_sql).fetchall() == expected
        assert conn.execute(
            "SELECT period, step, trigger_kind, outcome FROM cmdm.hook_run"
            " WHERE hook_run_id > %s ORDER BY hook_run_id",
            (runs_before,),
        ).fetchall() == [
            (jan, "snapshot_refresh", "trigger", "succeeded"),
            (feb, "snapshot_refresh", "trigger", "succeeded"),
        ], "an event refreshes snapshots; it syncs nothing"

        conn.execute(insert_event, ("C000002", "PL201", "P000002A", date(2024, 2, 3)))
        conn.commit()
        assert conn.execute(flags_sql).fetchall() == [
            (jan, "C000001", True),
            (jan, "C000002", False),
            (feb, "C000001", True),
            (feb, "C000002", True),
        ]
