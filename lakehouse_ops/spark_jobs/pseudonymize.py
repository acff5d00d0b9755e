"""spark-submit entry point for pseudonymization jobs (EMR step or EMR Serverless entryPoint).

    spark-submit pseudonymize.py --config s3://bucket/lakehouse-ops.yaml [--mode cluster|local] [OPTIONS]

The options are those of `lakehouse-ops pseudonymize` (see `pseudonymize.py --help`); the report is printed as JSON.
Exit code: 0 success, 1 failed, 2 usage or configuration error.
"""

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    from lakehouse_ops.cli.spark_submit import run

    return run("pseudonymize", sys.argv[1:] if argv is None else argv, "pseudonymize.py")


if __name__ == "__main__":
    sys.exit(main())
