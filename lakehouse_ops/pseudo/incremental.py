"""What a pseudonymize (or reidentify) run converts: only what its source gained since the job's last commit.

Each commit to the job's target records, in its snapshot summary, how far into the source it converted:
- an Iceberg table source: its snapshot (`lakehouse-ops.source-snapshot-id`); the next run reads the appends
  between that snapshot and the source's current one (Iceberg's incremental read). A source changed otherwise
  since (rows deleted or rewritten) cannot be followed that way: the run says so and converts nothing (use
  `write_mode: overwrite` to convert the whole source again);
- files under a path: the instant up to which their modification times were taken (`lakehouse-ops.source-
  files-until`, a few minutes before the run, so files still being written are left for the next); the next run
  takes the files modified from then on.
The record and the converted rows land in one commit, so a run killed before it converted nothing and a rerun
after it converts nothing again. `write_mode: overwrite` converts the whole source every run (replacing the
target: also exactly once).
"""

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from lakehouse_ops.errors import LakehouseOpsError
from lakehouse_ops.sqltext import table_ref

SOURCE_SNAPSHOT = "lakehouse-ops.source-snapshot-id"
SOURCE_FILES_UNTIL = "lakehouse-ops.source-files-until"
# Files modified this recently are left for the next run (an object is listed once its upload completes, but a
# file written in place may still grow).
SETTLE_MS = 5 * 60 * 1000
JOB_PROPERTY = "lakehouse-ops.pseudo-job"


class SourceChanged(LakehouseOpsError):
    """The source changed in a way an incremental run cannot follow, or another run converted it meanwhile."""


@dataclass
class NewRows:
    frame: Optional[Any]  # the rows to convert; None: nothing new
    properties: Dict[str, str] = field(default_factory=dict)  # the position recorded with the commit
    since: Optional[str] = None  # the position the last commit recorded

    def describe(self) -> Dict[str, Any]:
        return {"since": self.since, "until": next(iter(self.properties.values()), None)}


def last_recorded(spark: Any, out_ref: str, tag: str) -> Dict[str, str]:
    """The summary of the job's newest commit on the target's main line ({} when there is none)."""
    try:
        rows = spark.sql(
            "SELECT s.summary FROM %s.snapshots s JOIN %s.history h ON s.snapshot_id = h.snapshot_id WHERE "
            "h.is_current_ancestor AND s.summary['%s'] = '%s' ORDER BY s.committed_at DESC LIMIT 1"
            % (out_ref, out_ref, JOB_PROPERTY, tag)
        ).collect()
    except Exception:  # no target table yet
        return {}
    return dict(rows[0].summary) if rows else {}


def _current(spark: Any, ref: str) -> Optional[int]:
    rows = spark.sql(
        "SELECT snapshot_id FROM %s.history WHERE is_current_ancestor ORDER BY made_current_at DESC LIMIT 1" % ref
    ).collect()
    return int(rows[0].snapshot_id) if rows else None


def from_table(spark: Any, source_ref: str, recorded: Dict[str, str], incremental: bool) -> NewRows:
    current = _current(spark, source_ref)
    since = recorded.get(SOURCE_SNAPSHOT) if incremental else None
    if current is None or (since is not None and int(since) == current):
        return NewRows(None, since=since)
    reader = spark.read.format("iceberg")
    if since is None:
        frame = reader.option("snapshot-id", str(current)).load(source_ref)
    else:
        # Iceberg's incremental read takes the appends between two snapshots and passes over any other commit:
        # rows deleted or rewritten since would silently differ. Such a commit stops the run instead.
        others = _not_appends(spark, source_ref, int(since), current)
        if others:
            raise SourceChanged(
                "%s changed by more than appends since snapshot %s (the last one converted): %s; an incremental "
                "run converts new rows only: set write_mode: overwrite to convert the whole source again"
                % (source_ref, since, ", ".join(others[:5]))
            )
        frame = reader.option("start-snapshot-id", since).option("end-snapshot-id", str(current)).load(source_ref)
    return NewRows(frame, {SOURCE_SNAPSHOT: str(current)}, since)


def _not_appends(spark: Any, ref: str, since: int, current: int) -> List[str]:
    """The commits after `since` up to `current` on the table's line that are not appends ("id (operation)"); a
    `since` no longer in the line (rolled back, expired) is itself named."""
    rows = {
        r.snapshot_id: r
        for r in spark.sql("SELECT snapshot_id, parent_id, operation FROM %s.snapshots" % ref).collect()
    }
    found, node = [], current
    while node is not None and node != since:
        row = rows.get(node)
        if row is None:
            return ["snapshot %d is no longer in the table's history" % since]
        if row.operation != "append":
            found.append("%d (%s)" % (row.snapshot_id, row.operation))
        node = row.parent_id
    return list(reversed(found)) if node == since else ["snapshot %d is no longer in the table's history" % since]


def from_files(spark: Any, path: str, fmt: str, recorded: Dict[str, str], incremental: bool) -> NewRows:
    from pyspark.sql import functions as F

    since = recorded.get(SOURCE_FILES_UNTIL) if incremental else None
    until = int(time.time() * 1000) - SETTLE_MS
    frame = spark.read.format(fmt).load(path)
    modified = F.col("_metadata.file_modification_time")
    window = modified < F.lit(until / 1000.0).cast("timestamp")
    if since is not None:
        window = window & (modified >= F.lit(int(since) / 1000.0).cast("timestamp"))
    return NewRows(frame.where(window), {SOURCE_FILES_UNTIL: str(until)}, since)


def new_rows(
    spark: Any, catalog: str, table: Optional[str], path: Optional[str], fmt: str, mode: str, out_ref: str, tag: str
) -> NewRows:
    """The rows a run converts: from the source table `table` or the files under `path` (format `fmt`); all of
    them with `mode` overwrite."""
    recorded = last_recorded(spark, out_ref, tag)
    incremental = mode != "overwrite"
    if table is not None:
        return from_table(spark, table_ref(catalog, table), recorded, incremental)
    return from_files(spark, str(path), fmt, recorded, incremental)


def still_from(spark: Any, out_ref: str, tag: str, new: NewRows) -> None:
    """Just before the commit: the target's record is still the one the rows were chosen from (another run of the
    job, after a lease it lost, would have moved it)."""
    now = last_recorded(spark, out_ref, tag)
    key = next(iter(new.properties), None)
    if key is not None and now.get(key) != new.since:
        raise SourceChanged(
            "another run of the job converted its source meanwhile (up to %s); nothing written" % now.get(key)
        )
