"""Data retention (policy `retention: {column, keep_days, max_share}`): delete the rows older than the horizon.

The plan (pure) sorts the table's partitions by their time range on the retention column (health carries it for
day, hour, month and year partitions and identity dates): wholly past the horizon, holding the horizon, or newer.
Execution deletes in two statements: first every row before the end of the last wholly expired partition, which
Iceberg commits as a metadata-only delete (whole files dropped, nothing read or rewritten), then the rows before
the horizon itself, a row-level delete confined to the partitions holding it. Rows whose column is null are kept.

Guards: the plan refuses when the wholly expired partitions alone exceed `max_share` of the table's rows; execution
counts the rows before the horizon first and deletes nothing if they exceed it. Verified: afterwards no row before
the horizon is left, and the rows our commits removed equal the rows counted before, unless another writer
committed in between (then the first check stands alone, and the report says so). What a commit removed is the
table's live rows before it less those after it, each counted at its snapshot: a snapshot summary counts the rows
of the files a delete drops, and on a merge-on-read table some of those were deleted already.
The snapshots still holding the rows expire as the snapshots policy says (expire_snapshots runs later).
"""

import datetime
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.errors import MaintenanceError, SafetyError, VerificationError
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip
from lakehouse_ops.sqltext import quote_ident, table_ref
from lakehouse_ops.units import now_ms as _now_ms

NAME = "retention"
COMMITS, REWRITES_DATA, DELETES_FILES = True, False, True
DAY_MS = 86400 * 1000


@dataclass(frozen=True)
class RetentionParams(Params):
    column: str
    horizon_ms: int  # rows with column before this instant are deleted
    aligned_ms: Optional[int]  # end of the last wholly expired partition: before it, a metadata-only delete
    max_share: float
    whole_partitions: Tuple[Tuple[str, int], ...]  # (partition, rows) wholly past the horizon
    partial_partitions: Tuple[Tuple[str, int], ...]  # (partition, rows) holding the horizon, or without a range
    table_rows: int


def _sort(health: TableHealth, column: str, horizon_ms: int) -> Tuple[List[Any], List[Any]]:
    whole, partial = [], []
    for part in health.partitions:
        bounds = part.ranges.get(column)
        if bounds is None:
            partial.append(part)  # not partitioned by time on the column: rows of any age
        elif bounds[1] <= horizon_ms:
            whole.append(part)
        elif bounds[0] < horizon_ms:
            partial.append(part)
    return whole, partial


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    r = policy.retention
    if not r.enabled or r.column is None or r.keep_days is None:
        return skip(NAME, "no retention in the policy")
    now = now_ms if now_ms is not None else _now_ms()
    horizon = int(now - r.keep_days * DAY_MS)
    whole, partial = _sort(health, r.column, horizon)
    if not whole and not partial:
        return skip(NAME, "no partition holds rows older than %g days by %s" % (r.keep_days, r.column))
    whole_rows = sum(p.records for p in whole)
    if health.records and whole_rows > r.max_share * health.records:
        return skip(
            NAME,
            "refused: partitions wholly older than %g days hold %d of %d rows (%.1f %%), above retention.max_share "
            "%.1f %%; nothing deleted"
            % (r.keep_days, whole_rows, health.records, 100.0 * whole_rows / health.records, 100.0 * r.max_share),
        )
    aligned = max((p.ranges[r.column][1] for p in whole), default=None)
    reason = "%d partition(s) wholly older than %g days by %s (%d rows, metadata-only delete)" % (
        len(whole),
        r.keep_days,
        r.column,
        whole_rows,
    )
    if partial:
        reason += "; %d partition(s) with rows on both sides of the horizon or of any age (at most %d rows)" % (
            len(partial),
            sum(p.records for p in partial),
        )
    params = RetentionParams(
        column=r.column,
        horizon_ms=horizon,
        aligned_ms=aligned,
        max_share=r.max_share,
        whole_partitions=tuple((p.partition, p.records) for p in whole),
        partial_partitions=tuple((p.partition, p.records) for p in partial),
        table_rows=health.records,
    )
    return Plan(
        action=NAME,
        run=True,
        reason=reason,
        params=params,
        partitions=tuple(p.partition for p in whole + partial),
        estimated_bytes=sum(p.data_bytes for p in partial),
    )


def time_literal(kind: str, epoch_ms: int) -> str:
    """A Spark SQL literal of the column's own type, so the comparison reaches Iceberg's filter as it is."""
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=epoch_ms)
    if kind == "date":
        return "DATE '%s'" % moment.date().isoformat()
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    if kind == "timestamp_ntz":
        return "TIMESTAMP_NTZ '%s'" % text
    if kind == "timestamp":
        return "TIMESTAMP '%sZ'" % text
    raise MaintenanceError("retention column type %s is not a date or timestamp" % kind)


def _live_rows(spark: Any, ref: str, snapshot: Optional[int]) -> int:
    """The table's rows as of `snapshot`, deletes applied (0 before the first snapshot)."""
    if snapshot is None:
        return 0
    return int(spark.sql("SELECT count(*) AS n FROM %s VERSION AS OF %d" % (ref, snapshot)).collect()[0].n)


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, RetentionParams)
    ref = table_ref(catalog, table)
    spark.sql("REFRESH TABLE %s" % ref)
    kinds = {f.name: f.dataType.simpleString() for f in spark.table(ref).schema.fields}
    if p.column not in kinds:
        raise MaintenanceError("retention column %s is not a column of %s" % (p.column, table))
    column = quote_ident(p.column)
    # IS NOT NULL spelled out: Iceberg's metadata-only delete would otherwise drop the files of a null partition
    # whole (its partition evaluator orders null before every value), where SQL keeps rows whose column is null.
    older = "%s IS NOT NULL AND %s < %s" % (column, column, time_literal(kinds[p.column], p.horizon_ms))
    before_id = _current(spark, ref)
    total = spark.table(ref).count()
    expired = spark.table(ref).filter(older).count()
    if total and expired > p.max_share * total:
        raise SafetyError(
            "retention refused: %d of %d rows (%.1f %%) are older than the horizon, above max_share %.1f %%; "
            "nothing deleted" % (expired, total, 100.0 * expired / total, 100.0 * p.max_share)
        )
    commits: List[Dict[str, Any]] = []
    if expired:
        if p.aligned_ms is not None:
            aligned = "%s IS NOT NULL AND %s < %s" % (column, column, time_literal(kinds[p.column], p.aligned_ms))
            commits += _delete(spark, ref, aligned, "whole partitions")
        commits += _delete(spark, ref, older, "rows before the horizon")
    left = spark.table(ref).filter(older).count()
    removed = sum(c["rows_removed"] for c in commits)
    ours_only = _parents_are_ours(spark, ref, before_id, [c["snapshot_id"] for c in commits])
    if left or (ours_only and removed != expired):
        raise VerificationError(
            "retention of %s not verified: %d rows counted older than the horizon, %d removed by snapshots %s, %d "
            "left (roll back to snapshot %s if rows were lost)"
            % (table, expired, removed, [c["snapshot_id"] for c in commits], left, before_id)
        )
    return {"rows_deleted": expired, "table_rows": total, "commits": commits, "verified_by_snapshots": ours_only}


def _current(spark: Any, ref: str) -> Optional[int]:
    rows = spark.sql("SELECT snapshot_id FROM %s.snapshots ORDER BY committed_at DESC LIMIT 1" % ref).collect()
    return int(rows[0][0]) if rows else None


def _delete(spark: Any, ref: str, where: str, what: str) -> List[Dict[str, Any]]:
    """Run one DELETE; its commit as {what, snapshot id, operation, metadata_only, rows removed} ([] if none)."""
    before = _current(spark, ref)
    spark.sql("DELETE FROM %s WHERE %s" % (ref, where))
    spark.sql("REFRESH TABLE %s" % ref)
    rows = spark.sql(
        "SELECT snapshot_id, parent_id, operation, summary FROM %s.snapshots ORDER BY committed_at DESC LIMIT 1" % ref
    ).collect()
    if not rows or int(rows[0].snapshot_id) == before:
        return []  # nothing matched: Iceberg committed nothing
    summary = dict(rows[0].summary or {})
    return [
        {
            "what": what,
            "snapshot_id": int(rows[0].snapshot_id),
            "operation": rows[0].operation,
            "metadata_only": rows[0].operation == "delete" and int(summary.get("added-data-files", 0)) == 0,
            "data_files_removed": int(summary.get("deleted-data-files", 0)),
            "rows_removed": _live_rows(spark, ref, rows[0].parent_id)
            - _live_rows(spark, ref, int(rows[0].snapshot_id)),
        }
    ]


def _parents_are_ours(spark: Any, ref: str, before_id: Optional[int], ours: List[int]) -> bool:
    """True when our commits follow one another from `before_id` with no other writer's commit in between."""
    parents = {
        int(r.snapshot_id): (int(r.parent_id) if r.parent_id is not None else None)
        for r in spark.sql("SELECT snapshot_id, parent_id FROM %s.snapshots" % ref).collect()
    }
    expected = before_id
    for snapshot in ours:
        if parents.get(snapshot) != expected:
            return False
        expected = snapshot
    return True


def summarize(outputs: Dict[str, Any]) -> str:
    commits = outputs.get("commits", [])
    whole = sum(c["data_files_removed"] for c in commits if c.get("metadata_only"))
    return "%d rows deleted (%d data files dropped without a rewrite)" % (outputs.get("rows_deleted", 0), whole)
