"""File paths and URIs compared the way storage sees them: s3/s3a/s3n are one scheme, file: forms are local."""


def normalize(path: str) -> str:
    """Compare paths across s3/s3a/s3n and file:/, file:///, bare local paths."""
    for scheme in ("s3a://", "s3n://"):
        if path.startswith(scheme):
            return "s3://" + path[len(scheme) :]
    if path.startswith("file:"):
        rest = path[len("file:") :]
        while rest.startswith("//"):
            rest = rest[1:]
        return rest
    return path


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
