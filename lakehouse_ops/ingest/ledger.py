"""The ingest ledger and the target commit: together they make ingest exactly-once.

Protocol for one batch (a batch id is derived from the sorted identities of the objects it writes):
1. ledger: one `pending` row per object, with the batch id;
2. target: one append whose snapshot summary carries `lakehouse-ops.batch-id`;
3. ledger: one `committed` row per object, with the target snapshot id;
4. only then the SQS messages are deleted.
A process killed anywhere leaves either no target commit (the objects are read again on redelivery) or a target
commit whose batch id is found in the table's snapshots; the job finishes such batches (`interrupted`) at the next
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

    def committed(self, identities):
        """Those of `identities` already committed by some earlier batch."""
        if not identities:
            return set()
        wanted = self.spark.createDataFrame([(i,) for i in identities], "object_id STRING")
        done = self.spark.table(self.ref).filter("status = '%s'" % COMMITTED).select("object_id")
        return {r.object_id for r in done.join(wanted, "object_id", "left_semi").distinct().collect()}

    def record(self, batch, objects, status, snapshot_id=None):
        rows = [(o.identity, o.bucket, o.key, o.version_id, o.etag, o.size, batch, status, snapshot_id)
                for o in objects]
        df = self.spark.createDataFrame(rows, "object_id STRING, bucket STRING, object_key STRING, "
                                              "version_id STRING, etag STRING, size BIGINT, batch_id STRING, "
                                              "status STRING, target_snapshot_id BIGINT")
        df.selectExpr("*", "current_timestamp() AS recorded_at").writeTo(self.ref).append()

    def interrupted(self, target_catalog, target_table):
        """[(batch id, target snapshot id, objects)] for pending batches whose target commit exists.

        Pending batches without a commit never happened: their objects are read again when their messages return.
        """
        from lakehouse_ops.ingest.messages import S3Object
        pending = self.spark.sql(
            "SELECT DISTINCT batch_id FROM %s WHERE status = '%s' AND batch_id NOT IN "
            "(SELECT batch_id FROM %s WHERE status = '%s')" % (self.ref, PENDING, self.ref, COMMITTED)).collect()
        out = []
        for row in pending:
            snapshot = find_batch_snapshot(self.spark, target_catalog, target_table, row.batch_id)
            if snapshot is None:
                continue
            objects = [S3Object(bucket=r.bucket, key=r.object_key, size=r.size, etag=r.etag,
                                version_id=r.version_id)
                       for r in self.spark.table(self.ref).filter(
                           "batch_id = '%s' AND status = '%s'" % (row.batch_id, PENDING)).collect()]
            out.append((row.batch_id, snapshot, objects))
        return out
