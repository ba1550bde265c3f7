"""Where things live: the tool's own files, shipped inside the package, and the rules project.

The tool (this package) carries the SQL templates, cmdm's schema migrations, the pgTAP
suites, the report template and the default rules. A *rules project* is a folder with a
`cmdm.toml`, its `rules/` and `migrations/versions/` (the rules revisions that
`cmdm deploy-rules` froze for it). cmdm finds the project from `--project-dir`, else
$CMDM_PROJECT_DIR, else the working directory and its parents, the way git finds a
repository. Commands that only talk to a database need no project.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cmdm_admin.errors import CmdmError

#: The file that marks a rules project and holds its settings.
PROJECT_FILE = "cmdm.toml"
#: Environment variable naming the project folder (what `--project-dir` sets).
PROJECT_DIR_ENV = "CMDM_PROJECT_DIR"
#: Environment variable naming the folder of the embedded cluster (default: <project>/.cmdm).
CLUSTER_DIR_ENV = "CMDM_HOME"

#: The package's own folder: what travels in the wheel.
PACKAGE_DIR = Path(__file__).resolve().parent

#: Settings a cmdm.toml may hold, with their defaults.
SETTINGS: dict[str, str] = {
    # Folder of the YAML rules, relative to the project.
    "rules_dir": "rules",
    # Folder holding versions/ (the frozen rules revisions), relative to the project.
    "migrations_dir": "migrations",
    # How long a migration or rules deploy waits for a lock before it gives up.
    "lock_timeout": "5s",
}


class ProjectError(CmdmError):
    """No rules project where one is needed, or its folder or settings are broken."""


def sql_dir() -> Path:
    """The Jinja templates of every SQL object (`sql/functions`, `sql/triggers`, …)."""
    return PACKAGE_DIR / "sql"


def schema_migrations_dir() -> Path:
    """cmdm's Alembic environment (env.py) and its schema revisions (versions/)."""
    return PACKAGE_DIR / "migrations"


def pgtap_dir() -> Path:
    """The pgTAP suites `cmdm verify` and `make test` run."""
    return PACKAGE_DIR / "pgtap"


def default_rules_dir() -> Path:
    """The rules `cmdm init` writes into a new project (this checkout's rules/)."""
    return PACKAGE_DIR / "default_rules"


@dataclass(frozen=True)
class Project:
    """A rules project: its folder and its settings."""

    root: Path
    rules_dir: Path
    migrations_dir: Path
    lock_timeout: str

    @property
    def versions_dir(self) -> Path:
        return self.migrations_dir / "versions"


def find_project_root(start: Path | None = None) -> Path | None:
    """$CMDM_PROJECT_DIR if set, else the nearest folder holding cmdm.toml from `start`
    (default: the working directory) upward; None when there is none."""
    configured = os.environ.get(PROJECT_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return None


def load_project(root: Path) -> Project:
    """Read `root`/cmdm.toml and check that the folders it names exist."""
    settings_file = root / PROJECT_FILE
    if not root.is_dir():
        raise ProjectError(
            f"project folder {root} does not exist",
            hint=f"create one with `cmdm init {root}`, or point --project-dir at a project",
        )
    if not settings_file.is_file():
        raise ProjectError(
            f"{root} is not a cmdm project: it has no {PROJECT_FILE}",
            hint=f"create one with `cmdm init {root}`",
        )
    try:
        settings = tomllib.loads(settings_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(
            f"{settings_file}: cannot be read: {exc}",
            hint="fix the TOML syntax (see docs/operations.md, 'A rules project')",
        ) from exc
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ProjectError(
            f"{settings_file}: unknown setting{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}",
            hint=f"the settings are {', '.join(SETTINGS)}",
        )
    values = {**SETTINGS, **settings}
    for key, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ProjectError(
                f"{settings_file}: {key} must be a non-empty string, not {value!r}",
                hint=f'for example {key} = "{SETTINGS[key]}"',
            )
    project = Project(
        root=root,
        rules_dir=(root / values["rules_dir"]).resolve(),
        migrations_dir=(root / values["migrations_dir"]).resolve(),
        lock_timeout=values["lock_timeout"],
    )
    for what, folder in (("rules_dir", project.rules_dir), ("versions", project.versions_dir)):
        if not folder.is_dir():
            raise ProjectError(
                f"project {root} has no folder {folder} ({what})",
                hint=f"create it (`mkdir -p {folder}`), or start over with `cmdm init`",
            )
    return project


def current_project() -> Project:
    """The project cmdm runs in; a clear error when there is none."""
    root = find_project_root()
    if root is None:
        raise ProjectError(
            f"no cmdm project here: no {PROJECT_FILE} in {Path.cwd()} or any folder above it",
            hint=f"cd into a project, pass --project-dir (or ${PROJECT_DIR_ENV}), "
            "or create one with `cmdm init DIR`",
        )
    return load_project(root)


def project_dir() -> Path:
    """The current project's folder."""
    return current_project().root


def cmdm_home() -> Path:
    """Folder of the embedded cluster's files: $CMDM_HOME, else <project>/.cmdm."""
    configured = os.environ.get(CLUSTER_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return project_dir() / ".cmdm"


#: What `cmdm init` writes besides the rules.
_NEW_SETTINGS = f"""\
# A cmdm rules project. Paths are relative to this file.
# See cmdm's docs/operations.md, "A rules project", for what each setting does.
rules_dir = "{SETTINGS["rules_dir"]}"
migrations_dir = "{SETTINGS["migrations_dir"]}"
# How long a migration or rules deploy waits for a lock before it fails.
lock_timeout = "{SETTINGS["lock_timeout"]}"
"""
#: For operators who run Alembic itself; the same history cmdm's own configuration builds.
ALEMBIC_INI = f"""\
# For running Alembic itself (`alembic -x database_url=... upgrade heads`); cmdm does not
# read this file. cmdm's schema revisions come from the installed package, this project's
# rules revisions from {SETTINGS["migrations_dir"]}/versions (keep in step with cmdm.toml).
[alembic]
script_location = cmdm_admin:migrations
path_separator = newline
version_locations =
    cmdm_admin:migrations/versions
    %(here)s/{SETTINGS["migrations_dir"]}/versions
"""
_NEW_GITIGNORE = "# the embedded PostgreSQL cluster of `cmdm db start`\n.cmdm/\n"


def create_project(root: Path) -> list[Path]:
    """Write a new project with the default rules into `root` (new or empty); the files
    written, in order. Nothing is written when `root` is not empty."""
    root = root.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ProjectError(f"{root} is a file, not a folder", hint="pick a new folder name")
    if root.is_dir() and (present := sorted(p.name for p in root.iterdir())):
        shown = ", ".join(present[:5]) + (", …" if len(present) > 5 else "")
        raise ProjectError(
            f"{root} is not empty (it holds {shown})",
            hint="cmdm init writes a new project into a new or empty folder",
        )
    rules = sorted(default_rules_dir().glob("*.yml"))
    existed = root.is_dir()
    written: list[Path] = []
    try:
        (root / SETTINGS["rules_dir"]).mkdir(parents=True)
        versions = root / SETTINGS["migrations_dir"] / "versions"
        versions.mkdir(parents=True)
        for path, text in (
            (root / PROJECT_FILE, _NEW_SETTINGS),
            (root / ".gitignore", _NEW_GITIGNORE),
            (root / "alembic.ini", ALEMBIC_INI),
            *(
                (root / SETTINGS["rules_dir"] / r.name, r.read_text(encoding="utf-8"))
                for r in rules
            ),
            (versions / ".gitkeep", ""),
        ):
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        # Leave the folder as it was: never half a project.
        for child in root.iterdir() if root.is_dir() else ():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        if not existed and root.is_dir():
            root.rmdir()
        raise ProjectError(
            f"cannot write the project into {root}: {exc.strerror or exc}",
            hint="pick a folder you can write to",
        ) from exc
    return written
