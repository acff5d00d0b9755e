"""Remove dangling delete files: delete files that apply to no live data file of their partition (a position
delete older than every data file there, an equality delete not newer than all of them, or any delete left in a
partition without data). Readers still open them on every scan; removing them changes no row.

Planned from health (per-partition data and delete sequence numbers); run with Iceberg's own
RemoveDanglingDeleteFiles action, a metadata-only commit (no data file is read or written), and verified like a
rewrite: row count and checksum before and after. Compaction with `remove_dangling_deletes` drops those of the
partitions it rewrites in its own commit; this action takes the rest. Unpartitioned tables need neither: Iceberg
drops their dangling deletes at each commit.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.engine.tables import jvm_table
from lakehouse_ops.errors import MaintenanceError
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip

NAME = "remove_dangling_deletes"
COMMITS, REWRITES_DATA, DELETES_FILES = True, True, False
SAMPLE = 20


@dataclass(frozen=True)
class DanglingParams(Params):
    expected: int  # dangling delete files health counted


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    if not policy.compaction.remove_dangling_deletes:
        return skip(NAME, "disabled by policy (compaction.remove_dangling_deletes=false)")
    if health.format_version < 2 or not health.dangling_delete_files:
        return skip(NAME, "no dangling delete files")
    if not health.partition_spec:
        return skip(
            NAME,
            "unpartitioned: Iceberg drops its %d dangling delete files at the next commit"
            % health.dangling_delete_files,
        )
    parts = [p for p in health.partitions if p.dangling_delete_files]
    return Plan(
        action=NAME,
        run=True,
        reason="%d delete files apply to no live data file (%s); removed by a metadata-only commit"
        % (
            health.dangling_delete_files,
            ", ".join("%s: %d" % (p.partition or "unpartitioned", p.dangling_delete_files) for p in parts[:5])
            + ("; and %d more partitions" % (len(parts) - 5) if len(parts) > 5 else ""),
        ),
        params=DanglingParams(expected=health.dangling_delete_files),
        partitions=tuple(p.partition for p in parts),
    )


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, DanglingParams)
    jtable = jvm_table(spark, catalog, table)
    if jtable is None:
        raise MaintenanceError("the Iceberg table object of %s is not available to remove dangling deletes" % table)
    actions = spark._jvm.org.apache.iceberg.spark.actions.SparkActions.get(spark._jsparkSession)
    removed = actions.removeDanglingDeleteFiles(jtable).execute().removedDeleteFiles().iterator()
    paths = []
    while removed.hasNext():
        paths.append(str(removed.next().location()))
    return {"removed_delete_files": len(paths), "planned": p.expected, "sample": sorted(paths)[:SAMPLE]}


def summarize(outputs: Dict[str, Any]) -> str:
    return "removed %d dangling delete file(s)" % outputs.get("removed_delete_files", 0)
