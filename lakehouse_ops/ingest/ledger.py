"""The ingest ledger and the target commit: together they make ingest exactly-once.

Protocol for one batch (a batch id is derived from the sorted identities of the objects it writes):
1. ledger: one `pending` row per object, with the batch id;
2. target: one append whose snapshot summary carries `lakehouse-ops.batch-id`;
3. ledger: one `committed` row per object, with the target snapshot id;
4. only then the SQS messages are deleted.
A process killed anywhere leaves either no target commit (the objects are read again on redelivery) or a target
commit whose batch id is found in the table's snapshots; `reconcile` finishes step 3 for such batches at the next
start, before any message is read. The ledger is its own Iceberg table, so it survives snapshot expiry.
"""
import hashlib

from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance.sql import table_ref

log = get_logger("ingest.ledger")

BATCH_PROPERTY = "lakehouse-ops.batch-id"
PENDING, COMMITTED = "pending", "committed"
LEDGER_SCHEMA = ("object_id STRING, bucket STRING, object_key STRING, version_id STRING, etag STRING, "
                 "size BIGINT, batch_id STRING, status STRING, target_snapshot_id BIGINT, recorded_at TIMESTAMP")


def batch_id(identities):
    digest = hashlib.sha256("\n".join(sorted(identities)).encode("utf-8")).hexdigest()
    return "b-" + digest[:32]


def batch_snapshot(spark, catalog, table, batch):
    """(snapshot id, summary) of the target commit that carries `batch`, or None."""
    rows = spark.sql("SELECT snapshot_id, summary FROM %s.snapshots WHERE summary['%s'] = '%s'"
                     % (table_ref(catalog, table), BATCH_PROPERTY, batch)).collect()
    return (rows[0].snapshot_id, rows[0].summary) if rows else None


def find_batch_snapshot(spark, catalog, table, batch):
    """Snapshot id of the target commit that carries `batch`, or None."""
    found = batch_snapshot(spark, catalog, table, batch)
    return found[0] if found else None


class Ledger:
    def __init__(self, spark, catalog, table):
        self.spark = spark
        self.catalog = catalog
        self.table = table
        self.ref = table_ref(catalog, table)

    def ensure(self):
        namespace = self.table.rsplit(".", 1)[0]
        self.spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(self.catalog, namespace))
        self.spark.sql("CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg TBLPROPERTIES ('format-version'='2', "
                       "'write.parquet.compression-codec'='zstd')" % (self.ref, LEDGER_SCHEMA))

    def state(self, identities):
        """(identities already committed, identities an earlier attempt left pending), in one ledger read."""
        if not identities:
            return set(), set()
        wanted = self.spark.createDataFrame([(i,) for i in identities], "object_id STRING")
        rows = self.spark.table(self.ref).select("object_id", "status").join(wanted, "object_id", "left_semi") \
            .distinct().collect()
        committed = {r.object_id for r in rows if r.status == COMMITTED}
        pending = {r.object_id for r in rows if r.status == PENDING} - committed
        return committed, pending


    def record(self, batch, objects, status, snapshot_id=None):
        rows = [(o.identity, o.bucket, o.key, o.version_id, o.etag, o.size, batch, status, snapshot_id)
                for o in objects]
        df = self.spark.createDataFrame(rows, "object_id STRING, bucket STRING, object_key STRING, "
                                              "version_id STRING, etag STRING, size BIGINT, batch_id STRING, "
                                              "status STRING, target_snapshot_id BIGINT")
        df.selectExpr("*", "current_timestamp() AS recorded_at").writeTo(self.ref).append()

    def reconcile(self, target_catalog, target_table):
        """Mark committed every pending batch whose target commit exists; return how many were finished."""
        pending = self.spark.sql(
            "SELECT DISTINCT batch_id FROM %s WHERE status = '%s' AND batch_id NOT IN "
            "(SELECT batch_id FROM %s WHERE status = '%s')" % (self.ref, PENDING, self.ref, COMMITTED)).collect()
        finished = 0
        for row in pending:
            snapshot = find_batch_snapshot(self.spark, target_catalog, target_table, row.batch_id)
            if snapshot is None:
                continue  # never committed: its objects are read again when their messages come back
            self.spark.sql(
                "INSERT INTO %s SELECT object_id, bucket, object_key, version_id, etag, size, batch_id, '%s', %d, "
                "current_timestamp() FROM %s WHERE batch_id = '%s' AND status = '%s'"
                % (self.ref, COMMITTED, snapshot, self.ref, row.batch_id, PENDING))
            finished += 1
            log.info("finished a batch committed before an interruption",
                     extra={"batch_id": row.batch_id, "snapshot_id": snapshot})
        return finished
