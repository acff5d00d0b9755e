"""The config's ingest section: the queue, the target and how its objects are read and written, and routes
that send objects to other targets by prefix or pattern."""

import fnmatch
from typing import Dict, List, Literal, Optional, Tuple

from pydantic import Field, model_validator

from lakehouse_ops.config.base import Model, Size
from lakehouse_ops.units import GB


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


class IngestUpsert(Model):
    """Merge each batch by key instead of appending: the latest record per key (by `order_by`) wins."""

    keys: List[str] = Field(min_length=1)
    # A record replaces the table's row for its key only when its value here is greater: a batch applied twice
    # (redelivery, a restart) changes nothing, and an older record arriving late never overwrites a newer one.
    order_by: str


class IngestRoute(Model):
    """Objects under `prefix` (an s3:// URI prefix) or matching `pattern` (a glob on the s3:// URI) go to
    `target_table`, read and written with the settings given here; the others come from the ingest section
    (not its ledger and claims: every target keeps its own)."""

    prefix: Optional[str] = None
    pattern: Optional[str] = None
    target_table: str
    quarantine_table: Optional[str] = None
    ledger_table: Optional[str] = None
    claims: Optional[str] = None
    format: Optional[Literal["json", "csv", "parquet", "avro"]] = None
    read_options: Optional[Dict[str, str]] = None
    schema_evolution: Optional[Literal["fail", "add_new_columns", "rescue"]] = None
    rescued_data_column: Optional[str] = None
    upsert: Optional[IngestUpsert] = None
    enrichment: Optional[str] = None
    pseudonymize: Optional[IngestPseudonymize] = None

    @model_validator(mode="after")
    def _one_rule(self) -> "IngestRoute":
        if (self.prefix is None) == (self.pattern is None):
            raise ValueError("a route needs exactly one of prefix (s3://bucket/prefix/) or pattern (a glob)")
        if self.prefix is not None and not self.prefix.startswith("s3://"):
            raise ValueError("route prefix %r must be an s3:// URI prefix" % self.prefix)
        return self

    def matches(self, uri: str) -> bool:
        if self.prefix is not None:
            return uri.startswith(self.prefix)
        return fnmatch.fnmatchcase(uri, self.pattern or "")


# Settings a route never inherits from the ingest section: each target has its own.
OWN_PER_TARGET = ("ledger_table", "claims")


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
    # A batch looks up ledger rows recorded since its earliest event time less this: announcements of one
    # event (redelivery, S3 and EventBridge both) are always found; an overwrite with the same content counts as
    # the same object when announced within this long of the first commit.
    ledger_lookback_hours: float = Field(24, ge=1, le=24 * 14)
    # Every this many batches a worker compacts the ledger's recent days and expires its old snapshots (0: never;
    # then keep the ledger table healthy with `maintain`).
    ledger_upkeep_batches: int = Field(50, ge=0)
    # Print each batch's backlog, lag and throughput as a CloudWatch Embedded Metric Format line on stderr, with
    # the logs (where CloudWatch Logs receives the driver's output, as on EMR Serverless with CloudWatch logging,
    # they become metrics to alarm on; namespace lakehouse-ops/ingest, dimension Target).
    emf_metrics: bool = False
    # json (JSON lines), csv, parquet or avro; .gz and .bz2 text files are decompressed; Avro's codec is inside.
    format: Literal["json", "csv", "parquet", "avro"] = "json"
    # fail: the target's schema governs (fields it lacks are not read; records that do not fit are quarantined);
    # add_new_columns: new fields in the files become nullable columns of the target before the batch's commit
    # (and Parquet/Avro types are widened where Iceberg allows); rescue: fields that are unknown or do not fit go to
    # `rescued_data_column` as JSON, the record is kept.
    schema_evolution: Literal["fail", "add_new_columns", "rescue"] = "fail"
    rescued_data_column: str = "_rescued_data"
    upsert: Optional[IngestUpsert] = None
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
    # A batch's messages are hidden this long and re-hidden every heartbeat while it is written: a worker that
    # stops has its messages back within about this long.
    visibility_timeout_seconds: int = Field(60, ge=5, le=43200)
    # Where workers claim objects before writing them (s3:// prefix or local directory); default: under the
    # catalog's warehouse, <warehouse>/_lakehouse_ops/ingest-claims/<target>.
    claims: Optional[str] = None
    # A worker's claims live while it renews them (every third of this); a worker that stops has them taken
    # over within this long.
    claim_seconds: float = Field(60, ge=5, le=43200)
    # Visibility is extended this often while a batch is in flight (well under the timeout).
    heartbeat_seconds: float = Field(15, gt=0, le=3600)
    # --until-empty: how long to wait, once a receive comes back empty, for messages still in flight (other
    # workers' batches, messages deferred behind claims, a stopped worker's) before stopping with them named.
    # None: two visibility timeouts and a claim's life.
    until_empty_wait_seconds: Optional[float] = Field(None, ge=0, le=43200)
    # Other targets fed from the same queue: the first route that matches an object's s3:// URI takes it;
    # objects no route matches go to target_table.
    routes: List[IngestRoute] = Field(default_factory=list)
    empty_backoff_seconds: float = Field(1, gt=0, le=600)
    max_empty_backoff_seconds: float = Field(60, gt=0, le=3600)

    @model_validator(mode="after")
    def _consistent(self) -> "IngestConfig":
        if self.poison_action == "dlq" and not self.dlq_url:
            raise ValueError(
                "poison_action 'dlq' needs dlq_url (or set poison_action: leave to rely on the queue's redrive policy)"
            )
        if self.upsert and self.pseudonymize and self.pseudonymize.mode == "randomized":
            clash = sorted(set(self.upsert.keys) & set(self.pseudonymize.columns))
            if clash:
                raise ValueError(
                    "upsert key %s is pseudonymized randomized: every delivery would make a new key (use "
                    "mode: deterministic)" % ", ".join(clash)
                )
        if self.schema_evolution == "add_new_columns" and self.format == "csv" and not self._csv_header:
            raise ValueError("schema_evolution 'add_new_columns' with format csv needs read_options header: 'true'")
        if self.heartbeat_seconds >= self.visibility_timeout_seconds:
            raise ValueError(
                "heartbeat_seconds (%g) must be shorter than visibility_timeout_seconds (%d)"
                % (self.heartbeat_seconds, self.visibility_timeout_seconds)
            )
        return self

    def route_configs(self) -> List[Tuple[Optional[IngestRoute], "IngestConfig"]]:
        """(route, the settings of its target) for each route in order, then (None, these) for the rest."""
        out: List[Tuple[Optional[IngestRoute], IngestConfig]] = []
        base = self.model_dump(exclude={"routes"} | set(OWN_PER_TARGET))
        for route in self.routes:
            own = route.model_dump(exclude={"prefix", "pattern"}, exclude_none=True)
            out.append((route, IngestConfig.model_validate({**base, **own})))
        return out + [(None, self)]

    @property
    def until_empty_wait_s(self) -> float:
        if self.until_empty_wait_seconds is not None:
            return self.until_empty_wait_seconds
        return 2.0 * self.visibility_timeout_seconds + self.claim_seconds

    @property
    def _csv_header(self) -> bool:
        return str(self.read_options.get("header", "false")).lower() == "true"

    @property
    def ledger(self) -> str:
        return self.ledger_table or self.target_table + "_ingest_ledger"
