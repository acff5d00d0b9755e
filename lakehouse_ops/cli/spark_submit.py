"""How the spark-submit entry points (lakehouse_ops/spark_jobs/) run: as the `lakehouse-ops` command of their
job, so both accept, reject and report exactly the same things.

    spark-submit maintain.py --config s3://bucket/lakehouse-ops.yaml [--mode cluster|local] ARGS...

runs `lakehouse-ops --config ... --spark-mode MODE maintain --json ARGS...`: the report is printed as JSON on
stdout; the exit code is the command's (0 ok, 1 failed, 2 usage or configuration error). `--mode` defaults to
cluster (the cluster's Spark and Iceberg).
"""

import argparse
from typing import Optional, Sequence

from lakehouse_ops.cli import cli
from lakehouse_ops.cli.base import SPARK_MODES
from lakehouse_ops.jobs import EXIT_FAILED, EXIT_OK


def run(command: str, argv: Optional[Sequence[str]], prog: str) -> int:
    """Run `command` of the CLI for a spark-submit entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog=prog, add_help=False)
    parser.add_argument("--config")
    parser.add_argument("--mode", choices=SPARK_MODES, default="cluster")
    known, rest = parser.parse_known_args(argv)
    if any(arg in ("-h", "--help") for arg in rest):
        print(
            "usage: %s --config FILE [--mode {%s}] [OPTIONS]\n\nThe options of `lakehouse-ops %s`:\n"
            % (prog, ",".join(SPARK_MODES), command)
        )
    args = ["--spark-mode", known.mode] + (["--config", known.config] if known.config else [])
    try:
        cli.main(args=args + [command, "--json"] + list(rest), prog_name=prog)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or EXIT_OK
        return EXIT_FAILED
    return EXIT_OK
