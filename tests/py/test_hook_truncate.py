"""TRUNCATE of an input table inside a load: the BEFORE TRUNCATE triggers queue what the
rows covered (every loaded month, every events date), so the commit-time hook repairs
the months that vanished as well as the ones reloaded. The result must equal a database
that only ever saw the final inputs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import psycopg
import pytest
from dbutil import scratch_database

from cmdm_admin import migrate
from cmdm_admin.demo import DemoSpec, copy_month, iter_months, load_customers

SPEC = DemoSpec(companies=40, months=4, seed=11, start=date(2024, 11, 1))

STATE_SQL = {
    "contract": """
        SELECT company_id, plan_code, product_line_code, valid_from, valid_to, contract_status,
               status_year, is_strategic, is_existing
          FROM customer.customer_plan_contract ORDER BY 1, 2, 3, 4""",
    "business": """
        SELECT snapshot_month, company_id, product_line_code, aum_balance, plan_count,
               is_winning_this_year, is_churned_this_year, is_new, is_new_arrival, is_churned,
               is_strategic, is_existing
          FROM customer.fct_customer_business_monthly_status ORDER BY 1, 2, 3""",
    "plan": """
        SELECT snapshot_month, company_id, plan_code, product_line_code, aum_balance,
               is_winning_this_year, is_new, is_churned, is_strategic, is_existing
          FROM customer.fct_customer_plan_monthly_status ORDER BY 1, 2, 3, 4""",
    "rejects": """
        SELECT period, reason, company_id, plan_code, product_line_code, portfolio_code, aum
          FROM cmdm.rejected_fact ORDER BY 1, 2, 3, 4, 5, 6, 7""",
}


def state(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {name: conn.execute(sql).fetchall() for name, sql in STATE_SQL.items()}


@pytest.fixture
def fresh_url(admin_url: str) -> Iterator[str]:
    """A second database at head: the reference that only sees the final inputs."""
    with scratch_database(admin_url) as url:
        migrate.upgrade(url)
        yield url


def load(url: str, months: list) -> None:
    """Customers, then each month in its own transaction (the hook runs at each commit)."""
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            load_customers(conn, SPEC)
        for month in months:
            with conn.transaction():
                copy_month(conn, month)


def test_truncate_and_partial_reload_equals_a_fresh_load(rules_url: str, fresh_url: str) -> None:
    months = list(iter_months(SPEC))
    load(rules_url, months)
    # The reload keeps months 1 and 3 (3 restated: every AUM doubled), drops 2 and 4.
    restated = replace(
        months[2],
        facts=[(*row[:6], row[6] * 2 if row[6] else row[6], *row[7:]) for row in months[2].facts],
    )
    final = [months[0], restated]
    with psycopg.connect(rules_url, autocommit=True) as conn:
        with conn.transaction():
            txid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
            conn.execute('TRUNCATE business."规模明细"')
            for month in final:
                copy_month(conn, replace(month, awards=[], losses=[]))
        synced = conn.execute(
            "SELECT period FROM cmdm.hook_run WHERE txid = %s::xid8 AND step = 'contract_sync' "
            "ORDER BY period",
            (txid,),
        ).fetchall()
        after = state(conn)
    # every month the table held before the TRUNCATE is synced once, vanished ones included
    assert [p for (p,) in synced] == [
        date(2024, 11, 30),
        date(2024, 12, 31),
        date(2025, 1, 31),
        date(2025, 2, 28),
    ]

    load(fresh_url, final)
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        # the reference has the same events as the truncated database
        with conn.transaction():
            for month in months[1:]:
                copy_month(conn, replace(month, facts=[]))
        reference = state(conn)
    assert after["contract"] and after["business"]
    assert after == reference


def test_truncate_of_an_events_table_refreshes_the_months_that_saw_it(
    rules_url: str, fresh_url: str
) -> None:
    months = list(iter_months(SPEC))
    assert any(m.awards for m in months), "the spec must generate awards"
    load(rules_url, months)
    # autocommit: the transaction block below is a real transaction, committed at its end
    with psycopg.connect(rules_url, autocommit=True) as conn:
        won_before = conn.execute(
            "SELECT count(*) FROM customer.fct_customer_business_monthly_status "
            "WHERE is_winning_this_year"
        ).fetchone()[0]
        with conn.transaction():
            conn.execute('TRUNCATE customer."当年中标"')
        after = state(conn)
    assert won_before > 0
    load(fresh_url, [replace(m, awards=[]) for m in months])
    with psycopg.connect(fresh_url) as conn:
        reference = state(conn)
    assert after == reference
