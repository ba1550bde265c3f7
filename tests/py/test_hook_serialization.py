"""Who may run at the same time as a load's hooks (issue 18, findings 1, 3 and 4, and the
statement timeout at COMMIT).

Every writer of the outputs serializes on cmdm's hook lock (a row of cmdm.hook_lock,
docs/hooks.md "Concurrency"): a load's hooks, `cmdm rebuild` and a product-line rename.
Each test holds one of two transactions open at a known point and checks, from a third
session (pg_blocking_pids), who waits for whom; nothing sleeps to guess an interleaving.

- A rename committed while a load's hooks are in their transaction reaches every row
  (before: the versions the uncommitted hook inserted kept the old name for good).
- A load that writes the events table first and then the facts, while `cmdm rebuild`
  runs, waits for the rebuild at its COMMIT (before: a deadlock, one of them rolled back).
- A reader login cannot take the hook lock, and the locks it can take stall no load
  (before: `pg_advisory_lock(hashtext('cmdm:contract_sync'))` stalled every load).
- The ETL's statement_timeout also limits the COMMIT that runs the hooks: the load rolls
  back entirely, with an error naming the hook and a HINT saying what to do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import psycopg
import pytest
from psycopg import errors
from test_hook_concurrency import SPEC, UNIVERSE, write_part
from test_roles import Logins, logins  # noqa: F401  (the fixture)
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.demo import load_customers
from cmdm_admin.rebuild import rebuild

DOMAIN = "annuity_performance"
WAIT_SECONDS = 30
#: No test may hang: a lock wait longer than this fails the statement instead.
OPTIONS = "-c lock_timeout=30s"
RENAMED = "企年投资X"
RENAME_SQL = """UPDATE mapping."产品线" SET "产品线" = %s WHERE "产品线代码" = 'PL201'"""
#: Rows of PL201 in each output table that do not carry the renamed name.
STALE_NAMES_SQL = """
SELECT (SELECT count(*) FROM customer.customer_plan_contract
         WHERE product_line_code = 'PL201' AND product_line_name <> %(name)s),
       (SELECT count(*) FROM customer.fct_customer_business_monthly_status
         WHERE product_line_code = 'PL201' AND product_line_name <> %(name)s),
       (SELECT count(*) FROM customer.fct_customer_plan_monthly_status
         WHERE product_line_code = 'PL201' AND product_line_name <> %(name)s)
"""
runner = CliRunner()


@pytest.fixture
def loaded(rules_url: str) -> str:
    """The demo universe's customers and its first month, loaded through the hook."""
    with psycopg.connect(rules_url) as conn:
        load_customers(conn, SPEC)
        conn.commit()
        write_part(conn, UNIVERSE[0], lambda: None)
    return rules_url


def blocked_by(monitor: psycopg.Connection, pid: int) -> list[int]:
    return monitor.execute("SELECT pg_catalog.pg_blocking_pids(%s)", (pid,)).fetchone()[0]


def wait_until(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


class Background:
    """`action` in a thread; its exception, if any, kept for the test to report."""

    def __init__(self, name: str, action: Callable[[], Any]) -> None:
        self.name = name
        self.error: BaseException | None = None
        self.result: Any = None

        def run() -> None:
            try:
                self.result = action()
            except BaseException as exc:  # reported by the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self) -> None:
        self.thread.join(WAIT_SECONDS * 2)
        assert self.done, f"{self.name} hung"

    def failure(self) -> str | None:
        if self.error is None:
            return None
        code = getattr(self.error, "sqlstate", None)
        return f"{self.name}: {type(self.error).__name__} (SQLSTATE {code}): {self.error}"


def run_check(url: str) -> tuple[int, str]:
    result = runner.invoke(app, ["check", "--database-url", url])
    return result.exit_code, result.stdout


# ---------------------------------------------------------------------------------------
# Finding 1: a product-line rename during a load's hooks


@pytest.mark.parametrize("first", ["hook", "rename"])
def test_a_rename_during_a_loads_hooks_reaches_every_row(loaded: str, first: str) -> None:
    """The load's hooks run (SET CONSTRAINTS ALL IMMEDIATE: what COMMIT does, with the
    transaction still open) and the rename comes while they are uncommitted — or the rename
    is made first and the load commits while it is uncommitted. Whichever waits, once both
    committed every row of PL201 in every output table carries the new name, and `cmdm
    check` finds the outputs equal to the facts."""
    with (
        psycopg.connect(loaded, options=OPTIONS) as load,
        psycopg.connect(loaded, options=OPTIONS) as rename,
        psycopg.connect(loaded, autocommit=True) as monitor,
    ):
        write_part(load, UNIVERSE[1], lambda: None)
        if first == "hook":
            load.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the hooks run now, uncommitted
            waiter_pid, finish_first = rename.info.backend_pid, load.commit

            def second() -> None:
                rename.execute(RENAME_SQL, (RENAMED,))
                rename.commit()
        else:
            rename.execute(RENAME_SQL, (RENAMED,))  # renamed, uncommitted
            waiter_pid, finish_first = load.info.backend_pid, rename.commit
            second = load.commit
        background = Background(f"the {'rename' if first == 'hook' else 'load'}", second)
        wait_until(
            "the second transaction to finish or to wait for the first",
            lambda: background.done or bool(blocked_by(monitor, waiter_pid)),
        )
        finish_first()
        background.join()
    assert background.failure() is None, background.failure()
    with psycopg.connect(loaded) as conn:
        stale = conn.execute(STALE_NAMES_SQL, {"name": RENAMED}).fetchone()
    assert stale == (0, 0, 0), (
        f"rows of PL201 still named otherwise than {RENAMED} (contract versions, business "
        f"snapshot, plan snapshot): {stale}"
    )
    code, out = run_check(loaded)
    assert code == 0, out


# ---------------------------------------------------------------------------------------
# Finding 3: a load that writes the events first, and `cmdm rebuild`


def test_a_load_writing_events_first_waits_for_a_rebuild_without_deadlock(loaded: str) -> None:
    """The load inserts an award (customer."当年中标") and, while `cmdm rebuild` runs (held
    after its first month), updates a fact row and commits. The load's COMMIT waits for
    the rebuild; both commit; the outputs equal the facts."""
    paused, go = threading.Event(), threading.Event()

    def hold(month_run: Any) -> None:
        paused.set()
        go.wait(WAIT_SECONDS)

    month = UNIVERSE[0].month
    with (
        psycopg.connect(loaded, options=OPTIONS) as load,
        psycopg.connect(loaded, options=OPTIONS, autocommit=True) as rebuilder,
        psycopg.connect(loaded, autocommit=True) as monitor,
    ):
        company, line, plan = load.execute(
            """SELECT company_id, "产品线代码", "计划代码" FROM business."规模明细"
                WHERE "月度" = %s AND "产品线代码" = 'PL202' ORDER BY id LIMIT 1""",
            (month,),
        ).fetchone()
        load.execute(
            """INSERT INTO customer."当年中标" (company_id, "产品线代码", "计划代码", "上报月份")
               VALUES (%s, %s, %s, %s)""",
            (company, line, plan, month.replace(day=15)),
        )
        rebuild_pid = rebuilder.info.backend_pid
        rebuilding = Background(
            "the rebuild", lambda: rebuild(rebuilder, loaded, DOMAIN, month, month, on_month=hold)
        )
        committing: Background | None = None
        try:
            wait_until(
                "the rebuild to run its first month or to wait for a lock",
                lambda: (
                    paused.is_set() or rebuilding.done or bool(blocked_by(monitor, rebuild_pid))
                ),
            )
            load.execute(
                """UPDATE business."规模明细" SET "期末资产规模" = "期末资产规模" + 1
                    WHERE id = (SELECT min(id) FROM business."规模明细" WHERE "月度" = %s)""",
                (month,),
            )
            load_pid = load.info.backend_pid
            committing = Background("the load's COMMIT", load.commit)
            wait_until(
                "the load's COMMIT to wait for the rebuild, or to finish",
                lambda: committing.done or rebuild_pid in blocked_by(monitor, load_pid),
            )
            waited = not committing.done
        except psycopg.Error as exc:
            load.rollback()
            waited, loading_error = False, f"the load: {type(exc).__name__}: {exc}"
        else:
            loading_error = None
        finally:
            go.set()
            rebuilding.join()
            if committing is not None:
                committing.join()
    failures = [
        f for f in (loading_error, rebuilding.failure(), committing and committing.failure()) if f
    ]
    assert failures == [], failures
    assert waited, "the load committed while the rebuild held its months"
    code, out = run_check(loaded)
    assert code == 0, out
    with psycopg.connect(loaded) as conn:
        winning = conn.execute(
            """SELECT is_winning_this_year FROM customer.fct_customer_business_monthly_status
                WHERE snapshot_month = %s AND company_id = %s AND product_line_code = %s""",
            (date(2024, 9, 30), company, line),
        ).fetchone()
    assert winning == (True,), "the award committed after the rebuild was not refreshed"


# ---------------------------------------------------------------------------------------
# Finding 4: readers and the hook lock

#: What a reader could lock before: the advisory locks the hooks serialized on.
ADVISORY_SQL = (
    "SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext('cmdm:contract_sync')),"
    " pg_catalog.pg_advisory_lock(pg_catalog.hashtext('cmdm:snapshot'), 202409),"
    " pg_catalog.pg_advisory_lock(pg_catalog.hashtext('cmdm:snapshot'), 202410)"
)
LOCKING_SQL = (
    "SELECT FROM cmdm.hook_lock FOR UPDATE",
    "SELECT FROM cmdm.hook_lock FOR KEY SHARE",
    "LOCK TABLE cmdm.hook_lock IN ACCESS SHARE MODE",
    "LOCK TABLE cmdm.hook_lock IN EXCLUSIVE MODE",
)
ONE_ROW_UPDATE_SQL = """
UPDATE business."规模明细" SET "期末资产规模" = "期末资产规模" + 1
 WHERE id = (SELECT min(id) FROM business."规模明细")
"""


def test_a_reader_holding_what_it_can_lock_stalls_no_load(
    loaded: str,
    logins: Logins,  # noqa: F811
) -> None:
    """A cmdm_reader login reads the outputs in an open transaction and holds every
    advisory lock cmdm ever serialized on: an ETL login's one-row update commits at once."""
    with logins.reader.connect(loaded) as reader:
        reader.execute("SELECT count(*) FROM customer.customer_plan_contract").fetchone()
        reader.execute("SELECT count(*) FROM customer.fct_customer_plan_monthly_status")
        reader.execute(ADVISORY_SQL)
        with logins.etl.connect(loaded, options="-c lock_timeout=5s") as etl:
            etl.execute(ONE_ROW_UPDATE_SQL)
            started = time.monotonic()
            etl.commit()
            took = time.monotonic() - started
    assert took < 5


def test_only_cmdm_can_take_the_hook_lock(
    loaded: str,
    logins: Logins,  # noqa: F811
) -> None:
    """The hooks serialize on rows of cmdm.hook_lock: locking a row needs UPDATE on the
    table, and locking the table needs more than SELECT. The reader and the ETL have
    neither (the reader cannot even look into schema cmdm)."""
    for login in (logins.reader, logins.etl):
        with login.connect(loaded) as conn:
            for statement in LOCKING_SQL:
                with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                    conn.execute(statement)
    with psycopg.connect(loaded) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM cmdm.hook_lock ORDER BY 1")]
    assert "contract_sync" in names


# ---------------------------------------------------------------------------------------
# Deliverable 4: the ETL's timeouts and the hooks

NOTHING_SQL = """
SELECT (SELECT count(*) FROM business."规模明细"),
       (SELECT count(*) FROM customer.customer_plan_contract),
       (SELECT count(*) FROM customer.fct_customer_plan_monthly_status),
       (SELECT count(*) FROM cmdm.hook_run),
       (SELECT count(*) FROM cmdm.rejected_fact)
"""


@pytest.fixture
def customers_only(rules_url: str) -> str:
    with psycopg.connect(rules_url) as conn:
        load_customers(conn, SPEC)
    return rules_url


def test_statement_timeout_does_not_limit_the_hooks_at_commit(customers_only: str) -> None:
    """PostgreSQL stops the statement timer before the commit work (deferred triggers) of
    a COMMIT, explicit or implicit: a hook longer than the ETL's statement_timeout runs to
    its end and the load commits (docs/hooks.md, "Timeouts")."""
    with psycopg.connect(customers_only) as conn:
        write_part(conn, UNIVERSE[0], lambda: None)
        conn.execute("SET LOCAL statement_timeout = '5ms'")
        conn.commit()
        took = conn.execute("SELECT sum(duration) FROM cmdm.hook_run").fetchone()[0]
    assert took.total_seconds() > 0.005, "the hook was too fast to show anything"
    code, out = run_check(customers_only)
    assert code == 0, out


@contextmanager
def hook_lock_held(url: str) -> Iterator[psycopg.Connection]:
    """Another load whose hooks ran and whose transaction stays open: it holds the hook
    lock until it ends (rolled back at exit)."""
    with psycopg.connect(url) as holder:
        write_part(holder, UNIVERSE[1], lambda: None)
        holder.execute("SET CONSTRAINTS ALL IMMEDIATE")
        yield holder
        holder.rollback()


def test_a_call_cut_by_statement_timeout_rolls_back_and_says_why(customers_only: str) -> None:
    """With the hooks off, the ETL's CALL is a statement like any other: its
    statement_timeout cancels the hooks (here while they wait for the hook lock another
    load holds). The error names the hook and says what to do; the ETL's transaction is
    aborted, so nothing of the load is written."""
    with hook_lock_held(customers_only), psycopg.connect(customers_only) as conn:
        conn.execute("SET LOCAL cmdm.post_hooks = off")
        write_part(conn, UNIVERSE[0], lambda: None)
        conn.execute("SET LOCAL statement_timeout = '300ms'")
        with pytest.raises(errors.QueryCanceled) as caught:
            conn.execute("CALL customer.run_post_etl_hooks(%s, %s)", (DOMAIN, UNIVERSE[0].month))
        conn.rollback()
    diag = caught.value.diag
    assert (diag.message_primary or "").startswith("post-ETL hook annuity_performance"), str(
        caught.value
    )
    assert "statement_timeout" in (diag.message_hint or ""), str(caught.value)
    with psycopg.connect(customers_only) as conn:
        assert conn.execute(NOTHING_SQL).fetchone() == (0, 0, 0, 0, 0)


def test_lock_timeout_at_commit_rolls_back_the_load_and_says_why(customers_only: str) -> None:
    """lock_timeout does limit a COMMIT: its hooks wait for the hook lock while another
    load's hooks hold it. The load rolls back whole (facts included), and the error names
    the hook lock and what to do."""
    with hook_lock_held(customers_only), psycopg.connect(customers_only) as conn:
        write_part(conn, UNIVERSE[0], lambda: None)
        conn.execute("SET LOCAL lock_timeout = '300ms'")
        with pytest.raises(errors.LockNotAvailable) as caught:
            conn.commit()
    diag = caught.value.diag
    assert (diag.message_primary or "").startswith("post-ETL hook annuity_performance"), str(
        caught.value
    )
    assert "lock_timeout" in (diag.message_hint or ""), str(caught.value)
    with psycopg.connect(customers_only) as conn:
        assert conn.execute(NOTHING_SQL).fetchone() == (0, 0, 0, 0, 0)
