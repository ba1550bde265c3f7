"""customer.refresh_monthly_snapshot(month) against the model (tests/py/model.py,
snapshots()), on random small universes and random sequences of fact and event changes.

Each change is followed by exactly what the post-ETL hook does (docs/snapshots.md, "Which
months to refresh after a change"): after the facts of month m changed, sync(m) and refresh
every month of its snapshot_months; after award / loss rows reported on day d were added,
changed or deleted, refresh every month of event_dependent_months(d). After every step both
snapshot tables must hold exactly the model's rows, so a month missing from those lists
shows up as a stale snapshot. Then a second refresh of every month changes nothing, and a
month that is not loaded has no rows.

The as-of property: a month refreshed when it was loaded keeps exactly those rows (and their
updated_at) however many later months and later-dated events arrive afterwards.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import astuple, dataclass, fields
from datetime import date

import psycopg
import pytest
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from model import (
    BusinessRow,
    Event,
    Fact,
    PlanRow,
    Rules,
    event_dependent_months,
    loaded_months,
    month_end,
    snapshots,
)
from test_sync_properties import (
    AUMS,
    DELETE_SQL,
    INSERT_SQL,
    THRESHOLD,
    Op,
    insert_params,
    last_day,
    sync,
    variant_sql,
)

#: customer."年金客户"; facts use the first three, events all of them and unknown ones.
COMPANIES = ["C1", "C2", "C3", "C4"]
FACT_KEYS = list(itertools.product(["C1", "C2", "C3"], ["P1", "P2"], ["PL201", "PL202"]))
INVALID_KEYS = [("C1", None, "PL201"), ("C2", "P1", "PL999"), ("CX", "P1", "PL201")]
BRANCHES = ["B1", "B2"]
PORTFOLIOS = ["F1", "F2"]
# 2023-09 .. 2025-02: three calendar years, two Decembers and two Januaries
CANDIDATE_MONTHS = [date(2023 + (8 + i) // 12, (8 + i) % 12 + 1, 1) for i in range(18)]
# events are reported from 2023-06 to 2025-05: before, inside and after the loaded range
EVENT_MONTHS = [date(2023 + (5 + i) // 12, (5 + i) % 12 + 1, 1) for i in range(24)]
EVENT_COMPANIES = ["C1", "C2", "C3", "C4", "CX", None]
EVENT_LINES = ["PL201", "PL202", "PL203", None]
EVENT_PLANS = ["P1", "P2", "P9", None]
Pair = tuple[str, str]

VARIANTS = {
    "suspend-top10": Rules(THRESHOLD, 10, "suspend"),
    "suspend-top2": Rules(THRESHOLD, 2, "suspend"),
    "close-top2": Rules(THRESHOLD, 2, "close"),
}
EVENT_TABLES = {"award": 'customer."当年中标"', "loss": 'customer."当年流失"'}
SNAPSHOT_TABLES = {
    "business": ("customer.fct_customer_business_monthly_status", BusinessRow),
    "plan": ("customer.fct_customer_plan_monthly_status", PlanRow),
}
ROW_KEYS = {
    "business": ("company_id", "product_line_code"),
    "plan": ("company_id", "plan_code", "product_line_code"),
}
RESET_SQL = """
TRUNCATE business."规模明细", customer.customer_plan_contract, cmdm.rejected_fact,
         customer.fct_customer_business_monthly_status, customer.fct_customer_plan_monthly_status,
         customer."当年中标", customer."当年流失", customer.annual_reference,
         customer.annual_company_status, customer.annual_product_line_status,
         customer.annual_plan_status
"""


# ---------------------------------------------------------------------------------------
# The database


@dataclass
class Db:
    conn: psycopg.Connection
    rules: Rules


def make_db(url: str, rules: Rules) -> Iterator[Db]:
    # The functions are under test here, not the hooks: the test runs the refreshes.
    with psycopg.connect(url, autocommit=True, options="-c cmdm.post_hooks=off") as conn:
        conn.execute(variant_sql(rules))
        with conn.cursor() as cur:
            cur.executemany(
                'INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES (%s, %s)',
                [(c, f"客户{c}") for c in COMPANIES],
            )
        yield Db(conn, rules)


@pytest.fixture(params=list(VARIANTS), ids=list(VARIANTS))
def db(request: pytest.FixtureRequest, migrated_url: str) -> Iterator[Db]:
    """One migrated database per test, with the variant's functions and the companies."""
    yield from make_db(migrated_url, VARIANTS[request.param])


@pytest.fixture
def default_db(migrated_url: str) -> Iterator[Db]:
    yield from make_db(migrated_url, VARIANTS["suspend-top10"])


def select_sql(table: str, row_type: type, where: str = "") -> str:
    columns = ", ".join(f.name for f in fields(row_type))
    return f"SELECT {columns}, updated_at FROM {table} {where}"


def db_rows(conn: psycopg.Connection, kind: str, month: date | None = None) -> list[tuple]:
    """The rows of one snapshot table (of one month), sorted, each with updated_at last."""
    table, row_type = SNAPSHOT_TABLES[kind]
    if month is None:
        rows = conn.execute(select_sql(table, row_type)).fetchall()
    else:
        sql = select_sql(table, row_type, "WHERE snapshot_month = %s")
        rows = conn.execute(sql, (month_end(month),)).fetchall()
    return sorted(rows)


def without_updated_at(rows: list[tuple]) -> list[tuple]:
    return [row[:-1] for row in rows]


def refresh(conn: psycopg.Connection, month: date) -> dict:
    """Refresh one month and check what it returns against the rows before and after."""
    before = {kind: db_rows(conn, kind, month) for kind in SNAPSHOT_TABLES}
    cur = conn.execute("SELECT * FROM customer.refresh_monthly_snapshot(%s)", (month,))
    names = [c.name for c in cur.description]
    result_rows = cur.fetchall()
    assert len(result_rows) == 1, result_rows
    result = dict(zip(names, result_rows[0], strict=True))
    assert result["snapshot_month"] == month_end(month)
    for kind in SNAPSHOT_TABLES:
        after = db_rows(conn, kind, month)
        expected = diff(kind, before[kind], after)
        got = {c: result[f"{kind}_{c}"] for c in ("rows", "inserted", "updated", "deleted")}
        assert got == expected, f"refresh {month}: {kind} counts {got} != {expected}"
        # a row whose values did not change keeps its updated_at
        old = {row[:-1]: row[-1] for row in before[kind]}
        for row in after:
            if row[:-1] in old:
                assert row[-1] == old[row[:-1]], f"refresh {month}: {kind} row rewritten: {row}"
    return result


def diff(kind: str, before: list[tuple], after: list[tuple]) -> dict:
    """rows / inserted / updated / deleted between two states of one month's rows."""
    positions = [
        i for i, f in enumerate(fields(SNAPSHOT_TABLES[kind][1])) if f.name in ROW_KEYS[kind]
    ]

    def by_key(rows: list[tuple]) -> dict:
        return {tuple(row[i] for i in positions): row[:-1] for row in rows}

    old, new = by_key(before), by_key(after)
    return {
        "rows": len(after),
        "inserted": len(new.keys() - old.keys()),
        "updated": sum(1 for k in new.keys() & old.keys() if new[k] != old[k]),
        "deleted": len(old.keys() - new.keys()),
    }


def dependent_months(conn: psycopg.Connection, day: date) -> list[date]:
    rows = conn.execute("SELECT month FROM customer.event_dependent_months(%s)", (day,)).fetchall()
    return [r[0] for r in rows]


# ---------------------------------------------------------------------------------------
# Operations and the world the model sees


@dataclass(frozen=True)
class EventOp:
    kind: str  # insert | delete | redate
    table: str  # award | loss
    rows: tuple[Event, ...] = ()  # insert: the rows
    picks: tuple[int, ...] = ()  # delete / redate: which live rows (index modulo their count)
    new_date: date | None = None  # redate: the new 上报月份

    def __repr__(self) -> str:
        if self.kind == "insert":
            return f"insert {self.table}" + "".join(f"\n      {fmt_event(e)}" for e in self.rows)
        if self.kind == "delete":
            return f"delete {self.table} rows {list(self.picks)}"
        return f"redate {self.table} row {self.picks[0]} to {self.new_date}"


def fmt_event(e: Event) -> str:
    return f"{e.company_id}/{e.plan_code}/{e.product_line_code} reported {e.reported}"


@dataclass
class World:
    """The inputs as the model sees them: facts and the live event rows by id."""

    facts: list[Fact]
    events: dict[str, dict[int, Event]]

    def model(self, rules: Rules) -> dict[str, list[tuple]]:
        business, plans = snapshots(
            self.facts,
            COMPANIES,
            self.events["award"].values(),
            self.events["loss"].values(),
            rules,
        )
        return {"business": sorted(map(astuple, business)), "plan": sorted(map(astuple, plans))}


def by_month(rows: list[tuple]) -> dict[date, list[tuple]]:
    out: dict[date, list[tuple]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return out


def changed_months(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> set[date]:
    """The months whose model rows differ between two states."""
    out = set()
    for kind in SNAPSHOT_TABLES:
        old, new = by_month(before[kind]), by_month(after[kind])
        out |= {m for m in old.keys() | new.keys() if old.get(m) != new.get(m)}
    return out


def apply_facts(conn: psycopg.Connection, world: World, op: Op) -> dict:
    """Change the facts of op's month in the database and the world; sync; check what the
    sync says must be refreshed. Returns the sync's row."""
    start = op.month
    after = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    if op.kind in ("restate", "delete"):
        conn.execute(DELETE_SQL, (start, after))
        world.facts = [f for f in world.facts if not (start <= f.month < after)]
    if op.rows:
        with conn.cursor() as cur:
            cur.executemany(INSERT_SQL, [insert_params(f) for f in op.rows])
        world.facts += op.rows
    result = sync(conn, start.replace(day=op.day))
    months = result["snapshot_months"]
    loaded = loaded_months(world.facts)
    assert months == sorted(set(months)), f"snapshot_months not ascending: {months}"
    assert months and months[0] == month_end(start), f"snapshot_months {months} lack {start}"
    assert set(months) <= {*loaded, month_end(start)}, f"{months} outside {loaded}"
    return result


def apply_events(conn: psycopg.Connection, world: World, op: EventOp) -> list[date]:
    """Change the event rows in the database and the world; return the affected dates."""
    table, live = EVENT_TABLES[op.table], world.events[op.table]
    touched: list[date | None] = []
    if op.kind == "insert":
        for e in op.rows:
            (new_id,) = conn.execute(
                f'INSERT INTO {table} (company_id, "产品线代码", "计划代码", "上报月份") '
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (e.company_id, e.product_line_code, e.plan_code, e.reported),
            ).fetchone()
            live[new_id] = e
            touched.append(e.reported)
    elif live:
        ids = sorted(live)
        chosen = sorted({ids[i % len(ids)] for i in op.picks})
        for row_id in chosen:
            old = live[row_id]
            touched.append(old.reported)
            if op.kind == "delete":
                conn.execute(f"DELETE FROM {table} WHERE id = %s", (row_id,))
                del live[row_id]
            else:
                conn.execute(
                    f'UPDATE {table} SET "上报月份" = %s WHERE id = %s', (op.new_date, row_id)
                )
                live[row_id] = Event(
                    old.company_id, old.product_line_code, old.plan_code, op.new_date
                )
                touched.append(op.new_date)
    return sorted({t for t in touched if t is not None})


def event_months(conn: psycopg.Connection, world: World, days: list[date]) -> list[date]:
    """The union of event_dependent_months over the days, each checked against the model."""
    loaded = loaded_months(world.facts)
    out: set[date] = set()
    for day in days:
        months = dependent_months(conn, day)
        assert months == event_dependent_months(loaded, day), f"event_dependent_months({day})"
        out |= set(months)
    return sorted(out)


def fmt_row(kind: str, row: tuple) -> str:
    """name=value for the non-boolean columns, then the names of the true statuses."""
    names = [f.name for f in fields(SNAPSHOT_TABLES[kind][1])]
    values = [f"{n}={v}" for n, v in zip(names, row, strict=True) if not isinstance(v, bool)]
    true = [n for n, v in zip(names, row, strict=True) if v is True]
    return ", ".join(values) + " | " + (" ".join(true) or "(no status true)")


def fmt_rows(kind: str, rows: list[tuple]) -> str:
    return "\n    ".join(fmt_row(kind, row) for row in rows) or "(none)"


def assert_matches_model(conn: psycopg.Connection, expected: dict, where: str) -> None:
    for kind in SNAPSHOT_TABLES:
        actual = without_updated_at(db_rows(conn, kind))
        want = expected[kind]
        if actual != want:
            missing = [r for r in want if r not in actual]
            extra = [r for r in actual if r not in want]
            raise AssertionError(
                f"{where}: {kind} table differs from the model\n  missing (model):\n    "
                + fmt_rows(kind, missing)
                + "\n  unexpected (database):\n    "
                + fmt_rows(kind, extra)
            )


def check_columns(conn: psycopg.Connection) -> None:
    """The model covers every column of both tables (a new status would need modelling)."""
    for table, row_type in SNAPSHOT_TABLES.values():
        schema, name = table.split(".")
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (schema, name),
            ).fetchall()
        }
        assert columns == {f.name for f in fields(row_type)} | {"updated_at"}, table


def reset(conn: psycopg.Connection) -> World:
    conn.execute(RESET_SQL)
    return World([], {"award": {}, "loss": {}})


# ---------------------------------------------------------------------------------------
# Strategies


def fact_rows(draw: st.DrawFn, keys: list, month: date, min_size: int) -> tuple[Fact, ...]:
    drawn = draw(
        st.lists(
            st.tuples(
                st.sampled_from(keys),
                st.sampled_from(PORTFOLIOS),
                st.sampled_from(BRANCHES),
                AUMS,
                st.sampled_from([1, 15, last_day(month)]),
            ),
            min_size=min_size,
            max_size=6,
        )
    )
    return tuple(
        Fact(month.replace(day=day), c, p, line, aum, branch, portfolio)
        for (c, p, line), portfolio, branch, aum, day in drawn
    )


def sync_day(draw: st.DrawFn, month: date) -> int:
    return draw(st.sampled_from([1, 10, last_day(month)]))


def event_dates(months: list[date]) -> st.SearchStrategy[date]:
    """Days of these months (the 1st, the 15th, the last) and January 1 / December 31 of
    their years."""
    return st.sampled_from(months).flatmap(
        lambda m: st.sampled_from(
            [m, m.replace(day=15), month_end(m), date(m.year, 1, 1), date(m.year, 12, 31)]
        )
    )


def event_days(months: list[date]) -> st.SearchStrategy[date | None]:
    """Mostly around the universe's months, sometimes anywhere, sometimes NULL."""
    near = event_dates(months)
    return st.one_of(near, near, event_dates(EVENT_MONTHS), st.none())


def events(pairs: list[Pair], days: st.SearchStrategy[date | None]) -> st.SearchStrategy[Event]:
    """Event rows, mostly of the universe's (company, product line) pairs, else of any
    company (also unknown or NULL) and product line (also one without facts, or NULL)."""
    ours = st.sampled_from(pairs)
    any_pair = st.tuples(st.sampled_from(EVENT_COMPANIES), st.sampled_from(EVENT_LINES))
    return st.builds(
        lambda pair, plan, day: Event(pair[0], pair[1], plan, day),
        st.one_of(ours, ours, ours, any_pair),
        st.sampled_from(EVENT_PLANS),
        days,
    )


def pairs_of(keys: list) -> list[Pair]:
    return sorted({(c, line) for c, p, line in keys if (c, p, line) in FACT_KEYS})


@st.composite
def event_ops(draw: st.DrawFn, pairs: list[Pair], months: list[date]) -> EventOp:
    table = draw(st.sampled_from(list(EVENT_TABLES)))
    kind = draw(st.sampled_from(["insert", "insert", "insert", "delete", "redate"]))
    days = event_days(months)
    if kind == "insert":
        rows = draw(st.lists(events(pairs, days), min_size=1, max_size=5))
        return EventOp(kind, table, rows=tuple(rows))
    if kind == "delete":
        picks = draw(st.lists(st.integers(0, 20), min_size=1, max_size=3))
        return EventOp(kind, table, picks=tuple(picks))
    return EventOp(kind, table, picks=(draw(st.integers(0, 20)),), new_date=draw(days))


@st.composite
def universes(draw: st.DrawFn) -> list[Op | EventOp]:
    # at least two calendar years, so reference months and year boundaries matter
    first = draw(st.sampled_from(CANDIDATE_MONTHS))
    other = draw(st.sampled_from([m for m in CANDIDATE_MONTHS if m.year != first.year]))
    more = draw(st.lists(st.sampled_from(CANDIDATE_MONTHS), max_size=8, unique=True))
    months = sorted({first, other, *more})
    keys = draw(st.lists(st.sampled_from(FACT_KEYS), min_size=1, max_size=8, unique=True))
    pairs = pairs_of(keys)
    if draw(st.integers(0, 3)) == 0:
        keys += draw(st.lists(st.sampled_from(INVALID_KEYS), min_size=1, max_size=2, unique=True))

    ops: list[Op | EventOp] = []
    # every month is loaded once, in a random order, with event changes in between ...
    for month in draw(st.permutations(months)):
        ops.extend(draw(st.lists(event_ops(pairs, months), max_size=2)))
        ops.append(Op("load", month, sync_day(draw, month), fact_rows(draw, keys, month, 1)))
    # ... then more loads, restatements, deletions, re-syncs and event changes
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(["load", "restate", "restate", "delete", "resync", "event", "event"])
        )
        month = draw(st.sampled_from(months))
        if kind == "event":
            ops.append(draw(event_ops(pairs, months)))
        elif kind == "load":
            ops.append(Op(kind, month, sync_day(draw, month), fact_rows(draw, keys, month, 1)))
        elif kind == "restate":
            ops.append(Op(kind, month, sync_day(draw, month), fact_rows(draw, keys, month, 0)))
        else:
            ops.append(Op(kind, month, sync_day(draw, month)))
    return ops


# ---------------------------------------------------------------------------------------
# The properties


def step(db: Db, world: World, op: Op | EventOp, where: str) -> None:
    """One operation, then the hook's refreshes; the tables must then be the model's."""
    conn = db.conn
    before = world.model(db.rules)
    if isinstance(op, Op):
        months = apply_facts(conn, world, op)["snapshot_months"]
    else:
        months = event_months(conn, world, apply_events(conn, world, op))
    after = world.model(db.rules)
    label(after)
    changed = changed_months(before, after)
    if isinstance(op, Op) and changed - {month_end(op.month)}:
        event("a facts change reached another month")
    elif isinstance(op, EventOp) and changed:
        event("an events change reached a month")
    stale = changed - set(months)
    assert not stale, f"{where}: months whose snapshot changed but not listed: {sorted(stale)}"
    for month in months:
        refresh(conn, month)
    assert_matches_model(conn, after, where)


def label(expected: dict[str, list[tuple]]) -> None:
    """Tell hypothesis which statuses the example made true (--hypothesis-show-statistics)."""
    names = [f.name for f in fields(BusinessRow)]
    for row in expected["business"]:
        for name, value in zip(names, row, strict=True):
            if value is True:
                event(f"business row with {name}")
        if row[names.index("plan_count")] > 1:
            event("business row with plan_count > 1")


def run(db: Db, ops: list[Op | EventOp]) -> None:
    conn = db.conn
    world = reset(conn)
    check_columns(conn)
    for i, op in enumerate(ops, 1):
        step(db, world, op, f"after step {i} ({repr(op).splitlines()[0]})")

    # a second refresh of every loaded month changes nothing, not even updated_at
    loaded = loaded_months(world.facts)
    before = {kind: db_rows(conn, kind) for kind in SNAPSHOT_TABLES}
    for month in loaded:
        result = refresh(conn, month)
        changes = {
            k: v for k, v in result.items() if k.endswith(("_inserted", "_updated", "_deleted"))
        }
        assert set(changes.values()) == {0}, f"second refresh of {month}: {changes}"
    assert {kind: db_rows(conn, kind) for kind in SNAPSHOT_TABLES} == before
    # a month that is not loaded has no rows
    absent = next(
        month_end(m) for m in [*CANDIDATE_MONTHS, date(2030, 1, 1)] if month_end(m) not in loaded
    )
    result = refresh(conn, absent)
    assert (result["business_rows"], result["plan_rows"]) == (0, 0)
    assert all(db_rows(conn, kind, absent) == [] for kind in SNAPSHOT_TABLES)
    assert_matches_model(conn, world.model(db.rules), "at the end")


def _f(month: date, plan: str, aum: int, company: str = "C1", line: str = "PL201") -> Fact:
    return Fact(month, company, plan, line, aum, "B1", "F1")


def _award(day: date | None, company: str = "C1", line: str = "PL201") -> Event:
    return Event(company, line, "P9", day)


DEC23, JAN, FEB, MAR = date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
# Hand-made sequences tried first on every run, one per dependency of docs/snapshots.md.
#: A pair's first appearance moves to an earlier month loaded later, back when it is
#: deleted, and to a later month when its month is restated without the pair.
FIRST_APPEARANCE_MOVES = [
    Op("load", FEB, 1, (_f(FEB, "P1", 10),)),
    Op("load", MAR, 1, (_f(MAR, "P1", 10),)),
    Op("load", JAN, 1, (_f(JAN, "P2", 5),)),
    Op("delete", JAN, 1),
    Op("restate", FEB, 1, (_f(FEB, "P1", 10, company="C2"),)),
]
#: The reference month of 2024 moves (is_existing, hence is_new, of every 2024 month), and
#: an award is re-dated into the previous year, then deleted.
REFERENCE_MONTH_MOVES = [
    EventOp("insert", "award", rows=(_award(date(2024, 2, 15)), _award(None))),
    Op("load", JAN, 1, (_f(JAN, "P1", 0),)),
    Op("load", MAR, 31, (_f(MAR, "P1", 100),)),
    Op("load", DEC23, 1, (_f(DEC23, "P1", 100),)),
    EventOp("redate", "award", picks=(0,), new_date=date(2023, 12, 31)),
    EventOp("delete", "award", picks=(0,)),
]
#: A deleted month is synced again, and its neighbour restated; losses on the year's
#: boundaries.
DELETE_THEN_RESYNC = [
    Op("load", DEC23, 1, (_f(DEC23, "P1", 1), _f(DEC23, "P2", 0))),
    Op("load", JAN, 1, (_f(JAN, "P1", 1),)),
    EventOp("insert", "loss", rows=(_award(date(2024, 1, 1)), _award(date(2023, 12, 31)))),
    Op("delete", DEC23, 1),
    Op("resync", DEC23, 31),
    Op("restate", JAN, 15, (_f(JAN, "P2", 3),)),
]


@example(ops=FIRST_APPEARANCE_MOVES)
@example(ops=REFERENCE_MONTH_MOVES)
@example(ops=DELETE_THEN_RESYNC)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=universes())
def test_snapshots_follow_the_model_through_any_change(db: Db, ops: list) -> None:
    note("operations:\n  " + "\n  ".join(map(repr, ops)))
    run(db, ops)


# ---------------------------------------------------------------------------------------
# As of m


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Op], list[EventOp], list[Op | EventOp]]:
    """(early months loaded in order, events inserted before them, later changes). Later
    changes only touch what no early month can see: months after the last early month,
    events reported after its month-end or in a year before the first early month, or with
    a NULL date."""
    early = sorted(
        draw(st.lists(st.sampled_from(CANDIDATE_MONTHS[:-1]), min_size=1, max_size=5, unique=True))
    )
    later_months = [m for m in CANDIDATE_MONTHS if m > early[-1]]
    later = draw(st.lists(st.sampled_from(later_months), min_size=1, max_size=4, unique=True))
    keys = draw(st.lists(st.sampled_from(FACT_KEYS), min_size=1, max_size=8, unique=True))
    pairs = pairs_of(keys)

    first_events = draw(st.lists(events(pairs, event_days(early)), max_size=6))
    before_ops = [
        EventOp("insert", t, rows=tuple(first_events[i::2])) for i, t in enumerate(EVENT_TABLES)
    ]
    loads = [Op("load", m, sync_day(draw, m), fact_rows(draw, keys, m, 1)) for m in early]

    last_end, first_year = month_end(early[-1]), early[0].year
    late_dates = st.one_of(
        event_dates(EVENT_MONTHS).filter(lambda d: d > last_end or d.year < first_year),
        st.none(),
    )
    changes: list[Op | EventOp] = []
    for month in draw(st.permutations(later)):
        changes.append(Op("load", month, sync_day(draw, month), fact_rows(draw, keys, month, 1)))
        if draw(st.booleans()):
            rows = draw(st.lists(events(pairs, late_dates), min_size=1, max_size=4))
            changes.append(
                EventOp("insert", draw(st.sampled_from(list(EVENT_TABLES))), rows=tuple(rows))
            )
    if draw(st.booleans()):
        month = draw(st.sampled_from(later))
        changes.append(Op("restate", month, sync_day(draw, month), fact_rows(draw, keys, month, 0)))
    return loads, before_ops, changes


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_an_old_month_keeps_the_rows_it_had_when_it_was_loaded(default_db: Db, history) -> None:
    loads, before_ops, changes = history
    note("early events:\n  " + "\n  ".join(map(repr, before_ops)))
    note("early loads:\n  " + "\n  ".join(map(repr, loads)))
    note("later changes:\n  " + "\n  ".join(map(repr, changes)))
    conn, rules = default_db.conn, default_db.rules
    world = reset(conn)
    for op in before_ops:
        step(default_db, world, op, f"early {op.kind} {op.table}")
    recorded = {}
    for op in loads:
        step(default_db, world, op, f"early load {op.month:%Y-%m}")
        recorded[month_end(op.month)] = {
            kind: db_rows(conn, kind, op.month) for kind in SNAPSHOT_TABLES
        }
    for op in changes:
        step(default_db, world, op, "later change")

    for month, rows in recorded.items():
        # the model agrees the month's rows are unchanged ...
        model = snapshots(
            world.facts,
            COMPANIES,
            world.events["award"].values(),
            world.events["loss"].values(),
            rules,
            months=[month],
        )
        assert [astuple(r) for r in model[0]] == without_updated_at(rows["business"])
        assert [astuple(r) for r in model[1]] == without_updated_at(rows["plan"])
        # ... and so does the database: a refresh now changes nothing, not even updated_at
        result = refresh(conn, month)
        changes_ = [
            v for k, v in result.items() if k.endswith(("_inserted", "_updated", "_deleted"))
        ]
        assert changes_ == [0] * 6, f"refresh of {month} later: {result}"
        for kind in SNAPSHOT_TABLES:
            assert db_rows(conn, kind, month) == rows[kind], f"{kind} rows of {month} changed"
