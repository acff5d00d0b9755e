"""Expire snapshots (expire_snapshots): older than the policy's age, keeping the last N.

Iceberg never expires the head of a branch or tag; gc.enabled=false tables are left alone.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip
from lakehouse_ops.sqltext import Timestamp
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
        ),
    )


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
    rows = call(spark, catalog, "expire_snapshots", args, optional=("stream_results",))
    return rows[0] if rows else {}


def summarize(outputs: Dict[str, Any]) -> str:
    return "expired snapshots: deleted %d data files, %d manifests, %d manifest lists" % (
        outputs.get("deleted_data_files_count", 0),
        outputs.get("deleted_manifest_files_count", 0),
        outputs.get("deleted_manifest_lists_count", 0),
    )
