"""The table policy: what maintenance may do to a table, per action, with defaults and accepted ranges."""

from typing import Any, Dict, List, Literal, Optional

from pydantic import Field, model_validator

from lakehouse_ops.config.base import Model, Size
from lakehouse_ops.units import GB, MB


class CompactionPolicy(Model):
    enabled: bool = True
    strategy: Literal["binpack", "sort", "zorder"] = "binpack"
    # Spark/Iceberg sort terms, e.g. ["event_time ASC NULLS LAST", "customer_id"]; empty = the table's sort order.
    sort_order: List[str] = Field(default_factory=list)
    zorder_columns: List[str] = Field(default_factory=list)
    # iceberg: Iceberg's z-order (raw bytes interleaved; a timestamp counts in seconds, so beside a string key it
    # adds nothing). scaled: a grid of the columns' quantile ranges, one cell per output file (zorder.py).
    zorder_method: Literal["iceberg", "scaled"] = "iceberg"
    # A file is "small" below this fraction of the target file size.
    small_file_threshold: float = Field(0.75, gt=0, le=1)
    # A partition is compacted when its share of small files reaches this ratio ...
    min_small_file_ratio: float = Field(0.2, ge=0, le=1)
    # ... and it has at least this many small files (Iceberg's min-input-files).
    min_input_files: int = Field(5, ge=1, le=100000)
    # ... or when it carries at least this many delete files that still apply to data ...
    delete_file_threshold: int = Field(10, ge=1)
    # ... or when its delete files name at least this share of its rows (equality deletes: by their keys).
    delete_ratio_threshold: float = Field(0.3, gt=0, le=1)
    # Drop the delete files a rewrite leaves applying to nothing in the same commit (Iceberg 1.7+); the
    # remove_dangling_deletes action also removes them where no compaction runs.
    remove_dangling_deletes: bool = True
    max_concurrent_file_group_rewrites: int = Field(5, ge=1, le=1000)
    partial_progress: bool = True
    partial_progress_max_commits: int = Field(10, ge=1, le=1000)
    rewrite_job_order: Literal["none", "bytes-asc", "bytes-desc", "files-asc", "files-desc"] = "none"
    # Extra filter ANDed to the partition selection, e.g. "event_time >= TIMESTAMP '2024-05-01 00:00:00'".
    where: Optional[str] = None
    # Partitions written within this many hours are left alone: their writer is probably still active.
    skip_recent_hours: float = Field(0, ge=0, le=24 * 365)
    # Only partitions written within this many hours are compacted (an hourly run over recent partitions; the
    # rest waits for a full run). None: every partition.
    only_written_within_hours: Optional[float] = Field(None, gt=0, le=24 * 365)
    options: Dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _strategy_inputs(self) -> "CompactionPolicy":
        if self.strategy == "zorder" and not self.zorder_columns:
            raise ValueError("strategy 'zorder' needs zorder_columns (a list of at least one column)")
        return self


class PositionDeletesPolicy(Model):
    enabled: bool = True
    # Rewrite position delete files once a table has at least this many.
    min_delete_files: int = Field(10, ge=1)
    options: Dict[str, str] = Field(default_factory=dict)


class ManifestPolicy(Model):
    enabled: bool = True
    # Rewrite when the current snapshot has more manifests than this ...
    max_manifests: int = Field(100, ge=1)
    # ... or when at least `min_manifests` exist and this share of them is below `small_manifest_bytes`.
    small_manifest_bytes: Size = Field(8 * MB, ge=1024)
    max_small_manifest_ratio: float = Field(0.5, gt=0, le=1)
    min_manifests: int = Field(10, ge=2)
    use_caching: bool = False


class SnapshotPolicy(Model):
    enabled: bool = True
    max_age_days: float = Field(7, gt=0, le=3650)
    retain_last: int = Field(1, ge=1, le=100000)
    stream_results: bool = True
    max_concurrent_deletes: Optional[int] = Field(None, ge=1, le=1000)
    # Find the files the expiry made unreachable (two scans of the all_files and all_manifests metadata tables),
    # compare with what Iceberg deleted and check a sample on storage: a failed delete makes the action partial
    # instead of silently leaving an orphan.
    verify_deletions: bool = True


INVENTORY = "s3-inventory"


class FileListSource(Model):
    """An external listing used instead of listing storage: an S3 Inventory report's `manifest.json` as S3
    delivers it (format `s3-inventory`, taken when the path ends in manifest.json), or a table of paths and
    modification times in Parquet, CSV (with a header), ORC or JSON."""

    path: str
    format: Literal["s3-inventory", "parquet", "csv", "orc", "json"] = "parquet"
    file_path_column: str = "file_path"
    last_modified_column: str = "last_modified"

    @model_validator(mode="before")
    @classmethod
    def _format(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        manifest = str(data.get("path", "")).rstrip("/").endswith("manifest.json")
        if data.get("format") is None:
            return dict(data, format=INVENTORY if manifest else "parquet")
        if data.get("format") == INVENTORY and not manifest:
            raise ValueError(
                "format s3-inventory reads a report's manifest.json; path %r is not one" % data.get("path")
            )
        return data


# Files younger than this may belong to a write still in progress: orphan removal never takes them.
ORPHAN_MIN_AGE_HOURS = 24


class TrashPolicy(Model):
    """Orphans moved under `<table location>/<prefix>/<moved at>/` instead of deleted, purged after `keep_days`,
    restored with `lakehouse-ops orphans restore`. The prefix is one directory name starting with '.': Iceberg's
    listing of the location skips such hidden directories, so the trash never holds candidates itself."""

    enabled: bool = False
    prefix: str = Field(".lakehouse-trash", pattern=r"^\.[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
    keep_days: float = Field(7, gt=0, le=3650)


class OrphanPolicy(Model):
    enabled: bool = True
    older_than_hours: float = Field(72, ge=ORPHAN_MIN_AGE_HOURS, le=24 * 3650)
    dry_run: bool = False
    # Deletion budget: when the candidates exceed either, nothing is deleted.
    max_files: int = Field(10000, ge=0)
    max_bytes: Size = Field(1024 * GB, ge=0)
    prefix_mismatch_mode: Literal["ERROR", "IGNORE", "DELETE"] = "ERROR"
    equal_schemes: Dict[str, str] = Field(default_factory=lambda: {"s3a": "s3", "s3n": "s3"})
    equal_authorities: Dict[str, str] = Field(default_factory=dict)
    max_concurrent_deletes: Optional[int] = Field(None, ge=1, le=1000)
    file_list: Optional[FileListSource] = None
    trash: TrashPolicy = Field(default_factory=TrashPolicy)
    # Tables (names or globs) whose files orphan removal may take no account of: for a table it cannot read
    # (permissions, no location) that you know never keeps files in this table's location. Otherwise such a
    # table makes orphan removal refuse: it could reference files here.
    ignore_tables: List[str] = Field(default_factory=list)


class PropertiesPolicy(Model):
    """Table properties the policy manages; a value of null leaves that property alone."""

    enabled: bool = True
    compression_codec: Optional[Literal["zstd", "snappy", "gzip", "lz4", "uncompressed"]] = "zstd"
    metadata_delete_after_commit: Optional[bool] = True
    metadata_previous_versions_max: Optional[int] = Field(100, ge=1, le=10000)
    object_storage: Optional[bool] = None
    distribution_mode: Optional[Literal["none", "hash", "range"]] = None
    extra: Dict[str, str] = Field(default_factory=dict)


class CommitPolicy(Model):
    """How an action that commits to the table retries after a conflict with another writer's commit."""

    retries: int = Field(3, ge=0, le=20)
    backoff_seconds: float = Field(2.0, gt=0, le=600)
    max_backoff_seconds: float = Field(60.0, gt=0, le=3600)
    # All attempts of one action together, sleeps included.
    max_seconds: float = Field(1800.0, gt=0, le=24 * 3600)


class BreakerPolicy(Model):
    """An action that failed on the table in `after_failures` maintain runs in a row (run history) is suspended
    for `cooldown_hours` after its last failure, then tried once more. 0: never suspended."""

    after_failures: int = Field(3, ge=0, le=100)
    cooldown_hours: float = Field(24.0, gt=0, le=24 * 90)


class StatisticsPolicy(Model):
    """Column statistics (NDV sketches in Puffin files, `compute_table_stats`) and partition statistics
    (`compute_partition_stats`) for query planners such as Trino, Athena and Spark's CBO."""

    enabled: bool = False
    # Columns to compute NDV for; empty: every column.
    columns: List[str] = Field(default_factory=list)
    partition_stats: bool = True
    # Recompute when the statistics are this many snapshots behind the current one (and after every compaction).
    max_staleness_snapshots: int = Field(20, ge=1, le=100000)


class RecoveryPointPolicy(Model):
    """Tags on the current snapshot, daily or weekly, kept `max_age_days`: expiry keeps a tagged snapshot (and its
    files) until its tag ages out, so the table can be read or rolled back as it was at each point."""

    every: Optional[Literal["daily", "weekly"]] = None
    max_age_days: int = Field(14, ge=1, le=3650)
    prefix: str = Field("lakehouse-ops-", pattern=r"^[A-Za-z0-9_.-]+$")


class RetentionPolicy(Model):
    """Rows older than `keep_days` by `column` are deleted each run (off unless both are set): partitions wholly
    past the horizon by a metadata-only delete, the rest row by row. The snapshots still holding the rows expire
    as the snapshots policy says."""

    column: Optional[str] = None
    keep_days: Optional[float] = Field(None, gt=0, le=100 * 366)
    # Budget: a run that would delete more than this share of the table's rows deletes nothing and fails.
    max_share: float = Field(0.25, gt=0, le=1)

    @model_validator(mode="after")
    def _both_or_neither(self) -> "RetentionPolicy":
        if (self.column is None) != (self.keep_days is None):
            raise ValueError("retention needs both column and keep_days (or neither, to keep every row)")
        return self

    @property
    def enabled(self) -> bool:
        return self.column is not None and self.keep_days is not None


class StoragePolicy(Model):
    """What deleting a file means on a versioned S3 bucket (cross-region replication requires one): a delete only
    adds a delete marker and the bytes stay as a noncurrent version. true: expiry, orphan removal and erasure also
    remove the noncurrent versions and delete markers under the table's location (and, for erasure, the copies in
    replica buckets it can reach), so storage is freed and erased bytes are gone. false: what stays is reported
    (erasure is then not verified). Leave it false where versions are your backup."""

    versioned_deletes: bool = False


class TablePolicy(Model):
    target_file_size: Size = Field(512 * MB, ge=MB, le=64 * GB)
    commits: CommitPolicy = Field(default_factory=CommitPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    compaction: CompactionPolicy = Field(default_factory=CompactionPolicy)
    position_deletes: PositionDeletesPolicy = Field(default_factory=PositionDeletesPolicy)
    manifests: ManifestPolicy = Field(default_factory=ManifestPolicy)
    snapshots: SnapshotPolicy = Field(default_factory=SnapshotPolicy)
    orphans: OrphanPolicy = Field(default_factory=OrphanPolicy)
    properties: PropertiesPolicy = Field(default_factory=PropertiesPolicy)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    recovery_points: RecoveryPointPolicy = Field(default_factory=RecoveryPointPolicy)
    statistics: StatisticsPolicy = Field(default_factory=StatisticsPolicy)
    storage: StoragePolicy = Field(default_factory=StoragePolicy)
    # respect: an action that other automation on the table also does (a Glue optimizer, an S3 lifecycle rule
    # deleting objects) is left to it; ignore: run it anyway.
    external_automation: Literal["respect", "ignore"] = "respect"

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        # compaction.commit_retries was the only retry setting before every committing action retried.
        if (
            isinstance(data, dict)
            and isinstance(data.get("compaction"), dict)
            and "commit_retries" in data["compaction"]
        ):
            data = dict(data, compaction=dict(data["compaction"]))
            retries = data["compaction"].pop("commit_retries")
            commits = dict(data.get("commits") or {})
            commits.setdefault("retries", retries)
            data["commits"] = commits
        return data

    def desired_properties(self) -> Dict[str, str]:
        """Iceberg table properties this policy wants, as strings (what ALTER TABLE would set)."""
        props = {"write.target-file-size-bytes": str(self.target_file_size)}
        p = self.properties
        if p.compression_codec is not None:
            props["write.parquet.compression-codec"] = p.compression_codec
        if p.metadata_delete_after_commit is not None:
            props["write.metadata.delete-after-commit.enabled"] = str(p.metadata_delete_after_commit).lower()
        if p.metadata_previous_versions_max is not None:
            props["write.metadata.previous-versions-max"] = str(p.metadata_previous_versions_max)
        if p.object_storage is not None:
            props["write.object-storage.enabled"] = str(p.object_storage).lower()
        if p.distribution_mode is not None:
            props["write.distribution-mode"] = p.distribution_mode
        props.update(p.extra)
        return props
