"""The spark-submit jobs by name: `submit --job NAME` -> the entry point module in lakehouse_ops/spark_jobs/."""
JOBS = {"maintain": "maintain", "ingest": "ingest_sqs", "pseudonymize": "pseudonymize", "erase": "erase"}
