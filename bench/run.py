"""cmdm benchmark: generate the standard history (20,000 companies × 36 months by default),
load it month by month into a fresh database of the embedded cluster (or --database-url's
server) as an ETL does, and print per-month figures next to their floors.

Every month is one transaction: COPY of the month's facts (plus its awards and losses),
then COMMIT, at which the post-ETL hook runs (the trigger's deferred run: the contract sync
of the month, then the snapshot refresh of every month depending on it). Per reported
month: the load (COPY), the whole hook (the commit), and each step's own time as logged in
cmdm.hook_run, each next to its floor:

    sync floor     INSERT INTO <unlogged> SELECT company_id, 计划代码, 产品线代码, SUM(期末资产规模)
                   … WHERE the month … GROUP BY 1, 2, 3
    snapshot floor INSERT INTO <logged copy of the product-line snapshot table, same indexes>
                   SELECT company_id, 产品线代码, SUM(…), COUNT(DISTINCT 计划代码) … GROUP BY 1, 2
                   plus the same per plan into a copy of the plan snapshot table (GROUP BY 1, 2, 3):
                   the refresh writes both tables

Then, after all months: restating month 6 (one DELETE … RETURNING / INSERT statement,
committed: the hook syncs it and refreshes its dependents); the last month appended again
with the trigger on versus `SET LOCAL cmdm.post_hooks = off` + CALL
customer.run_post_etl_hooks (load-only time, load+hook time, the hook's share); the last
month loaded in 50 COPY statements in one transaction (the hook runs once); and the peak
resident memory of the server process that ran it all (VmHWM, when the server is local).

Run: make bench  (or .venv/bin/python bench/run.py --companies 2000 --months 12)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urlsplit, urlunsplit

import psycopg

from cmdm_admin import migrate
from cmdm_admin.db import connect, resolve_database_url
from cmdm_admin.demo import DemoSpec, copy_month, iter_months, load_customers
from cmdm_admin.errors import CmdmError
from cmdm_admin.periods import label

REPORTED = (1, 12, 24, 36)

SYNC_FLOOR = """
INSERT INTO bench_sync_floor
SELECT company_id, "计划代码", "产品线代码", sum("期末资产规模")
  FROM business."规模明细"
 WHERE "月度" >= %(start)s AND "月度" < %(next)s
 GROUP BY 1, 2, 3
"""
SNAPSHOT_FLOOR = """
INSERT INTO bench_snapshot_floor (snapshot_month, company_id, product_line_code,
                                  product_line_name, aum_balance, plan_count)
SELECT %(end)s, company_id, "产品线代码", '', sum("期末资产规模"), count(DISTINCT "计划代码")
  FROM business."规模明细"
 WHERE "月度" >= %(start)s AND "月度" < %(next)s
   AND company_id IS NOT NULL AND "产品线代码" IS NOT NULL
 GROUP BY 1, 2, 3
"""
PLAN_SNAPSHOT_FLOOR = """
INSERT INTO bench_plan_snapshot_floor (snapshot_month, company_id, plan_code, product_line_code,
                                       product_line_name, aum_balance)
SELECT %(end)s, company_id, "计划代码", "产品线代码", '', sum("期末资产规模")
  FROM business."规模明细"
 WHERE "月度" >= %(start)s AND "月度" < %(next)s
   AND company_id IS NOT NULL AND "计划代码" IS NOT NULL AND "产品线代码" IS NOT NULL
 GROUP BY 1, 2, 3, 4
"""


@dataclass
class MonthFigures:
    index: int
    month: date
    facts: int
    load_s: float  # the COPY statements
    hook_s: float  # the COMMIT: the post-ETL hook's run
    sync_floor_s: float
    snapshot_floor_s: float
    sync_s: float  # the contract_sync step (cmdm.hook_run.duration)
    refresh_s: float  # the snapshot_refresh steps
    refreshed: int  # months refreshed after the sync
    snapshot_rows: int  # rows of the month in both snapshot tables (the population)


@dataclass
class Restatement:
    sync_s: float
    refresh_s: float
    refreshed: int
    snapshot_rows: int


@dataclass
class HookModes:
    """The last month appended again, three ways, from the same state."""

    month: date
    facts: int
    trigger_load_s: float
    trigger_commit_s: float
    call_load_s: float
    call_s: float
    call_commit_s: float
    batches: int
    batched_load_s: float
    batched_commit_s: float
    batched_runs: dict[str, int]  # step -> hook_run rows of the 50-statement load
    peak_kib: int | None  # VmHWM of the server process


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


RESTATE_MONTH = 6
RESTATE = """
WITH old AS (
    DELETE FROM business."规模明细" WHERE "月度" >= %(start)s AND "月度" < %(next)s
    RETURNING *
)
INSERT INTO business."规模明细" ("月度", "业务类型", "计划代码", company_id, "产品线代码",
                                "组合代码", "期末资产规模", "期初资产规模", "供款", "机构代码",
                                "机构名称")
SELECT "月度", "业务类型", "计划代码", company_id, "产品线代码", "组合代码",
       round("期末资产规模" * CASE WHEN hashtext(company_id) %% 10 = 0 THEN 0 ELSE 1.1 END, 2),
       "期初资产规模", "供款", "机构代码", "机构名称"
  FROM old
"""


def ensure_functions(url: str) -> None:
    """The generated functions: from the head revision when a rules revision is committed,
    else rendered from rules/ and applied directly."""
    from cmdm_admin.loader import load_rules
    from cmdm_admin.project import project_dir
    from cmdm_admin.render import render_rules

    with connect(url, autocommit=True) as conn:
        present = conn.execute(
            "SELECT to_regprocedure('customer.sync_contract_status(date)') IS NOT NULL"
        ).fetchone()[0]
        if not present:
            conn.execute(render_rules(load_rules(project_dir() / "rules")).sql)


def month_params(first: date) -> dict:
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return {"start": first, "next": nxt, "end": date.fromordinal(nxt.toordinal() - 1)}


def timed(conn: psycopg.Connection, statement: str, params: dict) -> float:
    started = time.perf_counter()
    with conn.transaction():
        conn.execute(statement, params)
    return time.perf_counter() - started


HOOK_STEPS = """
SELECT coalesce(sum(extract(epoch FROM duration)) FILTER (WHERE step = 'contract_sync'), 0),
       coalesce(sum(extract(epoch FROM duration)) FILTER (WHERE step = 'snapshot_refresh'), 0),
       count(*) FILTER (WHERE step = 'snapshot_refresh'),
       coalesce(max(((counts->>'business_rows')::bigint + (counts->>'plan_rows')::bigint))
                FILTER (WHERE step = 'snapshot_refresh' AND period = %(end)s), 0)
  FROM cmdm.hook_run
 WHERE txid = %(txid)s::xid8
"""


def load_month(conn: psycopg.Connection, demo_month, batches: int = 1) -> tuple[float, float, str]:
    """One ETL transaction: COPY the month (in `batches` COPY statements), then COMMIT,
    where the hook runs. Returns (load s, commit s, the transaction id)."""
    started = time.perf_counter()
    conn.execute("BEGIN")
    txid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
    if batches == 1:
        copy_month(conn, demo_month)
    else:
        size = -(-len(demo_month.facts) // batches)
        for start in range(0, len(demo_month.facts), size):
            chunk = replace(demo_month, facts=demo_month.facts[start : start + size])
            copy_month(conn, chunk if start == 0 else replace(chunk, awards=[], losses=[]))
    loaded = time.perf_counter()
    conn.execute("COMMIT")
    return loaded - started, time.perf_counter() - loaded, txid


def hook_steps(conn: psycopg.Connection, txid: str, params: dict) -> tuple[float, float, int, int]:
    """(sync s, refresh s, months refreshed, snapshot rows of the month) of a transaction."""
    row = conn.execute(HOOK_STEPS, {**params, "txid": txid}).fetchone()
    return float(row[0]), float(row[1]), int(row[2]), int(row[3])


def delete_and_sync(conn: psycopg.Connection, params: dict) -> None:
    """Remove the month (the hook removes its history and snapshots at commit)."""
    with conn.transaction():
        conn.execute(
            'DELETE FROM business."规模明细" WHERE "月度" >= %(start)s AND "月度" < %(next)s',
            params,
        )


def peak_memory_kib(conn: psycopg.Connection, server_url: str) -> int | None:
    """VmHWM (peak resident set) of this connection's server process, when it runs here."""
    host = urlsplit(server_url).hostname or "localhost"
    if host not in ("localhost", "127.0.0.1", "::1") and not host.startswith("/"):
        return None
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def hook_modes(conn: psycopg.Connection, demo_month, server_url: str) -> HookModes:
    """The last month appended again from the same state, three ways (see the docstring)."""
    params = month_params(demo_month.month)
    delete_and_sync(conn, params)
    trigger_load_s, trigger_commit_s, _ = load_month(conn, demo_month)

    delete_and_sync(conn, params)
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute("SET LOCAL cmdm.post_hooks = off")
    copy_month(conn, demo_month)
    loaded = time.perf_counter()
    conn.execute("CALL customer.run_post_etl_hooks('annuity_performance', %(end)s)", params)
    called = time.perf_counter()
    conn.execute("COMMIT")
    committed = time.perf_counter()

    delete_and_sync(conn, params)
    batches = 50
    batched_load_s, batched_commit_s, txid = load_month(conn, demo_month, batches)
    runs = dict(
        conn.execute(
            "SELECT step, count(*) FROM cmdm.hook_run WHERE txid = %s::xid8 AND period = %s "
            "GROUP BY step",
            (txid, params["end"]),
        ).fetchall()
    )
    return HookModes(
        demo_month.month,
        len(demo_month.facts),
        trigger_load_s,
        trigger_commit_s,
        loaded - started,
        called - loaded,
        committed - called,
        batches,
        batched_load_s,
        batched_commit_s,
        runs,
        peak_memory_kib(conn, server_url),
    )


def run(
    spec: DemoSpec, server_url: str, keep: bool
) -> tuple[list[MonthFigures], Restatement | None, HookModes | None]:
    name = f"cmdm_bench_{uuid.uuid4().hex[:8]}"
    with connect(with_database(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    figures = []
    modes = None
    try:
        migrate.upgrade(url)
        ensure_functions(url)
        restate_s = None
        # autocommit: each transaction below is a real one that commits, as an ETL month
        # load does (not a savepoint of one session-long transaction).
        with connect(url, autocommit=True) as conn:
            if os.environ.get("CMDM_BENCH_EXPLAIN"):
                # plans of slow statements inside the functions, to the server log
                conn.execute("LOAD 'auto_explain'")
                conn.execute("SET auto_explain.log_min_duration = '3s'")
                conn.execute("SET auto_explain.log_nested_statements = on")
            conn.execute(
                "CREATE UNLOGGED TABLE bench_sync_floor "
                "(company_id text, plan_code text, product_line_code text, aum numeric)"
            )
            # A logged copy of the snapshot table with the same indexes (no FKs: the
            # floor measures aggregation and index maintenance, not reference checks).
            conn.execute(
                "CREATE TABLE bench_snapshot_floor (LIKE "
                "customer.fct_customer_business_monthly_status INCLUDING DEFAULTS "
                "INCLUDING INDEXES)"
            )
            conn.execute(
                "CREATE TABLE bench_plan_snapshot_floor (LIKE "
                "customer.fct_customer_plan_monthly_status INCLUDING DEFAULTS "
                "INCLUDING INDEXES)"
            )
            with conn.transaction():
                load_customers(conn, spec)
            last_month = None
            for index, demo_month in enumerate(iter_months(spec), start=1):
                last_month = demo_month
                load_s, hook_s, txid = load_month(conn, demo_month)
                conn.execute('ANALYZE business."规模明细"') if index in (1, 2) else None
                params = month_params(demo_month.month)
                sync_s, refresh_s, refreshed, snapshot_rows = hook_steps(conn, txid, params)
                figures.append(
                    MonthFigures(
                        index,
                        demo_month.month,
                        len(demo_month.facts),
                        load_s,
                        hook_s,
                        timed(conn, SYNC_FLOOR, params),
                        timed(conn, SNAPSHOT_FLOOR, params)
                        + timed(conn, PLAN_SNAPSHOT_FLOOR, params),
                        sync_s,
                        refresh_s,
                        refreshed,
                        snapshot_rows,
                    )
                )
                print(
                    f"\rloaded {label(demo_month.month)} ({index}/{spec.months})",
                    end="",
                    file=sys.stderr,
                )
            if len(figures) >= RESTATE_MONTH:
                params = month_params(figures[RESTATE_MONTH - 1].month)
                conn.execute("BEGIN")
                txid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
                conn.execute(RESTATE, params)
                conn.execute("COMMIT")
                restate_s = Restatement(*hook_steps(conn, txid, params))
            if last_month is not None:
                print("\rthe last month again: trigger, CALL, 50 batches", file=sys.stderr)
                modes = hook_modes(conn, last_month, server_url)
        print(file=sys.stderr)
    finally:
        if not keep:
            with connect(with_database(server_url, "postgres"), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return figures, restate_s, modes


def report(
    figures: list[MonthFigures],
    spec: DemoSpec,
    restate: Restatement | None,
    modes: HookModes | None,
) -> None:
    print(f"\ncmdm bench: {spec.companies:,} companies × {spec.months} months (seed {spec.seed})")
    columns = [("month", 5), ("period", 8), ("facts", 8), ("load s", 7), ("hook s", 7)]
    columns += [("sync s", 7), ("floor s", 8), ("ratio", 6), ("µs/row", 7)]
    columns += [("snapshot s", 10), ("floor s", 8), ("ratio", 6), ("µs/row", 7)]
    columns += [("out rows", 8), ("µs/out", 7)]
    header = " ".join(f"{name:>{width}}" for name, width in columns)
    print(" " * 39 + "contract sync".center(31) + " " + "snapshot refresh".center(34))
    print(header)
    print("-" * len(header))
    for f in figures:
        if f.index in REPORTED or f.index == len(figures):
            print(
                f"{f.index:>5} {label(f.month):>8} {f.facts:>8,} {f.load_s:>7.3f} {f.hook_s:>7.3f} "
                f"{f.sync_s:>7.3f} {f.sync_floor_s:>8.3f} {f.sync_s / f.sync_floor_s:>6.2f} "
                f"{1e6 * f.sync_s / f.facts:>7.2f} "
                f"{f.refresh_s:>10.3f} {f.snapshot_floor_s:>8.3f} "
                f"{f.refresh_s / f.snapshot_floor_s:>6.2f} {1e6 * f.refresh_s / f.facts:>7.2f} "
                f"{f.snapshot_rows:>8,} {1e6 * f.refresh_s / max(f.snapshot_rows, 1):>7.2f}"
            )
    print(
        "(load s: the month's COPY; hook s: its COMMIT, where the post-ETL hook runs; sync s and "
        "snapshot s: the hook's steps as logged in cmdm.hook_run)"
    )
    first, last = figures[0], figures[-1]
    for what, attr in (("sync", "sync_s"), ("snapshot refresh", "refresh_s"), ("hook", "hook_s")):
        growth = (getattr(last, attr) / last.facts) / (getattr(first, attr) / first.facts)
        print(
            f"\n{what} time per fact row, month {last.index} vs month 1: {growth:.2f}x "
            "(target <= 1.25x)",
            end="",
        )
    print(
        "\n(the snapshot population is every key with a version covering the month: under "
        "on_missing: suspend it keeps every key ever seen, so it grows faster than the facts; "
        "µs/out is the refresh time per snapshot row written)"
    )
    if restate is not None:
        tail = figures[-6:]
        appended = sorted(f.sync_s for f in tail)[len(tail) // 2]
        appended_refresh = sorted(f.refresh_s for f in tail)[len(tail) // 2]
        print(
            f"restating month {RESTATE_MONTH} after all {len(figures)}: sync {restate.sync_s:.3f} s"
            f" = {restate.sync_s / appended:.2f}x an appended month ({appended:.3f} s, median of "
            "the last 6) (target <= 2x)"
        )
        print(
            f"  then {restate.refreshed} snapshot month(s) refreshed in {restate.refresh_s:.3f} s"
            f" ({restate.refresh_s / max(restate.refreshed, 1):.3f} s each; an appended month: "
            f"{appended_refresh:.3f} s)"
        )
    if modes is not None:
        m = modes
        trigger_total = m.trigger_load_s + m.trigger_commit_s
        call_total = m.call_load_s + m.call_s + m.call_commit_s
        print(f"\nthe last month ({label(m.month)}, {m.facts:,} facts) appended again:")
        print(
            f"  trigger on:              load {m.trigger_load_s:.3f} s, load+hook "
            f"{trigger_total:.3f} s, hook share {m.trigger_commit_s / trigger_total:.0%}"
        )
        print(
            f"  post_hooks off + CALL:   load {m.call_load_s:.3f} s, CALL {m.call_s:.3f} s, "
            f"load+hook {call_total:.3f} s, hook share {m.call_s / call_total:.0%}"
        )
        runs = ", ".join(f"{step} {n}" for step, n in sorted(m.batched_runs.items()))
        print(
            f"  {m.batches} COPY statements, one transaction: load {m.batched_load_s:.3f} s, "
            f"hook {m.batched_commit_s:.3f} s; hook runs for the month: {runs or 'none'}"
        )
        if m.peak_kib is not None:
            print(
                f"peak resident memory of the server process (VmHWM): {m.peak_kib / 1024:.0f} MiB"
            )
        else:
            print("peak resident memory of the server process: n/a (the server is not local)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", help="server to use (a new database is created on it)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    try:
        spec = DemoSpec(companies=args.companies, months=args.months, seed=args.seed)
        figures, restate, modes = run(spec, resolve_database_url(args.database_url), args.keep)
    except CmdmError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    report(figures, spec, restate, modes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
