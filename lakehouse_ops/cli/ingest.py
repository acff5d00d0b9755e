"""`lakehouse-ops ingest`: run the SQS ingest job, and its `status` (and `reconcile`) subcommands."""

from typing import Any, Dict, Optional

import click

from lakehouse_ops.cli.base import cli, emit, handles_errors, load, session_factory
from lakehouse_ops.cli.jobs import ingest_options


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
    from lakehouse_ops.ingest.job import IngestJob
    from lakehouse_ops.runner.report import print_ingest

    config = load(ctx)
    job = IngestJob(config, session_factory=session_factory(ctx, config))
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


def _print_status(report: Dict[str, Any]) -> None:
    lines = [
        "ingest into %s" % report["target"],
        "  queue: %d visible, %d in flight%s"
        % (
            report["queue_visible"],
            report["queue_in_flight"],
            "; DLQ: %d" % report["dlq_visible"] if "dlq_visible" in report else "",
        ),
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
    click.echo("\n".join(lines))
