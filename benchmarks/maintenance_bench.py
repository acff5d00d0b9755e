"""Maintenance benchmark: a streaming-like table before and after policy-driven maintenance.

    python benchmarks/maintenance_bench.py [--commits 100] [--rows-per-commit 50000] [--out benchmarks/out]

Writes <out>/maintenance.json and <out>/maintenance.png. Measured in one run, side by side:
- bytes and files scanned (Iceberg's scan metrics from Spark) and wall time, for a one-hour time-range query and a
  single-customer query, before and after maintenance with a sort policy on (event_time, customer_id);
- manifest count and Iceberg scan-planning time before and after the manifest rewrite;
- compaction throughput next to a plain Spark read + Parquet write of the same snapshot;
- health-scan time through pyiceberg next to the same figures through Spark metadata tables, each in a fresh
  process (the Spark one includes session start-up);
- layouts from the same fragmented snapshot: z-order on (event_time, customer_id), sort by customer_id within the
  day partition, sort by hours(event_time) then customer_id; bytes scanned by both queries for each;
- the statistics action (NDV in Puffin) next to a plain approx_count_distinct query;
- retention (3.5 of the 7 days) in rows deleted per second next to a plain DELETE of the same rows.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))  # tests/table_factory.py: the streaming-like table generator

from lakehouse_ops.config import config_from_dict  # noqa: E402
from lakehouse_ops.engine import build_session  # noqa: E402
from lakehouse_ops.health import open_tables, read_health  # noqa: E402
from lakehouse_ops.maintenance import compaction  # noqa: E402
from lakehouse_ops.maintenance.verify import verify_rewrites  # noqa: E402
from lakehouse_ops.runner import MaintenanceRunner  # noqa: E402
from lakehouse_ops.sqltext import table_ref  # noqa: E402

from maintenance_parts import layouts, retention_rate, statistics_time  # noqa: E402
from table_factory import create_streaming_table  # noqa: E402

TABLE = "bench.events"
CATALOG = "bench"
HOUR_QUERY = (
    "SELECT count(*) AS n, sum(bytes_sent) AS b FROM {t} WHERE event_time >= TIMESTAMP '2024-05-04 10:00:00' "
    "AND event_time < TIMESTAMP '2024-05-04 11:00:00'"
)
CUSTOMER_QUERY = "SELECT count(*) AS n, sum(bytes_sent) AS b FROM {t} WHERE customer_id = 'c00042'"


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "java": java,
        "platform": platform.platform(),
    }


def _children(node):
    name = node.nodeName()
    if "AdaptiveSparkPlan" in name:
        return [node.executedPlan()]
    if "QueryStage" in name:
        return [node.plan()]
    kids = node.children()
    return [kids.apply(i) for i in range(kids.size())]


def scan_metrics(df):
    """Collect `df` and return the Iceberg BatchScan node's metrics plus the wall time."""
    started = time.time()
    df.collect()
    wall = time.time() - started
    stack = [df._jdf.queryExecution().executedPlan()]
    while stack:
        node = stack.pop()
        if node.nodeName().startswith("BatchScan"):
            metrics = node.metrics()
            keys = metrics.keys().iterator()
            out = {}
            while keys.hasNext():
                key = keys.next()
                out[key] = metrics.apply(key).value()
            out["wall_s"] = wall
            return out
        stack.extend(_children(node))
    raise RuntimeError("no Iceberg scan in the plan")


def measure_query(spark, sql, runs=3):
    samples = [scan_metrics(spark.sql(sql)) for _ in range(runs)]
    first = samples[0]
    return {
        "bytes_scanned": int(first.get("totalDataFileSize", 0)),
        "files_scanned": int(first.get("resultDataFiles", 0)),
        "files_skipped": int(first.get("skippedDataFiles", 0)),
        "manifests_scanned": int(first.get("scannedDataManifests", 0)),
        "manifests_skipped": int(first.get("skippedDataManifests", 0)),
        "planning_ms": statistics.median(s.get("totalPlanningDuration", 0) for s in samples),
        "wall_s": round(statistics.median(s["wall_s"] for s in samples), 3),
    }


HEALTH_PYICEBERG = textwrap.dedent("""
    import json, sys, time
    t0 = time.time()
    sys.path.insert(0, {root!r})
    from lakehouse_ops.config import config_from_dict
    from lakehouse_ops.health import open_tables, read_health
    config = config_from_dict({config!r})
    h = read_health(open_tables(config.catalog).load({table!r}), {table!r}, config.policy_for({table!r}))
    print(json.dumps({{"seconds": time.time() - t0, "data_files": h.data_files, "data_bytes": h.data_bytes,
                      "small_files": h.small_files, "manifests": h.manifests, "snapshots": h.snapshots,
                      "partitions": len(h.partitions)}}))
""")

HEALTH_SPARK = textwrap.dedent("""
    import json, sys, time
    t0 = time.time()
    sys.path.insert(0, {root!r})
    from lakehouse_ops.config import config_from_dict
    from lakehouse_ops.engine import build_session
    config = config_from_dict({config!r})
    spark = build_session(config)
    t = "{catalog}.{table}"
    small = {small}
    f = spark.sql("SELECT count(*) n, sum(file_size_in_bytes) b, sum(CASE WHEN file_size_in_bytes < %d THEN 1 "
                  "ELSE 0 END) s FROM %s.files WHERE content = 0" % (small, t)).collect()[0]
    m = spark.sql("SELECT count(*) n FROM %s.manifests" % t).collect()[0].n
    s = spark.sql("SELECT count(*) n FROM %s.snapshots" % t).collect()[0].n
    p = spark.sql("SELECT partition, count(*) n, sum(file_size_in_bytes) b, sum(CASE WHEN file_size_in_bytes < %d "
                  "THEN 1 ELSE 0 END) s FROM %s.files WHERE content = 0 GROUP BY partition" % (small, t)).collect()
    print(json.dumps({{"seconds": time.time() - t0, "data_files": f.n, "data_bytes": f.b, "small_files": f.s,
                      "manifests": m, "snapshots": s, "partitions": len(p)}}))
""")


def run_probe(code):
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.time() - started, 3)
    return result


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(23, 4.8))
    q = results["queries"]
    labels = ["1-hour range", "1 customer"]
    before = [q["time_range"]["before"]["bytes_scanned"] / 2**20, q["customer"]["before"]["bytes_scanned"] / 2**20]
    after = [q["time_range"]["after"]["bytes_scanned"] / 2**20, q["customer"]["after"]["bytes_scanned"] / 2**20]
    x = range(len(labels))
    axes[0].bar([i - 0.2 for i in x], before, 0.4, label="before")
    axes[0].bar([i + 0.2 for i in x], after, 0.4, label="after")
    axes[0].set_xticks(list(x))
    axes[0].set_xticklabels(labels)
    axes[0].set_ylabel("MiB scanned")
    axes[0].set_title("bytes scanned per query")
    axes[0].legend()
    m = results["manifests"]
    axes[1].bar(["before", "after"], [m["planning_ms_before"], m["planning_ms_after"]], color=["C0", "C1"])
    axes[1].set_title("scan planning (ms)\n%d -> %d manifests" % (m["count_before"], m["count_after"]))
    c = results["compaction"]
    axes[2].bar(["compaction", "plain copy"], [c["compaction_mb_s"], c["plain_copy_mb_s"]], color=["C2", "C7"])
    axes[2].set_title("throughput (MB/s), ratio %.2f" % c["ratio"])
    h = results["health_scan"]
    axes[3].bar(["pyiceberg", "Spark (incl. start-up)"], [h["pyiceberg_s"], h["spark_s"]], color=["C2", "C7"])
    axes[3].set_title("health scan (s), %.1fx faster" % h["speedup"])
    shown = {k: v for k, v in results["layouts"].items() if "time_range" in v}
    names = list(shown)
    for offset, query, label in ((-0.2, "time_range", "1-hour range"), (0.2, "customer", "1 customer")):
        mib = [shown[n][query]["bytes_scanned"] / 2**20 for n in names]
        axes[4].bar([i + offset for i in range(len(names))], mib, 0.4, label=label)
    axes[4].set_xticks(list(range(len(names))))
    axes[4].set_xticklabels([textwrap.fill(n, 16) for n in names], fontsize=7)
    axes[4].set_title("MiB scanned per layout (same rows)")
    axes[4].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--rows-per-commit", type=int, default=50000)
    parser.add_argument("--files-per-commit", type=int, default=6)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    args = parser.parse_args(argv)

    out = os.path.abspath(args.out)
    warehouse = os.path.join(out, "warehouse")
    shutil.rmtree(warehouse, ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    raw = {
        "catalog": {"name": CATALOG, "type": "hadoop", "warehouse": warehouse},
        "spark": {
            "mode": "local",
            "master": "local[*]",
            "conf": {
                "spark.driver.memory": "6g",
                "spark.sql.shuffle.partitions": "8",
                "spark.sql.iceberg.aggregate-push-down.enabled": "false",
            },
        },
        "defaults": {
            "target_file_size": "1MB",
            "compaction": {
                "strategy": "sort",
                "sort_order": ["event_time ASC NULLS LAST", "customer_id ASC NULLS LAST"],
                "max_concurrent_file_group_rewrites": 4,
                "partial_progress": False,
            },
            "manifests": {"min_manifests": 10},
            "orphans": {"enabled": False},
        },
    }
    config = config_from_dict(raw)
    spark = build_session(config)
    ref = table_ref(CATALOG, TABLE)
    results = {"machine": machine(), "parameters": vars(args)}

    started = time.time()
    create_streaming_table(
        spark,
        CATALOG,
        TABLE,
        days=args.days,
        commits=args.commits,
        rows_per_commit=args.rows_per_commit,
        files_per_commit=args.files_per_commit,
        late_fraction=0.15,
        customers=2000,
    )
    tables = open_tables(config.catalog)
    policy = config.policy_for(TABLE)
    before = read_health(tables.load(TABLE), TABLE, policy)
    results["table"] = {
        "generate_s": round(time.time() - started, 1),
        "data_files": before.data_files,
        "data_bytes": before.data_bytes,
        "records": before.records,
        "partitions": len(before.partitions),
        "manifests": before.manifests,
        "snapshots": before.snapshots,
    }
    print("generated", json.dumps(results["table"]), flush=True)

    # Health of the fragmented table, each path in a fresh process.
    small = int(policy.target_file_size * policy.compaction.small_file_threshold)
    py = run_probe(HEALTH_PYICEBERG.format(root=ROOT, config=raw, table=TABLE))
    sp = run_probe(HEALTH_SPARK.format(root=ROOT, config=raw, table=TABLE, catalog=CATALOG, small=small))
    same = all(
        py[k] == sp[k] for k in ("data_files", "data_bytes", "small_files", "manifests", "snapshots", "partitions")
    )
    results["health_scan"] = {
        "pyiceberg_s": py["process_seconds"],
        "spark_s": sp["process_seconds"],
        "speedup": round(sp["process_seconds"] / py["process_seconds"], 2),
        "same_figures": same,
        "pyiceberg": py,
        "spark": sp,
    }
    print("health", json.dumps(results["health_scan"]), flush=True)

    q_before = {
        "time_range": measure_query(spark, HOUR_QUERY.format(t=ref)),
        "customer": measure_query(spark, CUSTOMER_QUERY.format(t=ref)),
    }

    # Manifest rewrite alone, so its effect on planning is measured by itself.
    planning_before = [measure_query(spark, HOUR_QUERY.format(t=ref), runs=5)["planning_ms"]]
    MaintenanceRunner(config, spark=spark, catalog_tables=tables, only=["rewrite_manifests"]).run([TABLE])
    mid = read_health(tables.load(TABLE), TABLE, policy)
    planning_after = [measure_query(spark, HOUR_QUERY.format(t=ref), runs=5)["planning_ms"]]
    results["manifests"] = {
        "count_before": before.manifests,
        "count_after": mid.manifests,
        "planning_ms_before": planning_before[0],
        "planning_ms_after": planning_after[0],
        "speedup": round(planning_before[0] / max(planning_after[0], 1e-9), 2),
    }
    print("manifests", json.dumps(results["manifests"]), flush=True)

    # Baseline: a plain Spark copy (read + Parquet write) of the same snapshot compaction will rewrite.
    copy_dir = os.path.join(out, "plain-copy")
    shutil.rmtree(copy_dir, ignore_errors=True)
    snap = (
        spark.sql(
            "SELECT snapshot_id FROM %s.history WHERE is_current_ancestor ORDER BY made_current_at DESC LIMIT 1" % ref
        )
        .collect()[0]
        .snapshot_id
    )

    def plain_copy():
        shutil.rmtree(copy_dir, ignore_errors=True)
        began = time.time()
        spark.read.option("snapshot-id", snap).table(ref).write.parquet(copy_dir)
        return time.time() - began

    copy_runs = [plain_copy()]

    # Compaction exactly as maintenance plans it (sort policy); timed around the procedure call.
    health_now = read_health(tables.load(TABLE), TABLE, policy)
    plan = compaction.plan(policy, health_now)
    started = time.time()
    outputs = compaction.execute(spark, CATALOG, TABLE, plan)
    compaction_s = time.time() - started
    rewritten = outputs["rewritten_bytes_count"]
    # The runner follows every rewrite with this row-count + checksum comparison; timed on its own.
    started = time.time()
    verification = verify_rewrites(spark, CATALOG, TABLE, snap, where=plan.params.where)
    verification_s = time.time() - started
    # The baseline runs again after compaction (same snapshot, warm JVM); the faster run counts.
    copy_runs.append(plain_copy())
    copy_s = min(copy_runs)
    results["compaction"] = {
        "strategy": plan.params.strategy,
        "sort_order": plan.params.sort_order,
        "rewritten_files": outputs["rewritten_data_files_count"],
        "added_files": outputs["added_data_files_count"],
        "rewritten_bytes": rewritten,
        "compaction_s": round(compaction_s, 2),
        "plain_copy_s": round(copy_s, 2),
        "plain_copy_runs_s": [round(x, 2) for x in copy_runs],
        "verification_s": round(verification_s, 2),
        "verified": verification["verified"],
        "compaction_mb_s": round(rewritten / 1e6 / compaction_s, 2),
        "plain_copy_mb_s": round(rewritten / 1e6 / copy_s, 2),
    }
    results["compaction"]["ratio"] = round(
        results["compaction"]["compaction_mb_s"] / results["compaction"]["plain_copy_mb_s"], 3
    )
    print("compaction", json.dumps(results["compaction"]), flush=True)

    # The rest of the policy (properties, verification-covered rewrites already done, snapshot expiry).
    final_report = MaintenanceRunner(config, spark=spark, catalog_tables=tables).run([TABLE])
    results["maintenance_actions"] = [
        {k: a[k] for k in ("action", "status", "duration_s")} for a in final_report["tables"][0]["actions"]
    ]

    q_after = {
        "time_range": measure_query(spark, HOUR_QUERY.format(t=ref)),
        "customer": measure_query(spark, CUSTOMER_QUERY.format(t=ref)),
    }
    results["queries"] = {}
    for name in ("time_range", "customer"):
        b, a = q_before[name], q_after[name]
        results["queries"][name] = {
            "before": b,
            "after": a,
            "bytes_cut_pct": round(100.0 * (1 - a["bytes_scanned"] / max(b["bytes_scanned"], 1)), 1),
        }
    print("queries", json.dumps(results["queries"]), flush=True)

    queries = {"time_range": HOUR_QUERY, "customer": CUSTOMER_QUERY}
    results["layouts"] = {
        "sort(event_time, customer_id)": dict(
            q_after, compaction_s=results["compaction"]["compaction_s"], data_files=results["compaction"]["added_files"]
        )
    }
    results["layouts"].update(layouts(spark, raw, tables, CATALOG, TABLE, snap, queries, measure_query))
    for figures in results["layouts"].values():
        for name in queries:
            if name in figures:
                cut = 1 - figures[name]["bytes_scanned"] / max(q_before[name]["bytes_scanned"], 1)
                figures[name]["bytes_cut_pct"] = round(100.0 * cut, 1)
    print("layouts", json.dumps(results["layouts"]), flush=True)
    results["statistics"] = statistics_time(spark, raw, tables, CATALOG, TABLE, ["customer_id", "event_time"])
    print("statistics", json.dumps(results["statistics"]), flush=True)
    results["retention"] = retention_rate(spark, raw, tables, CATALOG, TABLE)
    print("retention", json.dumps(results["retention"]), flush=True)
    spark.stop()

    results["targets"] = {
        "time_range_bytes_cut_ge_80pct": results["queries"]["time_range"]["bytes_cut_pct"] >= 80,
        "planning_ge_3x": results["manifests"]["speedup"] >= 3,
        "compaction_ge_0.8x_copy": results["compaction"]["ratio"] >= 0.8,
        "health_ge_5x": results["health_scan"]["speedup"] >= 5,
        "one_layout_cuts_both_queries_ge_80pct": [
            name
            for name, f in results["layouts"].items()
            if all(f.get(q, {}).get("bytes_cut_pct", 0) >= 80 for q in queries)
        ],
    }
    with open(os.path.join(out, "maintenance.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    chart(results, os.path.join(out, "maintenance.png"))
    print(json.dumps(results["targets"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
