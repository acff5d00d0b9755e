"""Table statistics on the real engine: computed when missing or stale (Puffin column NDV and partition stats),
seen by health, dropped with the snapshots that expire, kept by orphan removal."""

import os
import time

import pytest

from conftest import make_config
from helpers import CATALOG, days_later, health, maintain, ref
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark


def local(path):
    return path[len("file:") :] if path.startswith("file:") else path


def test_statistics_are_kept_fresh_and_expire_with_their_snapshots(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=2, commits=2, rows_per_commit=200, files_per_commit=1)
    config = make_config(
        warehouse,
        defaults={
            "statistics": {"enabled": True, "columns": ["customer_id"], "max_staleness_snapshots": 2},
            "compaction": {"enabled": False},
            "snapshots": {"max_age_days": 1, "retain_last": 1},
            "orphans": {"older_than_hours": 72},
        },
    )
    assert health(config, table_name).snapshots_since_stats is None
    _, actions = maintain(spark, config, table_name, only=["statistics"])
    first = actions["statistics"]
    assert first["status"] == "done" and "no column statistics" in first["reason"], first
    puffin, partition_file = first["outputs"]["statistics_file"], first["outputs"]["partition_statistics_file"]
    assert puffin.endswith(".stats") and os.path.exists(local(puffin)) and os.path.exists(local(partition_file))
    ndv = spark.sql("SELECT count(DISTINCT customer_id) FROM %s" % ref(table_name)).collect()[0][0]
    blob = (
        spark._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(
            spark._jsparkSession, "%s.%s" % (CATALOG, table_name)
        )
        .statisticsFiles()[0]
        .blobMetadata()[0]
    )
    assert abs(int(blob.properties()["ndv"]) - ndv) <= max(2, ndv // 50)  # a sketch: close, not exact

    # Fresh: nothing to do. One commit later still within the limit; two later, stale.
    h = health(config, table_name)
    assert h.snapshots_since_stats == 0 and h.snapshots_since_partition_stats == 0
    _, again = maintain(spark, config, table_name, only=["statistics"])
    assert again["statistics"]["status"] == "skipped"
    for i in range(2):
        spark.sql("INSERT INTO %s SELECT * FROM %s LIMIT 10" % (ref(table_name), ref(table_name)))
    _, stale = maintain(spark, config, table_name, only=["statistics"])
    assert stale["statistics"]["status"] == "done" and "2 snapshots behind" in stale["statistics"]["reason"]
    newer = stale["statistics"]["outputs"]["statistics_file"]
    partition_file2 = stale["statistics"]["outputs"]["partition_statistics_file"]

    # Expiry (five days on) drops the older snapshots and their statistics files.
    _, later = maintain(spark, config, table_name, only=["expire_snapshots"], clock=days_later(5))
    assert later["expire_snapshots"]["status"] == "done", later["expire_snapshots"]
    assert not os.path.exists(local(puffin)) and os.path.exists(local(newer))
    # Every file of the table aged past the orphan threshold: orphan removal keeps the live statistics.
    location = local(health(config, table_name).location)
    aged = time.time() - 100 * 3600
    for folder, _, names in os.walk(location):
        for name in names:
            os.utime(os.path.join(folder, name), (aged, aged))
    stray = os.path.join(location, "metadata", "left-by-a-failed-job.stats")  # a Puffin file nothing references
    with open(stray, "wb") as handle:
        handle.write(b"PFA1")
    os.utime(stray, (aged, aged))
    _, swept = maintain(spark, config, table_name, only=["remove_orphan_files"])
    assert swept["remove_orphan_files"]["status"] == "done", swept["remove_orphan_files"]["reason"]
    assert not os.path.exists(stray) and os.path.exists(local(newer)) and os.path.exists(local(partition_file2))
    files = spark.sql("SELECT count(*) FROM %s.snapshots" % ref(table_name)).collect()[0][0]
    assert files == 1 and health(config, table_name).statistics_files == 2
