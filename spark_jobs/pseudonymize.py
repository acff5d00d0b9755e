"""From a checkout: spark-submit spark_jobs/pseudonymize.py ... runs lakehouse_ops.spark_jobs.pseudonymize
(see its --help)."""

import sys

from lakehouse_ops.spark_jobs.pseudonymize import main

if __name__ == "__main__":
    sys.exit(main())
