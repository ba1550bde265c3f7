"""cmdm benchmark: generate the standard history (20,000 companies × 36 months by default),
load it month by month into a fresh database of the embedded cluster (or --database-url's
server), and print per-month figures next to their floors.

Per reported month: the load (COPY, one transaction per month), the contract sync of that
month (customer.sync_contract_status) next to its floor, and the snapshot refresh of the
months the sync names (customer.refresh_monthly_snapshot; appending a month: that month)
next to its floor; then the cost of restating month 6 after all months are loaded (its
sync, then the refresh of every month that depends on it). The floors:

    sync floor     INSERT INTO <unlogged> SELECT company_id, 计划代码, 产品线代码, SUM(期末资产规模)
                   … WHERE the month … GROUP BY 1, 2, 3
    snapshot floor INSERT INTO <logged copy of the product-line snapshot table, same indexes>
                   SELECT company_id, 产品线代码, SUM(…), COUNT(DISTINCT 计划代码) … GROUP BY 1, 2
                   plus the same per plan into a copy of the plan snapshot table (GROUP BY 1, 2, 3):
                   the refresh writes both tables

Run: make bench  (or .venv/bin/python bench/run.py --companies 2000 --months 12)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import dataclass
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
    load_s: float
    sync_floor_s: float
    snapshot_floor_s: float
    sync_s: float
    refresh_s: float
    refreshed: int  # months refreshed after the sync
    snapshot_rows: int  # rows of the month in both snapshot tables (the population)


@dataclass
class Restatement:
    sync_s: float
    refresh_s: float
    refreshed: int
    snapshot_rows: int


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


def sync_and_refresh(conn: psycopg.Connection, params: dict) -> tuple[float, float, int, int]:
    """The post-ETL work for one changed month, as the hook does it: the sync, then the
    refresh of every month the sync names. Each in its own (committed) transaction."""
    started = time.perf_counter()
    with conn.transaction():
        months = conn.execute(
            "SELECT snapshot_months FROM customer.sync_contract_status(%(end)s)", params
        ).fetchone()[0]
    sync_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = 0
    with conn.transaction():
        for month in months:
            result = conn.execute(
                "SELECT business_rows + plan_rows FROM customer.refresh_monthly_snapshot(%s)",
                (month,),
            ).fetchone()[0]
            rows = result if month == params["end"] else rows
    return sync_s, time.perf_counter() - started, len(months), rows


def run(
    spec: DemoSpec, server_url: str, keep: bool
) -> tuple[list[MonthFigures], Restatement | None]:
    name = f"cmdm_bench_{uuid.uuid4().hex[:8]}"
    with connect(with_database(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    figures = []
    try:
        migrate.upgrade(url)
        ensure_functions(url)
        restate_s = None
        # autocommit: each `conn.transaction()` below is a real transaction that commits, as
        # an ETL month load does (not a savepoint of one session-long transaction).
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
            for index, demo_month in enumerate(iter_months(spec), start=1):
                started = time.perf_counter()
                with conn.transaction():
                    facts = copy_month(conn, demo_month)
                load_s = time.perf_counter() - started
                conn.execute('ANALYZE business."规模明细"') if index in (1, 2) else None
                first = demo_month.month
                params = month_params(first)
                sync_s, refresh_s, refreshed, snapshot_rows = sync_and_refresh(conn, params)
                figures.append(
                    MonthFigures(
                        index,
                        first,
                        facts,
                        load_s,
                        timed(conn, SYNC_FLOOR, params),
                        timed(conn, SNAPSHOT_FLOOR, params)
                        + timed(conn, PLAN_SNAPSHOT_FLOOR, params),
                        sync_s,
                        refresh_s,
                        refreshed,
                        snapshot_rows,
                    )
                )
                print(f"\rloaded {label(first)} ({index}/{spec.months})", end="", file=sys.stderr)
            if len(figures) >= RESTATE_MONTH:
                params = month_params(figures[RESTATE_MONTH - 1].month)
                with conn.transaction():
                    conn.execute(RESTATE, params)
                restate_s = Restatement(*sync_and_refresh(conn, params))
        print(file=sys.stderr)
    finally:
        if not keep:
            with connect(with_database(server_url, "postgres"), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return figures, restate_s


def report(figures: list[MonthFigures], spec: DemoSpec, restate: Restatement | None) -> None:
    print(f"\ncmdm bench: {spec.companies:,} companies × {spec.months} months (seed {spec.seed})")
    columns = [("month", 5), ("period", 8), ("facts", 8), ("load s", 7)]
    columns += [("sync s", 7), ("floor s", 8), ("ratio", 6), ("µs/row", 7)]
    columns += [("snapshot s", 10), ("floor s", 8), ("ratio", 6), ("µs/row", 7)]
    columns += [("out rows", 8), ("µs/out", 7)]
    header = " ".join(f"{name:>{width}}" for name, width in columns)
    print(" " * 31 + "contract sync".center(31) + " " + "snapshot refresh".center(34))
    print(header)
    print("-" * len(header))
    for f in figures:
        if f.index in REPORTED or f.index == len(figures):
            print(
                f"{f.index:>5} {label(f.month):>8} {f.facts:>8,} {f.load_s:>7.3f} "
                f"{f.sync_s:>7.3f} {f.sync_floor_s:>8.3f} {f.sync_s / f.sync_floor_s:>6.2f} "
                f"{1e6 * f.sync_s / f.facts:>7.2f} "
                f"{f.refresh_s:>10.3f} {f.snapshot_floor_s:>8.3f} "
                f"{f.refresh_s / f.snapshot_floor_s:>6.2f} {1e6 * f.refresh_s / f.facts:>7.2f} "
                f"{f.snapshot_rows:>8,} {1e6 * f.refresh_s / max(f.snapshot_rows, 1):>7.2f}"
            )
    first, last = figures[0], figures[-1]
    for what, attr in (("sync", "sync_s"), ("snapshot refresh", "refresh_s")):
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
        figures, restate = run(spec, resolve_database_url(args.database_url), args.keep)
    except CmdmError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    report(figures, spec, restate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
