"""The embedded PostgreSQL cluster: the machine's PostgreSQL 15, run from a folder of the
project (default `.cmdm/`), listening on a free loopback port, for development, tests and
the demo.

Layout of the folder:

    .cmdm/pg/            data directory (owned by the server user, mode 0700)
    .cmdm/pg/server.log  server log (pg_ctl -l)
    .cmdm/cluster.json   port and names, so `cmdm db url` works while the server is down
    .cmdm/pgpass         libpq password file (mode 0600); URLs name it, never the password

initdb refuses to run as root, so when cmdm runs as root the server runs as the `postgres`
system user (Debian's PostgreSQL packages create it) through `runuser`.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cmdm_admin.errors import ClusterError
from cmdm_admin.project import CLUSTER_DIR_ENV, cmdm_home

PG_MAJOR = "15"
SUPERUSER = "postgres"
DATABASE = "cmdm"
HOST = "127.0.0.1"
SERVER_SYSTEM_USER = "postgres"  # used only when cmdm runs as root

# Appended to postgresql.conf at initdb. No Unix socket: its path length limit (107 bytes)
# breaks in deep project folders, and TCP on loopback is all the tools need.
_SERVER_SETTINGS = """
# --- cmdm embedded cluster -------------------------------------------------
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
timezone = 'UTC'
shared_buffers = '256MB'
work_mem = '32MB'
maintenance_work_mem = '256MB'
max_wal_size = '4GB'
# A development cluster: a crash may lose the last commits, never consistency.
synchronous_commit = off
"""

State = Literal["running", "stopped", "absent"]


@dataclass(frozen=True)
class ClusterStatus:
    state: State
    data_dir: Path
    port: int | None
    pid: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "data_dir": str(self.data_dir),
            "port": self.port,
            "pid": self.pid,
        }


def find_bindir() -> Path:
    """The PostgreSQL 15 server binaries: $CMDM_PG_BINDIR, Debian's path, or PATH."""
    configured = os.environ.get("CMDM_PG_BINDIR")
    if configured:  # an explicit setting is the only place looked at
        candidates = [Path(configured)]
    else:
        candidates = [Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")]
        on_path = shutil.which("pg_ctl")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise ClusterError(
        f"PostgreSQL {PG_MAJOR} server binaries (initdb, pg_ctl) not found in "
        + ", ".join(str(c) for c in candidates),
        hint=f"install them with `sudo apt-get install postgresql-{PG_MAJOR}` "
        "or set CMDM_PG_BINDIR",
    )


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (checked the way the server binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _running_as_root() -> bool:
    return os.geteuid() == 0


class EmbeddedCluster:
    """A PostgreSQL cluster living in one folder; every operation is idempotent."""

    def __init__(self, home: Path | None = None, *, fsync: bool = True) -> None:
        self.home = (home or cmdm_home()).resolve()
        self.data_dir = self.home / "pg"
        self.log_file = self.data_dir / "server.log"
        self.settings_file = self.home / "cluster.json"
        self.passfile = self.home / "pgpass"
        self.fsync = fsync

    # -- public operations -------------------------------------------------------------

    def status(self) -> ClusterStatus:
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists() and not os.access(self.data_dir, os.R_OK | os.X_OK):
                self._check_owner()
            return ClusterStatus("absent", self.data_dir, self._settings().get("port"))
        self._check_owner()
        result = self._pg_ctl("status")
        port = self._settings().get("port")
        pid = _pid_from_status(result.stdout) if result.returncode == 0 else None
        if pid is not None and _is_postgres_process(pid):
            return ClusterStatus("running", self.data_dir, port, pid)
        # pg_ctl only checks that the PID in postmaster.pid is alive; after a crash and a
        # reboot that PID may belong to an unrelated process. Such a lock file is stale.
        return ClusterStatus("stopped", self.data_dir, port)

    def start(self, port: int | None = None) -> ClusterStatus:
        """Initialise if needed, start if stopped, create the `cmdm` database if absent."""
        find_bindir()
        self._check_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        current = self.status()
        if current.state == "running":
            if port is not None and port != current.port:
                raise ClusterError(
                    f"the cluster in {self.data_dir} already runs on port {current.port}",
                    hint="stop it first (`cmdm db stop`) to move it to another port",
                )
            self._ensure_database()
            return current
        self._remove_stale_lock_file()
        chosen = self._choose_port(port)
        self._save_settings(port=chosen)
        options = f"-p {chosen}" + ("" if self.fsync else " -F")
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        result = self._pg_ctl("start", "-w", "-t", "120", "-l", str(self.log_file), "-o", options)
        if result.returncode != 0:
            raise ClusterError(
                f"PostgreSQL did not start in {self.data_dir}: "
                f"{self._failure_reason(result, log_offset)}",
                hint=f"see {self.log_file}",
            )
        self._ensure_database()
        return self.status()

    def stop(self) -> ClusterStatus:
        current = self.status()
        if current.state != "running":
            return current
        result = self._pg_ctl("stop", "-m", "fast", "-w", "-t", "120")
        if result.returncode != 0:
            raise ClusterError(
                f"PostgreSQL did not stop: {_last_line(result.stderr or result.stdout)}",
                hint=f"see {self.log_file}",
            )
        return self.status()

    def destroy(self) -> None:
        """Stop the server and delete its data directory, password file and settings."""
        if self.data_dir.exists():
            self.stop()
            shutil.rmtree(self.data_dir)
        for path in (self.passfile, self.settings_file):
            path.unlink(missing_ok=True)

    def ensure_running(self) -> ClusterStatus:
        current = self.status()
        if current.state == "running":
            return current
        return self.start()

    def url(self, database: str = DATABASE) -> str:
        """A libpq URL for the cluster. It names the password file, not the password."""
        port = self._settings().get("port")
        if port is None:
            raise ClusterError(
                f"no embedded cluster in {self.home}",
                hint="start one with `cmdm db start`",
            )
        return f"postgresql://{SUPERUSER}@{HOST}:{port}/{database}?passfile={self.passfile}"

    # -- setup ------------------------------------------------------------------------

    def _check_data_dir(self) -> None:
        if not self.data_dir.exists():
            return
        self._check_owner()
        if not (self.data_dir / "PG_VERSION").exists():
            if any(self.data_dir.iterdir()):
                raise ClusterError(
                    f"{self.data_dir} exists but is not a PostgreSQL data directory",
                    hint="move it away, or remove it with `cmdm db destroy`",
                )
            return
        version = (self.data_dir / "PG_VERSION").read_text().strip()
        if version != PG_MAJOR:
            raise ClusterError(
                f"{self.data_dir} holds a PostgreSQL {version} cluster, not {PG_MAJOR}",
                hint="remove it with `cmdm db destroy` (its data is lost) or set "
                f"{CLUSTER_DIR_ENV} to another folder",
            )

    def _check_owner(self) -> None:
        expected = SERVER_SYSTEM_USER if _running_as_root() else _user_name(os.geteuid())
        owner = _user_name(self.data_dir.stat().st_uid)
        if owner != expected:
            fix = (
                f"`chown -R {expected} {self.data_dir}`, or remove it with `cmdm db destroy`"
                if _running_as_root()
                else f"run cmdm as {owner}, or set {CLUSTER_DIR_ENV} to a folder of your own"
            )
            raise ClusterError(
                f"data directory {self.data_dir} is owned by {owner}, but the server must run "
                f"as {expected}",
                hint=fix,
            )

    def _initdb(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if _running_as_root():
            server = pwd.getpwnam(self._server_system_user())
            os.chown(self.data_dir, server.pw_uid, server.pw_gid)
            probe = subprocess.run(
                ["runuser", "-u", SERVER_SYSTEM_USER, "--", "test", "-w", str(self.data_dir)],
                capture_output=True,
            )
            if probe.returncode != 0:
                self.data_dir.rmdir()
                raise ClusterError(
                    f"the {SERVER_SYSTEM_USER} system user cannot reach {self.data_dir} "
                    "(a parent folder is not searchable by others)",
                    hint=f"set {CLUSTER_DIR_ENV} to a folder it can reach, e.g. /var/tmp/cmdm",
                )
        password = secrets.token_urlsafe(24)
        pwfile = self.home / ".initdb-password"  # mode 0600, deleted right after initdb
        pwfile.write_text(password + "\n")
        self._give_to_server(pwfile)
        try:
            result = self._run(
                [
                    str(find_bindir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise ClusterError(
                f"initdb failed in {self.data_dir}: {_last_line(result.stderr or result.stdout)}"
            )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_SERVER_SETTINGS)
        self.passfile.write_text(f"{HOST}:*:*:{SUPERUSER}:{password}\n")
        self.passfile.chmod(0o600)

    def _choose_port(self, requested: int | None) -> int:
        if requested is not None:
            if not port_is_free(requested):
                raise ClusterError(
                    f"port {requested} on {HOST} is in use",
                    hint="choose another with --port, or leave --port out to pick a free one",
                )
            return requested
        remembered = self._settings().get("port")
        if remembered is not None and port_is_free(remembered):
            return int(remembered)
        return free_port()  # first start, or the remembered port was taken meanwhile

    def _ensure_database(self) -> None:
        import psycopg

        last_error: Exception | None = None
        for _ in range(50):
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return
            except psycopg.OperationalError as exc:  # still starting up
                last_error = exc
                time.sleep(0.1)
        raise ClusterError(
            f"the embedded cluster runs but does not accept connections: {last_error}",
            hint=f"see {self.log_file}",
        )

    def _remove_stale_lock_file(self) -> None:
        """Delete a postmaster.pid whose PID is not a live PostgreSQL server (a crash left
        it); the server would otherwise refuse to start while that PID lives."""
        lock_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(lock_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        if not _is_postgres_process(pid):
            lock_file.unlink(missing_ok=True)

    # -- helpers ----------------------------------------------------------------------

    def _server_system_user(self) -> str:
        try:
            pwd.getpwnam(SERVER_SYSTEM_USER)
        except KeyError:
            raise ClusterError(
                f"running as root, but there is no `{SERVER_SYSTEM_USER}` system user to run "
                "the server (initdb refuses root)",
                hint=f"install Debian's postgresql-{PG_MAJOR} package, which creates it, "
                "or run cmdm as a normal user",
            ) from None
        return SERVER_SYSTEM_USER

    def _give_to_server(self, path: Path) -> None:
        path.chmod(0o600)
        if _running_as_root():
            server = pwd.getpwnam(self._server_system_user())
            os.chown(path, server.pw_uid, server.pw_gid)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if _running_as_root():
            argv = ["runuser", "-u", self._server_system_user(), "--", *argv]
        # cwd "/": the server user may not be allowed into the caller's folder.
        return subprocess.run(argv, capture_output=True, text=True, cwd="/", check=False)

    def _pg_ctl(self, action: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run([str(find_bindir() / "pg_ctl"), action, "-D", str(self.data_dir), *args])

    def _settings(self) -> dict[str, int]:
        try:
            return json.loads(self.settings_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ClusterError(
                f"cannot read {self.settings_file}: {exc}",
                hint="remove it; the next `cmdm db start` picks a free port again",
            ) from exc

    def _save_settings(self, *, port: int) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(json.dumps({"port": port}) + "\n")

    def _failure_reason(self, result: subprocess.CompletedProcess[str], log_offset: int) -> str:
        """The server's own FATAL line from this start's part of the log, else pg_ctl's."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(log_offset)
                lines = log.read().decode(errors="replace").splitlines()[-40:]
        except OSError:
            lines = []
        for index in range(len(lines) - 1, -1, -1):
            line = lines[index]
            marker = "FATAL:" if "FATAL:" in line else "PANIC:" if "PANIC:" in line else None
            if marker:
                reason = line[line.index(marker) + len(marker) :].strip()
                cause = lines[index - 1] if index > 0 else ""
                if "ERROR:" in cause or "invalid" in cause:  # e.g. a bad setting's name
                    reason = cause.split(":  ", 1)[-1].strip() + "; " + reason
                follow = lines[index + 1] if index + 1 < len(lines) else ""
                if "HINT:" in follow:
                    reason += " — " + follow[follow.index("HINT:") + len("HINT:") :].strip()
                return reason
        return _last_line(result.stderr or result.stdout)


def _pid_from_status(text: str) -> int | None:
    # "pg_ctl: server is running (PID: 1234)"
    marker = "(PID: "
    if marker not in text:
        return None
    return int(text.split(marker, 1)[1].split(")", 1)[0])


def _is_postgres_process(pid: int) -> bool:
    """True when PID is a running PostgreSQL server (Linux /proc); trusts it elsewhere."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc: assume it is (pg_ctl said so)
    except OSError:
        return True
    return Path(command.decode(errors="replace")).name in {"postgres", "postmaster"}


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
