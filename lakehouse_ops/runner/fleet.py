"""Fleet planning: the health and plan of every managed table, read concurrently through pyiceberg (no JVM),
ranked by what maintenance would gain, and cut to a run's budget.

A table is *needy* when an action other than orphan removal would run (orphan removal is always planned because
finding orphans needs a listing; it runs with a needy table's maintenance, or on its own schedule). The score
ranks needy tables: bytes to rewrite (per MB), small files and delete files to fold away, manifests to merge and
snapshots to expire. Healthy tables cost one metadata read.
"""

import os
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterable, List, Optional, Tuple

from lakehouse_ops.errors import first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.processes import WorkerFailed, in_processes

log = get_logger("runner.fleet")
MB = 1024 * 1024
# Tables per process below which starting one (about a second: it imports pyiceberg) costs more than it saves.
PROCESS_MIN_TABLES = 200


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
            "manifests_read": health.manifests_read,
            "cached": health.cached,
        },
        "read_s": round(time.time() - started, 3),
    }


def _plan_tables(
    config: Any, catalog_tables: Any, tables: List[str], workers: int, now_ms: Optional[int]
) -> List[Dict[str, Any]]:
    """The plans of `tables`, `workers` threads at a time (they overlap storage and catalog latency)."""
    if catalog_tables is None:
        from lakehouse_ops.health import open_tables

        catalog_tables = open_tables(config.catalog)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda t: table_plan(config, catalog_tables, t, now_ms), tables))


def plan_chunk(job: Tuple[Any, List[str], int, Optional[int]]) -> List[Dict[str, Any]]:
    """A worker process's share of a fleet: (config, tables, threads, now_ms) -> their plans."""
    config, tables, workers, now_ms = job
    return _plan_tables(config, None, tables, workers, now_ms)


def _plan_spread(
    config: Any, tables: List[str], processes: int, workers: int, now_ms: Optional[int]
) -> Optional[List[Dict[str, Any]]]:
    """The plans of `tables` read by `processes` processes (reading and decoding metadata is bound by one
    interpreter; a fleet's tables are independent), each with its own catalog client and `workers` threads. None
    when the processes cannot run (the caller then reads in this process)."""
    jobs = [(config, tables[i::processes], workers, now_ms) for i in range(processes)]
    try:
        return [entry for part in in_processes(__name__, "plan_chunk", jobs) for entry in part]
    except (OSError, WorkerFailed, pickle.PicklingError) as exc:
        log.warning("fleet planned in one process: its worker processes failed", extra={"error": first_line(exc)})
        return None


def plan_fleet(
    config: Any,
    catalog_tables: Any = None,
    patterns: Optional[List[str]] = None,
    workers: int = 8,
    now_ms: Optional[int] = None,
) -> Dict[str, Any]:
    """Every managed table's plan, needy ones first by score. No Spark. A fleet of more than PROCESS_MIN_TABLES
    tables is spread over `health.processes` processes (default: every core)."""
    from lakehouse_ops.health import open_tables
    from lakehouse_ops.runner.maintain import resolve_tables

    started = time.time()
    given = catalog_tables is not None
    catalog_tables = catalog_tables or open_tables(config.catalog)
    tables = resolve_tables(config, catalog_tables, patterns)
    processes = min(config.health.processes or os.cpu_count() or 1, max(1, len(tables) // PROCESS_MIN_TABLES))
    entries = None
    if processes > 1 and not given:
        entries = _plan_spread(config, tables, processes, workers, now_ms)
    if entries is None:
        entries = _plan_tables(config, catalog_tables, tables, workers, now_ms)
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
