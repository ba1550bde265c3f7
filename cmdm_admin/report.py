"""`cmdm report`: one self-contained HTML page for a BI analyst — the month's status counts,
their trend over every snapshot month, AUM by product line, the largest strategic customers,
rejected facts, and the rules that define each status.

Where the numbers come from: `summary.py`, read in one REPEATABLE READ READ ONLY transaction
together with every month's AUM per product line and the deployed rules, so the page shows
one consistent state (the rules are the ones that produced the snapshots).

How the page is made: this module turns that data into small view objects (strings and
numbers, formatted here) and SVG charts; `templates/report.html.j2` lays them out, rendered
by Jinja with autoescape on. Jinja rather than string building because the page is mostly
markup with loops, and autoescape escapes every value (company names and rule descriptions
are data) without an `escape()` call at each place that could be forgotten. The charts are
drawn in Python with `markupsafe.Markup.format`, which escapes every interpolated value as
well, and reach the template as Markup. No JavaScript, no external file, font or URL: the
page opens offline and its tooltips are SVG `<title>` elements.

Deterministic: the same database content gives the same bytes. Nothing reads the clock;
every list is in the order its query sorts it (or sorted here); numbers are formatted with
a fixed precision.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cmdm_admin.errors import CmdmError
from cmdm_admin.explain import RulesUsed, deployed_rules, node_label
from cmdm_admin.periods import label
from cmdm_admin.rules import Rule, RuleSet
from cmdm_admin.summary import (
    MonthStatuses,
    ProductLineAum,
    Summary,
    product_lines,
    read_only_snapshot,
    summary_in_snapshot,
)

YI = Decimal(100_000_000)  # AUM is read in 亿 (10^8 CNY)
#: One colour per status (table order) and per product line (code order), cycled.
STATUS_COLOURS = (
    "#2563eb",
    "#0d9488",
    "#d97706",
    "#7c3aed",
    "#db2777",
    "#0891b2",
    "#dc2626",
    "#65a30d",
    "#475569",
    "#c2410c",
)
LINE_COLOURS = (
    "#3b6fb6",
    "#e08a2e",
    "#3f9e6e",
    "#c44e52",
    "#8172b2",
    "#4ea6b8",
    "#b8862b",
    "#8c6d5c",
    "#d16fa4",
    "#7f7f7f",
)
GRID, AXIS, INK, MUTED = "#e5e7eb", "#9ca3af", "#1f2937", "#6b7280"


class ReportError(CmdmError):
    """The report cannot be written where --out points."""


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    size: int  # bytes written
    month: date  # the month-end the page is about
    months: tuple[date, ...]  # every snapshot month charted


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, read in one snapshot of the database."""

    summary: Summary
    line_months: list[ProductLineAum]  # every month's AUM per product line
    rules: RulesUsed


# --- reading and writing ------------------------------------------------------------------


def write_report(conn: psycopg.Connection, out: Path, month: date | None = None) -> WrittenReport:
    """Render the report of `month` (any day of it; default the newest snapshot month) and
    write it to `out` atomically: a reader never sees half a page."""
    _check_target(out)
    data = read_report_data(conn, month)
    page = render_report(data).encode("utf-8")
    _write_atomically(out, page)
    return WrittenReport(
        path=out,
        size=len(page),
        month=data.summary.month,
        months=tuple(m.month for m in data.summary.months),
    )


def read_report_data(conn: psycopg.Connection, month: date | None = None) -> ReportData:
    with read_only_snapshot(conn):
        summary = summary_in_snapshot(conn, month)
        line_months = product_lines(conn, summary.statuses)
        rules = deployed_rules(conn)
    return ReportData(summary, line_months, rules)


def _check_target(out: Path) -> None:
    """Fail before any query when the file cannot be placed there."""
    if out.is_dir():
        raise ReportError(f"cannot write {out}: it is a directory", hint="name a file, e.g. --out")
    if not out.parent.is_dir():
        raise ReportError(
            f"cannot write {out}: directory {out.parent} does not exist",
            hint="create it first, or choose another --out",
        )


def _write_atomically(out: Path, data: bytes) -> None:
    """A temporary file in the same directory, then a rename over `out`."""
    try:
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise _unwritable(out, exc) from exc
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.chmod(_new_file_mode())  # mkstemp makes 0600; a report is an ordinary file
        os.replace(temporary, out)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise _unwritable(out, exc) from exc


def _unwritable(out: Path, exc: OSError) -> ReportError:
    return ReportError(
        f"cannot write {out}: {exc.strerror or exc}",
        hint="choose an --out in a directory you can write to",
    )


def _new_file_mode() -> int:
    """0666 minus the umask, as open() would create it (os.umask only reads by setting)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


# --- formatting -----------------------------------------------------------------------------


def count_text(value: int) -> str:
    return f"{value:,}"


def yi(amount: Decimal | None) -> Decimal:
    return (amount or Decimal(0)) / YI


def yi_text(amount: Decimal | None) -> str:
    return f"{yi(amount):,.2f}"


def share_text(part: int | Decimal, whole: int | Decimal) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def delta_text(change: int | Decimal | None, digits: int = 0) -> str:
    """+12 / −3 / ±0, with a true minus sign; '–' when there is nothing to compare with."""
    if change is None:
        return "–"
    if change == 0:
        return "±0"
    sign = "+" if change > 0 else "−"
    return f"{sign}{abs(change):,.{digits}f}"


def direction(change: int | Decimal | None) -> str:
    if change is None:
        return "none"
    return "up" if change > 0 else "down" if change < 0 else "same"


def headline(description: str) -> str | None:
    """'当年中标 (won this year): an award …' -> '当年中标 (won this year)': the name the
    rules give a status before its definition, when they give one."""
    head, colon, _ = description.partition(":")
    return head.strip() if colon and 0 < len(head.strip()) <= 40 else None


def _flat(text: str) -> str:
    return " ".join(text.split())


# --- SVG charts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    key: str  # data-series attribute
    name: str  # shown in tooltips
    colour: str
    values: tuple[float, ...]  # one per month


@dataclass(frozen=True)
class Plot:
    """The plot area of a chart inside its viewBox."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    @property
    def inner_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def inner_height(self) -> int:
        return self.height - self.top - self.bottom

    def x(self, index: int, count: int) -> float:
        if count == 1:
            return self.left + self.inner_width / 2
        return self.left + self.inner_width * index / (count - 1)

    def y(self, value: float, top_value: float) -> float:
        return self.top + self.inner_height * (1 - value / top_value)


def nice_ticks(largest: float, wanted: int = 4, smallest_step: float = 0) -> tuple[float, float]:
    """(axis top, step): a 1-2-5 step giving about `wanted` gridlines above 0, never below
    `smallest_step` (1 for counts: no gridline at half a customer)."""
    if largest <= 0:
        return 1.0, 1.0
    rough = largest / wanted
    power = 10 ** math.floor(math.log10(rough))
    step = next(f * power for f in (1, 2, 2.5, 5, 10) if f * power >= rough)
    step = max(step, smallest_step)
    return math.ceil(largest / step - 1e-9) * step, step


def axis_text(value: float, step: float) -> str:
    """A gridline's value with as many decimals as the step needs (2.5 -> one)."""
    decimals = 0
    while decimals < 3 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    return f"{value:,.{decimals}f}"


def month_tick_indices(months: Sequence[date], every: int) -> list[int]:
    """Months to label on an x axis: the first, every `every`-th calendar month counted from
    January, and the last, dropping a label too close to the one before it."""
    wanted = [
        i for i, m in enumerate(months) if i in (0, len(months) - 1) or (m.month - 1) % every == 0
    ]
    gap = max(1, every * 2 // 3)
    kept: list[int] = []
    for i in wanted:
        if kept and i - kept[-1] < gap:
            if i != len(months) - 1:
                continue
            kept.pop()  # the last month wins over a label just before it
        kept.append(i)
    return kept


def _points(plot: Plot, values: Sequence[float], top_value: float) -> list[tuple[float, float]]:
    return [(plot.x(i, len(values)), plot.y(v, top_value)) for i, v in enumerate(values)]


def _point_list(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _axes(
    plot: Plot,
    months: Sequence[date],
    top_value: float,
    step: float,
    every: int,
    highlight: date | None,
) -> list[Markup]:
    """Gridlines with value labels, month ticks and labels, the highlighted month."""
    parts: list[Markup] = []
    ticks = round(top_value / step)
    for k in range(ticks + 1):
        value = step * k
        y = plot.y(value, top_value)
        parts.append(
            Markup('<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}"/>').format(
                plot.left, y, plot.width - plot.right, y, AXIS if k == 0 else GRID
            )
        )
        parts.append(
            Markup('<text x="{:.1f}" y="{:.1f}" text-anchor="end" class="tick">{}</text>').format(
                plot.left - 6, y + 3.5, axis_text(value, step)
            )
        )
    base = plot.height - plot.bottom
    for i in range(len(months)):
        x = plot.x(i, len(months))
        parts.append(
            Markup('<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}"/>').format(
                x, base, x, base + 3, AXIS
            )
        )
    for i in month_tick_indices(months, every):
        x = plot.x(i, len(months))
        parts.append(
            Markup('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" class="tick">{}</text>').format(
                x, base + 15, _label_anchor(i, len(months)), label(months[i])
            )
        )
    if highlight in months:
        x = plot.x(months.index(highlight), len(months))
        parts.append(
            Markup(
                '<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" class="highlight"/>'
            ).format(x, plot.top - 4, x, base)
        )
    return parts


def _label_anchor(index: int, count: int) -> str:
    """Month labels stay inside the plot: the first starts at its tick, the last ends there."""
    if count == 1:
        return "middle"
    return "start" if index == 0 else "end" if index == count - 1 else "middle"


def _svg(plot: Plot, attributes: dict[str, str], parts: Sequence[Markup]) -> Markup:
    attrs = Markup("").join(Markup(' {}="{}"').format(k, v) for k, v in attributes.items())
    return (
        Markup('<svg viewBox="0 0 {} {}" width="{}" height="{}" class="chart"{}>').format(
            plot.width, plot.height, plot.width, plot.height, attrs
        )
        + Markup("").join(parts)
        + Markup("</svg>")
    )


def line_chart(
    months: Sequence[date],
    series: Series,
    *,
    attributes: dict[str, str],
    smallest_step: float = 0,
    tooltip_unit: str = "",
    highlight: date | None = None,
) -> Markup:
    """One series as a line over the months, with a light area below it and a dot per month
    whose tooltip gives the month and value."""
    plot = Plot(width=360, height=150, left=46, right=12, top=10, bottom=24)
    top_value, step = nice_ticks(max(series.values, default=0), 3, smallest_step)
    parts = _axes(plot, months, top_value, step, 12, highlight)
    points = _points(plot, series.values, top_value)
    base = plot.height - plot.bottom
    area = [(points[0][0], base), *points, (points[-1][0], base)]
    parts.append(
        Markup('<polygon points="{}" fill="{}" fill-opacity="0.10"/>').format(
            _point_list(area), series.colour
        )
    )
    parts.append(
        Markup(
            '<polyline data-series="{}" points="{}" fill="none" stroke="{}" stroke-width="2"'
            ' stroke-linejoin="round"/>'
        ).format(series.key, _point_list(points), series.colour)
    )
    parts.extend(_dots(months, series, points, tooltip_unit, highlight))
    return _svg(plot, attributes, parts)


def _dots(
    months: Sequence[date],
    series: Series,
    points: Sequence[tuple[float, float]],
    unit: str,
    highlight: date | None,
) -> list[Markup]:
    return [
        Markup(
            '<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="{}" stroke="#fff" stroke-width="1">'
            "<title>{} · {}: {}{}</title></circle>"
        ).format(
            x,
            y,
            "3.5" if month == highlight else "2.2",
            series.colour,
            series.name,
            label(month),
            _tooltip_number(value),
            unit,
        )
        for month, value, (x, y) in zip(months, series.values, points, strict=True)
    ]


def _tooltip_number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def stacked_area_chart(
    months: Sequence[date],
    layers: Sequence[Series],
    total: Series,
    *,
    highlight: date | None = None,
) -> Markup:
    """AUM per month: one stacked band per product line, the total as a line on top."""
    plot = Plot(width=1080, height=280, left=56, right=16, top=14, bottom=26)
    top_value, step = nice_ticks(max(total.values, default=0), 5)
    parts = _axes(plot, months, top_value, step, 3, highlight)
    below = [0.0] * len(months)
    for layer in layers:
        above = [b + v for b, v in zip(below, layer.values, strict=True)]
        outline = _points(plot, above, top_value) + _points(plot, below, top_value)[::-1]
        parts.append(
            Markup(
                '<polygon data-series="{}" points="{}" fill="{}" fill-opacity="0.78"'
                ' stroke="#fff" stroke-width="0.6"><title>{}</title></polygon>'
            ).format(layer.key, _point_list(outline), layer.colour, layer.name)
        )
        below = above
    points = _points(plot, total.values, top_value)
    parts.append(
        Markup(
            '<polyline data-series="{}" points="{}" fill="none" stroke="{}" stroke-width="2"/>'
        ).format(total.key, _point_list(points), total.colour)
    )
    parts.extend(_dots(months, total, points, " 亿", highlight))
    return _svg(plot, {"data-chart": "aum", "aria-label": "AUM per month (亿)"}, parts)


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: float
    value_label: str
    colour: str


def bar_chart(bars: Sequence[Bar]) -> Markup:
    """Horizontal bars, labels on the left, values at the bar's end."""
    row, left, right = 34, 170, 150
    plot = Plot(
        width=760, height=row * max(len(bars), 1) + 8, left=left, right=right, top=4, bottom=4
    )
    largest = max((b.value for b in bars), default=0) or 1
    parts: list[Markup] = []
    for i, bar in enumerate(bars):
        y = plot.top + i * row
        length = plot.inner_width * bar.value / largest
        parts.append(
            Markup(
                '<text x="{}" y="{:.1f}" text-anchor="end" class="bar-label">{}</text>'
                '<rect data-product-line="{}" x="{}" y="{}" width="{:.1f}" height="{}" rx="3"'
                ' fill="{}"><title>{}: {}</title></rect>'
                '<text x="{:.1f}" y="{:.1f}" class="bar-value">{}</text>'
            ).format(
                left - 10,
                y + row / 2 + 4,
                bar.label,
                bar.key,
                left,
                y + 6,
                max(length, 1.0),
                row - 12,
                bar.colour,
                bar.label,
                bar.value_label,
                left + max(length, 1.0) + 8,
                y + row / 2 + 4,
                bar.value_label,
            )
        )
    return _svg(plot, {"data-chart": "product-lines", "aria-label": "AUM by product line"}, parts)


# --- the page's view ------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A headline number with its change against the previous snapshot month."""

    key: str
    title: str
    value: str
    raw: str  # the exact number, for data-value
    note: str
    delta: str
    direction: str


@dataclass(frozen=True)
class TreeNode:
    kind: str
    label: str
    children: tuple[TreeNode, ...]


@dataclass(frozen=True)
class RuleView:
    grain: str
    annual: bool
    description: str
    tree: TreeNode


@dataclass(frozen=True)
class StatusView:
    name: str
    headline: str | None
    short: str  # the headline's Chinese name (当年中标), else the column name: table headers
    colour: str
    count: int
    count_text: str
    share: str
    delta: str
    direction: str
    chart: Markup
    rule: RuleView | None  # None: the column has no rule in the rules used


@dataclass(frozen=True)
class CaseView:
    value: str
    tree: TreeNode


@dataclass(frozen=True)
class ContractView:
    source: str
    measure: str
    cases: tuple[CaseView, ...]
    default: str
    on_missing: str
    suspended_status: str | None
    tracked_columns: tuple[str, ...]


@dataclass(frozen=True)
class LineRow:
    code: str
    name: str
    colour: str
    customers: str
    aum: str
    share: str
    counts: tuple[str, ...]


def tree(ruleset: RuleSet, node: Rule, grain: str, month: date) -> TreeNode:
    """A rule as nested nodes, each labelled in words the way `cmdm explain` labels it."""
    return TreeNode(
        node.kind,
        node_label(ruleset, node, grain, month),
        tuple(tree(ruleset, child, grain, month) for child in node.children),
    )


def rule_view(ruleset: RuleSet, name: str, month: date) -> RuleView | None:
    status = ruleset.statuses.get(name)
    if status is None:
        return None
    return RuleView(
        grain=status.grain,
        annual=status.annual,
        description=_flat(status.description),
        tree=tree(ruleset, status.rule, status.grain, month),
    )


def contract_view(ruleset: RuleSet, month: date) -> ContractView:
    contract = ruleset.contract
    return ContractView(
        source=f"{contract.source} ({ruleset.sources[contract.source].table})",
        measure=contract.measure,
        cases=tuple(
            CaseView(case.value, tree(ruleset, case.when, "plan", month))
            for case in contract.status.cases
        ),
        default=contract.status.default,
        on_missing=contract.on_missing,
        suspended_status=contract.suspended_status,
        tracked_columns=tuple(contract.tracked_columns),
    )


def _previous(months: list[MonthStatuses], chosen: date) -> MonthStatuses | None:
    index = [m.month for m in months].index(chosen)
    return months[index - 1] if index > 0 else None


def overview_figures(now: MonthStatuses, before: MonthStatuses | None) -> list[Figure]:
    def change(attr: str) -> int | Decimal | None:
        return None if before is None else getattr(now, attr) - getattr(before, attr)

    aum_change = None if before is None else yi(now.aum) - yi(before.aum)
    return [
        Figure(
            "rows",
            "客户 × 产品线 rows",
            count_text(now.rows),
            str(now.rows),
            "customer × product line pairs",
            delta_text(change("rows")),
            direction(change("rows")),
        ),
        Figure(
            "companies",
            "客户 companies",
            count_text(now.companies),
            str(now.companies),
            "distinct company_id",
            delta_text(change("companies")),
            direction(change("companies")),
        ),
        Figure(
            "aum",
            "资产规模 AUM (亿)",
            yi_text(now.aum),
            str(now.aum),
            "month-end AUM, 亿 = 10⁸ CNY",
            delta_text(aum_change, 2),
            direction(aum_change),
        ),
    ]


def status_views(data: ReportData) -> list[StatusView]:
    summary, ruleset = data.summary, data.rules.ruleset
    months = [m.month for m in summary.months]
    now = next(m for m in summary.months if m.month == summary.month)
    before = _previous(summary.months, summary.month)
    views = []
    for index, name in enumerate(summary.statuses):
        colour = STATUS_COLOURS[index % len(STATUS_COLOURS)]
        count = now.counts[name]
        change = None if before is None else count - before.counts[name]
        rule = rule_view(ruleset, name, summary.month)
        title = headline(rule.description) if rule else None
        series = Series(name, title or name, colour, tuple(m.counts[name] for m in summary.months))
        chart = line_chart(
            months,
            series,
            attributes={"data-chart": "status", "data-status": name, "aria-label": name},
            smallest_step=1,
            highlight=summary.month,
        )
        views.append(
            StatusView(
                name=name,
                headline=title,
                short=title.split(" (")[0] if title else name,
                colour=colour,
                count=count,
                count_text=count_text(count),
                share=share_text(count, now.rows),
                delta=delta_text(change),
                direction=direction(change),
                chart=chart,
                rule=rule,
            )
        )
    return views


@dataclass(frozen=True)
class TotalView:
    key: str
    title: str
    chart: Markup


def total_views(data: ReportData) -> list[TotalView]:
    """The denominators next to the status charts: rows and companies per month."""
    summary = data.summary
    months = [m.month for m in summary.months]
    views = []
    for key, title, values in (
        ("rows", "客户 × 产品线 rows", tuple(m.rows for m in summary.months)),
        ("companies", "客户 companies", tuple(m.companies for m in summary.months)),
    ):
        series = Series(key, title, MUTED, values)
        chart = line_chart(
            months,
            series,
            attributes={"data-chart": "total", "data-total": key, "aria-label": title},
            smallest_step=1,
            highlight=summary.month,
        )
        views.append(TotalView(key, title, chart))
    return views


def line_colours(data: ReportData) -> dict[str, str]:
    codes = sorted({line.product_line_code for line in data.line_months})
    return {code: LINE_COLOURS[i % len(LINE_COLOURS)] for i, code in enumerate(codes)}


def aum_chart(data: ReportData, colours: dict[str, str]) -> Markup:
    months = [m.month for m in data.summary.months]
    names: dict[str, str] = {}
    amounts: dict[tuple[str, date], float] = {}
    for line in data.line_months:
        names[line.product_line_code] = line.product_line_name
        amounts[line.product_line_code, line.month] = float(yi(line.aum))
    layers = [
        Series(
            code,
            f"{code} {names[code]}",
            colour,
            tuple(amounts.get((code, m), 0.0) for m in months),
        )
        for code, colour in colours.items()
    ]
    total = Series("total", "合计 total", INK, tuple(float(yi(m.aum)) for m in data.summary.months))
    return stacked_area_chart(months, layers, total, highlight=data.summary.month)


def line_rows(data: ReportData, colours: dict[str, str]) -> list[LineRow]:
    summary = data.summary
    whole = sum((line.aum or Decimal(0) for line in summary.product_lines), Decimal(0))
    return [
        LineRow(
            code=line.product_line_code,
            name=line.product_line_name,
            colour=colours.get(line.product_line_code, LINE_COLOURS[-1]),
            customers=count_text(line.customers),
            aum=yi_text(line.aum),
            share=share_text(line.aum or 0, whole),
            counts=tuple(count_text(line.counts[s]) for s in summary.statuses),
        )
        for line in summary.product_lines
    ]


def line_total(data: ReportData) -> LineRow:
    """The product line table's total row: the month's whole snapshot."""
    summary = data.summary
    now = next(m for m in summary.months if m.month == summary.month)
    return LineRow(
        code="合计",
        name="total",
        colour=INK,
        customers=count_text(now.rows),
        aum=yi_text(now.aum),
        share=share_text(1, 1),
        counts=tuple(count_text(now.counts[s]) for s in summary.statuses),
    )


def line_bars(data: ReportData, colours: dict[str, str]) -> Markup:
    summary = data.summary
    whole = sum((line.aum or Decimal(0) for line in summary.product_lines), Decimal(0))
    ordered = sorted(
        summary.product_lines, key=lambda line: (-(line.aum or 0), line.product_line_code)
    )
    return bar_chart(
        [
            Bar(
                key=line.product_line_code,
                label=f"{line.product_line_code} {line.product_line_name}",
                value=float(yi(line.aum)),
                value_label=f"{yi_text(line.aum)} 亿 · {share_text(line.aum or 0, whole)}",
                colour=colours.get(line.product_line_code, LINE_COLOURS[-1]),
            )
            for line in ordered
        ]
    )


def rules_caption(rules: RulesUsed) -> str:
    if rules.origin == "deployed" and rules.revision:
        return f"deployed revision {rules.revision}"
    return "the checkout's rules/ (no deploy is recorded in the database)"


# --- rendering --------------------------------------------------------------------------


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("cmdm_admin", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_report(data: ReportData) -> str:
    summary = data.summary
    now = next(m for m in summary.months if m.month == summary.month)
    before = _previous(summary.months, summary.month)
    colours = line_colours(data)
    statuses = status_views(data)
    context = {
        "month": label(summary.month),
        "month_end": summary.month.isoformat(),
        "previous": label(before.month) if before else None,
        "first_month": label(summary.months[0].month),
        "last_month": label(summary.months[-1].month),
        "month_count": len(summary.months),
        "rules": data.rules,
        "rules_caption": rules_caption(data.rules),
        "sha_short": (data.rules.sha256 or "")[:12],
        "figures": overview_figures(now, before),
        "statuses": statuses,
        "totals": total_views(data),
        "aum_chart": aum_chart(data, colours),
        "legend": [(code, name, colour) for code, name, colour in _legend(data, colours)],
        "line_bars": line_bars(data, colours),
        "line_rows": line_rows(data, colours),
        "line_total": line_total(data),
        "history": [
            (
                label(m.month),
                count_text(m.rows),
                count_text(m.companies),
                yi_text(m.aum),
                [count_text(m.counts[s]) for s in summary.statuses],
            )
            for m in summary.months
        ],
        "top_strategic": [
            (c.company_id, c.company_name or "", c.branch or "", yi_text(c.aum), c.product_lines)
            for c in summary.top_strategic
        ],
        "rejects": [
            (r.reason, count_text(r.rows), r.months, label(r.first_month), label(r.last_month))
            for r in summary.rejects
        ],
        "versions": [
            (
                v.contract_status,
                count_text(v.versions),
                count_text(v.current),
                count_text(v.current_strategic),
            )
            for v in summary.versions
        ],
        "contract": contract_view(data.rules.ruleset, summary.month),
    }
    return _environment().get_template("report.html.j2").render(context)


def _legend(data: ReportData, colours: dict[str, str]) -> list[tuple[str, str, str]]:
    names = {line.product_line_code: line.product_line_name for line in data.line_months}
    return [(code, names[code], colour) for code, colour in colours.items()]
