"""Where a table's statistics stand: the newest ancestor of the current snapshot with column statistics (Puffin)
and with partition statistics, and how many snapshots the current one is past each."""

from typing import Any, Dict, List, Optional


def ancestry(meta: Any, snapshot: Any) -> List[int]:
    """Snapshot ids from `snapshot` back through its parents, as far as the metadata keeps them."""
    by_id = {s.snapshot_id: s for s in meta.snapshots}
    out: List[int] = []
    current = snapshot
    while current is not None and len(out) < len(by_id):
        out.append(current.snapshot_id)
        current = by_id.get(current.parent_snapshot_id) if current.parent_snapshot_id is not None else None
    return out


def statistics_position(meta: Any, snapshot: Any) -> Dict[str, Optional[int]]:
    """The TableHealth fields on statistics: stats_snapshot_id, snapshots_since_stats (None: no ancestor has
    column statistics), the same for partition statistics, and statistics_files (both kinds, any snapshot)."""
    stats = {s.snapshot_id for s in getattr(meta, "statistics", None) or []}
    parts = {s.snapshot_id for s in getattr(meta, "partition_statistics", None) or []}
    out: Dict[str, Optional[int]] = {
        "statistics_files": len(stats) + len(parts),
        "stats_snapshot_id": None,
        "snapshots_since_stats": None,
        "partition_stats_snapshot_id": None,
        "snapshots_since_partition_stats": None,
    }
    for behind, snapshot_id in enumerate(ancestry(meta, snapshot) if snapshot is not None else []):
        if out["stats_snapshot_id"] is None and snapshot_id in stats:
            out["stats_snapshot_id"], out["snapshots_since_stats"] = snapshot_id, behind
        if out["partition_stats_snapshot_id"] is None and snapshot_id in parts:
            out["partition_stats_snapshot_id"], out["snapshots_since_partition_stats"] = snapshot_id, behind
    return out
