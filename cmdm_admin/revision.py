"""Rules revisions: the Alembic revision file `cmdm deploy-rules` writes, and reading one back.

A rules revision holds the rendered SQL *frozen* as Python string constants. Its upgrade
executes those strings and nothing else: it never reads sql/ or rules/ and never renders,
so a revision applies the same SQL on every database and at any later time, whatever the
templates have become since (alembic_utils' issue #85 shows what happens otherwise).

Payload (module constants, all literals):

    RULES_SHA256             sha256 of the rendered SQL (`Rendered.sha256`)
    RULES_TEXT               rule file name -> YAML text it was rendered from
    OBJECTS                  [{template, kind, identity, triggers, sha256, sql}], in order
    PREVIOUS_RULES_REVISION  the rules revision before this one, or None
    PREVIOUS_OBJECTS         that revision's OBJECTS, so downgrade needs no other file
    COLUMNS_ADDED            table -> status columns the database lacked at generation time
    PAYLOAD_SHA256           sha256 of all of the above plus revision and down_revision

`payload_sha256` computes PAYLOAD_SHA256 here exactly as the generated file computes it for
itself (a canonical JSON text), so an edited file is detected both by `cmdm deploy-rules`
(which reads files with `ast`, never importing them) and by the revision's own upgrade.
The file is written in `ruff format` style and passes `ruff check`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmdm_admin.errors import CmdmError
from cmdm_admin.render import Rendered, RenderedObject

#: The payload constants, in the order `payload_sha256` reads them.
PAYLOAD_NAMES = (
    "RULES_SHA256",
    "RULES_TEXT",
    "OBJECTS",
    "PREVIOUS_RULES_REVISION",
    "PREVIOUS_OBJECTS",
    "COLUMNS_ADDED",
)
OBJECT_KEYS = ("template", "kind", "identity", "triggers", "sha256", "sql")

#: Lines are kept within this width when it is cheap to do so (ruff's line-length is 100).
_WIDTH = 88


class RevisionFileError(CmdmError):
    """A file under migrations/versions cannot be read as an Alembic revision."""


@dataclass(frozen=True)
class RevisionFile:
    """One file of migrations/versions, read without importing it."""

    path: Path
    revision: str
    down_revision: str | None
    #: Every top-level `NAME = <literal>` of the file.
    constants: dict[str, Any]

    @property
    def is_rules(self) -> bool:
        return "RULES_SHA256" in self.constants

    @property
    def objects(self) -> list[dict[str, Any]]:
        return list(self.constants.get("OBJECTS", []))

    def payload_matches(self) -> bool:
        """False when the payload is incomplete or differs from its PAYLOAD_SHA256."""
        if any(name not in self.constants for name in (*PAYLOAD_NAMES, "PAYLOAD_SHA256")):
            return False
        try:
            actual = payload_sha256(self.revision, self.down_revision, self.constants)
        except (TypeError, ValueError):
            return False
        return actual == self.constants["PAYLOAD_SHA256"]


def payload_sha256(revision: str, down_revision: str | None, payload: Mapping[str, Any]) -> str:
    """sha256 of a canonical JSON text of the payload (tuples and lists alike)."""
    document = {"revision": revision, "down_revision": down_revision}
    document.update({name: payload[name] for name in PAYLOAD_NAMES})
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_revision_file(path: Path) -> RevisionFile:
    """The revision ids and literal constants of `path`, parsed (never executed)."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        raise RevisionFileError(f"{path}: cannot be read as a revision file: {exc}") from exc
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            constants[target.id] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            constants.pop(target.id, None)  # not a literal (any more): not part of a payload
    revision = constants.get("revision")
    if not isinstance(revision, str) or not revision:
        raise RevisionFileError(
            f"{path}: no `revision = '...'` line; not an Alembic revision file",
            hint="move files that are not revisions out of migrations/versions",
        )
    down = constants.get("down_revision")
    if down is not None and not isinstance(down, str):
        raise RevisionFileError(
            f"{path}: down_revision {down!r} is not one revision; cmdm keeps one linear history",
            hint="merge revisions are not supported: rebase the file onto the current head",
        )
    return RevisionFile(path=path, revision=revision, down_revision=down, constants=constants)


def is_revision_source(path: Path) -> bool:
    """The files Alembic loads from versions/: *.py, not editor locks or __init__."""
    name = path.name
    return name.endswith(".py") and not name.startswith((".#", "__init__")) and path.is_file()


def object_payload(obj: RenderedObject) -> dict[str, Any]:
    return {
        "template": obj.template,
        "kind": obj.kind,
        "identity": obj.identity,
        "triggers": [list(t) for t in obj.triggers],
        "sha256": obj.sha256,
        "sql": obj.sql,
    }


def build_payload(
    rendered: Rendered,
    rules_text: Mapping[str, str],
    previous: RevisionFile | None,
    columns_added: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """The payload constants of a new rules revision."""
    return {
        "RULES_SHA256": rendered.sha256,
        "RULES_TEXT": dict(rules_text),
        "OBJECTS": [object_payload(o) for o in rendered.objects],
        "PREVIOUS_RULES_REVISION": previous.revision if previous else None,
        "PREVIOUS_OBJECTS": [_normalised(o) for o in previous.objects] if previous else [],
        "COLUMNS_ADDED": {t: list(c) for t, c in columns_added.items() if c},
    }


def _normalised(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "template": obj["template"],
        "kind": obj["kind"],
        "identity": obj["identity"],
        "triggers": [list(t) for t in obj["triggers"]],
        "sha256": obj["sha256"],
        "sql": obj["sql"],
    }


# --- writing ------------------------------------------------------------------------------


def revision_source(
    revision: str, down_revision: str | None, payload: Mapping[str, Any], depends_on: str | None
) -> str:
    """The text of a rules revision file (deterministic: no date, no host, no user).

    Rules revisions form their own Alembic branch, labelled "rules", in the project's
    versions folder: `down_revision` is the previous rules revision (None for the first),
    and `depends_on` the schema revision of cmdm's own branch that the SQL was rendered
    against, so an upgrade from empty applies that schema first.
    """
    objects = payload["OBJECTS"]
    previous = payload["PREVIOUS_RULES_REVISION"]
    columns = payload["COLUMNS_ADDED"]
    listing = "\n".join(
        _docstring_safe(f"    {o['identity']:<48} {o['template']}") for o in objects
    )
    added = (
        "".join(
            "\n" + _docstring_safe(f"    {table}: {', '.join(cols)}")
            for table, cols in columns.items()
        )
        or " none"
    )
    values = {
        "sha12": payload["RULES_SHA256"][:12],
        "count": str(len(objects)),
        "listing": listing,
        "previous": previous or "none (this is the first rules revision)",
        "added": added,
        "revision": revision,
        "down_revision": down_revision or "none (the first rules revision)",
        "revision_literal": py_literal(revision),
        "down_revision_literal": py_literal(down_revision),
        "branch_labels_literal": py_literal(("rules",) if down_revision is None else None),
        "depends_on_literal": py_literal(depends_on),
        "rules_sha256": py_literal(payload["RULES_SHA256"]),
        "previous_rules_revision": py_literal(previous),
        "columns_added": py_literal(columns),
        "payload_sha256": py_literal(payload_sha256(revision, down_revision, payload)),
        "rules_text": py_literal(payload["RULES_TEXT"]),
        "objects": py_literal(objects),
        "previous_objects": py_literal(payload["PREVIOUS_OBJECTS"]),
    }
    return string.Template(REVISION_TEMPLATE).substitute(values)


def _docstring_safe(line: str) -> str:
    """A line for the module docstring: no backslash escapes, no closing quotes."""
    body = "".join(_escape_char(ch, keep_tab=False) for ch in line).replace("\\", "/")
    return body.replace('"""', "'''").rstrip()


def py_literal(value: Any, indent: int = 0) -> str:
    """`value` as Python source in `ruff format` style: str, int, None, bool, list, tuple
    and dict (with str keys); containers that do not fit on one line are exploded with a
    trailing comma, which keeps them exploded."""
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, str):
        return _string_literal(value)
    if isinstance(value, Mapping):
        items = [f"{_string_literal(k)}: {py_literal(v, indent + 4)}" for k, v in value.items()]
        return _container("{", "}", items, indent)
    if isinstance(value, list | tuple):
        items = [py_literal(v, indent + 4) for v in value]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        if isinstance(value, tuple) and len(items) == 1:
            items_text = items[0] + ","  # a one-element tuple needs its comma
            if "\n" not in items_text and _width(items_text) + indent + 2 <= _WIDTH:
                return f"({items_text})"
        return _container(opening, closing, items, indent)
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def _container(opening: str, closing: str, items: list[str], indent: int) -> str:
    if not items:
        return opening + closing
    flat = opening + ", ".join(items) + closing
    if "\n" not in flat and _width(flat) + indent <= _WIDTH and not _has_dict(opening):
        return flat
    pad = " " * (indent + 4)
    body = "".join(f"{pad}{item},\n" for item in items)
    return f"{opening}\n{body}{' ' * indent}{closing}"


def _has_dict(opening: str) -> bool:
    return opening == "{"  # dicts are always exploded: one key per line reads best


def _width(text: str) -> int:
    """Display width as ruff counts it, erring wide: East Asian characters take two."""
    return sum(1 if ord(ch) < 0x1100 else 2 for ch in text)


def _escape_char(ch: str, keep_tab: bool) -> str:
    if ch == "\\":
        return "\\\\"
    if ch == "\t":
        return ch if keep_tab else "\\t"
    if ch == "\r":
        return "\\r"
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _string_literal(value: str) -> str:
    """A string literal: multi-line text as a triple-quoted block that starts on its own
    line; everything ruff or Python would misread (backslashes, control characters,
    trailing blanks, runs of quotes) escaped."""
    if "\n" not in value:
        body = "".join(_escape_char(ch, keep_tab=False) for ch in value)
        doubles, singles = body.count('"'), body.count("'")
        if doubles > singles:
            return "'" + body.replace("'", "\\'") + "'"
        return '"' + body.replace('"', '\\"') + '"'
    lines = []
    for line in value.split("\n"):
        text = "".join(_escape_char(ch, keep_tab=True) for ch in line)
        stripped = text.rstrip(" \t")
        if stripped != text:  # W291: a trailing blank would be flagged (and "fixed" away)
            trailing = text[len(stripped) :]
            last = "\\x20" if trailing[-1] == " " else "\\t"
            text = stripped + trailing[:-1] + last
        lines.append(text)
    body = "\n".join(lines).replace('"""', '""\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    return '"""\\\n' + body + '"""'


_NUMBERED = re.compile(r"^(\d+)_")


def next_number(versions_dir: Path) -> int:
    """One more than the highest numeric prefix of the files in `versions_dir`."""
    numbers = [
        int(m.group(1))
        for p in versions_dir.iterdir()
        if is_revision_source(p) and (m := _NUMBERED.match(p.name))
    ]
    return max(numbers, default=0) + 1


REVISION_TEMPLATE = '''\
"""Rules deploy ${sha12}: ${count} objects, rendered from rules/ and sql/ by `cmdm deploy-rules`.

Generated; do not edit. The SQL below is frozen: upgrade executes these strings and never
reads or re-renders the templates. PAYLOAD_SHA256 covers everything frozen here, so an edit
is refused by `cmdm deploy-rules` and by this revision's own upgrade and downgrade. To
change the rules, edit rules/ (or sql/) and run `cmdm deploy-rules` again; to roll this
deploy back, `cmdm migrate downgrade rules@-1`.

Objects:
${listing}

Previous rules revision: ${previous}
Columns added:${added}

upgrade:   add COLUMNS_ADDED (boolean NOT NULL DEFAULT false); drop the triggers and
           routines of PREVIOUS_OBJECTS that OBJECTS no longer create; run OBJECTS' SQL,
           leaving out each trigger statement whose trigger is in place unchanged (no lock
           on its table); register them in cmdm.managed_object; record the deploy in
           cmdm.rule_deployment with the sha256 of each routine's pg_get_functiondef().
downgrade: drop what OBJECTS created that PREVIOUS_OBJECTS do not; run PREVIOUS_OBJECTS'
           SQL again (the same way); drop COLUMNS_ADDED (and their data); delete the
           deploy's record.

Revision ID: ${revision}
Revises: ${down_revision}
"""

# The frozen SQL and YAML keep their own line lengths:
# ruff: noqa: E501

from __future__ import annotations

import hashlib
import json
import re

import psycopg
from alembic import op
from alembic.util import CommandError
from sqlalchemy import text


class MigrationError(CommandError):
    """Alembic's own error, so that this frozen file imports nothing of cmdm_admin (which
    changes between releases); cmdm prints it as one `Error:` line, hint included."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(f"{message} ({hint})")


revision = ${revision_literal}
down_revision = ${down_revision_literal}
branch_labels = ${branch_labels_literal}
depends_on = ${depends_on_literal}

#: sha256 of the rendered SQL; every object carries it in its banner and COMMENT.
RULES_SHA256 = ${rules_sha256}
#: The rules revision whose objects downgrade restores (None: downgrade drops them all).
PREVIOUS_RULES_REVISION = ${previous_rules_revision}
#: Status columns the target database lacked when this file was generated.
COLUMNS_ADDED = ${columns_added}
#: sha256 of the frozen payload (see payload_sha256); any edit of this file changes it.
PAYLOAD_SHA256 = ${payload_sha256}


def upgrade() -> None:
    _check_payload()
    for table, columns in COLUMNS_ADDED.items():
        for column in columns:
            _execute(
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {_quoted(column)} "
                "boolean NOT NULL DEFAULT false"
            )
    _retire(PREVIOUS_OBJECTS, OBJECTS)
    _create(OBJECTS, revision, "fix the template or rules, then run `cmdm deploy-rules` again")
    op.execute(
        text(
            "INSERT INTO cmdm.rule_deployment "
            "(revision, down_revision, sha256, rules_text, functions, function_defs) "
            "VALUES (:revision, :down_revision, :sha256, CAST(:rules_text AS jsonb), "
            "CAST(:functions AS text[]), CAST(:function_defs AS jsonb))"
        ).bindparams(
            revision=revision,
            down_revision=down_revision,
            sha256=RULES_SHA256,
            rules_text=json.dumps(RULES_TEXT, ensure_ascii=False),
            functions=[obj["identity"] for obj in OBJECTS],
            function_defs=json.dumps(_function_defs(OBJECTS), sort_keys=True),
        )
    )


def downgrade() -> None:
    _check_payload()
    _retire(OBJECTS, PREVIOUS_OBJECTS)
    _create(
        PREVIOUS_OBJECTS,
        PREVIOUS_RULES_REVISION,
        "the previous revision's frozen SQL no longer applies to this database",
    )
    for table, columns in COLUMNS_ADDED.items():
        for column in columns:
            _execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {_quoted(column)}")
    op.execute(
        text("DELETE FROM cmdm.rule_deployment WHERE revision = :revision").bindparams(
            revision=revision
        )
    )


def payload_sha256() -> str:
    """sha256 of a canonical JSON text of the payload (as cmdm_admin.revision computes it)."""
    document = {
        "revision": revision,
        "down_revision": down_revision,
        "RULES_SHA256": RULES_SHA256,
        "RULES_TEXT": RULES_TEXT,
        "OBJECTS": OBJECTS,
        "PREVIOUS_RULES_REVISION": PREVIOUS_RULES_REVISION,
        "PREVIOUS_OBJECTS": PREVIOUS_OBJECTS,
        "COLUMNS_ADDED": COLUMNS_ADDED,
    }
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_payload() -> None:
    if payload_sha256() != PAYLOAD_SHA256:
        raise MigrationError(
            f"revision {revision} was edited by hand: its payload no longer matches PAYLOAD_SHA256",
            hint="restore the file from version control; revisions are generated, not edited",
        )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _execute(sql: str) -> None:
    """Run SQL exactly as written: straight to the driver, without parameters, so no `:name`
    or `%` in it is taken for a placeholder."""
    cursor = op.get_bind().connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _retire(old: list[dict], new: list[dict]) -> None:
    """Drop the triggers and routines of `old` that `new` does not create, triggers first,
    and forget the routines in cmdm.managed_object."""
    kept_triggers = {tuple(trigger) for obj in new for trigger in obj["triggers"]}
    kept = {obj["identity"] for obj in new}
    for obj in old:
        for name, table in obj["triggers"]:
            if (name, table) not in kept_triggers:
                _execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for obj in old:
        if obj["identity"] not in kept:
            _execute(f"DROP {obj['kind'].upper()} IF EXISTS {obj['identity']}")
            op.execute(
                text(
                    "DELETE FROM cmdm.managed_object "
                    "WHERE object_type = :object_type AND object_identity = :identity"
                ).bindparams(object_type=obj["kind"], identity=obj["identity"])
            )


def _create(objects: list[dict], created_by: str | None, hint: str) -> None:
    """Run each object's frozen SQL and register the routine it creates."""
    for obj in objects:
        try:
            _create_or_replace(obj)
        except psycopg.Error as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise MigrationError(
                f"{obj['template']} ({obj['identity']}) failed in revision {revision}: {detail}",
                hint=hint,
            ) from exc
        op.execute(
            text(
                "INSERT INTO cmdm.managed_object (object_type, object_identity, created_by) "
                "VALUES (:object_type, :identity, :created_by) "
                "ON CONFLICT (object_type, object_identity) DO NOTHING"
            ).bindparams(object_type=obj["kind"], identity=obj["identity"], created_by=created_by)
        )


def _create_or_replace(obj: dict) -> None:
    """Run the object's SQL without the triggers already in place (_without_unchanged_triggers).
    CREATE OR REPLACE cannot change a routine's result type or parameter names (42P13):
    then the routine and its triggers are dropped and the whole SQL runs again."""
    savepoint = op.get_bind().begin_nested()
    try:
        _execute(_without_unchanged_triggers(obj["sql"]))
    except psycopg.errors.InvalidFunctionDefinition:
        savepoint.rollback()
    else:
        savepoint.commit()
        return
    for name, table in obj["triggers"]:
        _execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    _execute(f"DROP {obj['kind'].upper()} IF EXISTS {obj['identity']}")
    _execute(obj["sql"])


#: A trigger statement of the frozen SQL: CREATE [OR REPLACE] [CONSTRAINT] TRIGGER at the
#: start of a line up to the semicolon that ends a line, with the DROP TRIGGER IF EXISTS
#: right before it that older templates wrote (and constraint triggers still need: they
#: cannot be replaced).
_TRIGGER_STATEMENT = re.compile(
    r"^(?:DROP TRIGGER IF EXISTS \\S+ ON \\S+;\\n)?"
    r"(CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER (\\S+)\\n.*?;)$$",
    re.MULTILINE | re.DOTALL,
)


def _without_unchanged_triggers(sql: str) -> str:
    """`sql` without each trigger statement whose trigger exists, enabled, with the very
    definition the statement gives (pg_get_triggerdef). Creating a trigger locks its table
    (CREATE OR REPLACE TRIGGER: SHARE ROW EXCLUSIVE, DROP TRIGGER: ACCESS EXCLUSIVE), which
    queues the deploy behind the ETL's open transaction on the facts table; a deploy that
    keeps the triggers as they are leaves their tables alone."""
    statements = list(_TRIGGER_STATEMENT.finditer(sql))
    if not statements:
        return sql
    in_place = _trigger_definitions(sorted({_unquoted(m.group(2)) for m in statements}))
    return _TRIGGER_STATEMENT.sub(
        lambda m: "" if _one_line(m.group(1)) in in_place else m.group(0), sql
    )


def _one_line(statement: str) -> str:
    """A CREATE TRIGGER statement as pg_get_triggerdef prints it: without OR REPLACE and
    the semicolon, blanks collapsed."""
    statement = statement.rstrip(";").replace("CREATE OR REPLACE TRIGGER", "CREATE TRIGGER", 1)
    return " ".join(statement.split())


def _unquoted(name: str) -> str:
    """A trigger name as written in SQL, as pg_trigger stores it."""
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


def _trigger_definitions(names: list[str]) -> set[str]:
    """pg_get_triggerdef of the enabled triggers with these names, blanks collapsed."""
    rows = _catalog_rows(
        "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
        "WHERE t.tgname = ANY (CAST(:names AS text[])) AND t.tgenabled = 'O' "
        "AND NOT t.tgisinternal",
        {"names": names},
    )
    return {" ".join(definition.split()) for (definition,) in rows}


def _catalog_rows(query: str, params: dict) -> list:
    """The rows of `query`, read with search_path = pg_catalog so that the definitions it
    prints do not depend on the session (as `cmdm deploy-rules --check` reads them)."""
    bind = op.get_bind()
    saved = bind.execute(text("SELECT current_setting('search_path')")).scalar_one()
    bind.execute(text("SELECT set_config('search_path', 'pg_catalog', true)"))
    rows = bind.execute(text(query), params).all()
    bind.execute(text("SELECT set_config('search_path', :saved, true)"), {"saved": saved})
    return rows


def _function_defs(objects: list[dict]) -> dict[str, str]:
    """identity -> sha256 of pg_get_functiondef(oid) (see _catalog_rows)."""
    rows = _catalog_rows(
        "SELECT i.identity, encode(sha256(convert_to("
        "pg_get_functiondef(to_regprocedure(i.identity)), 'UTF8')), 'hex') "
        "FROM unnest(CAST(:identities AS text[])) AS i (identity)",
        {"identities": [obj["identity"] for obj in objects]},
    )
    missing = [identity for identity, digest in rows if digest is None]
    if missing:
        raise MigrationError(
            f"revision {revision} did not create {', '.join(missing)}",
            hint="the object's SQL must create the routine its header names",
        )
    return dict(rows)


# --- frozen payload -------------------------------------------------------------------------

#: The rule files (name -> YAML text) the SQL was rendered from.
RULES_TEXT = ${rules_text}

#: What upgrade creates, in order: the rendered SQL of each template, frozen.
OBJECTS = ${objects}

#: What the previous rules revision created: downgrade restores exactly this.
PREVIOUS_OBJECTS = ${previous_objects}
'''
