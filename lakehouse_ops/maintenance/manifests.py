"""Rewrite manifests (rewrite_manifests) when there are too many, or too many small ones.

Many small manifests spanning partitions make query planning slow; the rewrite groups entries by partition.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.engine.procedures import call
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip
from lakehouse_ops.units import human_bytes

NAME = "rewrite_manifests"
# Every Iceberg EMR ships in 2026 (1.10.x, 1.11.0) drops the manifests' first_row_id when rewriting them, which
# changes every row's _row_id (fixed on Iceberg's main only: apache/iceberg#16699).
V3_REASON = (
    "format v3 table: Iceberg up to 1.11 drops first_row_id when it rewrites manifests, changing every row's "
    "_row_id (apache/iceberg#16699); its manifests are left alone"
)
COMMITS, REWRITES_DATA, DELETES_FILES = True, False, False


@dataclass(frozen=True)
class ManifestParams(Params):
    use_caching: bool


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    m = policy.manifests
    if not m.enabled:
        return skip(NAME, "disabled by policy (manifests.enabled=false)")
    if health.format_version >= 3:
        return skip(NAME, V3_REASON)
    count, small = health.manifests, health.small_manifests
    if count > m.max_manifests:
        reason = "%d manifests > max_manifests %d" % (count, m.max_manifests)
    elif count >= m.min_manifests and small / count >= m.max_small_manifest_ratio:
        reason = "%d of %d manifests are smaller than %s (>= %.0f%%)" % (
            small,
            count,
            human_bytes(m.small_manifest_bytes),
            m.max_small_manifest_ratio * 100,
        )
    else:
        return skip(
            NAME,
            "%d manifests (%d small): within policy (max %d; small share below %.0f%% or fewer than "
            "%d manifests)" % (count, small, m.max_manifests, m.max_small_manifest_ratio * 100, m.min_manifests),
        )
    return Plan(
        action=NAME,
        run=True,
        reason=reason,
        params=ManifestParams(use_caching=m.use_caching),
        estimated_bytes=health.manifest_bytes,
    )


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, ManifestParams)
    rows = call(spark, catalog, "rewrite_manifests", {"table": table, "use_caching": p.use_caching})
    return rows[0] if rows else {}


def summarize(outputs: Dict[str, Any]) -> str:
    return "rewrote %d manifests into %d" % (
        outputs.get("rewritten_manifests_count", 0),
        outputs.get("added_manifests_count", 0),
    )
