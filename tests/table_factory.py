"""Tables for the tests and benchmarks: a streaming-like Iceberg table, and orphan files planted in a table.

The generator commits the way streaming writers do: many small appends, each spraying small files over the
current day and a few late rows over older days, with manifest merging off so manifests pile up.
"""

import os
import time

from lakehouse_ops.sqltext import table_ref

DEMO_SCHEMA = "event_time TIMESTAMP, customer_id STRING, provider STRING, status INT, bytes_sent BIGINT, url STRING"
BASE_DAY = "2024-05-01"


def create_streaming_table(
    spark,
    catalog,
    table,
    days=3,
    commits=12,
    rows_per_commit=2000,
    files_per_commit=4,
    late_fraction=0.1,
    customers=500,
    replace=True,
    extra_properties=None,
):
    """Create `table` day-partitioned on event_time and fill it with `commits` small appends.

    Commit i writes mostly into day (i mod days), plus `late_fraction` of rows spread over earlier days.
    """
    ref = table_ref(catalog, table)
    namespace = table.rsplit(".", 1)[0]
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(catalog, namespace))
    if replace:
        spark.sql("DROP TABLE IF EXISTS %s PURGE" % ref)
    props = {"commit.manifest-merge.enabled": "false", "write.distribution-mode": "none", "format-version": "2"}
    props.update(extra_properties or {})
    spark.sql(
        "CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg PARTITIONED BY (days(event_time)) "
        "TBLPROPERTIES (%s)" % (ref, DEMO_SCHEMA, ", ".join("'%s'='%s'" % kv for kv in sorted(props.items())))
    )
    for i in range(commits):
        day = i % days
        df = spark.range(rows_per_commit).selectExpr(
            # Mostly "today"; late rows land on an earlier day chosen at random.
            "CASE WHEN rand(%d) < %f AND %d > 0 THEN CAST(floor(rand(%d) * %d) AS INT) ELSE %d END AS day_off"
            % (i, late_fraction, day, i + 7, max(day, 1), day),
            "id",
        )
        df = df.selectExpr(
            "timestamp_seconds(unix_timestamp(TIMESTAMP '%s 00:00:00') + day_off * 86400 "
            "+ CAST(rand(%d) * 86399 AS BIGINT)) AS event_time" % (BASE_DAY, i + 11),
            "concat('c', lpad(CAST(CAST(rand(%d) * %d AS INT) AS STRING), 5, '0')) AS customer_id"
            % (i + 13, customers),
            "element_at(array('edge-a', 'edge-b', 'edge-c'), CAST(id % 3 AS INT) + 1) AS provider",
            "CAST(element_at(array(200, 200, 200, 304, 404, 500), CAST(id % 6 AS INT) + 1) AS INT) AS status",
            "CAST(rand(%d) * 100000 AS BIGINT) AS bytes_sent" % (i + 17),
            "concat('/assets/', CAST(id % 997 AS STRING), '.jpg') AS url",
        )
        df.repartition(files_per_commit).writeTo(ref).append()
    return ref


def plant_orphan(location, name="orphan-from-failed-job.parquet", age_hours=120.0, size=4096):
    """Write a file no snapshot references under the table's data directory, aged `age_hours`."""
    path = os.path.join(location, "data", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"\0" * size)
    stamp = time.time() - age_hours * 3600
    os.utime(path, (stamp, stamp))
    return path
