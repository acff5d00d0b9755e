"""Commands on tables: health, plan, maintain, policy show."""

import json
from typing import Any, Callable, Optional, Tuple, TypeVar

import click

from lakehouse_ops.cli.base import cli, emit, handles_errors, load, print_json, session_factory
from lakehouse_ops.maintenance import ACTIONS

ACTION_NAMES = list(ACTIONS)
F = TypeVar("F", bound=Callable[..., Any])


def only_option(help_text: str) -> Callable[[F], F]:
    return click.option("--only", multiple=True, type=click.Choice(ACTION_NAMES), help=help_text)


def tables_argument() -> Callable[[F], F]:
    return click.argument("tables", nargs=-1)


def maintain_options(func: F) -> F:
    """The options of `maintain` (spark_jobs/maintain.py runs this command, so it takes the same)."""
    for option in reversed(
        [
            click.option("--dry-run", is_flag=True, help="Print the plan and change nothing."),
            click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object."),
            click.option(
                "--report", "report_path", metavar="PATH", help="Also write the JSON report to a file or s3:// URI."
            ),
            only_option("Run only these actions."),
            click.option(
                "--written-within-hours",
                type=click.FloatRange(min=0, min_open=True),
                metavar="HOURS",
                help="Compact only partitions written within HOURS (hourly runs over recent partitions).",
            ),
        ]
    ):
        func = option(func)
    return func


@cli.command()
@click.argument("tables", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per table, one per line.")
@click.pass_context
@handles_errors
def health(ctx: click.Context, tables: Tuple[str, ...], as_json: bool) -> None:
    """Health of TABLES (names or globs) from metadata alone; no Spark is started."""
    from lakehouse_ops.health import open_tables, table_health
    from lakehouse_ops.runner import resolve_tables
    from lakehouse_ops.runner.report import print_health

    config = load(ctx)
    catalog_tables = open_tables(config.catalog)
    results = [
        table_health(config, name, catalog_tables).to_dict() for name in resolve_tables(config, catalog_tables, tables)
    ]
    if as_json:
        for item in results:
            click.echo(json.dumps(item, default=str))
    else:
        print_health(results)


def _maintain(
    ctx: click.Context,
    tables: Tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    report_path: Optional[str],
    only: Tuple[str, ...],
    written_within_hours: Optional[float] = None,
) -> None:
    from lakehouse_ops.runner import MaintenanceRunner
    from lakehouse_ops.runner.report import print_actions

    config = load(ctx)
    runner = MaintenanceRunner(
        config,
        only=only or None,
        written_within_hours=written_within_hours,
        session_factory=session_factory(ctx, config),
    )
    emit(runner.run(list(tables), dry_run=dry_run), as_json, report_path, print_actions)


@cli.command()
@tables_argument()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON object.")
@only_option("Plan only these actions.")
@click.option(
    "--all",
    "fleet",
    is_flag=True,
    help="Every managed table (or TABLES' globs), read concurrently, ranked by what maintenance would gain; no Spark.",
)
@click.option("--workers", default=8, show_default=True, help="Tables read at once with --all.")
@click.pass_context
@handles_errors
def plan(
    ctx: click.Context, tables: Tuple[str, ...], as_json: bool, only: Tuple[str, ...], fleet: bool, workers: int
) -> None:
    """What maintenance would do on TABLES (default: every table a rule matches), and why. Changes nothing."""
    if not fleet:
        _maintain(ctx, tables, True, as_json, None, only)
        return
    from lakehouse_ops.runner.fleet import plan_fleet
    from lakehouse_ops.runner.report import print_fleet

    emit(plan_fleet(load(ctx), patterns=list(tables) or None, workers=workers), as_json, None, print_fleet)


@cli.command()
@tables_argument()
@maintain_options
@click.pass_context
@handles_errors
def maintain(
    ctx: click.Context,
    tables: Tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    report_path: Optional[str],
    only: Tuple[str, ...],
    written_within_hours: Optional[float],
) -> None:
    """Maintain TABLES (names or globs; default: every table a rule matches) as their policies say."""
    _maintain(ctx, tables, dry_run, as_json, report_path, only, written_within_hours)


@cli.group()
def policy() -> None:
    """Inspect table policies."""


@policy.command("show")
@click.argument("table")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handles_errors
def policy_show(ctx: click.Context, table: str, as_json: bool) -> None:
    """The effective policy of TABLE and which rule set each value."""
    from lakehouse_ops.runner.report import print_policy

    config = load(ctx)
    effective, sources = config.explain(table)
    if as_json:
        click.echo(
            json.dumps(
                {"table": config.table_name(table), "policy": effective.model_dump(), "sources": sources},
                indent=2,
                default=str,
            )
        )
        return
    print_policy(config.table_name(table), effective, sources)


@cli.group()
def orphans() -> None:
    """Orphan files moved to a table's trash (policy `orphans.trash`)."""


@orphans.command("restore")
@click.argument("table")
@click.option("--since", required=True, help="Restore what was moved since: 36h, 7d or an ISO time.")
@click.option("--dry-run", is_flag=True, help="List what would be restored; move nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.pass_context
@handles_errors
def orphans_restore(ctx: click.Context, table: str, since: str, dry_run: bool, as_json: bool) -> None:
    """Move the orphan files TABLE's trash received since --since back to where they were."""
    import time

    from lakehouse_ops.engine.tables import jvm_table
    from lakehouse_ops.errors import ConfigError
    from lakehouse_ops.maintenance.trash import restore
    from lakehouse_ops.units import parse_moment

    try:
        since_ms = parse_moment(since, time.time()) * 1000.0
    except ValueError as exc:
        raise ConfigError("orphans restore --since: %s" % exc) from None
    config = load(ctx)
    name = config.table_name(table)
    spark = session_factory(ctx, config)()
    jtable = jvm_table(spark, config.catalog.name, name)
    if jtable is None:
        raise ConfigError("orphans restore: table %s cannot be loaded from catalog %s" % (name, config.catalog.name))
    prefix = config.policy_for(name).orphans.trash.prefix
    report = dict(restore(spark, str(jtable.location()), prefix, since_ms, dry_run), table=name)
    emit(report, as_json, None, print_json)


@cli.command("report")
@tables_argument()
@click.option("--html", "html_path", required=True, metavar="PATH", help="Write the page here (a file or s3:// URI).")
@click.option(
    "--days", default=14.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="History shown."
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@click.pass_context
@handles_errors
def report(ctx: click.Context, tables: Tuple[str, ...], html_path: str, days: float, as_json: bool) -> None:
    """A self-contained HTML page of the fleet (TABLES' globs, default every managed table): tables ranked by
    need, health trends and the last runs from the run history, time per action. No Spark."""
    from lakehouse_ops.runner.fleet_page import write_page

    emit(write_page(load(ctx), html_path, list(tables) or None, days), as_json, None, print_json)
