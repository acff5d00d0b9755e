"""Shipping to EMR: package, submit, schedule."""

from typing import Any, Mapping, Optional, Tuple

import click

from lakehouse_ops.cli.base import cli, emit, handles_errors, load, print_json, print_summary
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.jobs import JOBS


@cli.command()
@click.option("--out", "outdir", default="dist", show_default=True, help="Where the wheel and archive go.")
@click.option(
    "--python",
    "interpreter",
    metavar="PATH",
    help="Interpreter for the archive's virtualenv (default: "
    "this one). Its version must be ship.python (3.9 for EMR 7.x).",
)
@click.option("--target-python", help="Python of the cluster image (default: ship.python, else 3.9).")
@click.option("--force", is_flag=True, help="Build even if the interpreter's Python differs from the target's.")
@click.option("--wheel", metavar="PATH", help="Use this wheel instead of building one from the checkout.")
@click.option(
    "--source", metavar="DIR", help="Build the wheel from this checkout (default: the one this is installed from)."
)
@click.option("--no-archive", is_flag=True, help="Only the wheel (EMR on EC2 with a bootstrap action).")
@click.option(
    "--upload",
    is_flag=True,
    help="Upload the wheel, the archive and a bootstrap action that installs the wheel to ship.artifacts.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handles_errors
def package(
    ctx: click.Context,
    outdir: str,
    interpreter: Optional[str],
    target_python: Optional[str],
    force: bool,
    wheel: Optional[str],
    source: Optional[str],
    no_archive: bool,
    upload: bool,
    as_json: bool,
) -> None:
    """Build the wheel and a venv-pack archive for spark.archives (EMR Serverless, or YARN on EMR), and print
    the spark-submit settings that use it."""
    from lakehouse_ops.ship.package import package as build
    from lakehouse_ops.ship.package import upload_built
    from lakehouse_ops.ship.requests import artifact_prefix

    ship = load(ctx).section("ship") if upload else (load(ctx).ship if ctx.obj["config_path"] else None)
    report = build(
        outdir,
        target_python or (ship.python if ship else "3.9"),
        interpreter=interpreter,
        force=force,
        wheel=wheel,
        source=source,
        archive=not no_archive,
        artifacts_prefix=artifact_prefix(ship) if ship else None,
    )
    if upload:
        report = upload_built(report, artifact_prefix(ship), outdir)
    emit(report, as_json, None, _print_package)


def _print_package(report: Mapping[str, Any]) -> None:
    click.echo("wheel:   %s" % report["wheel"])
    if report.get("archive"):
        click.echo("archive: %s (%d bytes, Python %s)" % (report["archive"], report["archive_bytes"], report["python"]))
        for target, conf in report["spark_submit"].items():
            click.echo("%s: %s" % (target, " ".join("--conf %s=%s" % kv for kv in sorted(conf.items()))))
    for what, uri in report.get("uploaded", {}).items():
        click.echo("uploaded %s: %s" % (what, uri))
    for target, command in report.get("commands", {}).items():
        click.echo("%s: %s" % (target, command))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--target", type=click.Choice(["emr-serverless", "emr"]), required=True)
@click.option("--job", type=click.Choice(list(JOBS)), required=True)
@click.option(
    "--archive",
    metavar="PATH|S3URI",
    help="The packed environment (`lakehouse-ops package`); required "
    "for EMR Serverless; on EMR without it the cluster must have lakehouse-ops installed.",
)
@click.option("--name", help="Run name (default: lakehouse-ops-<job>-<UTC time>).")
@click.option(
    "--needy",
    is_flag=True,
    help="maintain only: plan the fleet first and run the tables that need "
    "it, best first, within ship.budget (one run; --per-table for one run each).",
)
@click.option("--per-table", is_flag=True, help="With --needy: one run per table.")
@click.option("--wait", is_flag=True, help="Follow the run to its end; Ctrl-C cancels it.")
@click.option("--transient", is_flag=True, help="EMR on EC2: create a cluster for the run's steps that ends with them.")
@click.option("--dry-run", is_flag=True, help="Print the exact API request(s) and uploads; send nothing.")
@click.option("--poll-seconds", default=10.0, show_default=True, type=click.FloatRange(min=0.01))
@click.option("--json", "as_json", is_flag=True)
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handles_errors
def submit(
    ctx: click.Context,
    target: str,
    job: str,
    archive: Optional[str],
    name: Optional[str],
    needy: bool,
    per_table: bool,
    wait: bool,
    transient: bool,
    dry_run: bool,
    poll_seconds: float,
    as_json: bool,
    job_args: Tuple[str, ...],
) -> None:
    """Start a job on EMR Serverless (StartJobRun) or EMR on EC2 (a step): uploads the entry point, the config and
    the archive to ship.artifacts, then sends the request. JOB_ARGS (after --) go to the job."""
    from lakehouse_ops.ship.submit import submit_runs

    config = load(ctx)
    batches = [list(job_args)]
    if needy:
        if job != "maintain":
            raise ConfigError("--needy plans maintenance: use it with --job maintain")
        from lakehouse_ops.runner.fleet import needy_batches

        batches = needy_batches(config, job_args, per_table)
        if not batches:
            emit({"ok": True, "runs": [], "message": "no table needs maintenance"}, as_json, None, print_summary)
    say = lambda text: click.echo(text, err=True)  # noqa: E731
    if transient:
        from lakehouse_ops.ship.transient import submit_transient

        if target != "emr":
            raise ConfigError("--transient creates an EMR on EC2 cluster: use it with --target emr")
        result = submit_transient(
            config, ctx.obj["config_path"], job, batches, archive, name, wait, dry_run, poll_seconds, say
        )
    else:
        result = submit_runs(
            config, ctx.obj["config_path"], target, job, batches, archive, name, wait, dry_run, poll_seconds, say
        )
    emit(result, as_json or dry_run, None, _print_submit)


def _print_submit(report: Mapping[str, Any]) -> None:
    """One line per run: its id, where it runs, its end state when followed, where its logs are."""
    for run in report["runs"]:
        line = "%s run %s on %s" % (report["target"], run["id"], run["application_or_cluster"])
        if "state" in run:
            line += ": %s" % run["state"]
        click.echo(line)
        for key in ("logs", "spark_ui", "cloudwatch_log_group"):
            if run.get(key):
                click.echo("  %s: %s" % (key, run[key]))
    if not report["runs"]:
        click.echo(report.get("message", "nothing submitted"))


@cli.command()
@click.option("--archive", metavar="PATH|S3URI", help="The packed environment the scheduled runs use.")
@click.option("--list", "list_only", is_flag=True, help="List the schedules in ship.schedule_group.")
@click.option("--delete", "delete_names", multiple=True, metavar="NAME", help="Delete these schedules.")
@click.option("--prune", is_flag=True, help="Also delete schedules of the group the config no longer names.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing and upload nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handles_errors
def schedule(
    ctx: click.Context,
    archive: Optional[str],
    list_only: bool,
    delete_names: Tuple[str, ...],
    prune: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Create or update the EventBridge Scheduler schedules of ship.schedules (idempotent)."""
    from lakehouse_ops.ship.schedule import manage

    report = manage(load(ctx), ctx.obj["config_path"], archive, list_only, delete_names, prune, dry_run)
    emit(report, as_json, None, print_json)


@cli.command("airflow-tasks", context_settings={"ignore_unknown_options": True})
@click.option("--target", type=click.Choice(["emr-serverless", "emr"]), required=True)
@click.option("--out", required=True, metavar="FILE", help="The tasks file the DAG loads (JSON); updated in place.")
@click.option("--archive", metavar="PATH|S3URI", help="The packed environment the runs use (EMR Serverless).")
@click.option("--task", "task_name", metavar="NAME", help="One task (with --job and JOB_ARGS), added to --out.")
@click.option("--job", type=click.Choice(list(JOBS)), help="The task's job (with --task).")
@click.option("--dry-run", is_flag=True, help="Print the file and the uploads; write and upload nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handles_errors
def airflow_tasks(
    ctx: click.Context,
    target: str,
    out: str,
    archive: Optional[str],
    task_name: Optional[str],
    job: Optional[str],
    dry_run: bool,
    as_json: bool,
    job_args: Tuple[str, ...],
) -> None:
    """Write the operator arguments of Airflow tasks (Amazon MWAA) as JSON for a DAG that needs no lakehouse-ops
    install: one task per ship.schedules entry, or the one named by --task/--job (JOB_ARGS after --)."""
    from lakehouse_ops.ship.airflow import write_tasks

    if bool(task_name) != bool(job):
        raise ConfigError("--task and --job go together (one task), or neither (the config's ship.schedules)")
    single = (task_name, job, list(job_args)) if task_name and job else None
    report = write_tasks(load(ctx), ctx.obj["config_path"], target, out, archive, single, dry_run)
    emit(report, as_json or dry_run, None, print_json)
