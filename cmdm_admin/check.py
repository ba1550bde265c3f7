"""`cmdm check` (DESIGN §4, "Trust, checked"): are the stored outputs still exactly what
the facts say?

For a range of months it recomputes, inside the database and into temporary tables only:

1. the annual decisions of every year the range touches (customer.check_annual_statuses);
2. the contract history of the range from the facts alone, a whole-range derivation apart
   from the incremental sync (customer.check_contract_history);
3. each loaded month's snapshot rows (customer.check_monthly_snapshot),

and compares each with the stored rows, both ways, on every column but surrogate ids and
timestamps. Everything runs in one REPEATABLE READ transaction that is rolled back: one
consistent view of the facts and outputs, nothing written, and no lock beyond reading (a
load commits meanwhile; the check does not see it). The cost is about one recomputation of
the range, without its writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cmdm_admin.backfill import months_between
from cmdm_admin.db import first_line
from cmdm_admin.errors import CmdmError, DatabaseError
from cmdm_admin.periods import label, month_end

HISTORY = "customer.customer_plan_contract"


class CheckError(CmdmError):
    """The check could not run (no rules deployed, a database error)."""


@dataclass(frozen=True)
class Difference:
    """One row that differs: `missing` (expected, not stored), `unexpected` (stored, not
    expected) or `different` (same key, other values)."""

    table: str
    kind: str
    key: dict[str, Any]
    stored: dict[str, Any] | None
    expected: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "kind": self.kind,
            "key": self.key,
            "stored": self.stored,
            "expected": self.expected,
        }


@dataclass
class CheckResult:
    first: date
    last: date
    months: list[date]  # the loaded months checked (first days)
    years: list[int]
    counts: dict[str, Counter] = field(default_factory=dict)
    sample: list[Difference] = field(default_factory=list)

    @property
    def differences(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    @property
    def ok(self) -> bool:
        return self.differences == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": label(self.first),
            "to": label(self.last),
            "months_checked": [label(m) for m in self.months],
            "years_checked": self.years,
            "ok": self.ok,
            "differences": self.differences,
            "counts": {table: dict(sorted(c.items())) for table, c in sorted(self.counts.items())},
            "sample": [d.as_dict() for d in self.sample],
        }


def loaded_range(conn: psycopg.Connection) -> tuple[date, date] | None:
    """The first and last loaded months (first days), or None when nothing is loaded."""
    first, last = conn.execute("SELECT min(l), max(l) FROM customer.loaded_months() l").fetchone()
    if first is None:
        return None
    return first.replace(day=1), last.replace(day=1)


def check(
    conn: psycopg.Connection,
    first: date,
    last: date,
    *,
    sample: int = 10,
    on_step: Callable[[str], None] | None = None,
) -> CheckResult:
    """Compare the stored outputs of [first, last] with a recomputation from the facts.
    `on_step` is called after each step (the history, then each month)."""
    if sample < 0:
        raise CheckError(f"--sample {sample} is negative", hint="use 0 or more")
    months_between(first, last)  # refuses a reversed range
    conn.rollback()
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction(force_rollback=True), conn.cursor(row_factory=dict_row) as cur:
            if cur.execute(
                "SELECT to_regprocedure('customer.check_contract_history(date, date)') IS NULL"
                " AS missing"
            ).fetchone()["missing"]:
                raise CheckError(
                    "this database has no check functions",
                    hint="deploy the rules first: `cmdm migrate upgrade` or `cmdm deploy-rules`",
                )
            loaded = [
                r["l"].replace(day=1)
                for r in cur.execute(
                    "SELECT l FROM customer.loaded_months(%s, %s) l ORDER BY l",
                    (first.replace(day=1), month_end(last)),
                )
            ]
            years = list(range(first.year, last.year + 1))
            result = CheckResult(first.replace(day=1), last.replace(day=1), loaded, years)

            def record(table: str, kind: str, key: dict, stored: Any, expected: Any) -> None:
                result.counts.setdefault(table, Counter())[kind] += 1
                if sum(1 for d in result.sample if d.table == table) < sample:
                    result.sample.append(
                        Difference(table, kind, _ordered(key), _ordered(stored), _ordered(expected))
                    )

            for r in cur.execute(
                "SELECT * FROM customer.check_annual_statuses(%s)", (years,)
            ).fetchall():
                side = r["decision"]
                key = {k: side[k] for k in side if k not in ("evidence", "reference_month")}
                stored, expected = (side, None) if r["difference"] == "unexpected" else (None, side)
                record(r["table_name"], r["difference"], _key_of(key), stored, expected)
            for r in cur.execute(
                "SELECT * FROM customer.check_contract_history(%s, %s)", (first, last)
            ).fetchall():
                version = r["version"]
                key = {k: version[k] for k in ("company_id", "plan_code", "product_line_code")}
                key["valid_from"] = version["valid_from"]
                stored, expected = (
                    (version, None) if r["difference"] == "unexpected" else (None, version)
                )
                record(HISTORY, r["difference"], key, stored, expected)
            if on_step:
                on_step("history")
            for month in loaded:
                for r in cur.execute(
                    "SELECT * FROM customer.check_monthly_snapshot(%s)", (month,)
                ).fetchall():
                    record(
                        r["table_name"], r["difference"], r["row_key"], r["stored"], r["expected"]
                    )
                if on_step:
                    on_step(label(month))
    except psycopg.Error as exc:
        raise DatabaseError(f"the check failed: {first_line(exc)}") from exc
    finally:
        conn.isolation_level = None
    return result


#: Columns in the order a person reads a row (jsonb orders keys by length).
_ORDER = (
    "snapshot_month",
    "status_year",
    "company_id",
    "plan_code",
    "product_line_code",
    "product_line_name",
    "valid_from",
    "valid_to",
    "reference_month",
    "contract_status",
)


def _ordered(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    first = [c for c in _ORDER if c in row]
    return {c: row[c] for c in first + sorted(c for c in row if c not in _ORDER)}


def _key_of(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: row[k]
        for k in ("status_year", "company_id", "plan_code", "product_line_code")
        if k in row
    }
