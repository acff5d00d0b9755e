"""Upserts by key (`ingest.upsert: {keys, order_by}`): a batch is merged into the target instead of appended.

The merge keeps, per key, the record with the greatest `order_by` value: the batch's own latest record per key
(ties broken by the source object, then the record's content, so a batch read twice picks the same one), which
replaces the table's row only when its `order_by` is greater (or the row's is null). Applying a batch twice
therefore changes nothing, and an old record arriving late never overwrites a newer one: a batch whose worker was
killed after its merge is simply merged again when its messages come back. Keys compare null-safely (`<=>`), so
a null key is one key, never a new row per delivery.

The merge runs under the table's `write.merge.isolation-level` (serializable by default): two workers inserting
one new key at once cannot both succeed; the loser's merge fails validation and is retried.
"""

import time
from typing import Any, Callable, Dict, List, Sequence

from lakehouse_ops.config.ingest import IngestUpsert
from lakehouse_ops.errors import IngestError
from lakehouse_ops.logs import get_logger

log = get_logger("ingest.upsert")
ATTEMPTS = 4  # merges that lose a concurrent commit's validation are run again this many times in all


def quoted(name: str) -> str:
    """A top-level column name as Spark reads it whole (a name holding `.` is not a nested field)."""
    return "`%s`" % name.replace("`", "``")


def merge_sql(target_ref: str, view: str, columns: Sequence[str], upsert: IngestUpsert) -> str:
    """The MERGE statement of a batch held in temporary view `view` (already one record per key)."""
    on = " AND ".join("t.%s <=> s.%s" % (quoted(k), quoted(k)) for k in upsert.keys)
    order = quoted(upsert.order_by)
    newer = "(s.{o} > t.{o} OR (t.{o} IS NULL AND s.{o} IS NOT NULL))".format(o=order)
    assign = ", ".join("t.%s = s.%s" % (quoted(c), quoted(c)) for c in columns)
    names = ", ".join(quoted(c) for c in columns)
    values = ", ".join("s.%s" % quoted(c) for c in columns)
    return (
        "MERGE INTO %s t USING %s s ON %s WHEN MATCHED AND %s THEN UPDATE SET %s "
        "WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)" % (target_ref, view, on, newer, assign, names, values)
    )


def latest_per_key(df: Any, upsert: IngestUpsert, source_column: str, data_columns: Sequence[str]) -> Any:
    """One record per key: the greatest `order_by` (nulls last), then the greatest source object, then content."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    content = F.to_json(F.struct(*[F.col(quoted(c)) for c in data_columns]))
    window = Window.partitionBy(*[F.col(quoted(k)) for k in upsert.keys]).orderBy(
        F.col(quoted(upsert.order_by)).desc_nulls_last(), F.col(quoted(source_column)).desc(), content.desc()
    )
    return (
        df.withColumn("_lakehouse_ops_rank", F.row_number().over(window))
        .filter("_lakehouse_ops_rank = 1")
        .drop("_lakehouse_ops_rank")
    )


def check_columns(upsert: IngestUpsert, columns: Sequence[str], target: str) -> None:
    missing = [c for c in list(upsert.keys) + [upsert.order_by] if c not in columns]
    if missing:
        raise IngestError(
            "ingest.upsert names %s, not columns of %s (its columns: %s)"
            % (", ".join(missing), target, ", ".join(columns))
        )


def merge(
    spark: Any,
    target_ref: str,
    rows: Any,
    upsert: IngestUpsert,
    batch: str,
    source_column: str,
    check: Callable[[Any], Any] = lambda source: None,
) -> Dict[str, Any]:
    """Merge `rows` (the target's columns) into the target; {"rows": records merged, "snapshot_id": the table's
    snapshot after the merge}. The batch's records are held for the merge (read once, merged from there);
    `check(source)` runs once they are read (`source`, held), before the merge (it may raise to stop it)."""
    columns: List[str] = list(rows.columns)
    source = latest_per_key(rows, upsert, source_column, columns).persist()
    view = "lakehouse_ops_batch_%s" % batch.replace("-", "_")
    try:
        count = source.count()
        check(source)
        source.createOrReplaceTempView(view)
        statement = merge_sql(target_ref, view, columns, upsert)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                spark.sql(statement)
                break
            except Exception as exc:
                if attempt == ATTEMPTS or not _lost_validation(exc):
                    raise
                log.info("merge met a concurrent commit; merging again", extra={"batch_id": batch, "try": attempt})
                time.sleep(0.5 * attempt)
                spark.sql("REFRESH TABLE %s" % target_ref)
    finally:
        spark.catalog.dropTempView(view)
        source.unpersist()
    snapshot = spark.sql("SELECT snapshot_id FROM %s.snapshots ORDER BY committed_at DESC LIMIT 1" % target_ref)
    return {"rows": count, "snapshot_id": int(snapshot.collect()[0][0])}


def _lost_validation(exc: BaseException) -> bool:
    text = str(exc)
    return "ValidationException" in text or "CommitFailedException" in text or "conflicting" in text.lower()
