"""Expiry growth for scale_bench.py: a table of 1,000 to 10,000+ snapshots expired by lakehouse-ops (health,
plan, the procedure, then the check that every file the expiry made unreachable was deleted) next to Iceberg's
raw `expire_snapshots` procedure on an identical table, in the same Spark session.

Each table (setup, not timed) is built through Iceberg's Java API in one transaction: one append per snapshot
(one data file each, 30 day partitions, merge appends: manifests are merged as a streaming writer's are), so a
table of N snapshots is what a writer committing every minute leaves after N minutes. The data files are
metadata only: expiring an append-only table deletes manifest lists and merged-away manifests, no data file.
Both runs expire every snapshot but the last 10: the procedure with older_than one day after the build, ours with
its clock two days after the build and max_age_days 1 (the same horizon).
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor

RETAIN_LAST = 10
DAY_MS = 24 * 3600 * 1000


def build(spark, catalog, name, snapshots):
    """A table of `snapshots` append snapshots; returns the instant (epoch ms) the build finished."""
    jvm = spark._jvm
    spark.sql(
        "CREATE TABLE %s.%s (id BIGINT, day INT) USING iceberg PARTITIONED BY (day) "
        "TBLPROPERTIES ('write.metadata.delete-after-commit.enabled'='true', "
        "'write.metadata.previous-versions-max'='10')" % (catalog, name)
    )
    table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, "%s.%s" % (catalog, name))
    spec, location = table.spec(), table.location()
    builder = jvm.org.apache.iceberg.DataFiles.builder
    txn = table.newTransaction()
    for i in range(snapshots):
        data_file = (
            builder(spec)
            .withPath("%s/data/day=%d/f%07d.parquet" % (location, i % 30, i))
            .withFileSizeInBytes(1000 + i % 97)
            .withRecordCount(10)
            .withPartitionPath("day=%d" % (i % 30))
            .build()
        )
        txn.newAppend().appendFile(data_file).commit()
    txn.commitTransaction()
    return int(time.time() * 1000)


def snapshot_count(spark, catalog, name):
    return spark.sql("SELECT count(*) AS n FROM %s.%s.snapshots" % (catalog, name)).collect()[0].n


def expiry(spark, config, catalog, sizes):
    """Per size: seconds of the raw procedure and of lakehouse-ops' expiry, and what each deleted."""
    from lakehouse_ops.runner.maintain import MaintenanceRunner
    from lakehouse_ops.sqltext import Timestamp, literal
    from lakehouse_ops.units import iso_utc

    points = []
    for size in sizes:
        raw_name, ours_name = "bench.expire_raw_%d" % size, "bench.expire_ours_%d" % size
        started = time.time()
        with ThreadPoolExecutor(max_workers=2) as pool:  # one core each: the JVM builds both at once
            built = max(pool.map(lambda name: build(spark, catalog, name, size), (raw_name, ours_name)))
        print("  built two tables of %d snapshots in %.0f s" % (size, time.time() - started), flush=True)
        started = time.time()
        row = spark.sql(
            "CALL %s.system.expire_snapshots(table => '%s', older_than => %s, retain_last => %d, "
            "stream_results => true)" % (catalog, raw_name, literal(Timestamp(iso_utc(built + DAY_MS))), RETAIN_LAST)
        ).collect()[0]
        raw_s = time.time() - started
        started = time.time()
        report = MaintenanceRunner(
            config, spark=spark, only=["expire_snapshots"], clock=lambda: built + 2 * DAY_MS
        ).run([ours_name])
        ours_s = time.time() - started
        action = next(a for a in report["tables"][0]["actions"] if a["action"] == "expire_snapshots")
        raw_deleted = sum(v for k, v in row.asDict().items() if k.endswith("_count"))
        point = {
            "snapshots": size,
            "raw_procedure_s": round(raw_s, 2),
            "lakehouse_ops_s": round(ours_s, 2),
            "ratio": round(ours_s / raw_s, 2),
            "raw_deleted_files": raw_deleted,
            "ours_status": action["status"],
            "ours_deleted_files": sum(v for k, v in action.get("outputs", {}).items() if k.endswith("_count")),
            "left": [snapshot_count(spark, catalog, raw_name), snapshot_count(spark, catalog, ours_name)],
        }
        print("  expiry %6d %s" % (size, point), flush=True)
        points.append(point)
    return points


def spark_config_data(work):
    """The config of the Spark families (expiry, orphan removal): a local warehouse, budgets that take it all."""
    warehouse = os.path.join(work, "spark-warehouse")
    return {
        "catalog": {"name": "growth", "type": "hadoop", "warehouse": warehouse},
        "spark": {"mode": "local", "master": "local[2]", "conf": {"spark.driver.memory": "12g"}},
        "defaults": {
            "snapshots": {"retain_last": RETAIN_LAST, "max_age_days": 1},
            "orphans": {"older_than_hours": 72, "max_files": 10_000_000},
        },
    }


def spark_config(work):
    from lakehouse_ops.config import config_from_dict

    return config_from_dict(spark_config_data(work))
