"""Time and size in the forms reports, plans and Spark literals use."""

import re
import time
from typing import Any

HOUR_MS = 3600 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_utc(epoch_ms: float) -> str:
    """ISO-8601 UTC text for an epoch-millisecond instant (what plans store and Spark literals use)."""
    seconds, millis = divmod(int(epoch_ms), 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % millis


def iso_seconds(epoch_s: float) -> str:
    """ISO-8601 UTC text, to the second, for report timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return "%.1f TiB" % n  # not reached: the loop ends with TiB


MB = 1024 * 1024
GB = 1024 * MB

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": MB,
    "mib": MB,
    "g": 1000**3,
    "gb": GB,
    "gib": GB,
    "t": 1000**4,
    "tb": 1024 * GB,
    "tib": 1024 * GB,
}


def parse_size(value: Any) -> int:
    """Bytes from an int or a string such as `512MB`, `8 MiB`, `1TB` (MB/GB/TB are binary, as in Iceberg docs)."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string such as '512MB'")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        if match and match.group(2).lower() in _SIZE_UNITS:
            return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    raise ValueError("a size must be a number of bytes or a string such as '512MB', '8MiB', '1TB'")


_AGO_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_moment(value: str, now_s: float) -> float:
    """Epoch seconds from `36h` / `15m` / `7d` (that long before `now_s`) or an ISO-8601 time (UTC unless it
    names an offset)."""
    import datetime

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd])\s*", value)
    if match:
        return now_s - float(match.group(1)) * _AGO_UNITS[match.group(2)]
    try:
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("'%s' is neither a time ago (36h, 15m, 7d) nor an ISO-8601 time" % value) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()
