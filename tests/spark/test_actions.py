"""Each action does what it should and nothing else, on the real local engine."""

import pyarrow.parquet as pq
import pytest

from conftest import make_config
from helpers import CATALOG, assert_same_rows, data_files, days_later, health, maintain, ref, snapshot_id
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark


def _files_by_day(spark, table):
    rows = spark.sql(
        "SELECT partition.event_time_day AS day, file_path FROM %s.files WHERE content = 0" % ref(table)
    ).collect()
    out = {}
    for r in rows:
        out.setdefault(str(r.day), set()).add(r.file_path)
    return out


@pytest.mark.fast
def test_binpack_compacts_only_partitions_over_the_threshold(spark, warehouse, table_name):
    # No late rows: day 0 gets commits 0, 3, 6 (9 files), days 1 and 2 get two commits each (6 files).
    create_streaming_table(
        spark, CATALOG, table_name, days=3, commits=7, rows_per_commit=200, files_per_commit=3, late_fraction=0.0
    )
    before_files = _files_by_day(spark, table_name)
    assert sorted(len(v) for v in before_files.values()) == [6, 6, 9]
    before = snapshot_id(spark, table_name)
    config = make_config(warehouse, defaults={"target_file_size": "8MB", "compaction": {"min_input_files": 7}})
    entry, actions = maintain(spark, config, table_name, only=["compaction"])

    result = actions["compaction"]
    assert result["status"] == "done", result
    assert result["outputs"]["rewritten_data_files_count"] == 9
    assert result["outputs"]["verification"]["verified"] is True
    after_files = _files_by_day(spark, table_name)
    assert len(after_files["2024-05-01"]) == 1
    assert after_files["2024-05-02"] == before_files["2024-05-02"]
    assert after_files["2024-05-03"] == before_files["2024-05-03"]
    assert_same_rows(spark, table_name, before)
    assert entry["after"]["data_files"] == 13 and entry["before"]["data_files"] == 21
    ops = {
        r.operation
        for r in spark.sql(
            "SELECT operation FROM %s.snapshots WHERE parent_id IS NOT NULL AND "
            "committed_at > (SELECT committed_at FROM %s.snapshots WHERE "
            "snapshot_id = %d)" % (ref(table_name), ref(table_name), before)
        ).collect()
    }
    assert ops == {"replace"}


def test_sort_compaction_writes_sorted_files(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=2, commits=6, rows_per_commit=300, files_per_commit=2)
    before = snapshot_id(spark, table_name)
    config = make_config(
        warehouse,
        defaults={
            "target_file_size": "8MB",
            "compaction": {"strategy": "sort", "sort_order": ["event_time ASC NULLS LAST", "customer_id"]},
        },
    )
    _, actions = maintain(spark, config, table_name, only=["compaction"])
    assert actions["compaction"]["status"] == "done", actions["compaction"]
    assert "sort by event_time ASC NULLS LAST, customer_id" in actions["compaction"]["reason"]
    assert_same_rows(spark, table_name, before)
    files = data_files(spark, table_name)
    assert len(files) == 2
    for path in files:
        times = pq.read_table(path.replace("file:", ""), columns=["event_time"]).column(0).to_pylist()
        assert times == sorted(times)
    # Its output is smaller than the target, but written by a rewrite: the next run leaves it alone.
    again = health(config, table_name)
    assert again.small_files == 2 and again.new_small_files == 0
    _, actions = maintain(spark, config, table_name, only=["compaction"])
    assert actions["compaction"]["status"] == "skipped"


def test_zorder_compaction_keeps_rows(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=5, rows_per_commit=300, files_per_commit=2)
    before = snapshot_id(spark, table_name)
    config = make_config(
        warehouse,
        defaults={
            "target_file_size": "8MB",
            "compaction": {"strategy": "zorder", "zorder_columns": ["customer_id", "bytes_sent"]},
        },
    )
    _, actions = maintain(spark, config, table_name, only=["compaction"])
    assert actions["compaction"]["status"] == "done", actions["compaction"]
    assert actions["compaction"]["outputs"]["rewritten_data_files_count"] == 10
    assert len(data_files(spark, table_name)) == 1
    assert_same_rows(spark, table_name, before)


def test_recently_written_partitions_are_left_alone(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=5, rows_per_commit=100, files_per_commit=2)
    files = data_files(spark, table_name)
    config = make_config(warehouse, defaults={"compaction": {"skip_recent_hours": 1}})
    _, actions = maintain(spark, config, table_name, only=["compaction"])
    assert actions["compaction"]["status"] == "skipped"
    assert "written within 1" in actions["compaction"]["reason"]
    assert data_files(spark, table_name) == files


def test_properties_set_policy_values_and_leave_others(spark, warehouse, table_name):
    create_streaming_table(
        spark,
        CATALOG,
        table_name,
        days=1,
        commits=1,
        rows_per_commit=10,
        extra_properties={"write.parquet.compression-codec": "snappy"},
    )
    config = make_config(
        warehouse,
        defaults={
            "target_file_size": "64MB",
            "properties": {"metadata_previous_versions_max": 10, "object_storage": True},
        },
    )
    entry, actions = maintain(spark, config, table_name, only=["properties"])
    assert actions["properties"]["status"] == "done"
    assert entry["before"]["property_drift"]["write.parquet.compression-codec"] == {
        "actual": "snappy",
        "expected": "zstd",
    }
    props = {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES %s" % ref(table_name)).collect()}
    assert props["write.parquet.compression-codec"] == "zstd"
    assert props["write.target-file-size-bytes"] == str(64 * 1024 * 1024)
    assert props["write.metadata.previous-versions-max"] == "10"
    assert props["write.object-storage.enabled"] == "true"
    assert props["commit.manifest-merge.enabled"] == "false"  # not managed: untouched
    assert entry["after"]["property_drift"] == {}


def test_rewrite_position_deletes(spark, warehouse, table_name):
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % ref(table_name.split(".")[0]))
    spark.sql(
        "CREATE TABLE %s (id BIGINT, v STRING) USING iceberg TBLPROPERTIES ('format-version'='2', "
        "'write.delete.mode'='merge-on-read', 'write.delete.granularity'='partition')" % ref(table_name)
    )
    spark.range(0, 1200, 1, 12).selectExpr("id", "CAST(id AS STRING) v").writeTo(ref(table_name)).append()
    # One delete per data file: Iceberg merges deletes aimed at the same data file into one delete file.
    for i in range(12):
        spark.sql("DELETE FROM %s WHERE id = %d" % (ref(table_name), i * 100 + 7))
    before = snapshot_id(spark, table_name)
    config = make_config(warehouse, defaults={"position_deletes": {"min_delete_files": 10}})
    entry, actions = maintain(spark, config, table_name, only=["rewrite_position_deletes"])
    assert entry["before"]["position_delete_files"] == 12
    result = actions["rewrite_position_deletes"]
    assert result["status"] == "done", result
    assert result["outputs"]["rewritten_delete_files_count"] == 12
    assert entry["after"]["position_delete_files"] < 12
    assert_same_rows(spark, table_name, before)
    assert spark.table(ref(table_name)).count() == 1188


def test_rewrite_manifests_reduces_manifests_only(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=2, commits=12, rows_per_commit=50, files_per_commit=1)
    files = data_files(spark, table_name)
    before = snapshot_id(spark, table_name)
    config = make_config(warehouse, defaults={"manifests": {"min_manifests": 10}})
    entry, actions = maintain(spark, config, table_name, only=["rewrite_manifests"])
    assert entry["before"]["manifests"] == 12
    assert actions["rewrite_manifests"]["status"] == "done", actions["rewrite_manifests"]
    assert entry["after"]["manifests"] < 12
    assert data_files(spark, table_name) == files
    assert_same_rows(spark, table_name, before)


def test_expire_snapshots_keeps_retained_and_tagged(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=6, rows_per_commit=20, files_per_commit=1)
    first = (
        spark.sql("SELECT snapshot_id FROM %s.snapshots ORDER BY committed_at LIMIT 1" % ref(table_name))
        .collect()[0]
        .snapshot_id
    )
    spark.sql("ALTER TABLE %s CREATE TAG keep_me AS OF VERSION %d" % (ref(table_name), first))
    tagged_rows = spark.sql("SELECT count(*) n FROM %s VERSION AS OF 'keep_me'" % ref(table_name)).collect()[0].n
    current = snapshot_id(spark, table_name)
    config = make_config(warehouse, defaults={"snapshots": {"max_age_days": 1, "retain_last": 2}})
    entry, actions = maintain(spark, config, table_name, only=["expire_snapshots"], clock=days_later(2))
    assert actions["expire_snapshots"]["status"] == "done", actions["expire_snapshots"]
    remaining = {r.snapshot_id for r in spark.sql("SELECT snapshot_id FROM %s.snapshots" % ref(table_name)).collect()}
    assert entry["before"]["snapshots"] == 6
    assert first in remaining and current in remaining and len(remaining) == 3
    assert (
        spark.sql("SELECT count(*) n FROM %s VERSION AS OF 'keep_me'" % ref(table_name)).collect()[0].n == tagged_rows
    )
    assert spark.table(ref(table_name)).count() == 120


def test_gc_disabled_tables_are_not_expired(spark, warehouse, table_name):
    create_streaming_table(
        spark,
        CATALOG,
        table_name,
        days=1,
        commits=3,
        rows_per_commit=10,
        files_per_commit=1,
        extra_properties={"gc.enabled": "false"},
    )
    config = make_config(warehouse, defaults={"snapshots": {"max_age_days": 1}})
    _, actions = maintain(
        spark, config, table_name, only=["expire_snapshots", "remove_orphan_files"], clock=days_later(2)
    )
    assert actions["expire_snapshots"]["status"] == "skipped"
    assert actions["remove_orphan_files"]["status"] == "skipped"
    assert health(config, table_name).snapshots == 3


def test_namespace_named_like_the_catalog(spark, warehouse):
    """`lake.events` in catalog `lake`: procedures must not read the namespace as the catalog."""
    table = "lake.events_same_name"
    create_streaming_table(spark, CATALOG, table, days=1, commits=5, rows_per_commit=50, files_per_commit=2)
    before = snapshot_id(spark, table)
    config = make_config(warehouse, defaults={"target_file_size": "8MB", "manifests": {"min_manifests": 2}})
    _, actions = maintain(spark, config, table, only=["compaction", "rewrite_manifests"])
    assert actions["compaction"]["status"] == "done", actions["compaction"]
    assert actions["rewrite_manifests"]["status"] == "done", actions["rewrite_manifests"]
    assert_same_rows(spark, table, before)


@pytest.mark.parametrize(
    "transform, field",
    [("bucket(4, customer_id)", "customer_id_bucket"), ("truncate(2, customer_id)", "customer_id_trunc")],
)
def test_bucket_partitions_are_compacted_while_recent_ones_are_left_to_their_writer(
    spark, warehouse, table_name, transform, field
):
    """day + bucket(customer_id), one of the seed deployment's layouts (and day + truncate): the old day's
    partitions are selected with Iceberg's own bucket or truncate function, the day still being written is left
    alone."""
    import time

    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % ref(table_name.rsplit(".", 1)[0]))
    spark.sql(
        "CREATE TABLE %s (ts TIMESTAMP, customer_id STRING, n BIGINT) USING iceberg "
        "PARTITIONED BY (days(ts), %s)" % (ref(table_name), transform)
    )

    def write(day, start):
        spark.sql(
            "INSERT INTO %s SELECT TIMESTAMP '%s 10:00:00', concat('c', id %% 20), id FROM range(%d, %d)"
            % (ref(table_name), day, start, start + 40)
        )

    for i in range(4):
        write("2024-05-01", i * 40)
    time.sleep(4)
    for i in range(4):
        write("2024-05-02", 1000 + i * 40)
    before = snapshot_id(spark, table_name)
    config = make_config(warehouse, defaults={"compaction": {"min_input_files": 2, "skip_recent_hours": 0.001}})
    _, actions = maintain(spark, config, table_name, only=["compaction"])
    assert actions["compaction"]["status"] == "done", actions["compaction"]["reason"]
    assert "recently written partition(s) left alone" in actions["compaction"]["reason"]
    files = spark.sql(
        "SELECT partition.ts_day AS day, partition.%s AS b, count(*) AS n FROM %s.files "
        "GROUP BY 1, 2" % (field, ref(table_name))
    ).collect()
    old = [r.n for r in files if str(r.day) == "2024-05-01"]
    new = [r.n for r in files if str(r.day) == "2024-05-02"]
    assert old and all(n == 1 for n in old) and new and all(n == 4 for n in new)
    assert_same_rows(spark, table_name, before)


def test_a_table_holding_the_end_of_time_is_maintained(spark, warehouse, table_name):
    """A "valid to" column with the 9999-12-31 sentinel, partitioned by day and by month: the last partition ends
    past year 9999; the table's health is read and its partitions compacted all the same."""
    config = make_config(warehouse, defaults={"compaction": {"min_input_files": 2}})
    for transform in ("days", "months"):
        name = "%s_%s" % (table_name, transform)
        spark.sql(
            "CREATE TABLE lake.%s (id BIGINT, valid_to DATE) USING iceberg PARTITIONED BY (%s(valid_to))"
            % (name, transform)
        )
        for i in range(6):
            spark.sql(
                "INSERT INTO lake.%s VALUES (%d, DATE '2024-05-01'), (%d, DATE '9999-12-31')" % (name, i, 100 + i)
            )
        _, actions = maintain(spark, config, name, only=["compaction"])
        assert actions["compaction"]["status"] == "done", actions["compaction"]
        assert spark.sql("SELECT partition FROM lake.%s.files" % name).count() == 2  # the sentinel's compacted too
        assert spark.table("lake.%s" % name).count() == 12
