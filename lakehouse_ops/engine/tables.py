"""The Iceberg table object in the Spark JVM, for what no procedure offers: the current metadata file (has anyone
committed since?) and deleting a checked list of files: on S3 with the process's shared boto3 client (multi-object
deletes on a pool of threads that backs off together under SlowDown and grows again), elsewhere, or where S3
refuses this process's credentials, with the table's own FileIO (in bulk where it supports it)."""

from typing import Any, List, Optional, Tuple

from lakehouse_ops.aws import objects
from lakehouse_ops.aws.clients import describe_failure, shared_client
from lakehouse_ops.aws.textio import is_s3
from lakehouse_ops.logs import get_logger

log = get_logger("engine.tables")


def jvm_table(spark: Any, catalog: str, table: str) -> Optional[Any]:
    """The org.apache.iceberg.Table of `catalog`.`table` (namespace.name) as the session's catalog loads it, or None
    when the session cannot hand it out (another catalog implementation)."""
    try:
        jvm = spark._jvm
        jcatalog = spark._jsparkSession.sessionState().catalogManager().catalog(catalog)
        parts = table.split(".")
        namespace = spark.sparkContext._gateway.new_array(jvm.java.lang.String, len(parts) - 1)
        for index, part in enumerate(parts[:-1]):
            namespace[index] = part
        identifier = jvm.org.apache.spark.sql.connector.catalog.Identifier.of(namespace, parts[-1])
        return jcatalog.loadTable(identifier).table()
    except Exception as exc:
        log.warning("the Iceberg table object is not available", extra={"table": table, "error": str(exc)[:200]})
        return None


def current_metadata(jtable: Any) -> str:
    """The table's current metadata file, read fresh (a cached table object is refreshed in place, so procedures
    that load it through the same catalog see this state too)."""
    jtable.refresh()
    return str(jtable.operations().current().metadataFileLocation())


DELETE_THREADS = 16  # delete requests at once when the policy sets no max_concurrent_deletes


def delete_files(spark: Any, jtable: Any, paths: List[str], threads: Optional[int] = None) -> Tuple[int, str]:
    """Delete `paths`; returns how many deletes failed (they stay on storage; the caller checks what is left) and
    what deleted them. `threads`: requests at once (the policy's max_concurrent_deletes)."""
    if paths and all(is_s3(path) for path in paths):
        try:
            left = objects.delete_keys(shared_client("s3"), paths, threads or DELETE_THREADS)
            if left:
                log.warning("some deletes failed", extra={"failed": len(left)})
            return len(left), "S3 multi-object deletes (adaptive retries)"
        except Exception as exc:
            reason = describe_failure(exc)
            if reason is None or jtable is None:
                raise
            log.warning("S3 refused this process's deletes: the table's FileIO deletes", extra={"error": reason})
    return _delete_with_fileio(spark, jtable, paths), "the table's FileIO"


def _delete_with_fileio(spark: Any, jtable: Any, paths: List[str]) -> int:
    """Bulk where the table's FileIO supports it (S3FileIO's multi-object deletes, HadoopFileIO's parallel
    deletes), else one by one."""
    jlist = spark._jvm.java.util.ArrayList()
    for path in paths:
        jlist.add(path)
    io = jtable.io()
    try:
        io.deleteFiles(jlist)
        return 0
    except Exception as exc:
        text = str(exc)
        if "BulkDeletionFailureException" in text:
            failed = int(exc.java_exception.numberFailedObjects()) if hasattr(exc, "java_exception") else -1
            log.warning("some deletes failed", extra={"failed": failed, "error": text[:200]})
            return failed
        if "deleteFiles" not in text:
            raise
    failed = 0
    for path in paths:  # a FileIO without bulk operations
        try:
            io.deleteFile(path)
        except Exception as exc:
            failed += 1
            log.warning("a delete failed", extra={"error": str(exc)[:200]})
    return failed


# Summary entries Iceberg writes for every commit, or that say how a commit was made: a re-applied append gets its
# own, and keeps every other entry (a batch id, a published write-audit-publish id, a writer's own properties).
COMPUTED_SUMMARY = (
    "added-",
    "deleted-",
    "removed-",
    "total-",
    "changed-partition",
    "partition-summaries",
    "iceberg-version",
    "engine-",
    "app-id",
    "wap.id",
    "source-snapshot-id",
    "replace-partitions",
)
REAPPLIED_FROM = "lakehouse-ops.reapplied-from"


def reapply_append(spark: Any, catalog: str, table: str, snapshot_id: int) -> None:
    """Commit the data files an append snapshot added again, onto the table's current state, with its summary
    entries (unlike `cherrypick_snapshot`, whose copy keeps neither a batch id nor the published write-audit-publish
    id, so a batch would no longer be known as landed). A staged snapshot that had been fast-forwarded keeps its id
    as published."""
    jtable = jvm_table(spark, catalog, table)
    if jtable is None:
        raise RuntimeError(
            "the Iceberg table object of %s is not available to re-apply snapshot %d" % (table, snapshot_id)
        )
    jtable.refresh()
    snapshot = jtable.snapshot(snapshot_id)
    append = jtable.newFastAppend()
    files = snapshot.addedDataFiles(jtable.io()).iterator()
    while files.hasNext():
        append.appendFile(files.next())
    summary = {str(k): str(v) for k, v in dict(snapshot.summary()).items()}
    for key, value in summary.items():
        if not key.startswith(COMPUTED_SUMMARY):
            append.set(key, value)
    if "wap.id" in summary and "published-wap-id" not in summary:
        append.set("published-wap-id", summary["wap.id"])
    append.set(REAPPLIED_FROM, str(snapshot_id))
    append.commit()
