"""The oracle's contract history (tests/py/oracle.py, through model.history()) on hand-made
examples whose versions are written out by hand from DESIGN §4. No database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from model import (
    END_OF_TIME,
    Fact,
    Reject,
    Rules,
    Version,
    history,
    loaded_months,
    rejects,
)

COMPANIES = {f"C{i}" for i in range(1, 9)}
N, S = "正常", "停缴"
#: No company is strategic by rank: only the threshold counts.
NO_TOP = Rules(whitelist_top_n=0)
E = END_OF_TIME


def d(text: str) -> date:
    return date.fromisoformat(text)


def fact(month: str, company, plan, line, aum, branch="B1", portfolio="F1") -> Fact:
    return Fact(d(month), company, plan, line, aum, branch, portfolio)


def v(key: str, valid_from: str, valid_to: str | date, status: str, year: int, strat, exist):
    company, plan, line = key.split("/")
    to = valid_to if isinstance(valid_to, date) else d(valid_to)
    return Version(company, plan, line, d(valid_from), to, status, year, strat, exist)


def test_month_aum_is_the_sum_over_portfolios_and_status_flips_and_back() -> None:
    facts = [
        # January: 100 + 0 > 0 (a portfolio at zero AUM does not matter)
        fact("2024-01-15", "C1", "P1", "PL201", 100, portfolio="F1"),
        fact("2024-01-15", "C1", "P1", "PL201", 0, portfolio="F2"),
        # February: 0 + 0: suspended
        fact("2024-02-01", "C1", "P1", "PL201", 0, portfolio="F1"),
        fact("2024-02-29", "C1", "P1", "PL201", 0, portfolio="F2"),
        # March: -5 + 10 > 0: active again
        fact("2024-03-31", "C1", "P1", "PL201", -5, portfolio="F1"),
        fact("2024-03-02", "C1", "P1", "PL201", 10, portfolio="F2"),
        # a key whose portfolios are all at zero: suspended from the start, not existing
        fact("2024-01-01", "C1", "P2", "PL202", 0, portfolio="F3"),
        fact("2024-01-01", "C1", "P2", "PL202", 0, portfolio="F4"),
    ]
    assert loaded_months(facts) == [d("2024-01-31"), d("2024-02-29"), d("2024-03-31")]
    # R(2024) = 2024-01 (nothing loaded before 2024): C1 total 100, (C1, PL201) = 100 > 0.
    assert history(facts, COMPANIES, NO_TOP) == [
        v("C1/P1/PL201", "2024-01-31", "2024-02-29", N, 2024, False, True),
        v("C1/P1/PL201", "2024-02-29", "2024-03-31", S, 2024, False, True),
        v("C1/P1/PL201", "2024-03-31", E, N, 2024, False, True),
        v("C1/P2/PL202", "2024-01-31", E, S, 2024, False, False),
    ]


def test_equal_states_over_consecutive_loaded_months_are_one_version() -> None:
    facts = [fact(f"2024-{m:02d}-10", "C1", "P1", "PL201", 7) for m in (1, 2, 4, 7)]
    # 2024-03 is not loaded: no gap in the history, the version just runs on.
    assert history(facts, COMPANIES, NO_TOP) == [
        v("C1/P1/PL201", "2024-01-31", E, N, 2024, False, True),
    ]


def disappearing() -> list[Fact]:
    """C1/P1/PL201 is absent from February and April; C2/P1/PL201 keeps every month loaded;
    C2/P2/PL202 first appears in March."""
    facts = [
        fact(f"2024-{m:02d}-01", "C2", "P1", "PL201", 50, portfolio="F9") for m in (1, 2, 3, 4)
    ]
    facts += [fact(f"2024-{m:02d}-01", "C1", "P1", "PL201", 100) for m in (1, 3)]
    facts += [fact("2024-03-20", "C2", "P2", "PL202", 30)]
    return facts


def test_suspend_a_missing_key_is_suspended_and_reappears_in_a_new_version() -> None:
    # R(2024) = 2024-01: (C1, PL201) 100, (C2, PL201) 50 exist; (C2, PL202) does not.
    assert history(disappearing(), COMPANIES, NO_TOP) == [
        v("C1/P1/PL201", "2024-01-31", "2024-02-29", N, 2024, False, True),
        v("C1/P1/PL201", "2024-02-29", "2024-03-31", S, 2024, False, True),
        v("C1/P1/PL201", "2024-03-31", "2024-04-30", N, 2024, False, True),
        v("C1/P1/PL201", "2024-04-30", E, S, 2024, False, True),
        v("C2/P1/PL201", "2024-01-31", E, N, 2024, False, True),
        # no state before its first appearance, suspended after it
        v("C2/P2/PL202", "2024-03-31", "2024-04-30", N, 2024, False, False),
        v("C2/P2/PL202", "2024-04-30", E, S, 2024, False, False),
    ]


def test_close_a_missing_key_ends_its_version_and_reappears_in_a_new_one() -> None:
    assert history(disappearing(), COMPANIES, Rules(whitelist_top_n=0, on_missing="close")) == [
        v("C1/P1/PL201", "2024-01-31", "2024-02-29", N, 2024, False, True),
        v("C1/P1/PL201", "2024-03-31", "2024-04-30", N, 2024, False, True),
        v("C2/P1/PL201", "2024-01-31", E, N, 2024, False, True),
        v("C2/P2/PL202", "2024-03-31", "2024-04-30", N, 2024, False, False),
    ]


def test_a_month_with_only_rejected_rows_is_loaded() -> None:
    facts = [
        fact("2024-01-05", "C1", "P1", "PL201", 10),
        fact("2024-02-05", "C1", None, "PL201", 10),  # null_key: February is loaded
        fact("2024-03-05", "C1", "P1", "PL201", 10),
    ]
    assert history(facts, COMPANIES, NO_TOP) == [
        v("C1/P1/PL201", "2024-01-31", "2024-02-29", N, 2024, False, True),
        v("C1/P1/PL201", "2024-02-29", "2024-03-31", S, 2024, False, True),
        v("C1/P1/PL201", "2024-03-31", E, N, 2024, False, True),
    ]
    assert history(facts, COMPANIES, Rules(whitelist_top_n=0, on_missing="close")) == [
        v("C1/P1/PL201", "2024-01-31", "2024-02-29", N, 2024, False, True),
        v("C1/P1/PL201", "2024-03-31", E, N, 2024, False, True),
    ]


def test_year_boundary_opens_a_version_and_flags_are_re_evaluated() -> None:
    facts = [
        fact("2023-11-30", "C1", "P1", "PL201", 0),
        fact("2023-12-01", "C1", "P1", "PL201", 800_000_000),
        fact("2024-01-01", "C1", "P1", "PL201", 800_000_000),
        fact("2024-02-01", "C1", "P1", "PL201", 800_000_000),
    ]
    # R(2023) = 2023-11 (first loaded month of 2023): C1 total 0, not strategic, not existing.
    # R(2024) = 2023-12 (last loaded month before 2024): 8e8 >= 5e8, and 8e8 > 0.
    assert history(facts, COMPANIES, NO_TOP) == [
        v("C1/P1/PL201", "2023-11-30", "2023-12-31", S, 2023, False, False),
        v("C1/P1/PL201", "2023-12-31", "2024-01-31", N, 2023, False, False),
        v("C1/P1/PL201", "2024-01-31", E, N, 2024, True, True),
    ]


def test_year_boundary_alone_opens_a_version() -> None:
    facts = [fact(m, "C1", "P1", "PL201", 5) for m in ("2023-12-01", "2024-01-01", "2024-06-01")]
    # R(2023) = 2023-12 and R(2024) = 2023-12: same flags, but status_year differs.
    assert history(facts, COMPANIES, NO_TOP) == [
        v("C1/P1/PL201", "2023-12-31", "2024-01-31", N, 2023, False, True),
        v("C1/P1/PL201", "2024-01-31", E, N, 2024, False, True),
    ]


def test_suspended_states_cross_a_year_boundary_in_their_own_years() -> None:
    facts = [
        fact("2023-11-01", "C1", "P1", "PL201", 5),
        fact("2023-12-01", "C2", "P1", "PL201", 5),
        fact("2024-01-01", "C2", "P1", "PL201", 5),
    ]
    # R(2023) = 2023-11: C1 only. R(2024) = 2023-12: C2 only, (C1, PL201) no longer exists.
    assert history(facts, COMPANIES, NO_TOP) == [
        v("C1/P1/PL201", "2023-11-30", "2023-12-31", N, 2023, False, True),
        v("C1/P1/PL201", "2023-12-31", "2024-01-31", S, 2023, False, True),
        v("C1/P1/PL201", "2024-01-31", E, S, 2024, False, False),
        v("C2/P1/PL201", "2023-12-31", "2024-01-31", N, 2023, False, False),
        v("C2/P1/PL201", "2024-01-31", E, N, 2024, False, True),
    ]


def test_strategic_by_threshold_over_the_company_total() -> None:
    facts = [
        # C1: 3e8 + 2e8 over two keys and two branches = 5e8 >= threshold
        fact("2024-06-01", "C1", "P1", "PL201", 300_000_000, branch="B1"),
        fact("2024-06-01", "C1", "P2", "PL202", 200_000_000, branch="B2"),
        # C2: just below
        fact("2024-06-01", "C2", "P1", "PL201", Decimal("499999999.99")),
        # C3: one key above, another key below zero: the total counts
        fact("2024-06-01", "C3", "P1", "PL201", 600_000_000),
        fact("2024-06-01", "C3", "P1", "PL202", -200_000_000),
    ]
    assert history(facts, COMPANIES, NO_TOP) == [
        v("C1/P1/PL201", "2024-06-30", E, N, 2024, True, True),
        v("C1/P2/PL202", "2024-06-30", E, N, 2024, True, True),
        v("C2/P1/PL201", "2024-06-30", E, N, 2024, False, True),
        v("C3/P1/PL201", "2024-06-30", E, N, 2024, False, True),
        v("C3/P1/PL202", "2024-06-30", E, S, 2024, False, False),
    ]


def test_strategic_by_top_n_of_the_branch_with_ties() -> None:
    top2 = Rules(strategic_threshold=10**12, whitelist_top_n=2)
    facts = [
        # B1: C1 300, C2 200, C3 200 (split over two portfolios), C4 100: ranks 1, 2, 2, 4
        fact("2024-01-01", "C1", "P1", "PL201", 300),
        fact("2024-01-01", "C2", "P1", "PL201", 200),
        fact("2024-01-01", "C3", "P1", "PL201", 150, portfolio="F1"),
        fact("2024-01-01", "C3", "P1", "PL201", 50, portfolio="F2"),
        fact("2024-01-01", "C4", "P1", "PL201", 100),
        # a NULL branch is no branch (oracle reading R10): C5, C6, C7 rank nowhere
        fact("2024-01-01", "C5", "P1", "PL201", 10, branch=None),
        fact("2024-01-01", "C6", "P1", "PL201", 5, branch=None),
        fact("2024-01-01", "C7", "P1", "PL201", 1, branch=None),
    ]
    expected = {
        "C1": True,
        "C2": True,
        "C3": True,
        "C4": False,
        "C5": False,
        "C6": False,
        "C7": False,
    }
    assert history(facts, COMPANIES, top2) == [
        v(f"{c}/P1/PL201", "2024-01-31", E, N, 2024, s, True) for c, s in expected.items()
    ]
    # C4 is the largest of branch B2 through another pair: any pair ranked <= N counts.
    facts.append(fact("2024-01-01", "C4", "P9", "PL205", 1, branch="B2"))
    got = {(x.company_id, x.plan_code): x.is_strategic for x in history(facts, COMPANIES, top2)}
    assert got[("C4", "P1")] is True and got[("C4", "P9")] is True
    assert got[("C7", "P1")] is False


def test_is_existing_is_per_company_and_product_line_at_the_reference_month() -> None:
    facts = [
        fact("2024-01-01", "C1", "P1", "PL201", 100),
        fact("2024-01-01", "C1", "P1", "PL202", 0),
        # later keys: (C1, PL201) existed at R through P1; (C1, PL203) did not
        fact("2024-02-01", "C1", "P2", "PL201", 0),
        fact("2024-02-01", "C1", "P2", "PL203", 40),
    ]
    assert history(facts, COMPANIES, NO_TOP) == [
        # P1 keys are absent in February: suspended there (suspend is the default)
        v("C1/P1/PL201", "2024-01-31", "2024-02-29", N, 2024, False, True),
        v("C1/P1/PL201", "2024-02-29", E, S, 2024, False, True),
        v("C1/P1/PL202", "2024-01-31", E, S, 2024, False, False),
        v("C1/P2/PL201", "2024-02-29", E, S, 2024, False, True),
        v("C1/P2/PL203", "2024-02-29", E, N, 2024, False, False),
    ]


def test_a_reference_month_with_only_rejects_gives_false_flags() -> None:
    facts = [
        fact("2023-12-01", "CX", "P1", "PL201", 900_000_000),  # unknown company
        fact("2024-01-01", "C1", "P1", "PL201", 900_000_000),
    ]
    # R(2024) = 2023-12, loaded, but without a valid row
    assert history(facts, COMPANIES, Rules()) == [
        v("C1/P1/PL201", "2024-01-31", E, N, 2024, False, False),
    ]


@pytest.mark.parametrize(
    ("company", "plan", "line", "reason"),
    [
        (None, "P1", "PL201", "null_key"),
        ("C1", None, "PL201", "null_key"),
        ("C1", "P1", None, "null_key"),
        (None, None, "PL999", "null_key"),
        ("CX", "P1", "PL999", "unknown_product_line"),
        ("C1", "P1", "PL999", "unknown_product_line"),
        ("CX", "P1", "PL201", "unknown_company"),
        ("C1", "P1", "PL201", None),
    ],
)
def test_rejects_reason_order(company, plan, line, reason) -> None:
    row = fact("2024-02-10", company, plan, line, 12, portfolio="F7")
    expected = (
        [] if reason is None else [Reject(d("2024-02-29"), reason, company, plan, line, "F7", 12)]
    )
    assert rejects([row], COMPANIES) == expected
    assert history([row], COMPANIES) == (
        [v("C1/P1/PL201", "2024-02-29", E, N, 2024, True, True)] if reason is None else []
    )
