"""Connection resolution (option > $CMDM_DATABASE_URL > embedded cluster), password masking,
and how connection failures reach the user."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.cluster import EmbeddedCluster
from cmdm_admin.db import connect, mask_url, resolve_database_url, sqlalchemy_url
from cmdm_admin.errors import DatabaseError

runner = CliRunner()
SECRET = "s3cr3t-Pa55"


def test_option_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDM_DATABASE_URL", "postgresql://env@h/db")
    assert resolve_database_url("postgresql://opt@h/db") == "postgresql://opt@h/db"
    assert resolve_database_url(None) == "postgresql://env@h/db"


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_url_is_refused_not_read_as_absent(
    monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    # A script whose URL variable expanded to nothing must not land on the embedded cluster.
    monkeypatch.setenv("CMDM_DATABASE_URL", empty)
    with pytest.raises(DatabaseError, match=r"\$CMDM_DATABASE_URL is set but empty"):
        resolve_database_url(None, start_embedded=False)
    monkeypatch.delenv("CMDM_DATABASE_URL")
    result = runner.invoke(app, ["summary", "--database-url", empty])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --database-url is empty")


def test_embedded_cluster_is_the_fallback_and_starts_on_demand(
    cluster_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CMDM_DATABASE_URL", raising=False)
    monkeypatch.setenv("CMDM_HOME", str(cluster_home))
    cluster = EmbeddedCluster(cluster_home, fsync=False)
    cluster.start()
    cluster.stop()

    url = resolve_database_url(None)
    assert cluster.status().state == "running"
    assert url == cluster.url()
    with connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("cmdm",)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"postgresql://app:{SECRET}@db:5432/cmdm", "postgresql://app:***@db:5432/cmdm"),
        ("postgresql://app@db/cmdm", "postgresql://app@db/cmdm"),
        (
            f"postgresql://app:{SECRET}@db/cmdm?sslmode=require",
            "postgresql://app:***@db/cmdm?sslmode=require",
        ),
    ],
)
def test_mask_url_hides_only_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_sqlalchemy_url_selects_psycopg3() -> None:
    assert sqlalchemy_url("postgresql://a@b/c") == "postgresql+psycopg://a@b/c"
    assert sqlalchemy_url("postgres://a@b/c") == "postgresql+psycopg://a@b/c"
    with pytest.raises(DatabaseError, match="not a PostgreSQL URL"):
        sqlalchemy_url(f"mysql://a:{SECRET}@b/c")


def test_unreachable_database_is_one_line_without_the_password() -> None:
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/cmdm"
    result = runner.invoke(app, ["migrate", "current", "--database-url", url])
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: cannot connect to postgresql://app:***@127.0.0.1:1/cmdm"
    )
    assert SECRET not in result.output
    assert "Traceback" not in result.output


def test_environment_url_is_used_by_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDM_DATABASE_URL", f"postgresql://env:{SECRET}@127.0.0.1:1/x")
    result = runner.invoke(app, ["migrate", "current"])
    assert result.exit_code == 1
    assert "postgresql://env:***@127.0.0.1:1/x" in result.output
    assert SECRET not in result.output


def test_wrong_password_is_one_line(admin_url: str) -> None:
    bad = admin_url.split("?")[0].replace("postgres@", f"postgres:{SECRET}@")
    with pytest.raises(DatabaseError) as caught:
        connect(bad)
    assert "password authentication failed" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_debug_shows_the_traceback() -> None:
    url = "postgresql://app@127.0.0.1:1/cmdm"
    result = runner.invoke(app, ["--debug", "migrate", "current", "--database-url", url])
    assert result.exit_code != 0
    assert isinstance(result.exception, DatabaseError)


def test_help_has_an_example_for_every_command() -> None:
    for command in (
        ["db", "start"],
        ["db", "stop"],
        ["db", "status"],
        ["db", "url"],
        ["db", "env"],
        ["db", "destroy"],
        ["migrate", "upgrade"],
        ["migrate", "downgrade"],
        ["migrate", "current"],
    ):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0
        assert "Example: " in result.output, command
