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

`cmdm backfill --stale` runs exactly the months recorded stale (cmdm.stale_change: facts
or events changed while the hooks did not run), ascending, one transaction per month:
`cmdm.run_hooks(domain, [m] if m's facts changed, <the changed events dates in m>)`,
without deferring (the months between stale ones are not run by it, so each month
refreshes every month depending on it). Each successful month deletes its own records in
its transaction, so the same command resumes after a failure, and a change committed while
it runs stays recorded for the next one.
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

#: Per month (first day) of the domain's stale records: whether its facts changed, and the
#: dates of the events rows that did.
_STALE_SQL = """
SELECT date_trunc('month', period)::date AS month,
       bool_or(kind = 'facts') AS facts,
       coalesce(array_agg(DISTINCT period ORDER BY period) FILTER (WHERE kind = 'event'), '{}')
  FROM cmdm.stale_change
 WHERE domain = %(domain)s
 GROUP BY 1
 ORDER BY 1
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


@dataclass
class StaleMonth:
    """A stale month: whether its facts changed, and the dates of changed events rows."""

    month: date
    facts: bool
    events: list[date]


@dataclass
class StaleBackfill:
    """`cmdm backfill --stale`: the stale months found, and those run."""

    domain: str
    months: list[StaleMonth]
    ran: list[MonthRun] = field(default_factory=list)
    finished: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "stale": True,
            "months_total": len(self.months),
            "stale_months": [
                {
                    "month": label(m.month),
                    "facts": m.facts,
                    "events": [e.isoformat() for e in m.events],
                }
                for m in self.months
            ],
            "months": [m.as_dict() for m in self.ran],
            "finished": self.finished,
        }


def find_stale(conn: psycopg.Connection, domain: str) -> StaleBackfill:
    """The domain's stale months as recorded now (cmdm status lists the same)."""
    with conn.transaction():
        check_domain(conn, domain)
        if conn.execute("SELECT to_regclass('cmdm.stale_change') IS NULL").fetchone()[0]:
            raise CmdmError(
                "this database does not record stale months",
                hint="upgrade it: `cmdm migrate upgrade`",
            )
        rows = conn.execute(_STALE_SQL, {"domain": domain}).fetchall()
    return StaleBackfill(domain, [StaleMonth(m, facts, list(events)) for m, facts, events in rows])


def run_stale(
    conn: psycopg.Connection,
    url: str,
    job: StaleBackfill,
    on_month: Callable[[MonthRun], None] | None = None,
) -> StaleBackfill:
    """The hooks of each stale month, ascending, one transaction each. A failing month is
    logged (cmdm.hook_run) and stops the run; the months before it are committed and no
    longer stale."""
    total = len(job.months)
    month = job.months[0].month if job.months else None

    def where() -> str:
        return (
            f"backfill --stale stopped at {label(month) if month else '?'} "
            f"({len(job.ran)} of {total} stale months done)"
        )

    try:
        for stale in job.months:
            month = stale.month
            outcome = run_in_transaction(
                conn,
                url,
                job.domain,
                [stale.month] if stale.facts else [],
                events=stale.events,
                rerun="fix the cause and run `cmdm backfill --stale` again",
            )
            if outcome.error is not None:
                error = outcome.error
                raise BackfillError(f"{where()}: {error.message}", hint=error.hint)
            job.ran.append(MonthRun(stale.month, outcome.runs))
            if on_month is not None:
                on_month(job.ran[-1])
    except KeyboardInterrupt:
        raise BackfillError(
            f"{where()}: interrupted", hint="run `cmdm backfill --stale` again to go on"
        ) from None
    job.finished = True
    return job
