"""Small helpers for tests that talk to PostgreSQL directly."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg

from cmdm_admin import migrate
from cmdm_admin.demo import DemoSpec, load_demo


def with_database(url: str, database: str) -> str:
    """The same server URL, naming another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def query(url: str, sql: str, params: tuple | dict | None = None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new empty database on the admin URL's server, dropped (forcibly) afterwards."""
    name = f"cmdm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def demo_database(admin_url: str, spec: DemoSpec) -> Iterator[str]:
    """A scratch database at head holding `spec`'s demo history, loaded as `make demo`
    does: one transaction per month, whose COMMIT runs the post-ETL hook."""
    with scratch_database(admin_url) as url:
        migrate.upgrade(url)
        with psycopg.connect(url) as conn:
            load_demo(conn, spec)
        yield url


#: Everything the loads and hooks leave, without surrogate ids and timestamps: every
#: column the rules add to the snapshot tables is compared too.
STATE_SQL = {
    "contract versions": """SELECT to_jsonb(t) - 'contract_id' - 'key_id' - 'created_at'
                                   - 'updated_at'
                              FROM customer.customer_plan_contract t""",
    "business snapshot": """SELECT to_jsonb(t) - 'updated_at'
                              FROM customer.fct_customer_business_monthly_status t""",
    "plan snapshot": """SELECT to_jsonb(t) - 'updated_at'
                          FROM customer.fct_customer_plan_monthly_status t""",
    "rejects": """SELECT to_jsonb(t) - 'rejected_fact_id' - 'rejected_at'
                    FROM cmdm.rejected_fact t""",
    "facts": """SELECT to_jsonb(t) - 'id' FROM business."规模明细" t""",
    "awards": """SELECT to_jsonb(t) - 'id' FROM customer."当年中标" t""",
    "losses": """SELECT to_jsonb(t) - 'id' FROM customer."当年流失" t""",
    "annual company": "SELECT to_jsonb(t) - 'updated_at' FROM customer.annual_company_status t",
    "hook queue": "SELECT to_jsonb(t) FROM cmdm.hook_queue t",
}

State = dict[str, Counter]


def state(url: str) -> State:
    with psycopg.connect(url) as conn:
        return {
            name: Counter(row[0] for row in conn.execute(f"SELECT j::text FROM ({q}) s(j)"))
            for name, q in STATE_SQL.items()
        }
