"""The ingest ledger as it ages: partitioned by day, looked up by the batch's event times, kept compact."""

import time

import pytest

from lakehouse_ops.ingest.ledger import COMMITTED, PENDING, Ledger, timestamp_literal
from lakehouse_ops.ingest.messages import S3Object

from conftest import CATALOG

pytestmark = pytest.mark.spark
DAY_MS = 86400 * 1000
OLD_DDL = (
    "CREATE TABLE %s (object_id STRING, bucket STRING, object_key STRING, version_id STRING, etag STRING, "
    "size BIGINT, batch_id STRING, status STRING, target_snapshot_id BIGINT, recorded_at TIMESTAMP) USING iceberg"
)


def put(spark, ref, object_id, status, recorded_ms, batch="b-old"):
    """A ledger row recorded at another moment (as an ageing ledger holds them)."""
    event_time = ", NULL" if "event_time" in spark.table(ref).columns else ""  # a ledger of this release
    spark.sql(
        "INSERT INTO %s VALUES ('%s', 'bkt', 'k', NULL, 'e', 1, '%s', '%s', 1, %s%s)"
        % (ref, object_id, batch, status, timestamp_literal(recorded_ms), event_time)
    )


def test_ledger_lookups_read_only_the_days_since_the_batch_events(spark, table_name):
    ref = "%s.%s" % (CATALOG, table_name)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (CATALOG, table_name.split(".")[0]))
    spark.sql(OLD_DDL % ref)  # a ledger made by an earlier release: unpartitioned
    now = time.time() * 1000
    put(spark, ref, "legacy-recent", COMMITTED, now - 2 * 3600 * 1000)
    ledger = Ledger(spark, CATALOG, table_name, lookback_hours=24)
    ledger.ensure()
    partitioning = [r.data_type for r in spark.sql("DESCRIBE TABLE %s" % ref).collect() if r.col_name == "Part 0"]
    assert partitioning == ["days(recorded_at)"]
    properties = {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES %s" % ref).collect()}
    assert properties["write.metadata.delete-after-commit.enabled"] == "true"
    for day in range(1, 31):
        put(spark, ref, "day-%d" % day, COMMITTED, now - day * DAY_MS - 3600 * 1000)
    fresh = S3Object(bucket="bkt", key="new", etag="n1")
    ledger.record("b-new", [fresh], COMMITTED, 7)
    wanted = [fresh.identity, "legacy-recent", "day-1", "day-5", "day-30"]

    # Events of the last minutes: rows recorded in the last day are found, older days are not read at all.
    assert ledger.committed(wanted, int(now) - 60 * 1000) == {fresh.identity, "legacy-recent"}
    scan = ledger.last_scan
    assert scan["resultDataFiles"] <= 3 and scan["skippedDataManifests"] + scan["skippedDataFiles"] >= 30, scan
    # A batch whose events are five days old (a late redelivery) reads back to then.
    assert ledger.committed(wanted, int(now - 5 * DAY_MS)) == {fresh.identity, "legacy-recent", "day-1", "day-5"}
    # An object without an event time: the whole ledger is read.
    assert ledger.committed(wanted, None) == set(wanted)
    assert ledger.last_scan["resultDataFiles"] == 32 and ledger.last_scan["skippedDataManifests"] == 0
    # Pending rows never count as committed.
    put(spark, ref, "pending-only", PENDING, now)
    assert ledger.committed(["pending-only"], int(now)) == set()


def test_ledger_upkeep_compacts_recent_days_and_leaves_every_row(spark, table_name):
    ledger = Ledger(spark, CATALOG, table_name)
    ledger.ensure()
    ref = "%s.%s" % (CATALOG, table_name)
    objects = [S3Object(bucket="bkt", key="k%d" % i, etag="e%d" % i) for i in range(12)]
    for i in range(0, 12, 2):
        ledger.record("b-%d" % i, objects[i : i + 2], PENDING)
        ledger.record("b-%d" % i, objects[i : i + 2], COMMITTED, i)
    files_before = spark.sql("SELECT count(*) AS n FROM %s.files" % ref).collect()[0].n
    assert files_before >= 12

    done = ledger.upkeep()

    assert done["rewrite_data_files"]["rewritten_data_files_count"] == files_before
    assert "skipped" not in done["expire_snapshots"]
    spark.sql("REFRESH TABLE %s" % ref)
    assert spark.sql("SELECT count(*) AS n FROM %s.files" % ref).collect()[0].n == 1
    assert ledger.committed([o.identity for o in objects], int(time.time() * 1000)) == {o.identity for o in objects}
    assert spark.table(ref).count() == 24
