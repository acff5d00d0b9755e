"""spark-submit entry point for SQS-driven ingest (EMR step or EMR Serverless entryPoint).

    spark-submit spark_jobs/ingest_sqs.py --config s3://bucket/lakehouse-ops.yaml --until-empty
        [--max-batches N] [--max-runtime SECONDS] [--report s3://bucket/reports/ingest.json] [--mode cluster|local]

Exit code: 0 success, 1 ingest failed (messages stay on the queue), 2 configuration error.
"""
import argparse
import sys


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="ingest_sqs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config with an 'ingest' section (path or s3:// URI)")
    parser.add_argument("--until-empty", action="store_true", help="drain the queue and exit")
    parser.add_argument("--max-batches", type=int, help="stop after this many batches")
    parser.add_argument("--max-runtime", type=float, help="stop after this many seconds")
    parser.add_argument("--report", help="write the JSON report to this file or s3:// URI")
    parser.add_argument("--mode", choices=("cluster", "local"), default="cluster",
                        help="cluster: use the cluster's Spark and Iceberg (default); local: start local Spark")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from lakehouse_ops import logs
    from lakehouse_ops.config import load_config
    from lakehouse_ops.engine import build_session
    from lakehouse_ops.errors import ConfigError, LakehouseOpsError
    from lakehouse_ops.ingest.job import IngestJob
    from lakehouse_ops.runner.report import to_json, write_report

    logs.configure()
    try:
        config = load_config(args.config)
        job = IngestJob(config, session_factory=lambda: build_session(config, mode=args.mode))
    except ConfigError as exc:
        print("ingest_sqs.py: %s" % exc, file=sys.stderr)
        return 2
    try:
        report = job.run(until_empty=args.until_empty, max_batches=args.max_batches, max_runtime_s=args.max_runtime)
    except LakehouseOpsError as exc:
        print("ingest_sqs.py: %s" % exc, file=sys.stderr)
        return 1
    if args.report:
        write_report(report, args.report)
    print(to_json(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
