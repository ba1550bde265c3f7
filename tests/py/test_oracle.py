"""Unit tests of the independent oracle (tests/py/oracle.py).

Every expected value below was worked out by hand from DESIGN.md §4 (and the Readings
R1..R24 at the top of oracle.py), not copied from the oracle's output. No database.
"""

from datetime import date
from decimal import Decimal as D

from oracle import (
    EventRow,
    FactRow,
    World,
    business_snapshot,
    contract_history,
    loaded_months,
    plan_snapshot,
    reference_months,
)

PL = {"PL201": "企年投资", "PL202": "企年受托", "PL203": "职年受托"}
OPEN = date(9999, 12, 31)
A, S = "正常", "停缴"
BIG = D(10) ** 15  # a threshold nobody reaches


def F(month, company, plan, pl, branch, aum):
    y, m = map(int, month.split("-"))
    return FactRow(date(y, m, 1), company, plan, pl, branch, None if aum is None else D(str(aum)))


def E(company, plan, pl, reported):
    return EventRow(company, plan, pl, reported)


def W(facts, companies=None, awards=(), losses=(), **kw):
    if companies is None:
        companies = {r.company_id for r in facts if r.company_id is not None}
    return World(
        facts=tuple(facts),
        awards=tuple(awards),
        losses=tuple(losses),
        companies=frozenset(companies),
        product_lines=dict(PL),
        **kw,
    )


def hist(world, company, plan, pl):
    """Versions of one key, sorted, without the key columns."""
    return sorted(r[3:] for r in contract_history(world) if r[:3] == (company, plan, pl))


def prow(world, month_end, company, plan, pl):
    rows = [r for r in plan_snapshot(world) if r[0] == month_end and r[1:4] == (company, plan, pl)]
    assert len(rows) <= 1
    return rows[0] if rows else None


def brow(world, month_end, company, pl):
    rows = [r for r in business_snapshot(world) if r[0] == month_end and r[1:3] == (company, pl)]
    assert len(rows) <= 1
    return rows[0] if rows else None


def strategic_in_history(world):
    return {r[0]: r[7] for r in contract_history(world)}


# ---------------------------------------------------------------- the strategic example

COMPANIES_10 = [f"C{i:02d}" for i in range(1, 11)]


def strategic_facts():
    facts = [
        F("2025-01", c, f"P{c}", "PL201", "B1", 600_000_000 + i)
        for i, c in enumerate(COMPANIES_10, start=1)
    ]
    facts += [
        F("2025-01", "CA", "PA1", "PL201", "B1", 300_000_000),
        F("2025-01", "CA", "PA2", "PL202", "B1", 200_000_000),
        F("2025-01", "CB", "PB", "PL201", "B1", "499999999.99"),
        F("2025-01", "CC", "PC", "PL201", "B1", 1000),
    ]
    return facts


def test_strategic_example_history():
    w = W(strategic_facts())
    jan = date(2025, 1, 31)
    assert loaded_months(w) == [jan]
    assert reference_months(w) == {2025: jan}
    expected = set()
    for _i, c in enumerate(COMPANIES_10, start=1):
        expected.add((c, f"P{c}", "PL201", "企年投资", jan, OPEN, A, True, True, 2025))
    expected |= {
        ("CA", "PA1", "PL201", "企年投资", jan, OPEN, A, True, True, 2025),
        ("CA", "PA2", "PL202", "企年受托", jan, OPEN, A, True, True, 2025),
        ("CB", "PB", "PL201", "企年投资", jan, OPEN, A, False, True, 2025),
        ("CC", "PC", "PL201", "企年投资", jan, OPEN, A, False, True, 2025),
    }
    assert contract_history(w) == expected


def test_strategic_example_snapshots():
    w = W(strategic_facts())
    jan = date(2025, 1, 31)
    # business: (month, company, pl, name, aum, plan_count,
    #            strat, exist, new, win, lost, arrival, churned)
    expected_b = {
        (
            jan,
            c,
            "PL201",
            "企年投资",
            D(600_000_000 + i).quantize(D("0.01")),
            1,
            True,
            True,
            False,
            False,
            False,
            True,
            False,
        )
        for i, c in enumerate(COMPANIES_10, start=1)
    }
    expected_b |= {
        (
            jan,
            "CA",
            "PL201",
            "企年投资",
            D("300000000.00"),
            1,
            True,
            True,
            False,
            False,
            False,
            True,
            False,
        ),
        (
            jan,
            "CA",
            "PL202",
            "企年受托",
            D("200000000.00"),
            1,
            True,
            True,
            False,
            False,
            False,
            True,
            False,
        ),
        (
            jan,
            "CB",
            "PL201",
            "企年投资",
            D("499999999.99"),
            1,
            False,
            True,
            False,
            False,
            False,
            True,
            False,
        ),
        (
            jan,
            "CC",
            "PL201",
            "企年投资",
            D("1000.00"),
            1,
            False,
            True,
            False,
            False,
            False,
            True,
            False,
        ),
    }
    assert business_snapshot(w) == expected_b
    expected_p = {
        (
            jan,
            c,
            f"P{c}",
            "PL201",
            "企年投资",
            D(600_000_000 + i).quantize(D("0.01")),
            True,
            True,
            False,
            False,
            False,
            True,
            False,
        )
        for i, c in enumerate(COMPANIES_10, start=1)
    }
    expected_p |= {
        (
            jan,
            "CA",
            "PA1",
            "PL201",
            "企年投资",
            D("300000000.00"),
            True,
            True,
            False,
            False,
            False,
            True,
            False,
        ),
        (
            jan,
            "CA",
            "PA2",
            "PL202",
            "企年受托",
            D("200000000.00"),
            True,
            True,
            False,
            False,
            False,
            True,
            False,
        ),
        (
            jan,
            "CB",
            "PB",
            "PL201",
            "企年投资",
            D("499999999.99"),
            False,
            True,
            False,
            False,
            False,
            True,
            False,
        ),
        (
            jan,
            "CC",
            "PC",
            "PL201",
            "企年投资",
            D("1000.00"),
            False,
            True,
            False,
            False,
            False,
            True,
            False,
        ),
    }
    assert plan_snapshot(w) == expected_p


def test_strategic_example_with_earlier_month():
    # 2024-12 holds only CB/PB 600,000,000: 2025 is decided there, not in 2025-01.
    w = W([*strategic_facts(), F("2024-12", "CB", "PB", "PL201", "B1", 600000000)])
    dec, jan = date(2024, 12, 31), date(2025, 1, 31)
    assert loaded_months(w) == [dec, jan]
    assert reference_months(w) == {2024: dec, 2025: dec}
    # 2025: only CB had facts at the reference month -> only CB strategic / existing.
    strat = strategic_in_history(w)
    assert strat == {**{c: False for c in COMPANIES_10}, "CA": False, "CB": True, "CC": False}
    assert hist(w, "CB", "PB", "PL201") == [
        ("企年投资", dec, jan, A, True, True, 2024),
        ("企年投资", jan, OPEN, A, True, True, 2025),  # status_year changes
    ]
    assert hist(w, "CA", "PA1", "PL201") == [("企年投资", jan, OPEN, A, False, False, 2025)]
    assert hist(w, "C10", "PC10", "PL201") == [("企年投资", jan, OPEN, A, False, False, 2025)]
    # snapshots at 2025-01
    assert brow(w, jan, "CB", "PL201") == (
        jan,
        "CB",
        "PL201",
        "企年投资",
        D("499999999.99"),
        1,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    )
    assert brow(w, jan, "C01", "PL201") == (
        jan,
        "C01",
        "PL201",
        "企年投资",
        D("600000001.00"),
        1,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
    )
    assert prow(w, jan, "CA", "PA2", "PL202") == (
        jan,
        "CA",
        "PA2",
        "PL202",
        "企年受托",
        D("200000000.00"),
        False,
        False,
        False,
        False,
        False,
        True,
        False,
    )
    # snapshot at 2024-12: only CB
    assert {r[1:3] for r in business_snapshot(w) if r[0] == dec} == {("CB", "PL201")}
    assert prow(w, dec, "CB", "PB", "PL201") == (
        dec,
        "CB",
        "PB",
        "PL201",
        "企年投资",
        D("600000000.00"),
        True,
        True,
        False,
        False,
        False,
        True,
        False,
    )


# ---------------------------------------------------------------- plan table examples


def test_plan_example_a_plan_churned_business_not():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 100),
            F("2025-01", "C1", "P4", "PL201", "B1", 50),
            F("2025-02", "C1", "P1", "PL201", "B1", 100),
        ],
        whitelist_top_n=0,
    )
    jan, feb = date(2025, 1, 31), date(2025, 2, 28)
    assert prow(w, feb, "C1", "P4", "PL201") == (
        feb,
        "C1",
        "P4",
        "PL201",
        "企年投资",
        D("0.00"),
        False,
        True,
        False,
        False,
        False,
        False,
        True,
    )
    assert prow(w, feb, "C1", "P1", "PL201") == (
        feb,
        "C1",
        "P1",
        "PL201",
        "企年投资",
        D("100.00"),
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    )
    # plan_count counts the suspended P4, whose 停缴 version covers February.
    assert brow(w, feb, "C1", "PL201") == (
        feb,
        "C1",
        "PL201",
        "企年投资",
        D("100.00"),
        2,
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    )
    assert brow(w, jan, "C1", "PL201") == (
        jan,
        "C1",
        "PL201",
        "企年投资",
        D("150.00"),
        2,
        False,
        True,
        False,
        False,
        False,
        True,
        False,
    )
    assert hist(w, "C1", "P4", "PL201") == [
        ("企年投资", jan, feb, A, False, True, 2025),
        ("企年投资", feb, OPEN, S, False, True, 2025),
    ]
    assert hist(w, "C1", "P1", "PL201") == [("企年投资", jan, OPEN, A, False, True, 2025)]


def test_plan_example_b_new_plan_arrival():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 100),
            F("2025-02", "C1", "P1", "PL201", "B1", 100),
            F("2025-03", "C1", "P1", "PL201", "B1", 100),
            F("2025-03", "C1", "P3", "PL201", "B1", 20),
        ],
        whitelist_top_n=0,
    )
    mar = date(2025, 3, 31)
    # P3 did not exist at the reference month (2025-01) but the pair had AUM > 0 then.
    assert prow(w, mar, "C1", "P3", "PL201") == (
        mar,
        "C1",
        "P3",
        "PL201",
        "企年投资",
        D("20.00"),
        False,
        True,
        False,
        False,
        False,
        True,
        False,
    )
    assert brow(w, mar, "C1", "PL201") == (
        mar,
        "C1",
        "PL201",
        "企年投资",
        D("120.00"),
        2,
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    )
    assert hist(w, "C1", "P3", "PL201") == [("企年投资", mar, OPEN, A, False, True, 2025)]
    assert prow(w, date(2025, 2, 28), "C1", "P3", "PL201") is None


# ---------------------------------------------------------------- on_missing


def gap_facts():
    return [
        F("2025-01", "C1", "P1", "PL201", "B1", 100),
        F("2025-01", "C2", "P2", "PL201", "B1", 100),
        F("2025-02", "C2", "P2", "PL201", "B1", 100),
        F("2025-03", "C1", "P1", "PL201", "B1", 100),
        F("2025-03", "C2", "P2", "PL201", "B1", 100),
    ]


def test_on_missing_suspend():
    w = W(gap_facts(), whitelist_top_n=0)
    jan, feb, mar = date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)
    assert hist(w, "C1", "P1", "PL201") == [
        ("企年投资", jan, feb, A, False, True, 2025),
        ("企年投资", feb, mar, S, False, True, 2025),
        ("企年投资", mar, OPEN, A, False, True, 2025),
    ]
    assert prow(w, feb, "C1", "P1", "PL201") == (
        feb,
        "C1",
        "P1",
        "PL201",
        "企年投资",
        D("0.00"),
        False,
        True,
        False,
        False,
        False,
        False,
        True,
    )
    assert brow(w, feb, "C1", "PL201") == (
        feb,
        "C1",
        "PL201",
        "企年投资",
        D("0.00"),
        1,
        False,
        True,
        False,
        False,
        False,
        False,
        True,
    )
    assert prow(w, mar, "C1", "P1", "PL201") == (
        mar,
        "C1",
        "P1",
        "PL201",
        "企年投资",
        D("100.00"),
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    )
    assert hist(w, "C2", "P2", "PL201") == [("企年投资", jan, OPEN, A, False, True, 2025)]


def test_on_missing_close():
    w = W(gap_facts(), whitelist_top_n=0, on_missing="close")
    jan, feb, mar = date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)
    assert hist(w, "C1", "P1", "PL201") == [
        ("企年投资", jan, feb, A, False, True, 2025),
        ("企年投资", mar, OPEN, A, False, True, 2025),  # reappearance: new version
    ]
    assert prow(w, feb, "C1", "P1", "PL201") is None
    assert brow(w, feb, "C1", "PL201") is None
    assert prow(w, mar, "C1", "P1", "PL201") == (
        mar,
        "C1",
        "P1",
        "PL201",
        "企年投资",
        D("100.00"),
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    )
    assert brow(w, mar, "C1", "PL201") == (
        mar,
        "C1",
        "PL201",
        "企年投资",
        D("100.00"),
        1,
        False,
        True,
        False,
        False,
        False,
        False,
        False,
    )


def test_close_key_absent_at_the_end_has_no_current_version():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 100),
            F("2025-02", "C2", "P2", "PL201", "B1", 100),
        ],
        whitelist_top_n=0,
        on_missing="close",
    )
    assert hist(w, "C1", "P1", "PL201") == [
        ("企年投资", date(2025, 1, 31), date(2025, 2, 28), A, False, True, 2025)
    ]


def test_suspended_stays_churned_and_crosses_the_year():
    w = W(
        [
            F("2024-11", "C1", "P1", "PL201", "B1", 100),
            F("2024-11", "C2", "P2", "PL201", "B1", 100),
            F("2024-12", "C2", "P2", "PL201", "B1", 100),
            F("2025-01", "C2", "P2", "PL201", "B1", 100),
        ],
        whitelist_top_n=0,
    )
    nov, dec, jan = date(2024, 11, 30), date(2024, 12, 31), date(2025, 1, 31)
    assert reference_months(w) == {2024: nov, 2025: dec}
    # 2025's reference month is 2024-12, where C1/PL201 had no AUM -> is_existing false.
    assert hist(w, "C1", "P1", "PL201") == [
        ("企年投资", nov, dec, A, False, True, 2024),
        ("企年投资", dec, jan, S, False, True, 2024),
        ("企年投资", jan, OPEN, S, False, False, 2025),
    ]
    # disappeared in December; still no facts in January: month AUM 0 -> churned (R17).
    assert prow(w, dec, "C1", "P1", "PL201")[-2:] == (False, True)
    assert prow(w, jan, "C1", "P1", "PL201") == (
        jan,
        "C1",
        "P1",
        "PL201",
        "企年投资",
        D("0.00"),
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    )
    assert brow(w, jan, "C1", "PL201") == (
        jan,
        "C1",
        "PL201",
        "企年投资",
        D("0.00"),
        1,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    )


# ---------------------------------------------------------------- zero / negative / NULL AUM


def test_first_appearance_with_zero_aum():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 0),
            F("2025-02", "C1", "P1", "PL201", "B1", 100),
        ],
        whitelist_top_n=0,
    )
    jan, feb = date(2025, 1, 31), date(2025, 2, 28)
    assert hist(w, "C1", "P1", "PL201") == [
        ("企年投资", jan, feb, S, False, False, 2025),
        ("企年投资", feb, OPEN, A, False, False, 2025),
    ]
    assert prow(w, jan, "C1", "P1", "PL201") == (
        jan,
        "C1",
        "P1",
        "PL201",
        "企年投资",
        D("0.00"),
        False,
        False,
        False,
        False,
        False,
        True,
        True,
    )
    assert brow(w, jan, "C1", "PL201") == (
        jan,
        "C1",
        "PL201",
        "企年投资",
        D("0.00"),
        1,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
    )
    assert prow(w, feb, "C1", "P1", "PL201")[-2:] == (False, False)


def test_portfolios_sum_negative_and_null_aum():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 100),
            F("2025-01", "C1", "P1", "PL201", "B1", -100),  # second portfolio: sum 0
            F("2025-01", "C1", "P2", "PL201", "B1", None),  # NULL AUM: present, 0
            F("2025-01", "C1", "P3", "PL202", "B1", -5),  # negative: 停缴 and churned (le 0)
            F("2025-01", "C1", "P4", "PL203", "B1", "10.5"),
            F("2025-01", "C1", "P4", "PL203", "B2", None),
        ],
        whitelist_top_n=0,
    )
    jan = date(2025, 1, 31)
    h = {r[1]: r[6] for r in contract_history(w)}
    assert h == {"P1": S, "P2": S, "P3": S, "P4": A}
    assert prow(w, jan, "C1", "P1", "PL201")[5] == D("0.00")
    assert prow(w, jan, "C1", "P4", "PL203")[5] == D("10.50")
    assert prow(w, jan, "C1", "P3", "PL202")[-1] is True
    assert brow(w, jan, "C1", "PL201") == (
        jan,
        "C1",
        "PL201",
        "企年投资",
        D("0.00"),
        2,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
    )
    assert brow(w, jan, "C1", "PL202")[4] == D("-5.00")


# ---------------------------------------------------------------- events


def test_events_in_year_and_as_of_the_month():
    facts = [
        F(m, "C1", "P1", "PL201", "B1", 100)
        for m in ("2024-11", "2024-12", "2025-01", "2025-03", "2025-04")
    ]
    facts += [F(m, "C1", "P2", "PL202", "B1", 100) for m in ("2025-03", "2025-04")]
    awards = [
        E("C1", "PX", "PL201", date(2024, 11, 20)),  # previous year for 2025
        E("C1", None, "PL201", date(2025, 3, 15)),  # NULL plan: matches on company + PL
        E("C1", "P1", "PL202", date(2025, 1, 5)),  # other PL: counts for PL202 only
        E("C2", "P1", "PL201", date(2025, 1, 1)),  # other company
        E("C1", "P1", "PL201", None),  # no date: matches nothing
        E(None, "P1", "PL201", date(2025, 1, 1)),
    ]
    losses = [E("C1", "P9", "PL201", date(2025, 4, 30))]
    w = W(facts, companies={"C1", "C2"}, awards=awards, losses=losses, whitelist_top_n=0)
    nov, dec, jan = date(2024, 11, 30), date(2024, 12, 31), date(2025, 1, 31)
    mar, apr = date(2025, 3, 31), date(2025, 4, 30)
    # (is_new, is_winning_this_year, is_churned_this_year) of C1/PL201; existing all along.
    got = {m: brow(w, m, "C1", "PL201")[8:11] for m in (nov, dec, jan, mar, apr)}
    assert got == {
        nov: (False, True, False),
        dec: (False, True, False),
        jan: (False, False, False),  # 2024 award is last year; 2025-03-15 is after January
        mar: (False, True, False),
        apr: (False, True, True),  # reported on the month-end itself: included
    }
    assert prow(w, jan, "C1", "P1", "PL201")[8:11] == (False, False, False)
    # C1/PL202: won 2025-01-05, no AUM at 2025's reference month (2024-12) -> new customer.
    assert brow(w, mar, "C1", "PL202") == (
        mar,
        "C1",
        "PL202",
        "企年受托",
        D("100.00"),
        1,
        False,
        False,
        True,
        True,
        False,
        True,
        False,
    )
    # the plan row carries the pair's event flags even though the award named plan P1.
    assert prow(w, mar, "C1", "P2", "PL202") == (
        mar,
        "C1",
        "P2",
        "PL202",
        "企年受托",
        D("100.00"),
        False,
        False,
        True,
        True,
        False,
        True,
        False,
    )
    assert prow(w, apr, "C1", "P2", "PL202")[7:11] == (False, True, True, False)


# ---------------------------------------------------------------- branch ranking


def test_ties_at_place_n():
    w = W(
        [
            F("2025-01", "A", "PA", "PL201", "B1", 100),
            F("2025-01", "B", "PB", "PL201", "B1", 50),
            F("2025-01", "C", "PC", "PL201", "B1", 50),
            F("2025-01", "D", "PD", "PL201", "B1", 10),
            F("2025-01", "E", "PE", "PL201", "B2", 70),
            F("2025-01", "F", "PF", "PL201", "B2", 70),
            F("2025-01", "G", "PG", "PL201", "B2", 70),
            F("2025-01", "H", "PH", "PL201", "B2", 5),
        ],
        whitelist_top_n=2,
        strategic_threshold=D(1000),
    )
    assert strategic_in_history(w) == {
        "A": True,
        "B": True,
        "C": True,
        "D": False,  # B, C tied at place 2: both in
        "E": True,
        "F": True,
        "G": True,
        "H": False,  # three tied at place 1
    }


def test_company_in_two_branches_ranked_by_its_aum_in_each_branch():
    facts = [
        F("2025-01", "X", "PX1", "PL201", "B1", 30),
        F("2025-01", "X", "PX2", "PL202", "B2", 30),
        F("2025-01", "Y", "PY", "PL201", "B1", 50),
        F("2025-01", "Z", "PZ", "PL201", "B2", 40),
    ]
    w = W(facts, whitelist_top_n=1, strategic_threshold=D(1000))
    # X's total (60) would top both branches; its AUM in each (30) tops neither.
    assert strategic_in_history(w) == {"X": False, "Y": True, "Z": True}
    # the threshold uses the company's total over branches
    w = W(facts, whitelist_top_n=1, strategic_threshold=D(60))
    assert strategic_in_history(w) == {"X": True, "Y": True, "Z": True}
    # first in one of its branches is enough
    facts[3] = F("2025-01", "Z", "PZ", "PL201", "B2", 20)
    w = W(facts, whitelist_top_n=1, strategic_threshold=D(1000))
    assert strategic_in_history(w) == {"X": True, "Y": True, "Z": False}
    jan = date(2025, 1, 31)
    assert brow(w, jan, "X", "PL202")[6] is True
    assert prow(w, jan, "X", "PX1", "PL201")[6] is True


def test_null_branch_is_not_a_branch():
    w = W(
        [
            F("2025-01", "W1", "P1", "PL201", None, 10),
            F("2025-01", "W2", "P2", "PL201", None, 5),
            F("2025-01", "V", "PV", "PL201", "B1", 1),
        ],
        whitelist_top_n=1,
        strategic_threshold=D(1000),
    )
    jan = date(2025, 1, 31)
    assert strategic_in_history(w) == {"W1": False, "W2": False, "V": True}
    assert hist(w, "W1", "P1", "PL201") == [("企年投资", jan, OPEN, A, False, True, 2025)]
    # NULL-branch rows still count for the company's total
    w = W(
        [
            F("2025-01", "U", "P1", "PL201", None, 600),
            F("2025-01", "U", "P2", "PL202", "B1", 0),
        ],
        whitelist_top_n=0,
        strategic_threshold=D(500),
    )
    assert strategic_in_history(w) == {"U": True}


def test_sole_company_of_a_branch_is_top_n_even_at_zero():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 0),
            F("2025-01", "C2", "P2", "PL201", "B2", 100),
            F("2025-01", "C2", "P3", "PL201", "B2", -100),
        ],
        whitelist_top_n=1,
        strategic_threshold=D(1000),
    )
    assert strategic_in_history(w) == {"C1": True, "C2": True}


def test_rejected_rows_do_not_count_for_strategic():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 10),
            F("2025-01", "C1", "P2", "PL999", "B1", 1000),  # unknown product line
            F("2025-01", "C1", None, "PL201", "B1", 1000),  # NULL plan
            F("2025-01", "C2", "P2", "PL201", "B1", 20),
        ],
        whitelist_top_n=1,
        strategic_threshold=D(1000),
    )
    assert strategic_in_history(w) == {"C1": False, "C2": True}


# ---------------------------------------------------------------- rejected rows and loaded months


def test_month_with_only_rejected_rows_is_loaded():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 100),
            F("2025-02", "C9", "P1", "PL201", "B1", 100),  # unknown company
            F("2025-02", "C1", None, "PL201", "B1", 100),  # NULL plan
            F("2025-02", "C1", "P1", "PL999", "B1", 100),  # unknown product line
            F("2025-02", None, "P1", "PL201", "B1", 100),  # NULL company
            F("2025-02", "C1", "P1", None, "B1", 100),  # NULL product line
            F("2025-03", "C1", "P1", "PL201", "B1", 100),
        ],
        companies={"C1"},
        whitelist_top_n=0,
    )
    jan, feb, mar = date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)
    assert loaded_months(w) == [jan, feb, mar]
    assert contract_history(w) == {
        ("C1", "P1", "PL201", "企年投资", jan, feb, A, False, True, 2025),
        ("C1", "P1", "PL201", "企年投资", feb, mar, S, False, True, 2025),
        ("C1", "P1", "PL201", "企年投资", mar, OPEN, A, False, True, 2025),
    }
    assert {r[:4] for r in plan_snapshot(w)} == {
        (jan, "C1", "P1", "PL201"),
        (feb, "C1", "P1", "PL201"),
        (mar, "C1", "P1", "PL201"),
    }
    assert brow(w, feb, "C1", "PL201") == (
        feb,
        "C1",
        "PL201",
        "企年投资",
        D("0.00"),
        1,
        False,
        True,
        False,
        False,
        False,
        False,
        True,
    )
    assert brow(w, mar, "C1", "PL201")[-2:] == (False, False)


def test_rejected_only_month_as_reference_month():
    w = W(
        [
            F("2024-12", "CX", "P1", "PL201", "B1", 900_000_000),  # CX unknown
            F("2025-01", "C1", "P1", "PL201", "B1", 900_000_000),
        ],
        companies={"C1"},
    )
    dec, jan = date(2024, 12, 31), date(2025, 1, 31)
    assert reference_months(w) == {2024: dec, 2025: dec}
    assert contract_history(w) == {
        ("C1", "P1", "PL201", "企年投资", jan, OPEN, A, False, False, 2025)
    }
    assert brow(w, jan, "C1", "PL201") == (
        jan,
        "C1",
        "PL201",
        "企年投资",
        D("900000000.00"),
        1,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
    )


def test_no_rows_at_all():
    w = W([])
    assert loaded_months(w) == []
    assert reference_months(w) == {}
    assert contract_history(w) == set()
    assert business_snapshot(w) == set()
    assert plan_snapshot(w) == set()


# ---------------------------------------------------------------- periods


def test_any_day_names_its_month_and_reference_month_gaps():
    w = W(
        [
            FactRow(date(2023, 5, 17), "C1", "P1", "PL201", "B1", D(100)),
            FactRow(date(2024, 2, 29), "C1", "P1", "PL201", "B1", D(0)),
            FactRow(date(2026, 3, 1), "C1", "P1", "PL201", "B1", D(100)),
        ],
        whitelist_top_n=0,
    )
    may23, feb24, mar26 = date(2023, 5, 31), date(2024, 2, 29), date(2026, 3, 31)
    assert loaded_months(w) == [may23, feb24, mar26]
    # 2026: last loaded month before 2026-01-01 is 2024-02, however old.
    assert reference_months(w) == {2023: may23, 2024: may23, 2026: feb24}
    assert hist(w, "C1", "P1", "PL201") == [
        ("企年投资", may23, feb24, A, False, True, 2023),
        ("企年投资", feb24, mar26, S, False, True, 2024),
        ("企年投资", mar26, OPEN, A, False, False, 2026),
    ]


def test_disappeared_skips_unloaded_months():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 100),
            F("2025-01", "C2", "P2", "PL201", "B1", 100),
            F("2025-04", "C2", "P2", "PL201", "B1", 100),
        ],
        whitelist_top_n=0,
    )
    jan, apr = date(2025, 1, 31), date(2025, 4, 30)
    assert loaded_months(w) == [jan, apr]
    assert {r[0] for r in plan_snapshot(w)} == {jan, apr}  # no rows for Feb/Mar
    assert prow(w, apr, "C1", "P1", "PL201")[-2:] == (False, True)
    assert hist(w, "C1", "P1", "PL201") == [
        ("企年投资", jan, apr, A, False, True, 2025),
        ("企年投资", apr, OPEN, S, False, True, 2025),
    ]


def test_state_change_back_and_forth_opens_versions():
    w = W(
        [
            F("2025-01", "C1", "P1", "PL201", "B1", 100),
            F("2025-02", "C1", "P1", "PL201", "B1", 200),  # same state: same version
            F("2025-03", "C1", "P1", "PL201", "B1", 0),
            F("2025-04", "C1", "P1", "PL201", "B1", 0),
            F("2025-05", "C1", "P1", "PL201", "B1", 5),
        ],
        whitelist_top_n=0,
    )
    assert hist(w, "C1", "P1", "PL201") == [
        ("企年投资", date(2025, 1, 31), date(2025, 3, 31), A, False, True, 2025),
        ("企年投资", date(2025, 3, 31), date(2025, 5, 31), S, False, True, 2025),
        ("企年投资", date(2025, 5, 31), OPEN, A, False, True, 2025),
    ]
    # a zero-AUM month after facts: churned by AUM, not by disappearance
    assert prow(w, date(2025, 4, 30), "C1", "P1", "PL201")[-2:] == (False, True)
