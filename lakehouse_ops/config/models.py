"""Policy and config models: frozen, validated at load, with the accepted range in every error.

Annotations use `Optional[...]`/`List[...]` because pydantic evaluates them at runtime and EMR 7.x runs
Python 3.9.
"""
import re
from typing import Annotated, Dict, List, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from lakehouse_ops.jobs import JOBS

MB = 1024 * 1024
GB = 1024 * MB

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000 ** 2, "mb": MB, "mib": MB,
    "g": 1000 ** 3, "gb": GB, "gib": GB,
    "t": 1000 ** 4, "tb": 1024 * GB, "tib": 1024 * GB,
}


def parse_size(value):
    """Bytes from an int or a string such as `512MB`, `8 MiB`, `1TB` (MB/GB/TB are binary, as in Iceberg docs)."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string such as '512MB'")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        if match and match.group(2).lower() in _SIZE_UNITS:
            return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    raise ValueError("a size must be a number of bytes or a string such as '512MB', '8MiB', '1TB'")


Size = Annotated[int, BeforeValidator(parse_size)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompactionPolicy(Model):
    enabled: bool = True
    strategy: Literal["binpack", "sort", "zorder"] = "binpack"
    # Spark/Iceberg sort terms, e.g. ["event_time ASC NULLS LAST", "customer_id"]; empty = the table's sort order.
    sort_order: List[str] = Field(default_factory=list)
    zorder_columns: List[str] = Field(default_factory=list)
    # A file is "small" below this fraction of the target file size.
    small_file_threshold: float = Field(0.75, gt=0, le=1)
    # A partition is compacted when its share of small files reaches this ratio ...
    min_small_file_ratio: float = Field(0.2, ge=0, le=1)
    # ... and it has at least this many small files (Iceberg's min-input-files).
    min_input_files: int = Field(5, ge=1, le=100000)
    # ... or when it carries at least this many delete files.
    delete_file_threshold: int = Field(10, ge=1)
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
    def _strategy_inputs(self):
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


class FileListSource(Model):
    """An external listing (for example an S3 Inventory report) used instead of listing storage."""
    path: str
    format: Literal["parquet", "csv", "orc", "json"] = "parquet"
    file_path_column: str = "file_path"
    last_modified_column: str = "last_modified"


class OrphanPolicy(Model):
    enabled: bool = True
    older_than_hours: float = Field(72, ge=24, le=24 * 3650)
    dry_run: bool = False
    # Deletion budget: when the candidates exceed either, nothing is deleted.
    max_files: int = Field(10000, ge=0)
    max_bytes: Size = Field(1024 * GB, ge=0)
    prefix_mismatch_mode: Literal["ERROR", "IGNORE", "DELETE"] = "ERROR"
    equal_schemes: Dict[str, str] = Field(default_factory=lambda: {"s3a": "s3", "s3n": "s3"})
    equal_authorities: Dict[str, str] = Field(default_factory=dict)
    max_concurrent_deletes: Optional[int] = Field(None, ge=1, le=1000)
    file_list: Optional[FileListSource] = None


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


class TablePolicy(Model):
    target_file_size: Size = Field(512 * MB, ge=MB, le=64 * GB)
    commits: CommitPolicy = Field(default_factory=CommitPolicy)
    compaction: CompactionPolicy = Field(default_factory=CompactionPolicy)
    position_deletes: PositionDeletesPolicy = Field(default_factory=PositionDeletesPolicy)
    manifests: ManifestPolicy = Field(default_factory=ManifestPolicy)
    snapshots: SnapshotPolicy = Field(default_factory=SnapshotPolicy)
    orphans: OrphanPolicy = Field(default_factory=OrphanPolicy)
    properties: PropertiesPolicy = Field(default_factory=PropertiesPolicy)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data):
        # compaction.commit_retries was the only retry setting before every committing action retried.
        if isinstance(data, dict) and isinstance(data.get("compaction"), dict) \
                and "commit_retries" in data["compaction"]:
            data = dict(data, compaction=dict(data["compaction"]))
            retries = data["compaction"].pop("commit_retries")
            commits = dict(data.get("commits") or {})
            commits.setdefault("retries", retries)
            data["commits"] = commits
        return data

    def desired_properties(self):
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


CATALOG_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class CatalogConfig(Model):
    name: str = Field("local", pattern=CATALOG_NAME)
    type: Literal["hadoop", "glue", "rest", "hive"] = "hadoop"
    warehouse: Optional[str] = None
    uri: Optional[str] = None
    # Passed to Spark as spark.sql.catalog.<name>.<key> and to pyiceberg's catalog as-is.
    properties: Dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_location(self):
        if self.type in ("hadoop", "glue") and not self.warehouse:
            raise ValueError("catalog type '%s' needs a warehouse (a local path or s3:// URI)" % self.type)
        if self.type in ("rest", "hive") and not self.uri:
            raise ValueError("catalog type '%s' needs a uri" % self.type)
        return self


class SparkConfig(Model):
    # local: start Spark here with the Iceberg jar from the `local` extra; cluster: use the cluster's Spark/Iceberg.
    mode: Literal["local", "cluster"] = "local"
    master: str = "local[*]"
    app_name: str = "lakehouse-ops"
    conf: Dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value):
        if isinstance(value, dict):
            return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value


class BatchBudget(Model):
    """How much one ingest batch may hold: whichever limit is reached first closes the batch."""
    max_objects: int = Field(1000, ge=1, le=100000)
    # Bytes from the sizes in the events; aim at a few target files per commit.
    max_bytes: Size = Field(1 * GB, ge=1024)
    max_wait_seconds: float = Field(20, ge=0, le=900)
    # Parallel ReceiveMessage calls (each returns at most 10 messages).
    receive_concurrency: int = Field(8, ge=1, le=64)
    # Long-poll time of each ReceiveMessage call.
    wait_time_seconds: int = Field(1, ge=0, le=20)


class IngestPseudonymize(Model):
    """Replace these columns with pseudonyms before rows land (through the config's pseudonymization section)."""
    columns: List[str] = Field(min_length=1)
    # deterministic: one token per value (joins and erasure by token work); randomized: a new token every time.
    mode: Literal["deterministic", "randomized"] = "deterministic"


class IngestConfig(Model):
    queue_url: str
    # Where poison messages and unreadable objects go, with the reason as a message attribute. Without it,
    # `poison_action: leave` must be set so the queue's own redrive policy moves them.
    dlq_url: Optional[str] = None
    poison_action: Literal["dlq", "leave"] = "dlq"
    target_table: str
    quarantine_table: Optional[str] = None
    # Every object committed, by identity; survives snapshot expiry. Default: <target>_ingest_ledger.
    ledger_table: Optional[str] = None
    format: Literal["json", "csv", "parquet"] = "json"
    read_options: Dict[str, str] = Field(default_factory=dict)
    # Dotted path to a function DataFrame -> DataFrame applied before the write, e.g. "mypkg.enrich.add_geo".
    enrichment: Optional[str] = None
    # Pseudonymize columns after enrichment, before the write: plaintext never lands in the target table.
    pseudonymize: Optional[IngestPseudonymize] = None
    eventbridge_key_encoding: Literal["none", "url", "form"] = "none"
    # Local runs: s3:// prefixes -> local directories (file:// URIs or paths).
    uri_map: Dict[str, str] = Field(default_factory=dict)
    source_column: str = "_source_object"
    ingest_time_column: str = "_ingested_at"
    batch_column: str = "_ingest_batch"
    batch: BatchBudget = Field(default_factory=BatchBudget)
    visibility_timeout_seconds: int = Field(300, ge=5, le=43200)
    # Where workers claim objects before writing them (s3:// prefix or local directory); default: under the
    # catalog's warehouse, <warehouse>/_lakehouse_ops/ingest-claims/<target>.
    claims: Optional[str] = None
    # A claim not released after this long is taken over (its worker is presumed dead): longer than a batch takes.
    claim_seconds: float = Field(900, ge=5, le=43200)
    # Visibility is extended this often while a batch is in flight (well under the timeout).
    heartbeat_seconds: float = Field(60, gt=0, le=3600)
    empty_backoff_seconds: float = Field(1, gt=0, le=600)
    max_empty_backoff_seconds: float = Field(60, gt=0, le=3600)

    @model_validator(mode="after")
    def _consistent(self):
        if self.poison_action == "dlq" and not self.dlq_url:
            raise ValueError("poison_action 'dlq' needs dlq_url (or set poison_action: leave to rely on the "
                             "queue's redrive policy)")
        if self.heartbeat_seconds >= self.visibility_timeout_seconds:
            raise ValueError("heartbeat_seconds (%g) must be shorter than visibility_timeout_seconds (%d)"
                             % (self.heartbeat_seconds, self.visibility_timeout_seconds))
        return self

    @property
    def ledger(self):
        return self.ledger_table or self.target_table + "_ingest_ledger"


class PseudoSource(Model):
    """Where rows to pseudonymize come from: an Iceberg table, or files (Parquet by default)."""
    table: Optional[str] = None
    path: Optional[str] = None
    format: Literal["parquet", "json", "csv", "orc"] = "parquet"

    @model_validator(mode="after")
    def _one(self):
        if bool(self.table) == bool(self.path):
            raise ValueError("a source needs exactly one of table or path")
        return self


class PseudoJob(Model):
    source: PseudoSource
    target: str
    columns: List[str] = Field(min_length=1)
    deterministic: bool = True
    # append: add the converted rows; overwrite: replace the target's contents.
    write_mode: Literal["append", "overwrite"] = "append"


class PseudonymizationConfig(Model):
    mode: Literal["service", "in_executor"] = "service"
    service_url: Optional[str] = None
    # The API key comes from this environment variable (set it on executors with spark.executorEnv.*) ...
    api_key_env: Optional[str] = "LAKEHOUSE_OPS_PSEUDO_API_KEY"
    # ... or from this Secrets Manager secret. Never from this file.
    api_key_secret: Optional[str] = None
    keys_secret: Optional[str] = None
    key_file: Optional[str] = None
    batch_size: int = Field(900, ge=1, le=100000)
    max_concurrent_requests: int = Field(4, ge=1, le=64)
    max_total_concurrency: int = Field(200, ge=1, le=10000)
    max_retries: int = Field(6, ge=0, le=20)
    jobs: Dict[str, PseudoJob] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mode_inputs(self):
        if self.mode == "service" and not self.service_url:
            raise ValueError("mode 'service' needs service_url")
        if self.mode == "in_executor" and bool(self.keys_secret) == bool(self.key_file):
            raise ValueError("mode 'in_executor' needs exactly one of keys_secret or key_file")
        return self

    def settings(self):
        from lakehouse_ops.pseudo.spark import InExecutorSettings, ServiceSettings
        if self.mode == "in_executor":
            return InExecutorSettings(keys_secret=self.keys_secret, key_file=self.key_file)
        return ServiceSettings(url=self.service_url, api_key_env=self.api_key_env,
                               api_key_secret=self.api_key_secret, batch_size=self.batch_size,
                               max_concurrent_requests=self.max_concurrent_requests,
                               max_total_concurrency=self.max_total_concurrency, max_retries=self.max_retries)


class ErasureTable(Model):
    """A table that holds subject data, in one or more columns (a row matching any of them is erased)."""
    table: str
    columns: List[str] = Field(min_length=1)
    # identifiers: the columns hold plaintext; pseudonyms: they hold tokens of the pseudonymization service.
    holds: Literal["identifiers", "pseudonyms"] = "identifiers"
    # For pseudonym columns. tokens: match the subject's deterministic token(s) (fast; in service mode only the
    # current key version's token, so after a key rotation use reidentify or pass the old pseudonyms);
    # reidentify: re-identify the column's distinct tokens and match plaintext (randomized tokens, any key version).
    match: Literal["tokens", "reidentify"] = "tokens"


class ErasureConfig(Model):
    tables: List[ErasureTable] = Field(min_length=1)
    # Where receipts are written (a directory or s3:// prefix); one JSON file per erasure run.
    receipts: Optional[str] = None


JOB_NAMES = tuple(JOBS)


class EmrServerlessTarget(Model):
    application_id: str
    execution_role_arn: str
    # Driver and executor logs (S3), and optionally CloudWatch Logs.
    log_uri: Optional[str] = None
    cloudwatch_log_group: Optional[str] = None
    # EMR Serverless images carry the Iceberg runtime here; the job run adds it with spark.jars.
    iceberg_jar: str = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
    execution_timeout_minutes: int = Field(240, ge=1, le=1440)


class EmrTarget(Model):
    cluster_id: str
    action_on_failure: Literal["CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"] = "CONTINUE"
    deploy_mode: Literal["cluster", "client"] = "cluster"


class Schedule(Model):
    """One EventBridge Scheduler schedule that starts an EMR Serverless job run."""
    name: str = Field(pattern=r"^[0-9a-zA-Z\-_.]{1,64}$")
    job: Literal[JOB_NAMES] = "maintain"  # type: ignore[valid-type]  (the names of lakehouse_ops.jobs)
    # The job's own arguments, e.g. ["--only", "compaction", "analytics.*"].
    args: List[str] = Field(default_factory=list)
    # rate(1 hour), cron(0 3 * * ? *) or at(...), as EventBridge Scheduler takes them.
    expression: str = Field(pattern=r"^(rate|cron|at)\(.+\)$")
    timezone: str = "UTC"
    flexible_window_minutes: int = Field(0, ge=0, le=1440)
    enabled: bool = True


class RunBudget(Model):
    """What one maintenance run over several tables may take on."""
    max_tables: int = Field(20, ge=1, le=10000)
    max_rewrite_bytes: Size = Field(2 * 1024 * GB, ge=1)


class ShipConfig(Model):
    # The Python of the cluster image (EMR 7.x: 3.9); `package` refuses an archive built with another one.
    python: str = Field("3.9", pattern=r"^3\.\d+$")
    # Where submit uploads entry points, the archive or wheel, and the config (an s3:// prefix).
    artifacts: str = Field(pattern=r"^s3://[^/]+/.*")
    emr_serverless: Optional[EmrServerlessTarget] = None
    emr: Optional[EmrTarget] = None
    # Extra Spark settings for submitted runs (on top of the catalog's and the `spark.conf` section's).
    spark_conf: Dict[str, str] = Field(default_factory=dict)
    tags: Dict[str, str] = Field(default_factory=dict)
    # Per-table leases (S3 objects with an expiry) so two maintenance runs never work on one table at once.
    leases: Optional[str] = Field(None, pattern=r"^s3://[^/]+/.*")
    lease_minutes: int = Field(360, ge=1, le=10080)
    budget: RunBudget = Field(default_factory=RunBudget)
    scheduler_role_arn: Optional[str] = None
    schedule_group: str = Field("lakehouse-ops", pattern=r"^[0-9a-zA-Z\-_.]{1,64}$")
    schedules: List[Schedule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self):
        names = [s.name for s in self.schedules]
        if len(names) != len(set(names)):
            raise ValueError("schedule names must be unique")
        if self.schedules and (self.emr_serverless is None or not self.scheduler_role_arn):
            raise ValueError("schedules start EMR Serverless job runs: they need emr_serverless and "
                             "scheduler_role_arn")
        return self
