"""Time and size in the forms reports, plans and Spark literals use."""
import time


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
