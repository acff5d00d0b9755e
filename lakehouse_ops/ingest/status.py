"""`lakehouse-ops ingest status`: the backlog on the queue and, from the ledger, the last commits and their lag
(per target when the queue has routes).

No Spark: the queues are asked over the SQS API and the ledger is read with pyiceberg (only the days asked for:
the ledger is partitioned by the day of `recorded_at`).
"""

import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.ingest.ledger import COMMITTED, PENDING, SUPERSEDED
from lakehouse_ops.ingest.queue import Queue
from lakehouse_ops.units import iso_seconds

SUPERSEDED_LISTED = 100  # superseded objects named (the count is whole)
LEDGER_COLUMNS = ("object_id", "batch_id", "status", "size", "recorded_at", "event_time", "target_snapshot_id")


def _ms(value: Any) -> Optional[float]:
    """A ledger timestamp (datetime or epoch microseconds) as epoch milliseconds."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp() * 1000.0)
    return float(value) / 1000.0


def _by_batch(rows: Iterable[Mapping[str, Any]]) -> Tuple[Dict[str, Dict[str, Any]], Set[str]]:
    """Ledger rows -> ({batch id: its committed objects, bytes, times and event times}, superseded objects)."""
    batches: Dict[str, Dict[str, Any]] = {}
    superseded: Set[str] = set()
    for row in rows:
        entry = batches.setdefault(
            row["batch_id"], {"objects": set(), "bytes": 0, "committed_ms": None, "pending_ms": None, "events": []}
        )
        recorded = _ms(row["recorded_at"])
        if row["status"] == COMMITTED:
            entry["objects"].add(row["object_id"])
            entry["bytes"] += int(row.get("size") or 0)
            entry["committed_ms"] = max(entry["committed_ms"] or 0, recorded or 0)
            entry["snapshot_id"] = row.get("target_snapshot_id")
            if row.get("event_time") is not None:
                entry["events"].append(_ms(row["event_time"]))
        elif row["status"] == PENDING:
            entry["pending_ms"] = min(entry["pending_ms"] or float("inf"), recorded or 0)
            entry.setdefault("pending_objects", set()).add(row["object_id"])
        elif row["status"] == SUPERSEDED:
            superseded.add(row["object_id"])
    return batches, superseded


def summarize(rows: Iterable[Mapping[str, Any]], now_ms: float, last: int) -> Dict[str, Any]:
    """Ledger rows -> the last `last` committed batches (newest first) with their objects, bytes, snapshot and
    lag (commit time less the oldest event), batches recorded pending whose objects have not been committed (in
    progress, or interrupted: their objects come back with their messages), and objects superseded (announced,
    but the key held other bytes when they were read: never ingested)."""
    batches, superseded = _by_batch(rows)
    commits = sorted(
        (dict(batch_id=b, **e) for b, e in batches.items() if e["committed_ms"] is not None),
        key=lambda c: c["committed_ms"],
        reverse=True,
    )
    shown: List[Dict[str, Any]] = [
        {
            "batch_id": c["batch_id"],
            "committed_at": iso_seconds(c["committed_ms"] / 1000.0),
            "objects": len(c["objects"]),
            "bytes": c["bytes"],
            "snapshot_id": c.get("snapshot_id"),
            "lag_s": round((c["committed_ms"] - min(c["events"])) / 1000.0, 3) if c["events"] else None,
        }
        for c in commits[:last]
    ]
    # A batch left pending whose objects a later batch committed (redelivered after a kill) is done with.
    committed_objects = set().union(*(e["objects"] for e in batches.values())) if batches else set()
    open_batches = [
        {"batch_id": b, "pending_since": iso_seconds(e["pending_ms"] / 1000.0)}
        for b, e in sorted(batches.items(), key=lambda item: item[1]["pending_ms"] or 0)
        if e["committed_ms"] is None
        and e["pending_ms"] is not None
        and not e.get("pending_objects", set()) <= committed_objects
    ]
    lags = [c["lag_s"] for c in shown if c["lag_s"] is not None]
    gone = sorted(superseded - committed_objects)
    return {
        "committed_batches": len(commits),
        "committed_objects": sum(len(c["objects"]) for c in commits),
        "committed_bytes": sum(c["bytes"] for c in commits),
        "last_commit_at": shown[0]["committed_at"] if shown else None,
        "since_last_commit_s": round((now_ms - commits[0]["committed_ms"]) / 1000.0, 3) if commits else None,
        "max_lag_s": max(lags) if lags else None,
        "last_commits": shown,
        "uncommitted_batches": open_batches,
        "superseded_objects": gone[:SUPERSEDED_LISTED],
        "superseded_count": len(gone),
    }


def ledger_rows(config: Config, cfg: IngestConfig, since_ms: float) -> List[Dict[str, Any]]:
    """The rows of `cfg`'s ledger recorded since `since_ms`, read with pyiceberg ([] when there is none yet)."""
    from lakehouse_ops.health.catalog import open_tables

    table = open_tables(config.catalog).load(config.table_name(cfg.ledger))
    if table is None:
        return []
    names = {f.name for f in table.schema().fields}
    columns = [c for c in LEDGER_COLUMNS if c in names]
    # Epoch microseconds: pyiceberg compares them with the timestamp column as they are (and prunes by day).
    since = "recorded_at >= %d" % int(since_ms * 1000)
    rows: List[Dict[str, Any]] = table.scan(row_filter=since, selected_fields=tuple(columns)).to_arrow().to_pylist()
    return rows


def ingest_status(config: Config, sqs: Any = None, hours: float = 24.0, last: int = 10) -> Dict[str, Any]:
    """The report of `lakehouse-ops ingest status`."""
    cfg = config.section("ingest")
    if sqs is None:
        from lakehouse_ops.aws.clients import client

        sqs = client("sqs")
    now_ms = time.time() * 1000.0
    visible, in_flight = Queue(sqs, cfg.queue_url, None, cfg.visibility_timeout_seconds).depth()
    report: Dict[str, Any] = {
        "ok": True,
        "target": config.table_name(cfg.target_table),
        "queue": cfg.queue_url,
        "queue_visible": visible,
        "queue_in_flight": in_flight,
        "window_hours": hours,
    }
    if cfg.dlq_url:
        report["dlq_visible"] = Queue(sqs, cfg.dlq_url, None, cfg.visibility_timeout_seconds).depth()[0]
    since = now_ms - hours * 3600 * 1000.0
    *routed, (_, own) = cfg.route_configs()
    report.update(summarize(ledger_rows(config, own, since), now_ms, last))
    if routed:
        report["routes"] = {
            config.table_name(route_cfg.target_table): summarize(ledger_rows(config, route_cfg, since), now_ms, last)
            for _, route_cfg in routed
        }
    return report
