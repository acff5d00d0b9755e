"""Ingest ledger growth for scale_bench.py: the per-batch cost of the ledger (look up a batch's 1,000 objects,
record them pending, record them committed) as the ledger grows to 1,000,000 objects, for the day-partitioned
ledger looked up from the batch's event times next to the earlier layout (one unpartitioned table read whole on
every lookup), both holding the same rows, in the same Spark session.

The ledgers are filled (setup, not timed) as a steady feed leaves them after upkeep: 10,000 objects a day, one
compacted file per day, the newest day in the last 24 hours. Each batch's events are a minute old; 10 of its
1,000 objects were committed in the last day (redeliveries), so both layouts must answer the same 10. One batch
on each ledger warms the JVM up first; each point is the median of 5 batches.
"""

import statistics
import time

PER_DAY = 10000
DAY_MS = 86400 * 1000
BATCH, REPEATS = 1000, 5


def fill(spark, ref, start, stop, now_ms, partitioned):
    """Objects start..stop-1, object i recorded i / PER_DAY days ago (one file per day)."""
    rows = spark.range(start, stop).selectExpr(
        "concat('bkt/landing/obj-', id, '#etag') AS object_id",
        "'bkt' AS bucket",
        "concat('landing/obj-', id) AS object_key",
        "CAST(NULL AS STRING) AS version_id",
        "'etag' AS etag",
        "1024L AS size",
        "concat('b-fill-', id DIV 1000) AS batch_id",
        "'committed' AS status",
        "id AS target_snapshot_id",
        "timestamp_millis(%d - id * %d) AS recorded_at" % (now_ms - 60 * 1000, DAY_MS // PER_DAY),
    )
    if not partitioned:  # one file per day too, in time order
        rows = rows.repartitionByRange(max(1, (stop - start) // PER_DAY), "recorded_at")
    rows.sortWithinPartitions("recorded_at").writeTo(ref).append()


def one_batch(spark, ledger, round_no, size, since_ms):
    """Seconds of (lookup, records) for one batch, and what the lookup found."""
    from lakehouse_ops.ingest.ledger import COMMITTED, PENDING
    from lakehouse_ops.ingest.messages import S3Object

    recent = ["bkt/landing/obj-%d#etag" % i for i in range(0, 10 * 97, 97)]
    new = [S3Object(bucket="bkt", key="new/%d/%d/%d" % (size, round_no, i), etag="n") for i in range(BATCH - 10)]
    started = time.time()
    found = ledger.committed(recent + [o.identity for o in new], since_ms)
    lookup_s = time.time() - started
    started = time.time()
    ledger.record("b-%d-%d" % (size, round_no), new, PENDING)
    ledger.record("b-%d-%d" % (size, round_no), new, COMMITTED, round_no)
    return lookup_s, time.time() - started, found, dict(ledger.last_scan)


def ledger(spark, catalog, sizes):
    """Per size: median seconds per batch of both layouts, files each lookup read, and the ratio."""
    from lakehouse_ops.ingest.ledger import LEDGER_SCHEMA, Ledger

    now_ms = int(time.time() * 1000)
    ours = Ledger(spark, catalog, "bench.ledger_ours")
    ours.ensure()
    spark.sql("CREATE TABLE %s.bench.ledger_before (%s) USING iceberg" % (catalog, LEDGER_SCHEMA))
    before = Ledger(spark, catalog, "bench.ledger_before")
    points, filled = [], 0
    for layout, since in ((ours, now_ms - 60 * 1000), (before, None)):  # warm-up, not measured: JIT, first plans
        one_batch(spark, layout, -1, 0, since)
    for size in sizes:
        started = time.time()
        for layout, partitioned in ((ours, True), (before, False)):
            for chunk in range(filled, size, 250000):
                fill(spark, layout.ref, chunk, min(size, chunk + 250000), now_ms, partitioned)
        filled = size
        print("  filled both ledgers to %d objects in %.0f s" % (size, time.time() - started), flush=True)
        point = {"objects": size}
        for name, layout, since in (("ours", ours, now_ms - 60 * 1000), ("before", before, None)):
            runs = [one_batch(spark, layout, r, size, since) for r in range(REPEATS)]
            lookups, records = [r[0] for r in runs], [r[1] for r in runs]
            point[name] = {
                "lookup_s": round(statistics.median(lookups), 3),
                "record_s": round(statistics.median(records), 3),
                "batch_s": round(statistics.median(a + b for a, b in zip(lookups, records)), 3),
                "files_read": runs[-1][3].get("resultDataFiles"),
                "found": len(runs[-1][2]),
            }
        assert point["ours"]["found"] == point["before"]["found"] == 10, point
        point["lookup_speedup"] = round(point["before"]["lookup_s"] / point["ours"]["lookup_s"], 2)
        print("  ledger %8d %s" % (size, point), flush=True)
        points.append(point)
    if len(points) > 1:
        first, last = points[0]["ours"]["batch_s"], points[-1]["ours"]["batch_s"]
        for point in points:
            point["ours_batch_vs_smallest"] = round(point["ours"]["batch_s"] / first, 3)
        print("  ours per batch: %.3f s at %d, %.3f s at %d" % (first, sizes[0], last, sizes[-1]), flush=True)
    return points
