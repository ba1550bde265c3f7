"""The oracle's monthly snapshots (tests/py/oracle.py, through model.snapshots()) on
hand-made examples whose rows are written out by hand from docs/snapshots.md, DESIGN §4 and
the default statuses of rules/statuses.yml. No database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from model import (
    BusinessRow,
    Event,
    Fact,
    PlanRow,
    Rules,
    event_dependent_months,
    snapshots,
)

COMPANIES = {f"C{i}" for i in range(1, 9)}
#: No company is strategic by rank: only the threshold counts.
NO_TOP = Rules(whitelist_top_n=0)
CLOSE = Rules(whitelist_top_n=0, on_missing="close")
NAMES = {"PL201": "企年投资", "PL202": "企年受托"}
FLAGS = {"strategic", "existing", "new", "winning", "lost", "arrival", "churned"}


def d(text: str) -> date:
    return date.fromisoformat(text)


def fact(month: str, company, plan, line, aum, branch="B1", portfolio="F1") -> Fact:
    return Fact(d(month), company, plan, line, aum, branch, portfolio)


def ev(company, line, reported: str | None, plan="P1") -> Event:
    return Event(company, line, plan, None if reported is None else d(reported))


def b(month: str, pair: str, aum: str, plan_count: int, *flags: str) -> BusinessRow:
    """A business row; `flags` names the statuses that are true."""
    assert set(flags) <= FLAGS, flags
    company, line = pair.split("/")
    on = set(flags).__contains__
    return BusinessRow(
        d(month),
        company,
        line,
        NAMES[line],
        on("strategic"),
        on("existing"),
        on("new"),
        on("winning"),
        on("lost"),
        Decimal(aum),
        plan_count,
        on("arrival"),
        on("churned"),
    )


def p(month: str, key: str, aum: str, *flags: str) -> PlanRow:
    """A plan row; `flags` names the statuses that are true."""
    assert set(flags) <= FLAGS, flags
    company, plan, line = key.split("/")
    on = set(flags).__contains__
    return PlanRow(
        d(month),
        company,
        plan,
        line,
        NAMES[line],
        on("strategic"),
        on("existing"),
        on("new"),
        on("winning"),
        on("lost"),
        Decimal(aum),
        on("arrival"),
        on("churned"),
    )


def test_population_sums_plan_count_and_rejects() -> None:
    facts = [
        fact("2024-01-15", "C1", "P1", "PL201", 100, portfolio="F1"),
        fact("2024-01-15", "C1", "P1", "PL201", None, portfolio="F2"),  # NULL: ignored
        fact("2024-01-02", "C1", "P2", "PL201", Decimal("50.25")),
        fact("2024-01-31", "C1", "P2", "PL202", 0),
        fact("2024-01-01", "C2", "P1", "PL201", None),  # only NULL: a valid row, sum 0
        # rejects never count, not even for the pair of their company and product line
        fact("2024-01-01", "C1", None, "PL201", 1000),
        fact("2024-01-01", "C9", "P1", "PL201", 1000),
        fact("2024-01-01", "C1", "P1", "PL999", 1000),
    ]
    # R(2024) = 2024-01: existing (C1, PL201) = 150.25 > 0 only.
    business, plans = snapshots(facts, COMPANIES, rules=NO_TOP)
    m = "2024-01-31"
    assert business == [
        b(m, "C1/PL201", "150.25", 2, "existing", "arrival"),
        b(m, "C1/PL202", "0", 1, "arrival", "churned"),  # AUM 0 <= 0
        b(m, "C2/PL201", "0", 1, "arrival", "churned"),  # rows without AUM: present
    ]
    assert plans == [
        p(m, "C1/P1/PL201", "100", "existing", "arrival"),
        p(m, "C1/P2/PL201", "50.25", "existing", "arrival"),
        p(m, "C1/P2/PL202", "0", "arrival", "churned"),
        p(m, "C2/P1/PL201", "0", "arrival", "churned"),
    ]


def gaps() -> list[Fact]:
    """C1/P1/PL201 is absent from February; March holds only a rejected row; April is not
    loaded; C2/P1/PL202 appears in February only."""
    return [
        fact("2024-01-10", "C1", "P1", "PL201", 100),
        fact("2024-01-10", "C1", "P2", "PL201", 10),
        fact("2024-02-10", "C1", "P2", "PL201", 20),
        fact("2024-02-10", "C2", "P1", "PL202", 7),
        fact("2024-03-10", "C1", None, "PL201", 5),
        fact("2024-05-10", "C1", "P1", "PL201", 30),
    ]


def test_suspend_keeps_absent_keys_in_the_population() -> None:
    business, plans = snapshots(gaps(), COMPANIES, rules=NO_TOP)
    # R(2024) = 2024-01: (C1, PL201) exists, (C2, PL202) does not.
    assert business == [
        b("2024-01-31", "C1/PL201", "110", 2, "existing", "arrival"),
        # P1 is suspended but still counts; the pair is present through P2
        b("2024-02-29", "C1/PL201", "20", 2, "existing"),
        b("2024-02-29", "C2/PL202", "7", 1, "arrival"),
        # March: no valid row at all; both pairs disappeared since February
        b("2024-03-31", "C1/PL201", "0", 2, "existing", "churned"),
        b("2024-03-31", "C2/PL202", "0", 1, "churned"),
        # April is not loaded: no rows. May: C1/PL201 back, not a new arrival
        b("2024-05-31", "C1/PL201", "30", 2, "existing"),
        # not disappeared (none in March either), but its AUM is 0
        b("2024-05-31", "C2/PL202", "0", 1, "churned"),
    ]
    feb = [r for r in plans if r.snapshot_month == d("2024-02-29")]
    assert feb == [
        # P1 disappeared while its pair goes on: churned on its own row (DESIGN §4)
        p("2024-02-29", "C1/P1/PL201", "0", "existing", "churned"),
        p("2024-02-29", "C1/P2/PL201", "20", "existing"),
        p("2024-02-29", "C2/P1/PL202", "7", "arrival"),
    ]
    assert snapshots(gaps(), COMPANIES, rules=NO_TOP, months=[d("2024-04-15")]) == ([], [])


def test_close_drops_absent_keys_from_the_population() -> None:
    business, plans = snapshots(gaps(), COMPANIES, rules=CLOSE)
    assert business == [
        b("2024-01-31", "C1/PL201", "110", 2, "existing", "arrival"),
        b("2024-02-29", "C1/PL201", "20", 1, "existing"),
        b("2024-02-29", "C2/PL202", "7", 1, "arrival"),
        # March is loaded but nobody has a version covering it
        b("2024-05-31", "C1/PL201", "30", 1, "existing"),
    ]
    assert [(r.snapshot_month, r.plan_code, r.aum_balance) for r in plans] == [
        (d("2024-01-31"), "P1", 100),
        (d("2024-01-31"), "P2", 10),
        (d("2024-02-29"), "P2", 20),
        (d("2024-02-29"), "P1", 7),  # C2's
        (d("2024-05-31"), "P1", 30),
    ]


def events_facts() -> list[Fact]:
    return [
        fact("2023-12-05", "C1", "P1", "PL201", 100),
        fact("2024-03-05", "C1", "P1", "PL201", 100),
        fact("2024-03-05", "C1", "P2", "PL202", 50),
        fact("2024-03-05", "C2", "P1", "PL201", 40),
        fact("2025-01-05", "C1", "P1", "PL201", 1),
    ]


AWARDS = [
    ev("C1", "PL201", "2023-12-31"),  # counts in December 2023 only
    ev("C1", "PL201", "2024-03-31", plan="P9"),  # on the month-end; plan code ignored
    ev("C1", "PL202", "2024-01-01"),  # January 1
    ev("C2", "PL201", "2024-04-01"),  # after March: not yet in March's snapshot
    ev("C2", "PL201", None),  # never
    ev("C1", None, "2024-02-01"),  # never (no product line)
    ev("C3", "PL201", "2024-02-01"),  # no facts: no row
]
LOSSES = [
    ev("C1", "PL202", "2024-03-15"),
    ev("C1", "PL201", "2025-01-31"),
]


def test_events_count_in_the_calendar_year_up_to_the_month_end() -> None:
    business, plans = snapshots(events_facts(), COMPANIES, AWARDS, LOSSES, NO_TOP)
    # R(2023) = 2023-12 and R(2024) = 2023-12: existing (C1, PL201) only.
    # R(2025) = 2024-03: existing (C1, PL201), (C1, PL202), (C2, PL201).
    assert business == [
        b("2023-12-31", "C1/PL201", "100", 1, "existing", "winning", "arrival"),
        b("2024-03-31", "C1/PL201", "100", 1, "existing", "winning"),
        # won this year where it held nothing at the reference month: new
        b("2024-03-31", "C1/PL202", "50", 1, "winning", "new", "lost", "arrival"),
        b("2024-03-31", "C2/PL201", "40", 1, "arrival"),
        b("2025-01-31", "C1/PL201", "1", 1, "existing", "lost"),
        b("2025-01-31", "C1/PL202", "0", 1, "existing", "churned"),
        b("2025-01-31", "C2/PL201", "0", 1, "existing", "churned"),
    ]
    march = [r for r in plans if r.snapshot_month == d("2024-03-31")]
    assert march == [
        p("2024-03-31", "C1/P1/PL201", "100", "existing", "winning"),
        p("2024-03-31", "C1/P2/PL202", "50", "winning", "new", "lost", "arrival"),
        p("2024-03-31", "C2/P1/PL201", "40", "arrival"),
    ]


def test_strategic_and_existing_on_both_tables() -> None:
    top1 = Rules(strategic_threshold=600, whitelist_top_n=1)
    facts = [
        # C1: 400 + 200 = 600 >= threshold, through both product lines
        fact("2024-01-01", "C1", "P1", "PL201", 400, branch="B1"),
        fact("2024-01-01", "C1", "P2", "PL202", 200, branch="B1"),
        # C2: largest of branch B2 (top 1), 0 in PL202 (not existing there)
        fact("2024-01-01", "C2", "P1", "PL201", 5, branch="B2"),
        fact("2024-01-01", "C2", "P2", "PL202", 0, branch="B2"),
        # C3: neither (second of B2)
        fact("2024-01-01", "C3", "P1", "PL201", 3, branch="B2"),
    ]
    business, plans = snapshots(facts, COMPANIES, rules=top1)
    m = "2024-01-31"
    assert business == [
        b(m, "C1/PL201", "400", 1, "strategic", "existing", "arrival"),
        b(m, "C1/PL202", "200", 1, "strategic", "existing", "arrival"),
        b(m, "C2/PL201", "5", 1, "strategic", "existing", "arrival"),
        b(m, "C2/PL202", "0", 1, "strategic", "arrival", "churned"),
        b(m, "C3/PL201", "3", 1, "existing", "arrival"),
    ]
    assert [(r.company_id, r.product_line_code, r.is_strategic, r.is_existing) for r in plans] == [
        ("C1", "PL201", True, True),
        ("C1", "PL202", True, True),
        ("C2", "PL201", True, True),
        ("C2", "PL202", True, False),
        ("C3", "PL201", False, True),
    ]


def test_negative_month_aum_churns() -> None:
    facts = [
        fact("2024-01-01", "C1", "P1", "PL201", -5, portfolio="F1"),
        fact("2024-01-01", "C1", "P1", "PL201", 3, portfolio="F2"),
        fact("2024-01-01", "C1", "P2", "PL201", 1),
    ]
    business, plans = snapshots(facts, COMPANIES, rules=NO_TOP)
    # the pair's SUM is -1 <= 0: churned; -2 + 1 on the plans: each row speaks for its own
    # key (DESIGN §4), so P1 (-2) is churned and P2 (1) is not
    assert business == [b("2024-01-31", "C1/PL201", "-1", 2, "arrival", "churned")]
    assert [r.aum_balance for r in plans] == [Decimal("-2.00"), Decimal("1.00")]
    assert [r.is_churned for r in plans] == [True, False]


def test_an_old_month_is_evaluated_as_of_itself() -> None:
    facts = [fact(f"2024-{m:02d}-01", "C1", "P1", "PL201", 10) for m in (2, 3)]
    feb = [d("2024-02-20")]
    before = snapshots(facts, COMPANIES, rules=NO_TOP, months=feb)
    assert before[0] == [b("2024-02-29", "C1/PL201", "10", 1, "existing", "arrival")]
    # later facts and events reported after February (or in another year) change nothing
    later_facts = [*facts, fact("2024-04-01", "C1", "P1", "PL201", 0)]
    later_events = [ev("C1", "PL201", "2024-03-01"), ev("C1", "PL201", "2023-06-01")]
    assert (
        snapshots(later_facts, COMPANIES, later_events, later_events, NO_TOP, months=feb) == before
    )
    # an earlier month loaded later moves the first appearance away from February
    earlier = [*facts, fact("2024-01-01", "C1", "P1", "PL201", 10)]
    assert snapshots(earlier, COMPANIES, rules=NO_TOP, months=feb)[0] == [
        b("2024-02-29", "C1/PL201", "10", 1, "existing")
    ]


def test_event_dependent_months_run_through_december() -> None:
    loaded = [d("2023-11-30"), d("2023-12-31"), d("2024-01-31"), d("2024-03-31")]
    assert event_dependent_months(loaded, d("2023-11-30")) == loaded[:2]
    assert event_dependent_months(loaded, d("2023-12-05")) == [d("2023-12-31")]
    assert event_dependent_months(loaded, d("2024-02-15")) == [d("2024-03-31")]
    assert event_dependent_months(loaded, d("2024-04-01")) == []
    assert event_dependent_months(loaded, d("2022-05-01")) == []
