"""spark-submit entry point for SQS-driven ingest (EMR step or EMR Serverless entryPoint).

    spark-submit spark_jobs/ingest_sqs.py --config s3://bucket/lakehouse-ops.yaml --until-empty
        [--max-batches N] [--max-runtime SECONDS] [--report s3://bucket/reports/ingest.json] [--mode cluster|local]

Exit code: 0 success, 1 ingest failed (messages stay on the queue), 2 configuration error.
"""
import argparse
import sys


def parse_args(argv):
    from lakehouse_ops.runner.entry import add_common_arguments
    parser = argparse.ArgumentParser(prog="ingest_sqs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--until-empty", action="store_true", help="drain the queue and exit")
    parser.add_argument("--max-batches", type=int, help="stop after this many batches")
    parser.add_argument("--max-runtime", type=float, help="stop after this many seconds")
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from lakehouse_ops.ingest.job import IngestJob
    from lakehouse_ops.runner.entry import run_spark_job

    def work(config, session_factory):
        job = IngestJob(config, session_factory=session_factory)
        return job.run(until_empty=args.until_empty, max_batches=args.max_batches, max_runtime_s=args.max_runtime)

    return run_spark_job("ingest_sqs.py", args.config, args.mode, work, args.report)


if __name__ == "__main__":
    sys.exit(main())
