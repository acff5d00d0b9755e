"""Recovery points on the real engine: a daily tag kept through snapshot expiry and readable, with the retention
Iceberg drops it after."""

import pytest

from conftest import make_config
from helpers import CATALOG, days_later, maintain, ref
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark


def test_a_daily_tag_survives_expiry_with_its_retention(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=2, rows_per_commit=50, files_per_commit=1)
    config = make_config(
        warehouse,
        defaults={
            "recovery_points": {"every": "daily", "max_age_days": 3},
            "snapshots": {"max_age_days": 1, "retain_last": 1},
        },
    )
    _, first = maintain(spark, config, table_name, only=["recovery_points"])
    tag = first["recovery_points"]["outputs"]["tag"]
    assert first["recovery_points"]["status"] == "done" and tag.startswith("lakehouse-ops-")
    rows_at_tag = spark.table(ref(table_name)).count()
    _, again = maintain(spark, config, table_name, only=["recovery_points"])
    assert again["recovery_points"]["status"] == "skipped" and "exists" in again["recovery_points"]["reason"]

    # The table moves on; two days later expiry keeps the tagged snapshot (and its files) besides the last one.
    spark.sql("DELETE FROM %s WHERE customer_id < 'c00100'" % ref(table_name))
    assert spark.table(ref(table_name)).count() < rows_at_tag
    _, expired = maintain(spark, config, table_name, only=["expire_snapshots"], clock=days_later(2))
    assert expired["expire_snapshots"]["status"] == "done", expired["expire_snapshots"]["reason"]
    assert spark.sql("SELECT * FROM %s VERSION AS OF '%s'" % (ref(table_name), tag)).count() == rows_at_tag
    tags = [r.name for r in spark.sql("SELECT name FROM %s.refs WHERE type = 'TAG'" % ref(table_name)).collect()]
    assert tags == [tag]
    # Iceberg drops the tag once it is older than its retention (judged on the wall clock when expiry runs).
    age = spark.sql("SELECT max_reference_age_in_ms FROM %s.refs WHERE name = '%s'" % (ref(table_name), tag))
    assert age.collect()[0][0] == 3 * 86400 * 1000
