"""Deploy rules (DESIGN §6): validate, render, compare, freeze into a revision, upgrade.

    cmdm deploy-rules            validate rules/ (files, then the live catalog), render sql/,
                                 compare the sha256 with the deployed one; when it differs,
                                 write migrations/versions/NNNN_rules_<sha12>.py holding the
                                 rendered SQL frozen (cmdm_admin.revision) and upgrade to it
    cmdm deploy-rules --plan     what a deploy would change; writes nothing
    cmdm deploy-rules --check    drift between rules/sql and the database, and functions
                                 edited by hand in the database; writes nothing

Before anything is rendered the migrations folder must agree with the database: every
rules revision's payload matches its PAYLOAD_SHA256 (no hand edits), every file is part of
the database's history or of one linear chain of pending revisions after it (no strays),
and nothing is pending (the database is at head). Each refusal is one line naming the file.

"Deployed" is the newest cmdm.rule_deployment row whose revision is in the database's
history; its revision file supplies the objects that a plan compares with.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from cmdm_admin import migrate
from cmdm_admin.db import connect, first_line, mask_url
from cmdm_admin.errors import CmdmError, DatabaseError, MigrationError
from cmdm_admin.loader import RulesInvalid, load_rules
from cmdm_admin.project import current_project, schema_migrations_dir
from cmdm_admin.render import TEMPLATE_FOLDERS, TEMPLATE_SUFFIX, Rendered, render_rules
from cmdm_admin.revision import (
    RevisionFile,
    build_payload,
    is_revision_source,
    next_number,
    read_revision_file,
    revision_source,
)
from cmdm_admin.rules import RuleSet

#: What stands for the rules sha256 when two renders are compared: every object carries
#: the sha in its banner and COMMENT, so without this every rules change changes them all.
SHA_PLACEHOLDER = "<rules sha256>"

#: sha256 of a routine's definition as the database prints it, independent of the session's
#: search_path (the revision computes it the same way right after creating the routine).
_DEFINITIONS_SQL = """
SELECT i.identity,
       p.oid IS NOT NULL,
       encode(sha256(convert_to(pg_get_functiondef(p.oid), 'UTF8')), 'hex'),
       obj_description(p.oid, 'pg_proc')
  FROM unnest(%(identities)s::text[]) WITH ORDINALITY AS i (identity, n)
  LEFT JOIN pg_proc p ON p.oid = to_regprocedure(i.identity)
 ORDER BY i.n
"""

_COLUMNS_SQL = """
SELECT t.name, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM unnest(%(tables)s::text[]) AS t (name)
  JOIN pg_attribute a ON a.attrelid = to_regclass(t.name)
 WHERE a.attnum > 0 AND NOT a.attisdropped
 ORDER BY t.name, a.attnum
"""

_TRIGGER_SQL = """
SELECT EXISTS (SELECT FROM pg_trigger
                WHERE tgrelid = to_regclass(%(table)s) AND tgname = %(name)s AND NOT tgisinternal)
"""

_DEPLOYED_SQL = """
SELECT revision, sha256, functions, function_defs
  FROM cmdm.rule_deployment
 WHERE revision = ANY (%(revisions)s::text[])
 ORDER BY deployment_id DESC
 LIMIT 1
"""


class DeployRefused(CmdmError):
    """The migrations folder and the database disagree; nothing was rendered or written."""


# --- the migrations folder against the database ------------------------------------------


@dataclass(frozen=True)
class History:
    """The revision files and where the database stands among them."""

    versions_dir: Path
    files: dict[str, RevisionFile]
    current: str | None
    #: The database's revision and its ancestors, newest first.
    applied: tuple[str, ...]

    @property
    def head(self) -> str | None:
        return self.current

    def rules_revisions(self) -> Iterator[RevisionFile]:
        """The applied rules revisions, newest first."""
        for revision in self.applied:
            if self.files[revision].is_rules:
                yield self.files[revision]


def display(path: Path) -> str:
    """`path` relative to the current directory when below it (as messages show files)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def read_versions(versions_dir: Path) -> list[RevisionFile]:
    if not versions_dir.is_dir():
        raise DeployRefused(
            f"{display(versions_dir)} is not a folder",
            hint="point --migrations-dir (or $CMDM_MIGRATIONS_DIR) at a folder holding versions/",
        )
    files = [
        read_revision_file(p)
        for p in sorted(versions_dir.iterdir(), key=lambda p: p.name)
        if is_revision_source(p)
    ]
    seen: dict[str, RevisionFile] = {}
    for f in files:
        if f.revision in seen:
            raise DeployRefused(
                f"{display(f.path)} and {display(seen[f.revision].path)} both declare "
                f"revision {f.revision!r}",
                hint="remove the stray copy",
            )
        seen[f.revision] = f
    return files


def check_payloads(files: list[RevisionFile]) -> None:
    edited = [f for f in files if f.is_rules and not f.payload_matches()]
    if edited:
        names = ", ".join(display(f.path) for f in edited)
        raise DeployRefused(
            f"{names} {'was' if len(edited) == 1 else 'were'} edited by hand: the payload no "
            "longer matches PAYLOAD_SHA256",
            hint="restore the file from version control (revisions are generated, never "
            "edited); to change the rules, edit rules/ and deploy again",
        )


def read_history(
    versions_dir: Path, heads: tuple[str, ...], schema_revisions: frozenset[str] = frozenset()
) -> History:
    """Where the database stands on the rules branch; refuses stray files and pending
    revisions. `heads` are the database's version rows; `schema_revisions` the ids of
    cmdm's own (schema) branch, which are not the project's business here."""
    files = read_versions(versions_dir)
    check_payloads(files)
    by_id = {f.revision: f for f in files}
    unknown = [h for h in heads if h not in by_id and h not in schema_revisions]
    if unknown:
        raise DeployRefused(
            f"the database is at revision {unknown[0]!r}, which has no file in "
            f"{display(versions_dir)}",
            hint="run from the project (or --migrations-dir) that deployed it",
        )
    rules_heads = [h for h in heads if h in by_id]
    current = rules_heads[0] if rules_heads else None
    applied: list[str] = []
    cursor = current
    while cursor is not None:
        if cursor in applied:
            raise DeployRefused(f"revision {cursor!r} is its own ancestor (a cycle of files)")
        applied.append(cursor)
        cursor = by_id[cursor].down_revision
        if cursor is not None and cursor not in by_id:
            raise DeployRefused(
                f"{display(by_id[applied[-1]].path)} revises {cursor!r}, which has no file",
                hint="restore the missing revision file",
            )
    pending: list[str] = []
    cursor = current
    while True:
        children = [f.revision for f in files if f.down_revision == cursor]
        if len(children) != 1 or children[0] in pending:  # a fork, the end, or a cycle
            break
        cursor = children[0]
        pending.append(cursor)
    stray = [f for f in files if f.revision not in applied and f.revision not in pending]
    if stray:
        names = ", ".join(display(f.path) for f in stray)
        where = f"revision {current!r}" if current else "an empty database"
        raise DeployRefused(
            f"stray revision file{'s' if len(stray) > 1 else ''} {names}: not in the "
            f"database's history ({where}) nor a linear chain of pending revisions after it",
            hint="remove or rebase it (a rules revision is regenerated by `cmdm deploy-rules`)",
        )
    if pending:
        names = ", ".join(display(by_id[r].path) for r in pending)
        raise DeployRefused(
            f"the database is not at the head of {display(versions_dir)}: {names} "
            f"{'is' if len(pending) == 1 else 'are'} not applied",
            hint="run `cmdm migrate upgrade` first",
        )
    return History(versions_dir=versions_dir, files=by_id, current=current, applied=tuple(applied))


# --- everything a plan, check or deploy reads ---------------------------------------------


@dataclass(frozen=True)
class Deployed:
    """The rules the database runs: its newest rule_deployment row in its history."""

    revision: str
    sha256: str
    functions: tuple[str, ...]
    function_defs: dict[str, str]
    file: RevisionFile

    @property
    def objects(self) -> list[dict[str, Any]]:
        return self.file.objects


@dataclass(frozen=True)
class Target:
    url: str
    migrations_dir: Path
    ruleset: RuleSet
    rendered: Rendered
    history: History
    deployed: Deployed | None
    #: Columns (name -> type) of each table that holds status columns.
    table_columns: dict[str, dict[str, str]]

    @property
    def up_to_date(self) -> bool:
        """The deployed SQL is the rendered SQL and every status has its column. (A new
        status that no template reads yet changes no SQL, but its column is still due.)"""
        return (
            self.deployed is not None
            and self.deployed.sha256 == self.rendered.sha256
            and not self.columns_to_add()
        )

    @property
    def versions_dir(self) -> Path:
        return self.migrations_dir / "versions"

    def columns_to_add(self) -> dict[str, list[str]]:
        return {
            table: missing
            for table, columns in self.rendered.status_columns.items()
            if (missing := [c for c in columns if c not in self.table_columns.get(table, {})])
        }

    def columns_not_in_rules(self) -> dict[str, list[str]]:
        """Boolean columns of the status tables that the rules no longer define (kept)."""
        return {
            table: extra
            for table, columns in self.rendered.status_columns.items()
            if (
                extra := [
                    name
                    for name, type_ in self.table_columns.get(table, {}).items()
                    if type_ == "boolean" and name not in columns
                ]
            )
        }


def prepare(
    database_url: str,
    *,
    rules_dir: Path | None = None,
    sql_dir: Path | None = None,
    migrations_dir: Path | str | None = None,
) -> Target:
    """Validate, check the migrations folder against the database, check the catalog, render."""
    ruleset = load_rules(rules_dir or current_project().rules_dir)
    location = migrate.resolve_migrations_dir(migrations_dir) or current_project().migrations_dir
    heads = migrate.current_heads(database_url)
    schema = frozenset(f.revision for f in read_versions(schema_migrations_dir() / "versions"))
    history = read_history(location / "versions", heads, schema)
    if migrate.schema_head() not in migrate.applied_revisions(database_url, location):
        raise DeployRefused(
            f"cmdm's schema in {mask_url(database_url)} is older than this cmdm "
            f"({migrate.schema_head()})",
            hint="run `cmdm migrate upgrade` first",
        )
    with connect(database_url) as conn:
        try:
            from cmdm_admin.catalog import check_against_catalog

            issues = check_against_catalog(ruleset, conn)
            if issues:
                raise RulesInvalid(issues)
            rendered = render_rules(ruleset, sql_dir)
            deployed = _deployed(conn, history)
            tables = list(rendered.status_columns)
            table_columns: dict[str, dict[str, str]] = {t: {} for t in tables}
            for table, column, type_ in conn.execute(_COLUMNS_SQL, {"tables": tables}):
                table_columns[table][column] = type_
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot read {mask_url(database_url)}: {first_line(exc)}") from exc
    return Target(
        url=database_url,
        migrations_dir=location,
        ruleset=ruleset,
        rendered=rendered,
        history=history,
        deployed=deployed,
        table_columns=table_columns,
    )


def _deployed(conn: psycopg.Connection, history: History) -> Deployed | None:
    if not history.applied:
        return None
    row = conn.execute(_DEPLOYED_SQL, {"revisions": list(history.applied)}).fetchone()
    if row is None:
        return None
    revision, sha256, functions, function_defs = row
    file = history.files[revision]
    if not file.is_rules:
        raise DeployRefused(
            f"cmdm.rule_deployment names revision {revision!r}, but {display(file.path)} "
            "is not a rules revision"
        )
    return Deployed(
        revision=revision,
        sha256=sha256,
        functions=tuple(functions),
        function_defs=dict(function_defs or {}),
        file=file,
    )


# --- plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectChange:
    identity: str
    template: str
    #: 'added', 'changed', 'removed' or 'unchanged' (only the rules sha stamp differs)
    change: str
    diff: str = ""


@dataclass(frozen=True)
class Plan:
    sha256: str
    deployed_sha256: str | None
    deployed_revision: str | None
    revision: str | None  # the revision a deploy would write; None when up to date
    revision_file: Path | None
    objects: tuple[ObjectChange, ...]
    columns_to_add: dict[str, list[str]]
    columns_not_in_rules: dict[str, list[str]]

    @property
    def up_to_date(self) -> bool:
        return self.revision is None

    def by_change(self, change: str) -> list[ObjectChange]:
        return [o for o in self.objects if o.change == change]

    def as_dict(self) -> dict[str, Any]:
        return {
            "up_to_date": self.up_to_date,
            "sha256": self.sha256,
            "deployed_sha256": self.deployed_sha256,
            "deployed_revision": self.deployed_revision,
            "revision": self.revision,
            "revision_file": str(self.revision_file) if self.revision_file else None,
            "functions": {
                change: [o.identity for o in self.by_change(change)]
                for change in ("added", "changed", "removed", "unchanged")
            },
            "columns_to_add": self.columns_to_add,
            "columns_not_in_rules": self.columns_not_in_rules,
            "diff": {o.identity: o.diff for o in self.objects if o.diff},
        }


def make_plan(target: Target) -> Plan:
    rendered, deployed = target.rendered, target.deployed
    old = {o["identity"]: o for o in deployed.objects} if deployed else {}
    old_sha = deployed.file.constants["RULES_SHA256"] if deployed else ""
    changes: list[ObjectChange] = []
    for obj in rendered.objects:
        before = old.get(obj.identity)
        if before is None:
            changes.append(ObjectChange(obj.identity, obj.template, "added"))
            continue
        old_sql = before["sql"].replace(old_sha, SHA_PLACEHOLDER)
        new_sql = obj.sql.replace(rendered.sha256, SHA_PLACEHOLDER)
        if old_sql == new_sql:
            changes.append(ObjectChange(obj.identity, obj.template, "unchanged"))
            continue
        diff = "".join(
            difflib.unified_diff(
                old_sql.splitlines(keepends=True),
                new_sql.splitlines(keepends=True),
                fromfile=f"deployed/{before['template']}",
                tofile=f"rendered/{obj.template}",
            )
        )
        changes.append(ObjectChange(obj.identity, obj.template, "changed", diff))
    current = {o.identity for o in rendered.objects}
    for identity, before in old.items():
        if identity not in current:
            changes.append(ObjectChange(identity, before["template"], "removed"))
    revision = path = None
    if not target.up_to_date:
        revision = new_revision_id(target)
        path = target.versions_dir / f"{revision}.py"
    return Plan(
        sha256=rendered.sha256,
        deployed_sha256=deployed.sha256 if deployed else None,
        deployed_revision=deployed.revision if deployed else None,
        revision=revision,
        revision_file=path,
        objects=tuple(changes),
        columns_to_add=target.columns_to_add(),
        columns_not_in_rules=target.columns_not_in_rules(),
    )


def new_revision_id(target: Target) -> str:
    return f"{next_number(target.versions_dir):04d}_rules_{target.rendered.sha256[:12]}"


# --- check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    sha256: str
    deployed_sha256: str | None
    deployed_revision: str | None
    problems: tuple[str, ...]

    @property
    def in_sync(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_sync": self.in_sync,
            "sha256": self.sha256,
            "deployed_sha256": self.deployed_sha256,
            "deployed_revision": self.deployed_revision,
            "problems": list(self.problems),
        }


def check(target: Target) -> CheckResult:
    """Drift: rules/sql versus the deployed revision, and each deployed routine versus what
    the deploy recorded (missing, redefined by hand, COMMENT without the sha; its triggers
    dropped)."""
    rendered, deployed = target.rendered, target.deployed
    problems: list[str] = []
    if deployed is None:
        problems.append(
            f"no rules are deployed in this database (rules/ render sha256 "
            f"{rendered.sha256[:12]}): run `cmdm deploy-rules`"
        )
        return CheckResult(rendered.sha256, None, None, tuple(problems))
    if deployed.sha256 != rendered.sha256:
        problems.append(
            f"rules/ and sql/ render sha256 {rendered.sha256[:12]}, the database runs "
            f"{deployed.sha256[:12]} ({deployed.revision}): see `cmdm deploy-rules --plan`"
        )
    for table, columns in target.columns_to_add().items():
        problems.append(
            f"{table} lacks the status column{'s' * (len(columns) > 1)} {', '.join(columns)}: "
            "run `cmdm deploy-rules`"
        )
    with connect(target.url) as conn:
        try:
            with conn.transaction():
                conn.execute("SET LOCAL search_path = pg_catalog")
                rows = conn.execute(
                    _DEFINITIONS_SQL, {"identities": list(deployed.functions)}
                ).fetchall()
                triggers = [
                    (name, table) for o in deployed.objects for name, table in o["triggers"]
                ]
                missing_triggers = [
                    f"{name} ON {table}"
                    for name, table in triggers
                    if not conn.execute(
                        _TRIGGER_SQL, {"table": table, "name": _unquoted(name)}
                    ).fetchone()[0]
                ]
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot read the functions of {mask_url(target.url)}: {first_line(exc)}"
            ) from exc
    for identity, exists, digest, comment in rows:
        if not exists:
            problems.append(f"{identity} is missing from the database")
            continue
        recorded = deployed.function_defs.get(identity)
        if recorded is None:
            problems.append(f"{identity} has no recorded definition in {deployed.revision}")
        elif digest != recorded:
            problems.append(
                f"{identity} was edited in the database: its definition differs from the one "
                f"{deployed.revision} created"
            )
        if deployed.sha256 not in (comment or ""):
            problems.append(
                f"{identity}: its COMMENT no longer carries rules sha256 {deployed.sha256[:12]}"
            )
    for trigger in missing_triggers:
        problems.append(f"trigger {trigger} is missing from the database")
    return CheckResult(rendered.sha256, deployed.sha256, deployed.revision, tuple(problems))


def _unquoted(name: str) -> str:
    """A trigger name as written in SQL ("_100_x" or _100_x) as pg_trigger stores it."""
    if len(name) > 1 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name.lower()


# --- deploy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployResult:
    plan: Plan
    #: The revision written and applied; None when there was nothing to deploy.
    revision: str | None = None
    path: Path | None = None
    columns_added: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployed": self.revision is not None,
            "sha256": self.plan.sha256,
            "revision": self.revision or self.plan.deployed_revision,
            "revision_file": str(self.path) if self.path else None,
            "plan": self.plan.as_dict(),
        }


def deploy(target: Target) -> DeployResult:
    """Write the rules revision and upgrade to it; on failure remove it again, so the
    database and the versions folder are exactly as before."""
    plan = make_plan(target)
    if plan.up_to_date:
        return DeployResult(plan=plan)
    revision, path = plan.revision, plan.revision_file
    assert revision is not None and path is not None
    previous = next(target.history.rules_revisions(), None)
    payload = build_payload(target.rendered, target.ruleset.files, previous, plan.columns_to_add)
    source = revision_source(revision, target.history.head, payload, migrate.schema_head())
    if path.exists():
        raise DeployRefused(f"{display(path)} exists already", hint="remove it and deploy again")
    scratch = path.with_name(f".{path.name}.tmp")  # not *.py: Alembic never loads it
    scratch.write_text(source, encoding="utf-8")
    os.replace(scratch, path)
    try:
        migrate.upgrade(target.url, revision, target.migrations_dir)
    except BaseException as exc:
        _remove_revision(path)
        if isinstance(exc, CmdmError):
            raise MigrationError(
                f"deploy of rules sha256 {target.rendered.sha256[:12]} failed, nothing was "
                f"changed and {display(path)} was removed: {exc.message}",
                hint=exc.hint,
            ) from exc
        raise
    return DeployResult(
        plan=plan, revision=revision, path=path, columns_added=payload["COLUMNS_ADDED"]
    )


def _remove_revision(path: Path) -> None:
    path.unlink(missing_ok=True)
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink(missing_ok=True)


# --- render-rules --out -------------------------------------------------------------------


def sql_file_name(template: str) -> str:
    """sql/functions/customer.x.sql.j2 -> functions/customer.x.sql"""
    name = template.removeprefix("sql/")
    return name[: -len(".j2")] if name.endswith(TEMPLATE_SUFFIX) else name


def write_rendered(rendered: Rendered, out: Path) -> tuple[list[Path], list[Path]]:
    """One file per object under `out`, named after its template; *.sql files of the
    template folders that this render does not produce (an earlier render's) are removed.
    Returns (written, removed)."""
    written: list[Path] = []
    for obj in rendered.objects:
        path = out / sql_file_name(obj.template)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(obj.sql.encode("utf-8"))
        written.append(path)
    keep = set(written)
    removed = [
        stale
        for folder in TEMPLATE_FOLDERS
        for stale in sorted((out / folder).glob("*.sql"))
        if stale not in keep
    ]
    for stale in removed:
        stale.unlink()
    return written, removed
