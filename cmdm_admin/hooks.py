"""The post-ETL hooks from the command line (DESIGN §7).

    cmdm run-hooks      cmdm.run_hooks(domain, ARRAY[month], '{}', 'cli') in one transaction
    cmdm sync           customer.sync_contract_status(month) alone
    cmdm snapshot       customer.refresh_monthly_snapshot(month) alone
    cmdm hooks …        the registry (cmdm.hook_domain, cmdm.post_etl_hook) and the run log
                        (cmdm.hook_run)

A hook run that fails aborts its transaction, so the database logs nothing about it. The
CLI then writes the failure itself, in a new transaction: one `cmdm.hook_run` row with
outcome 'failed', the step and month parsed from the message cmdm.run_hooks raises
(`post-ETL hook <domain>: step <step> for period <YYYY-MM> failed: <cause>`), so that
`cmdm status` and `cmdm hooks runs --failed` show it. Refusals that ran nothing (an unknown
or disabled domain) are not logged.

Every database error becomes one `HookError` line; SQLSTATEs of class CM (docs/errors.md)
get a hint that names the cmdm command that fixes them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.range import Range

from cmdm_admin.db import connect, first_line
from cmdm_admin.errors import CmdmError
from cmdm_admin.periods import label, month_end

DEFAULT_DOMAIN = "annuity_performance"
#: The step a failure is logged under when its message names none (a lost connection).
UNKNOWN_STEP = "run_hooks"
#: Refusals before any work: nothing ran, so nothing is logged as a failed run.
NOT_LOGGED = frozenset({"CM003", "CM004"})

#: How cmdm.run_hooks' hint starts when the cause had none (it is written for the ETL).
_GENERIC_HINT = "Nothing was written"
_BEHIND = re.compile(r"(\d{4}-\d{2}) is loaded but was never synced")

_RUN_SQL = """
SELECT hook_run_id, period, step, outcome, counts, rejects, duration
  FROM cmdm.run_hooks(%(domain)s, %(periods)s::date[], %(events)s::date[], 'cli',
                      %(defer)s::daterange, %(backfill_id)s::bigint)
"""

_RECORD_SQL = """
INSERT INTO cmdm.hook_run (domain, period, step, trigger_kind, started_at, duration, outcome,
                           rules_sha256, error, backfill_id)
VALUES (%(domain)s, %(period)s, %(step)s, 'cli', %(started_at)s, %(duration)s, 'failed',
        (SELECT d.sha256 FROM cmdm.rule_deployment d ORDER BY d.deployment_id DESC LIMIT 1),
        %(error)s, %(backfill_id)s)
RETURNING hook_run_id
"""

_RUNS_SQL = """
SELECT r.hook_run_id, r.domain, r.period, r.step, r.trigger_kind, r.started_at, r.duration,
       r.outcome, r.counts, r.rejects, r.rules_sha256, r.error, r.run_by, r.backfill_id
  FROM cmdm.hook_run r
 WHERE (%(domain)s::text IS NULL OR r.domain = %(domain)s)
   AND (%(period)s::date IS NULL OR (r.period >= %(period)s::date
                                     AND r.period < (%(period)s::date + INTERVAL '1 month')))
   AND (NOT %(failed)s OR r.outcome = 'failed')
 ORDER BY r.started_at DESC, r.hook_run_id DESC
 LIMIT %(limit)s
"""


class HookError(CmdmError):
    """A hook run, sync or refresh failed or was refused; nothing of it was written."""


# --- results --------------------------------------------------------------------------------


def _ms(duration: timedelta | None) -> float | None:
    return None if duration is None else round(duration.total_seconds() * 1000, 1)


def duration_text(duration: timedelta | None) -> str:
    if duration is None:
        return "—"
    seconds = duration.total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def counts_text(step: str, counts: dict[str, Any], rejects: int = 0) -> str:
    """The counts of a step that say what it did, in a few words."""
    c = counts
    if step == "contract_sync" and "keys_seen" in c:
        text = (
            f"keys {c['keys_seen']} seen, {c['keys_changed']} changed; versions "
            f"+{c['versions_opened']} ~{c['versions_closed']} -{c['versions_removed']}"
            f" reflagged {c['versions_reflagged']}"
        )
        return text + (f"; {rejects} rejected" if rejects else "")
    if step == "snapshot_refresh" and "business_rows" in c:
        return (
            f"business {c['business_rows']} rows (+{c['business_inserted']} "
            f"~{c['business_updated']} -{c['business_deleted']}); plan {c['plan_rows']} rows "
            f"(+{c['plan_inserted']} ~{c['plan_updated']} -{c['plan_deleted']})"
        )
    return ", ".join(f"{k} {v}" for k, v in c.items() if not isinstance(v, list | dict))


@dataclass(frozen=True)
class StepRun:
    """One row cmdm.run_hooks returned: a step run for one month, as logged."""

    hook_run_id: int
    period: date  # first day of the month
    step: str
    outcome: str
    counts: dict[str, Any]
    rejects: int
    duration: timedelta | None

    @property
    def summary(self) -> str:
        return counts_text(self.step, self.counts, self.rejects)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hook_run_id": self.hook_run_id,
            "period": label(self.period),
            "step": self.step,
            "outcome": self.outcome,
            "counts": self.counts,
            "rejects": self.rejects,
            "duration_ms": _ms(self.duration),
        }


# --- errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """What failed: the step and month cmdm.run_hooks names in its error's DETAIL (a JSON
    object), else the period asked for and UNKNOWN_STEP (e.g. a lost connection)."""

    domain: str
    period: date
    step: str
    message: str
    sqlstate: str | None

    @classmethod
    def of(cls, exc: BaseException, domain: str, period: date) -> Failure:
        message = _message(exc)
        sqlstate = getattr(exc, "sqlstate", None)
        where = _failure_detail(exc)
        if where:
            year, month = (int(part) for part in where["period"].split("-"))
            return cls(domain, date(year, month, 1), where["step"], where["message"], sqlstate)
        return cls(domain, period, UNKNOWN_STEP, message, sqlstate)


def _failure_detail(exc: BaseException) -> dict[str, Any] | None:
    """cmdm.run_hooks' structured DETAIL (domain, step, period, message), when it is one."""
    diag = getattr(exc, "diag", None)
    detail = diag.message_detail if diag is not None else None
    if not detail or not detail.startswith("{"):
        return None
    try:
        found = json.loads(detail)
    except ValueError:
        return None
    keys = ("step", "period", "message")
    if not isinstance(found, dict) or not all(isinstance(found.get(k), str) for k in keys):
        return None
    return found


def _message(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return first_line(exc) if not primary else primary.strip().splitlines()[0]


def known_domains(url: str) -> list[str]:
    """The domains of cmdm.hook_domain, read in a connection of their own (the one that
    failed may be unusable); empty when they cannot be read."""
    try:
        with connect(url) as conn:
            return [r[0] for r in conn.execute("SELECT domain FROM cmdm.hook_domain ORDER BY 1")]
    except (psycopg.Error, CmdmError):
        return []


def hook_error(
    exc: psycopg.Error,
    url: str,
    domain: str,
    note: str | None = None,
    rerun: str = "fix the cause and run it again",
) -> HookError:
    """One line for a database error of a hook command: the database's message, and a hint
    by SQLSTATE (docs/errors.md), else the cause's own hint, else `rerun`; `note` (e.g.
    where the failure was logged) ends the hint."""
    message = _message(exc)
    state = exc.sqlstate
    db_hint = exc.diag.message_hint if exc.diag is not None else None
    if state == "CM003":
        known = known_domains(url)
        hint = f"known domains: {', '.join(known) or 'none'} (see `cmdm hooks list`)"
    elif state == "CM004":
        hint = f"enable it with `cmdm hooks enable {domain}`"
    elif state == "CM002":
        behind = _BEHIND.search(message)
        since = behind[1] if behind else "<that month>"
        hint = (
            f"sync the loaded months in order from {since}: `cmdm backfill --from {since} "
            "--to <last loaded month>` (or `cmdm rebuild` the range)"
        )
    elif state == "CM001":
        hint = "periods are months from 1900-01 to 2200-12"
    elif state == "CM005":
        hint = "run the hooks in a READ COMMITTED transaction (the default isolation)"
    elif db_hint and not db_hint.startswith(_GENERIC_HINT):
        hint = db_hint.strip().splitlines()[0].rstrip(".")
    elif _failure_detail(exc):
        hint = f"nothing was written (rolled back); {rerun}"
    else:
        hint = None
    if note:
        hint = f"{hint}; {note}" if hint else note
    return HookError(message, hint=hint)


def record_failure(
    url: str,
    failure: Failure,
    *,
    started_at: datetime,
    duration: timedelta,
    backfill_id: int | None = None,
) -> int:
    """Log a failed run in cmdm.hook_run, in a new connection and transaction of its own."""
    with connect(url) as conn:
        row = conn.execute(
            _RECORD_SQL,
            {
                "domain": failure.domain,
                "period": month_end(failure.period),  # as cmdm.run_hooks logs months
                "step": failure.step,
                "started_at": started_at,
                "duration": duration,
                "error": failure.message,
                "backfill_id": backfill_id,
            },
        ).fetchone()
        conn.commit()
    assert row is not None
    return row[0]


# --- running --------------------------------------------------------------------------------


def run_hooks(
    conn: psycopg.Connection,
    domain: str,
    periods: Sequence[date],
    *,
    defer: tuple[date, date] | None = None,
    backfill_id: int | None = None,
    events: Sequence[date] = (),
) -> list[StepRun]:
    """cmdm.run_hooks in the caller's transaction, trigger kind 'cli'. `defer` is the
    half-open range [first, after) of months not to refresh (a later step will); `events`
    the dates of changed events rows whose dependent months to refresh."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _RUN_SQL,
            {
                "domain": domain,
                "periods": list(periods),
                "events": list(events),
                "defer": Range(defer[0], defer[1], "[)") if defer else None,
                "backfill_id": backfill_id,
            },
        ).fetchall()
    return [StepRun(**row) for row in rows]


@dataclass
class Outcome:
    """A run in its own transaction: the step runs when it committed, else the failure and
    the hook_run row that logs it."""

    runs: list[StepRun] = field(default_factory=list)
    failure: Failure | None = None
    error: HookError | None = None
    failed_run_id: int | None = None


def run_in_transaction(
    conn: psycopg.Connection,
    url: str,
    domain: str,
    periods: Sequence[date],
    *,
    defer: tuple[date, date] | None = None,
    backfill_id: int | None = None,
    log_failure: bool = True,
    rerun: str = "fix the cause and run it again",
    events: Sequence[date] = (),
) -> Outcome:
    """run_hooks in one transaction of `conn`, committed on success. On a database error the
    transaction is rolled back and (unless `log_failure` is false or nothing ran) the
    failure is logged in a new transaction; the outcome carries the one-line error."""
    started_at, clock = datetime.now().astimezone(), time.monotonic()
    try:
        with conn.transaction():
            return Outcome(
                runs=run_hooks(
                    conn, domain, periods, defer=defer, backfill_id=backfill_id, events=events
                )
            )
    except psycopg.Error as exc:
        failure = Failure.of(exc, domain, periods[0] if periods else events[0])
        run_id, note = None, None
        if log_failure:
            run_id, note = log_failed_run(url, exc, failure, started_at, clock, backfill_id)
        return Outcome(
            failure=failure, error=hook_error(exc, url, domain, note, rerun), failed_run_id=run_id
        )


def log_failed_run(
    url: str,
    exc: psycopg.Error,
    failure: Failure,
    started_at: datetime,
    clock: float,
    backfill_id: int | None = None,
) -> tuple[int | None, str | None]:
    """Log a rolled-back run as failed, in a new transaction (a refusal such as an unknown
    or disabled domain ran nothing and is not logged). Returns the run id and a note for
    the error line."""
    if exc.sqlstate in NOT_LOGGED:
        return None, None
    try:
        run_id = record_failure(
            url,
            failure,
            started_at=started_at,
            duration=timedelta(seconds=time.monotonic() - clock),
            backfill_id=backfill_id,
        )
    except (psycopg.Error, CmdmError) as logging_failed:
        return None, f"the failure could not be logged: {first_line(logging_failed)}"
    return run_id, f"logged as failed hook run #{run_id} (`cmdm hooks runs --failed`)"


# --- one step alone -------------------------------------------------------------------------


def _one_row(
    conn: psycopg.Connection, url: str, what: str, function: str, period: date
) -> dict[str, Any]:
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"SELECT * FROM {function}(%s)", (month_end(period),)).fetchone()
    except psycopg.Error as exc:
        error = hook_error(exc, url, DEFAULT_DOMAIN)
        raise HookError(
            f"{what} of {label(period)} failed: {error.message}", hint=error.hint
        ) from exc
    assert row is not None
    return row


def sync_month(conn: psycopg.Connection, url: str, period: date) -> dict[str, Any]:
    """customer.sync_contract_status of one month, committed: its result row."""
    return _one_row(conn, url, "contract sync", "customer.sync_contract_status", period)


def refresh_month(conn: psycopg.Connection, url: str, period: date) -> dict[str, Any]:
    """customer.refresh_monthly_snapshot of one month, committed: its result row."""
    return _one_row(conn, url, "snapshot refresh", "customer.refresh_monthly_snapshot", period)


# --- the registry and the log ---------------------------------------------------------------


@dataclass(frozen=True)
class HookStep:
    step_order: int
    step: str
    enabled: bool
    description: str


@dataclass(frozen=True)
class HookDomain:
    domain: str
    enabled: bool
    description: str
    changed_at: datetime
    changed_by: str
    steps: list[HookStep] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "enabled": self.enabled,
            "description": self.description,
            "changed_at": self.changed_at.isoformat(),
            "changed_by": self.changed_by,
            "steps": [vars(s) for s in self.steps],
        }


def list_domains(conn: psycopg.Connection) -> list[HookDomain]:
    with conn.cursor(row_factory=dict_row) as cur:
        domains = cur.execute(
            "SELECT domain, enabled, description, changed_at, changed_by"
            " FROM cmdm.hook_domain ORDER BY domain"
        ).fetchall()
        steps = cur.execute(
            "SELECT domain, step_order, step, enabled, description"
            " FROM cmdm.post_etl_hook ORDER BY domain, step_order"
        ).fetchall()
    return [
        HookDomain(
            **d,
            steps=[
                HookStep(s["step_order"], s["step"], s["enabled"], s["description"])
                for s in steps
                if s["domain"] == d["domain"]
            ],
        )
        for d in domains
    ]


def set_domain(conn: psycopg.Connection, url: str, domain: str, enabled: bool) -> HookDomain:
    """cmdm.set_hook_domain, committed: the domain as it is now."""
    try:
        with conn.transaction():
            conn.execute("SELECT * FROM cmdm.set_hook_domain(%s, %s)", (domain, enabled))
    except psycopg.Error as exc:
        raise hook_error(exc, url, domain) from exc
    (found,) = [d for d in list_domains(conn) if d.domain == domain]
    return found


@dataclass(frozen=True)
class HookRun:
    """A row of cmdm.hook_run."""

    hook_run_id: int
    domain: str
    period: date
    step: str
    trigger_kind: str
    started_at: datetime
    duration: timedelta | None
    outcome: str
    counts: dict[str, Any]
    rejects: int
    rules_sha256: str | None
    error: str | None
    run_by: str
    backfill_id: int | None

    @property
    def summary(self) -> str:
        """The counts; for a failure its cause (the step and month are columns already)."""
        if self.error:
            return self.error
        return counts_text(self.step, self.counts, self.rejects)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "duration"}
        return out | {
            "period": label(self.period),
            "started_at": self.started_at.isoformat(),
            "duration_ms": _ms(self.duration),
        }


def list_runs(
    conn: psycopg.Connection,
    *,
    domain: str | None = None,
    period: date | None = None,
    failed: bool = False,
    limit: int = 20,
) -> list[HookRun]:
    """The log, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _RUNS_SQL, {"domain": domain, "period": period, "failed": failed, "limit": limit}
        ).fetchall()
    return [HookRun(**row) for row in rows]


def check_domain(conn: psycopg.Connection, domain: str) -> HookDomain:
    """The domain, when it exists and is enabled; else the one-line error run_hooks would
    give at its first month (checked first, so that nothing is started for it)."""
    domains = {d.domain: d for d in list_domains(conn)}
    found = domains.get(domain)
    if found is None:
        raise HookError(
            f"unknown post-ETL hook domain '{domain}'",
            hint=f"known domains: {', '.join(domains) or 'none'} (see `cmdm hooks list`)",
        )
    if not found.enabled:
        raise HookError(
            f"post-ETL hook domain '{domain}' is disabled",
            hint=f"enable it with `cmdm hooks enable {domain}`",
        )
    return found
