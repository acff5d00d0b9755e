"""Where each table of a catalog may keep files: every prefix its metadata can make it reference.

Orphan removal deletes files of its table's location that its table does not reference; a file there that another
table references must never be one of them. A table references files under more than its current location: a
`write.data.path`, `write.metadata.path` or object-storage path, and its old locations (a table moved with `SET
LOCATION` still references the files its earlier snapshots wrote, under the old path; its metadata log shows
where). A table whose metadata cannot be read, or that has no location at all, may keep files anywhere: it is
named, and orphan removal refuses to run where it could reach.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from lakehouse_ops.paths import normalize, same_location, within

DATA_PATHS = ("write.data.path", "write.metadata.path", "write.object-storage.path", "write.folder-storage.path")


def own_directories(location: str, properties: Dict[str, str]) -> Tuple[str, ...]:
    """Where a table writes its own files: `<location>/data` and `<location>/metadata` (Iceberg's defaults) and
    the data and metadata paths its properties name. Anything else under its location was written by someone else."""
    out = [location.rstrip("/") + "/data", location.rstrip("/") + "/metadata"]
    out += [str(properties[k]).rstrip("/") for k in DATA_PATHS if properties.get(k)]
    return tuple(dict.fromkeys(out))


@dataclass
class Reach:
    prefixes: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # table -> its location first, then others
    unknown: Dict[str, str] = field(default_factory=dict)  # table -> why its reach is not known


def nested_in(reach: "Reach", table: str, location: str) -> Tuple[str, ...]:
    """Where the catalog's other tables keep files strictly inside `location` (tables nested in `table`'s)."""
    return tuple(
        sorted(
            {
                pre
                for name, prefixes in reach.prefixes.items()
                if name != table
                for pre in prefixes
                if within(pre, location) and not same_location(pre, location)
            }
        )
    )


def _parent_of_metadata(path: str) -> str:
    """`<location>/metadata/v3.metadata.json` -> `<location>`; another layout: the file's directory."""
    folder = path.rsplit("/", 1)[0]
    return folder.rsplit("/", 1)[0] if folder.endswith("/metadata") else folder


def table_reach(metadata: Any, metadata_location: str = "") -> Tuple[str, ...]:
    """The prefixes a table's files may lie under (pyiceberg TableMetadata): its location first."""
    out: List[str] = [str(metadata.location)]
    properties = dict(getattr(metadata, "properties", None) or {})
    out += [str(properties[k]) for k in DATA_PATHS if properties.get(k)]
    for entry in getattr(metadata, "metadata_log", None) or ():
        out.append(_parent_of_metadata(str(entry.metadata_file)))
    if metadata_location:
        out.append(_parent_of_metadata(metadata_location))
    seen: Dict[str, str] = {}
    for prefix in out:
        seen.setdefault(normalize(prefix).rstrip("/"), prefix.rstrip("/"))
    return tuple(seen.values())
