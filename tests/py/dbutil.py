"""Small helpers for tests that talk to PostgreSQL directly."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg


def with_database(url: str, database: str) -> str:
    """The same server URL, naming another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def query(url: str, sql: str, params: tuple | dict | None = None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)
