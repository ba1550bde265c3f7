"""`cmdm summary`, the end of `make demo`: every figure is checked against the output tables
read row by row and aggregated here in Python, not against the module's own SQL.

One demo history (80 companies × 14 months, so a January re-evaluates the annual flags)
is loaded through the hooks, as the demo does, and shared by the tests of this file; the
tests that change the database make their own.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from dbutil import demo_database
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.demo import DemoSpec

runner = CliRunner()
SPEC = DemoSpec(companies=80, months=14, seed=5)
SNAPSHOT = "customer.fct_customer_business_monthly_status"


@pytest.fixture(scope="module")
def demo_url(admin_url: str) -> Iterator[str]:
    with demo_database(admin_url, SPEC) as url:
        yield url


def summary_json(url: str, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["summary", "--json", "--database-url", url, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def snapshot_rows(url: str) -> tuple[list[str], list[dict[str, Any]]]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(f"SELECT * FROM {SNAPSHOT}")
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    flags = [n for n in names if rows and isinstance(rows[0][n], bool)]
    return flags, rows


def test_every_status_counted_per_month(demo_url: str) -> None:
    flags, rows = snapshot_rows(demo_url)
    got = summary_json(demo_url)

    assert got["statuses"] == flags
    assert len(flags) >= 7  # the five of the base schema and the ones rules deploys add
    expected: dict[date, dict[str, Any]] = defaultdict(
        lambda: {"rows": 0, "aum": Decimal(0), "companies": set(), "counts": Counter()}
    )
    for row in rows:
        month = expected[row["snapshot_month"]]
        month["rows"] += 1
        month["aum"] += row["aum_balance"]
        month["companies"].add(row["company_id"])
        month["counts"].update(f for f in flags if row[f])
    assert [m["month"] for m in got["months"]] == [m.isoformat() for m in sorted(expected)]
    assert len(got["months"]) == SPEC.months
    for month in got["months"]:
        want = expected[date.fromisoformat(month["month"])]
        assert month["rows"] == want["rows"]
        assert Decimal(month["aum"]) == want["aum"]
        assert month["companies"] == len(want["companies"])
        assert month["counts"] == {f: want["counts"][f] for f in flags}
    # The demo makes every status happen somewhere, or this test would prove little.
    assert all(sum(m["counts"][f] for m in got["months"]) > 0 for f in flags)


def test_versions_top_strategic_and_rejects(demo_url: str) -> None:
    got = summary_json(demo_url)
    last = got["month"]
    assert last == max(m["month"] for m in got["months"])
    with psycopg.connect(demo_url) as conn:
        versions = conn.execute(
            "SELECT contract_status, valid_to, is_strategic FROM customer.customer_plan_contract"
        ).fetchall()
        strategic = conn.execute(
            f"SELECT company_id, aum_balance FROM {SNAPSHOT}"
            " WHERE snapshot_month = %s AND is_strategic",
            (date.fromisoformat(last),),
        ).fetchall()
        names = dict(conn.execute('SELECT company_id, "客户名称" FROM customer."年金客户"'))
        rejected = conn.execute("SELECT reason, period FROM cmdm.rejected_fact").fetchall()

    current = date(9999, 12, 31)
    by_status = {
        status: (
            sum(1 for s, _, _ in versions if s == status),
            sum(1 for s, to, _ in versions if s == status and to == current),
            sum(1 for s, to, strat in versions if s == status and to == current and strat),
        )
        for status in {s for s, _, _ in versions}
    }
    assert {
        v["contract_status"]: (v["versions"], v["current"], v["current_strategic"])
        for v in got["versions"]
    } == by_status

    totals: dict[str, Decimal] = defaultdict(Decimal)
    for company, aum in strategic:
        totals[company] += aum
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert len(ranked) == 10, "the demo should have at least 10 strategic customers"
    assert [(c["company_id"], Decimal(c["aum"])) for c in got["top_strategic"]] == ranked
    assert [c["company_name"] for c in got["top_strategic"]] == [names[c] for c, _ in ranked]
    assert all(c["branch"] for c in got["top_strategic"])

    reasons = Counter(reason for reason, _ in rejected)
    assert {r["reason"]: r["rows"] for r in got["rejects"]} == reasons
    assert reasons, "the demo writes a few bad rows so that rejects show"
    for r in got["rejects"]:
        periods = sorted({p for reason, p in rejected if reason == r["reason"]})
        assert (r["months"], r["first_month"], r["last_month"]) == (
            len(periods),
            periods[0].isoformat(),
            periods[-1].isoformat(),
        )


def test_month_option_picks_the_product_lines_and_top_customers(demo_url: str) -> None:
    got = summary_json(demo_url, "--month", "2024-12")
    assert got["month"] == "2024-12-31"
    _, rows = snapshot_rows(demo_url)
    december = [r for r in rows if r["snapshot_month"] == date(2024, 12, 31)]
    per_line: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for row in december:
        per_line[row["product_line_code"]][0] += 1
        per_line[row["product_line_code"]][1] += row["aum_balance"]
    assert {
        p["product_line_code"]: [p["customers"], Decimal(p["aum"])] for p in got["product_lines"]
    } == per_line
    assert all(p["month"] == "2024-12-31" for p in got["product_lines"])


def test_text_output_names_every_part_and_what_to_run_next(demo_url: str) -> None:
    data = summary_json(demo_url)
    result = runner.invoke(app, ["summary", "--database-url", demo_url])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for title in (
        "Contract versions by status",
        "Statuses per snapshot month",
        "strategic customers by AUM, 2025-02",
        "Rejected fact rows by reason",
    ):
        assert title in out
    top = data["top_strategic"][0]["company_id"]
    assert f"cmdm explain --company {top} --month 2025-02" in out
    assert "cmdm report --month 2025-02 --out report.html" in out
    # Every month's line is there, with its numbers whole (never cut to an ellipsis).
    for month in data["months"]:
        line = next(x for x in out.splitlines() if x.strip().startswith(month["month"][:7]))
        assert f"{month['rows']:,}" in line and "…" not in line


def test_a_status_column_added_by_a_deploy_shows_up(admin_url: str) -> None:
    with demo_database(admin_url, DemoSpec(companies=20, months=2, seed=1)) as url:
        with psycopg.connect(url) as conn:
            conn.execute(f"ALTER TABLE {SNAPSHOT} ADD COLUMN is_probe boolean")
            conn.execute(f"UPDATE {SNAPSHOT} SET is_probe = company_id < 'C000010'")
            conn.commit()
            [(expected,)] = conn.execute(
                f"SELECT count(*) FROM {SNAPSHOT} WHERE is_probe AND snapshot_month = %s",
                (date(2024, 2, 29),),
            ).fetchall()
        got = summary_json(url)
    assert got["statuses"][-1] == "is_probe"
    assert got["months"][-1]["counts"]["is_probe"] == expected > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2030-01"], "Error: no snapshot for 2030-01"),
        (["--month", "2024-13"], "Error: '2024-13' is not a month"),
    ],
)
def test_bad_month_is_one_line(demo_url: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["summary", "--database-url", demo_url, *args])
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_nothing_loaded_says_what_to_do(rules_url: str) -> None:
    result = runner.invoke(app, ["summary", "--database-url", rules_url])
    assert result.exit_code == 1
    assert "no snapshot month yet: nothing has been loaded" in result.stderr
    assert "cmdm demo load" in result.stderr
