"""File paths and URIs compared the way storage sees them: s3/s3a/s3n are one scheme, file: forms are local."""

from typing import List


def normalize(path: str) -> str:
    """A path as storage resolves it, to compare paths spelled differently: s3a/s3n as s3, file:/, file:/// and
    bare local paths alike, repeated slashes as one, `.` and `..` segments resolved (a table whose data path is
    `<location>//data` or `<other>/../<location>/data` writes under `<location>/data`)."""
    for scheme in ("s3a://", "s3n://"):
        if path.startswith(scheme):
            path = "s3://" + path[len(scheme) :]
            break
    if path.startswith("file:"):
        path = "/" + path[len("file:") :].lstrip("/")
    head, sep, rest = path.partition("://")
    if sep:
        authority, _, body = rest.partition("/")
        root = head + sep + authority + "/"
    else:
        root, body = ("/" if path.startswith("/") else ""), path
    parts: List[str] = []
    for segment in body.split("/"):
        if segment == "..":
            if parts:
                parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    return root + "/".join(parts) + ("/" if body.endswith("/") and parts else "")


def within(path: str, location: str) -> bool:
    """True if `path` lies under the directory `location` (a sibling sharing a name prefix is not under it)."""
    base = normalize(location).rstrip("/") + "/"
    return normalize(path).startswith(base)


def same_location(a: str, b: str) -> bool:
    return normalize(a).rstrip("/") == normalize(b).rstrip("/")


_GLOB_CHARS = "\\*?[]{}"


def glob_escape(path: str) -> str:
    """Spark treats load paths as globs; object keys may hold glob characters."""
    return "".join("\\" + ch if ch in _GLOB_CHARS else ch for ch in path)
