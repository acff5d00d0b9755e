"""Fleet planning benchmark: `plan --all` over a local catalog of many tables, next to the same planning through
Spark, each in a fresh process.

    python benchmarks/fleet_bench.py [--tables 60] [--out benchmarks/out]

Creates --tables Iceberg tables in a local Hadoop-catalog warehouse (setup, not timed): a mix of fragmented
streaming-like tables (up to 8 small appends over 3 day partitions) and freshly written healthy ones. Then, in the
same run:
- `lakehouse-ops plan --all --json` in a new process: every table's health and plan through pyiceberg, 8 threads;
  the process must never import pyspark (checked) - no JVM;
- the same figures through Spark in a new process: session start-up, then per table the files, manifests and
  snapshots metadata tables and the per-partition grouping planning needs, then the same plans.
Writes <out>/fleet.json and <out>/fleet.png.
"""

import argparse
import json
import os
import random
import shutil
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))  # tests/table_factory.py: the streaming-like table generator
sys.path.insert(0, HERE)

from maintenance_bench import machine, run_probe  # noqa: E402

CATALOG = "fleet"

PLAN_ALL = textwrap.dedent("""
    import json, sys, time
    t0 = time.time()
    sys.path.insert(0, {root!r})
    from click.testing import CliRunner
    from lakehouse_ops.cli import cli
    result = CliRunner().invoke(cli, ["--config", {config!r}, "plan", "--all", "--json"])
    report = json.loads(result.stdout[result.stdout.index("{{"):])
    print(json.dumps({{"seconds": time.time() - t0, "tables": report["count"], "needy": report["needy"],
                      "in_process_s": report["duration_s"], "pyspark_imported": "pyspark" in sys.modules,
                      "top": [e["table"] for e in report["tables"][:5]]}}))
""")

PLAN_SPARK = textwrap.dedent("""
    import json, sys, time
    t0 = time.time()
    sys.path.insert(0, {root!r})
    from lakehouse_ops.config import load_config
    from lakehouse_ops.engine import build_session
    config = load_config({config!r})
    spark = build_session(config)
    started = time.time()
    needy = 0
    tables = [r.namespace + "." + r.tableName for ns in spark.sql("SHOW NAMESPACES IN {catalog}").collect()
              for r in spark.sql("SHOW TABLES IN {catalog}.%s" % ns.namespace).collect()]
    for name in tables:
        t = "{catalog}." + name
        policy = config.policy_for(name)
        small = int(policy.target_file_size * policy.compaction.small_file_threshold)
        parts = spark.sql("SELECT partition, count(*) n, sum(CASE WHEN file_size_in_bytes < %d THEN 1 ELSE 0 END) s "
                          "FROM %s.files WHERE content = 0 GROUP BY partition" % (small, t)).collect()
        manifests = spark.sql("SELECT count(*) n FROM %s.manifests" % t).collect()[0].n
        snaps = spark.sql("SELECT count(*) n, (unix_timestamp() - unix_timestamp(min(committed_at))) / 3600 h "
                          "FROM %s.snapshots" % t).collect()[0]
        c, s = policy.compaction, policy.snapshots
        if any(p.s >= c.min_input_files and p.s >= c.min_small_file_ratio * p.n for p in parts) or \\
                manifests > policy.manifests.max_manifests or \\
                (snaps.n > s.retain_last and snaps.h > s.max_age_days * 24):
            needy += 1
    print(json.dumps({{"seconds": time.time() - t0, "tables": len(tables), "needy": needy,
                      "after_startup_s": time.time() - started}}))
""")


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = ["plan --all\n(pyiceberg, no JVM)", "same planning\nthrough Spark"]
    values = [results["plan_all"]["process_seconds"], results["spark"]["process_seconds"]]
    ax.bar(labels, values, color=["C2", "C7"])
    ax.set_ylabel("seconds, fresh process")
    ax.set_title("%d tables: %.1fx faster" % (results["tables"], results["ratio"]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=60)
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "fleet-work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    warehouse = os.path.join(work, "warehouse")
    config_path = os.path.join(work, "fleet.yaml")
    with open(config_path, "w") as handle:
        json.dump(
            {
                "catalog": {"name": CATALOG, "type": "hadoop", "warehouse": warehouse},
                "spark": {"mode": "local", "master": "local[2]"},
                # Properties are left alone here so "needy" means files, manifests or snapshots, as below.
                "defaults": {"target_file_size": "8MB", "properties": {"enabled": False}},
                "tables": [{"match": "*"}],
            },
            handle,
        )

    from lakehouse_ops.config import load_config
    from lakehouse_ops.engine import build_session

    from table_factory import create_streaming_table

    config = load_config(config_path)
    spark = build_session(config)
    rng = random.Random(3)
    started = time.time()
    for i in range(args.tables):
        commits = rng.choice([1, 1, 2, 6, 8])
        create_streaming_table(
            spark, CATALOG, "ns%d.t%03d" % (i % 5, i), days=3, commits=commits, rows_per_commit=200, files_per_commit=2
        )
    print("%d tables created in %.0f s" % (args.tables, time.time() - started), flush=True)
    spark.stop()

    fmt = {"root": ROOT, "config": config_path, "catalog": CATALOG}
    plan_all = run_probe(PLAN_ALL.format(**fmt))
    print(
        "plan --all: %.2f s (in-process %.2f s), %d tables, %d needy, pyspark imported: %s"
        % (
            plan_all["process_seconds"],
            plan_all["in_process_s"],
            plan_all["tables"],
            plan_all["needy"],
            plan_all["pyspark_imported"],
        ),
        flush=True,
    )
    through_spark = run_probe(PLAN_SPARK.format(**fmt))
    print(
        "through Spark: %.2f s (%.2f s after start-up), %d tables, %d needy"
        % (
            through_spark["process_seconds"],
            through_spark["after_startup_s"],
            through_spark["tables"],
            through_spark["needy"],
        ),
        flush=True,
    )
    results = {
        "tables": args.tables,
        "machine": machine(),
        "plan_all": plan_all,
        "spark": through_spark,
        "ratio": round(through_spark["process_seconds"] / plan_all["process_seconds"], 2),
        "ratio_after_spark_startup": round(through_spark["after_startup_s"] / plan_all["in_process_s"], 2),
        "no_jvm": not plan_all["pyspark_imported"],
    }
    with open(os.path.join(args.out, "fleet.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    chart(results, os.path.join(args.out, "fleet.png"))
    print(json.dumps({k: results[k] for k in ("ratio", "ratio_after_spark_startup", "no_jvm")}))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
