"""Indexes earn their cost (issue 16): every index on the output tables, contract_key and
the annual tables is kept only with a query that uses it, written down in docs/schema.md
("Indexes").

- The indexes in the catalog are exactly the ones the document lists: a new index comes
  with its reason, a dropped one leaves the list.
- Every listed index has a query under "The queries the indexes serve" (`-- uses: <index>`)
  whose plan uses it, except the two of contract_key that are there for a constraint alone
  (its primary key, and the unique key the versions' foreign key references), which must
  be the indexes of a primary key or unique constraint.
- 0010_lean_indexes' downgrade gives back exactly the indexes of the revision before it.

How a plan is shown to use its index: a demo history (60 companies, 14 months, through
the hooks) is ANALYZEd, and each query is EXPLAINed with `SET LOCAL enable_seqscan = off`.
At this size the planner would rightly scan most of these tables whole, so the test does
not show that the index beats a sequential scan (which depends on the size of the history
and the share of it a query reads); it shows that the query's predicate can use the index
and that, of the indexes the table has, the planner picks that one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from dbutil import demo_database, query, scratch_database

from cmdm_admin import migrate
from cmdm_admin.demo import DemoSpec
from cmdm_admin.project import project_dir

SCHEMA_DOC = project_dir() / "docs" / "schema.md"
SPEC = DemoSpec(companies=60, months=14, seed=5)
REVISION = "0010_lean_indexes"

#: The tables whose indexes are held to the document.
TABLES = (
    "customer_plan_contract",
    "contract_key",
    "fct_customer_business_monthly_status",
    "fct_customer_plan_monthly_status",
    "annual_reference",
    "annual_company_status",
    "annual_product_line_status",
    "annual_plan_status",
)

#: Indexes kept for a constraint alone, with no query of their own (lookups by key_id are
#: served by either, whichever the planner picks).
CONSTRAINT_ONLY = {"contract_key_pkey", "uq_contract_key_identity"}

CATALOG = """
SELECT c.relname::text, i.relname::text, pg_get_indexdef(i.oid)
  FROM pg_index x
  JOIN pg_class c ON c.oid = x.indrelid
  JOIN pg_class i ON i.oid = x.indexrelid
 WHERE c.relnamespace = 'customer'::regnamespace AND c.relname = ANY (%s)
"""


def index_section(path: Path = SCHEMA_DOC) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index("\n## Indexes\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def documented_indexes() -> set[tuple[str, str]]:
    """(table, index) of each row of the section's table."""
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", index_section(), re.MULTILINE)
    assert rows, "docs/schema.md: no index table under ## Indexes"
    return set(rows)


def documented_queries() -> list[tuple[str, str, str]]:
    """(index, title, SQL) of each ```sql block of the section."""
    found = []
    for block in re.findall(r"^```sql\n(.*?)^```", index_section(), re.MULTILINE | re.DOTALL):
        uses = re.findall(r"^-- uses: (\w+)\s*$", block, re.MULTILINE)
        assert len(uses) == 1, f"docs/schema.md: one `-- uses:` line per query:\n{block}"
        title = block.splitlines()[0].removeprefix("-- ")
        found.append((uses[0], title, block.strip().removesuffix(";")))
    assert found, "docs/schema.md: no queries under ## Indexes"
    return found


QUERIES = documented_queries()


def catalog(url: str) -> set[tuple[str, str, str]]:
    return set(query(url, CATALOG, (list(TABLES),)))


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


@pytest.fixture(scope="module")
def history(admin_url: str) -> Iterator[str]:
    with demo_database(admin_url, SPEC) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        yield url


def test_the_indexes_are_exactly_the_documented_ones(history: str) -> None:
    present = {(table, index) for table, index, _ in catalog(history)}
    documented = documented_indexes()
    assert present - documented == set(), "indexes without a reason in docs/schema.md"
    assert documented - present == set(), "documented indexes that do not exist"


def test_every_index_has_its_query_or_backs_a_key(history: str) -> None:
    documented = {index for _, index in documented_indexes()}
    queried = {index for index, _, _ in QUERIES}
    assert queried - documented == set(), "queries naming an index not in the table"
    assert documented - queried == CONSTRAINT_ONLY
    keys = {
        name
        for (name,) in query(
            history,
            "SELECT i.relname::text FROM pg_constraint k JOIN pg_class i ON i.oid = k.conindid"
            " WHERE k.contype IN ('p', 'u')",
        )
    }
    assert keys >= CONSTRAINT_ONLY, "a constraint-only index backs no primary or unique key"


@pytest.mark.parametrize(
    ("index", "title", "sql"), QUERIES, ids=[f"{i}: {t}" for i, t, _ in QUERIES]
)
def test_the_query_uses_its_index(history: str, index: str, title: str, sql: str) -> None:
    with psycopg.connect(history) as conn:
        conn.execute("SET LOCAL enable_seqscan = off")
        [(document,)] = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchall()
        conn.rollback()
    used = {n["Index Name"] for n in nodes(document[0]["Plan"]) if "Index Name" in n}
    assert index in used, f"{title}: the plan uses {sorted(used) or 'no index'}, not {index}"


def test_downgrade_gives_back_the_indexes_of_the_revision_before(admin_url: str) -> None:
    with scratch_database(admin_url) as url:
        script = ScriptDirectory.from_config(migrate.alembic_config(url))
        before = script.get_revision(REVISION).down_revision
        migrate.upgrade(url, before)
        old = catalog(url)
        migrate.upgrade(url)
        new = catalog(url)
        assert {(t, i) for t, i, _ in new} == documented_indexes()
        assert new < old
        migrate.downgrade(url, before)
        assert catalog(url) == old
