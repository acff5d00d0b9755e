"""Safety: rewrites are verified and undone on mismatch; concurrent appends are never lost."""

import threading
import time

import pytest

from lakehouse_ops.errors import VerificationError
from lakehouse_ops.maintenance.verify import checksum, verify_rewrites

from conftest import make_config
from helpers import CATALOG, at, maintain, ref, snapshot_id
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark


def _append_rows(spark, table, tag, n=50):
    spark.range(n).selectExpr(
        "TIMESTAMP '2024-05-01 12:00:00' + make_interval(0, 0, 0, 0, 0, 0, id) AS event_time",
        "'%s' AS customer_id" % tag,
        "'edge-z' AS provider",
        "200 AS status",
        "id AS bytes_sent",
        "'/x' AS url",
    ).writeTo(ref(table)).append()


@pytest.mark.fast
def test_checksum_sees_a_changed_value(spark, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=1, rows_per_commit=50, files_per_commit=1)
    first = snapshot_id(spark, table_name)
    spark.sql(
        "UPDATE %s SET bytes_sent = bytes_sent + 1 WHERE customer_id = (SELECT min(customer_id) FROM %s)"
        % (ref(table_name), ref(table_name))
    )
    second = snapshot_id(spark, table_name)
    a, b = checksum(spark, CATALOG, table_name, first), checksum(spark, CATALOG, table_name, second)
    assert a[0] == b[0] == 50 and a[1] != b[1]


def test_mismatch_rolls_back_and_reapplies_concurrent_appends(spark, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=2, rows_per_commit=100, files_per_commit=1)
    start = snapshot_id(spark, table_name)
    original = at(spark, table_name, start).count()
    # A "rewrite" that loses rows, followed by another writer's append.
    spark.sql("DELETE FROM %s WHERE status = 500" % ref(table_name))
    bad = snapshot_id(spark, table_name)
    _append_rows(spark, table_name, "concurrent-writer")
    with pytest.raises(VerificationError, match="rolled back to snapshot %d and re-applied 1" % start):
        verify_rewrites(spark, CATALOG, table_name, start, is_rewrite=lambda s: s.snapshot_id == bad)
    table = spark.table(ref(table_name))
    assert table.count() == original + 50
    assert table.filter("customer_id = 'concurrent-writer'").count() == 50
    assert table.filter("status = 500").count() == at(spark, table_name, start).filter("status = 500").count() > 0


def test_mismatch_with_foreign_non_append_is_reported_not_guessed(spark, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=2, rows_per_commit=100, files_per_commit=1)
    start = snapshot_id(spark, table_name)
    spark.sql("DELETE FROM %s WHERE status = 500" % ref(table_name))
    bad = snapshot_id(spark, table_name)
    spark.sql("DELETE FROM %s WHERE status = 404" % ref(table_name))
    head = snapshot_id(spark, table_name)
    with pytest.raises(VerificationError, match="not rolled back automatically"):
        verify_rewrites(spark, CATALOG, table_name, start, is_rewrite=lambda s: s.snapshot_id == bad)
    assert snapshot_id(spark, table_name) == head


def test_append_during_compaction_loses_no_row(spark, warehouse, table_name):
    create_streaming_table(
        spark,
        CATALOG,
        table_name,
        days=2,
        commits=8,
        rows_per_commit=400,
        files_per_commit=3,
        extra_properties={"commit.retry.num-retries": "20"},
    )
    initial = spark.table(ref(table_name)).count()
    errors = []

    def appender():
        try:
            for i in range(8):
                _append_rows(spark, table_name, "appender-%d" % i)
                time.sleep(0.2)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    config = make_config(
        warehouse,
        defaults={
            "target_file_size": "8MB",
            "compaction": {
                "strategy": "sort",
                "sort_order": ["event_time"],
                "min_input_files": 2,
                "partial_progress": True,
                "partial_progress_max_commits": 4,
                "max_concurrent_file_group_rewrites": 2,
            },
        },
    )
    thread = threading.Thread(target=appender)
    thread.start()
    _, actions = maintain(spark, config, table_name, only=["compaction"])
    thread.join()
    assert not errors, errors
    assert actions["compaction"]["status"] == "done", actions["compaction"]
    assert actions["compaction"]["outputs"]["verification"]["verified"] is True
    table = spark.table(ref(table_name))
    assert table.count() == initial + 8 * 50
    assert (
        table.filter("customer_id LIKE 'appender-%'").select("customer_id", "bytes_sent").distinct().count() == 8 * 50
    )
    # The run really overlapped: a rewrite commit landed before the appender's last commit.
    ops = [
        r.operation
        for r in spark.sql("SELECT operation FROM %s.snapshots ORDER BY committed_at" % ref(table_name)).collect()
    ]
    assert ops.index("replace") < len(ops) - 1 - ops[::-1].index("append"), ops
