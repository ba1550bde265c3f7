"""Connections: which database a command talks to, and how errors reaching it are told.

Resolution order, used by every command and by Alembic's env.py:
`--database-url` option, else $CMDM_DATABASE_URL, else the embedded cluster (started on
demand). A password inside a URL is never printed: `mask_url` is the only way a URL
reaches the screen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg

from cmdm_admin.errors import DatabaseError

DATABASE_URL_ENV = "CMDM_DATABASE_URL"


def resolve_database_url(option: str | None = None, *, start_embedded: bool = True) -> str:
    """The URL to use: the option, else $CMDM_DATABASE_URL, else the embedded cluster.

    An empty value is refused rather than read as "not given": a script whose URL variable
    expanded to nothing must not silently work on the embedded cluster (or the local
    socket) instead of the database it meant."""
    if option is not None:
        if not option.strip():
            raise DatabaseError(
                "--database-url is empty",
                hint="give a URL (postgresql://user@host:port/dbname), or leave the option out",
            )
        return option
    configured = os.environ.get(DATABASE_URL_ENV)
    if configured is not None:
        if not configured.strip():
            raise DatabaseError(
                f"${DATABASE_URL_ENV} is set but empty",
                hint=f"set it to a URL, or unset it (`unset {DATABASE_URL_ENV}`) to use the "
                "embedded cluster",
            )
        return configured
    from cmdm_admin.cluster import EmbeddedCluster

    cluster = EmbeddedCluster()
    if start_embedded:
        cluster.ensure_running()
    return cluster.url()


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ***, for messages and output."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable database URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise DatabaseError(
        f"not a PostgreSQL URL: {mask_url(url)}",
        hint="use postgresql://user@host:port/dbname",
    )


def connect(url: str, *, autocommit: bool = False, **kwargs: object) -> psycopg.Connection:
    """Open a connection, turning "cannot connect" into one line that names the URL."""
    try:
        return psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://", 1),
            autocommit=autocommit,
            connect_timeout=10,
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {mask_url(url)}: {first_line(exc)}",
            hint="check the URL, that the server runs, and the credentials "
            f"(--database-url or ${DATABASE_URL_ENV})",
        ) from exc
    except psycopg.ProgrammingError as exc:  # a malformed URL
        raise DatabaseError(
            f"invalid database URL {mask_url(url)}: {first_line(exc)}",
            hint="use postgresql://user@host:port/dbname",
        ) from exc


@contextmanager
def transaction(url: str) -> Iterator[psycopg.Connection]:
    """A connection whose work commits on success and rolls back on any error."""
    conn = connect(url)
    try:
        with conn.transaction():
            yield conn
    finally:
        conn.close()


def first_line(exc: BaseException) -> str:
    """libpq's messages span lines; the first one says what went wrong."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
