"""What every maintenance action shares: the Plan it makes and the Result it reports.

A plan is data: it says whether the action should run, why, with which procedure arguments, on which
partitions, and how many bytes it expects to rewrite. `--dry-run` prints plans; `maintain` executes them.
"""
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class Plan:
    action: str
    run: bool
    reason: str
    params: Dict[str, Any] = field(default_factory=dict)
    partitions: List[str] = field(default_factory=list)
    estimated_bytes: int = 0

    def to_dict(self):
        return asdict(self)


def skip(action, reason):
    return Plan(action=action, run=False, reason=reason)


@dataclass
class Result:
    action: str
    status: str
    reason: str
    outputs: Dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_dict(self):
        return asdict(self)


def now_ms():
    return int(time.time() * 1000)


def iso_utc(epoch_ms):
    """ISO-8601 UTC text for an epoch-millisecond instant (what plans store and Spark literals use)."""
    seconds, millis = divmod(int(epoch_ms), 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % millis


def iso_seconds(epoch_s):
    """ISO-8601 UTC text, to the second, for report timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
