"""The spark-submit jobs by name (`submit --job NAME` -> the entry point module in lakehouse_ops/spark_jobs/,
which runs the `lakehouse-ops` command of the same job), and the exit codes every command and job shares."""

JOBS = {"maintain": "maintain", "ingest": "ingest_sqs", "pseudonymize": "pseudonymize", "erase": "erase"}

# 0 success; 1 a table, action or batch failed; 2 usage or configuration error (nothing was started).
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
