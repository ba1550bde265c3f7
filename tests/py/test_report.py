"""`cmdm report` as a user runs it: the page it writes holds the numbers of the snapshot
tables (checked against SQL written here, not summary.py), one chart per status with a point
per snapshot month, AUM by product line, the deployed rules, escaped data, no URL, and the
same bytes for the same data; and its errors are one line.

One database for the module: 60 demo companies over 14 months from 2024-06 (a year boundary,
so the annual statuses change), loaded with the hooks on, plus a customer whose name is
markup, made strategic so that it appears in the page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dbutil import demo_database, query
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.demo import DemoSpec, load_demo
from cmdm_admin.loader import load_rules_from_texts

runner = CliRunner()

SPEC = DemoSpec(companies=60, months=14, seed=5, start=date(2024, 6, 1))
LAST = date(2025, 7, 31)
SNAPSHOT = "customer.fct_customer_business_monthly_status"
EVIL_ID = "CEVIL"
EVIL_NAME = '<script>alert(1)</script>&"'
INSERT_FACT = (
    'INSERT INTO business."规模明细" ("月度", "计划代码", company_id, "产品线代码", "组合代码",'
    ' "期末资产规模", "机构代码", "机构名称") VALUES (%s, %s, %s, %s, %s, %s, %s, %s)'
)


@pytest.fixture(scope="module")
def url(admin_url: str) -> Iterator[str]:
    with demo_database(admin_url, SPEC) as database:
        with psycopg.connect(database) as conn:  # each commit runs the post-ETL hook
            conn.execute(
                'INSERT INTO customer."年金客户" (company_id, "客户名称") VALUES (%s, %s)',
                (EVIL_ID, EVIL_NAME),
            )
            conn.commit()
            # 9 亿 at the reference month of 2025 (2024-12) makes it strategic all 2025.
            for month in (date(2024, 12, 31), LAST):
                conn.execute(
                    INSERT_FACT,
                    (month, "PEVIL", EVIL_ID, "PL201", "F1", 900_000_000, "B01", "<b>分公司</b>"),
                )
                conn.commit()
        yield database


def cli(url: str, *args: str) -> Any:
    return runner.invoke(app, [*args, "--database-url", url])


def write(url: str, out: Path, *args: str) -> str:
    result = cli(url, "report", "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def error_line(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    return lines[0]


class _Text(HTMLParser):
    """The text a browser shows (entities decoded), whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.skip += tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag == "style"

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join("".join(parser.parts).split())


def counts_by_month(url: str, statuses: list[str]) -> dict[date, dict[str, int]]:
    filters = ", ".join(f"count(*) FILTER (WHERE {s})" for s in statuses)
    rows = query(url, f"SELECT snapshot_month, {filters} FROM {SNAPSHOT} GROUP BY 1 ORDER BY 1")
    return {month: dict(zip(statuses, counts, strict=True)) for month, *counts in rows}


def svg_of(page: str, attributes: str) -> str:
    match = re.search(rf"<svg [^>]*{attributes}[^>]*>.*?</svg>", page, re.S)
    assert match, f"no chart with {attributes}"
    return match.group(0)


def test_the_page_holds_the_months_numbers_charts_and_rules(url: str, tmp_path: Path) -> None:
    page = write(url, tmp_path / "report.html", "--month", "2025-07")
    statuses = query_statuses(url)
    months = counts_by_month(url, statuses)
    assert len(months) == SPEC.months and LAST in months
    (rows,) = query(url, f"SELECT count(*) FROM {SNAPSHOT} WHERE snapshot_month = %s", (LAST,))[0]

    # The month's counts, as SQL counts them, each with its share of rows.
    for status in statuses:
        count = months[LAST][status]
        card = re.search(rf'data-status="{status}" data-count="(\d+)"', page)
        assert card and int(card.group(1)) == count, status
        assert f"{100 * count / rows:.1f}% of rows" in page
    assert f'data-figure="rows" data-value="{rows}"' in page

    # One chart per status, one point per snapshot month, each point's value right.
    assert page.count('data-chart="status"') == len(statuses)
    for status in statuses:
        chart = svg_of(page, f'data-chart="status" data-status="{status}"')
        line = re.search(rf'<polyline data-series="{status}" points="([^"]+)"', chart)
        assert line and len(line.group(1).split()) == len(months)
        points = dict(re.findall(r"<title>[^<]* · (\d{4}-\d{2}): ([\d,]+)</title>", chart))
        assert points == {f"{m:%Y-%m}": f"{c[status]:,}" for m, c in months.items()}

    aum = svg_of(page, 'data-chart="aum"')
    total = re.search(r'<polyline data-series="total" points="([^"]+)"', aum)
    assert total and len(total.group(1).split()) == len(months)

    # Every status: its name, description and grain from the deployed rules.
    (texts,) = query(
        url, "SELECT rules_text FROM cmdm.rule_deployment ORDER BY deployment_id DESC LIMIT 1"
    )[0]
    ruleset = load_rules_from_texts(texts)
    text = visible_text(page)
    for name, status in ruleset.statuses.items():
        assert f'data-rule="{name}"' in page
        assert " ".join(status.description.split()) in text, name
        assert f"grain: {status.grain}" in text
    assert "SUM(期末资产规模) > 0" in text  # is_existing's condition, in words
    assert "otherwise 停缴" in text  # the contract status rule's default
    (revision, sha) = query(
        url, "SELECT revision, sha256 FROM cmdm.rule_deployment ORDER BY deployment_id DESC"
    )[0]
    assert revision in text and sha[:12] in text


def query_statuses(url: str) -> list[str]:
    return [
        name
        for (name,) in query(
            url,
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND atttypid = 'boolean'::regtype AND attnum > 0 AND NOT attisdropped"
            " ORDER BY attnum",
            (SNAPSHOT,),
        )
    ]


def test_product_lines_with_customers_and_aum_in_yi(url: str, tmp_path: Path) -> None:
    page = write(url, tmp_path / "report.html", "--month", "2025-07")
    lines = query(
        url,
        f"""SELECT product_line_code, product_line_name, count(*), sum(aum_balance)
              FROM {SNAPSHOT} WHERE snapshot_month = %s GROUP BY 1, 2 ORDER BY 1""",
        (LAST,),
    )
    assert len(lines) >= 3
    for code, name, customers, aum in lines:
        row = re.search(rf'<tr data-product-line="{code}">(.*?)</tr>', page, re.S)
        assert row, code
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
        assert cells[1:4] == [name, f"{customers:,}", f"{aum / Decimal(10**8):,.2f}"]
        assert f'<rect data-product-line="{code}"' in page  # its bar


def test_company_names_are_escaped(url: str, tmp_path: Path) -> None:
    page = write(url, tmp_path / "report.html", "--month", "2025-07")
    assert EVIL_NAME in visible_text(page)  # shown as text, in the strategic table
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&#34;" in page
    assert "<b>分公司</b>" in visible_text(page) and "<b>" not in page
    assert "<script" not in page.lower()  # the page has no script at all


def test_nothing_points_outside_the_file(url: str, tmp_path: Path) -> None:
    page = write(url, tmp_path / "report.html")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", page, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", page, re.I)
    assert "http:" not in page and "https:" not in page
    assert '<meta charset="utf-8">' in page


def test_same_data_same_bytes(url: str, tmp_path: Path) -> None:
    first = tmp_path / "a.html"
    second = tmp_path / "b.html"
    write(url, first)
    write(url, second)
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary files were renamed


def test_default_month_is_the_newest_and_the_output_says_what_it_wrote(
    url: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = cli(url, "report", "--out", str(out))
    assert result.exit_code == 0, result.output
    size = out.stat().st_size
    assert f"({size / 1024:,.0f} KiB) for 2025-07, {SPEC.months} snapshot months" in result.output
    assert "<h1>2025-07" in out.read_text(encoding="utf-8")
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not mkstemp's 0600


def test_a_month_without_snapshot_is_one_line(url: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    line = error_line(cli(url, "report", "--month", "2023-01", "--out", str(out)))
    assert "no snapshot for 2023-01" in line and "2024-06 to 2025-07" in line
    assert not out.exists()


def test_unwritable_targets_are_one_line(url: str, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "report.html"
    assert "does not exist" in error_line(cli(url, "report", "--out", str(missing)))
    assert "is a directory" in error_line(cli(url, "report", "--out", str(tmp_path)))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "does not exist" in error_line(cli(url, "report", "--out", str(a_file / "r.html")))


def test_an_empty_database_says_so(rules_url: str, tmp_path: Path) -> None:
    line = error_line(cli(rules_url, "report", "--out", str(tmp_path / "r.html")))
    assert "no snapshot month yet" in line


def test_an_unmigrated_database_says_so(database_url: str, tmp_path: Path) -> None:
    line = error_line(cli(database_url, "report", "--out", str(tmp_path / "r.html")))
    assert "not migrated" in line


def test_a_single_snapshot_month_renders(rules_url: str, tmp_path: Path) -> None:
    with psycopg.connect(rules_url) as conn:
        load_demo(conn, DemoSpec(companies=8, months=1, seed=3, start=date(2024, 1, 1)))
    page = write(rules_url, tmp_path / "report.html")
    assert "2024-01 is the first snapshot month: nothing to compare with" in visible_text(page)
    for points in re.findall(r'<polyline data-series="[^"]+" points="([^"]+)"', page):
        assert len(points.split()) == 1
    assert not re.search(r'(?:points|x|y|cx|cy|width|height)="[^"]*(?:nan|inf)', page)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_a_read_only_directory_is_one_line(url: str, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        line = error_line(cli(url, "report", "--out", str(locked / "r.html")))
    finally:
        locked.chmod(0o700)
    assert "cannot write" in line and "Permission denied" in line
    assert list(locked.iterdir()) == []
