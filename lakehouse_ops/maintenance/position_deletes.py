"""Rewrite position delete files (rewrite_position_delete_files) once they pile up.

Partition-scoped delete files (`write.delete.granularity=partition`) are merged into few files. With file-scoped
deletes (Iceberg 1.8+ default) each delete file serves one data file, so the rewrite mostly drops dangling deletes;
the lasting remedy there is compaction, which qualifies partitions by their delete-file count.
"""

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip

NAME = "rewrite_position_deletes"
COMMITS, REWRITES_DATA, DELETES_FILES = True, True, False


@dataclass(frozen=True)
class PositionDeleteParams(Params):
    options: Mapping[str, str]


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    p = policy.position_deletes
    if not p.enabled:
        return skip(NAME, "disabled by policy (position_deletes.enabled=false)")
    if health.format_version < 2:
        return skip(NAME, "format version 1 tables have no delete files")
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
    rows = call(spark, catalog, "rewrite_position_delete_files", {"table": table, "options": dict(p.options)})
    return rows[0] if rows else {}


def summarize(outputs: Dict[str, Any]) -> str:
    return "rewrote %d position delete files into %d" % (
        outputs.get("rewritten_delete_files_count", 0),
        outputs.get("added_delete_files_count", 0),
    )
