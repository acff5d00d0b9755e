"""The small data files of chosen partitions at one snapshot, read from the manifests (no JVM): what tells a
rewrite that finished its plan from one that left partitions behind."""

from dataclasses import dataclass, field
from typing import Any, Collection, Dict, Optional, Tuple

from lakehouse_ops.health.partitions import partition_filter
from lakehouse_ops.health.scan import partition_name

DATA_MANIFEST = 0


@dataclass
class SmallFiles:
    """One partition's small live data files, and the filter on source columns that selects the partition."""

    sizes: Dict[str, int] = field(default_factory=dict)  # path -> bytes
    filter: Optional[str] = None


def small_files_by_partition(
    table: Any, snapshot_id: int, small_limit: int, partitions: Collection[str]
) -> Dict[str, SmallFiles]:
    """{partition: its live data files smaller than `small_limit`} at `snapshot_id`, for `partitions`."""
    snapshot = table.snapshot_by_id(snapshot_id)
    out = {p: SmallFiles() for p in partitions}
    if snapshot is None:
        return out
    meta, io = table.metadata, table.io
    specs, schema = meta.specs(), table.schema()
    names: Dict[Tuple[int, tuple], str] = {}
    for manifest in snapshot.manifests(io):
        if int(manifest.content) != DATA_MANIFEST:
            continue
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
            data_file = entry.data_file
            if data_file.file_size_in_bytes >= small_limit:
                continue
            key = (manifest.partition_spec_id, tuple(data_file.partition))
            name = names.get(key)
            if name is None:
                spec = specs[key[0]]
                name = names[key] = partition_name(spec, schema, data_file.partition, meta.default_spec_id)
                if name in out:
                    out[name].filter = partition_filter(spec, schema, data_file.partition)
            if name in out:
                out[name].sizes[data_file.file_path] = data_file.file_size_in_bytes
    return out
