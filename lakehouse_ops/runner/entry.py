"""The lifecycle of every spark_jobs entry point: config -> (lazy) session -> work -> report -> exit code."""
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_spark_job(prog, config_path, mode, work, report_path=None):
    """Run `work(config, session_factory) -> report` and turn the outcome into an exit code.

    The report is printed as JSON on stdout (and written to `report_path`, a file or s3:// URI, if given).
    """
    from lakehouse_ops import logs
    from lakehouse_ops.config import load_config
    from lakehouse_ops.engine import build_session
    from lakehouse_ops.errors import ConfigError, LakehouseOpsError
    from lakehouse_ops.runner.report import to_json, write_report

    logs.configure()
    try:
        config = load_config(config_path)
        report = work(config, lambda: build_session(config, mode=mode))
    except ConfigError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
        return EXIT_USAGE
    except LakehouseOpsError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
        return EXIT_FAILED
    if report_path:
        write_report(report, report_path)
    print(to_json(report))
    return EXIT_OK if report["ok"] else EXIT_FAILED


def add_common_arguments(parser):
    parser.add_argument("--config", required=True, help="YAML config, local path or s3:// URI")
    parser.add_argument("--report", help="write the JSON report to this file or s3:// URI")
    parser.add_argument("--mode", choices=("cluster", "local"), default="cluster",
                        help="cluster: use the cluster's Spark and Iceberg (default); local: start local Spark")
