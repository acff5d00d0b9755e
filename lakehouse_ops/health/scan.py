"""Table health from Iceberg metadata alone: metadata.json, manifest lists and manifests, read by pyiceberg.

Cheap enough to run on every table before deciding anything: no JVM, no data file is opened.
"""

import time
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from lakehouse_ops.health.aggregate import Aggregates, Counts, merge_into, read_manifests
from lakehouse_ops.health.layout import property_drift, sort_terms, spec_terms
from lakehouse_ops.health.partitions import partition_filter, partition_ranges
from lakehouse_ops.health.spark import SparkSession, files_to_decode, spark_counts
from lakehouse_ops.health.statistics import statistics_position
from lakehouse_ops.health.storage import metadata_files_on_storage

if TYPE_CHECKING:
    from lakehouse_ops.health.cache import AggregateCache


@dataclass
class PartitionHealth:
    partition: str
    data_files: int = 0
    data_bytes: int = 0
    small_files: int = 0
    small_bytes: int = 0
    # Small files not written by a rewrite (compaction output is often a little under target size).
    new_small_files: int = 0
    records: int = 0
    delete_files: int = 0
    position_delete_files: int = 0
    equality_delete_files: int = 0
    dangling_delete_files: int = 0  # apply to no live data file: removable by a metadata-only commit
    delete_records: int = 0  # rows the position deletes name plus keys the equality deletes hold
    last_updated_ms: int = 0
    # Spark SQL filter on source columns selecting exactly this partition (None: not expressible).
    filter: Optional[str] = None
    # {source column: [start_ms, end_ms)} that every row of the partition lies in, for its time fields.
    ranges: Dict[str, List[int]] = field(default_factory=dict)

    @property
    def small_file_ratio(self) -> float:
        return self.small_files / self.data_files if self.data_files else 0.0


@dataclass
class TableHealth:
    table: str
    location: str
    format_version: int
    snapshot_id: Optional[int]
    data_files: int = 0
    data_bytes: int = 0
    small_files: int = 0
    small_bytes: int = 0
    new_small_files: int = 0
    small_file_threshold_bytes: int = 0
    delete_files: int = 0
    position_delete_files: int = 0
    equality_delete_files: int = 0
    dangling_delete_files: int = 0
    delete_records: int = 0
    records: int = 0
    snapshots: int = 0
    oldest_snapshot_age_hours: float = 0.0
    oldest_snapshot_ms: Optional[int] = None
    manifests: int = 0
    manifest_bytes: int = 0
    small_manifests: int = 0
    # Manifests decoded by this scan; the others' figures came from the health cache.
    manifests_read: int = 0
    # metadata.json files on storage (one listing of <location>/metadata); the log's count when it cannot list.
    metadata_files: int = 0
    # Entries of the metadata log plus the current file: what Iceberg still tracks (and would clean up).
    metadata_log_files: int = 0
    metadata_files_listed: bool = False
    properties: Dict[str, str] = field(default_factory=dict)
    property_drift: Dict[str, Dict[str, Optional[str]]] = field(default_factory=dict)
    sort_order: List[str] = field(default_factory=list)
    partition_spec: List[str] = field(default_factory=list)
    refs: int = 0
    # Column statistics (Puffin) of the newest ancestor of the current snapshot that has some, and how many
    # snapshots the current one is past it (None: no ancestor has statistics); partition statistics likewise.
    stats_snapshot_id: Optional[int] = None
    snapshots_since_stats: Optional[int] = None
    partition_stats_snapshot_id: Optional[int] = None
    snapshots_since_partition_stats: Optional[int] = None
    statistics_files: int = 0
    # Tags by name (branches are not listed): what recovery points exist.
    tags: List[str] = field(default_factory=list)
    # Other automation on the table ({what: description, or "unknown: why"}) and the actions it overlaps.
    automation: Dict[str, str] = field(default_factory=dict)
    automation_overlaps: List[str] = field(default_factory=list)
    partitions: List[PartitionHealth] = field(default_factory=list)
    read_seconds: float = 0.0
    # True: the figures of this very metadata file came from the health cache (no manifest was read).
    cached: bool = False
    # What decoded the manifests read: pyiceberg, or Spark for a scan over `health.spark_min_files`.
    reader: str = "pyiceberg"

    @property
    def small_file_ratio(self) -> float:
        return self.small_files / self.data_files if self.data_files else 0.0

    @property
    def avg_manifest_bytes(self) -> float:
        return self.manifest_bytes // self.manifests if self.manifests else 0

    @property
    def gc_enabled(self) -> bool:
        return self.properties.get("gc.enabled", "true").lower() != "false"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TableHealth":
        """The health `asdict` gave (derived figures such as ratios are left out and computed again)."""
        known = {f.name for f in fields(cls)}
        health = cls(**{k: v for k, v in data.items() if k in known and k != "partitions"})
        part_fields = {f.name for f in fields(PartitionHealth)}
        health.partitions = [
            PartitionHealth(**{k: v for k, v in p.items() if k in part_fields}) for p in data.get("partitions", [])
        ]
        return health

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["small_file_ratio"] = round(self.small_file_ratio, 4)
        out["avg_manifest_bytes"] = self.avg_manifest_bytes
        out["gc_enabled"] = self.gc_enabled
        for part, obj in zip(out["partitions"], self.partitions):
            part["small_file_ratio"] = round(obj.small_file_ratio, 4)
        return out


def small_file_limit(policy: Any) -> int:
    """Files below this many bytes are small under `policy` (a fraction of its target file size)."""
    return int(policy.target_file_size * policy.compaction.small_file_threshold)


def _metadata_health(table: Any, name: str, policy: Any, now_ms: int) -> TableHealth:
    """The figures the table metadata gives without reading a manifest."""
    meta = table.metadata
    snapshot = table.current_snapshot()
    health = TableHealth(
        table=name,
        location=meta.location,
        format_version=meta.format_version,
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        small_file_threshold_bytes=small_file_limit(policy),
        snapshots=len(meta.snapshots),
        metadata_log_files=len(meta.metadata_log) + 1,
        properties=dict(meta.properties),
        sort_order=sort_terms(table),
        partition_spec=spec_terms(table),
        refs=len(meta.refs),
        tags=sorted(
            name for name, ref in meta.refs.items() if str(ref.snapshot_ref_type) in ("tag", "SnapshotRefType.TAG")
        ),
    )
    for key, value in statistics_position(meta, snapshot).items():
        setattr(health, key, value)
    on_storage = metadata_files_on_storage(table)
    health.metadata_files_listed = on_storage is not None
    health.metadata_files = on_storage if on_storage is not None else health.metadata_log_files
    if meta.snapshots:
        health.oldest_snapshot_ms = min(s.timestamp_ms for s in meta.snapshots)
    judge(health, policy, now_ms)
    return health


def judge(health: TableHealth, policy: Any, now_ms: int) -> None:
    """The figures that depend on the moment and the policy, not on the table's metadata: computed on every scan,
    also for health taken from the cache."""
    health.property_drift = property_drift(health.properties, policy.desired_properties())
    if health.oldest_snapshot_ms is not None:
        health.oldest_snapshot_age_hours = round((now_ms - health.oldest_snapshot_ms) / 3600000.0, 3)


def partition_name(spec: Any, schema: Any, record: Any, default_spec_id: int) -> str:
    """How health names a partition: its path (`day=2024-05-01`), prefixed by the spec for an older spec."""
    key = spec.partition_to_path(record, schema) if spec.fields else ""
    if spec.spec_id != default_spec_id:
        key = "spec=%d/%s" % (spec.spec_id, key)
    return str(key)


def _partition(spec: Any, schema: Any, record: Any, default_spec_id: int, counts: "Counts") -> PartitionHealth:
    """PartitionHealth of one distinct partition: its path and filter computed once, here."""
    key = partition_name(spec, schema, record, default_spec_id)
    return PartitionHealth(
        partition=key,
        filter=partition_filter(spec, schema, record),
        ranges=partition_ranges(spec, schema, record),
        data_files=counts.data_files,
        data_bytes=counts.data_bytes,
        small_files=counts.small_files,
        small_bytes=counts.small_bytes,
        new_small_files=counts.new_small_files,
        records=counts.records,
        delete_files=counts.position_delete_files + counts.equality_delete_files,
        position_delete_files=counts.position_delete_files,
        equality_delete_files=counts.equality_delete_files,
        dangling_delete_files=counts.dangling(),
        delete_records=counts.delete_records,
        last_updated_ms=counts.last_updated_ms,
    )


@dataclass
class Readers:
    """How a scan decodes the manifests it must read: over `processes` processes (None: every core; 1: none), or
    through `spark` (a callable giving the session) when there are at least `spark_min_files` files to decode."""

    processes: Optional[int] = None
    spark: Optional["SparkSession"] = None
    spark_min_files: Optional[int] = None


def read_health(
    table: Any,
    name: str,
    policy: Any,
    now_ms: Optional[int] = None,
    cache: Optional["AggregateCache"] = None,
    readers: Optional[Readers] = None,
) -> TableHealth:
    """Health of pyiceberg `table` (StaticTable or catalog table) judged against `policy` (a TablePolicy); with a
    `cache`, only the manifests it does not hold are decoded; a large scan is spread as `readers` say."""
    started = time.time()
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    health = _metadata_health(table, name, policy, now_ms)
    snapshot = table.current_snapshot()
    if snapshot is not None:
        _add_manifests(health, table, snapshot, policy, cache, readers or Readers())
    health.read_seconds = round(time.time() - started, 3)
    return health


def _decode(
    health: TableHealth, table: Any, manifests: List[Any], todo: List[Any], readers: Readers, keep: bool
) -> Tuple[Dict[str, Aggregates], Aggregates]:
    """(per-manifest aggregates of `todo` if `keep` or read by Spark, their sum): through Spark above
    `spark_min_files`, else pyiceberg."""
    meta, small_limit = table.metadata, health.small_file_threshold_bytes
    if readers.spark is not None and readers.spark_min_files is not None:
        if files_to_decode(todo) >= readers.spark_min_files:
            read = spark_counts(
                readers.spark(),
                str(table.metadata_location),
                meta.specs(),
                small_limit,
                [m.manifest_path for m in manifests],
                [m.manifest_path for m in todo],
            )
            if read is not None:
                health.reader = "spark"
                merged: Aggregates = {}
                for part in read.values():
                    merge_into(merged, part)
                return read, merged
    commit_ms = {s.snapshot_id: s.timestamp_ms for s in meta.snapshots}
    remote = "://" in meta.location and not meta.location.startswith("file:")
    return read_manifests(table.io, todo, small_limit, commit_ms, remote, readers.processes, keep=keep)


def _add_manifests(
    health: TableHealth, table: Any, snapshot: Any, policy: Any, cache: Optional["AggregateCache"], readers: Readers
) -> None:
    meta, io = table.metadata, table.io
    manifests = snapshot.manifests(io)
    health.manifests = len(manifests)
    health.manifest_bytes = sum(m.manifest_length for m in manifests)
    health.small_manifests = sum(1 for m in manifests if m.manifest_length < policy.manifests.small_manifest_bytes)
    small_limit = health.small_file_threshold_bytes
    known = cache.load(meta.location, small_limit) if cache is not None else {}
    todo = [m for m in manifests if m.manifest_path not in known]
    health.manifests_read = len(todo)
    read, merged = _decode(health, table, manifests, todo, readers, keep=cache is not None)
    for path in [m.manifest_path for m in manifests if m.manifest_path in known]:
        merge_into(merged, known[path])
    if cache is not None:
        current = {
            m.manifest_path: known[m.manifest_path] if m.manifest_path in known else read.get(m.manifest_path)
            for m in manifests
        }
        if read or set(known) - set(current):
            cache.save(meta.location, small_limit, current)
    totals = Counts.total(merged.values())
    for name in Counts.SUMMED:
        setattr(health, name, getattr(totals, name))
    health.delete_files = totals.position_delete_files + totals.equality_delete_files
    specs, schema = meta.specs(), table.schema()
    partitions = [
        _partition(specs[spec_id], schema, part.record, meta.default_spec_id, part)
        for (spec_id, _), part in merged.items()
    ]
    health.partitions = sorted(partitions, key=lambda p: p.partition)
    health.dangling_delete_files = sum(p.dangling_delete_files for p in partitions)
