"""`cmdm status`: what an operator checks first. The months whose outputs are behind their
facts (stale: changed while the hooks did not run, cmdm.stale_change), the deployed rules
and whether rules/ and sql/ drifted from them (the check of `cmdm deploy-rules --check`),
the hook domains, the last hook runs and the recent failures, rejected facts per month and
reason, and the backfills that did not finish. Read-only; every part is read even when
another fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cmdm_admin.backfill import months_between
from cmdm_admin.errors import CmdmError
from cmdm_admin.hooks import HookDomain, HookRun, list_domains, list_runs
from cmdm_admin.periods import label

LAST_RUNS = 10
FAILURES = 10

_DEPLOYED_SQL = """
SELECT revision, sha256, deployed_at, deployed_by FROM cmdm.rule_deployment
 ORDER BY deployment_id DESC LIMIT 1
"""

#: A failure is resolved when the same domain, month and step succeeded after it.
_FAILURES_SQL = """
SELECT r.hook_run_id,
       EXISTS (SELECT FROM cmdm.hook_run s
                WHERE s.domain = r.domain AND s.step = r.step
                  AND date_trunc('month', s.period) = date_trunc('month', r.period)
                  AND s.outcome = 'succeeded' AND s.hook_run_id > r.hook_run_id) AS resolved
  FROM cmdm.hook_run r
 WHERE r.outcome = 'failed'
 ORDER BY r.started_at DESC, r.hook_run_id DESC
 LIMIT %(limit)s
"""

_REJECTS_SQL = """
SELECT date_trunc('month', period)::date AS period, reason, count(*) AS rows
  FROM cmdm.rejected_fact
 GROUP BY 1, 2
 ORDER BY 1 DESC, 2
"""

#: Per domain and month: what changed there while the hooks did not run (facts, events),
#: why, in how many transactions, and since when.
_STALE_SQL = """
SELECT c.domain, date_trunc('month', c.period)::date AS month,
       array_agg(DISTINCT CASE c.kind WHEN 'facts' THEN 'facts' ELSE 'events' END) AS kinds,
       array_agg(DISTINCT c.reason) AS reasons,
       count(DISTINCT c.txid) AS transactions,
       min(c.changed_at) AS since,
       max(c.changed_at) AS last_change
  FROM cmdm.stale_change c
 GROUP BY 1, 2
 ORDER BY 1, 2
"""

_BACKFILLS_SQL = """
SELECT b.backfill_id, b.domain, b.from_period, b.to_period, b.started_at, b.started_by,
       (SELECT count(DISTINCT date_trunc('month', r.period)) FROM cmdm.hook_run r
         WHERE r.backfill_id = b.backfill_id AND r.step = 'contract_sync'
           AND r.outcome IN ('succeeded', 'skipped')) AS months_done
  FROM cmdm.backfill_run b
 WHERE b.finished_at IS NULL
 ORDER BY b.backfill_id
"""


@dataclass
class Drift:
    checked: bool
    in_sync: bool | None = None
    problems: list[str] = field(default_factory=list)
    #: Why it could not be checked.
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return vars(self).copy()


@dataclass
class Failed:
    run: HookRun
    resolved: bool

    def as_dict(self) -> dict[str, Any]:
        return self.run.as_dict() | {"resolved": self.resolved}


@dataclass
class Status:
    rules: dict[str, Any] | None
    drift: Drift
    domains: list[HookDomain]
    last_runs: list[HookRun]
    failures: list[Failed]
    rejects: list[dict[str, Any]]
    backfills: list[dict[str, Any]]
    #: Months changed since their last successful hook run; None: this database does not
    #: record them (not upgraded to schema 0011).
    stale_months: list[dict[str, Any]] | None = None

    @property
    def stale(self) -> bool:
        return bool(self.stale_months)

    def as_dict(self) -> dict[str, Any]:
        rules = self.rules
        if rules is not None:
            rules = rules | {"deployed_at": _iso(rules["deployed_at"])}
        return {
            "stale": self.stale,
            "stale_months": None
            if self.stale_months is None
            else [
                m
                | {
                    "month": label(m["month"]),
                    "since": _iso(m["since"]),
                    "last_change": _iso(m["last_change"]),
                }
                for m in self.stale_months
            ],
            "rules": rules,
            "drift": self.drift.as_dict(),
            "domains": [d.as_dict() for d in self.domains],
            "last_runs": [r.as_dict() for r in self.last_runs],
            "failures": [f.as_dict() for f in self.failures],
            "rejects": [r | {"period": label(r["period"])} for r in self.rejects],
            "backfills": [
                b
                | {
                    "from_period": label(b["from_period"]),
                    "to_period": label(b["to_period"]),
                    "started_at": _iso(b["started_at"]),
                }
                for b in self.backfills
            ],
        }


def _iso(value: datetime | date) -> str:
    return value.isoformat()


def drift(url: str) -> Drift:
    """`cmdm deploy-rules --check`, reported instead of raised."""
    from cmdm_admin import deploy

    try:
        result = deploy.check(deploy.prepare(url))
    except CmdmError as exc:
        return Drift(checked=False, error=exc.message.splitlines()[0])
    return Drift(checked=True, in_sync=result.in_sync, problems=list(result.problems))


def stale_months(conn: psycopg.Connection) -> list[dict[str, Any]] | None:
    """Per domain and month, what changed while the hooks did not run (kinds: facts,
    events; reasons: hooks_off, domain_disabled, upgrade); None when the database does not
    record it."""
    with conn.cursor(row_factory=dict_row) as cur:
        if cur.execute("SELECT to_regclass('cmdm.stale_change') IS NULL AS absent").fetchone()[
            "absent"
        ]:
            return None
        rows = cur.execute(_STALE_SQL).fetchall()
    for row in rows:
        row["kinds"], row["reasons"] = sorted(row["kinds"]), sorted(row["reasons"])
    return rows


def status(conn: psycopg.Connection, url: str) -> Status:
    with conn.cursor(row_factory=dict_row) as cur:
        rules = cur.execute(_DEPLOYED_SQL).fetchone()
        failed = cur.execute(_FAILURES_SQL, {"limit": FAILURES}).fetchall()
        rejects = cur.execute(_REJECTS_SQL).fetchall()
        backfills = cur.execute(_BACKFILLS_SQL).fetchall()
    for b in backfills:
        b["months_total"] = len(months_between(b["from_period"], b["to_period"]))
    runs = {r.hook_run_id: r for r in list_runs(conn, failed=True, limit=FAILURES)}
    return Status(
        rules=rules,
        drift=drift(url),
        domains=list_domains(conn),
        last_runs=list_runs(conn, limit=LAST_RUNS),
        failures=[Failed(runs[f["hook_run_id"]], f["resolved"]) for f in failed],
        rejects=rejects,
        backfills=backfills,
        stale_months=stale_months(conn),
    )
