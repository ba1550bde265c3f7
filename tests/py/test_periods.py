"""Period parsing: the three accepted spellings, and one clear error for anything else."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmdm_admin.errors import PeriodError
from cmdm_admin.periods import month_end, parse_period


@pytest.mark.parametrize("text", ["2026-01", "202601", "2026-01-31", "2026-01-01", " 2026-01 "])
def test_accepted_spellings_name_the_month(text: str) -> None:
    assert parse_period(text) == date(2026, 1, 1)


@pytest.mark.parametrize(
    "text",
    [
        "2026-13",
        "202600",
        "2026-02-30",
        "26-01",
        "2026/01",
        "January 2026",
        "",
        "1899-12",
        "2201-01",
        "2026-1",
        "20260131",
    ],
)
def test_everything_else_is_one_clear_error(text: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(text)
    assert caught.value.message == f"'{text}' is not a month"
    assert "2026-01, 202601 or 2026-01-31" in caught.value.hint


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)))
def test_any_day_names_its_month(day: date) -> None:
    assert parse_period(day.isoformat()) == day.replace(day=1)
    assert parse_period(f"{day.year:04d}{day.month:02d}") == day.replace(day=1)
    assert month_end(day).month == day.month and (month_end(day).day >= 28)


@given(st.text(max_size=20))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        parsed = parse_period(text)
    except PeriodError:
        return
    assert parsed.day == 1
