"""Fleet growth for scale_bench.py: `plan --all` over 100 to 10,000+ tables, cold and with the health cache.

A fleet of N tables in a Hadoop-catalog warehouse (setup, not timed): eight template tables of different shapes
(20 to 400 data files, 2 to 25 files per commit, 30 day partitions, per-column statistics) are written once with
pyiceberg; every fleet table gets its own copy of a template's metadata.json (its own location, version hint,
metadata directory), pointing at the template's manifest lists, so each table's scan reads as much as the
template's does. Then, each in a fresh process (`lakehouse-ops plan --all --json`, peak RSS from the kernel):
- `cold`: no health cache: every table's metadata, manifest list and manifests are read;
- `first`: with `health.cache`, empty: the same reads, and the cache is filled;
- `unchanged`: with the cache again, no table changed: each table costs its version hint, one metadata-file check
  and its cache record;
- `changed`: after one new commit to 1 % of the tables: those are read again (their new manifest only).
Peak memory: the planning process's peak RSS, and the largest of its worker processes' (over 200 tables per core,
the fleet is spread over one process per core).
"""

import json
import os
import textwrap

from maintenance_bench import run_probe

TEMPLATES = [(20, 2), (40, 5), (60, 10), (100, 10), (120, 20), (200, 25), (300, 25), (400, 25)]  # (files, per commit)

PLAN_ALL = textwrap.dedent("""
    import json, resource, sys, time
    t0 = time.time()
    sys.path.insert(0, {root!r})
    from click.testing import CliRunner
    from lakehouse_ops.cli import cli
    result = CliRunner().invoke(cli, ["--config", {config!r}, "plan", "--all", "--json"])
    report = json.loads(result.stdout[result.stdout.index("{{"):])
    entries = report["tables"]
    print(json.dumps({{"seconds": time.time() - t0, "tables": report["count"], "ok": report["ok"],
                      "needy": report["needy"], "in_process_s": report["duration_s"],
                      "cached": sum(1 for e in entries if e.get("health", {{}}).get("cached")),
                      "manifests_read": sum(e.get("health", {{}}).get("manifests_read", 0) for e in entries),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "workers_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}}))
""")


def build_templates(catalog, build_table, data_dir):
    """The template tables' metadata.json locations."""
    return [
        build_table(catalog, "b.template%d" % i, files, per_commit, data_dir)
        for i, (files, per_commit) in enumerate(TEMPLATES)
    ]


def table_dir(warehouse, i):
    return os.path.join(warehouse, "ns%d" % (i % 10), "t%05d" % i)


def copy_table(template_location, warehouse, i, version=1):
    """Fleet table i as a copy of a template's metadata (its own location), as metadata version `version`."""
    with open(template_location.replace("file://", "", 1)) as handle:
        metadata = json.load(handle)
    location = table_dir(warehouse, i)
    metadata["location"] = "file://" + location
    os.makedirs(os.path.join(location, "metadata"), exist_ok=True)
    with open(os.path.join(location, "metadata", "v%d.metadata.json" % version), "w") as handle:
        json.dump(metadata, handle)
    with open(os.path.join(location, "metadata", "version-hint.text"), "w") as handle:
        handle.write(str(version))


def fleet(catalog, build_table, work, sizes):
    """Per fleet size: cold, first, unchanged and changed `plan --all` runs."""
    templates = build_templates(catalog, build_table, "file://%s/data" % work)
    # One more commit to each template: what 1 % of the tables get between the runs.
    newer = [
        build_table(catalog, "b.template%d" % i, per_commit, per_commit, "file://%s/more" % work, start=files)
        for i, (files, per_commit) in enumerate(TEMPLATES)
    ]
    points = []
    for size in sizes:
        warehouse = os.path.join(work, "fleet%d" % size)
        for i in range(size):
            copy_table(templates[i % len(templates)], warehouse, i)
        point = {"tables": size}
        for mode in ("cold", "first", "unchanged", "changed"):
            if mode == "changed":
                for i in range(0, size, 100):
                    copy_table(newer[i % len(templates)], warehouse, i, version=2)
            config = os.path.join(work, "fleet%d-%s.json" % (size, "cold" if mode == "cold" else "cached"))
            write_config(config, warehouse, os.path.join(work, "cache%d" % size) if mode != "cold" else None)
            point[mode] = run_probe(PLAN_ALL.format(root=os.path.dirname(os.path.dirname(__file__)), config=config))
            print("  fleet %6d %-9s %s" % (size, mode, json.dumps(point[mode])), flush=True)
        points.append(point)
    return points


def write_config(path, warehouse, cache):
    data = {
        "catalog": {"name": "fleet", "type": "hadoop", "warehouse": warehouse},
        "defaults": {"target_file_size": "8MB", "properties": {"enabled": False}},
        "tables": [{"match": "*"}],
    }
    if cache:
        data["health"] = {"cache": cache}
    with open(path, "w") as handle:
        json.dump(data, handle)
