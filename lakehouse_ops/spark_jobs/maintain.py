"""spark-submit entry point for table maintenance (EMR step or EMR Serverless entryPoint).

    spark-submit spark_jobs/maintain.py --config s3://bucket/lakehouse-ops.yaml [TABLE_OR_GLOB ...]
        [--dry-run] [--report s3://bucket/reports/run.json] [--only compaction ...] [--written-within-hours 3]
        [--mode cluster|local]

Exit code: 0 success, 1 a table or action failed, 2 configuration error.
"""
import argparse
import sys


def parse_args(argv):
    from lakehouse_ops.maintenance import ACTIONS
    from lakehouse_ops.runner.entry import add_common_arguments
    parser = argparse.ArgumentParser(prog="maintain.py", description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", help="table names or globs; default: every table a rule matches")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    parser.add_argument("--only", action="append", choices=list(ACTIONS), metavar="ACTION",
                        help="run only this action (repeatable): %s" % ", ".join(ACTIONS))
    parser.add_argument("--written-within-hours", type=float, metavar="HOURS",
                        help="compact only partitions written within HOURS (hourly runs over recent partitions)")
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from lakehouse_ops.runner import MaintenanceRunner
    from lakehouse_ops.runner.entry import run_spark_job

    def work(config, session_factory):
        runner = MaintenanceRunner(config, only=args.only, session_factory=session_factory,
                                   written_within_hours=args.written_within_hours)
        return runner.run(args.tables, dry_run=args.dry_run)

    return run_spark_job("maintain.py", args.config, args.mode, work, args.report)


if __name__ == "__main__":
    sys.exit(main())
