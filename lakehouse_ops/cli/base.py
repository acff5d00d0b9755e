"""What every `lakehouse-ops` command shares: the group and its options, the config, the session, exit codes,
and how a report is shown.

Exit codes: 0 success, 1 a table or action failed, 2 usage or configuration error (nothing was started).
"""

import functools
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, NoReturn, Optional, TypeVar, cast

import click

from lakehouse_ops import logs
from lakehouse_ops.engine.diagnose import what_is_missing
from lakehouse_ops.errors import ConfigError, LakehouseOpsError
from lakehouse_ops.jobs import EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from lakehouse_ops.config import Config

SPARK_MODES = ("cluster", "local")
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> NoReturn:
    click.echo("lakehouse-ops: %s" % message, err=True)
    sys.exit(code)


def handles_errors(func: F) -> F:
    """Map our errors, and AWS's connection, credential and permission failures, to exit codes with a message
    instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        except LakehouseOpsError as exc:
            fail(str(exc), EXIT_FAILED)
        except Exception as exc:
            # AWS connection, credential and permission failures, from whichever library met them, and what
            # Spark on the AWS stack lacks (a jar, a filesystem, a Region): one line.
            described = what_is_missing(exc)
            if described is None:
                raise
            fail(described, EXIT_FAILED)

    return cast(F, wrapper)


def load(ctx: click.Context) -> "Config":
    """The config named by --config (or LAKEHOUSE_OPS_CONFIG)."""
    from lakehouse_ops.config import load_config

    path = ctx.obj["config_path"]
    if not path:
        raise ConfigError(
            "no config file: pass --config FILE (or set LAKEHOUSE_OPS_CONFIG); conf/local.yaml is the local example"
        )
    return load_config(path)


def session_factory(ctx: click.Context, config: "Config") -> Callable[[], Any]:
    """How a command builds its Spark session when it needs one: the config's mode, or --spark-mode."""
    from lakehouse_ops.engine import build_session

    mode = ctx.obj.get("spark_mode")
    return lambda: build_session(config, mode=mode)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="LAKEHOUSE_OPS_CONFIG",
    metavar="FILE",
    help="YAML config (local path or s3:// URI); also LAKEHOUSE_OPS_CONFIG.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log format; default: text in a terminal, JSON lines otherwise.",
)
@click.option(
    "--spark-mode",
    type=click.Choice(SPARK_MODES),
    default=None,
    help="cluster: the cluster's Spark and Iceberg; local: start local Spark (default: spark.mode).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Optional[str], log_format: Optional[str], spark_mode: Optional[str], verbose: bool
) -> None:
    """Keep Apache Iceberg tables healthy: health, plans and maintenance driven by table policies."""
    import logging

    logs.configure(log_format, logging.DEBUG if verbose else logging.INFO)
    ctx.obj = {"config_path": config_path, "spark_mode": spark_mode}


def emit(
    report: Dict[str, Any], as_json: bool, report_path: Optional[str], printer: Callable[[Dict[str, Any]], None]
) -> NoReturn:
    """Write the report where asked, show it, and exit with its outcome."""
    from lakehouse_ops.runner.report import to_json, write_report

    if report_path:
        write_report(report, report_path)
    if as_json:
        click.echo(to_json(report))
    else:
        printer(report)
    sys.exit(EXIT_OK if report["ok"] else EXIT_FAILED)


def exit_with(report: Mapping[str, Any]) -> NoReturn:
    sys.exit(EXIT_OK if report["ok"] else EXIT_FAILED)


def print_json(report: Mapping[str, Any]) -> None:
    click.echo(json.dumps(report, indent=2, default=str))


def print_summary(report: Mapping[str, Any]) -> None:
    click.echo(" ".join("%s=%s" % (k, v) for k, v in report.items()))
