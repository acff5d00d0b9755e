"""spark-submit entry point for table maintenance (EMR step or EMR Serverless entryPoint).

    spark-submit maintain.py --config s3://bucket/lakehouse-ops.yaml [--mode cluster|local] [OPTIONS]

The options are those of `lakehouse-ops maintain` (see `maintain.py --help`); the report is printed as JSON.
Exit code: 0 success, 1 failed, 2 usage or configuration error.
"""

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    from lakehouse_ops.cli.spark_submit import run

    return run("maintain", sys.argv[1:] if argv is None else argv, "maintain.py")


if __name__ == "__main__":
    sys.exit(main())
