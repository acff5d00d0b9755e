"""Maintenance actions: one module each, with a pure `plan(policy, health)` and an `execute(spark, ...)`.

ORDER is the order they run in per table: properties first (so rewrites use the policy's file size and codec),
then the data rewrites, then the metadata rewrite, then the deletions.
"""
from lakehouse_ops.maintenance import compaction, manifests, orphans, position_deletes, properties, snapshots

ORDER = (properties, compaction, position_deletes, manifests, snapshots, orphans)
ACTIONS = {module.NAME: module for module in ORDER}
# Rewrites of data files: verified row-for-row, rolled back on mismatch.
DATA_REWRITES = {compaction.NAME, position_deletes.NAME}
# Deletions: skipped when an earlier action on the same table failed.
DESTRUCTIVE = {snapshots.NAME, orphans.NAME}


def plan_all(policy, health, now_ms=None, only=None):
    return [m.plan(policy, health, now_ms) for m in ORDER if only is None or m.NAME in only]


__all__ = ["ORDER", "ACTIONS", "DATA_REWRITES", "DESTRUCTIVE", "plan_all"]
