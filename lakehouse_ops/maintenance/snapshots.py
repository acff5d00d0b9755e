"""Expire snapshots (expire_snapshots): older than the policy's age, keeping the last N.

Iceberg never expires the head of a branch or tag; gc.enabled=false tables are left alone.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.health.reach import Reach, nested_in
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip
from lakehouse_ops.maintenance.storage import after_deletes
from lakehouse_ops.sqltext import Timestamp, table_ref
from lakehouse_ops.units import HOUR_MS, iso_utc
from lakehouse_ops.units import now_ms as _now_ms

NAME = "expire_snapshots"
COMMITS, REWRITES_DATA, DELETES_FILES = True, False, True


@dataclass(frozen=True)
class ExpireParams(Params):
    older_than_ms: int  # snapshots older than this instant expire ...
    retain_last: int  # ... except the last N (and every branch or tag head)
    stream_results: bool = True
    max_concurrent_deletes: Optional[int] = None
    snapshot_ids: Tuple[int, ...] = ()  # only these snapshots (erasure), when given
    verify_deletions: bool = True
    location: str = ""  # the table's location: on a versioned bucket, what the deletes left is removed or reported
    versioned_deletes: bool = False
    nested: Tuple[str, ...] = ()  # tables nested in the location: their versions are theirs to remove


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    s = policy.snapshots
    if not s.enabled:
        return skip(NAME, "disabled by policy (snapshots.enabled=false)")
    if not health.gc_enabled:
        return skip(NAME, "table has gc.enabled=false")
    max_age_h = s.max_age_days * 24
    if health.snapshots <= s.retain_last:
        return skip(NAME, "%d snapshot(s), not more than retain_last %d" % (health.snapshots, s.retain_last))
    if health.oldest_snapshot_age_hours <= max_age_h:
        return skip(
            NAME,
            "oldest snapshot is %.1f h old, within the %.1f-day retention"
            % (health.oldest_snapshot_age_hours, s.max_age_days),
        )
    now_ms = _now_ms() if now_ms is None else now_ms
    return Plan(
        action=NAME,
        run=True,
        reason="oldest of %d snapshots is %.1f h old, older than %.1f days (keeping at least %d)"
        % (health.snapshots, health.oldest_snapshot_age_hours, s.max_age_days, s.retain_last),
        params=ExpireParams(
            older_than_ms=now_ms - int(max_age_h * HOUR_MS),
            retain_last=s.retain_last,
            stream_results=s.stream_results,
            max_concurrent_deletes=s.max_concurrent_deletes,
            verify_deletions=s.verify_deletions,
            location=health.location,
            versioned_deletes=policy.storage.versioned_deletes,
        ),
    )


def needs_neighbors(plan: Plan) -> bool:
    """Only versioned deletes reach beyond the table's own files: they must know the tables nested in it."""
    return params_of(plan, ExpireParams).versioned_deletes


def with_neighbors(plan: Plan, table: str, reach: Reach, ignore: Sequence[str] = ()) -> Plan:
    p = params_of(plan, ExpireParams)
    return dataclasses.replace(plan, params=dataclasses.replace(p, nested=nested_in(reach, table, p.location)))


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, ExpireParams)
    args = {
        "table": table,
        "older_than": Timestamp(iso_utc(p.older_than_ms)),
        "retain_last": p.retain_last,
        "stream_results": p.stream_results,
        "max_concurrent_deletes": p.max_concurrent_deletes,
    }
    if p.snapshot_ids:
        args["snapshot_ids"] = list(p.snapshot_ids)
    before = _reachable(spark, catalog, table).localCheckpoint() if p.verify_deletions else None
    rows = call(spark, catalog, "expire_snapshots", args, optional=("stream_results",))
    outputs = rows[0] if rows else {}
    if before is not None:
        left_behind = _check_deletions(
            spark, before.join(_reachable(spark, catalog, table), "path", "left_anti"), outputs
        )
        if left_behind:
            outputs["left_behind"] = left_behind
    deleted = sum(int(outputs.get(key) or 0) for key in DELETED_COUNTS.values())
    outputs.update(after_deletes(p.location, p.versioned_deletes, deleted, skip=p.nested))
    return outputs


def _check_deletions(spark: Any, gone: Any, outputs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """What of `gone` (path, kind: the files the expiry made unreachable) was not deleted: kinds whose count
    exceeds what Iceberg reports deleted (failed bulk deletes), and files of a sample still on storage (a store
    that refuses a delete without an error)."""
    from lakehouse_ops.engine.fs import stat_many

    by_kind = _not_deleted({r["kind"]: int(r["count"]) for r in gone.groupBy("kind").count().collect()}, outputs)
    still = sorted(stat_many(spark, [r["path"] for r in gone.limit(CHECKED_ON_STORAGE).collect()]))
    files = max(sum(by_kind.values()), len(still))
    if not files:
        return None
    return {
        "files": files,
        "by_kind": by_kind,
        "sample": still[:20],
        "reason": "%d file(s) the expiry made unreachable were not deleted (storage errors or permissions; see the "
        "Spark log): orphan removal takes them once they are old enough" % files,
    }


# Files made unreachable that are checked on storage after the expiry (a sample: each check is a request).
CHECKED_ON_STORAGE = 1000
# What the expiry's output counts, per kind of file made unreachable.
DELETED_COUNTS = {
    "0": "deleted_data_files_count",
    "1": "deleted_position_delete_files_count",
    "2": "deleted_equality_delete_files_count",
    "manifest": "deleted_manifest_files_count",
    "manifest_list": "deleted_manifest_lists_count",
}


def _reachable(spark: Any, catalog: str, table: str) -> Any:
    """(path, kind) of every file any snapshot of the table references: data and delete files (kind: their
    content), manifests and manifest lists."""
    ref = table_ref(catalog, table)
    return spark.sql(
        "SELECT DISTINCT path, kind FROM (SELECT file_path AS path, CAST(content AS STRING) AS kind FROM %s.all_files "
        "UNION ALL SELECT path, 'manifest' AS kind FROM %s.all_manifests "
        "UNION ALL SELECT manifest_list AS path, 'manifest_list' AS kind FROM %s.snapshots)" % (ref, ref, ref)
    )


def _not_deleted(expected: Dict[str, int], outputs: Dict[str, Any]) -> Dict[str, int]:
    """{output count: files of that kind made unreachable but not reported deleted}."""
    left = {}
    for kind, count in expected.items():
        key = DELETED_COUNTS.get(kind)
        if key is not None and count > int(outputs.get(key) or 0):
            left[key] = count - int(outputs.get(key) or 0)
    return left


def summarize(outputs: Dict[str, Any]) -> str:
    return "expired snapshots: deleted %d data files, %d manifests, %d manifest lists" % (
        outputs.get("deleted_data_files_count", 0),
        outputs.get("deleted_manifest_files_count", 0),
        outputs.get("deleted_manifest_lists_count", 0),
    )
