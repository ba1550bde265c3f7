"""cmdm benchmark: each month's post-ETL hook against its same-work floor (DESIGN §10).

Generates the standard history (20,000 companies × 36 months by default), loads it month by
month into a fresh database of the embedded cluster (or --database-url's server) as an ETL
does — one transaction per month, COPY then COMMIT, at which the hook runs — and measures,
for every month:

    hook      the COMMIT of the month's transaction (the contract sync, then the snapshot
              refresh of every month depending on it), with each step's time and, when the
              deployed functions log them, its sub-steps (cmdm.hook_run: duration, counts.ms)
    floor     the same work done plainly, in one committed transaction: the month's facts
              read and aggregated once into a temp table, plus exactly the rows the hook
              wrote to the contract table and the two snapshot tables (inserted, updated,
              deleted) applied to mirrors of them in schema `bench`, created `LIKE` ours
              with the same indexes and PRIMARY KEY / UNIQUE / EXCLUDE / CHECK constraints
              (no foreign keys, no triggers). What the hook writes is found, untimed, by
              diffing each table against its mirror after the hook.

Then, after all months: restating month 6 (one DELETE … RETURNING / INSERT statement; its
hook and floor measured the same way); a check that the mirrors equal our tables; the last
month appended again with the trigger on versus `SET LOCAL cmdm.post_hooks = off` + CALL
customer.run_post_etl_hooks, and in 50 COPY statements; and the peak resident memory of the
server process (VmHWM, when the server is local). The report prints every month, then the
figures next to their targets; --json writes all of it.

Run: make bench  (or .venv/bin/python bench/run.py --companies 2000 --months 14)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from cmdm_admin import migrate
from cmdm_admin.db import connect, resolve_database_url
from cmdm_admin.demo import DemoSpec, copy_month, iter_months, load_customers
from cmdm_admin.errors import CmdmError
from cmdm_admin.periods import label

# Targets (DESIGN §10 and the issues): printed next to their figures, never asserted.
TARGET_MEDIAN_RATIO = 1.5  # hook / floor, median over the months
TARGET_MAX_RATIO = 2.0  # hook / floor, in every month
TARGET_GROWTH = 1.25  # hook time per fact row, the last 3 months vs the first 3
TARGET_RESTATE = 2.0  # restating month 6 vs an appended month
TARGET_LAST_HOOK_S = 1.25  # month 36's hook at the standard scale
STANDARD_SCALE = (20_000, 36)

RESTATE_MONTH = 6

# Sub-step timings the functions log in cmdm.hook_run.counts->'ms', in execution order.
SYNC_SUBSTEPS = ("scope", "decide", "states", "history", "writes", "dependents")
REFRESH_SUBSTEPS = ("compute", "writes")


@dataclass(frozen=True)
class Mirror:
    """One of our output tables and its floor copy bench.<short>."""

    short: str
    source: tuple[str, str]
    month_column: str | None  # snapshot tables: the diff is restricted to refreshed months
    columns: tuple[str, ...] = ()
    key: tuple[str, ...] = ()  # the source's primary key

    @property
    def name(self) -> tuple[str, str]:
        return ("bench", self.short)

    def stage(self, kind: str) -> sql.Identifier:
        """Temp table holding the rows the hook `kind` (deleted/updated/inserted)."""
        return sql.Identifier(f"bench_{self.short}_{kind}")


MIRRORED = (
    Mirror("contract", ("customer", "customer_plan_contract"), None),
    Mirror(
        "business_snapshot", ("customer", "fct_customer_business_monthly_status"), "snapshot_month"
    ),
    Mirror("plan_snapshot", ("customer", "fct_customer_plan_monthly_status"), "snapshot_month"),
)


@dataclass
class TableWrites:
    """Rows the hook changed in one table, as found by the diff against its mirror."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.deleted


@dataclass
class Floor:
    """The same-work floor of one hook run: seconds of each statement of its transaction."""

    aggregate_s: float  # the month's facts read and aggregated once
    tables_s: dict[str, float]  # mirror -> applying the hook's writes to it
    commit_s: float
    total_s: float  # BEGIN to COMMIT


@dataclass
class HookRun:
    """What cmdm.hook_run logged for one transaction."""

    sync_s: float
    refresh_s: float
    refreshed: list[date]  # snapshot months the refresh step ran for
    sync_ms: dict[str, float]  # counts.ms of the contract_sync row(s)
    refresh_ms: dict[str, float]  # counts.ms summed over the snapshot_refresh rows
    counts: dict[str, dict[str, int]]  # step -> the numeric counts, summed
    population: int  # snapshot rows of the transaction's own month, both tables


@dataclass
class MonthFigures:
    index: int
    month: date  # the 1st
    facts: int
    load_s: float  # the statements before COMMIT (COPY, or the restatement)
    hook_s: float  # the COMMIT: the post-ETL hook's run
    floor: Floor
    writes: dict[str, TableWrites]  # mirror -> rows the hook changed
    run: HookRun

    @property
    def january(self) -> bool:
        return self.month.month == 1

    @property
    def ratio(self) -> float:
        return self.hook_s / self.floor.total_s

    @property
    def versions(self) -> TableWrites:
        return self.writes["contract"]

    @property
    def snapshot_rows(self) -> TableWrites:
        parts = [w for short, w in self.writes.items() if short != "contract"]
        return TableWrites(*(sum(getattr(w, f) for w in parts) for f in TABLE_WRITE_FIELDS))


TABLE_WRITE_FIELDS = ("inserted", "updated", "deleted")


@dataclass
class MirrorCheck:
    """A mirror against its table after the restatement (untimed)."""

    table: str
    initial_rows: int  # rows when the mirror was created (copied into it)
    rows: int
    mirror_rows: int
    differing_rows: int  # rows of either side not in the other (EXCEPT ALL)

    @property
    def equal(self) -> bool:
        return self.rows == self.mirror_rows and self.differing_rows == 0


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


@dataclass
class BenchRun:
    spec: DemoSpec
    database: str  # cmdm_bench_<hex>, dropped unless --keep
    server: dict[str, str]
    months: list[MonthFigures] = field(default_factory=list)
    restatement: MonthFigures | None = None
    mirrors: list[MirrorCheck] = field(default_factory=list)
    modes: HookModes | None = None
    peak_kib: int | None = None


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


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

# The floor's read: the month's facts aggregated once per contract key, kept (not streamed
# away) so that the aggregate is really computed.
AGGREGATE = """
CREATE TEMP TABLE bench_month_facts ON COMMIT DROP AS
SELECT company_id, "计划代码", "产品线代码", sum("期末资产规模") AS aum
  FROM business."规模明细"
 WHERE "月度" >= %(start)s AND "月度" < %(next)s
 GROUP BY 1, 2, 3
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


def server_settings(conn: psycopg.Connection) -> dict[str, str]:
    names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "work_mem")
    return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}


# --- the mirrors -------------------------------------------------------------------------


def _ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def _columns(names: Iterable[str], alias: str | None = None) -> sql.Composed:
    return sql.SQL(", ").join(_ident(alias, c) if alias else _ident(c) for c in names)


def _same_key(mirror: Mirror, left: str, right: str) -> sql.Composed:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(_ident(left, k), _ident(right, k)) for k in mirror.key
    )


def _in_refreshed_months(mirror: Mirror, alias: str) -> sql.Composable:
    if mirror.month_column is None:
        return sql.SQL("true")
    return sql.SQL("{} = ANY(%(months)s)").format(_ident(alias, mirror.month_column))


def table_columns(conn: psycopg.Connection, table: tuple[str, str]) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        (_regclass(table),),
    ).fetchall()
    return tuple(r[0] for r in rows)


def primary_key(conn: psycopg.Connection, table: tuple[str, str]) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.ord",
        (_regclass(table),),
    ).fetchall()
    return tuple(r[0] for r in rows)


def _regclass(table: tuple[str, str]) -> str:
    """The table's name as text for a ::regclass cast, each part quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in table)


CONSTRAINTS_AND_INDEXES = """
SELECT (SELECT count(*) FROM pg_index WHERE indrelid = %(t)s::regclass),
       (SELECT string_agg(contype::text, '' ORDER BY contype) FROM pg_constraint
         WHERE conrelid = %(t)s::regclass AND contype IN ('p', 'u', 'x', 'c'))
"""


def create_mirrors(conn: psycopg.Connection) -> list[Mirror]:
    """bench.<short> for each of our output tables, created from the table as it is in this
    database (so the floor follows any change to our indexes), holding its current rows."""
    conn.execute("CREATE SCHEMA bench")
    mirrors = []
    for mirror in MIRRORED:
        source, name = _ident(*mirror.source), _ident(*mirror.name)
        # INCLUDING INDEXES copies PRIMARY KEY, UNIQUE and EXCLUDE constraints with every
        # other index; LIKE never copies foreign keys or triggers, nor the identity (the
        # floor inserts the hook's own ids).
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING INDEXES "
                "INCLUDING CONSTRAINTS)"
            ).format(name, source)
        )
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
            (_regclass(mirror.source),),
        ).fetchone()[0]
        if options:  # e.g. a fillfactor: the same page layout as ours
            conn.execute(
                sql.SQL("ALTER TABLE {} SET ({})").format(
                    name, sql.SQL(", ").join(sql.SQL(o) for o in options)
                )
            )
        mirror = replace(
            mirror, columns=table_columns(conn, mirror.source), key=primary_key(conn, mirror.source)
        )
        assert_same_structure(conn, mirror)
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                name, _columns(mirror.columns), _columns(mirror.columns), source
            )
        )
        create_stages(conn, mirror)
        mirrors.append(mirror)
    return mirrors


def assert_same_structure(conn: psycopg.Connection, mirror: Mirror) -> None:
    """The mirror must carry the same indexes and PK/UNIQUE/EXCLUDE/CHECK constraints, or the
    floor would be cheaper than the work it stands for."""
    if not mirror.key:
        raise CmdmError(f"{'.'.join(mirror.source)} has no primary key: the diff needs one")
    ours = conn.execute(CONSTRAINTS_AND_INDEXES, {"t": _regclass(mirror.source)})
    theirs = conn.execute(CONSTRAINTS_AND_INDEXES, {"t": _regclass(mirror.name)})
    ours, theirs = ours.fetchone(), theirs.fetchone()
    if ours != theirs:
        raise CmdmError(
            f"bench.{mirror.short} differs from {'.'.join(mirror.source)} "
            f"(indexes, constraint types): {theirs} vs {ours}"
        )


def create_stages(conn: psycopg.Connection, mirror: Mirror) -> None:
    """Temp tables (no WAL, no indexes) for the rows the hook deleted, updated, inserted."""
    name = _ident(*mirror.name)
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
            mirror.stage("deleted"), _columns(mirror.key), name
        )
    )
    for kind in ("updated", "inserted"):
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {})").format(mirror.stage(kind), name))


def stage_writes(conn: psycopg.Connection, mirror: Mirror, months: list[date]) -> TableWrites:
    """Untimed: what the hook changed in the table since the mirror last equalled it — rows
    gone (by key), rows whose any column differs, rows new — staged for the floor. Snapshot
    tables are compared only in the months the hook refreshed."""
    source, name = _ident(*mirror.source), _ident(*mirror.name)
    deleted, updated, inserted = (mirror.stage(k) for k in ("deleted", "updated", "inserted"))
    conn.execute(sql.SQL("TRUNCATE {}, {}, {}").format(deleted, updated, inserted))
    if mirror.month_column is not None and not months:
        return TableWrites()
    params = {"months": months}
    found = TableWrites()
    found.deleted = conn.execute(
        sql.SQL(
            "INSERT INTO {stage} SELECT {key} FROM {mirror} m WHERE {months} "
            "AND NOT EXISTS (SELECT FROM {source} r WHERE {same})"
        ).format(
            stage=deleted,
            key=_columns(mirror.key, "m"),
            mirror=name,
            months=_in_refreshed_months(mirror, "m"),
            source=source,
            same=_same_key(mirror, "r", "m"),
        ),
        params,
    ).rowcount
    found.updated = conn.execute(
        sql.SQL(
            "INSERT INTO {stage} SELECT {r_cols} FROM {source} r JOIN {mirror} m ON {same} "
            "WHERE {months} AND ROW({r_cols}) IS DISTINCT FROM ROW({m_cols})"
        ).format(
            stage=updated,
            r_cols=_columns(mirror.columns, "r"),
            m_cols=_columns(mirror.columns, "m"),
            source=source,
            mirror=name,
            same=_same_key(mirror, "r", "m"),
            months=_in_refreshed_months(mirror, "r"),
        ),
        params,
    ).rowcount
    found.inserted = conn.execute(
        sql.SQL(
            "INSERT INTO {stage} SELECT {r_cols} FROM {source} r WHERE {months} "
            "AND NOT EXISTS (SELECT FROM {mirror} m WHERE {same})"
        ).format(
            stage=inserted,
            r_cols=_columns(mirror.columns, "r"),
            source=source,
            months=_in_refreshed_months(mirror, "r"),
            mirror=name,
            same=_same_key(mirror, "r", "m"),
        ),
        params,
    ).rowcount
    # Statistics for the floor's joins (temp tables are never auto-analyzed).
    conn.execute(sql.SQL("ANALYZE {}, {}, {}").format(deleted, updated, inserted))
    return found


def apply_writes(conn: psycopg.Connection, mirror: Mirror, writes: TableWrites) -> None:
    """The hook's writes, replayed plainly on the mirror: DELETE, UPDATE by key, INSERT — in
    the order that keeps the EXCLUDE and UNIQUE constraints satisfied (a version is closed
    before its successor is opened)."""
    name = _ident(*mirror.name)
    if writes.deleted:
        conn.execute(
            sql.SQL("DELETE FROM {} m USING {} d WHERE {}").format(
                name, mirror.stage("deleted"), _same_key(mirror, "m", "d")
            )
        )
    if writes.updated:
        rest = [c for c in mirror.columns if c not in mirror.key]
        conn.execute(
            sql.SQL("UPDATE {} m SET ({}) = ROW({}) FROM {} u WHERE {}").format(
                name,
                _columns(rest),
                _columns(rest, "u"),
                mirror.stage("updated"),
                _same_key(mirror, "m", "u"),
            )
        )
    if writes.inserted:
        # in primary-key order, the cheapest order to write them in (the hook writes its
        # snapshot rows in key order too)
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {}").format(
                name,
                _columns(mirror.columns),
                _columns(mirror.columns),
                mirror.stage("inserted"),
                _columns(mirror.key),
            )
        )


def same_work_floor(
    conn: psycopg.Connection, mirrors: list[Mirror], writes: dict[str, TableWrites], params: dict
) -> Floor:
    """Timed, one committed transaction: the month's facts aggregated once, then the hook's
    writes applied to the mirrors. Afterwards the mirrors equal our tables again."""
    tables = {}
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute(AGGREGATE, params)
    aggregated = time.perf_counter()
    for mirror in mirrors:
        before = time.perf_counter()
        apply_writes(conn, mirror, writes[mirror.short])
        tables[mirror.short] = time.perf_counter() - before
    committing = time.perf_counter()
    conn.execute("COMMIT")
    ended = time.perf_counter()
    return Floor(aggregated - started, tables, ended - committing, ended - started)


def check_mirror(conn: psycopg.Connection, mirror: Mirror, initial_rows: int) -> MirrorCheck:
    """Untimed: row counts of both sides and the rows either has that the other lacks."""
    source, name = _ident(*mirror.source), _ident(*mirror.name)
    cols = _columns(mirror.columns)
    row = conn.execute(
        sql.SQL(
            "SELECT (SELECT count(*) FROM {s}), (SELECT count(*) FROM {m}), "
            "(SELECT count(*) FROM ((SELECT {c} FROM {s} EXCEPT ALL SELECT {c} FROM {m}) "
            "UNION ALL (SELECT {c} FROM {m} EXCEPT ALL SELECT {c} FROM {s})) AS d)"
        ).format(s=source, m=name, c=cols)
    ).fetchone()
    return MirrorCheck(".".join(mirror.source), initial_rows, *row)


def table_rows(conn: psycopg.Connection, mirror: Mirror) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(_ident(*mirror.source))
    return conn.execute(query).fetchone()[0]


# --- the hook ----------------------------------------------------------------------------


HOOK_RUNS = """
SELECT step, period, coalesce(extract(epoch FROM duration), 0)::float8, counts
  FROM cmdm.hook_run
 WHERE txid = %s::xid8
 ORDER BY hook_run_id
"""


def hook_run(conn: psycopg.Connection, txid: str, own_month_end: date) -> HookRun:
    """The hook's steps in transaction `txid`, as logged in cmdm.hook_run."""
    run = HookRun(0.0, 0.0, [], {}, {}, {}, 0)
    for step, period, seconds, counts in conn.execute(HOOK_RUNS, (txid,)).fetchall():
        if step == "contract_sync":
            run.sync_s += seconds
            add_into(run.sync_ms, counts.get("ms"))
        elif step == "snapshot_refresh":
            run.refresh_s += seconds
            run.refreshed.append(period)
            add_into(run.refresh_ms, counts.get("ms"))
            if period == own_month_end:
                run.population += counts.get("business_rows", 0) + counts.get("plan_rows", 0)
        add_into(run.counts.setdefault(step, {}), counts)
    return run


def add_into(totals: dict, values: object) -> None:
    """Sum the numeric entries of a jsonb object into `totals` (lists, texts, objects and
    booleans are not counts)."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            totals[key] = totals.get(key, 0) + value


def load_month(conn: psycopg.Connection, demo_month, batches: int = 1) -> tuple[float, float, str]:
    """One ETL transaction: COPY the month (in `batches` COPY statements), then COMMIT,
    where the hook runs. Returns (load s, commit s, the transaction id)."""

    def copy(conn: psycopg.Connection) -> None:
        if batches == 1:
            copy_month(conn, demo_month)
            return
        size = -(-len(demo_month.facts) // batches)
        for start in range(0, len(demo_month.facts), size):
            chunk = replace(demo_month, facts=demo_month.facts[start : start + size])
            copy_month(conn, chunk if start == 0 else replace(chunk, awards=[], losses=[]))

    return committed_transaction(conn, copy)


def committed_transaction(
    conn: psycopg.Connection, body: Callable[[psycopg.Connection], None]
) -> tuple[float, float, str]:
    """BEGIN, `body`, COMMIT (where the deferred hook runs). Returns (body s, commit s,
    the transaction id)."""
    started = time.perf_counter()
    conn.execute("BEGIN")
    txid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
    body(conn)
    loaded = time.perf_counter()
    conn.execute("COMMIT")
    return loaded - started, time.perf_counter() - loaded, txid


def measure(
    conn: psycopg.Connection,
    mirrors: list[Mirror],
    index: int,
    first: date,
    facts: int,
    transaction: tuple[float, float, str],
) -> MonthFigures:
    """The figures of one committed ETL transaction: its hook as logged, what it wrote
    (diffed, untimed) and the floor of that work (timed)."""
    load_s, hook_s, txid = transaction
    params = month_params(first)
    run = hook_run(conn, txid, params["end"])
    writes = {m.short: stage_writes(conn, m, run.refreshed) for m in mirrors}
    floor = same_work_floor(conn, mirrors, writes, params)
    return MonthFigures(index, first, facts, load_s, hook_s, floor, writes, run)


def restate(conn: psycopg.Connection, params: dict) -> tuple[float, float, str]:
    return committed_transaction(conn, lambda c: c.execute(RESTATE, params))


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


def hook_modes(conn: psycopg.Connection, demo_month) -> HookModes:
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
    )


def progress(message: str) -> None:
    """One status line on stderr, overwritten by the next (padded over the previous)."""
    print(f"\r{message:<60}", end="", file=sys.stderr, flush=True)


def run(spec: DemoSpec, server_url: str, keep: bool) -> BenchRun:
    name = f"cmdm_bench_{uuid.uuid4().hex[:8]}"
    with connect(with_database(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    try:
        migrate.upgrade(url)
        ensure_functions(url)
        # autocommit: each transaction below is a real one that commits, as an ETL month
        # load does (not a savepoint of one session-long transaction).
        with connect(url, autocommit=True) as conn:
            # Every commit waits for its WAL flush, as in production (the embedded
            # development cluster turns synchronous_commit off by default).
            conn.execute("SET synchronous_commit = on")
            bench = BenchRun(spec, name, server_settings(conn))
            if os.environ.get("CMDM_BENCH_EXPLAIN"):
                # plans of slow statements inside the functions, to the server log
                conn.execute("LOAD 'auto_explain'")
                conn.execute("SET auto_explain.log_min_duration = '3s'")
                conn.execute("SET auto_explain.log_nested_statements = on")
            mirrors = create_mirrors(conn)
            initial_rows = {m.short: table_rows(conn, m) for m in mirrors}
            with conn.transaction():
                load_customers(conn, spec)
            last_month = None
            for index, demo_month in enumerate(iter_months(spec), start=1):
                last_month = demo_month
                loaded = load_month(conn, demo_month)
                if index in (1, 2):
                    conn.execute('ANALYZE business."规模明细"')
                bench.months.append(
                    measure(conn, mirrors, index, demo_month.month, len(demo_month.facts), loaded)
                )
                progress(f"loaded {label(demo_month.month)} ({index}/{spec.months})")
            if len(bench.months) >= RESTATE_MONTH:
                restated = bench.months[RESTATE_MONTH - 1]
                transaction = restate(conn, month_params(restated.month))
                bench.restatement = measure(
                    conn, mirrors, RESTATE_MONTH, restated.month, restated.facts, transaction
                )
            progress("checking the mirrors against our tables")
            bench.mirrors = [check_mirror(conn, m, initial_rows[m.short]) for m in mirrors]
            if last_month is not None:
                progress("the last month again: trigger, CALL, 50 batches")
                bench.modes = hook_modes(conn, last_month)
            bench.peak_kib = peak_memory_kib(conn, server_url)
        print(file=sys.stderr)
    finally:
        if keep:
            print(f"kept the benchmark database {name}", file=sys.stderr)
        else:
            with connect(with_database(server_url, "postgres"), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return bench


# --- the summary -------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def per_fact_row(months: list[MonthFigures]) -> float:
    """Mean over the months of the hook's seconds per fact row."""
    return statistics.fmean(m.hook_s / m.facts for m in months)


def summarize(bench: BenchRun) -> dict:
    months = bench.months
    if not months:
        return {}
    ratios = [m.ratio for m in months]
    worst = max(months, key=lambda m: m.ratio)
    summary: dict = {
        "ratio_median": median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": worst.ratio,
        "ratio_max_month": worst.index,
        "months_over_max_ratio": [m.index for m in months if m.ratio > TARGET_MAX_RATIO],
        "januaries": {label(m.month): m.ratio for m in months if m.january},
        "hook_median_s": median([m.hook_s for m in months]),
        "floor_median_s": median([m.floor.total_s for m in months]),
        "last_month": months[-1].index,
        "last_hook_s": months[-1].hook_s,
        "last_hook_target_applies": (bench.spec.companies, len(months)) == STANDARD_SCALE,
        "floor_parts_median_s": floor_parts(m for m in months if not m.january and m.index > 1),
        "floor_parts_januaries_s": {label(m.month): floor_parts([m]) for m in months if m.january},
        "mirrors_equal": all(c.equal for c in bench.mirrors) if bench.mirrors else None,
        "peak_kib": bench.peak_kib,
    }
    if len(months) >= 3:
        first, last = per_fact_row(months[:3]), per_fact_row(months[-3:])
        summary |= {"hook_us_per_row_first3": 1e6 * first, "hook_us_per_row_last3": 1e6 * last}
        summary["hook_per_row_growth"] = last / first
    if bench.restatement is not None:
        appended = median([m.hook_s for m in months[-6:]])
        summary |= {
            "restate_hook_s": bench.restatement.hook_s,
            "restate_floor_s": bench.restatement.floor.total_s,
            "restate_ratio_to_floor": bench.restatement.ratio,
            "appended_hook_median_last6_s": appended,
            "restate_vs_appended": bench.restatement.hook_s / appended,
        }
    return summary


def floor_parts(months: Iterable[MonthFigures]) -> dict[str, float]:
    """Median seconds of each part of the floor over `months`."""
    months = list(months)
    if not months:
        return {}
    parts = {"aggregate": [m.floor.aggregate_s for m in months]}
    for short in months[0].floor.tables_s:
        parts[short] = [m.floor.tables_s[short] for m in months]
    parts["commit"] = [m.floor.commit_s for m in months]
    return {part: median(values) for part, values in parts.items()}


# --- the report --------------------------------------------------------------------------


def substep_keys(known: tuple[str, ...], logged: Iterable[dict]) -> list[str]:
    """The sub-steps any month logged: the known ones in their order, then the others."""
    seen = {key for ms in logged for key in ms}
    return [k for k in known if k in seen] + sorted(seen - set(known))


@dataclass
class Column:
    header: str
    width: int
    value: Callable[[MonthFigures], str]
    group: str = ""


def month_columns(months: list[MonthFigures]) -> list[Column]:
    columns = [
        Column("month", 5, lambda m: f"{m.index}{'*' if m.january else ' '}"),
        Column("period", 7, lambda m: label(m.month)),
        Column("facts", 9, lambda m: f"{m.facts:,}"),
        Column("hook s", 7, lambda m: f"{m.hook_s:.3f}"),
        Column("floor s", 7, lambda m: f"{m.floor.total_s:.3f}"),
        Column("ratio", 6, lambda m: f"{m.ratio:.2f}"),
    ]
    for header, attr in (("opened", "inserted"), ("updated", "updated"), ("deleted", "deleted")):
        columns.append(
            Column(header, 8, lambda m, a=attr: f"{getattr(m.versions, a):,}", "versions")
        )
    for header, attr in (("ins", "inserted"), ("upd", "updated"), ("del", "deleted")):
        columns.append(
            Column(header, 8, lambda m, a=attr: f"{getattr(m.snapshot_rows, a):,}", "snapshot rows")
        )
    columns += [
        Column("sync s", 7, lambda m: f"{m.run.sync_s:.3f}"),
        Column("refresh s", 9, lambda m: f"{m.run.refresh_s:.3f}"),
        Column("months", 6, lambda m: str(len(m.run.refreshed))),
    ]
    for group, known, attr in (
        ("sync ms", SYNC_SUBSTEPS, "sync_ms"),
        ("refresh ms", REFRESH_SUBSTEPS, "refresh_ms"),
    ):
        for key in substep_keys(known, (getattr(m.run, attr) for m in months)):
            columns.append(
                Column(
                    key, max(len(key), 6), lambda m, a=attr, k=key: ms(getattr(m.run, a), k), group
                )
            )
    return columns


def ms(logged: dict[str, float], key: str) -> str:
    return f"{logged[key]:.1f}" if key in logged else ""


def print_table(columns: list[Column], rows: list[MonthFigures]) -> None:
    groups, cells = [], []
    for column in columns:
        if groups and groups[-1][0] == column.group:
            groups[-1][1] += column.width + 1
        else:
            groups.append([column.group, column.width + (1 if groups else 0)])
    print("".join(f"{g:^{w}}" for g, w in groups).rstrip())
    header = " ".join(f"{c.header:>{c.width}}" for c in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = [f"{c.value(row):>{c.width}}" for c in columns]
        print(" ".join(cells))


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(bench: BenchRun, summary: dict) -> None:
    spec, s = bench.spec, bench.server
    print(f"\ncmdm bench: {spec.companies:,} companies × {spec.months} months (seed {spec.seed})")
    print(
        f"server: PostgreSQL {s['server_version']}, fsync {s['fsync']}, synchronous_commit "
        f"{s['synchronous_commit']}, shared_buffers {s['shared_buffers']}, work_mem {s['work_mem']}"
    )
    if not bench.months:
        return
    print()
    print_table(month_columns(bench.months), bench.months)
    logged_ms = any(m.run.sync_ms or m.run.refresh_ms for m in bench.months)
    print(
        "(* January. hook s: the month's COMMIT, where the post-ETL hook runs; floor s: the "
        "month's facts aggregated once plus the hook's own writes applied to mirrors of our "
        "tables, committed; versions / snapshot rows: what the hook inserted, updated, "
        "deleted; sync s, refresh s, months: cmdm.hook_run"
        + ("; sync ms, refresh ms: its counts.ms)" if logged_ms else ")")
    )
    if not logged_ms:
        print("(no sub-step timings: the deployed functions do not log counts.ms)")
    report_summary(bench, summary)
    if bench.modes is not None:
        report_modes(bench.modes)


def report_summary(bench: BenchRun, summary: dict) -> None:
    n = len(bench.months)
    worst = bench.months[summary["ratio_max_month"] - 1]
    print("\nsummary")
    print(
        f"  hook / floor: median {summary['ratio_median']:.2f}x (target <= {TARGET_MEDIAN_RATIO}x: "
        f"{verdict(summary['ratio_median'] <= TARGET_MEDIAN_RATIO)}), min "
        f"{summary['ratio_min']:.2f}x, max {summary['ratio_max']:.2f}x in month "
        f"{worst.index} ({label(worst.month)})"
    )
    over = summary["months_over_max_ratio"]
    print(
        f"  months over {TARGET_MAX_RATIO}x the floor (target: none): {len(over)} of {n}, "
        f"{verdict(not over)}" + (f": {', '.join(map(str, over))}" if over else "")
    )
    januaries = ", ".join(f"{p} {r:.2f}x" for p, r in summary["januaries"].items())
    print(f"  Januaries: {januaries or 'none'}")
    if "hook_per_row_growth" in summary:
        growth = summary["hook_per_row_growth"]
        print(
            f"  hook time per fact row, months {n - 2}-{n} vs 1-3: {growth:.2f}x "
            f"({summary['hook_us_per_row_last3']:.2f} vs {summary['hook_us_per_row_first3']:.2f} "
            f"µs) (target <= {TARGET_GROWTH}x: {verdict(growth <= TARGET_GROWTH)})"
        )
    if bench.restatement is not None:
        r = bench.restatement
        vs = summary["restate_vs_appended"]
        appended = summary["appended_hook_median_last6_s"]
        print(
            f"  restating month {RESTATE_MONTH} after all {n}: hook {r.hook_s:.3f} s = {vs:.2f}x "
            f"an appended month ({appended:.3f} s, median of the last 6) "
            f"(target <= {TARGET_RESTATE}x: {verdict(vs <= TARGET_RESTATE)})"
        )
        print(
            f"    its floor {r.floor.total_s:.3f} s (ratio {r.ratio:.2f}x); "
            f"{len(r.run.refreshed)} snapshot months refreshed; versions "
            f"{written(r.versions)}; snapshot rows {written(r.snapshot_rows)}"
        )
    last = summary["last_hook_s"]
    if summary["last_hook_target_applies"]:
        target = f"target <= {TARGET_LAST_HOOK_S} s: {verdict(last <= TARGET_LAST_HOOK_S)}"
    else:
        target = f"target <= {TARGET_LAST_HOOK_S} s for month 36 at 20,000 companies: n/a here"
    print(
        f"  hook median {summary['hook_median_s']:.3f} s (floor median "
        f"{summary['floor_median_s']:.3f} s); month {n} hook {last:.3f} s ({target})"
    )
    parts = summary["floor_parts_median_s"]
    if parts:
        print("  floor parts, median of the non-January months after the first: " + seconds(parts))
    for period, parts in summary["floor_parts_januaries_s"].items():
        print(f"  floor parts, {period}: " + seconds(parts))
    checks = ", ".join(
        f"{c.table.split('.')[-1]} {'equal' if c.equal else 'DIFFERENT'} ({c.rows:,} rows"
        + ("" if c.equal else f", mirror {c.mirror_rows:,}, {c.differing_rows:,} differing")
        + ")"
        for c in bench.mirrors
    )
    print(f"  mirrors after the restatement: {checks}")
    if bench.peak_kib is not None:
        print(
            f"  peak resident memory of the server process (VmHWM): {bench.peak_kib / 1024:.0f} MiB"
        )
    else:
        print("  peak resident memory of the server process: n/a (the server is not local)")


def written(writes: TableWrites) -> str:
    return f"+{writes.inserted:,} ~{writes.updated:,} -{writes.deleted:,}"


def seconds(parts: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3f}" for name, value in parts.items()) + " s"


def report_modes(m: HookModes) -> None:
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


# --- JSON --------------------------------------------------------------------------------


def month_json(m: MonthFigures) -> dict:
    return {
        **asdict(m),
        "period": label(m.month),
        "january": m.january,
        "ratio": m.ratio,
        "versions_written": m.versions.total,
        "snapshot_rows_written": m.snapshot_rows.total,
    }


def write_json(bench: BenchRun, summary: dict, path: Path) -> None:
    document = {
        "spec": asdict(bench.spec),
        "database": bench.database,
        "server": bench.server,
        "months": [month_json(m) for m in bench.months],
        "restatement": month_json(bench.restatement) if bench.restatement else None,
        "mirrors": [{**asdict(c), "equal": c.equal} for c in bench.mirrors],
        "last_month_again": asdict(bench.modes) if bench.modes else None,
        "summary": summary,
        "targets": {
            "ratio_median": TARGET_MEDIAN_RATIO,
            "ratio_every_month": TARGET_MAX_RATIO,
            "hook_per_row_growth": TARGET_GROWTH,
            "restate_vs_appended": TARGET_RESTATE,
            "last_hook_s_at_standard_scale": TARGET_LAST_HOOK_S,
        },
    }
    path.write_text(json.dumps(document, indent=1, default=str, ensure_ascii=False) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=STANDARD_SCALE[0])
    parser.add_argument("--months", type=int, default=STANDARD_SCALE[1])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", help="server to use (a new database is created on it)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    args = parser.parse_args()
    try:
        spec = DemoSpec(companies=args.companies, months=args.months, seed=args.seed)
        bench = run(spec, resolve_database_url(args.database_url), args.keep)
    except CmdmError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    summary = summarize(bench)
    report(bench, summary)
    if args.json:
        write_json(bench, summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
