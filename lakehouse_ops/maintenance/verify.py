"""Prove a data rewrite changed no row; undo it when it did.

A rewrite (compaction, position-delete rewrite) commits `replace` snapshots. Concurrent writers may commit
appends in between, so the table as a whole is not comparable before and after. What is comparable: each run of
consecutive rewrite snapshots against the snapshot just before it. For each run we compare the row count and an
order-independent checksum (the sum of a 64-bit hash of every row) on the rewritten partitions; on a format v3
table each row's lineage (`_row_id`, `_last_updated_sequence_number`) is part of its hash.

On a mismatch the table goes back to the snapshot taken before the action; appends committed by others since are
re-applied with their summary entries (reapply_append), so no appended row is lost and an ingest batch stays known
as landed. Which appends: those the rollback took off the
table's main line, read from the table's history log after the rollback, because other writers go on committing
while the checksums run. If others committed anything but appends, we do not guess: the action fails with the
snapshot ids needed to repair by hand.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from lakehouse_ops.engine.procedures import call
from lakehouse_ops.engine.tables import REAPPLIED_FROM, reapply_append
from lakehouse_ops.errors import VerificationError, first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref

log = get_logger("verify")


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: int
    parent_id: Optional[int]
    operation: str


def current_snapshot_id(spark: Any, catalog: str, table: str) -> Optional[int]:
    """The snapshot at the head of the table's main line, or None for a table without one."""
    rows = spark.sql(
        "SELECT snapshot_id FROM %s.history WHERE is_current_ancestor ORDER BY made_current_at DESC "
        "LIMIT 1" % table_ref(catalog, table)
    ).collect()
    return int(rows[0].snapshot_id) if rows else None


def snapshots_since(spark: Any, catalog: str, table: str, since_id: Optional[int]) -> List[Snapshot]:
    """Snapshots in the current ancestry committed after `since_id`, oldest first."""
    ref = table_ref(catalog, table)
    rows = spark.sql(
        "SELECT s.snapshot_id, s.parent_id, s.operation FROM %s.snapshots s JOIN %s.history h "
        "ON s.snapshot_id = h.snapshot_id WHERE h.is_current_ancestor" % (ref, ref)
    ).collect()
    by_id = {r.snapshot_id: Snapshot(r.snapshot_id, r.parent_id, r.operation) for r in rows}
    head = current_snapshot_id(spark, catalog, table)
    chain: List[Snapshot] = []
    while head is not None and head != since_id and head in by_id:
        chain.append(by_id[head])
        head = by_id[head].parent_id
    return list(reversed(chain))


# Row lineage of a format v3 table: a rewrite must keep each row's id and last-updated sequence number.
LINEAGE = ("_row_id", "_last_updated_sequence_number")


def lineage_columns(spark: Any, ref: str) -> List[str]:
    """The row-lineage metadata columns the runtime exposes for a v3 table ([] for other tables or runtimes)."""
    props = {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES %s" % ref).collect()}
    if int(props.get("format-version", "1")) < 3:
        return []
    try:
        spark.sql("SELECT %s FROM %s LIMIT 0" % (", ".join(LINEAGE), ref)).schema
    except Exception:
        return []
    return list(LINEAGE)


def _hash_columns(spark: Any, ref: str) -> List[str]:
    from pyspark.sql.types import MapType

    cols = []
    for f in spark.table(ref).schema.fields:
        name = "`%s`" % f.name.replace("`", "``")
        # Spark refuses to hash maps; their JSON text hashes the same content.
        cols.append("to_json(%s)" % name if isinstance(f.dataType, MapType) else name)
    return cols + lineage_columns(spark, ref)


def checksum(spark: Any, catalog: str, table: str, snapshot_id: int, where: Optional[str] = None) -> Tuple[int, str]:
    """(row count, order-independent checksum) of a snapshot, optionally restricted by `where`."""
    ref = table_ref(catalog, table)
    cols = _hash_columns(spark, ref)
    query = (
        "SELECT count(*) AS n, coalesce(sum(CAST(xxhash64(%s) AS DECIMAL(38,0))), 0) AS h FROM %s "
        "VERSION AS OF %d" % (", ".join(cols), ref, snapshot_id)
    )
    if where:
        query += " WHERE " + where
    row = spark.sql(query).collect()[0]
    return int(row.n), str(row.h)


def rewrite_runs(chain: Sequence[Snapshot], is_rewrite: Callable[[Snapshot], bool]) -> List[Tuple[Optional[int], int]]:
    """Group consecutive rewrite snapshots: [(parent id, last id of the run), ...]."""
    runs: List[Tuple[Optional[int], int]] = []
    start: Optional[int] = None
    open_run = False
    last = 0
    for snap in chain:
        if is_rewrite(snap):
            if not open_run:
                start, open_run = snap.parent_id, True
            last = snap.snapshot_id
        elif open_run:
            runs.append((start, last))
            open_run = False
    if open_run:
        runs.append((start, last))
    return runs


def _is_replace(snap: Snapshot) -> bool:
    return snap.operation == "replace"


def _compare_runs(
    spark: Any, catalog: str, table: str, runs: Sequence[Tuple[Optional[int], int]], where: Optional[str]
) -> List[Dict[str, Any]]:
    """Row count and checksum of each run of rewrites against the snapshot before it."""
    checks = []
    for parent, last in runs:
        if parent is None:
            continue
        expected = checksum(spark, catalog, table, parent, where)
        actual = checksum(spark, catalog, table, last, where)
        checks.append(
            {
                "before_snapshot": parent,
                "after_snapshot": last,
                "rows_before": expected[0],
                "rows_after": actual[0],
                "match": expected == actual,
            }
        )
    return checks


def verify_rewrites(
    spark: Any,
    catalog: str,
    table: str,
    before_id: Optional[int],
    where: Optional[str] = None,
    is_rewrite: Callable[[Snapshot], bool] = _is_replace,
) -> Dict[str, Any]:
    """Compare every run of rewrite snapshots since `before_id`; roll back on any mismatch.

    Returns a dict for the action's outputs; raises VerificationError after rolling back.
    """
    chain = snapshots_since(spark, catalog, table, before_id)
    checks = _compare_runs(spark, catalog, table, rewrite_runs(chain, is_rewrite), where)
    bad = [c for c in checks if not c["match"]]
    summary = {"rewrite_commits": sum(1 for s in chain if is_rewrite(s)), "checks": checks, "verified": not bad}
    if not bad:
        return summary
    detail = "; ".join(
        "snapshot %d has %d rows where %d has %d"
        % (c["after_snapshot"], c["rows_after"], c["before_snapshot"], c["rows_before"])
        for c in bad
    )
    if before_id is None:
        raise VerificationError(
            "rewrite of %s changed data (%s) and the table had no snapshot to return to" % (table, detail)
        )
    # The checksums take a while and other writers go on committing: decide on the table as it is now.
    not_appends = [
        s for s in snapshots_since(spark, catalog, table, before_id) if not is_rewrite(s) and s.operation != "append"
    ]
    if not_appends:
        raise VerificationError(
            "rewrite of %s changed data (%s); not rolled back automatically because other writers committed "
            "non-append snapshots since (%s). Repair: roll back to snapshot %d and re-apply those commits"
            % (table, detail, ", ".join("%d (%s)" % (s.snapshot_id, s.operation) for s in not_appends), before_id)
        )
    reapplied = rollback_and_reapply(spark, catalog, table, before_id, is_rewrite)
    log.error(
        "rewrite changed data; rolled back",
        extra={"table": table, "snapshot": before_id, "reapplied_appends": len(reapplied)},
    )
    raise VerificationError(
        "rewrite of %s changed data (%s); rolled back to snapshot %d and re-applied %d "
        "concurrent append(s)" % (table, detail, before_id, len(reapplied))
    )


def detached_since(spark: Any, catalog: str, table: str, before_id: int) -> List[Snapshot]:
    """Snapshots that were once on the table's main line after `before_id` and are not any more, oldest first,
    leaving out those already re-applied (cherry-picked, or fast-forwarded back onto the line).

    Read from the table's own history log after a rollback, not from a list taken before it: whatever another
    writer committed up to the instant the rollback landed is in that log.
    """
    ref = table_ref(catalog, table)
    snaps = {
        r.snapshot_id: r
        for r in spark.sql(
            "SELECT snapshot_id, parent_id, operation, committed_at, summary FROM %s.snapshots" % ref
        ).collect()
    }
    log_rows = spark.sql("SELECT snapshot_id, is_current_ancestor FROM %s.history" % ref).collect()
    current = {r.snapshot_id for r in log_rows if r.is_current_ancestor}
    picked = {
        int(snaps[i].summary[key])
        for i in current
        if i in snaps and snaps[i].summary
        for key in ("source-snapshot-id", REAPPLIED_FROM)
        if key in snaps[i].summary
    }
    detached: Dict[int, Any] = {}
    for head in {r.snapshot_id for r in log_rows if not r.is_current_ancestor}:
        path: List[int] = []
        node = head
        while node is not None and node in snaps and node not in current:
            path.append(node)
            node = snaps[node].parent_id
        if node == before_id:
            detached.update((i, snaps[i]) for i in path)
    ordered = sorted(detached.values(), key=lambda r: (r.committed_at, r.snapshot_id))
    return [
        Snapshot(r.snapshot_id, r.parent_id, r.operation)
        for r in ordered
        if r.snapshot_id not in picked and r.snapshot_id not in current
    ]


DETACHED_TAG = "lakehouse-ops-detached-%d"


def keep_detached(spark: Any, catalog: str, table: str, snapshots: Sequence[Snapshot]) -> List[str]:
    """Tag snapshots a rollback left off the main line and that could not be re-applied, so that expiry keeps
    them (and their files) until someone re-applies them; the tags' names (a snapshot already tagged keeps its)."""
    ref = table_ref(catalog, table)
    tags = []
    for snap in snapshots:
        tag = DETACHED_TAG % snap.snapshot_id
        try:
            spark.sql("ALTER TABLE %s CREATE TAG IF NOT EXISTS `%s` AS OF VERSION %d" % (ref, tag, snap.snapshot_id))
            tags.append(tag)
        except Exception as exc:
            log.error(
                "a detached snapshot could not be tagged", extra={"snapshot": snap.snapshot_id, "error": str(exc)[:300]}
            )
    return tags


def rollback_and_reapply(
    spark: Any, catalog: str, table: str, before_id: int, is_rewrite: Callable[[Snapshot], bool] = _is_replace
) -> List[Snapshot]:
    """Return the table to `before_id` and re-apply every append other writers committed after it, each with its
    summary entries (an ingest batch stays known as landed: it is never published twice).

    Returns the re-applied snapshots. Every append is tried; a non-append another writer slipped in just before
    the rollback, and an append whose re-apply failed, are tagged (kept from expiry) and named, with what to do.
    """
    call(spark, catalog, "rollback_to_snapshot", {"table": table, "snapshot_id": before_id})
    reapplied: List[Snapshot] = []
    left: List[Tuple[Snapshot, str]] = []
    for snap in detached_since(spark, catalog, table, before_id):
        if is_rewrite(snap):
            continue
        if snap.operation != "append":
            left.append((snap, snap.operation))
            continue
        try:
            reapply_append(spark, catalog, table, snap.snapshot_id)
            reapplied.append(snap)
        except Exception as exc:
            left.append((snap, "append; re-applying it failed: %s" % first_line(exc)))
    if left:
        tags = keep_detached(spark, catalog, table, [snap for snap, _ in left])
        raise VerificationError(
            "%s was rolled back to snapshot %d and %d concurrent append(s) were re-applied, but %d snapshot(s) "
            "other writers committed are off the table's main line: %s. They are tagged (%s), so expiry keeps "
            "them; re-apply each by hand (cherrypick_snapshot, or repeat the change), then drop its tag"
            % (
                table,
                before_id,
                len(reapplied),
                len(left),
                "; ".join("%d (%s)" % (snap.snapshot_id, why) for snap, why in left),
                ", ".join(tags) or "tagging failed too",
            )
        )
    return reapplied
