"""The files of chosen partitions at one snapshot, read from the manifests (no JVM): what tells a rewrite that
finished its plan from one that left partitions behind (small data files for compaction, position delete files
for their rewrite)."""

from dataclasses import dataclass, field
from typing import Any, Collection, Dict, List, Optional, Tuple

from lakehouse_ops.health.partitions import partition_filter
from lakehouse_ops.health.scan import partition_name

DATA_MANIFEST, DELETE_MANIFEST = 0, 1
DATA, POSITION_DELETES = 0, 1  # a file's content


@dataclass
class PartitionFiles:
    """One partition's live files of one kind, and the filter on source columns that selects the partition."""

    sizes: Dict[str, int] = field(default_factory=dict)  # path -> bytes
    filter: Optional[str] = None


def files_by_partition(
    table: Any, snapshot_id: int, partitions: Collection[str], content: int = DATA, below: Optional[int] = None
) -> Dict[str, PartitionFiles]:
    """{partition: its live files of `content` (smaller than `below`, if given)} at `snapshot_id`, for
    `partitions`."""
    snapshot = table.snapshot_by_id(snapshot_id)
    out = {p: PartitionFiles() for p in partitions}
    if snapshot is None:
        return out
    meta, io = table.metadata, table.io
    specs, schema = meta.specs(), table.schema()
    names: Dict[Tuple[int, tuple], str] = {}
    wanted_manifest = DATA_MANIFEST if content == DATA else DELETE_MANIFEST
    for manifest in snapshot.manifests(io):
        if int(manifest.content) != wanted_manifest:
            continue
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
            data_file = entry.data_file
            if int(data_file.content) != content or (below is not None and data_file.file_size_in_bytes >= below):
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


def still_live(
    table: Any, before_id: int, partitions: Collection[str], content: int = DATA, below: Optional[int] = None
) -> Tuple[Dict[str, List[str]], Dict[str, PartitionFiles]]:
    """({partition: paths live at `before_id` that are still live now}, the partitions' files now): what a
    rewrite planned at `before_id` has not replaced. Files other writers added meanwhile do not count."""
    before = files_by_partition(table, before_id, partitions, content, below)
    now = files_by_partition(table, table.current_snapshot().snapshot_id, partitions, content, below)
    return {p: [path for path in before[p].sizes if path in now[p].sizes] for p in partitions}, now


def where_for(
    now: Dict[str, PartitionFiles], partitions: Collection[str], within: Optional[str], fallback: Optional[str]
) -> Optional[str]:
    """A filter selecting `partitions` (inside `within`, the policy's own filter), or `fallback` when a partition
    has no filter on source columns."""
    filters = [now[p].filter for p in partitions]
    if not filters or any(f is None for f in filters):
        return fallback
    where = " OR ".join("(%s)" % f for f in filters) if len(filters) > 1 else str(filters[0])
    return "(%s) AND (%s)" % (within, where) if within else where
