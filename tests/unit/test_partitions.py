"""Partition tuples -> Spark SQL filters on source columns (pyiceberg objects, no Spark)."""

import datetime

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    TruncateTransform,
    YearTransform,
)
from pyiceberg.types import DateType, DoubleType, LongType, NestedField, StringType, TimestampType, TimestamptzType

from lakehouse_ops.health.partitions import in_catalog, partition_filter, partition_ranges

SCHEMA = Schema(
    NestedField(1, "ts", TimestamptzType(), required=False),
    NestedField(2, "local_ts", TimestampType(), required=False),
    NestedField(3, "d", DateType(), required=False),
    NestedField(4, "provider", StringType(), required=False),
    NestedField(5, "id", LongType(), required=False),
)
DAY_2024_05_01 = (datetime.date(2024, 5, 1) - datetime.date(1970, 1, 1)).days


def spec(*fields):
    return PartitionSpec(
        *[
            PartitionField(source_id=s, field_id=1000 + i, transform=t, name="p%d" % i)
            for i, (s, t) in enumerate(fields)
        ]
    )


def test_day_on_timestamptz_and_identity_string():
    s = spec((1, DayTransform()), (4, IdentityTransform()))
    assert partition_filter(s, SCHEMA, [DAY_2024_05_01, "edge-a"]) == (
        "(`ts` >= TIMESTAMP '2024-05-01 00:00:00Z' AND `ts` < TIMESTAMP '2024-05-02 00:00:00Z') AND "
        "(`provider` = 'edge-a')"
    )


def test_hour_month_year_and_ntz():
    hour = (datetime.datetime(2024, 5, 1, 13) - datetime.datetime(1970, 1, 1)).total_seconds() // 3600
    assert partition_filter(spec((2, HourTransform())), SCHEMA, [int(hour)]) == (
        "(`local_ts` >= TIMESTAMP_NTZ '2024-05-01 13:00:00' AND `local_ts` < TIMESTAMP_NTZ '2024-05-01 14:00:00')"
    )
    months = (2024 - 1970) * 12 + 11  # December 2024
    assert partition_filter(spec((3, MonthTransform())), SCHEMA, [months]) == (
        "(`d` >= DATE '2024-12-01' AND `d` < DATE '2025-01-01')"
    )
    assert partition_filter(spec((1, YearTransform())), SCHEMA, [54]) == (
        "(`ts` >= TIMESTAMP '2024-01-01 00:00:00Z' AND `ts` < TIMESTAMP '2025-01-01 00:00:00Z')"
    )


def test_nulls_numbers_quotes_and_unexpressible():
    assert partition_filter(spec((4, IdentityTransform())), SCHEMA, [None]) == "(`provider` IS NULL)"
    assert partition_filter(spec((5, IdentityTransform())), SCHEMA, [42]) == "(`id` = 42)"
    assert partition_filter(spec((4, IdentityTransform())), SCHEMA, ["o'hara"]) == "(`provider` = 'o\\'hara')"
    # Bucket and truncate partitions: Iceberg's own functions, in the catalog named when the filter is used.
    bucket = partition_filter(spec((3, DayTransform()), (5, BucketTransform(16))), SCHEMA, [DAY_2024_05_01, 3])
    assert bucket.endswith("(__catalog__.system.bucket(16, `id`) = 3)")
    assert in_catalog(bucket, "lake").endswith("(`lake`.system.bucket(16, `id`) = 3)")
    trunc = partition_filter(spec((4, TruncateTransform(2))), SCHEMA, ["ed"])
    assert in_catalog(trunc, "lake") == "(`lake`.system.truncate(2, `provider`) = 'ed')"
    assert partition_filter(PartitionSpec(), SCHEMA, []) is None


def test_a_partition_at_the_end_of_time_has_no_upper_bound_and_non_finite_numbers_no_filter():
    """A 9999-12-31 "valid to" sentinel: its day, month and year end past year 9999, where no date exists."""
    last_day = (datetime.date(9999, 12, 31) - datetime.date(1970, 1, 1)).days
    assert partition_filter(spec((3, DayTransform())), SCHEMA, [last_day]) == "(`d` >= DATE '9999-12-31')"
    assert partition_filter(spec((3, MonthTransform())), SCHEMA, [(9999 - 1970) * 12 + 11]) == (
        "(`d` >= DATE '9999-12-01')"
    )
    assert partition_filter(spec((1, YearTransform())), SCHEMA, [9999 - 1970]) == (
        "(`ts` >= TIMESTAMP '9999-01-01 00:00:00Z')"
    )
    assert partition_filter(spec((1, YearTransform())), SCHEMA, [20000]) is None  # no such year: no filter
    ranges = partition_ranges(spec((3, DayTransform())), SCHEMA, [last_day])
    assert ranges["d"][0] == 253402214400000 and ranges["d"][1] > ranges["d"][0]
    doubles = Schema(NestedField(1, "f", DoubleType(), required=False))
    for value in (float("nan"), float("inf"), float("-inf")):
        assert partition_filter(spec((1, IdentityTransform())), doubles, [value]) is None
    assert partition_filter(spec((1, IdentityTransform())), doubles, [1.5]) == "(`f` = 1.5)"
