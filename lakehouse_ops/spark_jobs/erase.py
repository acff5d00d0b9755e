"""spark-submit entry point for right-to-be-forgotten erasure (EMR step or EMR Serverless entryPoint).

    spark-submit spark_jobs/erase.py --config s3://bucket/lakehouse-ops.yaml \
        --subjects-file s3://bucket/erasure/requests/REQ-123.txt --request-id REQ-123 \
        [--pseudonyms-file s3://...] [--table ns.t ...] [--dry-run] [--receipt s3://bucket/receipts/REQ-123.json]

Subjects come from files (one per line) so they never appear in step arguments or logs. The receipt is printed as
JSON and written to --receipt (or under the config's erasure.receipts). Exit code: 0 erased and verified (or dry
run done), 1 not erased or not verified (the receipt says why), 2 configuration error.
"""
import argparse
import sys


def parse_args(argv):
    from lakehouse_ops.runner.entry import add_common_arguments
    parser = argparse.ArgumentParser(prog="erase.py", description=__doc__.splitlines()[0])
    parser.add_argument("--subjects-file", help="subject identifiers, one per line (local path or s3:// URI)")
    parser.add_argument("--pseudonyms-file", help="subjects given by their pseudonyms, one per line")
    parser.add_argument("--table", action="append", help="only these of the erasure section's tables")
    parser.add_argument("--request-id", help="the erasure request's reference, recorded in the receipt")
    parser.add_argument("--dry-run", action="store_true", help="find where the subjects are; change nothing")
    parser.add_argument("--receipt", help="write the receipt to this file or s3:// URI")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not args.subjects_file and not args.pseudonyms_file:
        parser.error("give --subjects-file and/or --pseudonyms-file")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from lakehouse_ops.erasure.job import run_request
    from lakehouse_ops.runner.entry import run_spark_job

    def work(config, session_factory):
        return run_request(config, identifiers_file=args.subjects_file, pseudonyms_file=args.pseudonyms_file,
                           tables=args.table, dry_run=args.dry_run, request_id=args.request_id,
                           receipt_path=args.receipt, session_factory=session_factory)

    return run_spark_job("erase.py", args.config, args.mode, work, None)


if __name__ == "__main__":
    sys.exit(main())
