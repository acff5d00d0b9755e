"""What an ingest batch and run report: stage timings, event-to-commit lag, totals."""

import contextlib
import datetime
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional


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
    )
    totals = {k: sum(b.get(k, 0) for b in batches) for k in keys}
    totals["batches"] = len(batches)
    totals["duration_s"] = round(seconds, 3)
    totals["batches_per_minute"] = round(len(batches) / (seconds / 60.0), 3) if seconds > 0 else 0.0
    totals["rows_per_s"] = round(totals["rows"] / seconds, 1) if seconds > 0 else 0.0
    totals["messages_per_s"] = round(totals["messages"] / seconds, 1) if seconds > 0 else 0.0
    totals["max_lag_s"] = max((b.get("lag_s", 0) for b in batches), default=0)
    return {"totals": totals}
