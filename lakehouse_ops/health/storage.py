"""What a table's storage holds beyond what its metadata says: the `*.metadata.json` files actually present.

The metadata log is capped (write.metadata.previous-versions-max), and without
write.metadata.delete-after-commit.enabled the files that fall off it stay on storage: the log's length
under-counts them. One listing of `<location>/metadata` through the table's own FileIO counts them.
"""

from typing import Any, Optional

from lakehouse_ops.logs import get_logger

log = get_logger("health")
METADATA_SUFFIX = ".metadata.json"


def metadata_files_on_storage(table: Any) -> Optional[int]:
    """How many metadata.json files the table's metadata directory holds, or None when its FileIO cannot list
    (or the listing is refused: logged, and health falls back to the log's count)."""
    io = table.io
    fs_by_scheme = getattr(io, "fs_by_scheme", None)
    if fs_by_scheme is None or not hasattr(io, "parse_location"):
        return None
    from pyarrow.fs import FileSelector

    location = table.metadata.location.rstrip("/") + "/metadata"
    try:
        scheme, netloc, path = io.parse_location(location, io.properties)
        infos = fs_by_scheme(scheme, netloc).get_file_info(FileSelector(path, allow_not_found=True))
    except Exception as exc:  # permissions, endpoint: the count is then the log's, and the report says so
        log.warning("cannot list the metadata directory", extra={"location": location, "error": str(exc)[:200]})
        return None
    return sum(1 for info in infos if info.base_name.endswith(METADATA_SUFFIX))
