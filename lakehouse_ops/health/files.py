"""The small data files of chosen partitions at one snapshot, read from the manifests (no JVM): what tells a
rewrite that finished its plan from one that left partitions behind."""

from typing import Any, Collection, Dict, Set, Tuple

from lakehouse_ops.health.scan import partition_name

DATA_MANIFEST = 0


def small_files_by_partition(
    table: Any, snapshot_id: int, small_limit: int, partitions: Collection[str]
) -> Dict[str, Set[str]]:
    """{partition: paths of its live data files smaller than `small_limit`} at `snapshot_id`, for `partitions`."""
    snapshot = table.snapshot_by_id(snapshot_id)
    out: Dict[str, Set[str]] = {p: set() for p in partitions}
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
                name = names[key] = partition_name(specs[key[0]], schema, data_file.partition, meta.default_spec_id)
            if name in out:
                out[name].add(data_file.file_path)
    return out
