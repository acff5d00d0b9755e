"""The data jobs: ingest, pseudonymize, reidentify, erase; the local demos and the reference service."""

from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

import click

from lakehouse_ops.cli.base import cli, emit, exit_with, handles_errors, load, print_summary, session_factory
from lakehouse_ops.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def _apply(func: F, options: Sequence[Callable[[Any], Any]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def _report_options() -> List[Callable[[Any], Any]]:
    return [
        click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object."),
        click.option(
            "--report", "report_path", metavar="PATH", help="Also write the JSON report to a file or s3:// URI."
        ),
    ]


def ingest_options(func: F) -> F:
    """The options of `ingest` (spark_jobs/ingest_sqs.py runs this command, so it takes the same)."""
    return _apply(
        func,
        [
            click.option("--until-empty", is_flag=True, help="Drain the queue and exit (EMR steps, schedules)."),
            click.option("--max-batches", type=click.IntRange(min=1), help="Stop after this many batches."),
            click.option(
                "--max-runtime", type=click.FloatRange(min=1), metavar="SECONDS", help="Stop after this long."
            ),
        ]
        + _report_options(),
    )


def pseudonymize_options(func: F) -> F:
    """The options of `pseudonymize` (spark_jobs/pseudonymize.py runs this command, so it takes the same)."""
    return _apply(
        func,
        [
            click.option("--job", "job_name", required=True, help="A job of the config's pseudonymization section."),
            click.option(
                "--reidentify-to",
                metavar="TABLE",
                help="Re-identify the job's target into TABLE instead (the same as `reidentify --target TABLE`).",
            ),
        ]
        + _report_options(),
    )


def erase_options(func: F) -> F:
    """The options of `erase` (spark_jobs/erase.py runs this command, so it takes the same)."""
    return _apply(
        func,
        [
            click.option(
                "--subjects-file",
                metavar="PATH",
                help="Subject identifiers, one per line (file, s3:// or - "
                "for stdin). Preferred: command lines end up in shell history and EMR step arguments.",
            ),
            click.option(
                "--subject", "subjects", multiple=True, metavar="ID", help="A subject identifier (repeatable)."
            ),
            click.option("--pseudonyms-file", metavar="PATH", help="Subjects given by their pseudonyms, one per line."),
            click.option(
                "--pseudonym", "pseudonyms", multiple=True, metavar="TOKEN", help="A subject's pseudonym (repeatable)."
            ),
            click.option("--table", "tables", multiple=True, help="Only these of the erasure section's tables."),
            click.option("--request-id", help="The erasure request's reference (ticket), recorded in the receipt."),
            click.option("--dry-run", is_flag=True, help="Find where the subjects are; change nothing."),
            click.option(
                "--receipt",
                "receipt_path",
                metavar="PATH",
                help="Write the receipt here (file or s3:// URI); default: a new file under erasure.receipts.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON."),
        ],
    )


@cli.command("demo-ingest")
@click.option("--files", default=20, show_default=True, help="Landing files to write and announce.")
@click.option("--rows", default=500, show_default=True, help="Rows per file.")
@click.option("--json", "as_json", is_flag=True, help="Print the ingest report as JSON.")
@click.pass_context
@handles_errors
def demo_ingest(ctx: click.Context, files: int, rows: int, as_json: bool) -> None:
    """Write landing files, send their S3 events to a local SQS (moto's server), and ingest them."""
    from lakehouse_ops.demo import run_ingest_demo

    exit_with(run_ingest_demo(load(ctx), files=files, rows=rows, as_json=as_json))


def _convert(
    ctx: click.Context, job_name: str, direction: str, target: Optional[str], as_json: bool, report_path: Optional[str]
) -> None:
    from lakehouse_ops.pseudo import job

    config = load(ctx)
    report = job.run(config, job_name, direction, target, session_factory=session_factory(ctx, config))
    emit(report, as_json, report_path, print_summary)


@cli.command()
@pseudonymize_options
@click.pass_context
@handles_errors
def pseudonymize(
    ctx: click.Context, job_name: str, reidentify_to: Optional[str], as_json: bool, report_path: Optional[str]
) -> None:
    """Replace a job's sensitive columns with pseudonyms and write its target table (one commit)."""
    direction = "reidentify" if reidentify_to else "pseudonymize"
    _convert(ctx, job_name, direction, reidentify_to, as_json, report_path)


@cli.command()
@click.option("--job", "job_name", required=True, help="A job of the config's pseudonymization section.")
@click.option("--target", required=True, help="Table to write the re-identified rows to.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--report", "report_path", metavar="PATH")
@click.pass_context
@handles_errors
def reidentify(ctx: click.Context, job_name: str, target: str, as_json: bool, report_path: Optional[str]) -> None:
    """Turn a job's pseudonyms back into the original values, into TARGET (one commit)."""
    _convert(ctx, job_name, "reidentify", target, as_json, report_path)


@cli.command()
@erase_options
@click.pass_context
@handles_errors
def erase(
    ctx: click.Context,
    subjects_file: Optional[str],
    subjects: Tuple[str, ...],
    pseudonyms_file: Optional[str],
    pseudonyms: Tuple[str, ...],
    tables: Tuple[str, ...],
    request_id: Optional[str],
    dry_run: bool,
    receipt_path: Optional[str],
    as_json: bool,
) -> None:
    """Right to be forgotten: delete subjects' rows from every table holding subject data, make the old bytes
    physically gone (rewrite, expire snapshots, remove orphans), verify, and write a receipt."""
    from lakehouse_ops.erasure.job import run_request
    from lakehouse_ops.runner.report import print_erasure

    config = load(ctx)
    receipt = run_request(
        config,
        subjects,
        subjects_file,
        pseudonyms,
        pseudonyms_file,
        tables=tables or None,
        dry_run=dry_run,
        request_id=request_id,
        receipt_path=receipt_path,
        session_factory=session_factory(ctx, config),
    )
    emit(receipt, as_json, None, print_erasure)


@cli.command("pseudo-service")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--key-file", metavar="PATH", help="Development keys (JSON); created with one new key if absent.")
@click.option("--keys-secret", metavar="SECRET_ID", help="Secrets Manager secret holding the keys.")
@click.option(
    "--api-key-env",
    default="LAKEHOUSE_OPS_PSEUDO_API_KEY",
    show_default=True,
    help="Environment variable holding the API key clients must send in x-api-key to pseudonymize.",
)
@click.option(
    "--reidentify-api-key-env",
    default="LAKEHOUSE_OPS_PSEUDO_REIDENTIFY_API_KEY",
    show_default=True,
    help="Environment variable holding the key that may also re-identify (unset: nobody may re-identify).",
)
@click.option("--latency-ms", default=0.0, show_default=True, help="Time each call takes (API Gateway + Lambda: ~30).")
@click.option("--jitter-ms", default=0.0, show_default=True, help="Up to this much more per call, at random.")
@click.option(
    "--max-concurrency",
    default=0,
    show_default=True,
    help="Calls in flight past which a call gets 429 with Retry-After (a Lambda's reserved concurrency); 0: none.",
)
@click.option("--retry-after", default=1, show_default=True, help="Seconds the 429 answers' Retry-After asks for.")
@handles_errors
def pseudo_service(
    host: str,
    port: int,
    key_file: Optional[str],
    keys_secret: Optional[str],
    api_key_env: str,
    reidentify_api_key_env: str,
    latency_ms: float,
    jitter_ms: float,
    max_concurrency: int,
    retry_after: int,
) -> None:
    """Run the reference pseudonymization service over HTTP (the contract of the AWS sample), optionally
    answering like a loaded AWS deployment (latency, jitter, a concurrency limit with 429 past it)."""
    import time

    from lakehouse_ops.pseudo import keys
    from lakehouse_ops.pseudo.local import load_or_create_key_file
    from lakehouse_ops.pseudo.service import Profile, PseudonymService, serve

    if key_file and not keys_secret:
        keyring, created = load_or_create_key_file(key_file)
        if created:
            click.echo("created development key file %s (keep it out of version control)" % key_file, err=True)
    elif keys_secret and not key_file:
        keyring = keys.keyring_from_secret(keys_secret)
    else:
        raise ConfigError("pass exactly one of --key-file (development) or --keys-secret (Secrets Manager)")
    import os

    profile = Profile(latency_ms, jitter_ms, max_concurrency, retry_after)
    reidentify_key = os.environ.get(reidentify_api_key_env) or None
    service = PseudonymService(
        keyring, keys.api_key(env_var=api_key_env), profile=profile, reidentify_api_key=reidentify_key
    )
    server, url = serve(service, host, port)
    click.echo(
        "pseudonymization service listening on %s (key version %d; re-identification %s); Ctrl-C stops it"
        % (url, keyring.current, "allowed with $%s" % reidentify_api_key_env if reidentify_key else "off"),
        err=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()


@cli.command()
@click.option("--files", default=24, show_default=True, help="Landing files to write and announce.")
@click.option("--rows", default=300, show_default=True, help="Rows per landing file.")
@click.option("--objects-per-batch", default=3, show_default=True, help="Small ingest batches, as streaming makes.")
@click.option("--json", "as_json", is_flag=True, help="Print the pipeline report as JSON.")
@click.pass_context
@handles_errors
def demo(ctx: click.Context, files: int, rows: int, objects_per_batch: int, as_json: bool) -> None:
    """The whole pipeline locally: landing files and their events on a local SQS, ingest with pseudonymization
    through the local reference service, then maintenance of the table (health, plan, actions, health again)."""
    from lakehouse_ops.demo import run_demo

    exit_with(run_demo(load(ctx), files=files, rows=rows, objects_per_batch=objects_per_batch, as_json=as_json))
