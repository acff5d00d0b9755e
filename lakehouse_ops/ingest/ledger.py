"""The ingest ledger and the target commit: together they make ingest exactly-once.

Protocol for one batch (its objects claimed first, see claims.py):
1. ledger: one `pending` row per object, with the batch id;
2. target: one append staged with `wap.id` = the batch id (its summary carries `lakehouse-ops.batch-id`),
   sealed in the claims store, then published (Iceberg publishes one wap id at most once);
3. ledger: one `committed` row per object, with the target snapshot id;
4. only then the SQS messages are deleted.
A process killed anywhere leaves either no target commit (the objects are read again on redelivery) or a target
commit whose batch id is found in the table's snapshots; the job finishes such batches (`interrupted`) at the next
start, before any message is read. The ledger is its own Iceberg table, so it survives snapshot expiry.

Growth: the ledger is partitioned by the day of `recorded_at`. An object's rows are recorded after its event, so a
batch looks up only rows recorded since its earliest event time (less `ingest.ledger_lookback_hours`): the
lookup reads the last day or two of the ledger whatever its age. Start-up looks for interrupted batches among
rows of the last `RECOVERY_DAYS` only (SQS keeps a message 14 days at most; an older interrupted batch is
finished through its claims when one of its objects is announced again). `upkeep` compacts the recent days and
expires the ledger's own snapshots, so its metadata does not grow with every batch.
"""

import datetime
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from lakehouse_ops.engine.frames import scan_metrics
from lakehouse_ops.engine.tables import REAPPLIED_FROM
from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import quote_string, table_ref

log = get_logger("ingest.ledger")

BATCH_PROPERTY = "lakehouse-ops.batch-id"
WAP_ID, PUBLISHED_WAP_ID = "wap.id", "published-wap-id"
# Summary entries naming the snapshot a commit copies (Iceberg's cherry-pick; lakehouse-ops' rollback re-apply).
LINEAGE = ("source-snapshot-id", REAPPLIED_FROM)
# superseded: announced, but its bytes were gone when it was read (pin.py). withdrawn: a batch that landed at once
# (staging was off) and whose rows were deleted again to read it anew: never taken for a landed batch.
PENDING, COMMITTED, SUPERSEDED, WITHDRAWN = "pending", "committed", "superseded", "withdrawn"
LEDGER_SCHEMA = (
    "object_id STRING, bucket STRING, object_key STRING, version_id STRING, etag STRING, "
    "size BIGINT, batch_id STRING, status STRING, target_snapshot_id BIGINT, recorded_at TIMESTAMP, "
    "event_time TIMESTAMP"
)
# Added after the first release: a ledger without it gets it at start-up (old rows hold null).
EVENT_TIME = "event_time"
PARTITION_FIELD = "days(recorded_at)"
LEDGER_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
RECOVERY_DAYS = 14
# Upkeep: the days compacted (today and yesterday) and the ledger snapshots kept (the last hour, at least 10).
UPKEEP_DAYS, KEEP_SNAPSHOTS_S, KEEP_SNAPSHOTS = 2, 3600, 10


def timestamp_literal(epoch_ms: float) -> str:
    """A Spark SQL TIMESTAMP literal in UTC, whatever the session's time zone (Iceberg prunes on it)."""
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=datetime.timezone.utc)
    return "TIMESTAMP '%sZ'" % moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def table_exists(spark: Any, ref: str) -> bool:
    try:
        spark.sql("REFRESH TABLE %s" % ref)
        spark.table(ref).schema
        return True
    except Exception:
        return False


def concurrent_ddl(spark: Any, statement: str, done: Callable[[], bool]) -> None:
    """Run DDL that other workers starting at the same moment may run too: when it fails, `done()` (asked after
    a refresh) decides whether another worker already made the change."""
    try:
        spark.sql(statement)
    except Exception:
        if not done():
            raise
        log.info("another worker made the same change first", extra={"statement": statement[:120]})


def batch_snapshot(spark: Any, catalog: str, table: str, batch: str) -> Optional[Tuple[int, Dict[str, str]]]:
    """(snapshot id, summary) of the commit on the table's main line that landed `batch`, or None.

    A batch lands as a write-audit-publish snapshot: fast-forwarded (it carries the batch id itself) or
    cherry-picked (the published snapshot names it in `published-wap-id`). A copy of such a snapshot made later (a
    rollback's re-apply, a cherry-pick by hand: `source-snapshot-id`, `lakehouse-ops.reapplied-from`) lands it too.
    Staged snapshots not published are not on the main line and do not count. Two commits of one batch are a
    failure, never "committed".
    """
    ref = table_ref(catalog, table)
    spark.sql("REFRESH TABLE %s" % ref)
    carriers = "s.summary['%s'] = '%s' OR s.summary['%s'] = '%s'" % (BATCH_PROPERTY, batch, PUBLISHED_WAP_ID, batch)
    found: Dict[int, Any] = {}
    while True:
        rows = spark.sql(
            "SELECT s.snapshot_id, first(s.summary) AS summary, max(coalesce(h.is_current_ancestor, false)) AS main "
            "FROM %s.snapshots s LEFT JOIN %s.history h ON s.snapshot_id = h.snapshot_id WHERE %s "
            "GROUP BY s.snapshot_id" % (ref, ref, carriers)
        ).collect()
        new = [r for r in rows if int(r.snapshot_id) not in found]
        if not new:
            break
        found.update((int(r.snapshot_id), r) for r in new)
        listed = ", ".join("'%d'" % i for i in sorted(found))
        carriers = " OR ".join("s.summary['%s'] IN (%s)" % (key, listed) for key in LINEAGE)
    landed = [r for r in found.values() if r.main]
    if len(landed) > 1:
        raise IngestError(
            "batch %s was committed %d times to %s (snapshots %s): rows of its objects are "
            "duplicated; delete the rows of all but the first snapshot (column of the batch id)"
            % (batch, len(landed), table, ", ".join(str(r.snapshot_id) for r in landed))
        )
    return (int(landed[0].snapshot_id), dict(landed[0].summary)) if landed else None


def find_batch_snapshot(spark: Any, catalog: str, table: str, batch: str) -> Optional[int]:
    """Snapshot id of the target commit that carries `batch`, or None."""
    found = batch_snapshot(spark, catalog, table, batch)
    return found[0] if found else None


def staged_snapshot(spark: Any, catalog: str, table: str, batch: str) -> Optional[int]:
    """The newest snapshot staged (written with wap.id) for `batch`, published or not, or None."""
    rows = spark.sql(
        "SELECT snapshot_id FROM %s.snapshots WHERE summary['%s'] = '%s' ORDER BY committed_at DESC "
        "LIMIT 1" % (table_ref(catalog, table), WAP_ID, batch)
    ).collect()
    return int(rows[0].snapshot_id) if rows else None


class Ledger:
    """The ledger table of one target: per object and batch, pending or committed (with the snapshot)."""

    def __init__(self, spark: Any, catalog: str, table: str, lookback_hours: float = 24.0) -> None:
        self.spark = spark
        self.catalog = catalog
        self.table = table
        self.ref = table_ref(catalog, table)
        self.lookback_ms = lookback_hours * 3600 * 1000
        self._last_lookup: Any = None

    def ensure(self) -> None:
        """The ledger exists, partitioned by day and with its properties (a ledger made by an older release is
        brought up to date: its old rows stay where they are and are pruned by their `recorded_at` bounds)."""
        namespace = self.table.rsplit(".", 1)[0]
        self.spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(self.catalog, namespace))
        properties = ", ".join("%s=%s" % (quote_string(k), quote_string(v)) for k, v in LEDGER_PROPERTIES.items())
        concurrent_ddl(
            self.spark,
            "CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg PARTITIONED BY (%s) TBLPROPERTIES (%s)"
            % (self.ref, LEDGER_SCHEMA, PARTITION_FIELD, properties),
            lambda: table_exists(self.spark, self.ref),
        )
        if not self._partitioned():
            concurrent_ddl(
                self.spark, "ALTER TABLE %s ADD PARTITION FIELD %s" % (self.ref, PARTITION_FIELD), self._partitioned
            )
            self.spark.sql("ALTER TABLE %s SET TBLPROPERTIES (%s)" % (self.ref, properties))
        if not self._has_event_time():
            concurrent_ddl(
                self.spark, "ALTER TABLE %s ADD COLUMN %s TIMESTAMP" % (self.ref, EVENT_TIME), self._has_event_time
            )

    def _has_event_time(self) -> bool:
        self.spark.sql("REFRESH TABLE %s" % self.ref)
        return EVENT_TIME in self.spark.table(self.ref).columns

    def _partitioned(self) -> bool:
        self.spark.sql("REFRESH TABLE %s" % self.ref)
        rows = self.spark.sql("DESCRIBE TABLE %s" % self.ref).collect()
        wanted = PARTITION_FIELD.replace(" ", "")
        return any(r.col_name.startswith("Part ") and r.data_type.replace(" ", "") == wanted for r in rows)

    def committed(self, identities: Iterable[str], since_ms: Optional[int] = None) -> Set[str]:
        """Those of `identities` already committed by some earlier batch. `since_ms`: the earliest event time of
        the objects (None when one has none: then the whole ledger is read)."""
        identities = list(identities)
        if not identities:
            return set()
        # Other workers commit too: read the ledger as it is now, not as this session last cached it.
        self.spark.sql("REFRESH TABLE %s" % self.ref)
        wanted = self.spark.createDataFrame([(i,) for i in identities], "object_id STRING")
        where = "status = '%s'" % COMMITTED
        if since_ms is not None:
            where += " AND recorded_at >= %s" % timestamp_literal(since_ms - self.lookback_ms)
        # By identity, or by bucket, key and ETag (one scan: each row under both names): rows recorded under a
        # version id (by earlier releases, or an announcement without an ETag) name the same bytes.
        done = (
            self.spark.table(self.ref)
            .filter(where)
            .selectExpr(
                "explode(array(object_id, concat(bucket, '/', object_key, '#', trim('\"' FROM etag)))) AS object_id"
            )
        )
        found = done.join(wanted, "object_id", "left_semi").distinct()
        self._last_lookup = found
        return {r.object_id for r in found.collect()} & set(identities)

    def committed_contents(self, objects: Iterable[Tuple[str, str, str]], since_ms: int) -> Set[Tuple[str, str, str]]:
        """Those of (bucket, key, ETag) committed since `since_ms` (less the lookback) under any identity: a
        listing shows no version ids, so reconciling asks by content."""
        wanted_rows = list(objects)
        if not wanted_rows:
            return set()
        self.spark.sql("REFRESH TABLE %s" % self.ref)
        wanted = self.spark.createDataFrame(wanted_rows, "bucket STRING, object_key STRING, etag STRING")
        where = "status = '%s' AND recorded_at >= %s" % (COMMITTED, timestamp_literal(since_ms - self.lookback_ms))
        done = (
            self.spark.table(self.ref).filter(where).selectExpr("bucket", "object_key", "trim('\"' FROM etag) AS etag")
        )
        found = done.join(wanted, ["bucket", "object_key", "etag"], "left_semi").distinct().collect()
        return {(r.bucket, r.object_key, r.etag) for r in found}

    @property
    def last_scan(self) -> Dict[str, int]:
        """Iceberg's scan metrics of the last lookup (files read and skipped), read from its plan when asked: never
        on the batch's path."""
        return scan_metrics(self._last_lookup) if self._last_lookup is not None else {}

    def record(self, batch: str, objects: Iterable[S3Object], status: str, snapshot_id: Optional[int] = None) -> None:
        rows = [
            (o.identity, o.bucket, o.key, o.version_id, o.etag, o.size, batch, status, snapshot_id, o.event_time)
            for o in objects
        ]
        df = self.spark.createDataFrame(
            rows,
            "object_id STRING, bucket STRING, object_key STRING, "
            "version_id STRING, etag STRING, size BIGINT, batch_id STRING, "
            "status STRING, target_snapshot_id BIGINT, event STRING",
        )
        df = df.selectExpr("*", "current_timestamp() AS recorded_at", "CAST(event AS TIMESTAMP) AS %s" % EVENT_TIME)
        df.drop("event").writeTo(self.ref).append()

    def interrupted(self, target_catalog: str, target_table: str) -> List[Tuple[str, int, List[S3Object]]]:
        """[(batch id, target snapshot id, objects)] for pending batches of the last RECOVERY_DAYS whose target
        commit exists.

        Pending batches without a commit never happened: their objects are read again when their messages return.
        """
        recent = "recorded_at >= %s" % timestamp_literal(time.time() * 1000 - RECOVERY_DAYS * 86400 * 1000)
        pending = self.spark.sql(
            "SELECT DISTINCT batch_id FROM %s WHERE %s AND status = '%s' AND batch_id NOT IN "
            "(SELECT batch_id FROM %s WHERE %s AND status IN ('%s', '%s'))"
            % (self.ref, recent, PENDING, self.ref, recent, COMMITTED, WITHDRAWN)
        ).collect()
        out = []
        for row in pending:
            snapshot = find_batch_snapshot(self.spark, target_catalog, target_table, row.batch_id)
            if snapshot is None:
                continue
            objects = [
                S3Object(bucket=r.bucket, key=r.object_key, size=r.size, etag=r.etag, version_id=r.version_id)
                for r in self.spark.table(self.ref)
                .filter("%s AND batch_id = '%s' AND status = '%s'" % (recent, row.batch_id, PENDING))
                .collect()
            ]
            out.append((row.batch_id, snapshot, objects))
        return out

    def upkeep(self) -> Dict[str, Any]:
        """Compact the ledger's recent days and expire its snapshots older than an hour (keeping the last 10).

        Best effort: ledger rows are only ever appended, so a compaction that loses a race with another worker's
        upkeep is simply skipped (and reported)."""
        now_ms = time.time() * 1000
        done: Dict[str, Any] = {}
        for step, call in (
            (
                "rewrite_data_files",
                "CALL %s.system.rewrite_data_files(table => %s, where => %s)"
                % (
                    self.catalog,
                    quote_string(self.table),
                    quote_string("recorded_at >= " + timestamp_literal(now_ms - UPKEEP_DAYS * 86400 * 1000)),
                ),
            ),
            (
                "expire_snapshots",
                "CALL %s.system.expire_snapshots(table => %s, older_than => %s, retain_last => %d)"
                % (
                    self.catalog,
                    quote_string(self.table),
                    timestamp_literal(now_ms - KEEP_SNAPSHOTS_S * 1000),
                    KEEP_SNAPSHOTS,
                ),
            ),
        ):
            try:
                row = self.spark.sql(call).collect()[0]
                done[step] = {k: v for k, v in row.asDict().items() if isinstance(v, int)}
            except Exception as exc:
                log.warning("ledger upkeep step skipped", extra={"step": step, "error": str(exc)[:300]})
                done[step] = {"skipped": str(exc)[:300]}
        return done
