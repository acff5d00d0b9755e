"""Table statistics (policy `statistics`): column NDV sketches with `compute_table_stats` (Puffin files) and
partition statistics with `compute_partition_stats`, so engines that plan from them (Trino, Athena, Spark's CBO)
see the table as it is.

Planned when the policy enables it and the statistics are missing, at least `max_staleness_snapshots` snapshots
behind the current one, or compaction is planned in the same run (statistics run after it). Statistics files of
expired snapshots are removed by `expire_snapshots` with them; the current ones are reachable, so orphan removal
keeps them.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance import compaction
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip

NAME = "statistics"
COMMITS, REWRITES_DATA, DELETES_FILES = True, False, False


@dataclass(frozen=True)
class StatisticsParams(Params):
    columns: Tuple[str, ...]  # empty: every column
    partition_stats: bool


def _why(policy: TablePolicy, health: TableHealth, now_ms: Optional[int]) -> Optional[str]:
    limit = policy.statistics.max_staleness_snapshots
    if health.snapshots_since_stats is None:
        return "no column statistics for the current snapshot or its ancestors"
    if health.snapshots_since_stats >= limit:
        return "column statistics %d snapshots behind (limit %d)" % (health.snapshots_since_stats, limit)
    if policy.statistics.partition_stats:
        behind = health.snapshots_since_partition_stats
        if behind is None:
            return "no partition statistics"
        if behind >= limit:
            return "partition statistics %d snapshots behind (limit %d)" % (behind, limit)
    if compaction.plan(policy, health, now_ms).run:
        return "compaction is planned: statistics follow it"
    return None


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    s = policy.statistics
    if not s.enabled:
        return skip(NAME, "disabled by policy (statistics.enabled=false)")
    if health.snapshot_id is None:
        return skip(NAME, "table has no snapshot yet")
    why = _why(policy, health, now_ms)
    if why is None:
        return skip(
            NAME,
            "statistics %d snapshot(s) behind, within %d"
            % (health.snapshots_since_stats or 0, s.max_staleness_snapshots),
        )
    return Plan(
        action=NAME,
        run=True,
        reason=why,
        params=StatisticsParams(columns=tuple(s.columns), partition_stats=s.partition_stats),
    )


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, StatisticsParams)
    rows = call(spark, catalog, "compute_table_stats", {"table": table, "columns": list(p.columns) or None})
    out: Dict[str, Any] = {"statistics_file": (rows[0] if rows else {}).get("statistics_file")}
    if p.partition_stats:
        rows = call(spark, catalog, "compute_partition_stats", {"table": table})
        out["partition_statistics_file"] = (rows[0] if rows else {}).get("partition_statistics_file")
    return out


def summarize(outputs: Dict[str, Any]) -> str:
    files = [outputs.get("statistics_file"), outputs.get("partition_statistics_file")]
    return "statistics written: %s" % ", ".join(f for f in files if f) if any(files) else "no statistics written"
