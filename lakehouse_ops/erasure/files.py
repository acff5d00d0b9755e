"""Which files could hold a subject, read from Iceberg metadata through pyiceberg (no JVM, no data read).

For every snapshot: its live data and delete files (from its manifests; each manifest read once). For every file:
its format and the lower/upper bounds Iceberg keeps per column. A file can hold one of the values only if some
value lies within the column's bounds (Iceberg's own inclusive test: truncated lower bounds are prefixes, truncated
upper bounds are incremented prefixes, so neither ever excludes a value the file holds); files without bounds, or
without the column's stats, are always candidates. Position delete files hold no column values.
"""

from collections import namedtuple
from typing import Any, Dict, Iterable, List, Optional, Set

from lakehouse_ops.errors import ConfigError
from lakehouse_ops.paths import normalize

FileMeta = namedtuple("FileMeta", "path content format lower upper value_counts null_counts")
DATA, POSITION_DELETES, EQUALITY_DELETES = "data", "position_deletes", "equality_deletes"
_CONTENT = {0: DATA, 1: POSITION_DELETES, 2: EQUALITY_DELETES}


class TableFiles:
    """A table's files as its metadata sees them now: per snapshot, and every file ever referenced by a
    remaining snapshot, plus every metadata file those snapshots need (manifests, manifest lists)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        metadata = table.metadata
        self.current_snapshot_id = metadata.current_snapshot_id
        self.snapshots: Dict[int, Set[str]] = {}  # snapshot id -> normalized paths (data and delete files)
        self.files: Dict[str, Any] = {}  # normalized path -> FileMeta
        self.metadata_paths: Set[str] = set()
        self.refs = {name: ref.snapshot_id for name, ref in (metadata.refs or {}).items()}
        self.snapshot_times = {s.snapshot_id: s.timestamp_ms for s in metadata.snapshots}
        manifests = {}
        for snapshot in metadata.snapshots:
            self.metadata_paths.add(normalize(snapshot.manifest_list))
            live = set()
            for manifest in snapshot.manifests(table.io):
                key = normalize(manifest.manifest_path)
                self.metadata_paths.add(key)
                if key not in manifests:
                    manifests[key] = [
                        self._add(entry.data_file)
                        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
                    ]
                live.update(manifests[key])
            self.snapshots[snapshot.snapshot_id] = live
        self.metadata_paths.add(normalize(table.metadata_location))
        for entry in metadata.metadata_log or ():
            self.metadata_paths.add(normalize(entry.metadata_file))
        for stats in list(getattr(metadata, "statistics", None) or ()) + list(
            getattr(metadata, "partition_statistics", None) or ()
        ):
            self.metadata_paths.add(normalize(stats.statistics_path))

    def _add(self, data_file: Any) -> str:
        key = normalize(data_file.file_path)
        if key not in self.files:
            content = _CONTENT.get(int(getattr(data_file.content, "value", data_file.content)), DATA)
            file_format = str(getattr(data_file.file_format, "value", data_file.file_format)).lower()
            self.files[key] = FileMeta(
                data_file.file_path,
                content,
                file_format,
                dict(data_file.lower_bounds or {}),
                dict(data_file.upper_bounds or {}),
                dict(data_file.value_counts or {}),
                dict(data_file.null_value_counts or {}),
            )
        return key

    def referenced(self) -> Set[str]:
        return set(self.files) | self.metadata_paths

    def snapshots_holding(self, paths: Iterable[str], include_current: bool = False) -> List[int]:
        """Snapshot ids (other than the current one, unless asked) whose live files include any of `paths`."""
        paths = set(paths)
        return sorted(
            sid
            for sid, live in self.snapshots.items()
            if (include_current or sid != self.current_snapshot_id) and live & paths
        )


def may_contain(meta: Any, field_ids: List[int], values: List[str]) -> bool:
    """Whether `meta`'s file can hold any of `values` (str) in any of the columns `field_ids`."""
    if meta.content == POSITION_DELETES:
        return False
    encoded = [v.encode("utf-8") for v in values]
    for field_id in field_ids:
        count = meta.value_counts.get(field_id)
        if count is not None and meta.null_counts.get(field_id) == count:
            continue  # only nulls (or no rows) in this column
        lower, upper = meta.lower.get(field_id), meta.upper.get(field_id)
        if lower is None or upper is None:
            if meta.content == EQUALITY_DELETES or count is None or count > 0:
                return True
            continue
        if any(bytes(lower) <= v <= bytes(upper) for v in encoded):
            return True
    return False


def candidates(
    table_files: TableFiles, field_ids: List[int], values: List[str], paths: Optional[Iterable[str]] = None
) -> List[str]:
    """Normalized paths of the files (all referenced ones, or `paths`) that may hold any of `values`."""
    keys = table_files.files if paths is None else paths
    return sorted(k for k in keys if may_contain(table_files.files[k], field_ids, values))


def string_field_ids(schema: Any, columns: List[str], table_name: str) -> List[int]:
    """Iceberg field ids of the erasure columns, which must be string columns of the table."""
    ids = []
    for column in columns:
        try:
            field = schema.find_field(column)
        except ValueError:
            raise ConfigError(
                "erasure column %r is not in %s (columns: %s)"
                % (column, table_name, ", ".join(f.name for f in schema.fields))
            ) from None
        if str(field.field_type) != "string":
            raise ConfigError(
                "erasure column %r of %s is %s; subjects are matched in string columns"
                % (column, table_name, field.field_type)
            )
        ids.append(field.field_id)
    return ids
