"""Maintenance actions: one module each, following the protocol of `base.Action`: a pure
`plan(policy, health, now_ms)`, a thin `execute(spark, catalog, table, plan)`, and what the action declares about
itself (COMMITS, REWRITES_DATA, DELETES_FILES), which is all the runner goes by.

ORDER is the order they run in per table: properties first (so rewrites use the policy's file size and codec),
then retention (no rewrite spends work on rows about to go), then the data rewrites and the removal of delete files
that apply to nothing, statistics of the result,
then the metadata rewrite, a recovery point (a tag) before anything expires, then the deletions. A new action is
a module here, added to ORDER (its NAME becomes a valid `--only` value everywhere).
"""

from typing import Any, Collection, List, Optional

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance import (
    compaction,
    dangling,
    manifests,
    orphans,
    position_deletes,
    properties,
    recovery_points,
    retention,
    snapshots,
    statistics,
)
from lakehouse_ops.maintenance.base import Plan, skip

ORDER = (
    properties,
    retention,
    compaction,
    position_deletes,
    dangling,
    statistics,
    manifests,
    recovery_points,
    snapshots,
    orphans,
)
ACTIONS = {module.NAME: module for module in ORDER}


def plan_one(module: Any, policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    """The action's own plan, unless other automation on the table does the same and the policy respects it."""
    plan: Plan = module.plan(policy, health, now_ms)
    if plan.run and module.NAME in health.automation_overlaps and policy.external_automation == "respect":
        others = "; ".join("%s: %s" % item for item in sorted(health.automation.items()))
        return skip(
            module.NAME,
            "left to other automation on the table (%s); set external_automation: ignore to run it too" % others,
        )
    return plan


def plan_all(
    policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None, only: Optional[Collection[str]] = None
) -> List[Plan]:
    return [plan_one(m, policy, health, now_ms) for m in ORDER if only is None or m.NAME in only]


__all__ = ["ORDER", "ACTIONS", "plan_all", "plan_one"]
