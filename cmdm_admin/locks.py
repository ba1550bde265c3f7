"""What a migration waited for when it gave up on a lock, for the one line that says so.

Migrations run under `lock_timeout` (cmdm_admin/migrations/env.py), so a deploy queued
behind a long ETL transaction fails after a few seconds instead of stalling every query on
the table behind it. PostgreSQL's error only says "canceling statement due to lock
timeout": not which lock, on what, held by whom; and once it is raised the backend waits no
more, so pg_locks cannot be asked afterwards. So while a migration runs, a `LockWatch`
polls pg_locks from a second connection for the migration backend's ungranted lock and the
sessions blocking it (`pg_blocking_pids`), several times per lock_timeout, and keeps the
latest sighting; the error message is made from it (`migrate._run`).

The watch only reads pg_locks and pg_stat_activity (no table is locked) and never makes a
migration fail: when it cannot connect or a poll fails, the message just names less.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psycopg

#: pg_locks' mode names as LOCK TABLE and the documentation spell them.
MODES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
APPLICATION_NAME = "cmdm lock watch"
#: Polls per lock_timeout, so that a wait lasting the whole timeout is seen several times,
#: within these bounds (seconds).
POLLS_PER_TIMEOUT = 5
MIN_INTERVAL, MAX_INTERVAL = 0.02, 0.5

# search_path = pg_catalog in the watch's session: regclass prints every name with its schema.
_WAITING_SQL = """
SELECT l.locktype, l.mode,
       CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END,
       l.transactionid::text,
       pg_blocking_pids(l.pid)
  FROM pg_locks l
 WHERE l.pid = %(pid)s AND NOT l.granted
 LIMIT 1
"""
_BLOCKERS_SQL = """
SELECT a.pid, a.application_name, a.usename, a.state,
       extract(epoch FROM now() - a.xact_start)::int
  FROM pg_stat_activity a
 WHERE a.pid = ANY(%(pids)s)
 ORDER BY a.xact_start NULLS LAST, a.pid
"""


@dataclass(frozen=True)
class Blocker:
    """A session holding (or queued before us for) the lock; what pg_stat_activity shows
    of it (application_name and state are NULL for another role's session unless the
    watching role may see them: pg_read_all_stats)."""

    pid: int
    application_name: str | None = None
    user: str | None = None
    state: str | None = None
    transaction_seconds: int | None = None

    def describe(self) -> str:
        details = []
        if self.application_name:
            details.append(f"application_name '{self.application_name}'")
        if self.user:
            details.append(f"user {self.user}")
        if self.state:
            details.append(self.state)
        if self.transaction_seconds is not None:
            details.append(f"transaction open {self.transaction_seconds} s")
        return f"pid {self.pid}" + (f" ({', '.join(details)})" if details else "")


@dataclass(frozen=True)
class LockWait:
    """One sighting of the migration backend waiting for a lock."""

    locktype: str
    mode: str
    relation: str | None = None
    transaction: str | None = None
    blockers: tuple[Blocker, ...] = field(default_factory=tuple)

    def target(self) -> str:
        """What the lock is on, in words."""
        mode = MODES.get(self.mode, self.mode)
        a = "an" if mode[:1] in "AEIOU" else "a"
        if self.locktype == "relation" and self.relation:
            return f"{a} {mode} lock on {self.relation}"
        if self.locktype == "advisory":
            return "the advisory lock of another cmdm migration or deploy (they run one at a time)"
        if self.locktype == "transactionid":
            return f"a row another transaction ({self.transaction}) changed or locked"
        if self.locktype == "tuple" and self.relation:
            return f"a row of {self.relation}"
        return f"{a} {mode} lock ({self.locktype})"

    def describe(self) -> str:
        """e.g. `a SHARE ROW EXCLUSIVE lock on business."规模明细", held by pid 42 (...)`."""
        if not self.blockers:
            return self.target()
        more = len(self.blockers) - 1
        others = f" and {more} other session{'s' * (more != 1)}" if more else ""
        return f"{self.target()}, held by {self.blockers[0].describe()}{others}"


class LockWatch:
    """Polls, from its own connection, what backend `pid` waits for (see the module doc).

    Used as a context manager around the migration; `latest` is the last sighting (kept
    after the wait ends: the poll right after the timeout would otherwise erase it)."""

    def __init__(self, url: str, pid: int, timeout_ms: int) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.pid = pid
        self.interval = min(max(timeout_ms / 1000 / POLLS_PER_TIMEOUT, MIN_INTERVAL), MAX_INTERVAL)
        self.latest: LockWait | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cmdm-lock-watch", daemon=True)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=5,
                application_name=APPLICATION_NAME,
                options="-c search_path=pg_catalog -c statement_timeout=2000",
            )
        except psycopg.Error:
            return  # the message will name less; the migration goes on regardless
        with conn:
            while not self._stop.wait(self.interval):
                try:
                    seen = self.observe(conn)
                except psycopg.Error:
                    return
                if seen is not None:
                    self.latest = seen

    def observe(self, conn: psycopg.Connection) -> LockWait | None:
        row = conn.execute(_WAITING_SQL, {"pid": self.pid}).fetchone()
        if row is None:
            return None
        locktype, mode, relation, transaction, blocking = row
        blockers = ()
        if blocking:
            rows = conn.execute(_BLOCKERS_SQL, {"pids": list(blocking)}).fetchall()
            blockers = tuple(Blocker(*r) for r in rows) or tuple(Blocker(p) for p in blocking)
        return LockWait(locktype, mode, relation, transaction, blockers)


class NoWatch:
    """Stands in for a LockWatch when lock_timeout is off (0): nothing can time out."""

    latest: LockWait | None = None

    def __enter__(self) -> NoWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


def watch_locks(url: str, pid: int, timeout_ms: int) -> LockWatch | NoWatch:
    return LockWatch(url, pid, timeout_ms) if timeout_ms > 0 else NoWatch()


def is_lock_timeout(exc: BaseException | None) -> bool:
    """True when `exc` or an error it was raised from (`raise ... from`, SQLAlchemy's
    `.orig`, or an error raised while handling one) is PostgreSQL's lock timeout (55P03)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return True
        orig = getattr(exc, "orig", None)
        if isinstance(orig, psycopg.errors.LockNotAvailable):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
