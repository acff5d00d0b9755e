"""Scaled z-order (`compaction.zorder_method: scaled`): a partition's rows laid out on a grid of about one cell per
output file. Each column is cut into ranges at the partition's own quantiles (approx_percentile), so every column
weighs alike whatever its type or spread: for two columns and 16 files, 4 time ranges x 4 key ranges, the rows
ordered by cell (the first column's range first) and, within a file, by the last column. A query on either column
then reads about one file in four, where a z-curve over the same cells crosses more of them.

Iceberg's z-order interleaves the columns' raw bytes, and casts a `timestamp` to seconds first: a day's timestamps
then differ only in their last 17 of 64 bits, after every varying byte of a string key, and the layout is a sort
by the string.

The rewrite uses Iceberg's own machinery, one file group per partition: the group's files are staged as a scan
task set (their deletes applied on read), the sorted rows are written as that set's replacement, and one
RewriteFiles commit per partition swaps them, validated from the starting snapshot (a writer's new deletes
against these files make it fail and retry) with the starting data sequence number (equality deletes committed
later still apply to the new files). The runner verifies every rewrite commit row for row."""

import math
import uuid
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

from lakehouse_ops.engine.tables import jvm_table
from lakehouse_ops.errors import MaintenanceError
from lakehouse_ops.sqltext import quote_ident, table_ref

# Iceberg's writers roll a file when its estimated size reaches the target, which comes out well under it once
# compressed; its own rewrites therefore hand the writer 1.8 times the target (RewriteDataFiles' max file size).
WRITER_TARGET_RATIO = 1.8
Z = "__lakehouse_ops_z"


def numeric_sql(column: str, kind: str) -> str:
    """SQL: an order-preserving number for the column's value (strings: their first six UTF-8 bytes)."""
    c = quote_ident(column)
    if kind.startswith("timestamp"):
        return "CAST(unix_micros(CAST(%s AS TIMESTAMP)) AS DOUBLE)" % c
    if kind == "date":
        return "CAST(unix_date(%s) AS DOUBLE)" % c
    if kind in ("string", "binary"):
        raw = "hex(encode(%s, 'UTF-8'))" % c if kind == "string" else "hex(%s)" % c
        return "CAST(conv(rpad(substring(%s, 1, 12), 12, '0'), 16, 10) AS DOUBLE)" % raw
    if kind == "boolean":
        return "CAST(CAST(%s AS INT) AS DOUBLE)" % c
    return "CAST(%s AS DOUBLE)" % c


def finite(cuts: Optional[Sequence[Optional[float]]]) -> List[float]:
    """The distinct finite cut points, in order (a column of NaNs or nulls has none)."""
    return sorted({float(c) for c in cuts or [] if c is not None and math.isfinite(c)})


def rank_sql(number: str, cuts: Sequence[float]) -> str:
    """SQL: which of the quantile buckets bounded by `cuts` the number falls in (0 .. len(cuts); null: 0)."""
    if not cuts:
        return "0"
    return "coalesce(%s, 0)" % " + ".join("IF(%s >= %r, 1, 0)" % (number, float(c)) for c in cuts)


def grid(files: int, columns: int) -> List[int]:
    """Ranges per column so that the cells number about `files` (the last column takes the remainder)."""
    base = max(1, int(round(files ** (1.0 / columns))))
    sizes = [base] * (columns - 1)
    return sizes + [max(1, int(math.ceil(files / float(base ** (columns - 1)))))]


def cell_sql(ranks: Sequence[str], sizes: Sequence[int]) -> str:
    """SQL: the cell of the rows, numbered with the first column's range most significant."""
    terms = []
    for i, rank in enumerate(ranks):
        weight = 1
        for size in sizes[i + 1 :]:
            weight *= size
        terms.append("%s * %d" % (rank, weight))
    return "CAST(%s AS BIGINT)" % " + ".join(terms)


def rewrite(
    spark: Any, catalog: str, table: str, columns: Sequence[str], where: Optional[str], target_bytes: int
) -> Dict[str, Any]:
    """Rewrite the partitions `where` selects in scaled z-order; Iceberg's rewrite_data_files figures."""
    if not columns:
        raise MaintenanceError("scaled z-order of %s needs zorder_columns" % table)
    jvm = spark._jvm
    jtable = jvm_table(spark, catalog, table)
    if jtable is None:
        raise MaintenanceError("the Iceberg table object of %s is not available for a scaled z-order" % table)
    jtable.refresh()
    start = jtable.currentSnapshot()
    if start is None:
        return {"rewritten_data_files_count": 0, "added_data_files_count": 0, "rewritten_bytes_count": 0}
    scan = jtable.newScan().useSnapshot(start.snapshotId()).ignoreResiduals()
    if where:
        converter = jvm.org.apache.spark.sql.execution.datasources.SparkExpressionConverter
        parsed = converter.collectResolvedSparkExpression(spark._jsparkSession, table_ref(catalog, table), where)
        scan = scan.filter(converter.convertToIcebergExpression(parsed))
    groups: Dict[str, List[Any]] = defaultdict(list)
    tasks = scan.planFiles().iterator()
    while tasks.hasNext():
        task = tasks.next()
        groups[str(task.spec().specId()) + "/" + str(task.file().partition())].append(task)
    totals = {"rewritten_data_files_count": 0, "added_data_files_count": 0, "rewritten_bytes_count": 0}
    for group in groups.values():
        added = _rewrite_group(spark, jtable, start, group, columns, target_bytes)
        totals["rewritten_data_files_count"] += len(group)
        totals["added_data_files_count"] += added
        totals["rewritten_bytes_count"] += sum(int(t.file().fileSizeInBytes()) for t in group)
    return totals


def _singleton(spark: Any, name: str) -> Any:
    """`org.apache.iceberg.spark.<name>.get()`, called by reflection: py4j cannot pick a static get() beside an
    instance get(String)."""
    gateway = spark.sparkContext._gateway
    jclass = getattr(spark._jvm.org.apache.iceberg.spark, name)._java_lang_class
    method = jclass.getMethod("get", gateway.new_array(spark._jvm.java.lang.Class, 0))
    return method.invoke(None, gateway.new_array(spark._jvm.java.lang.Object, 0))


def _rewrite_group(
    spark: Any, jtable: Any, start: Any, group: List[Any], columns: Sequence[str], target_bytes: int
) -> int:
    cache, tasks, coordinator = (
        _singleton(spark, n) for n in ("SparkTableCache", "ScanTaskSetManager", "FileRewriteCoordinator")
    )
    group_id = uuid.uuid4().hex
    staged = spark._jvm.java.util.ArrayList()
    for task in group:
        staged.add(task)
    cache.add(group_id, jtable)
    tasks.stageTasks(jtable, group_id, staged)
    try:
        df = spark.read.format("iceberg").option("scan-task-set-id", group_id).load(group_id)
        kinds = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        numbers = [numeric_sql(c, kinds[c]) for c in columns]
        size = sum(int(t.file().fileSizeInBytes()) for t in group)
        sizes = grid(max(1, int(math.ceil(size / float(target_bytes)))), len(columns))
        cuts = [
            "approx_percentile(%s, array(%s)) AS q%d" % (x, ", ".join(str(j / float(n)) for j in range(1, n)), i)
            if n > 1
            else "array() AS q%d" % i
            for i, (x, n) in enumerate(zip(numbers, sizes))
        ]
        found = df.selectExpr(*cuts).collect()[0]
        ranks = [rank_sql(x, finite(found["q%d" % i])) for i, x in enumerate(numbers)]
        cells = 1
        for n in sizes:
            cells *= n
        ordered = (
            df.withColumn(Z, _expr(cell_sql(ranks, sizes)))
            .repartitionByRange(cells, Z)
            .sortWithinPartitions(Z, _expr(numbers[-1]))
            .drop(Z)
        )
        ordered.write.format("iceberg").option("rewritten-file-scan-task-set-id", group_id).option(
            "target-file-size-bytes", str(int(target_bytes * WRITER_TARGET_RATIO))
        ).option("use-table-distribution-and-ordering", "false").option("fanout-enabled", "true").mode("append").save(
            group_id
        )
        new_files = coordinator.fetchNewFiles(jtable, group_id)
        commit = jtable.newRewrite().validateFromSnapshot(start.snapshotId()).dataSequenceNumber(start.sequenceNumber())
        for task in group:
            commit = commit.deleteFile(task.file())
        added = 0
        iterator = new_files.iterator()
        while iterator.hasNext():
            commit = commit.addFile(iterator.next())
            added += 1
        commit.commit()
        return added
    finally:
        cache.remove(group_id)
        tasks.removeTasks(jtable, group_id)
        coordinator.clearRewrite(jtable, group_id)


def _expr(text: str) -> Any:
    from pyspark.sql import functions

    return functions.expr(text)
