"""spark-submit entry points, shipped in the wheel. Each module is also a standalone script: `submit` uploads the
module's file as the EMR step's or EMR Serverless job run's entry point; the code it imports comes from the
installed wheel (EMR on EC2) or the packed virtualenv (EMR Serverless). From a checkout, spark_jobs/<name>.py
runs the same main()."""

from lakehouse_ops.jobs import JOBS  # noqa: F401  (name -> module, for `submit --job NAME` and packaging)
