"""`cmdm verify`: run the shipped pgTAP suites against any database and leave it unchanged.

Two kinds of suites, named by the suite's first line (`SUITE_MARKER`):

- `-- cmdm-verify: read-only`: it reads the catalog and tables and creates nothing but
  temporary objects, so it takes at most ACCESS SHARE on the ETL's tables and cmdm's:
  safe on a live database while the ETL loads. `cmdm verify` runs these.
- `-- cmdm-verify: scratch` (and any suite without the line): it writes test rows, ALTERs
  or TRUNCATEs inside its transaction; rolled back, but holding ROW EXCLUSIVE or ACCESS
  EXCLUSIVE locks on the ETL's tables while it runs. `cmdm verify --scratch` adds these,
  and refuses to on a database that holds facts or outputs (`tables_with_rows`): a scratch
  database is one without.

A read-only suite is refused before anything runs when one of its own top-level statements
writes (`check_read_only`); what a function it calls does is not seen there, which is why
the shipped ones are also checked against pg_locks (tests/py/test_verify.py). Every session
runs with the project's lock_timeout (as migrations do), so a suite queued behind a lock
fails instead of waiting.

Each suite runs in its own psql session, invoked the way pg_prove's pgTAP source handler
invokes it (`--no-psqlrc --no-align --quiet --tuples-only`, ON_ERROR_STOP), so its standard
output is the suite's raw TAP stream, which this module parses itself: per suite the plan,
the passes and failures and the names of the failing tests. pg_prove is not needed: it would
only add a Perl harness whose summary would have to be screen-scraped to get the same facts.

Why nothing persists, in three layers:

1. Before anything connects, every suite is read and refused if it contains, at top level
   (outside strings, comments, dollar quotes and routine bodies, as psql splits statements),
   a statement that would end the transaction with a commit (COMMIT, END, PREPARE
   TRANSACTION, COMMIT PREPARED) or a psql meta-command that leaves the session or runs SQL
   that cannot be read beforehand (\\connect, \\gexec, \\include, \\!).
2. The session runs `BEGIN`, `CREATE EXTENSION IF NOT EXISTS pgtap`, then the suite: the
   suite's own BEGIN only warns ("already in progress") and its ROLLBACK ends everything,
   the extension included. Server-side code cannot commit inside that transaction block
   (PostgreSQL refuses COMMIT in procedures and DO blocks there).
3. psql runs with AUTOCOMMIT off, so a statement after the suite's ROLLBACK opens a new
   transaction instead of committing on its own; that one ends in the ROLLBACK psql is given
   last, and a session that stops early (an error, ON_ERROR_STOP) disconnects with its
   transaction open, which the server rolls back.

Passwords never reach process arguments: psql gets a keyword/value connection string
without one (a URL's `passfile` parameter is kept) and a password written into the URL is
handed over in PGPASSWORD, which only the same OS user can read.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cmdm_admin.db import connect, first_line, mask_url
from cmdm_admin.errors import VerifyError

#: psql as pg_prove's pgTAP source handler runs it, plus AUTOCOMMIT off (layer 3 above).
PSQL_OPTIONS = (
    "--no-psqlrc",
    "--no-align",
    "--quiet",
    "--pset=pager=off",
    "--pset=tuples_only=true",
    "--set=ON_ERROR_STOP=1",
    "--set=AUTOCOMMIT=off",
)
APPLICATION_NAME = "cmdm verify"
EXTENSION = "pgtap"
#: Where Debian puts psql when no psql is on PATH.
DEBIAN_PSQL = Path("/usr/lib/postgresql/15/bin/psql")
SUITE_GLOB = "*.sql"
#: The first line of a suite says which kind it is (module doc); without it, scratch.
SUITE_MARKER = re.compile(r"--\s*cmdm-verify:\s*(read-only|scratch)\s*")
READ_ONLY, SCRATCH = "read-only", "scratch"
#: Tables whose rows make a database one that is not scratch: the ETL's inputs (not
#: mapping."产品线", which migrations seed) and cmdm's outputs; to these `tables_with_rows`
#: adds every table carrying cmdm's post-ETL hook triggers (the deployed rules' facts and
#: events tables, whatever their names).
DATA_TABLES = (
    'business."规模明细"',
    'customer."当年中标"',
    'customer."当年流失"',
    'customer."年金客户"',
    "customer.customer_plan_contract",
    "customer.fct_customer_business_monthly_status",
    "customer.fct_customer_plan_monthly_status",
)
HOOK_TRIGGER_PREFIX = "_200_post_etl_hooks_"

#: What psql prints to stderr that is expected here and not worth showing: the suite's own
#: BEGIN inside ours, our ROLLBACK after the suite's, and the notice that pgtap is there.
_EXPECTED_STDERR = re.compile(
    r"WARNING:\s+there is already a transaction in progress"
    r"|WARNING:\s+there is no transaction in progress"
    r"|NOTICE:\s+extension \"\w+\" already exists, skipping"
)


# -- finding suites ----------------------------------------------------------------------


def default_suites_dir() -> Path:
    from cmdm_admin.project import pgtap_dir

    return pgtap_dir()


def find_suites(spec: str | Path | None = None) -> list[Path]:
    """The suites to run, sorted by name: `*.sql` of a folder, one file, or a glob pattern.

    Without `spec`, the suites shipped in the package (cmdm_admin/pgtap/*.sql).
    """
    if spec is None:
        spec = default_suites_dir()
    path = Path(spec).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.glob(SUITE_GLOB) if p.is_file())
        where = f"{path}/{SUITE_GLOB}"
    elif path.is_file():
        found, where = [path], str(path)
    else:
        pattern = str(path)
        found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        where = pattern
    if not found:
        raise VerifyError(
            f"no pgTAP suites found in {where}",
            hint="pass --suites a folder, a .sql file or a glob such as 'cmdm_admin/pgtap/0*.sql'",
        )
    return found


def suite_kind(path: Path) -> str:
    """READ_ONLY or SCRATCH, as the suite's first line says (SCRATCH without the line)."""
    try:
        with path.open(encoding="utf-8") as suite:
            first = suite.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifyError(f"cannot read suite {display_path(path)}: {exc}") from exc
    m = SUITE_MARKER.fullmatch(first.rstrip("\r\n"))
    return m.group(1) if m else SCRATCH


def display_path(path: Path) -> str:
    """The suite's path relative to the working folder when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# -- refusing suites that could persist changes ------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One top-level SQL statement as psql would send it: its line and leading words."""

    line: int
    words: tuple[str, ...]


@dataclass(frozen=True)
class MetaCommand:
    """One psql backslash command, e.g. `\\set` (name `set`)."""

    line: int
    name: str


#: First words of a statement that end the transaction by making it permanent.
_COMMITTING = {
    ("COMMIT",): "COMMIT",
    ("END",): "END",
    ("PREPARE", "TRANSACTION"): "PREPARE TRANSACTION",
}
#: psql meta-commands that leave the session or run SQL this check cannot read beforehand.
_REFUSED_META = {
    "c": "opens a new session outside the transaction",
    "connect": "opens a new session outside the transaction",
    "gexec": "runs SQL built while the suite runs, which cannot be checked beforehand",
    "i": "runs another file, which is not checked",
    "include": "runs another file, which is not checked",
    "ir": "runs another file, which is not checked",
    "include_relative": "runs another file, which is not checked",
    "!": "runs a shell command",
}
#: Meta-commands that send the query buffer, like a semicolon does.
_SENDING_META = {"g", "gx", "gset", "gdesc", "gexec", "crosstabview"}

_IDENT = re.compile(r"[^\W\d][\w$]*")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_META_NAME = re.compile(r"\\([A-Za-z_+]+|.)", re.S)
#: The line that ends COPY … FROM STDIN data inside a script.
_COPY_END = re.compile(r"^\\\.\r?$", re.M)
_FROM_STDIN = re.compile(r"\bfrom\s+stdin\b", re.I)


def scan_sql(text: str) -> list[Statement | MetaCommand]:
    """Split a psql script the way psql does, keeping only what the safety check needs.

    Skips comments (nested block comments too), quoted strings (E'' with backslash
    escapes), quoted identifiers and dollar quotes; semicolons inside parentheses or inside
    a `CREATE FUNCTION|PROCEDURE … BEGIN ATOMIC … END` body do not end a statement (psql's
    own heuristic); backslash commands run to the end of their line, and those that send
    the query buffer (`\\g`, …) end the statement like a semicolon; the rows of a
    `COPY … FROM STDIN` (or `\\copy … from stdin`), up to their `\\.` line, are data.
    """
    items: list[Statement | MetaCommand] = []
    n = len(text)
    i = 0
    words: list[str] = []
    start: int | None = None
    paren = begin_depth = 0
    copy_from_stdin = False

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def finish() -> None:
        nonlocal words, start, paren, begin_depth, copy_from_stdin
        if start is not None:
            items.append(Statement(line_of(start), tuple(words[:6])))
        words, start, paren, begin_depth, copy_from_stdin = [], None, 0, 0, False

    def in_routine_header() -> bool:
        w = words
        return (
            len(w) >= 2
            and w[0] == "CREATE"
            and (
                w[1] in ("FUNCTION", "PROCEDURE")
                or (
                    w[1:3] == ["OR", "REPLACE"]
                    and len(w) >= 4
                    and w[3] in ("FUNCTION", "PROCEDURE")
                )
            )
        )

    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if text.startswith("/*", i):
            i = _skip_block_comment(text, i)
            continue
        if c == "\\":
            m = _META_NAME.match(text, i)
            name = m.group(1) if m else ""
            if name == ";":  # \; sends nothing yet, but the server runs each part on its own
                finish()
                i += 2
                continue
            if name == "\\":  # \\ separates a meta-command from SQL on the same line
                i += 2
                continue
            if name in _SENDING_META:
                finish()
            items.append(MetaCommand(line_of(i), name))
            end = _skip_meta_arguments(text, i + 1 + len(name))
            if name == "copy" and _FROM_STDIN.search(_outside_parens(text[i:end])):
                end = _skip_copy_data(text, end)
            i = end
            continue
        if start is None:
            start = i
        if c == ";":
            i += 1
            if paren == 0 and begin_depth == 0:
                copy_data = copy_from_stdin
                finish()
                if copy_data:  # the rows follow in the script, up to a line \.
                    i = _skip_copy_data(text, i)
        elif c == "(":
            paren += 1
            i += 1
        elif c == ")":
            paren = max(paren - 1, 0)
            i += 1
        elif c == "'":
            i = _skip_quoted(text, i, "'", backslash=False)
        elif c == '"':
            i = _skip_quoted(text, i, '"', backslash=False)
            words.append('"')
        elif c == "$" and (m := _DOLLAR_TAG.match(text, i)):
            end = text.find(m.group(0), m.end())
            i = n if end < 0 else end + len(m.group(0))
        elif m := _IDENT.match(text, i):
            word = m.group(0).upper()
            i = m.end()
            if word == "E" and i < n and text[i] == "'":
                i = _skip_quoted(text, i, "'", backslash=True)
                continue
            if word in ("U", "B", "X", "N") and i < n and text[i] in "'&":
                continue  # U&'…', B'…', X'…', N'…': the quote is read next round
            words.append(word)
            if word == "STDIN" and paren == 0 and words[0] == "COPY" and words[-2:-1] == ["FROM"]:
                copy_from_stdin = True
            if paren == 0 and in_routine_header():
                if word == "BEGIN" or (word == "CASE" and begin_depth):  # CASE … END
                    begin_depth += 1
                elif word == "END" and begin_depth:
                    begin_depth -= 1
        else:
            i += 1
    finish()
    return items


def _skip_copy_data(text: str, i: int) -> int:
    """Index after the `\\.` line that ends COPY data starting on the line after text[i]."""
    line_end = text.find("\n", i)
    if line_end < 0:
        return len(text)
    m = _COPY_END.search(text, line_end + 1)
    return len(text) if m is None else m.end()


def _outside_parens(text: str) -> str:
    """The text without its parenthesised parts (a query inside `\\copy (…) to …`)."""
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\([^()]*\)", " ", text)
    return text


def _skip_block_comment(text: str, i: int) -> int:
    depth, i = 0, i
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return i


def _skip_quoted(text: str, i: int, quote: str, *, backslash: bool) -> int:
    """Index after the quoted text starting at text[i]; a doubled quote stays inside."""
    i += 1
    while i < len(text):
        c = text[i]
        if backslash and c == "\\":
            i += 2
        elif c == quote:
            if text.startswith(quote, i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return i


def _skip_meta_arguments(text: str, i: int) -> int:
    """Index where a backslash command's arguments end: the end of the line or the next
    unquoted backslash (which starts another meta-command, or `\\\\` SQL)."""
    while i < len(text):
        c = text[i]
        if c == "\n":
            return i
        if c == "\\":
            return i
        if c == "'":
            i = _skip_quoted(text, i, "'", backslash=True)
        elif c in '"`':
            i = _skip_quoted(text, i, c, backslash=False)
        else:
            i += 1
    return i


def check_suite(path: Path) -> None:
    """Refuse a suite that could make its changes permanent (layer 1 of the module doc)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifyError(f"cannot read suite {display_path(path)}: {exc}") from exc
    problems: list[str] = []
    for item in scan_sql(text):
        if isinstance(item, MetaCommand):
            why = _REFUSED_META.get(item.name)
            if why:
                problems.append(f"{display_path(path)}:{item.line}: \\{item.name} {why}")
            continue
        for words, label in _COMMITTING.items():
            if item.words[: len(words)] == words:  # COMMIT also covers COMMIT PREPARED
                problems.append(
                    f"{display_path(path)}:{item.line}: top-level {label} would make the "
                    "suite's changes permanent"
                )
                break
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerifyError(
            f"refusing to run {problems[0]}{more}",
            hint="end the suite with ROLLBACK: cmdm verify rolls every suite back",
        )


#: First words of statements that write (or lock beyond ACCESS SHARE) a table that is not
#: temporary; refused in a read-only suite. CREATE is allowed for temporary objects and
#: extensions only (`_creates_only_temporary`).
_WRITING = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "ALTER", "DROP", "LOCK", "COPY",
        "CALL", "DO", "GRANT", "REVOKE", "COMMENT", "SECURITY", "REFRESH", "VACUUM",
        "ANALYZE", "CLUSTER", "REINDEX", "REASSIGN", "IMPORT",
    }
)  # fmt: skip
_TEMPORARY = frozenset({"TEMP", "TEMPORARY", "LOCAL", "EXTENSION"})


def _creates_only_temporary(words: tuple[str, ...]) -> bool:
    """CREATE [OR REPLACE] TEMP …, CREATE EXTENSION …, or CREATE … pg_temp.name."""
    rest = words[1:]
    if rest[:2] == ("OR", "REPLACE"):
        rest = rest[2:]
    return bool(rest) and (rest[0] in _TEMPORARY or rest[1:2] == ("PG_TEMP",))


def _writing_verb(words: tuple[str, ...]) -> str | None:
    """The statement's command when it writes (CREATE, INSERT, ...), else None."""
    if words[:1] == ("PREPARE",) and words[2:3] == ("AS",):
        words = words[3:]  # PREPARE name AS <statement>
    if not words:
        return None
    if words[0] == "CREATE":
        return None if _creates_only_temporary(words) else "CREATE"
    return words[0] if words[0] in _WRITING else None


def check_read_only(path: Path) -> None:
    """Refuse a suite marked read-only whose own top-level statements write.

    Only the suite's own statements are seen: a function it calls, or a statement it passes
    to lives_ok() as a string, may still write; the shipped suites are checked for that
    against pg_locks by the tests."""
    text = path.read_text(encoding="utf-8")
    problems = [
        f"{display_path(path)}:{item.line}: {verb} writes"
        for item in scan_sql(text)
        if isinstance(item, Statement) and (verb := _writing_verb(item.words))
    ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerifyError(
            f"refusing to run {problems[0]}{more}, in a suite marked `-- cmdm-verify: read-only`",
            hint="a read-only suite only reads (temporary objects aside): move what writes "
            "into a scratch suite, which `cmdm verify --scratch` runs on a database without facts",
        )


# -- prerequisites -----------------------------------------------------------------------


def find_psql() -> str:
    """psql from PATH, else Debian's PostgreSQL 15 client folder."""
    found = shutil.which("psql")
    if found:
        return found
    if DEBIAN_PSQL.is_file():
        return str(DEBIAN_PSQL)
    raise VerifyError(
        "psql is not installed (cmdm verify runs each pgTAP suite with it)",
        hint="install it with `sudo apt-get install postgresql-client-15`; pg_prove "
        "(libtap-parser-sourcehandler-pgtap-perl) is not needed",
    )


@dataclass(frozen=True)
class Target:
    """How psql reaches the database: a connection string without any password, and the
    environment that carries what must stay out of process arguments."""

    conninfo: str
    env: dict[str, str]
    pgtap_installed: bool


def psql_target(url: str, lock_timeout: str, *, scratch: bool = False) -> Target:
    """Check that the database answers, that pgtap is there or may be created and, for a
    scratch run, that the database holds no data; say how psql connects to it. Nothing is
    changed: the probe is rolled back."""
    libpq_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    conn = connect(libpq_url, application_name=APPLICATION_NAME)
    try:
        try:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
        except psycopg.Error as exc:
            raise VerifyError(
                f"lock_timeout {lock_timeout!r} is refused: {first_line(exc)}",
                hint="set it in cmdm.toml or $CMDM_LOCK_TIMEOUT as PostgreSQL writes it, "
                "e.g. 5s or 500ms",
            ) from exc
        conn.rollback()
        if scratch:
            refuse_if_holds_data(conn, url)
        installed = pgtap_is_ready(conn, url)
    finally:
        conn.close()
    params = {k: v for k, v in conninfo_to_dict(libpq_url).items() if v is not None}
    setting = lock_timeout.replace("\\", "\\\\").replace(" ", "\\ ")  # PGOPTIONS escapes
    options = f"{os.environ.get('PGOPTIONS', '')} -c lock_timeout={setting}".strip()
    env = {"PGAPPNAME": APPLICATION_NAME, "PGOPTIONS": options}
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    params.setdefault("connect_timeout", "10")
    return Target(make_conninfo(**params), env, installed)


def pgtap_is_ready(conn: psycopg.Connection, url: str) -> bool:
    """Whether pgtap is installed; when it is not, check that it may be created (in a
    transaction rolled back at once), else say why not."""
    installed, available, major, user = conn.execute(
        """SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = %(name)s),
                  EXISTS (SELECT FROM pg_catalog.pg_available_extensions
                           WHERE name = %(name)s),
                  current_setting('server_version_num')::int / 10000,
                  current_user""",
        {"name": EXTENSION},
    ).fetchone()
    if not installed and not available:
        raise VerifyError(
            f"the {EXTENSION} extension is not available on the server of {mask_url(url)}",
            hint=f"install Debian's postgresql-{major}-pgtap on the database server",
        )
    if not installed:
        try:
            conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(EXTENSION)))
        except psycopg.Error as exc:
            raise VerifyError(
                f"role {user} cannot create the {EXTENSION} extension in {mask_url(url)}: "
                f"{first_line(exc)}",
                hint="connect as a role allowed to CREATE EXTENSION pgtap (it is rolled "
                "back afterwards), or have pgtap installed beforehand",
            ) from exc
        finally:
            conn.rollback()
    return installed


def tables_with_rows(conn: psycopg.Connection) -> list[str]:
    """Which of DATA_TABLES, and of the tables carrying cmdm's post-ETL hook triggers, hold
    a row: one `EXISTS` each, which reads at most one row under ACCESS SHARE."""
    tables = conn.execute(
        """SELECT n.nspname, c.relname, pg_catalog.format('%%I.%%I', n.nspname, c.relname)
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid IN (SELECT pg_catalog.to_regclass(t) FROM unnest(%(tables)s::text[]) t
                            UNION
                            SELECT g.tgrelid FROM pg_catalog.pg_trigger g
                             WHERE starts_with(g.tgname, %(prefix)s))
            ORDER BY 1, 2""",
        {"tables": list(DATA_TABLES), "prefix": HOOK_TRIGGER_PREFIX},
    ).fetchall()
    found = []
    for schema, table, name in tables:
        query = sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(schema, table))
        if conn.execute(query).fetchone()[0]:
            found.append(name)
    return found


def refuse_if_holds_data(conn: psycopg.Connection, url: str) -> None:
    """Refuse a scratch run on a database with facts or outputs: the scratch suites write
    test rows into the ETL's tables and lock them until they roll back."""
    try:
        found = tables_with_rows(conn)
    except psycopg.Error as exc:
        raise VerifyError(
            f"cannot tell whether {mask_url(url)} holds data: {first_line(exc)}",
            hint="--scratch needs a role that reads the ETL's tables and cmdm's",
        ) from exc
    finally:
        conn.rollback()
    if found:
        more = f" and {len(found) - 2} more" if len(found) > 2 else ""
        raise VerifyError(
            f"refusing --scratch: {mask_url(url)} holds data ({', '.join(found[:2])}{more} "
            "have rows), and the scratch suites write and lock the ETL's tables while they run",
            hint="run --scratch on a database without facts (createdb, `cmdm migrate upgrade`); "
            "here, `cmdm verify` without --scratch runs the read-only suites",
        )


# -- running a suite and reading its TAP --------------------------------------------------


@dataclass
class Failure:
    """A failing test: its number, description and the diagnostics pgTAP printed after it."""

    number: int
    description: str
    diagnostics: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.number} - {self.description}" if self.description else str(self.number)


@dataclass
class SuiteResult:
    path: Path
    planned: int | None = None
    ran: int = 0
    passed: int = 0
    skipped: int = 0
    todo: int = 0
    failures: list[Failure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tap: str = ""
    messages: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems

    @property
    def failed(self) -> int:
        """Failing tests, counting planned tests that never ran as failed."""
        missing = max((self.planned or 0) - self.ran, 0)
        return len(self.failures) + missing

    def as_dict(self) -> dict[str, object]:
        return {
            "suite": display_path(self.path),
            "ok": self.ok,
            "planned": self.planned,
            "ran": self.ran,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "todo": self.todo,
            "failures": [
                {"number": f.number, "description": f.description, "diagnostics": f.diagnostics}
                for f in self.failures
            ],
            "problems": self.problems,
        }


_PLAN = re.compile(r"1\.\.(\d+)(?:\s*#\s*(.*))?\s*$")
_RESULT = re.compile(r"(not )?ok\b(?:\s+(\d+))?\s*(?:-\s*)?(.*)$")
_DIRECTIVE = re.compile(r"(?:^|\s)#\s*(TODO|SKIP\S*)\b", re.I)


def parse_tap(result: SuiteResult, tap: str) -> None:
    """Fill `result` from a TAP stream as pgTAP prints it (TAP version 12)."""
    result.tap = tap
    last_failure: Failure | None = None
    expected_number = 1
    for line in tap.splitlines():
        if not line.strip() or line[0].isspace():  # blank, or a subtest's indented lines
            continue
        if m := _PLAN.match(line):
            if result.planned is not None:
                result.problems.append("more than one plan")
            result.planned = int(m.group(1))
            continue
        if line.startswith("Bail out!"):
            result.problems.append(line)
            continue
        if line.startswith("#"):
            if last_failure is not None and not line.startswith("# Looks like"):
                last_failure.diagnostics.append(line[1:].strip())
            continue
        m = _RESULT.match(line)
        if not m:
            last_failure = None
            continue
        result.ran += 1
        number = int(m.group(2)) if m.group(2) else expected_number
        if number != expected_number:
            result.problems.append(f"test {number} came where test {expected_number} was due")
        expected_number = number + 1
        description = m.group(3).strip()
        directive = _DIRECTIVE.search(description)
        kind = directive.group(1).upper() if directive else ""
        last_failure = None
        if kind.startswith("SKIP"):
            result.skipped += 1
            result.passed += 1
        elif kind == "TODO":
            result.todo += 1  # a known failure, by the suite's own statement
        elif m.group(1):
            last_failure = Failure(number, description)
            result.failures.append(last_failure)
        else:
            result.passed += 1
    if result.planned is None:
        result.problems.append("no plan: the suite did not run to its end")
    elif result.planned != result.ran:
        result.problems.append(f"planned {result.planned} tests but ran {result.ran}")


def run_suite(psql: str, target: Target, path: Path) -> SuiteResult:
    """Run one suite inside one transaction that ends in ROLLBACK, and read its TAP."""
    argv = [
        psql,
        *PSQL_OPTIONS,
        f"--dbname={target.conninfo}",
        "--command=BEGIN",
        f"--command=CREATE EXTENSION IF NOT EXISTS {EXTENSION}",
        f"--file={path}",
        "--command=ROLLBACK",
    ]
    proc = subprocess.run(
        argv,
        env=os.environ | target.env | {"PGCLIENTENCODING": "UTF8"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    result = SuiteResult(path)
    result.messages = "\n".join(
        line for line in proc.stderr.splitlines() if not _EXPECTED_STDERR.search(line)
    )
    parse_tap(result, proc.stdout)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if re.search(r"\b(ERROR|FATAL):", ln)]
        reason = errors[0] if errors else (proc.stderr.strip().splitlines() or ["no message"])[0]
        result.problems.insert(0, f"psql stopped (exit code {proc.returncode}): {reason}")
    return result


@dataclass
class Report:
    database: str
    pgtap_installed: bool
    suites: list[SuiteResult]
    scratch: bool = False
    #: Scratch suites found but not run (without --scratch).
    skipped: list[Path] = field(default_factory=list)
    lock_timeout: str = ""

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.suites)

    def as_dict(self) -> dict[str, object]:
        return {
            "database": self.database,
            "ok": self.ok,
            "scratch": self.scratch,
            "tests": sum(s.ran for s in self.suites),
            "failed": sum(s.failed for s in self.suites),
            "pgtap_was_installed": self.pgtap_installed,
            "lock_timeout": self.lock_timeout,
            "rolled_back": True,
            "suites": [s.as_dict() for s in self.suites],
            "skipped_scratch_suites": [display_path(p) for p in self.skipped],
        }


def select_suites(paths: list[Path], scratch: bool) -> tuple[list[Path], list[Path]]:
    """(to run, skipped): without `scratch`, only the read-only suites run."""
    if scratch:
        return paths, []
    read_only = [p for p in paths if suite_kind(p) == READ_ONLY]
    skipped = [p for p in paths if p not in read_only]
    if not read_only:
        found = (
            f"{display_path(paths[0])} is a scratch suite"
            if len(paths) == 1
            else f"all {len(paths)} suites found are scratch suites"
        )
        raise VerifyError(
            f"no read-only suite to run: {found}",
            hint="run scratch suites with --scratch, on a database without facts; a suite "
            "that only reads says so on its first line: `-- cmdm-verify: read-only`",
        )
    return read_only, skipped


def verify(
    url: str,
    suites: str | Path | None = None,
    on_suite: Callable[[SuiteResult], None] | None = None,
    *,
    scratch: bool = False,
) -> Report:
    """Check the prerequisites, then run every suite (without `scratch`: every read-only
    suite), each rolled back on its own."""
    from cmdm_admin.migrate import lock_timeout

    paths, skipped = select_suites(find_suites(suites), scratch)
    for path in paths:
        check_suite(path)
        if suite_kind(path) == READ_ONLY:
            check_read_only(path)
    psql = find_psql()
    timeout = lock_timeout()
    target = psql_target(url, timeout, scratch=scratch)
    results = []
    for path in paths:
        result = run_suite(psql, target, path)
        results.append(result)
        if on_suite is not None:
            on_suite(result)
    return Report(mask_url(url), target.pgtap_installed, results, scratch, skipped, timeout)
