"""Fleet planning: the health and plan of every managed table, read concurrently through pyiceberg (no JVM),
ranked by what maintenance would gain, and cut to a run's budget.

A table is *needy* when an action other than orphan removal would run (orphan removal is always planned because
finding orphans needs a listing; it runs with a needy table's maintenance, or on its own schedule). The score
ranks needy tables: bytes to rewrite (per MB), small files and delete files to fold away, manifests to merge and
snapshots to expire. Healthy tables cost one metadata read.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterable, List, Optional

from lakehouse_ops.errors import first_line
from lakehouse_ops.logs import get_logger

log = get_logger("runner.fleet")
MB = 1024 * 1024


def score(health: Any, plans: List[Any]) -> float:
    """What running the planned actions would gain (higher first)."""
    run = {p.action: p for p in plans if p.run}
    total = 0.0
    if "compaction" in run:
        total += run["compaction"].estimated_bytes / MB + health.small_files
    if "rewrite_position_deletes" in run:
        total += 2 * health.position_delete_files
    if "rewrite_manifests" in run:
        total += health.manifests
    if "expire_snapshots" in run:
        total += health.snapshots
    if "properties" in run:
        total += 1
    return round(total, 1)


def table_plan(config: Any, catalog_tables: Any, table: str, now_ms: Optional[int] = None) -> Dict[str, Any]:
    from lakehouse_ops.health import table_health
    from lakehouse_ops.maintenance import plan_all

    started = time.time()
    try:
        policy = config.policy_for(table)
        health = table_health(config, table, catalog_tables, policy, now_ms)
        plans = plan_all(policy, health, now_ms)
    except Exception as exc:  # one unreadable table must not hide the others
        return {"table": table, "ok": False, "error": first_line(exc), "needy": False, "score": 0.0}
    needy = [p.action for p in plans if p.run and p.action != "remove_orphan_files"]
    return {
        "table": table,
        "ok": True,
        "needy": bool(needy),
        "score": score(health, plans),
        "actions": needy,
        "rewrite_bytes": sum(p.estimated_bytes for p in plans if p.run),
        "reasons": {p.action: p.reason for p in plans if p.run},
        "health": {
            "data_files": health.data_files,
            "small_files": health.small_files,
            "data_bytes": health.data_bytes,
            "delete_files": health.delete_files,
            "manifests": health.manifests,
            "snapshots": health.snapshots,
        },
        "read_s": round(time.time() - started, 3),
    }


def plan_fleet(
    config: Any,
    catalog_tables: Any = None,
    patterns: Optional[List[str]] = None,
    workers: int = 8,
    now_ms: Optional[int] = None,
) -> Dict[str, Any]:
    """Every managed table's plan, needy ones first by score. No Spark."""
    from lakehouse_ops.health import open_tables
    from lakehouse_ops.runner.maintain import resolve_tables

    started = time.time()
    catalog_tables = catalog_tables or open_tables(config.catalog)
    tables = resolve_tables(config, catalog_tables, patterns)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        entries = list(pool.map(lambda t: table_plan(config, catalog_tables, t, now_ms), tables))
    entries.sort(key=lambda e: (not e["needy"], -e["score"], e["table"]))
    report = {
        "ok": all(e["ok"] for e in entries),
        "tables": entries,
        "count": len(entries),
        "needy": sum(1 for e in entries if e["needy"]),
        "duration_s": round(time.time() - started, 3),
    }
    log.info(
        "fleet planned", extra={"tables": len(entries), "needy": report["needy"], "duration_s": report["duration_s"]}
    )
    return report


def select(entries: List[Dict[str, Any]], budget: Any) -> List[str]:
    """The needy tables one run takes on: best score first, within max_tables and max_rewrite_bytes (a table
    whose estimate alone exceeds the byte budget still goes when it is the first, so no table starves)."""
    chosen: List[str] = []
    total = 0
    for entry in entries:
        if not entry.get("needy"):
            continue
        if len(chosen) >= budget.max_tables:
            break
        if chosen and total + entry["rewrite_bytes"] > budget.max_rewrite_bytes:
            continue
        chosen.append(entry["table"])
        total += entry["rewrite_bytes"]
    return chosen


def needy_batches(config: Any, job_args: Iterable[str], per_table: bool = False) -> List[List[str]]:
    """The argument lists of the maintenance runs `submit --needy` starts: the fleet's needy tables within
    ship.budget, best first, in one run (or one run per table)."""
    chosen = select(plan_fleet(config)["tables"], config.section("ship").budget)
    if per_table:
        return [[table] + list(job_args) for table in chosen]
    return [chosen + list(job_args)] if chosen else []
