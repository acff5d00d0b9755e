"""Orphan removal growth for scale_bench.py: 10,000 to 1,000,000 candidate orphans removed by lakehouse-ops (the
dry run, the location and budget guards, the real run on exactly the checked candidates, then the check that
every deleted file is gone and unreferenced) next to Iceberg's own `remove_orphan_files` on an identical table,
in the same Spark session.

Each table (setup, not timed) holds one small committed write and N planted files, 1 byte each, spread over 100
directories under its data directory, all four days old: what failed or killed writers leave behind. Both runs
take every file older than three days.
"""

import os
import time

DAY_S = 24 * 3600
DIRECTORIES = 100


def build(spark, catalog, name, orphans):
    spark.sql("CREATE TABLE %s.%s (id BIGINT) USING iceberg" % (catalog, name))
    spark.sql("INSERT INTO %s.%s VALUES (1), (2)" % (catalog, name))
    location = spark.sql("DESCRIBE TABLE EXTENDED %s.%s" % (catalog, name)).where("col_name = 'Location'")
    root = location.collect()[0].data_type.replace("file:", "", 1)
    old = time.time() - 4 * DAY_S
    for d in range(DIRECTORIES):
        os.makedirs(os.path.join(root, "data", "failed-%03d" % d), exist_ok=True)
    for i in range(orphans):
        path = os.path.join(root, "data", "failed-%03d" % (i % DIRECTORIES), "part-%07d.parquet" % i)
        with open(path, "wb") as handle:
            handle.write(b"x")
        os.utime(path, (old, old))
    return root


def orphans(spark, config, catalog, sizes):
    """Per size: seconds of the raw procedure and of lakehouse-ops' removal, and what each deleted."""
    from lakehouse_ops.runner.maintain import MaintenanceRunner
    from lakehouse_ops.sqltext import Timestamp, literal
    from lakehouse_ops.units import iso_utc

    points = []
    for size in sizes:
        raw_name, ours_name = "bench.orphans_raw_%d" % size, "bench.orphans_ours_%d" % size
        started = time.time()
        build(spark, catalog, raw_name, size)
        build(spark, catalog, ours_name, size)
        print("  planted %d orphans in each of two tables in %.0f s" % (size, time.time() - started), flush=True)
        now_ms = int(time.time() * 1000)
        started = time.time()
        rows = spark.sql(
            "CALL %s.system.remove_orphan_files(table => '%s', older_than => %s)"
            % (catalog, raw_name, literal(Timestamp(iso_utc(now_ms - 3 * DAY_S * 1000))))
        ).collect()
        raw_s = time.time() - started
        started = time.time()
        report = MaintenanceRunner(config, spark=spark, only=["remove_orphan_files"], clock=lambda: now_ms).run(
            [ours_name]
        )
        ours_s = time.time() - started
        action = next(a for a in report["tables"][0]["actions"] if a["action"] == "remove_orphan_files")
        outputs = action.get("outputs", {})
        point = {
            "candidates": size,
            "raw_procedure_s": round(raw_s, 2),
            "lakehouse_ops_s": round(ours_s, 2),
            "speed_vs_raw": round(raw_s / ours_s, 2),
            "raw_deleted": len(rows),
            "ours_status": action["status"],
            "ours_deleted": outputs.get("deleted_files"),
            "ours_verified": outputs.get("verified"),
        }
        print("  orphans %7d %s" % (size, point), flush=True)
        points.append(point)
    return points
