"""The retention plan (pure): partitions sorted by their time range against the horizon, the budget, and the
partition ranges health computes."""

import datetime

from lakehouse_ops.health.scan import PartitionHealth, TableHealth
from lakehouse_ops.maintenance import retention
from lakehouse_ops.maintenance.base import params_of

from test_planning import NOW, policy

DAY = 86400 * 1000


def day_part(days_ago, rows, column="event_time"):
    start = NOW - days_ago * DAY - (NOW % DAY)
    return PartitionHealth(
        partition="d-%d" % days_ago, records=rows, data_files=1, data_bytes=rows, ranges={column: [start, start + DAY]}
    )


def health(parts):
    return TableHealth(
        table="db.t",
        location="/wh/db/t",
        format_version=2,
        snapshot_id=1,
        records=sum(p.records for p in parts),
        partitions=parts,
    )


def test_whole_partitions_are_deleted_by_metadata_and_the_horizon_day_row_by_row():
    parts = [day_part(d, 10) for d in range(0, 12)]  # today and the 11 days before
    plan = retention.plan(policy(retention={"column": "event_time", "keep_days": 8.5}), health(parts), NOW)
    p = params_of(plan, retention.RetentionParams)
    assert plan.run and p.horizon_ms == NOW - int(8.5 * DAY)
    # NOW is 8 hours into its day: the horizon, 8.5 days back, falls 4 hours before the end of d-9.
    assert [name for name, _ in p.whole_partitions] == ["d-10", "d-11"]
    assert [name for name, _ in p.partial_partitions] == ["d-9"]  # the day holding the horizon
    assert p.aligned_ms == NOW - (NOW % DAY) - 9 * DAY  # the end of d-10: everything before it goes by metadata
    assert "2 partition(s) wholly older than 8.5 days by event_time (20 rows" in plan.reason
    assert plan.partitions == ("d-10", "d-11", "d-9")


def test_a_table_not_partitioned_by_time_is_deleted_row_by_row_and_nothing_is_planned_without_a_policy():
    parts = [PartitionHealth(partition="bucket=1", records=5), PartitionHealth(partition="bucket=2", records=5)]
    plan = retention.plan(policy(retention={"column": "event_time", "keep_days": 30}), health(parts), NOW)
    p = params_of(plan, retention.RetentionParams)
    assert plan.run and p.aligned_ms is None and len(p.partial_partitions) == 2
    assert not retention.plan(policy(), health(parts), NOW).run


def test_the_budget_refuses_before_anything_is_deleted_and_young_tables_are_left_alone():
    parts = [day_part(d, 10) for d in range(0, 4)]
    refused = retention.plan(
        policy(retention={"column": "event_time", "keep_days": 0.5, "max_share": 0.25}), health(parts), NOW
    )
    assert not refused.run and "refused" in refused.reason and "20 of 40 rows (50.0 %)" in refused.reason
    young = retention.plan(policy(retention={"column": "event_time", "keep_days": 30}), health(parts), NOW)
    assert not young.run and "no partition holds rows older than 30 days" in young.reason


def test_literals_of_the_column_type():
    moment = int(datetime.datetime(2024, 5, 13, 10, 30, tzinfo=datetime.timezone.utc).timestamp() * 1000)
    assert retention.time_literal("timestamp", moment) == "TIMESTAMP '2024-05-13 10:30:00.000000Z'"
    assert retention.time_literal("timestamp_ntz", moment) == "TIMESTAMP_NTZ '2024-05-13 10:30:00.000000'"
    assert retention.time_literal("date", moment) == "DATE '2024-05-13'"


def test_partition_ranges_of_time_transforms():
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import BucketTransform, DayTransform, HourTransform, IdentityTransform, MonthTransform
    from pyiceberg.types import DateType, NestedField, StringType, TimestamptzType

    from lakehouse_ops.health.partitions import partition_ranges

    schema = Schema(
        NestedField(1, "ts", TimestamptzType()), NestedField(2, "d", DateType()), NestedField(3, "s", StringType())
    )
    spec = PartitionSpec(
        PartitionField(1, 1000, DayTransform(), "ts_day"),
        PartitionField(1, 1001, HourTransform(), "ts_hour"),
        PartitionField(2, 1002, IdentityTransform(), "d"),
        PartitionField(3, 1003, BucketTransform(4), "s_bucket"),
    )
    day = 19856  # 2024-05-13
    ranges = partition_ranges(spec, schema, [day, day * 24 + 10, datetime.date(2024, 5, 1), 2])
    start = day * 86400 * 1000
    assert ranges["ts"] == [start + 10 * 3600 * 1000, start + 11 * 3600 * 1000]  # day and hour narrow each other
    assert ranges["d"] == [19844 * 86400 * 1000, 19845 * 86400 * 1000]
    assert "s" not in ranges
    month = partition_ranges(PartitionSpec(PartitionField(1, 1000, MonthTransform(), "m")), schema, [652])
    assert month["ts"][0] == int(datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000)
