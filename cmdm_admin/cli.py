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
    """Turns a CmdmError raised anywhere below into one line and exit code 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CmdmError as exc:
            if _debug_enabled(ctx):
                raise
            # One line: what is wrong, then how to fix it.
            hint = f"[dim]; {escape(exc.hint)}[/]" if exc.hint else ""
            err_console.print(f"[bold red]Error:[/] {escape(exc.message)}{hint}", soft_wrap=True)
            raise typer.Exit(1) from None


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
app.add_typer(db_app, name="db")
app.add_typer(migrate_app, name="migrate")
app.add_typer(demo_app, name="demo")

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
) -> None:
    ctx.obj = {"debug": debug}


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


@migrate_app.command("upgrade")
def migrate_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    database_url: DatabaseUrl = None,
) -> None:
    """Apply migrations up to REVISION (default head), all in one transaction.

    Example: cmdm migrate upgrade --database-url postgresql://me@db.example/cmdm
    """
    from cmdm_admin import migrate
    from cmdm_admin.db import mask_url, resolve_database_url

    url = resolve_database_url(database_url)
    migrate.upgrade(url, revision)
    console.print(
        f"[green]at revision[/] {migrate.current_revision(url) or 'base'} ({mask_url(url)})"
    )


# ignore_unknown_options: a relative target such as -1 is an argument, not an option.
@migrate_app.command("downgrade", context_settings={"ignore_unknown_options": True})
def migrate_downgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision, -1 for the previous one, or `base`.")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Revert migrations down to REVISION. `base` drops only objects cmdm created.

    Example: cmdm migrate downgrade -1   (e.g. roll back the last rules deploy)
    """
    from cmdm_admin import migrate
    from cmdm_admin.db import mask_url, resolve_database_url

    url = resolve_database_url(database_url)
    migrate.downgrade(url, revision)
    console.print(
        f"[green]at revision[/] {migrate.current_revision(url) or 'base'} ({mask_url(url)})"
    )


@migrate_app.command("current")
def migrate_current(database_url: DatabaseUrl = None, as_json: JsonOutput = False) -> None:
    """Print the database's revision and the newest one in migrations/.

    Example: cmdm migrate current --json
    """
    from cmdm_admin import migrate
    from cmdm_admin.db import resolve_database_url

    url = resolve_database_url(database_url)
    current, head = migrate.current_revision(url), migrate.head_revision()
    if as_json:
        emit_json({"current": current, "head": head})
    else:
        state = "up to date" if current == head else "behind head"
        console.print(f"{current or 'base'} (head: {head}; {state})")


# -- cmdm validate-rules ---------------------------------------------------------------


RulesDir = Annotated[
    Path | None,
    typer.Option("--rules-dir", help="Folder of the rule files. Default: rules/ of the checkout."),
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
    from cmdm_admin.project import project_dir

    def fail(issues: list[RuleIssue]) -> NoReturn:
        for issue in issues:
            err_console.print(f"[red]{escape(format_issue(issue))}[/]", soft_wrap=True)
        count = len(issues)
        err_console.print(f"[bold red]Error:[/] {count} problem{'s' * (count != 1)} in the rules")
        raise typer.Exit(1) from None

    try:
        ruleset = load_rules(rules_dir or project_dir() / "rules")
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
        help="Alembic folder (env.py, versions/). Default: $CMDM_MIGRATIONS_DIR, else migrations/.",
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
    from cmdm_admin.project import project_dir
    from cmdm_admin.render import render_rules

    try:
        ruleset = load_rules(rules_dir or project_dir() / "rules")
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

    Unchanged rules deploy nothing. Roll a deploy back with `cmdm migrate downgrade -1`.

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
                    f"[dim]annual: decided at the reference month {result.reference_month}; "
                    "value of the covering versions[/]"
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
        help="Folder, .sql file or glob of pgTAP suites. Default: tests/pgtap/*.sql of the "
        "checkout.",
        show_default=False,
    ),
]


@app.command("verify")
def verify(
    database_url: DatabaseUrl = None,
    suites: SuitesOption = None,
    as_json: JsonOutput = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each suite's TAP stream.")
    ] = False,
) -> None:
    """Run the pgTAP suites against a database, each in one transaction that is rolled back.

    Nothing persists, not even pgtap if it had to be created (that needs CREATE EXTENSION rights).

    Exit code 1 when a suite fails; a suite that could COMMIT is refused before anything runs.

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
    report = run_verify(url, suites, on_suite=None if as_json else show)
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
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app(prog_name="cmdm")


if __name__ == "__main__":
    main()
