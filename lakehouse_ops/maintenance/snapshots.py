"""Expire snapshots (expire_snapshots): older than the policy's age, keeping the last N.

Iceberg never expires the head of a branch or tag; gc.enabled=false tables are left alone.
"""
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.maintenance.base import Plan, skip
from lakehouse_ops.sqltext import Timestamp
from lakehouse_ops.units import iso_utc
from lakehouse_ops.units import now_ms as _now_ms

NAME = "expire_snapshots"
COMMITS = True


def plan(policy, health, now_ms=None):
    s = policy.snapshots
    if not s.enabled:
        return skip(NAME, "disabled by policy (snapshots.enabled=false)")
    if not health.gc_enabled:
        return skip(NAME, "table has gc.enabled=false")
    max_age_h = s.max_age_days * 24
    if health.snapshots <= s.retain_last:
        return skip(NAME, "%d snapshot(s), not more than retain_last %d" % (health.snapshots, s.retain_last))
    if health.oldest_snapshot_age_hours <= max_age_h:
        return skip(NAME, "oldest snapshot is %.1f h old, within the %.1f-day retention"
                    % (health.oldest_snapshot_age_hours, s.max_age_days))
    now_ms = _now_ms() if now_ms is None else now_ms
    older_than = iso_utc(now_ms - int(max_age_h * 3600 * 1000))
    return Plan(action=NAME, run=True,
                reason="oldest of %d snapshots is %.1f h old, older than %.1f days (keeping at least %d)"
                       % (health.snapshots, health.oldest_snapshot_age_hours, s.max_age_days, s.retain_last),
                params={"older_than": older_than, "retain_last": s.retain_last, "stream_results": s.stream_results,
                        "max_concurrent_deletes": s.max_concurrent_deletes})


def execute(spark, catalog, table, plan):
    p = plan.params
    rows = call(spark, catalog, "expire_snapshots",
                {"table": table, "older_than": Timestamp(p["older_than"]), "retain_last": p["retain_last"],
                 "stream_results": p["stream_results"], "max_concurrent_deletes": p.get("max_concurrent_deletes")},
                optional=("stream_results",))
    return rows[0] if rows else {}


def summarize(outputs):
    return "expired snapshots: deleted %d data files, %d manifests, %d manifest lists" % (
        outputs.get("deleted_data_files_count", 0), outputs.get("deleted_manifest_files_count", 0),
        outputs.get("deleted_manifest_lists_count", 0))
