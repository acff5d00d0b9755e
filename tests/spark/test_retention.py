"""Retention on the real engine: whole days dropped by a metadata-only delete, the horizon's day row by row, rows
with no time kept, the budget refusing before anything is deleted."""

import datetime

import pytest

from conftest import make_config
from helpers import CATALOG, maintain, ref

pytestmark = pytest.mark.spark
# The run's clock: 2024-05-12 06:00 UTC. keep_days 3 puts the horizon at 2024-05-09 06:00.
NOW = int(datetime.datetime(2024, 5, 12, 6, tzinfo=datetime.timezone.utc).timestamp() * 1000)


def make_table(spark, table):
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (CATALOG, table.split(".")[0]))
    spark.sql(
        "CREATE TABLE %s (event_time TIMESTAMP, id BIGINT) USING iceberg PARTITIONED BY (days(event_time))" % ref(table)
    )
    rows = ", ".join(
        "(TIMESTAMP '2024-05-%02d %02d:00:00Z', %d)" % (day, hour, day * 100 + hour)
        for day in range(1, 11)
        for hour in range(10)
    )
    spark.sql("INSERT INTO %s VALUES %s, (NULL, 1), (NULL, 2)" % (ref(table), rows))
    return sorted(r.id for r in spark.table(ref(table)).collect())


def config_for(warehouse, **retention):
    return make_config(warehouse, defaults={"retention": dict({"column": "event_time", "keep_days": 3}, **retention)})


def test_whole_days_go_by_metadata_and_the_horizon_day_row_by_row(spark, warehouse, table_name):
    ids = make_table(spark, table_name)
    config = config_for(warehouse, max_share=0.9)
    _, planned = maintain(spark, config, table_name, only=["retention"], dry_run=True, clock=lambda: NOW)
    dry = planned["retention"]
    assert dry["status"] == "planned"
    assert [p for p, _ in dry["outputs"]["params"]["whole_partitions"]] == [
        "event_time_day=2024-05-0%d" % d for d in range(1, 9)
    ]
    assert all(rows == 10 for _, rows in dry["outputs"]["params"]["whole_partitions"])
    assert sorted(p for p, _ in dry["outputs"]["params"]["partial_partitions"]) == [
        "event_time_day=2024-05-09",
        "event_time_day=null",
    ]
    assert spark.table(ref(table_name)).count() == 102  # a dry run deletes nothing

    _, actions = maintain(spark, config, table_name, only=["retention"], clock=lambda: NOW)
    result = actions["retention"]
    assert result["status"] == "done", result["reason"]
    out = result["outputs"]
    assert out["rows_deleted"] == 86 and out["verified_by_snapshots"] is True
    whole, rest = out["commits"]
    assert whole["metadata_only"] is True and whole["data_files_removed"] >= 8 and whole["rows_removed"] == 80
    assert rest["metadata_only"] is False and rest["rows_removed"] == 6
    kept = sorted(r.id for r in spark.table(ref(table_name)).collect())
    assert kept == [i for i in ids if i in (1, 2) or i >= 906]  # rows without a time are kept

    # The next run finds nothing more to delete.
    _, again = maintain(spark, config, table_name, only=["retention"], clock=lambda: NOW)
    assert again["retention"]["outputs"]["rows_deleted"] == 0 and again["retention"]["outputs"]["commits"] == []


def test_the_budget_refuses_in_the_plan_and_again_on_the_exact_count(spark, warehouse, table_name):
    make_table(spark, table_name)
    _, planned = maintain(
        spark, config_for(warehouse, max_share=0.5), table_name, only=["retention"], clock=lambda: NOW
    )
    assert planned["retention"]["status"] == "skipped" and "refused" in planned["retention"]["reason"]
    # 80 rows in whole days pass a budget of 84 %; the exact count, 86 of 102, does not.
    _, counted = maintain(
        spark, config_for(warehouse, max_share=0.84), table_name, only=["retention"], clock=lambda: NOW
    )
    assert counted["retention"]["status"] == "failed" and "86 of 102 rows" in counted["retention"]["reason"]
    assert spark.table(ref(table_name)).count() == 102
