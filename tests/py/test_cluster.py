"""`cmdm db start|stop|status|url|destroy` against real clusters of the PostgreSQL major the
suite runs on ($CMDM_PG_VERSION: 15 or 18), through the CLI as a user runs it (CliRunner),
including the bad states an operator meets."""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cmdm_admin.cli import app
from cmdm_admin.cluster import EmbeddedCluster, pg_major

runner = CliRunner()
AS_ROOT = os.geteuid() == 0


def cmdm(*args: str):
    return runner.invoke(app, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    first = result.output.splitlines()[0]
    assert first.startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture
def home(cluster_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CMDM_HOME", str(cluster_home))
    monkeypatch.delenv("CMDM_DATABASE_URL", raising=False)
    return cluster_home


def test_lifecycle_is_idempotent(home: Path) -> None:
    status = json.loads(cmdm("db", "status", "--json").output)
    assert status["state"] == "absent"

    first = cmdm("db", "start", "--no-fsync")
    assert first.exit_code == 0, first.output
    assert "started on 127.0.0.1:" in first.output
    again = cmdm("db", "start")
    assert again.exit_code == 0, again.output
    assert "already running" in again.output

    running = json.loads(cmdm("db", "status", "--json").output)
    assert running["state"] == "running" and running["pid"] > 0

    url = cmdm("db", "url").output.strip()
    assert url.startswith(f"postgresql://postgres@127.0.0.1:{running['port']}/cmdm?passfile=")
    password = (home / "pgpass").read_text().strip().rsplit(":", 1)[1]
    assert password not in url
    with psycopg.connect(url) as conn:  # the URL works as printed
        assert conn.execute("SELECT current_database()").fetchone() == ("cmdm",)
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith(pg_major())
        # what cmdm and its checks create: on 18, pgTAP is the copy in <home>/pg-share
        available = conn.execute(
            "SELECT array_agg(name::text ORDER BY name) FROM pg_available_extensions"
            " WHERE name IN ('btree_gist', 'pgtap')"
        ).fetchone()[0]
        assert available == ["btree_gist", "pgtap"]

    assert cmdm("db", "stop").exit_code == 0
    stopped = cmdm("db", "stop")
    assert stopped.exit_code == 0 and "not running" in stopped.output
    assert json.loads(cmdm("db", "status", "--json").output)["state"] == "stopped"

    # A restart keeps the port, the data and the password.
    assert cmdm("db", "start").exit_code == 0
    assert json.loads(cmdm("db", "status", "--json").output)["port"] == running["port"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_files_belong_to_the_server_user(home: Path) -> None:
    assert cmdm("db", "start", "--no-fsync").exit_code == 0
    data_dir = home / "pg"
    expected = "postgres" if AS_ROOT else pwd.getpwuid(os.geteuid()).pw_name
    assert pwd.getpwuid(data_dir.stat().st_uid).pw_name == expected
    assert data_dir.stat().st_mode & 0o077 == 0
    assert (home / "pgpass").stat().st_mode & 0o077 == 0


def test_requested_port_in_use_is_one_line(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cmdm("db", "start", "--no-fsync", "--port", str(port))
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use", "--port")


def test_remembered_port_taken_meanwhile_moves_to_a_free_one(home: Path) -> None:
    assert cmdm("db", "start", "--no-fsync").exit_code == 0
    port = json.loads(cmdm("db", "status", "--json").output)["port"]
    assert cmdm("db", "stop").exit_code == 0
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = cmdm("db", "start", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["port"] != port


def test_crashed_server_restarts(home: Path) -> None:
    assert cmdm("db", "start", "--no-fsync").exit_code == 0
    pid = json.loads(cmdm("db", "status", "--json").output)["pid"]
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):  # wait for the postmaster and its children to go
        if json.loads(cmdm("db", "status", "--json").output)["state"] != "running":
            break
        time.sleep(0.1)
    assert (home / "pg" / "postmaster.pid").exists()  # left behind by the crash

    result = cmdm("db", "start")
    assert result.exit_code == 0, result.output
    with psycopg.connect(cmdm("db", "url").output.strip()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_stale_lock_file_naming_a_live_process_is_cleared(home: Path) -> None:
    """After a crash and a reboot, postmaster.pid may name a PID that now belongs to an
    unrelated process of the server user; the server would refuse to start."""
    assert cmdm("db", "start", "--no-fsync").exit_code == 0
    assert cmdm("db", "stop").exit_code == 0
    sleeper_cmd = ["sleep", "60"]
    if AS_ROOT:
        sleeper_cmd = ["runuser", "-u", "postgres", "--", *sleeper_cmd]
    sleeper = subprocess.Popen(sleeper_cmd)
    try:
        time.sleep(0.2)
        holder = _child_pid(sleeper.pid) if AS_ROOT else sleeper.pid
        pid_file = home / "pg" / "postmaster.pid"
        pid_file.write_text(f"{holder}\n{home / 'pg'}\n")
        if AS_ROOT:
            os.chown(pid_file, pwd.getpwnam("postgres").pw_uid, -1)
        assert json.loads(cmdm("db", "status", "--json").output)["state"] == "stopped"
        result = cmdm("db", "start")
        assert result.exit_code == 0, result.output
        status = json.loads(cmdm("db", "status", "--json").output)
        assert status["state"] == "running" and status["pid"] != holder
    finally:
        sleeper.kill()
        sleeper.wait()


def _child_pid(parent: int) -> int:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return int(children[0]) if children else parent


def test_server_refusing_to_start_is_one_line_with_its_reason(home: Path) -> None:
    assert cmdm("db", "start", "--no-fsync").exit_code == 0
    assert cmdm("db", "stop").exit_code == 0
    with (home / "pg" / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'plenty'\n")
    result = cmdm("db", "start")
    assert_one_line_error(result, "did not start", "shared_buffers", "server.log")


@pytest.mark.skipif(not AS_ROOT, reason="only root can hand a folder to another user")
def test_data_dir_owned_by_someone_else_is_one_line(home: Path) -> None:
    assert cmdm("db", "start", "--no-fsync").exit_code == 0
    assert cmdm("db", "stop").exit_code == 0
    data_dir = home / "pg"
    os.chown(data_dir, 0, 0)  # root, while the server must run as postgres
    try:
        result = cmdm("db", "start")
        assert_one_line_error(result, f"{data_dir} is owned by root", "chown -R postgres")
    finally:
        pg = pwd.getpwnam("postgres")
        os.chown(data_dir, pg.pw_uid, pg.pw_gid)


@pytest.mark.skipif(not AS_ROOT, reason="the postgres system user is used only under root")
def test_folder_the_server_user_cannot_reach_is_one_line(home: Path) -> None:
    hidden = home / "private"
    hidden.mkdir(mode=0o700)
    os.environ["CMDM_HOME"] = str(hidden / "cluster")
    try:
        result = cmdm("db", "start", "--no-fsync")
    finally:
        os.environ["CMDM_HOME"] = str(home)
    assert_one_line_error(result, "cannot reach", "CMDM_HOME")


@pytest.mark.skipif(not AS_ROOT, reason="the postgres system user is used only under root")
def test_binaries_the_server_user_cannot_reach_are_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root the server runs as postgres from wherever the binaries are (for 18: .venv),
    so a folder on the way it may not enter is named before initdb fails obscurely."""
    from cmdm_admin.cluster import find_bindir

    hidden = home / "private"
    hidden.mkdir(mode=0o700)
    link = hidden / "bin"
    link.symlink_to(find_bindir())  # root passes, postgres may not enter
    monkeypatch.setenv("CMDM_PG_BINDIR", str(link))
    try:
        result = cmdm("db", "start", "--no-fsync")
    finally:
        link.unlink()  # cluster_home's teardown would take it for a folder
    assert_one_line_error(result, "does not run as postgres", "Permission denied", "chmod")
    assert not (home / "pg").exists()


def test_foreign_content_in_data_dir_is_one_line(home: Path) -> None:
    (home / "pg").mkdir()
    (home / "pg" / "notes.txt").write_text("not a cluster")
    if AS_ROOT:
        os.chown(home / "pg", pwd.getpwnam("postgres").pw_uid, -1)
    result = cmdm("db", "start")
    assert_one_line_error(result, "is not a PostgreSQL data directory")


def test_missing_binaries_say_how_to_install(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CMDM_PG_BINDIR", str(tmp_path))
    result = cmdm("db", "start")
    install = {"15": "apt-get install postgresql-15", "18": "scripts/bootstrap.sh --pg 18"}
    assert_one_line_error(result, "server binaries", install[pg_major()])


def test_unsupported_version_is_one_line(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDM_PG_VERSION", "16")
    result = cmdm("db", "start")
    assert_one_line_error(result, "CMDM_PG_VERSION=16", "PostgreSQL 15 or 18")


def test_binaries_of_another_major_are_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CMDM_PG_BINDIR must hold the major CMDM_PG_VERSION asks for: a cluster made by other
    binaries would be refused at its next start."""
    from cmdm_admin.cluster import find_bindir

    own = pg_major()
    other = {"15": "18", "18": "15"}[own]
    monkeypatch.setenv("CMDM_PG_BINDIR", str(find_bindir()))  # the suite's own major's
    monkeypatch.setenv("CMDM_PG_VERSION", other)
    result = cmdm("db", "start")
    assert_one_line_error(result, f"holds PostgreSQL {own} binaries", f"asks for {other}")


def test_a_cluster_of_another_major_is_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cmdm("db", "start", "--no-fsync").exit_code == 0
    assert cmdm("db", "stop").exit_code == 0
    (home / "pg" / "PG_VERSION").write_text("14\n")  # as if an older major had made it
    result = cmdm("db", "start")
    assert_one_line_error(result, f"holds a PostgreSQL 14 cluster, not {pg_major()}")


def test_url_before_any_start_is_one_line(home: Path) -> None:
    assert_one_line_error(cmdm("db", "url"), "no embedded cluster", "cmdm db start")


def test_destroy_removes_everything(home: Path) -> None:
    assert cmdm("db", "start", "--no-fsync").exit_code == 0
    result = cmdm("db", "destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert not (home / "pg").exists() and not (home / "pgpass").exists()
    assert json.loads(cmdm("db", "status", "--json").output)["state"] == "absent"


def test_python_api_start_twice_returns_running(cluster_home: Path) -> None:
    cluster = EmbeddedCluster(cluster_home, fsync=False)
    first = cluster.start()
    assert cluster.start() == first
    assert cluster.stop().state == "stopped"
    assert cluster.stop().state == "stopped"
