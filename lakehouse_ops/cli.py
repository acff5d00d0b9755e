"""The `lakehouse-ops` command.

Exit codes: 0 success, 1 a table or action failed, 2 usage or configuration error (nothing was started).
"""
import functools
import json
import os
import sys

import click

from lakehouse_ops import logs
from lakehouse_ops.errors import ConfigError, LakehouseOpsError
from lakehouse_ops.jobs import JOBS
from lakehouse_ops.maintenance import ACTIONS
from lakehouse_ops.runner.entry import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def _fail(message, code):
    click.echo("lakehouse-ops: %s" % message, err=True)
    sys.exit(code)


def handles_errors(func):
    """Map our errors to exit codes with a message instead of a traceback."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            _fail(str(exc), EXIT_USAGE)
        except LakehouseOpsError as exc:
            _fail(str(exc), EXIT_FAILED)
    return wrapper


def _config(ctx):
    from lakehouse_ops.config import load_config
    path = ctx.obj["config_path"]
    if not path:
        raise ConfigError("no config file: pass --config FILE (or set LAKEHOUSE_OPS_CONFIG); "
                          "conf/local.yaml is the local example")
    return load_config(path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="LAKEHOUSE_OPS_CONFIG", metavar="FILE",
              help="YAML config (local path or s3:// URI); also LAKEHOUSE_OPS_CONFIG.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log format; default: text in a terminal, JSON lines otherwise.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def cli(ctx, config_path, log_format, verbose):
    """Keep Apache Iceberg tables healthy: health, plans and maintenance driven by table policies."""
    import logging
    logs.configure(log_format, logging.DEBUG if verbose else logging.INFO)
    ctx.obj = {"config_path": config_path}


@cli.command()
@click.argument("tables", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per table, one per line.")
@click.pass_context
@handles_errors
def health(ctx, tables, as_json):
    """Health of TABLES (names or globs) from metadata alone; no Spark is started."""
    from lakehouse_ops.health import open_tables, read_health
    from lakehouse_ops.runner import resolve_tables
    from lakehouse_ops.runner.report import print_health

    config = _config(ctx)
    catalog_tables = open_tables(config.catalog)
    results = []
    for name in resolve_tables(config, catalog_tables, tables):
        results.append(read_health(catalog_tables.load(name), name, config.policy_for(name)).to_dict())
    if as_json:
        for item in results:
            click.echo(json.dumps(item, default=str))
    else:
        print_health(results)


def _emit(report, as_json, report_path, printer):
    """Write the report where asked, show it, and exit with its outcome."""
    from lakehouse_ops.runner.report import to_json, write_report
    if report_path:
        write_report(report, report_path)
    if as_json:
        click.echo(to_json(report))
    else:
        printer(report)
    sys.exit(EXIT_OK if report["ok"] else EXIT_FAILED)


def _maintain(ctx, tables, dry_run, as_json, report_path, only, written_within_hours=None):
    from lakehouse_ops.runner import MaintenanceRunner
    from lakehouse_ops.runner.report import print_actions

    config = _config(ctx)
    report = MaintenanceRunner(config, only=only or None, written_within_hours=written_within_hours).run(
        list(tables), dry_run=dry_run)
    _emit(report, as_json, report_path, print_actions)


_ACTION_NAMES = list(ACTIONS)


@cli.command()
@click.argument("tables", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON object.")
@click.option("--only", multiple=True, type=click.Choice(_ACTION_NAMES), help="Plan only these actions.")
@click.option("--all", "fleet", is_flag=True, help="Every managed table (or TABLES' globs), read concurrently, "
              "ranked by what maintenance would gain; no Spark.")
@click.option("--workers", default=8, show_default=True, help="Tables read at once with --all.")
@click.pass_context
@handles_errors
def plan(ctx, tables, as_json, only, fleet, workers):
    """What maintenance would do on TABLES (default: every table a rule matches), and why. Changes nothing."""
    if not fleet:
        _maintain(ctx, tables, True, as_json, None, only)
        return
    from lakehouse_ops.runner.fleet import plan_fleet
    report = plan_fleet(_config(ctx), patterns=list(tables) or None, workers=workers)
    _emit(report, as_json, None, _print_fleet)


def _print_fleet(report):
    from rich.console import Console
    from rich.table import Table

    from lakehouse_ops.units import human_bytes
    out = Table(title="%d tables, %d need maintenance (%.1f s, no Spark)" % (
        report["count"], report["needy"], report["duration_s"]))
    for column in ("rank", "table", "score", "actions", "to rewrite", "files (small)", "manifests", "snapshots"):
        out.add_column(column)
    for i, e in enumerate(report["tables"], 1):
        if not e["ok"]:
            out.add_row(str(i), e["table"], "-", "error: " + e["error"], "", "", "", "")
            continue
        h = e["health"]
        out.add_row(str(i) if e["needy"] else "-", e["table"], "%.1f" % e["score"], ", ".join(e["actions"]) or "-",
                    human_bytes(e["rewrite_bytes"]), "%d (%d)" % (h["data_files"], h["small_files"]),
                    str(h["manifests"]), str(h["snapshots"]))
    Console(width=max(100, int(os.environ.get("COLUMNS", "140")))).print(out)


@cli.command()
@click.argument("tables", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--report", "report_path", metavar="PATH", help="Also write the JSON report to a file or s3:// URI.")
@click.option("--only", multiple=True, type=click.Choice(_ACTION_NAMES), help="Run only these actions.")
@click.option("--written-within-hours", type=click.FloatRange(min=0, min_open=True), metavar="HOURS",
              help="Compact only partitions written within HOURS (hourly runs over recent partitions).")
@click.pass_context
@handles_errors
def maintain(ctx, tables, dry_run, as_json, report_path, only, written_within_hours):
    """Maintain TABLES (names or globs; default: every table a rule matches) as their policies say."""
    _maintain(ctx, tables, dry_run, as_json, report_path, only, written_within_hours)


@cli.command()
@click.option("--until-empty", is_flag=True, help="Drain the queue and exit (EMR steps, schedules).")
@click.option("--max-batches", type=click.IntRange(min=1), help="Stop after this many batches.")
@click.option("--max-runtime", type=click.FloatRange(min=1), metavar="SECONDS", help="Stop after this long.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as one JSON object.")
@click.option("--report", "report_path", metavar="PATH", help="Also write the JSON report to a file or s3:// URI.")
@click.pass_context
@handles_errors
def ingest(ctx, until_empty, max_batches, max_runtime, as_json, report_path):
    """Ingest S3 objects announced on SQS into the target Iceberg table, exactly once.

    Without --until-empty, --max-batches or --max-runtime it runs until stopped, backing off while the queue
    is empty.
    """
    from lakehouse_ops.ingest.job import IngestJob
    from lakehouse_ops.runner.report import print_ingest

    config = _config(ctx)
    report = IngestJob(config).run(until_empty=until_empty, max_batches=max_batches, max_runtime_s=max_runtime)
    _emit(report, as_json, report_path, print_ingest)


@cli.command("demo-ingest")
@click.option("--files", default=20, show_default=True, help="Landing files to write and announce.")
@click.option("--rows", default=500, show_default=True, help="Rows per file.")
@click.option("--json", "as_json", is_flag=True, help="Print the ingest report as JSON.")
@click.pass_context
@handles_errors
def demo_ingest(ctx, files, rows, as_json):
    """Write landing files, send their S3 events to a local SQS (moto's server), and ingest them."""
    from lakehouse_ops.ingest.demo import run_ingest_demo
    report = run_ingest_demo(_config(ctx), files=files, rows=rows, as_json=as_json)
    sys.exit(EXIT_OK if report["ok"] else EXIT_FAILED)


@cli.command()
@click.option("--job", "job_name", required=True, help="A job of the config's pseudonymization section.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--report", "report_path", metavar="PATH")
@click.pass_context
@handles_errors
def pseudonymize(ctx, job_name, as_json, report_path):
    """Replace a job's sensitive columns with pseudonyms and write its target table (one commit)."""
    from lakehouse_ops.pseudo import job
    _emit(job.run(_config(ctx), job_name), as_json, report_path, _print_summary)


@cli.command()
@click.option("--job", "job_name", required=True, help="A job of the config's pseudonymization section.")
@click.option("--target", required=True, help="Table to write the re-identified rows to.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--report", "report_path", metavar="PATH")
@click.pass_context
@handles_errors
def reidentify(ctx, job_name, target, as_json, report_path):
    """Turn a job's pseudonyms back into the original values, into TARGET (one commit)."""
    from lakehouse_ops.pseudo import job
    _emit(job.run(_config(ctx), job_name, "reidentify", target), as_json, report_path, _print_summary)


@cli.command()
@click.option("--subjects-file", metavar="PATH", help="Subject identifiers, one per line (file, s3:// or - for "
              "stdin). Preferred: command lines end up in shell history and EMR step arguments.")
@click.option("--subject", "subjects", multiple=True, metavar="ID", help="A subject identifier (repeatable).")
@click.option("--pseudonyms-file", metavar="PATH", help="Subjects given by their pseudonyms, one per line.")
@click.option("--pseudonym", "pseudonyms", multiple=True, metavar="TOKEN", help="A subject's pseudonym "
              "(repeatable).")
@click.option("--table", "tables", multiple=True, help="Only these of the erasure section's tables.")
@click.option("--request-id", help="The erasure request's reference (ticket), recorded in the receipt.")
@click.option("--dry-run", is_flag=True, help="Find where the subjects are; change nothing.")
@click.option("--receipt", "receipt_path", metavar="PATH", help="Write the receipt here (file or s3:// URI); "
              "default: a new file under erasure.receipts.")
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON.")
@click.pass_context
@handles_errors
def erase(ctx, subjects_file, subjects, pseudonyms_file, pseudonyms, tables, request_id, dry_run, receipt_path,
          as_json):
    """Right to be forgotten: delete subjects' rows from every table holding subject data, make the old bytes
    physically gone (rewrite, expire snapshots, remove orphans), verify, and write a receipt."""
    from lakehouse_ops.erasure.job import run_request
    receipt = run_request(_config(ctx), subjects, subjects_file, pseudonyms, pseudonyms_file, tables=tables or None,
                          dry_run=dry_run, request_id=request_id, receipt_path=receipt_path)
    _emit(receipt, as_json, None, _print_receipt)


def _print_receipt(receipt):
    from lakehouse_ops.runner.report import print_erasure
    print_erasure(receipt)


@cli.command()
@click.option("--out", "outdir", default="dist", show_default=True, help="Where the wheel and archive go.")
@click.option("--python", "interpreter", metavar="PATH", help="Interpreter for the archive's virtualenv (default: "
              "this one). Its version must be ship.python (3.9 for EMR 7.x).")
@click.option("--target-python", help="Python of the cluster image (default: ship.python, else 3.9).")
@click.option("--force", is_flag=True, help="Build even if the interpreter's Python differs from the target's.")
@click.option("--wheel", metavar="PATH", help="Use this wheel instead of building one from the checkout.")
@click.option("--no-archive", is_flag=True, help="Only the wheel (EMR on EC2 with a bootstrap action).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handles_errors
def package(ctx, outdir, interpreter, target_python, force, wheel, no_archive, as_json):
    """Build the wheel and a venv-pack archive for spark.archives (EMR Serverless, or YARN on EMR), and print
    the spark-submit settings that use it."""
    from lakehouse_ops.ship.package import package as build
    config = _config(ctx) if ctx.obj["config_path"] else None
    ship = config.ship if config is not None else None
    report = build(outdir, target_python or (ship.python if ship else "3.9"), interpreter=interpreter, force=force,
                   wheel=wheel, archive=not no_archive,
                   artifacts_prefix=_artifact_prefix(ship) if ship else None)
    _emit(report, as_json, None, _print_package)


def _artifact_prefix(ship):
    from lakehouse_ops.ship.requests import artifact_prefix
    return artifact_prefix(ship)


def _print_package(report):
    click.echo("wheel:   %s" % report["wheel"])
    if report.get("archive"):
        click.echo("archive: %s (%d bytes, Python %s)" % (report["archive"], report["archive_bytes"],
                                                          report["python"]))
        for target, conf in report["spark_submit"].items():
            click.echo("%s: %s" % (target, " ".join("--conf %s=%s" % kv for kv in sorted(conf.items()))))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--target", type=click.Choice(["emr-serverless", "emr"]), required=True)
@click.option("--job", type=click.Choice(list(JOBS)), required=True)
@click.option("--archive", metavar="PATH|S3URI", help="The packed environment (`lakehouse-ops package`); required "
              "for EMR Serverless; on EMR without it the cluster must have lakehouse-ops installed.")
@click.option("--name", help="Run name (default: lakehouse-ops-<job>-<UTC time>).")
@click.option("--needy", is_flag=True, help="maintain only: plan the fleet first and run the tables that need "
              "it, best first, within ship.budget (one run; --per-table for one run each).")
@click.option("--per-table", is_flag=True, help="With --needy: one run per table.")
@click.option("--wait", is_flag=True, help="Follow the run to its end; Ctrl-C cancels it.")
@click.option("--dry-run", is_flag=True, help="Print the exact API request(s) and uploads; send nothing.")
@click.option("--poll-seconds", default=10.0, show_default=True, type=click.FloatRange(min=0.01))
@click.option("--json", "as_json", is_flag=True)
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handles_errors
def submit(ctx, target, job, archive, name, needy, per_table, wait, dry_run, poll_seconds, as_json, job_args):
    """Start a job on EMR Serverless (StartJobRun) or EMR on EC2 (a step): uploads the entry point, the config and
    the archive to ship.artifacts, then sends the request. JOB_ARGS (after --) go to the job."""
    from lakehouse_ops.ship import submit as sub
    config = _config(ctx)
    batches = [list(job_args)]
    if needy:
        if job != "maintain":
            raise ConfigError("--needy plans maintenance: use it with --job maintain")
        from lakehouse_ops.runner.fleet import plan_fleet, select
        if config.ship is None:
            raise ConfigError("%s has no 'ship' section" % config.source)
        chosen = select(plan_fleet(config)["tables"], config.ship.budget)
        if not chosen:
            _emit({"ok": True, "runs": [], "message": "no table needs maintenance"}, as_json, None, _print_summary)
        batches = [[t] + list(job_args) for t in chosen] if per_table else [chosen + list(job_args)]
    runs = []
    for args in batches:
        request, files = sub.plan_submission(config, ctx.obj["config_path"], target, job, args, archive, name)
        if dry_run:
            runs.append({"request": request, "uploads": [{"from": f, "to": u} for f, u in files]})
            continue
        sub.upload(files)
        run = sub.start(target, request)
        runs.append(run.describe())
        click.echo("started %s run %s" % (target, run.id), err=True)
        if wait:
            def report(state, details, seconds):
                click.echo("%7.0f s  %s%s" % (seconds, state, "  (%s)" % details if details else ""), err=True)
            state, success = sub.wait(run, report, poll_seconds)
            runs[-1].update(state=state, ok=success)
            for key, value in run.where().items():
                click.echo("%s: %s" % (key, value), err=True)
    result = {"ok": all(r.get("ok", True) for r in runs), "dry_run": dry_run, "target": target, "job": job,
              "runs": runs}
    _emit(result, as_json or dry_run, None, _print_summary)


@cli.command()
@click.option("--archive", metavar="PATH|S3URI", help="The packed environment the scheduled runs use.")
@click.option("--list", "list_only", is_flag=True, help="List the schedules in ship.schedule_group.")
@click.option("--delete", "delete_names", multiple=True, metavar="NAME", help="Delete these schedules.")
@click.option("--prune", is_flag=True, help="Also delete schedules of the group the config no longer names.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing and upload nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handles_errors
def schedule(ctx, archive, list_only, delete_names, prune, dry_run, as_json):
    """Create or update the EventBridge Scheduler schedules of ship.schedules (idempotent)."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.ship import schedule as sched
    from lakehouse_ops.ship import submit as sub
    from lakehouse_ops.ship.requests import artifacts_for
    config = _config(ctx)
    if config.ship is None:
        raise ConfigError("%s has no 'ship' section" % config.source)
    scheduler = client("scheduler")
    group = config.ship.schedule_group
    if list_only:
        with sched.scheduler_errors("listing schedule group %s" % group):
            schedules = sched.listed(scheduler, group)
        _emit({"ok": True, "group": group, "schedules": schedules}, as_json, None, _print_json)
    if delete_names:
        with sched.scheduler_errors("deleting schedules in group %s" % group):
            results = sched.delete(scheduler, group, delete_names)
        _emit({"ok": True, "group": group, "results": results}, as_json, None, _print_json)
    if not archive:
        raise ConfigError("scheduled runs need the packed environment: pass --archive (`lakehouse-ops package`)")
    config_path = ctx.obj["config_path"]
    wanted_artifacts = {e.job: artifacts_for(config.ship, e.job, config_path, archive) for e in config.ship.schedules}
    any_artifacts = next(iter(wanted_artifacts.values()))
    wanted = sched.desired(config, any_artifacts.config, any_artifacts.archive)
    if not dry_run:
        files = []
        for job in wanted_artifacts:
            files += sub.uploads(wanted_artifacts[job], job, config_path, archive)
        sub.upload(dict(files).items())
    with sched.scheduler_errors("applying schedules to group %s" % group):
        results = sched.apply(scheduler, wanted, group, prune=prune, dry_run=dry_run)
    _emit({"ok": True, "group": group, "dry_run": dry_run, "results": results}, as_json, None, _print_json)


def _print_json(report):
    click.echo(json.dumps(report, indent=2, default=str))


def _print_summary(report):
    click.echo(" ".join("%s=%s" % (k, v) for k, v in report.items()))


@cli.command("pseudo-service")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--key-file", metavar="PATH", help="Development keys (JSON); created with one new key if absent.")
@click.option("--keys-secret", metavar="SECRET_ID", help="Secrets Manager secret holding the keys.")
@click.option("--api-key-env", default="LAKEHOUSE_OPS_PSEUDO_API_KEY", show_default=True,
              help="Environment variable holding the API key clients must send in x-api-key.")
@handles_errors
def pseudo_service(host, port, key_file, keys_secret, api_key_env):
    """Run the reference pseudonymization service over HTTP (the contract of the AWS sample)."""
    import time

    from lakehouse_ops.pseudo import keys
    from lakehouse_ops.pseudo.service import PseudonymService, load_or_create_key_file, serve

    if bool(key_file) == bool(keys_secret):
        raise ConfigError("pass exactly one of --key-file (development) or --keys-secret (Secrets Manager)")
    if key_file:
        keyring, created = load_or_create_key_file(key_file)
        if created:
            click.echo("created development key file %s (keep it out of version control)" % key_file, err=True)
    else:
        keyring = keys.keyring_from_secret(keys_secret)
    server, url = serve(PseudonymService(keyring, keys.api_key(env_var=api_key_env)), host, port)
    click.echo("pseudonymization service listening on %s (key version %d); Ctrl-C stops it"
               % (url, keyring.current), err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()


@cli.group()
def policy():
    """Inspect table policies."""


@policy.command("show")
@click.argument("table")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handles_errors
def policy_show(ctx, table, as_json):
    """The effective policy of TABLE and which rule set each value."""
    from lakehouse_ops.config.loader import _flatten

    config = _config(ctx)
    effective, sources = config.explain(table)
    flat = _flatten(effective.model_dump())
    if as_json:
        click.echo(json.dumps({"table": config.table_name(table), "policy": effective.model_dump(),
                               "sources": sources}, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table
    out = Table(title="policy of %s" % config.table_name(table))
    for column in ("key", "value", "set by"):
        out.add_column(column, overflow="fold")
    for key in sorted(flat):
        out.add_row(key, json.dumps(flat[key], default=str), sources.get(key, ""))
    Console(width=140).print(out)


@cli.command()
@click.option("--files", default=24, show_default=True, help="Landing files to write and announce.")
@click.option("--rows", default=300, show_default=True, help="Rows per landing file.")
@click.option("--objects-per-batch", default=3, show_default=True, help="Small ingest batches, as streaming makes.")
@click.option("--json", "as_json", is_flag=True, help="Print the pipeline report as JSON.")
@click.pass_context
@handles_errors
def demo(ctx, files, rows, objects_per_batch, as_json):
    """The whole pipeline locally: landing files and their events on a local SQS, ingest with pseudonymization
    through the local reference service, then maintenance of the table (health, plan, actions, health again)."""
    from lakehouse_ops.demo import run_demo
    report = run_demo(_config(ctx), files=files, rows=rows, objects_per_batch=objects_per_batch, as_json=as_json)
    sys.exit(EXIT_OK if report["ok"] else EXIT_FAILED)


def main(argv=None):
    cli.main(args=argv, prog_name="lakehouse-ops")


if __name__ == "__main__":
    main()
