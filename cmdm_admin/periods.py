"""Periods: a month, named by any day in it. The CLI accepts `2026-01`, `202601` and
`2026-01-31`; the database functions take a date and store month-ends."""

from __future__ import annotations

import calendar
import re
from datetime import date

from cmdm_admin.errors import PeriodError

ACCEPTED = "2026-01, 202601 or 2026-01-31"
_FORMATS = (
    re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})", re.ASCII),
    re.compile(r"(?P<year>\d{4})(?P<month>\d{2})", re.ASCII),
    re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})", re.ASCII),
)
MIN_YEAR, MAX_YEAR = 1900, 2200


def parse_period(text: str) -> date:
    """The first day of the month `text` names; PeriodError for anything else."""
    for pattern in _FORMATS:
        match = pattern.fullmatch(text.strip())
        if not match:
            continue
        year, month = int(match["year"]), int(match["month"])
        day = int(match["day"]) if match.groupdict().get("day") else 1
        try:
            date(year, month, day)
        except ValueError:
            break
        if not MIN_YEAR <= year <= MAX_YEAR:
            break
        return date(year, month, 1)
    raise PeriodError(
        f"'{text}' is not a month", hint=f"use {ACCEPTED} (years {MIN_YEAR}-{MAX_YEAR})"
    )


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"
