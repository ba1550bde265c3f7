"""The `cmdm` command line: thin Typer commands over cmdm_admin.

Every failure a user can act on is one red `Error: …` line and exit code 1; a traceback
appears only with `--debug` (or CMDM_DEBUG=1).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from cmdm_admin import __version__
from cmdm_admin.errors import CmdmError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class CmdmGroup(TyperGroup):
    """Turns a CmdmError, or a database error nobody below caught, into one line and exit
    code 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CmdmError as exc:
            if _debug_enabled(ctx):
                raise
            _fail(exc)
        except Exception as exc:
            failure = _database_failure(ctx, exc)
            if failure is None or _debug_enabled(ctx):
                raise
            _fail(failure)


def _fail(exc: CmdmError) -> NoReturn:
    # One line: what is wrong, then how to fix it.
    hint = f"[dim]; {escape(exc.hint)}[/]" if exc.hint else ""
    err_console.print(f"[bold red]Error:[/] {escape(exc.message)}{hint}", soft_wrap=True)
    raise typer.Exit(1) from None


#: Commands that only read, which a login in cmdm_etl may run as well as the administrator
#: (docs/security.md, "What each role may run"). The others change the database.
READ_ONLY_COMMANDS = frozenset(
    {
        "cmdm status",
        "cmdm overview",
        "cmdm summary",
        "cmdm explain",
        "cmdm report",
        "cmdm hooks list",
        "cmdm hooks runs",
        "cmdm migrate current",
        "cmdm deploy-rules",  # --plan and --check only read; a deploy needs the administrator
        "cmdm validate-rules",
    }
)


def _database_failure(ctx: typer.Context, exc: Exception) -> CmdmError | None:
    """A database error that escaped the command, as one line naming the command; None for
    anything else (a bug: its traceback is worth seeing)."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    from cmdm_admin.db import first_line

    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(cause, psycopg.Error):
        return None
    # The root's own name varies (cmdm, python -m …, a test runner): name it cmdm.
    words = ["cmdm", *ctx.command_path.split()[1:], ctx.invoked_subcommand or ""]
    command = " ".join(words).strip()
    if getattr(cause, "sqlstate", None) == "42501":
        if command in READ_ONLY_COMMANDS:
            needs = (
                "it reads cmdm's tables: connect as a login in cmdm_etl or as the "
                "administrator that migrates (cmdm_reader reads only the output tables, "
                "with SQL)"
            )
        else:
            needs = (
                "run it as the administrator that migrates: it runs cmdm's routines or "
                "writes cmdm's tables"
            )
        return CmdmError(
            f"`{command}` was refused by the database: {first_line(cause)}",
            hint=f"{needs}; see docs/security.md, 'What each role may run'",
        )
    return CmdmError(
        f"`{command}` failed in the database: {first_line(cause)}"
        + (f" (SQLSTATE {cause.sqlstate})" if getattr(cause, "sqlstate", None) else ""),
        hint="`cmdm migrate current` shows whether the database is migrated; "
        "--debug shows the traceback",
    )


def _debug_enabled(ctx: typer.Context) -> bool:
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) or os.environ.get("CMDM_DEBUG") == "1"


app = typer.Typer(
    cls=CmdmGroup,
    help="cmdm: customer master data computed inside PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(
    cls=CmdmGroup, help="The embedded PostgreSQL cluster in .cmdm/.", no_args_is_help=True
)
migrate_app = typer.Typer(cls=CmdmGroup, help="Schema migrations (Alembic).", no_args_is_help=True)
demo_app = typer.Typer(
    cls=CmdmGroup,
    help="Synthetic annuity data, generated deterministically and loaded as an ETL would.",
    no_args_is_help=True,
)
hooks_app = typer.Typer(
    cls=CmdmGroup,
    help="The post-ETL hooks: domains (on/off), their steps, and the log of their runs.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(migrate_app, name="migrate")
app.add_typer(demo_app, name="demo")
app.add_typer(hooks_app, name="hooks")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL. Default: $CMDM_DATABASE_URL, else the embedded cluster.",
        show_default=False,
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"cmdm {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    project_dir: Annotated[
        Path | None,
        typer.Option(
            "--project-dir",
            help="The rules project (a folder with cmdm.toml). Default: $CMDM_PROJECT_DIR, "
            "else the working directory or the nearest folder above it with a cmdm.toml.",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = {"debug": debug}
    if project_dir is not None:
        from cmdm_admin.project import PROJECT_DIR_ENV

        # Every lookup below (and any child process, such as psql) sees the same project.
        os.environ[PROJECT_DIR_ENV] = str(project_dir.expanduser().resolve())


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="New or empty folder for the project.")],
) -> None:
    """Write a new rules project into DIRECTORY: cmdm.toml, the default rules/ and an empty
    migrations/versions/ for the revisions `cmdm deploy-rules` will freeze there.

    Example: cmdm init annuity-rules && cd annuity-rules && cmdm db start && cmdm deploy-rules
    """
    from cmdm_admin.project import create_project

    written = create_project(directory)
    root = directory.expanduser().resolve()
    for path in written:
        console.print(f"  [green]created[/] {path.relative_to(root)}")
    console.print(
        f"[green]new cmdm project in {root}[/]. Next: cd {directory} && cmdm db start "
        "&& cmdm migrate upgrade && cmdm deploy-rules"
    )


def emit_json(payload: object) -> None:
    console.print_json(json.dumps(payload, default=str, ensure_ascii=False))


# -- cmdm db ---------------------------------------------------------------------------


@db_app.command("start")
def db_start(
    port: Annotated[
        int | None,
        typer.Option(help="Loopback port. Default: the last one used if free, else a free one."),
    ] = None,
    fsync: Annotated[
        bool, typer.Option(help="--no-fsync for throwaway test clusters: faster, not durable.")
    ] = True,
    as_json: JsonOutput = False,
) -> None:
    """Start the embedded cluster (initialising it on first use). Safe to run twice.

    Example: cmdm db start --port 55432
    """
    from cmdm_admin.cluster import EmbeddedCluster

    cluster = EmbeddedCluster(fsync=fsync)
    before = cluster.status()
    status = cluster.start(port)
    if as_json:
        emit_json(status.as_dict() | {"url": cluster.url()})
    elif before.state == "running":
        console.print(f"already running on 127.0.0.1:{status.port} ({status.data_dir})")
    else:
        console.print(f"[green]started[/] on 127.0.0.1:{status.port} ({status.data_dir})")


@db_app.command("stop")
def db_stop(as_json: JsonOutput = False) -> None:
    """Stop the embedded cluster. Safe when it is not running.

    Example: cmdm db stop
    """
    from cmdm_admin.cluster import EmbeddedCluster

    cluster = EmbeddedCluster()
    before = cluster.status()
    status = cluster.stop()
    if as_json:
        emit_json(status.as_dict())
    elif before.state == "running":
        console.print(f"[green]stopped[/] ({status.data_dir})")
    elif before.state == "absent":
        console.print(f"no cluster in {status.data_dir}; nothing to stop")
    else:
        console.print(f"not running ({status.data_dir})")


@db_app.command("status")
def db_status(as_json: JsonOutput = False) -> None:
    """Say whether the embedded cluster exists and runs, and on which port.

    Example: cmdm db status --json
    """
    from cmdm_admin.cluster import EmbeddedCluster

    status = EmbeddedCluster().status()
    if as_json:
        emit_json(status.as_dict())
        return
    if status.state == "running":
        console.print(
            f"[green]running[/] on 127.0.0.1:{status.port} (pid {status.pid}, {status.data_dir})"
        )
    elif status.state == "stopped":
        console.print(f"stopped ({status.data_dir}); start it with `cmdm db start`")
    else:
        console.print(f"no cluster in {status.data_dir}; create one with `cmdm db start`")


DatabaseName = Annotated[str, typer.Option("--database", "-d", help="Database to name in the URL.")]


@db_app.command("url")
def db_url(database: DatabaseName = "cmdm") -> None:
    """Print the embedded cluster's URL (it names the password file, not the password).

    Example: psql "$(cmdm db url)"
    """
    from cmdm_admin.cluster import EmbeddedCluster

    # Plain print: no Rich wrapping, so $(cmdm db url) gets the URL intact.
    print(EmbeddedCluster().url(database))


@db_app.command("env")
def db_env(database: DatabaseName = "cmdm") -> None:
    """Print libpq environment variables for the embedded cluster, for psql and pg_prove.

    Example: eval "$(cmdm db env)" && psql -c 'SELECT 1'
    """
    import shlex

    from cmdm_admin.cluster import HOST, SUPERUSER, EmbeddedCluster

    cluster = EmbeddedCluster()
    port = cluster.status().port
    if port is None:
        cluster.url()  # raises the "no embedded cluster" error
    settings = {
        "PGHOST": HOST,
        "PGPORT": str(port),
        "PGUSER": SUPERUSER,
        "PGDATABASE": database,
        "PGPASSFILE": str(cluster.passfile),
    }
    for name, value in settings.items():
        print(f"export {name}={shlex.quote(value)}")


@db_app.command("destroy")
def db_destroy(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Stop the embedded cluster and delete its data.

    Example: cmdm db destroy --yes
    """
    from cmdm_admin.cluster import EmbeddedCluster

    cluster = EmbeddedCluster()
    if not yes:
        typer.confirm(f"Delete the cluster in {cluster.data_dir} and all its data?", abort=True)
    cluster.destroy()
    console.print(f"removed {cluster.data_dir}")


# -- cmdm migrate ----------------------------------------------------------------------


def _at(url: str) -> str:
    from cmdm_admin import migrate
    from cmdm_admin.db import mask_url

    heads = migrate.current_heads(url)
    return f"[green]at[/] {', '.join(heads) or 'base'} ({mask_url(url)})"


@migrate_app.command("upgrade")
def migrate_upgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision. Default: heads (cmdm's schema and the rules).")
    ] = "heads",
    database_url: DatabaseUrl = None,
) -> None:
    """Apply migrations up to REVISION, all in one transaction: cmdm's schema revisions
    (shipped with cmdm) and the project's rules revisions (migrations/versions/).

    Example: cmdm migrate upgrade --database-url postgresql://me@db.example/cmdm
    """
    from cmdm_admin import migrate
    from cmdm_admin.db import resolve_database_url

    url = resolve_database_url(database_url)
    migrate.upgrade(url, revision)
    console.print(_at(url))


# ignore_unknown_options: a relative target such as -1 is an argument, not an option.
@migrate_app.command("downgrade", context_settings={"ignore_unknown_options": True})
def migrate_downgrade(
    revision: Annotated[
        str,
        typer.Argument(help="Target revision, rules@-1 for the previous rules deploy, or `base`."),
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Revert migrations down to REVISION. `base` drops only objects cmdm created.

    Example: cmdm migrate downgrade rules@-1   (roll back the last rules deploy)
    """
    from cmdm_admin import migrate
    from cmdm_admin.db import resolve_database_url

    url = resolve_database_url(database_url)
    migrate.downgrade(url, revision)
    console.print(_at(url))


@migrate_app.command("current")
def migrate_current(database_url: DatabaseUrl = None, as_json: JsonOutput = False) -> None:
    """Print the database's revisions and the newest ones on disk (cmdm's schema, the
    project's rules).

    Example: cmdm migrate current --json
    """
    from cmdm_admin import migrate
    from cmdm_admin.db import resolve_database_url

    url = resolve_database_url(database_url)
    heads = migrate.head_revisions()
    pending = migrate.pending_revisions(url)
    if as_json:
        emit_json(
            {"current": list(migrate.current_heads(url)), "heads": list(heads), "pending": pending}
        )
    else:
        state = "up to date" if not pending else f"behind: {', '.join(pending)} not applied"
        current = ", ".join(migrate.current_heads(url)) or "base"
        console.print(f"{current} (heads: {', '.join(heads)}; {state})")


# -- cmdm validate-rules ---------------------------------------------------------------


RulesDir = Annotated[
    Path | None,
    typer.Option(
        "--rules-dir", help="Folder of the rule files. Default: the project's rules_dir (rules/)."
    ),
]


CatalogUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Also check tables, columns and types against this database (no default: "
        "without it only the files are checked).",
        show_default=False,
    ),
]


@app.command("validate-rules")
def validate_rules(rules_dir: RulesDir = None, database_url: CatalogUrl = None) -> None:
    """Check rules/*.yml and print every problem at once, each with file:line:column.

    With --database-url, also check the tables and columns the rules name against it.

    Example: cmdm validate-rules --rules-dir rules/ --database-url postgresql://me@db/cmdm
    """
    from cmdm_admin.loader import RuleIssue, RulesInvalid, format_issue, load_rules, summary
    from cmdm_admin.project import current_project

    def fail(issues: list[RuleIssue]) -> NoReturn:
        for issue in issues:
            err_console.print(f"[red]{escape(format_issue(issue))}[/]", soft_wrap=True)
        count = len(issues)
        err_console.print(f"[bold red]Error:[/] {count} problem{'s' * (count != 1)} in the rules")
        raise typer.Exit(1) from None

    try:
        ruleset = load_rules(rules_dir or current_project().rules_dir)
    except RulesInvalid as invalid:
        fail(invalid.errors)
    if database_url is None:
        console.print(f"[green]{escape(summary(ruleset))}[/]")
        return

    import psycopg

    from cmdm_admin.catalog import check_against_catalog
    from cmdm_admin.db import connect, first_line, mask_url
    from cmdm_admin.errors import DatabaseError

    conn = connect(database_url)
    try:
        issues = check_against_catalog(ruleset, conn)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot read the catalog of {mask_url(database_url)}: {first_line(exc)}"
        ) from exc
    finally:
        conn.close()
    if issues:
        fail(issues)
    console.print(
        f"[green]{escape(summary(ruleset))} — matches the catalog of "
        f"{escape(mask_url(database_url))}[/]"
    )


# -- cmdm render-rules / deploy-rules ------------------------------------------------------

SqlDir = Annotated[
    Path | None,
    typer.Option("--sql-dir", help="Folder of the templates. Default: sql/.", hidden=True),
]
MigrationsDir = Annotated[
    Path | None,
    typer.Option(
        "--migrations-dir",
        help="Folder holding the rules revisions' versions/. "
        "Default: $CMDM_MIGRATIONS_DIR, else the project's migrations/.",
        hidden=True,
    ),
]


def _rules_failed(issues: list) -> NoReturn:
    """Every rule problem on its own red line, then one `Error:` line; exit code 1."""
    from cmdm_admin.loader import format_issue

    for issue in issues:
        err_console.print(f"[red]{escape(format_issue(issue))}[/]", soft_wrap=True)
    count = len(issues)
    err_console.print(f"[bold red]Error:[/] {count} problem{'s' * (count != 1)} in the rules")
    raise typer.Exit(1) from None


@app.command("render-rules")
def render_rules_command(
    rules_dir: RulesDir = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write one .sql file per object (OUT/functions/<name>.sql, ...) instead of "
            "printing the SQL; stale .sql files of an earlier render are removed.",
        ),
    ] = None,
    sql_dir: SqlDir = None,
) -> None:
    """Validate rules/*.yml and print the SQL the templates render from them.

    The same rules and templates always give the same bytes; nothing touches a database.

    Example: cmdm render-rules --out build/sql
    """
    from cmdm_admin.deploy import display, write_rendered
    from cmdm_admin.loader import RulesInvalid, load_rules
    from cmdm_admin.project import current_project
    from cmdm_admin.render import render_rules

    try:
        ruleset = load_rules(rules_dir or current_project().rules_dir)
    except RulesInvalid as invalid:
        _rules_failed(invalid.errors)
    rendered = render_rules(ruleset, sql_dir)
    if out is None:
        typer.echo(rendered.sql, nl=False)  # plain bytes: no markup, no wrapping
        return
    written, removed = write_rendered(rendered, out)
    stale = f", removed {len(removed)} stale" if removed else ""
    console.print(
        f"[green]wrote[/] {len(written)} files to {escape(display(out))}{stale} "
        f"(rules sha256 {rendered.sha256[:12]})"
    )


@app.command("deploy-rules")
def deploy_rules(
    rules_dir: RulesDir = None,
    database_url: DatabaseUrl = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Print what a deploy would change; write nothing.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 1 when rules/sql differ from the deployed revision or a deployed "
            "function was changed in the database; write nothing.",
        ),
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="With --plan: the unified diff of changed SQL.")
    ] = False,
    as_json: JsonOutput = False,
    sql_dir: SqlDir = None,
    migrations_dir: MigrationsDir = None,
) -> None:
    """Validate, render, and when the SQL changed freeze it into a new Alembic revision
    (migrations/versions/NNNN_rules_<sha12>.py) and upgrade to it, in one transaction.

    Unchanged rules deploy nothing. Roll a deploy back with `cmdm migrate downgrade rules@-1`.

    Example: cmdm deploy-rules --plan --diff
    """
    from cmdm_admin import deploy
    from cmdm_admin.db import mask_url, resolve_database_url
    from cmdm_admin.loader import RulesInvalid

    if plan and check:
        raise CmdmError("--plan and --check exclude each other", hint="choose one")
    url = resolve_database_url(database_url)
    try:
        target = deploy.prepare(
            url, rules_dir=rules_dir, sql_dir=sql_dir, migrations_dir=migrations_dir
        )
    except RulesInvalid as invalid:
        _rules_failed(invalid.errors)
    sha = target.rendered.sha256[:12]

    if check:
        result = deploy.check(target)
        if as_json:
            emit_json(result.as_dict())
        elif result.in_sync:
            console.print(
                f"[green]in sync[/]: rules sha256 {sha} is deployed ({result.deployed_revision})"
                " and every deployed function is as deployed"
            )
        else:
            for problem in result.problems:
                err_console.print(f"[red]{escape(problem)}[/]", soft_wrap=True)
            count = len(result.problems)
            err_console.print(f"[bold red]Error:[/] drift: {count} problem{'s' * (count != 1)}")
        if not result.in_sync:
            raise typer.Exit(1)
        return

    if plan:
        the_plan = deploy.make_plan(target)
        if as_json:
            emit_json(the_plan.as_dict())
            return
        _print_plan(the_plan, diff)
        return

    result = deploy.deploy(target)
    if as_json:
        emit_json(result.as_dict())
    elif result.revision is None:
        console.print(
            f"nothing to deploy: rules sha256 {sha} is deployed ({result.plan.deployed_revision})"
        )
    else:
        _print_plan(result.plan, False, summary_only=True)
        console.print(
            f"[green]deployed[/] rules sha256 {sha}: wrote "
            f"{escape(deploy.display(result.path))} and upgraded {escape(mask_url(url))}"
        )
        if result.columns_added:
            _hint_rebuild_for_new_columns(url, result.columns_added)


def _hint_rebuild_for_new_columns(url: str, columns_added: dict[str, list[str]]) -> None:
    """A new status column holds its default (false) in the snapshot months already stored:
    say so, and how to fill it, rather than let past months read false silently."""
    from cmdm_admin.db import connect
    from cmdm_admin.periods import label

    with connect(url) as conn:
        first, last = conn.execute(
            "SELECT min(snapshot_month), max(snapshot_month)"
            " FROM customer.fct_customer_business_monthly_status"
        ).fetchone()
    if first is None:
        return
    names = sorted({c for columns in columns_added.values() for c in columns})
    console.print(
        f"[yellow]note[/]: {', '.join(names)} hold false in the snapshot months already stored "
        f"({label(first)} to {label(last)}); fill them with "
        f"`cmdm rebuild --from {label(first)} --to {label(last)}`"
    )


def _print_plan(plan: Any, diff: bool, summary_only: bool = False) -> None:
    """A deploy plan as text: functions, columns, and with `diff` the SQL that changed."""
    from cmdm_admin.deploy import display

    if plan.up_to_date:
        console.print(
            f"nothing to deploy: rules sha256 {plan.sha256[:12]} is deployed "
            f"({plan.deployed_revision})"
        )
        return
    if not summary_only:
        since = (
            f"{plan.deployed_sha256[:12]} ({plan.deployed_revision})"
            if plan.deployed_revision
            else "nothing deployed yet"
        )
        console.print(
            f"rules sha256 {plan.sha256[:12]} (deployed: {since}); a deploy would write "
            f"{escape(display(plan.revision_file))}"
        )
    width = max((len(o.identity) for o in plan.objects), default=0)
    for change in ("added", "changed", "removed"):
        for obj in plan.by_change(change):
            console.print(
                f"  {change:<9} {escape(obj.identity):<{width}}  [dim]{escape(obj.template)}[/]"
            )
    unchanged = plan.by_change("unchanged")
    if unchanged:
        console.print(f"  unchanged {len(unchanged)} (only their rules sha256 stamp changes)")
    for table, columns in plan.columns_to_add.items():
        console.print(f"  add column{'s' * (len(columns) > 1)} {table}: {', '.join(columns)}")
    for table, columns in plan.columns_not_in_rules.items():
        console.print(
            f"  [yellow]kept[/] {table}: {', '.join(columns)} (no longer defined by the rules; "
            "a deploy never drops a column)"
        )
    if diff:
        for obj in plan.by_change("changed"):
            typer.echo(obj.diff, nl=False)
    elif plan.by_change("changed") and not summary_only:
        console.print("[dim]  --diff shows the changed SQL[/]")


# -- cmdm demo / overview ---------------------------------------------------------------

Companies = Annotated[int, typer.Option(help="Number of companies.")]
Months = Annotated[int, typer.Option(help="Number of months to generate.")]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")]
Start = Annotated[str, typer.Option(help="First month (2024-01, 202401 or 2024-01-31).")]


def _demo_spec(companies: int, months: int, seed: int, start: str):
    from cmdm_admin.demo import DemoSpec
    from cmdm_admin.periods import parse_period

    return DemoSpec(companies=companies, months=months, seed=seed, start=parse_period(start))


@demo_app.command("load")
def demo_load(
    companies: Companies = 2000,
    months: Months = 24,
    seed: Seed = 7,
    start: Start = "2024-01",
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Load customers, then each month in order, one transaction per month (COPY).

    A month loaded before is replaced, so running it again is safe.

    Example: cmdm demo load --companies 500 --months 12 --seed 1
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.demo import load_demo
    from cmdm_admin.periods import label

    spec = _demo_spec(companies, months, seed, start)
    url = resolve_database_url(database_url)
    with (
        connect(url) as conn,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            disable=as_json,
        ) as progress,
    ):
        task = progress.add_task("loading months", total=spec.months)

        def advance(loaded) -> None:
            progress.update(task, advance=1, description=f"loaded {label(loaded.month)}")

        loaded = load_demo(conn, spec, advance)
    if as_json:
        emit_json([{"month": m.month, "facts": m.facts, "replaced": m.replaced} for m in loaded])
        return
    total = sum(m.facts for m in loaded)
    replaced = sum(1 for m in loaded if m.replaced)
    console.print(
        f"[green]loaded[/] {len(loaded)} months, {total:,} fact rows"
        + (f" ({replaced} months replaced an earlier load)" if replaced else "")
    )


@demo_app.command("generate")
def demo_generate(
    out: Annotated[Path, typer.Option(help="Folder to write the CSV files to.")],
    companies: Companies = 2000,
    months: Months = 24,
    seed: Seed = 7,
    start: Start = "2024-01",
) -> None:
    """Write the generated data as CSV files (UTF-8, header row) without a database.

    Example: cmdm demo generate --out /tmp/demo --companies 100 --months 6
    """
    from cmdm_admin.demo import write_csv

    spec = _demo_spec(companies, months, seed, start)
    files = write_csv(spec, out)
    console.print(f"[green]wrote[/] {len(files)} files to {out}")


@app.command("overview")
def overview(database_url: DatabaseUrl = None, as_json: JsonOutput = False) -> None:
    """What the database holds: customers, and per loaded month facts, keys, AUM, events.

    Example: cmdm overview --json
    """
    from dataclasses import asdict

    from rich.table import Table

    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.overview import input_overview
    from cmdm_admin.periods import label

    with connect(resolve_database_url(database_url)) as conn:
        data = input_overview(conn)
    if as_json:
        emit_json(asdict(data))
        return
    table = Table(title="Inputs per loaded month", title_justify="left")
    for column in ("month", "fact rows", "contract keys", "companies", "AUM (亿)", "中标", "流失"):
        table.add_column(column, justify="left" if column == "month" else "right")
    for m in data.months:
        table.add_row(
            label(m.month),
            f"{m.fact_rows:,}",
            f"{m.contract_keys:,}",
            f"{m.companies:,}",
            f"{m.aum / 100_000_000:,.2f}",
            str(m.awards),
            str(m.losses),
        )
    console.print(table)
    console.print(
        f"{data.customers:,} customers, {data.product_lines} product lines, "
        f"{len(data.months)} loaded months"
    )


# -- cmdm summary / report -------------------------------------------------------------

ReportMonth = Annotated[
    str | None,
    typer.Option(
        "--month",
        help="Month of the per-customer parts (2026-01, 202601 or 2026-01-31). "
        "Default: the newest snapshot month.",
        show_default=False,
    ),
]


def _yi(amount: Any) -> str:
    """CNY as 亿 (10^8), the unit the business reads AUM in."""
    return f"{amount / 100_000_000:,.2f}"


def _status_header(column: str) -> str:
    """is_winning_this_year -> "winning\\nthis\\nyear": one word per line keeps the table of
    every status narrow enough for an 80-column terminal."""
    return "\n".join(column.removeprefix("is_").split("_"))


@app.command("summary")
def summary_command(
    month: ReportMonth = None, database_url: DatabaseUrl = None, as_json: JsonOutput = False
) -> None:
    """What the outputs hold: contract versions by status, every status per snapshot month,
    the largest strategic customers, rejected facts by reason, and where to look next.

    Example: cmdm summary --month 2025-12
    """
    from rich import box
    from rich.table import Table

    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.periods import label, parse_period
    from cmdm_admin.summary import summarise

    chosen = parse_period(month) if month is not None else None
    with connect(resolve_database_url(database_url)) as conn:
        result = summarise(conn, chosen)
    if as_json:
        emit_json(result.as_dict())
        return
    shown = label(result.month)

    versions = Table(title="Contract versions by status", title_justify="left")
    for column in ("contract_status", "versions", "current", "current, strategic"):
        versions.add_column(column, justify="left" if column == "contract_status" else "right")
    for v in result.versions:
        versions.add_row(
            v.contract_status, f"{v.versions:,}", f"{v.current:,}", f"{v.current_strategic:,}"
        )
    console.print(versions)

    months = Table(
        title="Statuses per snapshot month (rows: customer × product line)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    months.add_column("month", no_wrap=True)
    months.add_column("rows", justify="right", no_wrap=True)
    months.add_column("AUM\n(亿)", justify="right", no_wrap=True)
    for status in result.statuses:
        months.add_column(_status_header(status), justify="right", no_wrap=True)
    for m in result.months:
        counts = [f"{m.counts[s]:,}" for s in result.statuses]
        months.add_row(label(m.month), f"{m.rows:,}", _yi(m.aum), *counts)
    # Never squeeze numbers into ellipses: a table wider than the terminal wraps, still legible.
    wide = Console(file=console.file, width=max(console.width, 120), highlight=False)
    wide.print(months)

    top = Table(
        title=f"Top {len(result.top_strategic)} strategic customers by AUM, {shown}",
        title_justify="left",
    )
    for column in ("company_id", "客户名称", "branch", "AUM (亿)", "product lines"):
        top.add_column(column, justify="right" if column[0] in "Ap" else "left")
    for c in result.top_strategic:
        top.add_row(
            c.company_id, c.company_name or "", c.branch or "", _yi(c.aum), str(c.product_lines)
        )
    console.print(top)

    if result.rejects:
        rejects = Table(title="Rejected fact rows by reason", title_justify="left")
        for column in ("reason", "rows", "months", "first", "last"):
            rejects.add_column(column, justify="right" if column in ("rows", "months") else "left")
        for r in result.rejects:
            rejects.add_row(
                r.reason, f"{r.rows:,}", str(r.months), label(r.first_month), label(r.last_month)
            )
        console.print(rejects)
    else:
        console.print("No rejected fact rows.")

    example = result.top_strategic[0].company_id if result.top_strategic else "<company_id>"
    pointers = [
        (f"cmdm explain --company {example} --month {shown}", "why each flag is what it is"),
        (f"cmdm report --month {shown} --out report.html", "this, as an HTML page with charts"),
        ("cmdm status", "deployed rules, hook runs, failures"),
        ("cmdm check", "are the stored tables what the facts give?"),
    ]
    width = max(len(command) for command, _ in pointers)
    console.print("\n[bold]Where to look next[/]")
    for command, what in pointers:
        console.print(f"  {escape(command.ljust(width))}   [dim]{what}[/]")


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
    month: ReportMonth = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write one self-contained HTML page (no network needed to view it): the month's
    status counts, their trend over the loaded months, AUM by product line, and the rules
    that define each status.

    Example: cmdm report --month 2025-12 --out report.html
    """
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.periods import label, parse_period
    from cmdm_admin.report import write_report

    chosen = parse_period(month) if month is not None else None
    with connect(resolve_database_url(database_url)) as conn:
        written = write_report(conn, out, chosen)
    console.print(
        f"[green]wrote[/] {escape(str(out))} ({written.size / 1024:,.0f} KiB) for "
        f"{label(written.month)}, {len(written.months)} snapshot months"
    )


# -- cmdm explain ----------------------------------------------------------------------


@app.command("explain")
def explain_command(
    company: Annotated[str, typer.Option("--company", help="company_id of the customer.")],
    month: Annotated[str, typer.Option("--month", help="Month (2026-01, 202601 or 2026-01-31).")],
    plan: Annotated[
        str | None,
        typer.Option("--plan", help="Only this plan's product lines and plan rows."),
    ] = None,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Why is this flag true? Each status of a customer in a month, the rule that decided
    it with ✔/✘ per condition, and the evidence rows (facts, awards, losses, versions).

    Example: cmdm explain --company C000001 --month 2025-03
    """
    import psycopg

    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.explain import explain
    from cmdm_admin.periods import parse_period

    first_day = parse_period(month)
    with connect(resolve_database_url(database_url)) as conn:
        # One snapshot of the database for the stored values and the evidence; no writes.
        conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
        result = explain(conn, company, first_day, plan)
    if as_json:
        emit_json(result.as_dict())
    else:
        _print_explanation(result)


def _mark(value: bool | None) -> str:
    return {True: "[green]✔[/]", False: "[red]✘[/]", None: "[dim]·[/]"}[value]


def _print_explanation(result: Any) -> None:
    """An Explanation (cmdm_admin.explain) as a header, a table of statuses per product
    line, and the evidence tables."""
    from rich.table import Table

    from cmdm_admin.periods import label

    rules = result.rules
    deployed = (
        f"rules deployed by {escape(rules.revision)} (sha256 {rules.sha256[:12]})"
        if rules.origin == "deployed"
        else "rules of the checkout's rules/ (nothing deployed in this database)"
    )
    name = f" {escape(result.company_name)}" if result.company_name else ""
    console.print(
        f"[bold]{escape(result.company_id)}{name}[/] — {label(result.month)} "
        f"(snapshot {result.snapshot_month}); {deployed}"
    )
    previous = result.previous_loaded_month
    console.print(
        f"previous loaded month: {previous or 'none'}; annual reference month: "
        f"{result.reference_month or 'none'}"
    )
    if not result.refreshed:
        console.print(
            f"[yellow]{label(result.month)} was never refreshed: no stored values; the values "
            "below are evaluated now[/]"
        )
    elif result.stale:
        names = ", ".join(sorted({s.status for s in result.stale}))
        console.print(
            f"[yellow]stored values differ from the evidence ({names}): the snapshot is stale; "
            f"refresh {label(result.month)}[/]"
        )

    for line in result.product_lines:
        stored = line.stored
        aum = (
            f"AUM {stored['aum_balance']:,}, {stored['plan_count']} "
            f"plan{'s' * (stored['plan_count'] != 1)}"
            if stored
            else "no stored row"
        )
        table = Table(
            title=f"{escape(line.product_line_code)} {escape(line.product_line_name or '')} "
            f"({aum})",
            title_justify="left",
            show_lines=True,
        )
        for column in ("status", "value", "rule", "conditions"):
            table.add_column(column)
        for s in line.statuses:
            key = f" [dim]{escape(s.key['plan_code'])}[/]" if "plan_code" in s.key else ""
            value = _mark(s.stored) if s.stored is not None else "[dim]no row[/]"
            if s.matches is False or (s.stored is None and s.value is not None):
                value += f" [yellow](evaluates {_mark(s.value)})[/]"
            conditions = []
            for node in s.nodes:
                detail = f" [dim]({escape(node.detail)})[/]" if node.detail else ""
                indent = "  " * node.depth
                conditions.append(f"{indent}{_mark(node.value)} {escape(node.label)}{detail}")
            if s.annual:
                conditions.append(
                    f"[dim]annual: decided at the reference month {result.reference_month} "
                    "(customer.annual_reference); the value is the stored decision[/]"
                )
            grain = f"\n[dim]{s.grain}{', annual' if s.annual else ''}[/]"
            table.add_row(
                f"{escape(s.status)}{key}{grain}",
                value,
                escape(s.description),
                "\n".join(conditions),
            )
        console.print(table)
        if line.plans:
            plans = Table(title="plan rows of the snapshot", title_justify="left")
            skip = ("snapshot_month", "company_id", "product_line_code", "product_line_name")
            columns = [c for c in line.plans[0] if c not in skip]
            for column in columns:
                plans.add_column(column)
            for row in line.plans:
                plans.add_row(*(_cell(row[c]) for c in columns))
            console.print(plans)

    titles = {
        "facts": f"fact rows of {label(result.month)}",
        "previous_month_keys": "keys with facts in the previous loaded month",
        "first_seen": "first month with facts, per key",
        "events": "events of the year (counted: reported on or before the month-end)",
        "versions": "contract versions covering the month",
        "reference_facts": "facts at the annual reference month",
        "reference_ranks": "ranks at the annual reference month (top_n)",
    }
    for key, title in titles.items():
        rows = result.evidence.get(key) or []
        if not rows:
            console.print(f"[dim]{title}: none[/]")
            continue
        table = Table(title=title, title_justify="left")
        for column in rows[0]:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(v) for v in row.values()))
        console.print(table)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return _mark(value)
    if value is None:
        return "[dim]—[/]"
    return escape(str(value))


# -- cmdm verify -----------------------------------------------------------------------

SuitesOption = Annotated[
    str | None,
    typer.Option(
        "--suites",
        help="Folder, .sql file or glob of pgTAP suites. Default: the suites shipped with cmdm "
        "(cmdm_admin/pgtap/*.sql).",
        show_default=False,
    ),
]


@app.command("verify")
def verify(
    database_url: DatabaseUrl = None,
    suites: SuitesOption = None,
    scratch: Annotated[
        bool,
        typer.Option(
            "--scratch",
            help="Also run the scratch suites, which write test rows and lock the ETL's "
            "tables while they run; refused on a database that holds facts or outputs.",
        ),
    ] = False,
    as_json: JsonOutput = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each suite's TAP stream.")
    ] = False,
) -> None:
    """Run the pgTAP suites against a database, each in one transaction that is rolled back.

    By default only the read-only suites (first line `-- cmdm-verify: read-only`): they take
    no lock stronger than ACCESS SHARE, so they are safe on a live database while the ETL
    loads. Every session waits for a lock at most lock_timeout (cmdm.toml, $CMDM_LOCK_TIMEOUT).

    Nothing persists, not even pgtap if it had to be created (that needs CREATE EXTENSION rights).

    Exit code 1 when a suite fails; a suite that could COMMIT, or a read-only one that writes,
    is refused before anything runs.

    Example: cmdm verify --database-url postgresql://admin@db.example/cmdm
    """
    from cmdm_admin.db import resolve_database_url
    from cmdm_admin.verify import SuiteResult, display_path
    from cmdm_admin.verify import verify as run_verify

    def counted(n: int, noun: str) -> str:
        return f"{n} {noun}{'s' * (n != 1)}"

    def show(result: SuiteResult) -> None:
        name = escape(display_path(result.path))
        if verbose:
            console.print(f"[bold]{name}[/]")
            console.print(result.tap.rstrip(), markup=False)
            if result.messages:
                err_console.print(result.messages, markup=False)
        if result.ok:
            console.print(f"[green]ok[/]      {name} ({counted(result.ran, 'test')})")
            return
        how = (
            f"{result.failed} of {result.planned or result.ran} failed"
            if result.failed
            else "did not finish cleanly"
        )
        console.print(f"[bold red]FAILED[/]  {name}: {how}")
        for failure in result.failures:
            console.print(f"          not ok {escape(failure.name)}")
        for problem in result.problems:
            console.print(f"          {escape(problem)}")

    url = resolve_database_url(database_url)
    report = run_verify(url, suites, on_suite=None if as_json else show, scratch=scratch)
    if as_json:
        emit_json(report.as_dict())
    else:
        tests = sum(s.ran for s in report.suites)
        ran = f"{counted(len(report.suites), 'suite')}, {counted(tests, 'test')}"
        failed = [s for s in report.suites if not s.ok]
        where = f"everything rolled back ({escape(report.database)})"
        if failed:
            count = sum(s.failed for s in failed)
            console.print(
                f"[bold red]{ran}: {count} failed in {counted(len(failed), 'suite')}[/]; {where}"
            )
        else:
            console.print(f"[green]{ran} passed[/]; {where}")
        if report.skipped:
            console.print(
                f"[dim]{counted(len(report.skipped), 'scratch suite')} not run: they write "
                "and lock the ETL's tables; --scratch runs them on a database without facts[/]"
            )
    if not report.ok:
        raise typer.Exit(1)


# -- post-ETL hooks: cmdm run-hooks / sync / snapshot / backfill / rebuild / hooks / status --

HOOK_DOMAIN = "annuity_performance"  # cmdm_admin.hooks.DEFAULT_DOMAIN (not imported: fast --help)
Domain = Annotated[
    str, typer.Option("--domain", help="Post-ETL hook domain (see `cmdm hooks list`).")
]
Period = Annotated[str, typer.Option("--period", help="Month (2026-01, 202601 or 2026-01-31).")]
FromPeriod = Annotated[str, typer.Option("--from", help="First month (2024-01, 202401, ...).")]
ToPeriod = Annotated[str, typer.Option("--to", help="Last month, included.")]


def _step_table(runs: list[Any], title: str | None = None) -> Any:
    """Step runs (hooks.StepRun or hooks.HookRun) as a table."""
    from rich import box
    from rich.table import Table

    from cmdm_admin.hooks import duration_text
    from cmdm_admin.periods import label

    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for column in ("period", "step", "outcome", "took", "counts"):
        table.add_column(
            column, justify="right" if column == "took" else "left", no_wrap=column != "counts"
        )
    colour = {"succeeded": "green", "failed": "red", "skipped": "yellow"}
    for r in runs:
        table.add_row(
            label(r.period),
            r.step,
            f"[{colour.get(r.outcome, 'white')}]{r.outcome}[/]",
            duration_text(r.duration),
            escape(r.summary),
        )
    return table


@app.command("run-hooks")
def run_hooks_command(
    period: Period,
    domain: Domain = HOOK_DOMAIN,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Run a domain's post-ETL steps for one month in one transaction, as the ETL's
    CALL customer.run_post_etl_hooks does: the contract sync, then the snapshot refresh
    of every month that depends on it. Each step is logged in cmdm.hook_run (kind cli).

    A failure rolls everything back, is logged as a failed hook run, and exits 1.

    Example: cmdm run-hooks --period 2026-01
    """
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.hooks import run_in_transaction
    from cmdm_admin.periods import label, parse_period

    month = parse_period(period)
    url = resolve_database_url(database_url)
    with connect(url) as conn:
        outcome = run_in_transaction(conn, url, domain, [month])
    if outcome.error is not None:
        raise outcome.error
    if as_json:
        emit_json(
            {"domain": domain, "period": label(month), "runs": [r.as_dict() for r in outcome.runs]}
        )
        return
    console.print(_step_table(outcome.runs))
    console.print(
        f"[green]committed[/] {len(outcome.runs)} step run{'s' * (len(outcome.runs) != 1)} "
        f"of {escape(domain)} for {label(month)}"
    )


@app.command("sync")
def sync_command(
    period: Period, database_url: DatabaseUrl = None, as_json: JsonOutput = False
) -> None:
    """Sync the contract history with one month's facts (customer.sync_contract_status)
    and commit; the snapshot refresh is left to you: it names the months to refresh.

    Example: cmdm sync --period 2026-01
    """
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.hooks import counts_text, sync_month
    from cmdm_admin.periods import label, parse_period

    month = parse_period(period)
    url = resolve_database_url(database_url)
    with connect(url) as conn:
        row = sync_month(conn, url, month)
    if as_json:
        emit_json(row)
        return
    rejects = {k.removeprefix("rejected_"): v for k, v in row.items() if k.startswith("rejected_")}
    console.print(
        f"[green]synced[/] {label(month)}: "
        + escape(counts_text("contract_sync", row, sum(rejects.values())))
        + "".join(f" ({k} {v})" for k, v in rejects.items() if v)
    )
    months = [label(m) for m in row["snapshot_months"]]
    if months:
        console.print(
            f"snapshot months to refresh: {', '.join(months)}; run `cmdm snapshot --period M` "
            "for each (`cmdm run-hooks` does both steps)"
        )
    else:
        console.print("no snapshot month depends on this change")


@app.command("snapshot")
def snapshot_command(
    period: Period, database_url: DatabaseUrl = None, as_json: JsonOutput = False
) -> None:
    """Refresh both monthly snapshot tables of one month (customer.refresh_monthly_snapshot)
    and commit.

    Example: cmdm snapshot --period 2026-01
    """
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.hooks import counts_text, refresh_month
    from cmdm_admin.periods import label, parse_period

    month = parse_period(period)
    url = resolve_database_url(database_url)
    with connect(url) as conn:
        row = refresh_month(conn, url, month)
    if as_json:
        emit_json(row)
        return
    console.print(
        f"[green]refreshed[/] {label(month)}: {escape(counts_text('snapshot_refresh', row))}"
    )


def _progress(as_json: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json,
    )


def _month_lines(ran: list[Any]) -> Any:
    """One row per month of a backfill or rebuild: its sync, and the months it refreshed."""
    from rich import box
    from rich.table import Table

    from cmdm_admin.periods import label

    table = Table(title="months", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("month", "contract sync", "snapshots refreshed"):
        table.add_column(column)
    for m in ran:
        sync = [r for r in m.runs if r.step == "contract_sync"]
        refreshed = [label(r.period) for r in m.runs if r.step == "snapshot_refresh"]
        table.add_row(
            label(m.month),
            escape("; ".join(r.summary for r in sync) or "—"),
            ", ".join(refreshed) or "—",
        )
    return table


@app.command("backfill")
def backfill_command(
    from_: Annotated[
        str | None,
        typer.Option("--from", help="First month (2024-01, 202401, ...).", show_default=False),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Last month, included.", show_default=False)
    ] = None,
    stale: Annotated[
        bool,
        typer.Option(
            "--stale",
            help="Instead of a range: exactly the months `cmdm status` lists as stale.",
        ),
    ] = False,
    domain: Domain = HOOK_DOMAIN,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Start afresh instead of resuming an unfinished run."),
    ] = False,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Run the post-ETL hooks for every month of a range, in ascending order, one
    transaction per month (a month's refresh of later months is left to those months).

    Resumable: an interrupted or failed backfill is resumed by the same command, which
    skips the months already done; --restart runs every month again.

    --stale runs exactly the stale months instead (facts or events changed while the hooks
    were off or the domain disabled; `cmdm status` lists them), ascending, one transaction
    each; each month is no longer stale once its transaction commits, so the same command
    goes on after a failure.

    Example: cmdm backfill --from 2024-01 --to 2025-12
    Example: cmdm backfill --stale
    """
    from cmdm_admin import backfill
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.errors import CmdmError
    from cmdm_admin.periods import label, parse_period

    if stale:
        if from_ is not None or to is not None or restart:
            raise CmdmError(
                "--stale runs the stale months: it takes no --from, --to or --restart",
                hint="`cmdm backfill --stale`, or a range: `cmdm backfill --from M --to N`",
            )
        _backfill_stale(domain, database_url, as_json)
        return
    if from_ is None or to is None:
        raise CmdmError(
            "backfill needs a range (--from and --to) or --stale",
            hint="e.g. `cmdm backfill --from 2024-01 --to 2025-12`, or `cmdm backfill --stale`",
        )
    first, last = parse_period(from_), parse_period(to)
    backfill.months_between(first, last)  # a backwards range is refused before connecting
    url = resolve_database_url(database_url)
    with connect(url) as conn:
        job = backfill.start(conn, domain, first, last, restart=restart)
        total, done = len(job.months), len(job.done_before)
        if not as_json:
            span = f"{label(job.months[0])}..{label(job.months[-1])}"
            if job.resumed:
                console.print(
                    f"resuming backfill #{job.backfill_id}: {done} of {total} months done"
                )
            else:
                console.print(f"backfill #{job.backfill_id} of {escape(domain)}: {span}")
        with _progress(as_json) as progress:
            task = progress.add_task("backfill", total=total, completed=done)

            def advance(month_run: Any) -> None:
                progress.update(task, advance=1, description=f"ran {label(month_run.month)}")

            backfill.run(conn, url, job, advance)
    if as_json:
        emit_json(job.as_dict())
        return
    if job.ran:
        console.print(_month_lines(job.ran))
    console.print(
        f"[green]finished[/] backfill #{job.backfill_id}: ran {len(job.ran)} of {total} months"
        + (f" ({done} done before)" if done else "")
    )


def _backfill_stale(domain: str, database_url: str | None, as_json: bool) -> None:
    """`cmdm backfill --stale`: the hooks of each stale month, with a progress bar."""
    from cmdm_admin import backfill
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.periods import label

    url = resolve_database_url(database_url)
    with connect(url) as conn:
        job = backfill.find_stale(conn, domain)
        if job.months and not as_json:
            listed = ", ".join(label(m.month) for m in job.months)
            console.print(f"stale months of {escape(domain)}: {listed}")
        with _progress(as_json) as progress:
            task = progress.add_task("backfill --stale", total=len(job.months))

            def advance(month_run: Any) -> None:
                progress.update(task, advance=1, description=f"ran {label(month_run.month)}")

            backfill.run_stale(conn, url, job, advance)
    if as_json:
        emit_json(job.as_dict())
        return
    if not job.months:
        console.print(f"nothing is stale in {escape(domain)}")
        return
    console.print(_month_lines(job.ran))
    console.print(f"[green]finished[/]: ran the hooks of {len(job.ran)} stale months")


@app.command("rebuild")
def rebuild_command(
    from_: FromPeriod,
    to: ToPeriod,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would change, then roll back: write nothing."),
    ] = False,
    sample: Annotated[int, typer.Option("--sample", help="Changed rows shown per table.")] = 5,
    domain: Domain = HOOK_DOMAIN,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Recompute a range of months under the deployed rules, in ONE transaction: the
    contract sync and snapshot refresh of every month, as backfill runs them; then what
    changed: contract versions added and removed, snapshot rows inserted, updated and
    deleted, and a sample of changed rows (before -> after).

    Annual statuses are decided per year, so the range is widened to whole years (through
    the last loaded month), and every year of it is decided again first: a rule change
    reaches every year the rebuild touches.

    It holds the hook lock from start to commit: a load's COMMIT (which runs its hooks)
    waits for it, then updates the rebuilt history; a product-line rename waits too. Loads
    are not blocked before their COMMIT, so none can deadlock with it. A load with the
    hooks off commits meanwhile and leaves its months stale (`cmdm status`, then
    `cmdm backfill --stale`).

    Example: cmdm rebuild --from 2024-01 --to 2026-01 --dry-run
    """
    from cmdm_admin.backfill import months_between
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.periods import label, parse_period
    from cmdm_admin.rebuild import rebuild, rebuild_range

    first, last = parse_period(from_), parse_period(to)
    months_between(first, last)  # a reversed range is refused before anything else
    url = resolve_database_url(database_url)
    with connect(url) as conn, _progress(as_json) as progress:
        months = len(months_between(*rebuild_range(conn, first, last)))
        conn.rollback()
        task = progress.add_task("rebuild", total=months)

        def advance(month_run: Any) -> None:
            progress.update(task, advance=1, description=f"ran {label(month_run.month)}")

        result = rebuild(
            conn, url, domain, first, last, dry_run=dry_run, sample=sample, on_month=advance
        )
    if as_json:
        emit_json(result.as_dict())
    else:
        _print_rebuild(result)


def _print_rebuild(result: Any) -> None:
    from cmdm_admin.periods import label

    span = f"{label(result.months[0])}..{label(result.months[-1])}"
    rules = (
        f"rules {escape(result.rules_revision)} (sha256 {result.rules_sha256[:12]})"
        if result.rules_revision
        else "the deployed rules"
    )
    runs = sum(len(m.runs) for m in result.ran)
    console.print(f"rebuild {span} under {rules}: {len(result.months)} months, {runs} step runs")
    asked = result.requested
    if asked and (asked[0], asked[-1]) != (result.months[0], result.months[-1]):
        console.print(
            f"  [dim]asked for {label(asked[0])}..{label(asked[-1])}, widened to whole years: "
            "annual statuses are decided per year[/]"
        )
    for year in result.years:
        changed = (
            f"statuses changed, {year['versions_reflagged']} versions re-flagged"
            if year["statuses_changed"]
            else "statuses unchanged"
        )
        console.print(
            f"  annual statuses of {year['year']}: decided again from "
            f"{label(year['reference_month'])} ({changed})"
        )
    for diff in result.diffs:
        counts = ", ".join(f"{v} {k}" for k, v in diff.counts.items())
        console.print(f"  {diff.table}: {counts}")
    for diff in result.diffs:
        if not diff.sample:
            continue
        n = len(diff.sample)
        console.print(f"[bold]{diff.table}[/], the first {n} change{'s' * (n != 1)}:")
        for change in diff.sample:
            key = "/".join(str(v) for v in change.key.values())
            if change.kind == "changed":
                what = "; ".join(
                    f"{c}: {change.before.get(c)} → {change.after[c]}"
                    for c in change.changed_columns
                )
            else:
                row = change.after if change.after is not None else change.before
                what = ", ".join(f"{c}={v}" for c, v in row.items() if c not in change.key)
            console.print(f"  {change.kind:<7} {escape(key)}: {escape(what)}")
    changed = f"{result.changes} changed row{'s' * (result.changes != 1)}"
    if result.dry_run:
        console.print(f"[yellow]dry run[/]: {changed}; rolled back, nothing was written")
    else:
        console.print(f"[green]committed[/]: {changed}")


@app.command("check")
def check_command(
    from_: Annotated[
        str | None,
        typer.Option("--from", help="First month (default: the first loaded month)."),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Last month, included (default: the last loaded).")
    ] = None,
    sample: Annotated[int, typer.Option("--sample", help="Differences shown per table.")] = 10,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """Are the stored tables still right? Recompute the annual decisions, the contract
    history and both snapshots of a range from the facts alone, into temporary tables, and
    compare them with the stored rows, both ways; print the differences per table and a
    sample. Exit code 1 on any difference.

    Writes nothing (one REPEATABLE READ transaction, rolled back) and takes no lock that
    blocks a load; costs about one recomputation of the range.

    Example: cmdm check --from 2025-01 --to 2025-12
    """
    from cmdm_admin.backfill import months_between
    from cmdm_admin.check import check, loaded_range
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.periods import month_end, parse_period

    url = resolve_database_url(database_url)
    with connect(url) as conn:
        span = loaded_range(conn)
        conn.rollback()
        if span is None and (from_ is None or to is None):
            raise CmdmError("nothing to check: no month is loaded", hint="load facts first")
        first = parse_period(from_) if from_ else span[0]
        last = parse_period(to) if to else span[1]
        months_between(first, last)  # a reversed range is refused before anything else
        (loaded,) = conn.execute(
            "SELECT count(*) FROM customer.loaded_months(%s, %s)", (first, month_end(last))
        ).fetchone()
        conn.rollback()
        with _progress(as_json) as progress:
            # one step for the decisions and the history, one per loaded month's snapshots
            task = progress.add_task("check", total=1 + loaded)

            def advance(step: str) -> None:
                progress.update(task, advance=1, description=f"checked {step}")

            result = check(conn, first, last, sample=sample, on_step=advance)
    if as_json:
        emit_json(result.as_dict())
    else:
        _print_check(result)
    if not result.ok:
        raise typer.Exit(1)


def _print_check(result: Any) -> None:
    from cmdm_admin.periods import label

    months = len(result.months)
    console.print(
        f"checked {label(result.first)}..{label(result.last)}: {months} loaded "
        f"month{'s' * (months != 1)}, annual decisions of {', '.join(map(str, result.years))}"
    )
    for table, counts in sorted(result.counts.items()):
        text = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        console.print(f"  [red]{escape(table)}[/]: {text}")
    for d in result.sample:
        key = "/".join(str(v) for v in d.key.values())
        if d.kind == "different":
            changed = [c for c in d.expected if d.stored.get(c) != d.expected[c]]
            what = "; ".join(
                f"{c}: stored {d.stored.get(c)}, expected {d.expected[c]}" for c in changed
            )
        else:
            row = d.expected if d.expected is not None else d.stored
            what = ", ".join(f"{c}={v}" for c, v in row.items() if c not in d.key)
        console.print(f"  {d.kind:<10} {escape(d.table)} {escape(key)}: {escape(what)}")
    if result.ok:
        console.print("[green]no differences[/]: the stored tables are what the facts give")
    else:
        console.print(
            f"[red]{result.differences} difference{'s' * (result.differences != 1)}[/]; "
            "`cmdm rebuild --from M --to N` recomputes the range"
        )


@hooks_app.command("list")
def hooks_list(database_url: DatabaseUrl = None, as_json: JsonOutput = False) -> None:
    """The hook domains, on or off, and their steps in order.

    Example: cmdm hooks list
    """
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.hooks import list_domains

    with connect(resolve_database_url(database_url)) as conn:
        domains = list_domains(conn)
    if as_json:
        emit_json([d.as_dict() for d in domains])
        return
    for d in domains:
        _print_domain(d)


def _print_domain(d: Any) -> None:
    state = "[green]on[/]" if d.enabled else "[red]off[/]"
    console.print(
        f"[bold]{escape(d.domain)}[/] {state} — {escape(d.description)} "
        f"[dim](changed {d.changed_at:%Y-%m-%d %H:%M} by {escape(d.changed_by)})[/]"
    )
    for s in d.steps:
        step_state = "" if s.enabled else " [red](step disabled)[/]"
        console.print(f"  {s.step_order}. {escape(s.step)}{step_state}: {escape(s.description)}")


def _set_domain(domain: str, enabled: bool, database_url: str | None, as_json: bool) -> None:
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.hooks import set_domain

    url = resolve_database_url(database_url)
    with connect(url) as conn:
        found = set_domain(conn, url, domain, enabled)
    if as_json:
        emit_json(found.as_dict())
    else:
        _print_domain(found)


DomainArgument = Annotated[str, typer.Argument(help="Domain (see `cmdm hooks list`).")]


@hooks_app.command("enable")
def hooks_enable(
    domain: DomainArgument, database_url: DatabaseUrl = None, as_json: JsonOutput = False
) -> None:
    """Turn a domain's post-ETL hooks on: loads run them again at commit.

    Months loaded while it was off are logged as skipped runs; backfill them.

    Example: cmdm hooks enable annuity_performance
    """
    _set_domain(domain, True, database_url, as_json)


@hooks_app.command("disable")
def hooks_disable(
    domain: DomainArgument, database_url: DatabaseUrl = None, as_json: JsonOutput = False
) -> None:
    """Turn a domain's post-ETL hooks off persistently: loads commit without them (each
    skipped month is logged), and run-hooks / backfill / rebuild refuse the domain.

    Example: cmdm hooks disable annuity_performance
    """
    _set_domain(domain, False, database_url, as_json)


@hooks_app.command("runs")
def hooks_runs(
    domain: Annotated[str | None, typer.Option("--domain", help="Only this domain.")] = None,
    period: Annotated[str | None, typer.Option("--period", help="Only this month.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed runs.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 20,
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
) -> None:
    """The log of hook runs (cmdm.hook_run), newest first.

    Example: cmdm hooks runs --failed --period 2026-01
    """
    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.hooks import list_runs
    from cmdm_admin.periods import parse_period

    month = parse_period(period) if period is not None else None
    with connect(resolve_database_url(database_url)) as conn:
        runs = list_runs(conn, domain=domain, period=month, failed=failed, limit=limit)
    if as_json:
        emit_json([r.as_dict() for r in runs])
        return
    if not runs:
        console.print("no hook runs match")
        return
    console.print(_runs_table(runs))


def _runs_table(
    runs: list[Any], title: str | None = None, resolved: list[bool] | None = None
) -> Any:
    from rich import box
    from rich.table import Table

    from cmdm_admin.hooks import duration_text
    from cmdm_admin.periods import label

    # Compact for 80 columns: the domain only when the rows have several.
    several = len({r.domain for r in runs}) > 1
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    columns = ["id", "started", "domain", "period", "step", "kind", "outcome", "took", "detail"]
    for column in columns:
        if column == "domain" and not several:
            continue
        table.add_column(
            column,
            justify="right" if column in ("id", "took") else "left",
            no_wrap=column != "detail",
            min_width=24 if column == "detail" else None,
        )
    colour = {"succeeded": "green", "failed": "red", "skipped": "yellow"}
    for i, r in enumerate(runs):
        outcome = f"[{colour.get(r.outcome, 'white')}]{r.outcome}[/]"
        if resolved is not None and resolved[i]:
            outcome += " [dim](resolved)[/]"
        kind = r.trigger_kind + (f" #{r.backfill_id}" if r.backfill_id else "")
        cells = [
            str(r.hook_run_id),
            f"{r.started_at:%m-%d %H:%M:%S}",
            *([escape(r.domain)] if several else []),
            label(r.period),
            escape(r.step),
            kind,
            outcome,
            duration_text(r.duration),
            escape(r.summary),
        ]
        table.add_row(*cells)
    return table


@app.command("status")
def status_command(
    database_url: DatabaseUrl = None,
    as_json: JsonOutput = False,
    fail_on_stale: Annotated[
        bool,
        typer.Option(
            "--fail-on-stale",
            help="Exit 3 when a month is stale (for a scheduler's alert).",
        ),
    ] = False,
) -> None:
    """What to check first: stale months (their facts or events changed while the hooks did
    not run: outputs behind; `cmdm backfill --stale` repairs them), the deployed rules and
    drift (as deploy-rules --check), hook domains on/off, the last hook runs and recent
    failures, rejected facts per month and reason, and unfinished backfills.

    Exits 0 (informational); with --fail-on-stale, 3 when a month is stale. JSON: `stale`
    (true/false) and `stale_months`.

    Example: cmdm status --json --fail-on-stale
    """

    from cmdm_admin.db import connect, resolve_database_url
    from cmdm_admin.status import status

    url = resolve_database_url(database_url)
    with connect(url) as conn:
        data = status(conn, url)
    if as_json:
        emit_json(data.as_dict())
    else:
        _print_status(data)
    if fail_on_stale and data.stale:
        raise typer.Exit(3)


def _print_status(data: Any) -> None:
    from rich import box
    from rich.table import Table

    from cmdm_admin.periods import label

    if data.stale_months is None:
        console.print("stale months: [yellow]not recorded[/] (`cmdm migrate upgrade`)")
    elif data.stale_months:
        table = Table(
            title="[red]stale months[/]: outputs behind their facts; repair with "
            "`cmdm backfill --stale`",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
        )
        for column in ("domain", "month", "changed", "why", "since"):
            table.add_column(column)
        for m in data.stale_months:
            table.add_row(
                escape(m["domain"]),
                label(m["month"]),
                ", ".join(m["kinds"]),
                ", ".join(m["reasons"]),
                f"{m['since']:%Y-%m-%d %H:%M}",
            )
        console.print(table)
    else:
        console.print("stale months: [green]none[/]")
    rules = data.rules
    if rules is None:
        console.print("rules: [yellow]none deployed[/] (`cmdm deploy-rules`)")
    else:
        console.print(
            f"rules: {escape(rules['revision'])} (sha256 {rules['sha256'][:12]}), deployed "
            f"{rules['deployed_at']:%Y-%m-%d %H:%M} by {escape(rules['deployed_by'])}"
        )
    drift = data.drift
    if not drift.checked:
        console.print(f"drift: [yellow]not checked[/]: {escape(drift.error or '')}")
    elif drift.in_sync:
        console.print("drift: [green]none[/] (rules/ and sql/ are what the database runs)")
    else:
        console.print(f"drift: [red]{len(drift.problems)} problem(s)[/]")
        for problem in drift.problems:
            console.print(f"  [red]{escape(problem)}[/]")
    for d in data.domains:
        state = "[green]on[/]" if d.enabled else "[red]off[/]"
        steps = ", ".join(s.step + ("" if s.enabled else " (off)") for s in d.steps)
        console.print(f"hooks: {escape(d.domain)} {state} ({escape(steps)})")
    if data.last_runs:
        console.print(_runs_table(data.last_runs, title="last hook runs"))
    else:
        console.print("last hook runs: none")
    if data.failures:
        console.print(
            _runs_table(
                [f.run for f in data.failures],
                title="recent failures",
                resolved=[f.resolved for f in data.failures],
            )
        )
    else:
        console.print("recent failures: none")
    if data.rejects:
        months = sorted({r["period"] for r in data.rejects}, reverse=True)
        shown = set(months[:12])
        table = Table(
            title="rejected facts per month",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
        )
        for column in ("month", "reason", "rows"):
            table.add_column(column, justify="right" if column == "rows" else "left")
        for r in data.rejects:
            if r["period"] in shown:
                table.add_row(label(r["period"]), r["reason"], f"{r['rows']:,}")
        console.print(table)
        if len(months) > len(shown):
            console.print(f"[dim]… {len(months) - len(shown)} earlier months (--json lists all)[/]")
    else:
        console.print("rejected facts: none")
    if not data.backfills:
        console.print("unfinished backfills: none")
    for b in data.backfills:
        first, last = label(b["from_period"]), label(b["to_period"])
        console.print(
            f"unfinished backfill #{b['backfill_id']} of {escape(b['domain'])} {first}..{last}: "
            f"{b['months_done']} of {b['months_total']} months done, started "
            f"{b['started_at']:%Y-%m-%d %H:%M} by {escape(b['started_by'])}; resume with "
            f"`cmdm backfill --from {first} --to {last}`"
        )


def main() -> None:
    app(prog_name="cmdm")


if __name__ == "__main__":
    main()
