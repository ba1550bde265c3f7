"""`cmdm backfill` (DESIGN §7): the post-ETL hooks of every month of a range, in ascending
order, one transaction per month, resumable.

Month m runs `cmdm.run_hooks(domain, ARRAY[m], '{}', 'cli', defer, backfill_id)` where
`defer` = [the month after m, the month after the last): the snapshot months of the range
after m are left to their own month, which refreshes them anyway; each month refreshes
the months before it that depend on it. So a backfill refreshes every month once or a few
times, not once per month that depends on it.

Each backfill is a row of `cmdm.backfill_run`, committed before the first month; its hook
runs carry its id. A month is done when its `contract_sync` run with that id committed
(succeeded, or skipped because the step is disabled). A later backfill of the same domain
and range finds the unfinished row and runs only the months not done; `--restart` starts
a new row. An interruption (Ctrl-C, a lost connection, a failing month) loses only the
month in progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from cmdm_admin.errors import CmdmError
from cmdm_admin.hooks import HookError, StepRun, check_domain, run_in_transaction
from cmdm_admin.periods import label, month_end

_FIND_SQL = """
SELECT backfill_id FROM cmdm.backfill_run
 WHERE domain = %(domain)s AND from_period = %(first)s AND to_period = %(last)s
   AND finished_at IS NULL
 ORDER BY backfill_id DESC
 LIMIT 1
"""

_DONE_SQL = """
SELECT DISTINCT date_trunc('month', period)::date FROM cmdm.hook_run
 WHERE backfill_id = %(id)s AND step = 'contract_sync' AND outcome IN ('succeeded', 'skipped')
"""


class BackfillError(HookError):
    """A backfill stopped: the months before the one named are committed."""


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """First days of every calendar month from `first`'s through `last`'s."""
    if first > last:
        raise CmdmError(
            f"--from {label(first)} is after --to {label(last)}", hint="swap the two months"
        )
    out, month = [], first.replace(day=1)
    while month <= last:
        out.append(month)
        month = next_month(month)
    return out


def defer_range(month: date, last: date) -> tuple[date, date] | None:
    """The months after `month` through `last`, as [first day, first day after)."""
    return (next_month(month), next_month(last)) if month < last else None


@dataclass
class MonthRun:
    month: date
    runs: list[StepRun]

    def as_dict(self) -> dict[str, Any]:
        return {"month": label(self.month), "runs": [r.as_dict() for r in self.runs]}


@dataclass
class Backfill:
    backfill_id: int
    domain: str
    months: list[date]
    #: Months done by an earlier, interrupted run of this backfill.
    done_before: list[date]
    resumed: bool
    ran: list[MonthRun] = field(default_factory=list)
    finished: bool = False

    @property
    def todo(self) -> list[date]:
        done = set(self.done_before)
        return [m for m in self.months if m not in done]

    def as_dict(self) -> dict[str, Any]:
        return {
            "backfill_id": self.backfill_id,
            "domain": self.domain,
            "from": label(self.months[0]),
            "to": label(self.months[-1]),
            "resumed": self.resumed,
            "months_total": len(self.months),
            "months_done_before": [label(m) for m in self.done_before],
            "months": [m.as_dict() for m in self.ran],
            "finished": self.finished,
        }


def start(
    conn: psycopg.Connection, domain: str, first: date, last: date, *, restart: bool = False
) -> Backfill:
    """The unfinished backfill of the same domain and range (unless `restart`), else a new
    one; its row is committed before anything runs."""
    months = months_between(first, last)
    # Stored as month-ends, like every period cmdm stores.
    params = {"domain": domain, "first": month_end(months[0]), "last": month_end(months[-1])}
    with conn.transaction():
        check_domain(conn, domain)
        row = None if restart else conn.execute(_FIND_SQL, params).fetchone()
        if row is not None:
            backfill_id = row[0]
            done = {r[0] for r in conn.execute(_DONE_SQL, {"id": backfill_id})}
            return Backfill(backfill_id, domain, months, sorted(done & set(months)), True)
        (backfill_id,) = conn.execute(
            "INSERT INTO cmdm.backfill_run (domain, from_period, to_period)"
            " VALUES (%(domain)s, %(first)s, %(last)s) RETURNING backfill_id",
            params,
        ).fetchone()
    return Backfill(backfill_id, domain, months, [], False)


def run(
    conn: psycopg.Connection,
    url: str,
    backfill: Backfill,
    on_month: Callable[[MonthRun], None] | None = None,
) -> Backfill:
    """Run the months not done, one transaction each, then mark the backfill finished.
    A failing month is logged (cmdm.hook_run, with the backfill's id) and stops it."""
    last = backfill.months[-1]
    total = len(backfill.months)
    month = backfill.todo[0] if backfill.todo else last

    def where() -> str:
        done = len(backfill.done_before) + len(backfill.ran)
        return (
            f"backfill #{backfill.backfill_id} stopped at {label(month)} "
            f"({done} of {total} months done)"
        )

    try:
        for month in backfill.todo:
            outcome = run_in_transaction(
                conn,
                url,
                backfill.domain,
                [month],
                defer=defer_range(month, last),
                backfill_id=backfill.backfill_id,
                rerun="fix the cause and run the same command again to resume",
            )
            if outcome.error is not None:
                error = outcome.error
                raise BackfillError(f"{where()}: {error.message}", hint=error.hint)
            backfill.ran.append(MonthRun(month, outcome.runs))
            if on_month is not None:
                on_month(backfill.ran[-1])
    except KeyboardInterrupt:
        # Ctrl-C: the month in progress is rolled back (psycopg cancels its statement);
        # the months before it are committed.
        raise BackfillError(
            f"{where()}: interrupted", hint="run the same command again to resume"
        ) from None
    with conn.transaction():
        conn.execute(
            "UPDATE cmdm.backfill_run SET finished_at = now() WHERE backfill_id = %s",
            (backfill.backfill_id,),
        )
    backfill.finished = True
    return backfill
