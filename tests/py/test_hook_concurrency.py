"""Concurrent loads and the commit-time post-ETL hooks (DESIGN §4 and §7).

"Concurrent loads of different months, in any interleaving, end in the same state as
serial loads; the same month is serialized." History and snapshots are a pure function of
the facts and events, so however the load transactions overlap and whichever commits
first, the database must end exactly as when the months are loaded one transaction each,
in month order.

The universe is the demo generator's (8 months across a year end, so the annual flags of
2025 depend on December 2024; bad rows in November and February) plus extra awards and
losses, some reported late (dated in the previous month). The serial reference is loaded
once per module; each scenario loads the same rows into a fresh database in waves of
3–4 threads, each thread one transaction on its own connection writing its month (or
half a month) in several statements, with barriers and seeded sleeps between statements
so the transactions overlap, then committing in a chosen or random order.

The commit order is made deterministic ("queued" waves) by holding the hook lock (the row
contract_sync of cmdm.hook_lock, which cmdm.run_hooks locks first) from a controller
session while the threads commit one after another: each one's commit-time hook blocks in
the lock queue, the next commits only once the previous is seen waiting
(pg_blocking_pids), and PostgreSQL grants the queue in order when the controller lets go
(waiters for a row queue on its tuple lock). So every hook run of the
wave contends on the lock, and the order is checked afterwards in cmdm.hook_run.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import psycopg
import pytest
from dbutil import State, scratch_database, state
from psycopg import sql

from cmdm_admin import migrate
from cmdm_admin.demo import (
    EVENT_COLUMNS,
    FACT_COLUMNS,
    PRODUCT_LINES,
    DemoSpec,
    customers,
    iter_months,
    load_customers,
)

SPEC = DemoSpec(companies=60, months=8, seed=11, start=date(2024, 9, 1))
#: Sep 2024 .. Apr 2025, by index.
MONTHS = [m.month for m in iter_months(SPEC)]
DOMAIN = "annuity_performance"
HOOK_LOCK = "SELECT FROM cmdm.hook_lock WHERE name = 'contract_sync' FOR UPDATE"
#: Statements of facts per load part (one COPY each), then one per events table.
FACT_CHUNKS = 4
#: No test may hang: a blocked thread, barrier or lock wait fails it instead.
WAIT_SECONDS = 60
SESSION_OPTIONS = "-c lock_timeout=60s -c statement_timeout=120s"

COPY_SQL = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
    table=sql.Identifier("business", "规模明细"),
    columns=sql.SQL(", ").join(map(sql.Identifier, FACT_COLUMNS)),
)
EVENT_TABLES = {"awards": "当年中标", "losses": "当年流失"}


def insert_event_sql(kind: str) -> sql.Composed:
    return sql.SQL("INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s)").format(
        table=sql.Identifier("customer", EVENT_TABLES[kind]),
        columns=sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS)),
    )


# ---------------------------------------------------------------------------------------
# The universe


@dataclass(frozen=True)
class Part:
    """What one load transaction writes: a month's facts (or a share of them) and events."""

    label: str
    month: date
    facts: list[tuple] = field(repr=False)
    awards: list[tuple] = field(repr=False)
    losses: list[tuple] = field(repr=False)


KNOWN_COMPANIES = {cid for cid, _ in customers(SPEC)}
KNOWN_LINES = {code for code, _, _ in PRODUCT_LINES}


def is_contract(row: tuple) -> bool:
    """A fact row of a contract key (DESIGN §4), FACT_COLUMNS order."""
    plan, company, line = row[2], row[3], row[4]
    return None not in (plan, company, line) and line in KNOWN_LINES and company in KNOWN_COMPANIES


def build_universe() -> list[Part]:
    """One Part per month: the demo's rows plus, per month, 4 awards and 2 losses of keys
    with facts that month, and from the second month 1 award dated in the previous month
    (a late report). No events row appears twice."""
    parts = []
    seen: set[tuple] = set()
    for index, demo in enumerate(iter_months(SPEC)):
        rng = random.Random(f"hook-concurrency/{demo.month}")
        keys = sorted({(r[3], r[4], r[2]) for r in demo.facts if is_contract(r)})
        picked = rng.sample(keys, 7)
        awards = list(demo.awards)
        losses = list(demo.losses)
        for company, line, plan in picked[:4]:
            awards.append((company, line, plan, demo.month.replace(day=rng.randint(1, 28))))
        for company, line, plan in picked[4:6]:
            losses.append((company, line, plan, demo.month.replace(day=rng.randint(1, 28))))
        if index:
            company, line, plan = picked[6]
            awards.append((company, line, plan, MONTHS[index - 1].replace(day=20)))
        awards = [e for e in awards if ("a", *e) not in seen]
        losses = [e for e in losses if ("l", *e) not in seen]
        seen |= {("a", *e) for e in awards} | {("l", *e) for e in losses}
        parts.append(Part(f"{demo.month:%Y-%m}", demo.month, demo.facts, awards, losses))
    return parts


UNIVERSE = build_universe()


def halves(part: Part) -> tuple[Part, Part]:
    """The month's rows in two parts (every other row): most keys with several portfolios
    get rows in both, so neither half alone has the month's AUM."""

    def half(k: int) -> Part:
        return Part(
            f"{part.label}/{'ab'[k]}",
            part.month,
            part.facts[k::2],
            part.awards[k::2],
            part.losses[k::2],
        )

    return half(0), half(1)


def write_part(conn: psycopg.Connection, part: Part, pause: Callable[[], None]) -> None:
    """The part's facts in FACT_CHUNKS COPY statements, then its awards, then its losses
    (one statement each, possibly empty), with pause() after each. Does not commit."""
    size = -(-len(part.facts) // FACT_CHUNKS)
    with conn.cursor() as cur:
        for k in range(FACT_CHUNKS):
            with cur.copy(COPY_SQL) as copy:
                for row in part.facts[k * size : (k + 1) * size]:
                    copy.write_row(row)
            pause()
        for kind in ("awards", "losses"):
            rows = getattr(part, kind)
            if rows:
                cur.executemany(insert_event_sql(kind), rows)
            pause()


# ---------------------------------------------------------------------------------------
# Databases and their state


@contextmanager
def new_database(admin_url: str) -> Iterator[str]:
    """A new database at head (which deploys the rules) with the universe's customers."""
    with scratch_database(admin_url) as url:
        migrate.upgrade(url)
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "SELECT to_regprocedure('cmdm.run_hooks(text, date[], date[], text, daterange,"
                " bigint)') IS NOT NULL"
            ).fetchone()[0], "head has no rules revision with the post-ETL hooks"
            load_customers(conn, SPEC)
        yield url


def load_serially(url: str, parts: Sequence[Part]) -> None:
    """Each part in its own transaction, one after another, hooks on (as an ETL)."""
    with psycopg.connect(url) as conn:
        for part in parts:
            write_part(conn, part, lambda: None)
            conn.commit()


def state_diff(expected: State, actual: State, limit: int = 12) -> str:
    """Per table, the rows only the reference has and the rows only the other has."""
    lines = []
    for name in expected:
        missing = expected[name] - actual[name]
        extra = actual[name] - expected[name]
        if missing or extra:
            lines.append(
                f"{name}: {sum(missing.values())} rows only in the serial load, "
                f"{sum(extra.values())} only in the concurrent one"
            )
            lines += [f"  - {row}" for row in sorted(missing)[:limit]]
            lines += [f"  + {row}" for row in sorted(extra)[:limit]]
    return "\n".join(lines)


def failed_runs(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT period, step, trigger_kind, outcome, error FROM cmdm.hook_run"
            " WHERE outcome <> 'succeeded' OR trigger_kind <> 'trigger'"
        ).fetchall()


# ---------------------------------------------------------------------------------------
# Concurrent waves


@dataclass(frozen=True)
class Wave:
    """Parts loaded concurrently, one thread and transaction each.

    commit_order: indexes into parts. "queued": commits reach the hook lock's queue in
    exactly that order (see the module docstring); "free": after the last statement each
    thread sleeps a seeded delay, increasing along commit_order, then commits (the order
    is then likely, not forced). lockstep: all threads run statement k before any runs
    statement k+1 (a barrier), so every transaction has written before any commits.
    """

    parts: tuple[Part, ...]
    commit_order: tuple[int, ...]
    mode: str = "queued"
    lockstep: bool = True

    def __repr__(self) -> str:
        order = " < ".join(self.parts[i].label for i in self.commit_order)
        return f"{self.mode}{' lockstep' if self.lockstep else ''} [{order}]"


@dataclass
class WaveResult:
    errors: list[str]
    commit_txids: list[str]  # txids in commit_order
    labels: dict[str, str]  # txid -> part label


def lock_waiting(conn: psycopg.Connection, pid: int) -> bool:
    return conn.execute(
        "SELECT cardinality(pg_catalog.pg_blocking_pids(%s)) > 0", (pid,)
    ).fetchone()[0]


def wait_for(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


def run_wave(url: str, wave: Wave, seed: int) -> WaveResult:
    n = len(wave.parts)
    queued = wave.mode == "queued"
    # The threads' statements in lockstep; then all written (+ controller when queued).
    step_barrier = threading.Barrier(n, timeout=WAIT_SECONDS)
    written = threading.Barrier(n + 1 if queued else n, timeout=WAIT_SECONDS)
    turn = [threading.Event() for _ in range(n)]
    pids: dict[int, int] = {}
    txids: dict[int, str] = {}
    errors: list[str] = []
    rank = {index: position for position, index in enumerate(wave.commit_order)}

    def worker(i: int) -> None:
        part = wave.parts[i]
        rng = random.Random(f"{seed}/{i}")

        def pause() -> None:
            if wave.lockstep:
                step_barrier.wait()
            time.sleep(rng.uniform(0, 0.01))

        try:
            with psycopg.connect(url, options=SESSION_OPTIONS) as conn:
                pids[i] = conn.info.backend_pid
                txids[i] = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
                write_part(conn, part, pause)
                written.wait()
                if queued:
                    if not turn[i].wait(WAIT_SECONDS):
                        raise AssertionError("never got its turn to commit")
                else:
                    time.sleep(0.015 * rank[i] + rng.uniform(0, 0.01))
                conn.commit()
        except BaseException as exc:  # reported by the test
            step_barrier.abort()
            written.abort()
            code = getattr(exc, "sqlstate", None)
            errors.append(f"{part.label}: {type(exc).__name__} (SQLSTATE {code}): {exc}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    with psycopg.connect(url, autocommit=True) as controller:
        if queued:
            controller.execute("BEGIN")
            controller.execute(HOOK_LOCK)
        for thread in threads:
            thread.start()
        try:
            if queued:
                written.wait()
                for i in wave.commit_order:
                    turn[i].set()
                    wait_for(
                        f"{wave.parts[i].label}'s commit to queue for the hook lock",
                        lambda i=i: lock_waiting(controller, pids[i]),
                    )
        except threading.BrokenBarrierError:
            pass  # a thread failed: its error is reported
        finally:
            if queued:
                controller.execute("COMMIT")
            for thread in threads:
                thread.join(WAIT_SECONDS * 2)
    assert not any(t.is_alive() for t in threads), "a load thread hung"
    with psycopg.connect(url) as conn:
        ran = [
            r[0]
            for r in conn.execute(
                "SELECT txid::text FROM cmdm.hook_run WHERE txid::text = ANY(%s)"
                " GROUP BY txid ORDER BY min(hook_run_id)",
                (list(txids.values()),),
            ).fetchall()
        ]
    return WaveResult(errors, ran, {txids[i]: wave.parts[i].label for i in txids})


def load_waves(url: str, waves: Sequence[Wave], seed: int) -> list[str]:
    """Run the waves one after another; returns the commit order that happened (labels)."""
    happened = []
    for w, wave in enumerate(waves):
        result = run_wave(url, wave, seed * 100 + w)
        assert result.errors == [], f"wave {w} {wave!r}: {result.errors}"
        order = [result.labels[t] for t in result.commit_txids]
        if wave.mode == "queued":
            assert order == [wave.parts[i].label for i in wave.commit_order], (
                f"wave {w}: the commits did not queue in the order asked"
            )
        assert sorted(order) == sorted(p.label for p in wave.parts), f"wave {w}: {order}"
        happened.append(" < ".join(order))
    return happened


# ---------------------------------------------------------------------------------------
# Scenarios


def months(*indexes: int) -> tuple[Part, ...]:
    return tuple(UNIVERSE[i] for i in indexes)


def seeded_waves(seed: int) -> list[Wave]:
    """Every month once, in random waves of 3–4 months, random commit order, free-running."""
    rng = random.Random(f"hook-concurrency-waves/{seed}")
    order = list(range(len(UNIVERSE)))
    rng.shuffle(order)
    sizes = rng.choice([(4, 4), (3, 3, 2), (3, 4, 1), (4, 3, 1)])
    waves, start = [], 0
    for size in sizes:
        chunk = order[start : start + size]
        start += size
        commit = list(range(size))
        rng.shuffle(commit)
        waves.append(Wave(months(*chunk), tuple(commit), "free", rng.random() < 0.5))
    return waves


FEB_A, FEB_B = halves(UNIVERSE[5])
OCT_A, OCT_B = halves(UNIVERSE[1])
JAN_A, JAN_B = halves(UNIVERSE[4])

SCENARIOS: dict[str, list[Wave]] = {
    # Four months written together, committed newest first (each hook run queued).
    "reverse-month-order": [
        Wave(months(0, 1, 2, 3), (3, 2, 1, 0)),
        Wave(months(4, 5, 6, 7), (3, 2, 1, 0)),
    ],
    # 2025 before 2024: January-April commit before December (their reference month),
    # and inside each wave a later month commits first.
    "later-months-first": [
        Wave(months(4, 5, 6, 7), (2, 0, 3, 1)),
        Wave(months(0, 1, 2, 3), (3, 1, 0, 2)),
    ],
    # Halves of the same month in concurrent transactions, next to other months.
    "same-month-halves": [
        Wave((OCT_A, *months(0), OCT_B), (2, 1, 0)),
        Wave((FEB_A, *months(3), FEB_B, *months(2)), (0, 1, 3, 2)),
        Wave((JAN_B, *months(7, 6), JAN_A), (1, 0, 2, 3)),
    ],
    "seeded-1": seeded_waves(1),
    "seeded-2": seeded_waves(2),
}


def reject_reason(row: tuple) -> str:
    plan, company, line = row[2], row[3], row[4]
    if None in (plan, company, line):
        return "null_key"
    return "unknown_product_line" if line not in KNOWN_LINES else "unknown_company"


def month_end(month: date) -> date:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def contract_keys(rows: Sequence[tuple]) -> set[tuple]:
    return {(r[3], r[2], r[4]) for r in rows if is_contract(r)}


# ---------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def serial(admin_url: str) -> State:
    """The reference: the months loaded in order, one transaction each, hooks on."""
    with new_database(admin_url) as url:
        load_serially(url, UNIVERSE)
        assert failed_runs(url) == []
        return state(url)


def test_the_serial_reference_exercises_the_rules(serial: State) -> None:
    """Guards against a universe too plain to tell a wrong interleaving from a right one."""
    rows = [r for p in UNIVERSE for r in p.facts]
    assert sum(serial["facts"].values()) == len(rows) > 1000
    expected_rejects = Counter(
        (month_end(r[0]).isoformat(), reject_reason(r)) for r in rows if not is_contract(r)
    )
    assert expected_rejects.keys() >= {("2024-11-30", "null_key"), ("2025-02-28", "null_key")}

    def decoded(name: str) -> list[dict]:
        return [json.loads(row) for row in serial[name].elements()]

    assert Counter((r["period"], r["reason"]) for r in decoded("rejects")) == expected_rejects
    versions = decoded("contract versions")
    assert {v["status_year"] for v in versions} == {2024, 2025}
    assert {v["contract_status"] for v in versions} == {"正常", "停缴"}
    assert any(v["is_strategic"] for v in versions)
    business = decoded("business snapshot")
    assert len({r["snapshot_month"] for r in business}) == len(MONTHS)
    for flag in (
        "is_winning_this_year",
        "is_churned_this_year",
        "is_new",
        "is_new_arrival",
        "is_churned",
        "is_strategic",
        "is_existing",
    ):
        assert any(r[flag] for r in business), flag
    # an award seen in a month after the one it was reported in
    awards = decoded("awards")
    later = {
        (a["company_id"], a["产品线代码"])
        for a in awards
        for r in business
        if r["is_winning_this_year"]
        and (r["company_id"], r["product_line_code"]) == (a["company_id"], a["产品线代码"])
        and r["snapshot_month"][:7] > a["上报月份"][:7]
    }
    assert later


def test_the_serial_reference_is_a_fresh_rebuild(admin_url: str, serial: State) -> None:
    """DESIGN §4: all facts loaded with the hooks off, then every month synced in
    ascending order and every month refreshed, gives the serial loads' state."""
    with new_database(admin_url) as url:
        with psycopg.connect(url, options="-c cmdm.post_hooks=off") as conn:
            for part in UNIVERSE:
                write_part(conn, part, lambda: None)
            conn.commit()
            for month in MONTHS:
                conn.execute("SELECT * FROM customer.sync_contract_status(%s)", (month,))
            for month in MONTHS:
                conn.execute("SELECT * FROM customer.refresh_monthly_snapshot(%s)", (month,))
            conn.commit()
        rebuilt = state(url)
    diff = state_diff(serial, rebuilt)
    assert not diff, diff


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_concurrent_loads_end_as_serial_loads(admin_url: str, serial: State, scenario: str) -> None:
    waves = SCENARIOS[scenario]
    with new_database(admin_url) as url:
        happened = load_waves(url, waves, seed=list(SCENARIOS).index(scenario))
        assert failed_runs(url) == []
        concurrent = state(url)
    diff = state_diff(serial, concurrent)
    assert not diff, f"{scenario}: waves {waves}, commits {happened}:\n{diff}"


@pytest.mark.parametrize("first", [0, 1], ids=["first-half-commits-first", "second-half-first"])
def test_same_month_loads_serialize(admin_url: str, serial: State, first: int) -> None:
    """Two transactions loading halves of February at once both commit; the second's sync
    sees the first's facts (it waited for the lock), and the end state is the serial one."""
    feb = UNIVERSE[5]
    parts = (FEB_A, FEB_B)
    with new_database(admin_url) as url:
        load_serially(url, UNIVERSE[:5])
        result = run_wave(url, Wave(parts, (first, 1 - first)), seed=first)
        assert result.errors == []
        with psycopg.connect(url) as conn:
            runs = conn.execute(
                "SELECT txid::text, (counts->>'keys_seen')::int, rejects FROM cmdm.hook_run"
                " WHERE step = 'contract_sync' AND period = %s AND trigger_kind = 'trigger'"
                " AND outcome = 'succeeded' ORDER BY hook_run_id",
                (month_end(feb.month),),
            ).fetchall()
        load_serially(url, UNIVERSE[6:])
        assert failed_runs(url) == []
        concurrent = state(url)
    one, both = parts[first], feb

    def seen(part: Part) -> tuple[int, int]:
        return len(contract_keys(part.facts)), sum(not is_contract(r) for r in part.facts)

    assert len(contract_keys(one.facts)) < len(contract_keys(both.facts))
    assert [(result.labels[t], k, r) for t, k, r in runs] == [
        (one.label, *seen(one)),
        (parts[1 - first].label, *seen(both)),
    ]
    diff = state_diff(serial, concurrent)
    assert not diff, diff


def test_an_events_only_load_refreshes_a_month_committed_concurrently(admin_url: str) -> None:
    """An award reported in March (its own transaction, as a 当年中标 ETL job) and April's
    facts commit concurrently while another hook run holds the hook lock; April commits
    first. April's snapshot must see the award, as after serial loads."""
    row = ("业务", "P000001A", "C000001", "PL201", "P000001A01", 100, 100, 0, "B01", "北京分公司")
    march = Part("2024-03", date(2024, 3, 1), [(date(2024, 3, 31), *row)], [], [])
    april = Part("2024-04", date(2024, 4, 1), [(date(2024, 4, 30), *row)], [], [])
    award = Part(
        "award", date(2024, 3, 1), [], [("C000001", "PL201", "P000001A", date(2024, 3, 10))], []
    )
    with new_database(admin_url) as url:
        load_serially(url, [march, april, award])
        reference = state(url)
    with new_database(admin_url) as url:
        load_serially(url, [march])
        result = run_wave(url, Wave((april, award), (0, 1)), seed=0)
        assert result.errors == []
        concurrent = state(url)
        with psycopg.connect(url) as conn:
            flags = conn.execute(
                "SELECT snapshot_month, is_winning_this_year"
                " FROM customer.fct_customer_business_monthly_status ORDER BY 1"
            ).fetchall()
    assert flags == [(date(2024, 3, 31), True), (date(2024, 4, 30), True)]
    diff = state_diff(reference, concurrent)
    assert not diff, diff
