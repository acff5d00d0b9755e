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
"""

from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref

log = get_logger("ingest.ledger")

BATCH_PROPERTY = "lakehouse-ops.batch-id"
WAP_ID, PUBLISHED_WAP_ID = "wap.id", "published-wap-id"
PENDING, COMMITTED = "pending", "committed"
LEDGER_SCHEMA = (
    "object_id STRING, bucket STRING, object_key STRING, version_id STRING, etag STRING, "
    "size BIGINT, batch_id STRING, status STRING, target_snapshot_id BIGINT, recorded_at TIMESTAMP"
)


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
    cherry-picked (the published snapshot names it in `published-wap-id`). Staged snapshots not published are not
    on the main line and do not count. Two commits of one batch are a failure, never "committed".
    """
    ref = table_ref(catalog, table)
    spark.sql("REFRESH TABLE %s" % ref)
    rows = spark.sql(
        "SELECT s.snapshot_id, first(s.summary) AS summary FROM %s.snapshots s JOIN %s.history h ON "
        "s.snapshot_id = h.snapshot_id WHERE h.is_current_ancestor AND (s.summary['%s'] = '%s' OR "
        "s.summary['%s'] = '%s') GROUP BY s.snapshot_id" % (ref, ref, BATCH_PROPERTY, batch, PUBLISHED_WAP_ID, batch)
    ).collect()
    if len(rows) > 1:
        raise IngestError(
            "batch %s was committed %d times to %s (snapshots %s): rows of its objects are "
            "duplicated; delete the rows of all but the first snapshot (column of the batch id)"
            % (batch, len(rows), table, ", ".join(str(r.snapshot_id) for r in rows))
        )
    return (int(rows[0].snapshot_id), dict(rows[0].summary)) if rows else None


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

    def __init__(self, spark: Any, catalog: str, table: str) -> None:
        self.spark = spark
        self.catalog = catalog
        self.table = table
        self.ref = table_ref(catalog, table)

    def ensure(self) -> None:
        namespace = self.table.rsplit(".", 1)[0]
        self.spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(self.catalog, namespace))
        concurrent_ddl(
            self.spark,
            "CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg TBLPROPERTIES ("
            "'format-version'='2', 'write.parquet.compression-codec'='zstd')" % (self.ref, LEDGER_SCHEMA),
            lambda: table_exists(self.spark, self.ref),
        )

    def committed(self, identities: Iterable[str]) -> Set[str]:
        """Those of `identities` already committed by some earlier batch."""
        identities = list(identities)
        if not identities:
            return set()
        # Other workers commit too: read the ledger as it is now, not as this session last cached it.
        self.spark.sql("REFRESH TABLE %s" % self.ref)
        wanted = self.spark.createDataFrame([(i,) for i in identities], "object_id STRING")
        done = self.spark.table(self.ref).filter("status = '%s'" % COMMITTED).select("object_id")
        return {r.object_id for r in done.join(wanted, "object_id", "left_semi").distinct().collect()}

    def record(self, batch: str, objects: Iterable[S3Object], status: str, snapshot_id: Optional[int] = None) -> None:
        rows = [
            (o.identity, o.bucket, o.key, o.version_id, o.etag, o.size, batch, status, snapshot_id) for o in objects
        ]
        df = self.spark.createDataFrame(
            rows,
            "object_id STRING, bucket STRING, object_key STRING, "
            "version_id STRING, etag STRING, size BIGINT, batch_id STRING, "
            "status STRING, target_snapshot_id BIGINT",
        )
        df.selectExpr("*", "current_timestamp() AS recorded_at").writeTo(self.ref).append()

    def interrupted(self, target_catalog: str, target_table: str) -> List[Tuple[str, int, List[S3Object]]]:
        """[(batch id, target snapshot id, objects)] for pending batches whose target commit exists.

        Pending batches without a commit never happened: their objects are read again when their messages return.
        """
        pending = self.spark.sql(
            "SELECT DISTINCT batch_id FROM %s WHERE status = '%s' AND batch_id NOT IN "
            "(SELECT batch_id FROM %s WHERE status = '%s')" % (self.ref, PENDING, self.ref, COMMITTED)
        ).collect()
        out = []
        for row in pending:
            snapshot = find_batch_snapshot(self.spark, target_catalog, target_table, row.batch_id)
            if snapshot is None:
                continue
            objects = [
                S3Object(bucket=r.bucket, key=r.object_key, size=r.size, etag=r.etag, version_id=r.version_id)
                for r in self.spark.table(self.ref)
                .filter("batch_id = '%s' AND status = '%s'" % (row.batch_id, PENDING))
                .collect()
            ]
            out.append((row.batch_id, snapshot, objects))
        return out
