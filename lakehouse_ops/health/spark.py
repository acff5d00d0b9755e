"""A large first scan through Spark: the per-manifest aggregates the pyiceberg reader computes (aggregate.py), here
from Iceberg's `entries` metadata table of the very metadata file pyiceberg loaded, decoded in the JVM and spread
over the cluster's executors, grouped by the manifest each entry came from (so the health cache is filled the
same way).

Used when a scan has more than `health.spark_min_files` files to decode and a Spark session is at hand (a
maintenance run has one); the CLI's `health` and `plan` never start one.
"""

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from lakehouse_ops.health.aggregate import Aggregates, Counts
from lakehouse_ops.logs import get_logger

log = get_logger("health")
SparkSession = Callable[[], Any]  # gives the session when called (started on first use)

# Partition values as pyiceberg holds them: dates as days and timestamps as microseconds since the epoch.
CANONICAL = {"date": "unix_date(%s)", "timestamp": "unix_micros(%s)", "timestamp_ntz": "unix_micros(%s)"}
SUMS = (
    ("data_files", "IF(content = 0, 1, 0)"),
    ("data_bytes", "IF(content = 0, size, 0)"),
    ("small_files", "IF(small, 1, 0)"),
    ("small_bytes", "IF(small, size, 0)"),
    ("new_small_files", "IF(small AND NOT coalesce(seq < fseq, false), 1, 0)"),
    ("records", "IF(content = 0, records, 0)"),
    ("position_delete_files", "IF(content = 1, 1, 0)"),
    ("equality_delete_files", "IF(content > 1, 1, 0)"),
    ("delete_records", "IF(content > 0, records, 0)"),
)


def files_to_decode(manifests: Iterable[Any]) -> int:
    """Live files the manifest list says `manifests` hold (what a scan of them decodes)."""
    return sum((m.added_files_count or 0) + (m.existing_files_count or 0) for m in manifests)


def spark_counts(
    spark: Any,
    metadata_location: str,
    specs: Mapping[int, Any],
    small_limit: int,
    manifests: Iterable[str],
    wanted: Iterable[str],
) -> Optional[Dict[str, Aggregates]]:
    """{manifest path: aggregates} for the `wanted` ones of `manifests` (the current snapshot's, as the manifest
    list names them) of `metadata_location`, or None when Spark names manifests otherwise (the caller then reads
    them itself)."""
    from pyiceberg.typedef import Record

    source = spark.read.format("iceberg")
    live, position = _live_entries(source, metadata_location)
    commits = source.load(metadata_location + "#snapshots").selectExpr(
        "snapshot_id AS commit_id", "unix_millis(committed_at) AS commit_ms"
    )
    keys = ["manifest", "spec_id"] + ["p%d" % i for i in range(len(position))]
    sums = ["sum(%s) AS %s" % (term, name) for name, term in SUMS] + [
        "max(coalesce(commit_ms, 0)) AS last_ms",
        "min(IF(content = 0, seq, NULL)) AS min_seq",
        # each delete file's (data sequence number, content), in the same pass over the entries
        "collect_list(IF(content > 0, array(coalesce(seq, 0), content), NULL)) AS deletes",
    ]
    grouped = (
        live.join(commits, live.snapshot_id == commits.commit_id, "left")
        .selectExpr("*", "content = 0 AND size < %d AS small" % small_limit)
        .groupBy(*keys)
        .agg(*[_expr(s) for s in sums])
    )
    out: Dict[str, Aggregates] = {path: {} for path in wanted}
    known = set(manifests)
    for row in grouped.toLocalIterator():
        if row.manifest not in known:
            log.warning("Spark names manifests differently; the scan reads them itself", extra={"path": row.manifest})
            return None
        if row.manifest not in out:
            continue  # in the health cache already
        spec = specs[row.spec_id]
        values: List[Any] = [_plain(row["p%d" % position[f.name]]) for f in spec.fields]
        counts = Counts(Record(*values))
        for name, _ in SUMS:
            setattr(counts, name, int(row[name]))
        counts.last_updated_ms = int(row.last_ms)
        counts.data_seq(row.min_seq)
        for seq, content in row.deletes:
            counts.deletes_at(int(seq), int(content == 1), int(content != 1))
        out[row.manifest][(row.spec_id, tuple(values))] = counts
    return out


def _live_entries(source: Any, metadata_location: str) -> Tuple[Any, Dict[str, int]]:
    """The live entries of every manifest (one row per file) with their partition values as `p0`, `p1`, ...,
    and {partition field name: its index}."""
    entries = source.load(metadata_location + "#entries")
    data_file = entries.schema["data_file"].dataType
    fields = data_file["partition"].dataType.fields if "partition" in data_file.fieldNames() else []
    columns = [
        (CANONICAL.get(f.dataType.typeName(), "%s") % ("data_file.partition.`%s`" % f.name)) + " AS `p%d`" % i
        for i, f in enumerate(fields)
    ]
    position = {f.name: i for i, f in enumerate(fields)}
    live = entries.where("status < 2").selectExpr(
        "input_file_name() AS manifest",
        "snapshot_id",
        "sequence_number AS seq",
        "file_sequence_number AS fseq",
        "coalesce(data_file.content, 0) AS content",
        "data_file.spec_id AS spec_id",
        "data_file.file_size_in_bytes AS size",
        "data_file.record_count AS records",
        *columns,
    )
    return live, position


def _expr(text: str) -> Any:
    from pyspark.sql import functions

    return functions.expr(text)


def _plain(value: Any) -> Any:
    """A partition value as pyiceberg reads it from a manifest (binary as bytes)."""
    return bytes(value) if isinstance(value, bytearray) else value
