"""What is in the database, for people: per-month input counts and totals. The demo and
`cmdm overview` print it; later the contract and snapshot summaries join it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import psycopg


@dataclass(frozen=True)
class MonthInputs:
    month: date
    fact_rows: int
    contract_keys: int
    companies: int
    aum: Decimal
    awards: int
    losses: int


@dataclass(frozen=True)
class InputOverview:
    customers: int
    product_lines: int
    months: list[MonthInputs]


# One pass over the facts grouped by month; events grouped by their report month.
_MONTHS_SQL = """
WITH facts AS (
    SELECT date_trunc('month', f."月度")::date AS month,
           count(*) AS fact_rows,
           count(DISTINCT (f.company_id, f."计划代码", f."产品线代码")) AS contract_keys,
           count(DISTINCT f.company_id) AS companies,
           coalesce(sum(f."期末资产规模"), 0) AS aum
      FROM business."规模明细" f
     GROUP BY 1
), awards AS (
    SELECT date_trunc('month', "上报月份")::date AS month, count(*) AS n
      FROM customer."当年中标" GROUP BY 1
), losses AS (
    SELECT date_trunc('month', "上报月份")::date AS month, count(*) AS n
      FROM customer."当年流失" GROUP BY 1
)
SELECT f.month, f.fact_rows, f.contract_keys, f.companies, f.aum,
       coalesce(a.n, 0), coalesce(l.n, 0)
  FROM facts f
  LEFT JOIN awards a USING (month)
  LEFT JOIN losses l USING (month)
 ORDER BY f.month
"""


def input_overview(conn: psycopg.Connection) -> InputOverview:
    [(customers,)] = conn.execute('SELECT count(*) FROM customer."年金客户"').fetchall()
    [(product_lines,)] = conn.execute('SELECT count(*) FROM mapping."产品线"').fetchall()
    months = [MonthInputs(*row) for row in conn.execute(_MONTHS_SQL).fetchall()]
    return InputOverview(customers, product_lines, months)
