"""One error type for everything a user can act on.

A `CmdmError` is printed by the CLI as one red line (plus an optional hint) and exit code 1;
anything else is a bug and shows a traceback only with `--debug`.
"""

from __future__ import annotations


class CmdmError(Exception):
    """An error the user can fix: `message` says what is wrong, `hint` how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} ({self.hint})"


class ClusterError(CmdmError):
    """The embedded PostgreSQL cluster cannot be set up, started or stopped."""


class DatabaseError(CmdmError):
    """A database cannot be reached or refused a statement."""


class MigrationError(CmdmError):
    """A migration failed; the database is left as it was before it."""


class LockTimeoutError(MigrationError):
    """A migration gave up waiting for a lock (lock_timeout) and was rolled back."""


class InputContractError(MigrationError):
    """An ETL-owned input table lacks a column the rules need, or has an incompatible type."""


class PeriodError(CmdmError):
    """A period string is not a month in one of the accepted formats."""


class VerifyError(CmdmError):
    """`cmdm verify` cannot run the pgTAP suites, or refuses one that could persist changes."""
