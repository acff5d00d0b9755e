"""Summing manifests: per partition, what its live files add up to, one manifest at a time (memory grows with a
manifest's partitions, not with its files), read by threads (remote storage: they overlap request latency) or,
for a large first scan, by processes (decoding is bound by one interpreter; a table's cores all help)."""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from lakehouse_ops.logs import get_logger
from lakehouse_ops.processes import WorkerFailed, in_processes

log = get_logger("health")
MANIFEST_READERS = 8  # threads per process on remote storage
# Manifest bytes to decode above which the work is spread over processes (about 160,000 entries, five seconds of
# decoding): below it, starting them (about 1.5 s: each imports pyiceberg) costs more than it saves. Measured on
# 2 cores: 100,000 files 2.9 s in one process, 2.8-3.4 s in two; 300,000 files 9.2 s, 6.7 s.
PROCESS_MIN_BYTES = 16 * 1024 * 1024
Aggregates = Dict[Tuple[int, tuple], "Counts"]  # (partition spec id, partition values) -> counts


@dataclass
class Counts:
    """What the live files of one partition add up to, in one manifest or over a whole table."""

    record: Any  # the partition's values, kept to name and select the partition once
    data_files: int = 0
    data_bytes: int = 0
    small_files: int = 0
    small_bytes: int = 0
    new_small_files: int = 0
    records: int = 0
    position_delete_files: int = 0
    equality_delete_files: int = 0
    delete_records: int = 0  # rows the position delete files name, keys the equality delete files hold
    last_updated_ms: int = 0
    min_data_seq: Optional[int] = None  # the smallest data sequence number of a live data file
    # {data sequence number: [position, equality] delete files}: which deletes still apply to a data file
    delete_seqs: Dict[int, List[int]] = field(default_factory=dict)

    SUMMED = (
        "data_files",
        "data_bytes",
        "small_files",
        "small_bytes",
        "new_small_files",
        "records",
        "position_delete_files",
        "equality_delete_files",
        "delete_records",
    )

    def add(self, other: "Counts") -> None:
        for name in self.SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.last_updated_ms = max(self.last_updated_ms, other.last_updated_ms)
        self.data_seq(other.min_data_seq)
        for seq, (position, equality) in other.delete_seqs.items():
            self.deletes_at(seq, position, equality)

    @classmethod
    def total(cls, parts: Iterable["Counts"]) -> "Counts":
        out = cls(None)
        for part in parts:
            out.add(part)
        return out

    def data_seq(self, seq: Optional[int]) -> None:
        if seq is not None and (self.min_data_seq is None or seq < self.min_data_seq):
            self.min_data_seq = seq

    def deletes_at(self, seq: int, position: int, equality: int) -> None:
        known = self.delete_seqs.setdefault(seq, [0, 0])
        known[0] += position
        known[1] += equality

    def dangling(self) -> int:
        """Delete files that apply to no live data file of the partition (Iceberg's rule): a position delete older
        than every data file, an equality delete not newer than all of them, any delete without data files."""
        low = self.min_data_seq
        return sum(
            (position if low is None or seq < low else 0) + (equality if low is None or seq <= low else 0)
            for seq, (position, equality) in self.delete_seqs.items()
        )


def manifest_counts(io: Any, manifest: Any, small_limit: int, commit_ms: Mapping[int, int]) -> Aggregates:
    """{(spec id, partition values): Counts} of one manifest's live entries, aggregated as they are read: memory
    grows with the manifest's partitions, not with its files."""
    out: Aggregates = {}
    spec_id = manifest.partition_spec_id
    for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
        data_file = entry.data_file
        key = (spec_id, tuple(data_file.partition))
        counts = out.get(key)
        if counts is None:
            counts = out[key] = Counts(data_file.partition)
        counts.last_updated_ms = max(counts.last_updated_ms, commit_ms.get(entry.snapshot_id, 0))
        content = int(data_file.content)
        seq = entry.sequence_number or 0  # format v1: no sequence numbers, and no delete files
        if content:
            counts.delete_records += data_file.record_count
            counts.deletes_at(seq, int(content == 1), int(content != 1))
        if content == 1:
            counts.position_delete_files += 1
        elif content:
            counts.equality_delete_files += 1
        else:
            counts.data_seq(seq)
            size = data_file.file_size_in_bytes
            counts.data_files += 1
            counts.data_bytes += size
            counts.records += data_file.record_count
            if size < small_limit:
                counts.small_files += 1
                counts.small_bytes += size
                if not written_by_rewrite(entry):
                    counts.new_small_files += 1
    return out


def merge_into(total: Aggregates, part: Aggregates) -> None:
    """Add `part` to `total` (never changing `part`: it may be a manifest's aggregates, kept for the cache)."""
    for key, counts in part.items():
        if key not in total:
            total[key] = Counts(counts.record)
        total[key].add(counts)


def written_by_rewrite(entry: Any) -> bool:
    """True for files a rewrite committed: with Iceberg's default use-starting-sequence-number, their data
    sequence number is older than the commit's own (format v2+). Appended files have the two equal."""
    data_seq, file_seq = entry.sequence_number, entry.file_sequence_number
    return data_seq is not None and file_seq is not None and data_seq < file_seq


def read_manifests(
    io: Any,
    manifests: Sequence[Any],
    small_limit: int,
    commit_ms: Mapping[int, int],
    remote: bool,
    processes: Optional[int] = None,
    keep: bool = False,
) -> Tuple[Dict[str, Aggregates], Aggregates]:
    """({manifest path: its aggregates} if `keep`, else {}; the aggregates of all of them): only the sums are held
    unless `keep` asks for each manifest's (for the cache). With more than PROCESS_MIN_BYTES to decode, over
    `processes` processes (default: every core; 1: none)."""
    workers = min(processes or os.cpu_count() or 1, len(manifests))
    if workers > 1 and sum(m.manifest_length for m in manifests) >= PROCESS_MIN_BYTES:
        jobs = [(io, list(manifests[i::workers]), small_limit, dict(commit_ms), remote, keep) for i in range(workers)]
        try:
            per_manifest: Dict[str, Aggregates] = {}
            total: Aggregates = {}
            for kept, part in in_processes(__name__, "read_chunk", jobs):
                per_manifest.update(kept)
                merge_into(total, part)
            return per_manifest, total
        except (OSError, WorkerFailed) as exc:  # an interpreter that cannot start processes reads alone
            log.warning("health scan reads in one process", extra={"error": str(exc)[:200]})
    return read_chunk((io, list(manifests), small_limit, commit_ms, remote, keep))


def read_chunk(
    job: Tuple[Any, List[Any], int, Mapping[int, int], bool, bool],
) -> Tuple[Dict[str, Aggregates], Aggregates]:
    io, manifests, small_limit, commit_ms, remote, keep = job
    kept: Dict[str, Aggregates] = {}
    total: Aggregates = {}
    with ThreadPoolExecutor(max_workers=MANIFEST_READERS if remote else 1) as pool:
        for manifest, counts in zip(
            manifests, pool.map(lambda m: manifest_counts(io, m, small_limit, commit_ms), manifests)
        ):
            merge_into(total, counts)
            if keep:
                kept[manifest.manifest_path] = counts
    return kept, total
