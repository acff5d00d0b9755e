"""What an ingest batch and run report: stage timings, event-to-commit lag, totals."""

import contextlib
import datetime
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from lakehouse_ops import emf
from lakehouse_ops.logs import get_logger

log = get_logger("ingest.metrics")


def event_time_ms(obj: Any) -> Optional[int]:
    """The S3 event time of an object in epoch ms, or None when absent or unreadable."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = datetime.datetime.strptime((obj.event_time or "").replace("Z", ""), fmt)
        except ValueError:
            continue
        return int(moment.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    return None


def event_ms(obj: Any, fallback_ms: int) -> int:
    """The S3 event time of an object in epoch ms (for lag), or the fallback when absent or unreadable."""
    found = event_time_ms(obj)
    return fallback_ms if found is None else found


def earliest_event_ms(objects: Iterable[Any]) -> Optional[int]:
    """The earliest event time of `objects`, or None when one of them has none (the ledger is then read whole)."""
    times = [event_time_ms(o) for o in objects]
    return None if not times or None in times else min(t for t in times if t is not None)


@contextlib.contextmanager
def timed(metrics: Dict[str, Any], stage: str) -> Iterator[None]:
    """Add the stage's wall time to metrics['timings_s'][stage]."""
    started = time.time()
    try:
        yield
    finally:
        timings = metrics.setdefault("timings_s", {})
        timings[stage] = round(timings.get(stage, 0.0) + time.time() - started, 3)


def seal_entry(obj: Any) -> Dict[str, Any]:
    """An object as a seal lists it (enough to read it again)."""
    return {
        "bucket": obj.bucket,
        "key": obj.key,
        "size": obj.size,
        "etag": obj.etag,
        "version_id": obj.version_id,
        "identity": obj.identity,
    }


def totals(batches: List[Dict[str, Any]], seconds: float) -> Dict[str, Any]:
    keys = (
        "messages",
        "objects",
        "duplicates",
        "bytes",
        "rows",
        "quarantined",
        "dlq_messages",
        "poison",
        "already_committed",
        "superseded",
    )
    totals = {k: sum(b.get(k, 0) for b in batches) for k in keys}
    totals["batches"] = len(batches)
    totals["duration_s"] = round(seconds, 3)
    totals["batches_per_minute"] = round(len(batches) / (seconds / 60.0), 3) if seconds > 0 else 0.0
    totals["rows_per_s"] = round(totals["rows"] / seconds, 1) if seconds > 0 else 0.0
    totals["messages_per_s"] = round(totals["messages"] / seconds, 1) if seconds > 0 else 0.0
    totals["max_lag_s"] = max((b.get("lag_s", 0) for b in batches), default=0)
    return {"totals": totals}


# What a batch reports for alarms, with the CloudWatch unit of each (Embedded Metric Format).
ALARM_METRICS = (
    ("queue_visible", "Count"),
    ("queue_in_flight", "Count"),
    ("oldest_message_age_s", "Seconds"),
    ("lag_s", "Seconds"),
    ("rows", "Count"),
    ("rows_per_s", "Count/Second"),
    ("bytes_per_s", "Bytes/Second"),
    ("dlq_messages", "Count"),
    ("batch_s", "Seconds"),
)
EMF_NAMESPACE = "lakehouse-ops/ingest"


def alarm_fields(metrics: Dict[str, Any], queue: Any, oldest_sent: int, emf_target: Optional[str]) -> Dict[str, Any]:
    """Backlog and throughput of a finished batch: queue depth (visible, in flight; None when SQS did not say), the
    age of its oldest message (from SentTimestamp), rows and bytes per second of the batch. With `emf_target`, the
    batch's metrics are also printed as a CloudWatch Embedded Metric Format line on stderr, with the logs (stdout
    holds the run's report alone: `--json` stays one JSON document)."""
    try:
        depth: Optional[Tuple[int, int]] = queue.depth()
    except Exception as exc:  # the batch is done; a depth SQS did not give is reported as missing
        log.warning("queue depth not read", extra={"error": str(exc)[:200]})
        depth = None
    now_ms = int(time.time() * 1000)
    seconds = metrics.get("batch_s") or 0.0
    fields = {
        "queue_visible": depth[0] if depth else None,
        "queue_in_flight": depth[1] if depth else None,
        "oldest_message_age_s": round(max(0, now_ms - oldest_sent) / 1000.0, 3),
        "rows_per_s": round(metrics.get("rows", 0) / seconds, 1) if seconds > 0 else 0.0,
        "bytes_per_s": round(metrics.get("bytes", 0) / seconds, 1) if seconds > 0 else 0.0,
    }
    if emf_target is not None:
        emf.emit([emf_record(emf_target, dict(metrics, **fields), now_ms)])
    return fields


def emf_record(target: str, metrics: Dict[str, Any], now_ms: int) -> Optional[Dict[str, Any]]:
    """The CloudWatch Embedded Metric Format document of a batch (metrics by target table): printed where
    CloudWatch Logs collects it (EMR Serverless with CloudWatch logging), it becomes metrics to alarm on."""
    present = [(name, metrics.get(name), unit) for name, unit in ALARM_METRICS]
    return emf.document(EMF_NAMESPACE, {"Target": target}, present, now_ms, {"batch_id": metrics.get("batch_id")})
