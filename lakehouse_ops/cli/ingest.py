"""`lakehouse-ops ingest`: run the SQS ingest job; `ingest status` and `ingest reconcile`."""

from typing import Any, Dict, Optional

import click

from lakehouse_ops.cli.base import cli, emit, handles_errors, load, print_json, session_factory
from lakehouse_ops.cli.jobs import ingest_options
from lakehouse_ops.errors import ConfigError


@cli.group(invoke_without_command=True)
@ingest_options
@click.pass_context
@handles_errors
def ingest(
    ctx: click.Context,
    until_empty: bool,
    max_batches: Optional[int],
    max_runtime: Optional[float],
    as_json: bool,
    report_path: Optional[str],
) -> None:
    """Ingest S3 objects announced on SQS into the target Iceberg table, exactly once.

    Without --until-empty, --max-batches or --max-runtime it runs until stopped, backing off while the queue
    is empty. `ingest status` shows the backlog and the last commits instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    from lakehouse_ops.ingest.routing import ingest_worker
    from lakehouse_ops.runner.report import print_ingest

    config = load(ctx)
    job = ingest_worker(config, session_factory=session_factory(ctx, config))
    report = job.run(until_empty=until_empty, max_batches=max_batches, max_runtime_s=max_runtime)
    emit(report, as_json, report_path, print_ingest)


@ingest.command("status")
@click.option("--hours", default=24.0, show_default=True, help="How far back the ledger is read.")
@click.option("--last", default=10, show_default=True, help="How many of the last commits to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@click.pass_context
@handles_errors
def status(ctx: click.Context, hours: float, last: int, as_json: bool) -> None:
    """Backlog on the queue and its DLQ, and from the ledger the last commits with their lag (no Spark)."""
    from lakehouse_ops.ingest.status import ingest_status

    report = ingest_status(load(ctx), hours=hours, last=last)
    emit(report, as_json or bool(ctx.parent and ctx.parent.params.get("as_json")), None, _print_status)


@ingest.command("reconcile")
@click.option("--prefix", required=True, metavar="S3_URI", help="The landing prefix to compare with the ledger.")
@click.option("--since", default="48h", show_default=True, help="Objects modified since: 36h, 7d or an ISO time.")
@click.option(
    "--until",
    default="15m",
    show_default=True,
    help="...and before: a time ago or an ISO time (the default leaves notifications in flight their time).",
)
@click.option("--max-objects", default=10000, show_default=True, type=click.IntRange(min=1), help="Budget: objects.")
@click.option("--max-bytes", default="100GB", show_default=True, help="Budget: bytes (e.g. 500GB).")
@click.option("--inventory", metavar="MANIFEST", help="An S3 Inventory manifest.json to list from instead.")
@click.option("--dry-run", is_flag=True, help="List the objects that would be ingested; ingest nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--report", "report_path", metavar="PATH", help="Also write the JSON report to a file or s3:// URI.")
@click.pass_context
@handles_errors
def reconcile(
    ctx: click.Context,
    prefix: str,
    since: str,
    until: str,
    max_objects: int,
    max_bytes: str,
    inventory: Optional[str],
    dry_run: bool,
    as_json: bool,
    report_path: Optional[str],
) -> None:
    """Ingest, exactly once, objects under a prefix whose notifications never arrived (listing or S3 Inventory)."""
    import time

    from lakehouse_ops.ingest.reconcile import reconcile as run_reconcile
    from lakehouse_ops.ingest.routing import ingest_worker
    from lakehouse_ops.units import parse_moment, parse_size

    try:
        now = time.time()
        window = parse_moment(since, now) * 1000.0, parse_moment(until, now) * 1000.0
        budget = parse_size(max_bytes)
    except ValueError as exc:
        raise ConfigError("ingest reconcile: %s" % exc) from None
    config = load(ctx)
    job = ingest_worker(config, session_factory=session_factory(ctx, config))
    report = run_reconcile(job, prefix, window[0], window[1], max_objects, budget, dry_run, inventory)
    emit(report, as_json, report_path, print_json)


def _print_status(report: Dict[str, Any]) -> None:
    click.echo(
        "queue %s: %d visible, %d in flight%s"
        % (
            report["queue"],
            report["queue_visible"],
            report["queue_in_flight"],
            "; DLQ: %d" % report["dlq_visible"] if "dlq_visible" in report else "",
        )
    )
    _print_target(report["target"], report)
    for target, summary in report.get("routes", {}).items():
        _print_target(target, dict(summary, window_hours=report["window_hours"]))


def _print_target(target: str, report: Dict[str, Any]) -> None:
    lines = [
        "ingest into %s" % target,
        "  last %gh: %d batches committed, %d objects; last commit %s (%s s ago); max lag %s s"
        % (
            report["window_hours"],
            report["committed_batches"],
            report["committed_objects"],
            report["last_commit_at"] or "-",
            report["since_last_commit_s"] if report["since_last_commit_s"] is not None else "-",
            report["max_lag_s"] if report["max_lag_s"] is not None else "-",
        ),
    ]
    for commit in report["last_commits"]:
        lines.append(
            "  %s  %s  %d objects  %d bytes  snapshot %s  lag %s s"
            % (
                commit["committed_at"],
                commit["batch_id"],
                commit["objects"],
                commit["bytes"],
                commit["snapshot_id"],
                commit["lag_s"] if commit["lag_s"] is not None else "-",
            )
        )
    for batch in report["uncommitted_batches"]:
        lines.append("  not committed: %s (pending since %s)" % (batch["batch_id"], batch["pending_since"]))
    if report["superseded_count"]:
        lines.append(
            "  superseded (announced, but the key held other bytes when read): %d, e.g. %s"
            % (report["superseded_count"], ", ".join(report["superseded_objects"][:3]))
        )
    click.echo("\n".join(lines))
