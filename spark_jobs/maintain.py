"""From a checkout: spark-submit spark_jobs/maintain.py ... runs lakehouse_ops.spark_jobs.maintain (see its --help)."""

import sys

from lakehouse_ops.spark_jobs.maintain import main

if __name__ == "__main__":
    sys.exit(main())
