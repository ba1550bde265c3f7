"""What the outputs hold, for analysts: contract versions by status, every status counted per
snapshot month, AUM per product line, the largest strategic customers and the rejected
facts. `cmdm summary` prints it (the end of `make demo`) and `cmdm report` draws it.

The status columns are read from the snapshot table itself (its boolean columns), not from
rules/: a column added by a rules deploy shows up here as soon as it exists, and a checkout
ahead of the database cannot name a column that is not there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from cmdm_admin.errors import CmdmError
from cmdm_admin.periods import label, month_end

BUSINESS_SNAPSHOT = ("customer", "fct_customer_business_monthly_status")
TOP_STRATEGIC = 10


class SummaryError(CmdmError):
    """Nothing to summarise: no snapshot yet, or a month that was not refreshed."""


@dataclass(frozen=True)
class VersionCount:
    contract_status: str
    versions: int
    current: int  # versions with valid_to = 9999-12-31
    current_strategic: int


@dataclass(frozen=True)
class MonthStatuses:
    month: date  # month-end
    rows: int  # customer × product line rows of the business snapshot
    companies: int
    aum: Decimal
    counts: dict[str, int]  # status column -> rows where it is true


@dataclass(frozen=True)
class ProductLineAum:
    month: date
    product_line_code: str
    product_line_name: str
    customers: int
    aum: Decimal
    counts: dict[str, int]


@dataclass(frozen=True)
class StrategicCustomer:
    company_id: str
    company_name: str | None
    branch: str | None  # the branch (机构名称) of its largest fact row that month
    aum: Decimal
    product_lines: int


@dataclass(frozen=True)
class RejectCount:
    reason: str
    rows: int
    months: int
    first_month: date
    last_month: date


@dataclass(frozen=True)
class Summary:
    month: date  # the month-end the per-customer parts are for
    statuses: list[str]
    versions: list[VersionCount]
    months: list[MonthStatuses]
    product_lines: list[ProductLineAum]  # of `month`
    top_strategic: list[StrategicCustomer]  # of `month`
    rejects: list[RejectCount]

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def status_columns(conn: psycopg.Connection) -> list[str]:
    """The boolean columns of the business snapshot table, in table order."""
    rows = conn.execute(
        """SELECT a.attname
             FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = to_regclass(%s)
              AND a.atttypid = 'boolean'::regtype AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum""",
        (".".join(BUSINESS_SNAPSHOT),),
    ).fetchall()
    return [name for (name,) in rows]


def _count_columns(statuses: list[str]) -> sql.Composable:
    """`count(*) FILTER (WHERE "s")` for each status, in order."""
    return sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE {})").format(sql.Identifier(s)) for s in statuses
    )


def contract_versions(conn: psycopg.Connection) -> list[VersionCount]:
    rows = conn.execute(
        """SELECT contract_status, count(*),
                  count(*) FILTER (WHERE valid_to = DATE '9999-12-31'),
                  count(*) FILTER (WHERE valid_to = DATE '9999-12-31' AND is_strategic)
             FROM customer.customer_plan_contract
            GROUP BY 1 ORDER BY 2 DESC, 1"""
    ).fetchall()
    return [VersionCount(*row) for row in rows]


def monthly_statuses(conn: psycopg.Connection, statuses: list[str]) -> list[MonthStatuses]:
    """Every snapshot month: its rows, companies, AUM and the count of each status."""
    query = sql.SQL(
        """SELECT snapshot_month, count(*), count(DISTINCT company_id), sum(aum_balance),
                  {counts}
             FROM {table} GROUP BY 1 ORDER BY 1"""
    ).format(counts=_count_columns(statuses), table=sql.Identifier(*BUSINESS_SNAPSHOT))
    return [
        MonthStatuses(month, rows, companies, aum, dict(zip(statuses, counts, strict=True)))
        for month, rows, companies, aum, *counts in conn.execute(query).fetchall()
    ]


def product_lines(
    conn: psycopg.Connection, statuses: list[str], month: date | None = None
) -> list[ProductLineAum]:
    """Customers, AUM and status counts per product line: of one month, or of every month."""
    query = sql.SQL(
        """SELECT snapshot_month, product_line_code, product_line_name, count(*),
                  sum(aum_balance), {counts}
             FROM {table}
            WHERE %(month)s::date IS NULL OR snapshot_month = %(month)s::date
            GROUP BY 1, 2, 3 ORDER BY 1, 2"""
    ).format(counts=_count_columns(statuses), table=sql.Identifier(*BUSINESS_SNAPSHOT))
    return [
        ProductLineAum(m, code, name, customers, aum, dict(zip(statuses, counts, strict=True)))
        for m, code, name, customers, aum, *counts in conn.execute(
            query, {"month": month}
        ).fetchall()
    ]


def top_strategic(
    conn: psycopg.Connection, month: date, limit: int = TOP_STRATEGIC
) -> list[StrategicCustomer]:
    """The strategic customers of a snapshot month with the largest AUM."""
    rows = conn.execute(
        """WITH top AS (
               SELECT s.company_id, sum(s.aum_balance) AS aum, count(*) AS product_lines
                 FROM customer.fct_customer_business_monthly_status s
                WHERE s.snapshot_month = %(month)s AND s.is_strategic
                GROUP BY 1
                ORDER BY 2 DESC, 1
                LIMIT %(limit)s
           ), branch AS (
               -- one scan of the month's facts for all of them (not one per company)
               SELECT DISTINCT ON (f.company_id) f.company_id, f."机构名称"
                 FROM business."规模明细" f
                WHERE f."月度" BETWEEN date_trunc('month', %(month)s)::date AND %(month)s
                  AND f.company_id IN (SELECT company_id FROM top)
                ORDER BY f.company_id, f."期末资产规模" DESC NULLS LAST, f."机构名称"
           )
           SELECT top.company_id, c."客户名称", branch."机构名称", top.aum, top.product_lines
             FROM top
             LEFT JOIN branch USING (company_id)
             LEFT JOIN customer."年金客户" c USING (company_id)
            ORDER BY top.aum DESC, top.company_id""",
        {"month": month, "limit": limit},
    ).fetchall()
    return [StrategicCustomer(*row) for row in rows]


def rejects(conn: psycopg.Connection) -> list[RejectCount]:
    rows = conn.execute(
        """SELECT reason, count(*), count(DISTINCT period), min(period), max(period)
             FROM cmdm.rejected_fact GROUP BY 1 ORDER BY 2 DESC, 1"""
    ).fetchall()
    return [RejectCount(*row) for row in rows]


@contextmanager
def read_only_snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """One REPEATABLE READ READ ONLY transaction: every query inside sees the same data, so
    the parts of a summary (and whatever a caller adds, e.g. the report) agree."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def summarise(conn: psycopg.Connection, month: date | None = None) -> Summary:
    """Everything above, in one REPEATABLE READ snapshot (the parts agree with each other).

    `month` (any day of it) picks the month of the per-customer parts; default: the newest
    snapshot month.
    """
    with read_only_snapshot(conn):
        return summary_in_snapshot(conn, month)


def summary_in_snapshot(conn: psycopg.Connection, month: date | None = None) -> Summary:
    """`summarise` inside a transaction the caller opened with `read_only_snapshot`."""
    statuses = status_columns(conn)
    if not statuses:
        raise SummaryError(
            "no snapshot table: the database is not migrated",
            hint="run `cmdm migrate upgrade` (or `make demo`)",
        )
    months = monthly_statuses(conn, statuses)
    if not months:
        raise SummaryError(
            "no snapshot month yet: nothing has been loaded",
            hint="load facts (e.g. `cmdm demo load`), or run `cmdm backfill` after a load "
            "made with the hooks off",
        )
    if month is None:
        chosen = months[-1].month
    else:
        chosen = month_end(month)
        if chosen not in {m.month for m in months}:
            loaded = f"{label(months[0].month)} to {label(months[-1].month)}"
            raise SummaryError(
                f"no snapshot for {label(chosen)}",
                hint=f"snapshot months run from {loaded}; "
                f"`cmdm snapshot --period {label(chosen)}` refreshes one",
            )
    return Summary(
        month=chosen,
        statuses=statuses,
        versions=contract_versions(conn),
        months=months,
        product_lines=product_lines(conn, statuses, chosen),
        top_strategic=top_strategic(conn, chosen),
        rejects=rejects(conn),
    )
