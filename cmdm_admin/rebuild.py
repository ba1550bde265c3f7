"""`cmdm rebuild` (DESIGN §6): recompute a range of months under the deployed rules, in one
transaction, and say what changed; `--dry-run` says it and rolls back.

1. Take the hook lock exclusively (cmdm.take_hook_lock('contract_sync')), the one every
   writer of the outputs takes first: a load's hooks at its COMMIT, a product-line rename,
   another rebuild. A load's facts become visible only when its COMMIT ends, after its
   hooks ran, so a load in progress waits at its COMMIT for the rebuild and then brings its
   months up to date on the rebuilt history; what changes here is the rebuild's doing.
   No table is locked: the rebuild never waits for a load, so no deadlock is possible (it
   used to take SHARE locks on the input tables one by one, and a load that wrote the
   events first and then the facts deadlocked against it: issue 18). A load with the hooks
   off commits meanwhile; its months stay recorded as stale (`cmdm backfill --stale`).
2. Copy what the range can change into temp tables: the contract versions with
   `valid_to` on or after the first month (a version a month's sync rewrites overlaps or
   touches that month), and the rows of both snapshot tables from the first month on.
   Annual statuses are decided per year (DESIGN §4), so the range is widened to whole
   years (January of the first through December of the last, or its last loaded month),
   and every year of it is decided again first (customer.decide_annual_statuses): a rule
   change reaches every year the rebuild touches, whichever month its reference month is.
3. Run the months as `cmdm backfill` does (cmdm_admin.backfill: ascending, the same
   deferred refreshes), trigger kind 'cli', without a backfill id.
4. Compare, on the business columns (not ids or timestamps): contract versions added and
   removed (EXCEPT both ways), snapshot rows inserted, updated and deleted per table (a
   full join on the primary key), and a sample of changed rows, before → after.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from psycopg.types.json import set_json_loads

from cmdm_admin.backfill import MonthRun, defer_range, months_between
from cmdm_admin.compiler import ident
from cmdm_admin.errors import CmdmError
from cmdm_admin.hooks import (
    Failure,
    HookError,
    check_domain,
    hook_error,
    log_failed_run,
    run_hooks,
)
from cmdm_admin.periods import label

CONTRACT = "customer.customer_plan_contract"
CONTRACT_KEY = ("company_id", "plan_code", "product_line_code", "valid_from")
SNAPSHOTS = {
    "customer.fct_customer_business_monthly_status": (
        "snapshot_month",
        "company_id",
        "product_line_code",
    ),
    "customer.fct_customer_plan_monthly_status": (
        "snapshot_month",
        "company_id",
        "plan_code",
        "product_line_code",
    ),
}
#: Bookkeeping columns: a rewrite changes them without changing anything.
NOT_COMPARED = frozenset({"contract_id", "key_id", "created_at", "updated_at"})


class RebuildError(HookError):
    """A rebuild failed or was interrupted; it was rolled back, nothing changed."""


@dataclass
class Change:
    """A changed row: its key, and the row before and after (None: absent)."""

    key: dict[str, Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        return "removed" if self.after is None else "changed"

    @property
    def changed_columns(self) -> list[str]:
        if self.before is None or self.after is None:
            return []
        return [c for c in self.after if self.before.get(c) != self.after[c]]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "before": self.before, "after": self.after}


@dataclass
class TableDiff:
    table: str
    #: contract: added, removed; snapshots: inserted, updated, deleted
    counts: dict[str, int]
    sample: list[Change] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            **self.counts,
            "sample": [c.as_dict() for c in self.sample],
        }


@dataclass
class Rebuild:
    domain: str
    months: list[date]
    dry_run: bool
    #: The range asked for; `months` is it widened to whole years.
    requested: tuple[date, date] | None = None
    #: Per year decided again: its reference month and how many versions were re-flagged.
    years: list[dict[str, Any]] = field(default_factory=list)
    rules_revision: str | None = None
    rules_sha256: str | None = None
    ran: list[MonthRun] = field(default_factory=list)
    diffs: list[TableDiff] = field(default_factory=list)
    committed: bool = False

    @property
    def changes(self) -> int:
        return sum(d.total for d in self.diffs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "from": label(self.months[0]),
            "to": label(self.months[-1]),
            "requested": [label(m) for m in self.requested] if self.requested else None,
            "years": self.years,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "rules": {"revision": self.rules_revision, "sha256": self.rules_sha256},
            "changes": self.changes,
            "contract": self.diffs[0].as_dict() if self.diffs else None,
            "snapshots": [d.as_dict() for d in self.diffs[1:]],
            "months": [m.as_dict() for m in self.ran],
        }


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = %s::regclass"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (table,),
        )
        if r[0] not in NOT_COMPARED
    ]


def _lock_hooks(conn: psycopg.Connection) -> None:
    """The hook lock, exclusive, to the end of the transaction (step 1). Rules deployed
    before it existed serialize on their advisory lock: take that one then."""
    if conn.execute(
        "SELECT to_regprocedure('cmdm.take_hook_lock(text, boolean)') IS NOT NULL"
    ).fetchone()[0]:
        conn.execute("SELECT cmdm.take_hook_lock('contract_sync')")
    else:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cmdm:contract_sync'))")


def _before(name: str) -> str:
    return f"pg_temp.cmdm_rebuild_{name.split('.')[-1]}"


def _copy_before(conn: psycopg.Connection, first: date) -> dict[str, list[str]]:
    """Temp copies of what the rebuild can change; the compared columns of each table."""
    columns: dict[str, list[str]] = {}
    for table, where in (
        (CONTRACT, "valid_to >= %(first)s"),
        *((t, "snapshot_month >= %(first)s") for t in SNAPSHOTS),
    ):
        columns[table] = _columns(conn, table)
        select = ", ".join(ident(c) for c in columns[table])
        conn.execute(
            f"CREATE TEMP TABLE {_before(table)} ON COMMIT DROP AS"
            f" SELECT {select} FROM {table} WHERE {where}",
            {"first": first},
        )
    return columns


def _contract_diff(
    conn: psycopg.Connection, first: date, columns: list[str], sample: int
) -> TableDiff:
    select = ", ".join(ident(c) for c in columns)
    on = " AND ".join(f"r.{ident(k)} = a.{ident(k)}" for k in CONTRACT_KEY)
    order = ", ".join(f"coalesce(a.{ident(k)}, r.{ident(k)})" for k in CONTRACT_KEY)
    with_sql = (
        f"WITH after AS (SELECT {select} FROM {CONTRACT} WHERE valid_to >= %(first)s),"
        f" added AS (SELECT * FROM after EXCEPT SELECT * FROM {_before(CONTRACT)}),"
        f" removed AS (SELECT * FROM {_before(CONTRACT)} EXCEPT SELECT * FROM after)"
    )
    added, removed = conn.execute(
        f"{with_sql} SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM removed)",
        {"first": first},
    ).fetchone()
    rows = _rows(
        conn,
        f"{with_sql} SELECT CASE WHEN r.company_id IS NULL THEN NULL ELSE to_jsonb(r) END,"
        f" CASE WHEN a.company_id IS NULL THEN NULL ELSE to_jsonb(a) END"
        f" FROM removed r FULL JOIN added a ON {on} ORDER BY {order} LIMIT %(n)s",
        {"first": first, "n": sample},
    )
    changes = [_change(CONTRACT_KEY, columns, before, after) for before, after in rows]
    return TableDiff(CONTRACT, {"added": added, "removed": removed}, changes)


def _snapshot_diff(
    conn: psycopg.Connection, table: str, first: date, columns: list[str], sample: int
) -> TableDiff:
    key = SNAPSHOTS[table]
    select = ", ".join(ident(c) for c in columns)
    on = " AND ".join(f"b.{ident(k)} = a.{ident(k)}" for k in key)
    order = ", ".join(f"coalesce(a.{ident(k)}, b.{ident(k)})" for k in key)
    from_sql = (
        f"FROM {_before(table)} b FULL JOIN"
        f" (SELECT {select} FROM {table} WHERE snapshot_month >= %(first)s) a ON {on}"
        " WHERE to_jsonb(a) IS DISTINCT FROM to_jsonb(b)"
    )
    inserted, updated, deleted = conn.execute(
        "SELECT count(*) FILTER (WHERE b.snapshot_month IS NULL),"
        " count(*) FILTER (WHERE b.snapshot_month IS NOT NULL AND a.snapshot_month IS NOT NULL),"
        f" count(*) FILTER (WHERE a.snapshot_month IS NULL) {from_sql}",
        {"first": first},
    ).fetchone()
    rows = _rows(
        conn,
        "SELECT CASE WHEN b.snapshot_month IS NULL THEN NULL ELSE to_jsonb(b) END,"
        " CASE WHEN a.snapshot_month IS NULL THEN NULL ELSE to_jsonb(a) END"
        f" {from_sql} ORDER BY {order} LIMIT %(n)s",
        {"first": first, "n": sample},
    )
    changes = [_change(key, columns, before, after) for before, after in rows]
    counts = {"inserted": inserted, "updated": updated, "deleted": deleted}
    return TableDiff(table, counts, changes)


def _rows(
    conn: psycopg.Connection, sql: str, params: dict[str, Any]
) -> list[tuple[dict | None, dict | None]]:
    """(before, after) pairs of jsonb rows, numbers read as Decimal (as the columns hold
    them: numeric(20, 2) does not fit a float)."""
    with conn.cursor() as cur:
        set_json_loads(partial(json.loads, parse_float=Decimal), cur)
        return cur.execute(sql, params).fetchall()


def _change(
    key: tuple[str, ...], columns: list[str], before: dict | None, after: dict | None
) -> Change:
    """A Change with the row's columns in table order (jsonb sorts them otherwise)."""
    row = after if after is not None else before
    assert row is not None

    def ordered(r: dict | None) -> dict | None:
        return None if r is None else {c: r[c] for c in columns}

    return Change({k: row[k] for k in key}, ordered(before), ordered(after))


def rebuild_range(conn: psycopg.Connection, first: date, last: date) -> tuple[date, date]:
    """[first, last] widened to whole years: from January of `first`'s year through
    December of `last`'s, or through its last loaded month when that is earlier (but never
    before `last`)."""
    months_between(first, last)  # refuses a reversed range
    december = date(last.year, 12, 1)
    (latest,) = conn.execute(
        "SELECT max(l) FROM customer.loaded_months(%s, %s) l", (last.replace(day=1), december)
    ).fetchone()
    end = latest.replace(day=1) if latest is not None else last.replace(day=1)
    return date(first.year, 1, 1), end


def rebuild(
    conn: psycopg.Connection,
    url: str,
    domain: str,
    first: date,
    last: date,
    *,
    dry_run: bool = False,
    sample: int = 5,
    on_month: Callable[[MonthRun], None] | None = None,
) -> Rebuild:
    """Recompute [first, last], widened to whole years (rebuild_range), in one transaction
    of `conn`; commit it unless `dry_run`."""
    requested = (first.replace(day=1), last.replace(day=1))
    first, last = rebuild_range(conn, first, last)
    months = months_between(first, last)
    if sample < 0:
        raise CmdmError(f"--sample {sample} is negative", hint="use 0 or more")
    result = Rebuild(domain, months, dry_run, requested)
    span = f"{label(months[0])}..{label(months[-1])}"
    month = months[0]
    started_at, clock = datetime.now().astimezone(), time.monotonic()
    try:
        with conn.transaction(force_rollback=dry_run):
            check_domain(conn, domain)
            row = conn.execute(
                "SELECT revision, sha256 FROM cmdm.rule_deployment"
                " ORDER BY deployment_id DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                result.rules_revision, result.rules_sha256 = row
            _lock_hooks(conn)
            columns = _copy_before(conn, months[0])
            decided = conn.execute(
                "SELECT status_year, reference_month, statuses_changed, versions_reflagged"
                " FROM customer.decide_annual_statuses(%s)",
                (list(range(first.year, last.year + 1)),),
            ).fetchall()
            result.years = [
                {"year": y, "reference_month": r, "statuses_changed": c, "versions_reflagged": n}
                for y, r, c, n in decided
            ]
            for month in months:
                runs = run_hooks(conn, domain, [month], defer=defer_range(month, months[-1]))
                result.ran.append(MonthRun(month, runs))
                if on_month is not None:
                    on_month(result.ran[-1])
            result.diffs.append(_contract_diff(conn, months[0], columns[CONTRACT], sample))
            for table in SNAPSHOTS:
                result.diffs.append(_snapshot_diff(conn, table, months[0], columns[table], sample))
    except psycopg.Error as exc:
        note = None
        if not dry_run:
            failure = Failure.of(exc, domain, month)
            _, note = log_failed_run(url, exc, failure, started_at, clock)
        error = hook_error(exc, url, domain, note)
        raise RebuildError(
            f"rebuild {span} failed at {label(month)}, nothing was changed: {error.message}",
            hint=error.hint,
        ) from exc
    except KeyboardInterrupt:
        raise RebuildError(
            f"rebuild {span} interrupted at {label(month)}; nothing was changed"
        ) from None
    result.committed = not dry_run
    return result
