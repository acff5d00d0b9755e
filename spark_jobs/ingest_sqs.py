"""From a checkout: spark-submit spark_jobs/ingest_sqs.py ... runs lakehouse_ops.spark_jobs.ingest_sqs
(see its --help)."""

import sys

from lakehouse_ops.spark_jobs.ingest_sqs import main

if __name__ == "__main__":
    sys.exit(main())
