"""The runtime lines beside the main suite (which runs pyspark 3.5 with Iceberg 1.10.2): each tier runs a chosen set
of the suite's own Spark tests in another process, on the Spark and Iceberg of an EMR release.

- the EMR 8 line, emr-spark-8.0.0: pyspark 4.0 (Scala 2.13, ANSI SQL on by default, hadoop-aws 3.4 on the AWS SDK
  v2) with Iceberg 1.10.1: maintenance (every rewrite procedure, expiry, orphan removal; every action on Glue +
  S3FileIO), ingest (message shapes, exactly-once, bad files, CSV, Parquet and Avro, values rescued), pseudonymization
  in the executors, erasure;
- emr-spark-8.1.0: pyspark 4.0 with Iceberg 1.11.0, and emr-7.12.0: pyspark 3.5 with Iceberg 1.10.0: the
  maintenance and ingest protocol tests.

What is chosen is what differs between lines: the Iceberg runtime's procedures and Spark's planner under them,
Spark 4's ANSI casts in reading and enrichment, Python UDFs in executors, and the commit protocol of ingest.
pyspark 4.0 comes from PyPI into its own virtualenv, which sees this one's packages behind its own (so the tier
installs only pyspark); the jars of each line come from Maven Central as the library takes them (engine/jars.py).
"""

import os
import subprocess
import sys
import sysconfig

import pytest

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYSPARK_4 = "pyspark==4.0.2"  # emr-spark-8.0.0 and 8.1.0 run Spark 4.0.2

MAINTENANCE = [
    "tests/spark/test_actions.py::test_binpack_compacts_only_partitions_over_the_threshold",
    "tests/spark/test_actions.py::test_expire_snapshots_keeps_retained_and_tagged",
    "tests/spark/test_orphans.py::test_deletes_old_orphan_keeps_new_one_and_files_outside",
]
MAINTENANCE_EVERY_ACTION = MAINTENANCE + [
    "tests/spark/test_actions.py::test_sort_compaction_writes_sorted_files",
    "tests/spark/test_actions.py::test_zorder_compaction_keeps_rows",
    "tests/spark/test_actions.py::test_rewrite_position_deletes",
    "tests/spark/test_actions.py::test_rewrite_manifests_reduces_manifests_only",
]
INGEST = [
    "tests/spark/test_ingest.py::test_duplicates_are_written_once",
    "tests/spark/test_ingest.py::test_a_batch_committed_twice_is_a_failure_naming_both_snapshots",
]
INGEST_EVERY_SHAPE = INGEST + [
    "tests/spark/test_ingest.py::test_every_message_shape_and_awkward_keys",
    "tests/spark/test_ingest.py::test_poison_missing_unreadable_and_unparseable",
    "tests/spark/test_ingest.py::test_csv_gzip_and_parquet",
]
# Spark 4.0 casts under ANSI SQL by default, reads Avro with its own spark-avro, and reaches S3 through hadoop-aws
# 3.4 on the AWS SDK v2: values that do not fit their columns, headers in another order, Avro, the Glue + S3 stack.
WHAT_SPARK_4_CHANGES = [
    "tests/spark/test_ingest_schema.py::test_rescue_keeps_every_record_and_puts_what_does_not_fit_aside",
    "tests/spark/test_ingest_schema.py::test_rescue_csv_keeps_every_record_and_rescues_values_that_do_not_fit",
    "tests/spark/test_ingest_formats.py::test_rescue_for_parquet_and_avro_keeps_records_whose_declared_types_do_not_fit",
    "tests/spark/test_ingest_formats.py::test_avro_in_both_codecs_and_a_parquet_file_announced_to_an_avro_target",
    "tests/spark/test_ingest_edges.py::test_csv_columns_are_read_by_the_header_in_any_order",
    "tests/spark/test_aws_tier.py::test_maintain_runs_every_action_on_glue_and_s3",
]
PSEUDO_AND_ERASURE = [
    "tests/spark/test_pseudo_spark.py::test_round_trip_keeps_schema_nulls_and_rows",
    "tests/spark/test_pseudo_spark.py::test_in_executor_mode_gives_the_service_tokens",
    "tests/spark/test_erasure.py::test_erasure_removes_rows_bytes_and_history",
]


def run(cmd, timeout, env=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(cmd[:6]), proc.stdout[-6000:], proc.stderr[-3000:])
    return proc.stdout


@pytest.fixture(scope="module")
def spark4_python(tmp_path_factory):
    """A virtualenv holding pyspark 4.0 and seeing this environment's other packages behind it (the project,
    moto, the test tools): its `python` imports pyspark 4.0 and py4j of its own."""
    venv = str(tmp_path_factory.mktemp("spark4") / "venv")
    run([sys.executable, "-m", "venv", venv], timeout=120)
    python = os.path.join(venv, "bin", "python")
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PYSPARK_4], timeout=900)
    own = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60).strip()
    with open(os.path.join(own, "zz_lakehouse_ops_tests.pth"), "w") as handle:
        handle.write("import site; site.addsitedir(%r)\n" % sysconfig.get_paths()["purelib"])
    return python


def run_tier(python, tests, iceberg=None):
    env = dict(os.environ)
    env.pop("LAKEHOUSE_OPS_ICEBERG_VERSION", None)
    if iceberg:
        env["LAKEHOUSE_OPS_ICEBERG_VERSION"] = iceberg
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-p", "no:xdist"] + tests
    out = run(cmd, timeout=1500, env=env)
    assert "%d passed" % len(tests) in out, out[-3000:]
    return out


def spark_and_iceberg(python, iceberg=None):
    """The versions a tier's session really runs, read back from the JVM (not from what was asked)."""
    env = dict(os.environ)
    env.pop("LAKEHOUSE_OPS_ICEBERG_VERSION", None)
    if iceberg:
        env["LAKEHOUSE_OPS_ICEBERG_VERSION"] = iceberg
    probe = (
        "from lakehouse_ops.engine.session import local_spark_version, iceberg_jars\n"
        "from lakehouse_ops.engine.diagnose import what_is_missing\n"
        "import os; print(local_spark_version(), [os.path.basename(j) for j in iceberg_jars()],\n"
        "    what_is_missing(RuntimeError('No FileSystem for scheme \"s3a\"')))\n"
    )
    return run([python, "-c", probe], timeout=300, env=env).strip()


def test_emr_spark_8_0_spark_4_with_iceberg_1_10_1(spark4_python):
    versions = spark_and_iceberg(spark4_python)
    assert versions.startswith("4.0.") and "iceberg-spark-runtime-4.0_2.13-1.10.1.jar" in versions, versions
    assert "hadoop-aws:3.4.1 and software.amazon.awssdk:bundle:2.24.6" in versions  # what a failure advises
    everything = MAINTENANCE_EVERY_ACTION + INGEST_EVERY_SHAPE + WHAT_SPARK_4_CHANGES + PSEUDO_AND_ERASURE
    run_tier(spark4_python, everything)


def test_emr_spark_8_1_spark_4_with_iceberg_1_11_0(spark4_python):
    versions = spark_and_iceberg(spark4_python, "1.11.0")
    assert "iceberg-spark-runtime-4.0_2.13-1.11.0.jar" in versions, versions
    run_tier(spark4_python, MAINTENANCE + INGEST, iceberg="1.11.0")


def test_emr_7_12_spark_3_5_with_iceberg_1_10_0():
    versions = spark_and_iceberg(sys.executable, "1.10.0")
    assert versions.startswith("3.5.") and "iceberg-spark-runtime-3.5_2.12-1.10.0.jar" in versions, versions
    run_tier(sys.executable, MAINTENANCE + INGEST, iceberg="1.10.0")
