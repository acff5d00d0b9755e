"""Growth benchmark: how health scans, fleet planning, snapshot expiry, orphan removal and the ingest ledger cost
as tables, fleets and ledgers grow.

    python benchmarks/scale_bench.py [--sizes 1000,10000,100000] [--per-commit 1000] [--fleet 100,1000]
        [--snapshots 1000,3000] [--orphans 10000] [--inventory 3000000] [--ledger 10000,100000,1000000]
        [--out benchmarks/out]

Each list of sizes may be '' to leave that family out. Fleet planning (`--fleet`, tables): see growth_fleet.py.
Snapshot expiry (`--snapshots`, snapshots per table, Spark): see growth_expiry.py. Orphan removal (`--orphans`,
candidate orphans per table, Spark) and orphan removal from an S3 Inventory-style list (`--inventory`, entries
in the list, 100,000 of them orphans): see growth_orphans.py. The ingest ledger (`--ledger`, objects, Spark): see
growth_ledger.py. The health scan (`--sizes`, data files per table):

For each size, builds an Iceberg table of that many data files (setup, not timed): metadata only, written with
pyiceberg into a local SQLite-catalog warehouse, one fast append of --per-commit files per commit (so one manifest
per commit, 30 day partitions, as a streaming writer leaves a table), each entry with the per-column statistics
Spark writes for an 8-column table. The data files themselves are not written: the health scan reads only
metadata. Then, each in a fresh process and each twice (once for time, once under
tracemalloc for the peak of Python allocations; the process's peak RSS comes from both):
- `health`: lakehouse-ops' scan (`read_health`): entries aggregated per manifest as they are read;
- `baseline`: the same figures after holding every live manifest entry of the snapshot first (what a scan that
  collects the entries, as pyiceberg's `plan_files` or a naive loop does, costs);
- `repeated`: with the health cache (`health.cache`), a first scan, one more commit, and the scan again.
Reports per size and the growth exponent (log-log slope: 0 = flat, 1 = linear) between the smallest and the
largest size, and between the two largest. Writes <out>/scale.json and <out>/scale.png (one log-log panel per
family).
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import growth_expiry  # noqa: E402
import growth_fleet  # noqa: E402
import growth_ledger  # noqa: E402
import growth_orphans  # noqa: E402

from maintenance_bench import machine, run_probe  # noqa: E402

PARTITIONS = 30

PROBE = textwrap.dedent("""
    import json, resource, sys, time, tracemalloc
    sys.path.insert(0, {root!r})
    from pyiceberg.table import StaticTable
    from lakehouse_ops.config import config_from_dict
    from lakehouse_ops.health.aggregate import Counts
    from lakehouse_ops.health.scan import read_health, small_file_limit
    table = StaticTable.from_metadata({location!r})
    catalog = {{"name": "b", "type": "hadoop", "warehouse": {warehouse!r}}}
    policy = config_from_dict({{"catalog": catalog}}).policy_for("b.t")
    if {traced}:
        tracemalloc.start()
    started = time.time()
    if {mode!r} == "health":
        h = read_health(table, "b.t", policy)
        files = h.data_files
    elif {mode!r} == "spark":
        from lakehouse_ops.engine import build_session
        from lakehouse_ops.health.scan import Readers
        spark_section = {{"mode": "local", "master": "local[2]", "conf": {{"spark.driver.memory": "4g"}}}}
        session = build_session(config_from_dict({{"catalog": catalog, "spark": spark_section}}))
        up = time.time()
        h = read_health(table, "b.t", policy, readers=Readers(spark=lambda: session, spark_min_files=1))
        files, startup_s, reader = h.data_files, up - started, h.reader
    elif {mode!r} == "cached":
        from lakehouse_ops.health.cache import AggregateCache
        h = read_health(table, "b.t", policy, cache=AggregateCache({cache!r}))
        files, read = h.data_files, h.manifests_read
    else:
        io = table.io
        entries = [e for m in table.current_snapshot().manifests(io) for e in m.fetch_manifest_entry(io, True)]
        totals, limit = {{}}, small_file_limit(policy)
        for e in entries:
            c = totals.setdefault(tuple(e.data_file.partition), Counts(e.data_file.partition))
            c.data_files += 1
            c.data_bytes += e.data_file.file_size_in_bytes
            c.small_files += e.data_file.file_size_in_bytes < limit
        files = sum(c.data_files for c in totals.values())
    seconds = time.time() - started
    peak = tracemalloc.get_traced_memory()[1] if {traced} else 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = {{"files": files, "seconds": seconds, "peak_mb": peak / 2**20, "maxrss_mb": rss}}
    out["read"] = locals().get("read")
    if "h" in locals():
        out["figures"] = [h.data_files, h.data_bytes, h.small_files, h.new_small_files, h.records, h.delete_files,
                          sorted((p.partition, p.data_files, p.data_bytes, p.records) for p in h.partitions)]
    if {mode!r} == "spark":
        out.update(startup_s=startup_s, reader=reader)
    print(json.dumps(out))
""")


COLUMNS = 8  # the table's columns: Spark writes statistics for each, which the scan must decode


def column_stats(k):
    """Per-column statistics as Spark writes them for a Parquet file (sizes, counts, bounds of every column)."""
    ids = range(1, COLUMNS + 1)
    low, high = (k * 1000).to_bytes(8, "little"), (k * 1000 + 999).to_bytes(8, "little")
    return {
        "column_sizes": {i: 20_000 + i for i in ids},
        "value_counts": {i: 1000 for i in ids},
        "null_value_counts": {i: 0 for i in ids},
        "lower_bounds": {i: low for i in ids},
        "upper_bounds": {i: high for i in ids},
    }


def build_table(catalog, name, files, per_commit, data_dir, start=0):
    """A table of `files` data files in `PARTITIONS` day partitions, `per_commit` files per fast append (with
    `start`: that many more files appended to the existing table `name`)."""
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.typedef import Record
    from pyiceberg.types import LongType, NestedField

    fields = [NestedField(1, "id", LongType(), required=False), NestedField(2, "day", LongType(), required=False)]
    fields += [NestedField(i, "c%d" % i, LongType(), required=False) for i in range(3, COLUMNS + 1)]
    schema = Schema(*fields)
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="day"))
    table = catalog.load_table(name) if start else catalog.create_table(name, schema=schema, partition_spec=spec)
    for first in range(start, start + files, per_commit):
        tx = table.transaction()
        with tx.update_snapshot().fast_append() as append:
            for k in range(first, min(start + files, first + per_commit)):
                append.append_data_file(
                    DataFile.from_args(
                        content=DataFileContent.DATA,
                        file_path="%s/day=%d/f%08d.parquet" % (data_dir, k % PARTITIONS, k),
                        file_format=FileFormat.PARQUET,
                        partition=Record(k % PARTITIONS),
                        record_count=1000,
                        file_size_in_bytes=200_000 + k % 7919,  # small files, as streaming leaves them
                        spec_id=0,
                        **column_stats(k),
                    )
                )
        tx.commit_transaction()
        table = catalog.load_table(name)
    return table.metadata_location


def probe(location, warehouse, mode, traced, cache=None):
    code = PROBE.format(root=ROOT, location=location, warehouse=warehouse, mode=mode, traced=traced, cache=cache)
    return run_probe(code)


def measure(location, warehouse, mode):
    """Time (untraced run) and memory (traced run) of one scan mode, each in a fresh process."""
    timed = probe(location, warehouse, mode, False)
    traced = probe(location, warehouse, mode, True)
    return {
        "files": timed["files"],
        "seconds": round(timed["seconds"], 3),
        "files_per_s": round(timed["files"] / timed["seconds"]),
        "peak_python_mb": round(traced["peak_mb"], 1),
        "peak_rss_mb": round(max(timed["maxrss_mb"], traced["maxrss_mb"]), 1),
        "figures": timed.get("figures"),
    }


def measure_spark(location, warehouse, health):
    """The same scan through Spark's `entries` metadata table, in a fresh process, Spark's start-up included (what
    a first scan on Spark costs where no session runs yet); its figures must be the pyiceberg scan's."""
    timed = probe(location, warehouse, "spark", False)
    assert timed["reader"] == "spark" and timed["figures"] == health["figures"], "Spark's figures differ"
    return {
        "files": timed["files"],
        "seconds": round(timed["seconds"], 3),
        "startup_s": round(timed["startup_s"], 3),
        "after_startup_s": round(timed["seconds"] - timed["startup_s"], 3),
        "same_figures": True,
        "pyiceberg_speedup": round(timed["seconds"] / health["seconds"], 2),
    }


def repeated_scan(catalog, name, location, warehouse, work, per_commit):
    """With the health cache: a first scan (it fills the cache), one more commit of `per_commit` files, then the
    scan again, each in a fresh process."""
    cache = os.path.join(work, "health-cache", name)
    first = probe(location, warehouse, "cached", False, cache)
    files = first["files"]
    newer = build_table(catalog, name, per_commit, per_commit, "file://%s/data-more" % work, start=files)
    again = probe(newer, warehouse, "cached", False, cache)
    return {
        "files": again["files"],
        "first_scan_s": round(first["seconds"], 3),
        "after_one_commit_s": round(again["seconds"], 3),
        "manifests_read": again["read"],
    }


def slope(points, key):
    """Log-log slope of `key` between the smallest and the largest size."""
    (n0, a), (n1, b) = (points[0]["files"], points[0][key]), (points[-1]["files"], points[-1][key])
    return round(math.log(max(b, 1e-9) / max(a, 1e-9)) / math.log(n1 / n0), 2)


def _loglog(ax, series, xlabel, ylabel, title):
    for label, color, xs, ys in series:
        ax.loglog(xs, [max(y, 0.01) for y in ys], "o-", color=color, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()


def chart(results, path):
    """One log-log panel per measured family: health scan time and memory, fleet planning, expiry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if len(results["health"]) > 1:
        growth = results["growth"]
        for key, label, which in (("seconds", "scan seconds", "seconds"), ("peak_python_mb", "peak Python MB", "peak")):
            series = [
                (mode, color, [p["files"] for p in results[mode]], [p[key] for p in results[mode]])
                for mode, color in (("health", "C2"), ("baseline", "C7"))
            ]
            title = "health %s growth: %s vs %s" % (which, growth["health_" + which], growth["baseline_" + which])
            if key == "seconds" and results.get("spark"):
                spark = results["spark"]
                series.append(
                    (
                        "Spark entries table, start-up included",
                        "C1",
                        [p["files"] for p in spark],
                        [p["seconds"] for p in spark],
                    )
                )
            panels.append((series, "data files", label, title))
    if results.get("fleet"):
        fleet = results["fleet"]
        series = [
            (mode, color, [p["tables"] for p in fleet], [p[mode]["in_process_s"] for p in fleet])
            for mode, color in (("cold", "C7"), ("first", "C1"), ("unchanged", "C2"), ("changed", "C0"))
        ]
        panels.append((series, "tables", "plan --all seconds", "fleet planning"))
    if results.get("expiry"):
        expiry = results["expiry"]
        xs = [p["snapshots"] for p in expiry]
        series = [
            ("raw procedure", "C7", xs, [p["raw_procedure_s"] for p in expiry]),
            ("lakehouse-ops (verified)", "C2", xs, [p["lakehouse_ops_s"] for p in expiry]),
        ]
        panels.append((series, "snapshots", "expiry seconds", "snapshot expiry"))
    if results.get("orphans"):
        points = results["orphans"]
        xs = [p["candidates"] for p in points]
        series = [
            ("remove_orphan_files", "C7", xs, [p["raw_procedure_s"] for p in points]),
            ("lakehouse-ops (guarded, verified)", "C2", xs, [p["lakehouse_ops_s"] for p in points]),
        ]
        panels.append((series, "candidate orphans", "seconds", "orphan removal"))
    if results.get("ledger"):
        points = results["ledger"]
        xs = [p["objects"] for p in points]
        series = [
            ("unpartitioned, read whole", "C7", xs, [p["before"]["batch_s"] for p in points]),
            ("by day, from event times", "C2", xs, [p["ours"]["batch_s"] for p in points]),
        ]
        panels.append((series, "objects in the ledger", "ledger seconds per batch", "ingest ledger"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (series, xlabel, ylabel, title) in zip(axes[0], panels):
        _loglog(ax, series, xlabel, ylabel, title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summarize_health(results):
    """Growth exponents of the health scan, and its ratios to the baseline at the largest size."""
    results["growth"] = {
        "health_peak": slope(results["health"], "peak_python_mb"),
        "baseline_peak": slope(results["baseline"], "peak_python_mb"),
        "health_seconds": slope(results["health"], "seconds"),
        "baseline_seconds": slope(results["baseline"], "seconds"),
    }
    # The same between the two largest sizes, where fixed costs no longer dominate.
    results["growth_largest"] = {
        key: slope(results[mode][-2:], field)
        for key, mode, field in (
            ("health_peak", "health", "peak_python_mb"),
            ("baseline_peak", "baseline", "peak_python_mb"),
            ("health_seconds", "health", "seconds"),
            ("baseline_seconds", "baseline", "seconds"),
        )
    }
    largest = {m: results[m][-1] for m in ("health", "baseline")}
    results["at_largest"] = {
        "files": largest["health"]["files"],
        "peak_python_ratio": round(largest["health"]["peak_python_mb"] / largest["baseline"]["peak_python_mb"], 3),
        "seconds_ratio": round(largest["health"]["seconds"] / largest["baseline"]["seconds"], 2),
    }


def sizes_of(text):
    """'1000,10000' -> [1000, 10000]; '' -> [] (the family is left out)."""
    return [int(s) for s in text.split(",") if s]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--per-commit", type=int, default=1000)
    parser.add_argument("--fleet", default="100,1000", help="fleet sizes (tables) for `plan --all`; '' for none")
    parser.add_argument("--snapshots", default="1000,3000", help="table sizes (snapshots) for expiry; '' for none")
    parser.add_argument("--orphans", default="10000", help="candidate orphans per table; '' for none")
    parser.add_argument(
        "--inventory", default="", help="entries of an S3 Inventory-style file list for orphan removal; '' for none"
    )
    parser.add_argument("--ledger", default="10000,100000,1000000", help="ingest ledger sizes (objects); '' for none")
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    args = parser.parse_args(argv)
    from pyiceberg.catalog.sql import SqlCatalog

    sizes = sizes_of(args.sizes)
    work = tempfile.mkdtemp(prefix="lakehouse-ops-scale-")
    results = {
        "machine": machine(),
        "sizes": sizes,
        "per_commit": args.per_commit,
        "health": [],
        "baseline": [],
        "spark": [],
        "repeated": [],
    }
    try:
        warehouse = os.path.join(work, "warehouse")
        os.makedirs(warehouse)
        catalog = SqlCatalog("b", uri="sqlite:///%s/catalog.db" % work, warehouse="file://" + warehouse)
        catalog.create_namespace("b")
        for size in sizes:
            started = time.time()
            location = build_table(catalog, "b.t%d" % size, size, args.per_commit, "file://%s/data" % work)
            print("built a table of %d files in %.1f s" % (size, time.time() - started), flush=True)
            for mode in ("health", "baseline"):
                point = measure(location, warehouse, mode)
                results[mode].append(point)
                print("  %-8s %s" % (mode, json.dumps({k: v for k, v in point.items() if k != "figures"})), flush=True)
            point = measure_spark(location, warehouse, results["health"][-1])
            results["spark"].append(point)
            print("  %-8s %s" % ("spark", json.dumps(point)), flush=True)
            point = repeated_scan(catalog, "b.t%d" % size, location, warehouse, work, args.per_commit)
            results["repeated"].append(point)
            print("  %-8s %s" % ("repeated", json.dumps(point)), flush=True)
        fleet_sizes = sizes_of(args.fleet)
        if fleet_sizes:
            results["fleet"] = growth_fleet.fleet(catalog, build_table, work, fleet_sizes)
        snapshot_sizes = sizes_of(args.snapshots)
        orphan_sizes = sizes_of(args.orphans)
        ledger_sizes = sizes_of(args.ledger)
        inventory_sizes = sizes_of(args.inventory)
        if snapshot_sizes or orphan_sizes or ledger_sizes or inventory_sizes:
            from lakehouse_ops.engine import build_session

            config = growth_expiry.spark_config(work)
            spark = build_session(config)
            try:
                if snapshot_sizes:
                    results["expiry"] = growth_expiry.expiry(spark, config, config.catalog.name, snapshot_sizes)
                if orphan_sizes:
                    results["orphans"] = growth_orphans.orphans(spark, config, config.catalog.name, orphan_sizes)
                if inventory_sizes:
                    data = growth_expiry.spark_config_data(work)
                    results["inventory"] = [
                        growth_orphans.inventory(spark, data, config.catalog.name, n) for n in inventory_sizes
                    ]
                if ledger_sizes:
                    results["ledger"] = growth_ledger.ledger(spark, config.catalog.name, ledger_sizes)
            finally:
                spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(results["health"]) > 1:
        summarize_health(results)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scale.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    chart(results, os.path.join(args.out, "scale.png"))
    families = (
        "growth",
        "growth_largest",
        "at_largest",
        "spark",
        "repeated",
        "expiry",
        "orphans",
        "inventory",
        "ledger",
    )
    summary = {k: results[k] for k in families if k in results}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
