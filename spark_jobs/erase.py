"""From a checkout: spark-submit spark_jobs/erase.py ... runs lakehouse_ops.spark_jobs.erase (see its --help)."""

import sys

from lakehouse_ops.spark_jobs.erase import main

if __name__ == "__main__":
    sys.exit(main())
