"""spark-submit entry point for table maintenance (EMR step or EMR Serverless entryPoint).

    spark-submit spark_jobs/maintain.py --config s3://bucket/lakehouse-ops.yaml [TABLE_OR_GLOB ...]
        [--dry-run] [--report s3://bucket/reports/run.json] [--only compaction ...] [--mode cluster|local]

Exit code: 0 success, 1 a table or action failed, 2 configuration error.
"""
import argparse
import sys


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="maintain.py", description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", help="table names or globs; default: every table a rule matches")
    parser.add_argument("--config", required=True, help="YAML config, local path or s3:// URI")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    parser.add_argument("--report", help="write the JSON report to this file or s3:// URI")
    parser.add_argument("--only", action="append", help="run only this action (repeatable)")
    parser.add_argument("--mode", choices=("cluster", "local"), default="cluster",
                        help="cluster: use the cluster's Spark and Iceberg (default); local: start local Spark")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from lakehouse_ops import logs
    from lakehouse_ops.config import load_config
    from lakehouse_ops.engine import build_session
    from lakehouse_ops.errors import ConfigError, LakehouseOpsError
    from lakehouse_ops.runner import MaintenanceRunner
    from lakehouse_ops.runner.report import to_json, write_report

    logs.configure()
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print("maintain.py: %s" % exc, file=sys.stderr)
        return 2
    try:
        runner = MaintenanceRunner(config, only=args.only,
                                   session_factory=lambda: build_session(config, mode=args.mode))
        report = runner.run(args.tables, dry_run=args.dry_run)
    except LakehouseOpsError as exc:
        print("maintain.py: %s" % exc, file=sys.stderr)
        return 1
    if args.report:
        write_report(report, args.report)
    print(to_json(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
