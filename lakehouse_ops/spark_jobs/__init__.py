"""spark-submit entry points, shipped in the wheel. Each module is also a standalone script: `submit` uploads the
module's file as the EMR step's or EMR Serverless job run's entry point; the code it imports comes from the
installed wheel (EMR on EC2) or the packed virtualenv (EMR Serverless). From a checkout, spark_jobs/<name>.py
runs the same main()."""

# name -> module, for `lakehouse-ops submit --job NAME` and the packaging checks.
JOBS = {"maintain": "maintain", "ingest": "ingest_sqs", "pseudonymize": "pseudonymize", "erase": "erase"}
