"""Maintenance actions: one module each, following the protocol of `base.Action`: a pure
`plan(policy, health, now_ms)`, a thin `execute(spark, catalog, table, plan)`, and what the action declares about
itself (COMMITS, REWRITES_DATA, DELETES_FILES), which is all the runner goes by.

ORDER is the order they run in per table: properties first (so rewrites use the policy's file size and codec),
then the data rewrites, then the metadata rewrite, then the deletions. A new action is a module here, added to
ORDER (its NAME becomes a valid `--only` value everywhere).
"""

from lakehouse_ops.maintenance import compaction, manifests, orphans, position_deletes, properties, snapshots

ORDER = (properties, compaction, position_deletes, manifests, snapshots, orphans)
ACTIONS = {module.NAME: module for module in ORDER}


def plan_all(policy, health, now_ms=None, only=None):
    return [m.plan(policy, health, now_ms) for m in ORDER if only is None or m.NAME in only]


__all__ = ["ORDER", "ACTIONS", "plan_all"]
