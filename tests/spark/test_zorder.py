"""Scaled z-order: one layout that lets both a one-hour query and a one-customer query skip most files of a day,
where Iceberg's z-order (a timestamp counted in seconds beside a string key) ends up a customer sort."""

import pytest

from conftest import make_config
from helpers import assert_same_rows, maintain, ref, snapshot_id
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark


def _touched(spark, table, hour_predicate, customer):
    files = spark.sql(
        "SELECT readable_metrics.event_time.lower_bound AS lo, readable_metrics.event_time.upper_bound AS hi, "
        "readable_metrics.customer_id.lower_bound AS clo, readable_metrics.customer_id.upper_bound AS chi "
        "FROM %s.files WHERE content = 0" % ref(table)
    ).collect()
    start, end = hour_predicate
    hour = sum(1 for f in files if f.lo < end and f.hi >= start)
    one = sum(1 for f in files if f.clo <= customer <= f.chi)
    return len(files), hour, one


def test_scaled_zorder_serves_both_query_shapes_and_keeps_every_row(spark, warehouse, table_name):
    from datetime import datetime

    create_streaming_table(spark, "lake", table_name, days=1, commits=6, rows_per_commit=50000, customers=2000)
    before = snapshot_id(spark, table_name)
    layout = {"strategy": "zorder", "zorder_columns": ["event_time", "customer_id"], "zorder_method": "scaled"}
    small_files = {"target-file-size-bytes": str(256 * 1024)}  # a day of many files, as at 512 MB over GBs
    config = make_config(warehouse, defaults={"compaction": dict(layout, min_input_files=2, options=small_files)})
    _, actions = maintain(spark, config, table_name, only=["compaction"])
    result = actions["compaction"]
    assert result["status"] == "done", result
    assert "scaled z-order on event_time, customer_id" in result["reason"]
    assert result["outputs"]["verification"]["verified"] is True
    assert_same_rows(spark, table_name, before)
    files, hour, one = _touched(spark, table_name, (datetime(2024, 5, 1, 10), datetime(2024, 5, 1, 11)), "c00042")
    assert files >= 1
    assert hour <= max(1, files // 3) and one <= max(1, files // 3), (files, hour, one)
