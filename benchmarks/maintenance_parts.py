"""Parts of the maintenance benchmark measured on the same table after its sort compaction: layouts compared
(sort vs z-order vs sort by customer within the day partition), table statistics next to a plain NDV query, and
retention next to a plain DELETE. Each layout starts from the same fragmented snapshot (rolled back to), so every
figure compares the same rows."""

import copy
import time

from lakehouse_ops.config import config_from_dict
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.health import read_health
from lakehouse_ops.maintenance import compaction
from lakehouse_ops.runner import MaintenanceRunner
from lakehouse_ops.sqltext import table_ref

DAY_S = 24 * 3600
# Iceberg's z-order casts a timestamp to a long in seconds (SparkZOrderUDF), so a day's values differ only in the
# last two of its eight bytes, after every varying byte of a string such as customer_id: zorder(event_time,
# customer_id) then clusters by customer. zorder_method: scaled lays the rows on a grid of quantile ranges.
LAYOUTS = {
    "zorder(event_time, customer_id)": {"strategy": "zorder", "zorder_columns": ["event_time", "customer_id"]},
    "scaled zorder(event_time, customer_id)": {
        "strategy": "zorder",
        "zorder_columns": ["event_time", "customer_id"],
        "zorder_method": "scaled",
    },
    "sort customer_id within the day": {"strategy": "sort", "sort_order": ["customer_id ASC NULLS LAST"]},
    "sort hours(event_time), customer_id": {
        "strategy": "sort",
        "sort_order": ["hours(event_time) ASC NULLS LAST", "customer_id ASC NULLS LAST"],
    },
}


def _config(raw, **policy):
    data = copy.deepcopy(raw)
    for key, value in policy.items():
        data["defaults"][key] = dict(data["defaults"].get(key, {}), **value)
    return config_from_dict(data)


def _current(spark, ref):
    sql = "SELECT snapshot_id FROM %s.history WHERE is_current_ancestor ORDER BY made_current_at DESC LIMIT 1"
    return spark.sql(sql % ref).collect()[0].snapshot_id


def _rollback(spark, catalog, table, snapshot):
    """Make `snapshot` current again (set_current_snapshot: it need not be an ancestor of the current state)."""
    call(spark, catalog, "set_current_snapshot", {"table": table, "snapshot_id": snapshot})


def _data_files(spark, ref):
    return spark.sql("SELECT count(*) AS n FROM %s.files WHERE content = 0" % ref).collect()[0].n


def _layout(spark, raw, tables, catalog, table, fragmented, settings, queries, measure):
    ref = table_ref(catalog, table)
    _rollback(spark, catalog, table, fragmented)
    policy = _config(raw, compaction=settings).policy_for(table)
    plan = compaction.plan(policy, read_health(tables.load(table), table, policy))
    started = time.time()
    try:
        compaction.execute(spark, catalog, table, plan)
    except Exception as exc:  # a sort order this runtime does not parse: recorded, not fatal
        return {"error": str(exc).splitlines()[0][:300]}
    figures = {"compaction_s": round(time.time() - started, 2), "sort_order": plan.params.sort_order}
    figures["data_files"] = _data_files(spark, ref)
    figures.update({q: measure(spark, sql.format(t=ref)) for q, sql in queries.items()})
    return figures


def layouts(spark, raw, tables, catalog, table, fragmented, queries, measure):
    """{layout: {query: figures, compaction_s, data_files}} for each layout in LAYOUTS, each compacted from
    `fragmented`; the scaled z-order once more with a target file size giving as many files as the sort layout
    (the layouts compared at the same file count)."""
    ref = table_ref(catalog, table)
    after_sort = _current(spark, ref)
    sort_files = _data_files(spark, ref)
    out = {}
    for name, settings in LAYOUTS.items():
        out[name] = _layout(spark, raw, tables, catalog, table, fragmented, settings, queries, measure)
        print("layout", name, out[name], flush=True)
    scaled = out.get("scaled zorder(event_time, customer_id)", {})
    if scaled.get("data_files"):
        target = int(_config(raw).policy_for(table).target_file_size * scaled["data_files"] / float(sort_files))
        settings = dict(
            LAYOUTS["scaled zorder(event_time, customer_id)"], options={"target-file-size-bytes": str(target)}
        )
        name = "scaled zorder, as many files as the sort (target %d KB)" % (target // 1024)
        out[name] = _layout(spark, raw, tables, catalog, table, fragmented, settings, queries, measure)
        print("layout", name, out[name], flush=True)
    _rollback(spark, catalog, table, after_sort)
    return out


def statistics_time(spark, raw, tables, catalog, table, columns):
    """The statistics action (compute_table_stats with NDV sketches) next to a plain approx_count_distinct query
    over the same columns, and the NDVs against the exact distinct counts."""
    ref = table_ref(catalog, table)
    config = _config(raw, statistics={"enabled": True, "columns": columns, "partition_stats": True})
    report = MaintenanceRunner(config, spark=spark, catalog_tables=tables, only=["statistics"]).run([table])
    action = report["tables"][0]["actions"][0]
    started = time.time()
    approx = spark.sql(
        "SELECT %s FROM %s" % (", ".join("approx_count_distinct(%s) AS %s" % (c, c) for c in columns), ref)
    ).collect()[0]
    plain_s = time.time() - started
    exact = spark.sql("SELECT %s FROM %s" % (", ".join("count(DISTINCT %s) AS %s" % (c, c) for c in columns), ref))
    exact_row = exact.collect()[0]
    metadata = tables.load(table).metadata
    schema = metadata.schema()
    ndv = {}
    for stats in metadata.statistics:
        if stats.snapshot_id == metadata.current_snapshot_id:
            for blob in stats.blob_metadata:
                ndv[schema.find_field(blob.fields[0]).name] = int(blob.properties.get("ndv", -1))
    return {
        "status": action["status"],
        "statistics_s": action["duration_s"],
        "plain_approx_count_distinct_s": round(plain_s, 2),
        "ratio": round(action["duration_s"] / max(plain_s, 1e-9), 2),
        "columns": columns,
        "approx_count_distinct": {c: approx[c] for c in columns},
        "exact_distinct": {c: exact_row[c] for c in columns},
        "ndv": ndv,
    }


def retention_rate(spark, raw, tables, catalog, table, expire_days=3.5):
    """Retention deleting the first `expire_days` of the table's days (whole partitions by a metadata-only delete,
    the partial day row by row), then, from the same snapshot, a plain DELETE of the same rows."""
    ref = table_ref(catalog, table)
    first = spark.sql("SELECT unix_timestamp(min(date_trunc('DAY', event_time))) AS s FROM %s" % ref).collect()[0].s
    cutoff = first + expire_days * DAY_S
    keep_days = (time.time() - cutoff) / DAY_S
    config = _config(raw, retention={"column": "event_time", "keep_days": keep_days, "max_share": 1.0})
    start_snapshot = _current(spark, ref)
    report = MaintenanceRunner(config, spark=spark, catalog_tables=tables, only=["retention"]).run([table])
    action = report["tables"][0]["actions"][0]
    deleted = action["outputs"].get("rows_deleted", 0)
    horizon = action["outputs"].get("horizon") or cutoff
    _rollback(spark, catalog, table, start_snapshot)
    spark.sql("REFRESH TABLE %s" % ref)
    rows_before = spark.table(ref).count()
    started = time.time()
    spark.sql("DELETE FROM %s WHERE event_time < timestamp_seconds(%d)" % (ref, int(cutoff)))
    plain_s = time.time() - started
    plain_deleted = rows_before - spark.table(ref).count()
    _rollback(spark, catalog, table, start_snapshot)
    return {
        "status": action["status"],
        "rows_deleted": deleted,
        "retention_s": action["duration_s"],
        "rows_per_s": round(deleted / max(action["duration_s"], 1e-9)),
        "commits": action["outputs"].get("commits"),
        "plain_delete_rows": plain_deleted,
        "plain_delete_s": round(plain_s, 2),
        "plain_rows_per_s": round(plain_deleted / max(plain_s, 1e-9)),
        "ratio": round(plain_s / max(action["duration_s"], 1e-9), 2),
        "horizon": horizon,
    }
