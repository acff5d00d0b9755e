"""Rewrite position delete files (rewrite_position_delete_files) once they pile up.

Partition-scoped delete files (`write.delete.granularity=partition`) are merged into few files. With file-scoped
deletes (Iceberg 1.8+ default) each delete file serves one data file, so the rewrite mostly drops dangling deletes;
the lasting remedy there is compaction, which qualifies partitions by their delete-file count.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.health.partitions import in_catalog
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, left_behind_reason, params_of, skip

NAME = "rewrite_position_deletes"
COMMITS, REWRITES_DATA, DELETES_FILES = True, True, False


# Iceberg's defaults: a partition's delete files smaller than 75 % of the 64 MB target are rewritten once it holds
# this many.
MIN_INPUT_FILES = 5
MIN_FILE_SIZE = int(0.75 * 64 * 1024 * 1024)


@dataclass(frozen=True)
class PositionDeleteParams(Params):
    options: Mapping[str, str]
    where: Optional[str] = None  # set when a retry rewrites only the partitions left behind


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    p = policy.position_deletes
    if not p.enabled:
        return skip(NAME, "disabled by policy (position_deletes.enabled=false)")
    if health.format_version < 2:
        return skip(NAME, "format version 1 tables have no delete files")
    if health.format_version >= 3:
        return skip(
            NAME,
            "format v3 tables delete through deletion vectors (one per data file, merged as they are written), "
            "which rewrite_position_delete_files does not rewrite; compaction applies them",
        )
    if health.position_delete_files < p.min_delete_files:
        return skip(
            NAME,
            "%d position delete files, below the threshold of %d" % (health.position_delete_files, p.min_delete_files),
        )
    return Plan(
        action=NAME,
        run=True,
        reason="%d position delete files >= %d" % (health.position_delete_files, p.min_delete_files),
        params=PositionDeleteParams(options=dict(p.options)),
        partitions=tuple(x.partition for x in health.partitions if x.delete_files),
    )


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, PositionDeleteParams)
    args = {"table": table, "options": dict(p.options), "where": in_catalog(p.where, catalog)}
    rows = call(spark, catalog, "rewrite_position_delete_files", args)
    return rows[0] if rows else {}


def remaining(plan: Plan, policy: TablePolicy, table: Any, before_id: int) -> Optional[Plan]:
    """What the rewrite left behind: the planned partitions where at least min-input-files of the position delete
    files live at `before_id` are still live (a rewritten delete file always gets a new path). A plan for those
    partitions alone, or None when the plan was achieved."""
    from lakehouse_ops.health.files import POSITION_DELETES, still_live, where_for

    p = params_of(plan, PositionDeleteParams)
    least = int(p.options.get("min-input-files", MIN_INPUT_FILES))
    if p.options.get("rewrite-all") == "true":
        least = 1
    below = int(p.options.get("min-file-size-bytes", MIN_FILE_SIZE))
    still, now = still_live(table, before_id, plan.partitions, content=POSITION_DELETES, below=below)
    left = {part: paths for part, paths in still.items() if len(paths) >= least}
    if not left:
        return None
    return Plan(
        action=NAME,
        run=True,
        reason=left_behind_reason("position delete file(s)", left),
        params=dataclasses.replace(p, where=where_for(now, left, None, p.where)),
        partitions=tuple(sorted(left)),
    )


def summarize(outputs: Dict[str, Any]) -> str:
    return "rewrote %d position delete files into %d" % (
        outputs.get("rewritten_delete_files_count", 0),
        outputs.get("added_delete_files_count", 0),
    )
