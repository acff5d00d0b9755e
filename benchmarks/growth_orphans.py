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


def compared(raw_s, rows, ours_s, report):
    """The raw procedure's time and deletions next to lakehouse-ops' (from its maintenance report)."""
    action = next(a for a in report["tables"][0]["actions"] if a["action"] == "remove_orphan_files")
    outputs = action.get("outputs", {})
    return {
        "raw_procedure_s": round(raw_s, 2),
        "lakehouse_ops_s": round(ours_s, 2),
        "speed_vs_raw": round(raw_s / ours_s, 2),
        "raw_deleted": len(rows),
        "ours_status": action["status"],
        "ours_deleted": outputs.get("deleted_files"),
        "ours_verified": outputs.get("verified"),
        "ours_deleted_with": outputs.get("deleted_with"),
    }


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
        point = dict({"candidates": size}, **compared(raw_s, rows, time.time() - started, report))
        print("  orphans %7d %s" % (size, point), flush=True)
        points.append(point)
    return points


def write_inventory(spark, path, root, orphans, entries, old_ms):
    """An S3 Inventory-style list (Parquet: file_path, last_modified) of `entries` files: the table's planted orphans
    and its live files, the rest other tables' files elsewhere in the warehouse (never to be touched; a sibling that
    shares the table's name as a prefix is kept out by the guards, see tests/spark/test_orphan_neighbors.py)."""
    own = spark.createDataFrame(
        [(os.path.join(dirpath, name),) for dirpath, _, names in os.walk(os.path.join(root, "data")) for name in names],
        "file_path string",
    )
    others = spark.range(0, max(0, entries - orphans)).selectExpr(
        "concat('%s/other_', id %% 1000, '/data/part-', id, '.parquet') AS file_path" % os.path.dirname(root)
    )
    own.unionByName(others).selectExpr("file_path", "timestamp_millis(%d) AS last_modified" % old_ms).write.mode(
        "overwrite"
    ).parquet(path)


def inventory(spark, config_data, catalog, entries, orphans=100000):
    """lakehouse-ops' removal reading an S3 Inventory-style list of `entries` files (of which `orphans` are this
    table's orphans) next to Iceberg's `remove_orphan_files` handed the same list as its `file_list_view`."""
    from lakehouse_ops.config import config_from_dict
    from lakehouse_ops.runner.maintain import MaintenanceRunner
    from lakehouse_ops.sqltext import Timestamp, literal
    from lakehouse_ops.units import iso_utc

    raw_name, ours_name = "bench.inventory_raw_%d" % entries, "bench.inventory_ours_%d" % entries
    orphans = min(orphans, entries // 2)
    now_ms = int(time.time() * 1000)
    started = time.time()
    lists = {}
    for name in (raw_name, ours_name):
        root = build(spark, catalog, name, orphans)
        lists[name] = os.path.join(os.path.dirname(root), "inventory-%s" % name.split(".")[1])
        write_inventory(spark, lists[name], root, orphans, entries, now_ms - 4 * DAY_S * 1000)
    print("  planted and listed %d of %d entries twice in %.0f s" % (orphans, entries, time.time() - started))
    view = "inventory_raw_view"
    spark.read.parquet(lists[raw_name]).createOrReplaceTempView(view)
    started = time.time()
    rows = spark.sql(
        "CALL %s.system.remove_orphan_files(table => '%s', older_than => %s, file_list_view => '%s')"
        % (catalog, raw_name, literal(Timestamp(iso_utc(now_ms - 3 * DAY_S * 1000))), view)
    ).collect()
    raw_s = time.time() - started
    data = dict(config_data)
    data["defaults"] = dict(
        data["defaults"], orphans=dict(data["defaults"]["orphans"], file_list={"path": lists[ours_name]})
    )
    config = config_from_dict(data)
    started = time.time()
    report = MaintenanceRunner(config, spark=spark, only=["remove_orphan_files"], clock=lambda: now_ms).run([ours_name])
    point = dict(
        {"list_entries": entries, "candidates": orphans}, **compared(raw_s, rows, time.time() - started, report)
    )
    print("  inventory %8d %s" % (entries, point), flush=True)
    return point
