"""spark-submit entry point for pseudonymization jobs (EMR step or EMR Serverless entryPoint).

    spark-submit spark_jobs/pseudonymize.py --config s3://bucket/lakehouse-ops.yaml --job vehicles
        [--reidentify-to analytics.vehicles_plain] [--report s3://bucket/reports/pseudo.json] [--mode cluster|local]

Exit code: 0 success, 1 the job failed (the target is unchanged), 2 configuration error.
"""
import argparse
import sys


def parse_args(argv):
    from lakehouse_ops.runner.entry import add_common_arguments
    parser = argparse.ArgumentParser(prog="pseudonymize.py", description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, help="a job of the config's pseudonymization section")
    parser.add_argument("--reidentify-to", metavar="TABLE", help="re-identify the job's target into TABLE instead")
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from lakehouse_ops.pseudo import job
    from lakehouse_ops.runner.entry import run_spark_job

    def work(config, session_factory):
        direction = "reidentify" if args.reidentify_to else "pseudonymize"
        return job.run(config, args.job, direction, args.reidentify_to, session_factory=session_factory)

    return run_spark_job("pseudonymize.py", args.config, args.mode, work, args.report)


if __name__ == "__main__":
    sys.exit(main())
