"""Crashes (issue 18, deliverable 2): the server stopped with `pg_ctl stop -m immediate`
in the middle of a hook at COMMIT and in the middle of a long `cmdm rebuild`, and the
loading backend terminated with `pg_terminate_backend` mid-COMMIT. After each, the outputs
equal the state before the interrupted transaction, `cmdm check` finds no difference, and
the next load (or the rebuild run again) ends exactly where an uninterrupted run ends.

"In the middle" is made deterministic, not timed:

- a hook at COMMIT: a controller session holds ACCESS EXCLUSIVE on the contract table, so
  the loading transaction's COMMIT runs its hook up to the first touch of that table and
  waits there; the crash comes once pg_stat_activity shows that COMMIT waiting on a lock;
- a rebuild: its per-month callback (the same one the CLI's progress bar uses) blocks
  after the first month has been recomputed, with the rebuild's transaction open.

Each test runs its own PostgreSQL cluster (the crash takes the server down)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from dbutil import state, with_database
from typer.testing import CliRunner

from cmdm_admin import migrate
from cmdm_admin.cli import app
from cmdm_admin.cluster import EmbeddedCluster
from cmdm_admin.demo import DemoSpec, copy_month, delete_month, iter_months, load_customers
from cmdm_admin.hooks import DEFAULT_DOMAIN
from cmdm_admin.rebuild import rebuild

# Four months across a year end: the annual flags of 2025 depend on December 2024.
SPEC = DemoSpec(companies=60, months=4, seed=5, start=date(2024, 11, 1))
MONTHS = list(iter_months(SPEC))


def load_month(url: str, index: int) -> None:
    with psycopg.connect(url) as conn:
        delete_month(conn, MONTHS[index].month)
        copy_month(conn, MONTHS[index])
        conn.commit()


def prepare(url: str, months: int) -> None:
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        load_customers(conn, SPEC)
        conn.commit()
    for index in range(months):
        load_month(url, index)


def no_differences(url: str) -> None:
    result = CliRunner().invoke(app, ["check", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "no differences" in result.output, result.output


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def cluster(cluster_home: Path) -> Iterator[EmbeddedCluster]:
    own = EmbeddedCluster(cluster_home, fsync=False)
    own.start()
    # Commits durable before the crash, as in production: the embedded cluster runs with
    # synchronous_commit off, under which a crash may take the last ~200 ms of commits with
    # it (here, on PostgreSQL 18, the setup's last month in most runs), and "the state
    # before" would then not be the state before. fsync stays off: the OS does not crash.
    with psycopg.connect(own.url("postgres"), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_commit = on")
        conn.execute("SELECT pg_reload_conf()")

    def new_sessions_commit_synchronously() -> bool:
        with psycopg.connect(own.url("postgres")) as conn:
            return conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"

    wait_for(new_sessions_commit_synchronously, "the reload of synchronous_commit")
    yield own  # cluster_home's teardown destroys it


@pytest.fixture
def urls(cluster: EmbeddedCluster) -> tuple[str, str]:
    """A database with the first three months, and a reference with all four loaded
    without interruption."""
    admin = cluster.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE crash")
        conn.execute("CREATE DATABASE reference")
    crash, reference = with_database(admin, "crash"), with_database(admin, "reference")
    prepare(crash, 3)
    prepare(reference, 4)
    return crash, reference


def commit_waiting_on_the_contract_table(url: str) -> tuple[threading.Thread, list, int]:
    """Month 4's load in a thread, its COMMIT (and so its hook) waiting on the contract
    table that a controller session holds; returns the thread, where its outcome lands,
    and the loading backend's pid. The controller's connection is returned in the list
    too, so the caller decides when it lets go."""
    controller = psycopg.connect(url)
    controller.execute("LOCK TABLE customer.customer_plan_contract IN ACCESS EXCLUSIVE MODE")
    loader = psycopg.connect(url)
    pid = loader.info.backend_pid
    delete_month(loader, MONTHS[3].month)
    copy_month(loader, MONTHS[3])
    outcome: list = [controller]

    def commit() -> None:
        try:
            loader.commit()
            outcome.append("committed")
        except psycopg.Error as exc:
            outcome.append(exc)
        finally:
            loader.close()

    thread = threading.Thread(target=commit, daemon=True)
    thread.start()

    def commit_waits() -> bool:
        with psycopg.connect(url, autocommit=True) as watcher:
            row = watcher.execute(
                "SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
        return row is not None and row[0] == "Lock" and row[1].strip().upper() == "COMMIT"

    wait_for(commit_waits, "the COMMIT's hook to wait on customer.customer_plan_contract")
    return thread, outcome, pid


def crash(cluster: EmbeddedCluster) -> None:
    done = cluster._pg_ctl("stop", "-m", "immediate", "-w")
    assert done.returncode == 0, done.stderr
    assert cluster.status().state != "running"


def test_server_crash_in_the_middle_of_a_hook_at_commit(
    cluster: EmbeddedCluster, urls: tuple[str, str]
) -> None:
    url, reference = urls
    before = state(url)
    thread, outcome, _ = commit_waiting_on_the_contract_table(url)

    crash(cluster)
    thread.join(30)
    assert isinstance(outcome[-1], psycopg.OperationalError), outcome
    cluster.start()

    assert state(url) == before  # month 4's facts and everything its hook did: gone
    no_differences(url)
    load_month(url, 3)  # the ETL runs the month again
    assert state(url) == state(reference)
    no_differences(url)


def test_backend_terminated_in_the_middle_of_a_hook_at_commit(urls: tuple[str, str]) -> None:
    url, reference = urls
    before = state(url)
    thread, outcome, pid = commit_waiting_on_the_contract_table(url)

    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    thread.join(30)
    assert isinstance(outcome[-1], psycopg.OperationalError), outcome
    outcome[0].rollback()  # the controller lets go
    outcome[0].close()

    assert state(url) == before
    no_differences(url)
    load_month(url, 3)
    assert state(url) == state(reference)
    no_differences(url)


def test_server_crash_in_the_middle_of_a_long_rebuild(
    cluster: EmbeddedCluster, urls: tuple[str, str]
) -> None:
    url, reference = urls
    load_month(url, 3)
    assert state(url) == state(reference)
    # What a rules change would leave to rebuild: flags that no longer hold, in two years.
    with psycopg.connect(url) as conn:
        touched = conn.execute(
            "UPDATE customer.fct_customer_plan_monthly_status SET is_new = NOT is_new"
        ).rowcount
        conn.commit()
    assert touched > 0
    before = state(url)
    first_month_done, outcome = threading.Event(), []

    def run() -> None:
        def hold(_month) -> None:
            first_month_done.set()
            time.sleep(60)  # the crash comes while the rebuild's transaction is open

        try:
            with psycopg.connect(url) as conn:
                rebuild(conn, url, DEFAULT_DOMAIN, MONTHS[0].month, MONTHS[3].month, on_month=hold)
            outcome.append("committed")
        except Exception as exc:  # the connection dies under it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert first_month_done.wait(60), "the rebuild never finished its first month"

    crash(cluster)
    cluster.start()
    assert state(url) == before  # nothing of the half-done rebuild

    with psycopg.connect(url) as conn:  # the rebuild run again, to its end
        result = rebuild(conn, url, DEFAULT_DOMAIN, MONTHS[0].month, MONTHS[3].month)
    assert result.committed and result.changes > 0
    assert state(url) == state(reference)
    no_differences(url)
