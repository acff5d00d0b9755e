"""Per-manifest health aggregates kept between scans (`health.cache` in the config: a local directory or an s3://
prefix).

A manifest never changes once written, so what the scan sums from it (per partition: files, bytes, small files,
records, delete files, last write) holds for every later scan that meets it again. One pack per table and
small-file limit holds the aggregates of the manifests of the snapshot scanned last: the next scan reads the pack
(one request), decodes only the manifests it does not hold (those of new commits), and writes the pack of its own
snapshot back. A pack that cannot be read, or that a different version wrote, is ignored: the scan reads the
manifests, as without a cache. Writers racing on one pack both write correct aggregates; the last one stays.
"""

import base64
import decimal
import hashlib
import json
import uuid
from typing import Any, Dict, List, Mapping, Optional

from lakehouse_ops.aws.textio import read_text, write_text
from lakehouse_ops.health.aggregate import Aggregates, Counts
from lakehouse_ops.logs import get_logger

log = get_logger("health.cache")
PACK_VERSION = 2  # 2: delete files by sequence number and the smallest data sequence number
# A table's kept health: 2 since partitions carry their time ranges, 3 since they carry their delete files by
# kind and the dangling ones (an older record is taken again).
HEALTH_VERSION = 3


class Unencodable(ValueError):
    """A partition value the pack cannot hold (the manifest is then read on every scan)."""


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return {"d": str(value)}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    raise Unencodable(type(value).__name__)


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "b" in value:
            return base64.b64decode(value["b"])
        if "d" in value:
            return decimal.Decimal(value["d"])
        return uuid.UUID(value["u"])
    return value


def encode(aggregates: Aggregates) -> List[Dict[str, Any]]:
    return [
        dict(
            {name: getattr(counts, name) for name in Counts.SUMMED},
            spec=spec_id,
            values=[_encode_value(v) for v in values],
            last_updated_ms=counts.last_updated_ms,
            min_data_seq=counts.min_data_seq,
            delete_seqs=[[seq, p, e] for seq, (p, e) in sorted(counts.delete_seqs.items())],
        )
        for (spec_id, values), counts in aggregates.items()
    ]


def decode(items: List[Dict[str, Any]]) -> Aggregates:
    from pyiceberg.typedef import Record

    out: Aggregates = {}
    for item in items:
        values = tuple(_decode_value(v) for v in item["values"])
        counts = Counts(Record(*values))
        for name in Counts.SUMMED:
            setattr(counts, name, int(item[name]))
        counts.last_updated_ms = int(item["last_updated_ms"])
        counts.data_seq(item["min_data_seq"])
        for seq, position, equality in item["delete_seqs"]:
            counts.deletes_at(int(seq), int(position), int(equality))
        out[(int(item["spec"]), values)] = counts
    return out


class AggregateCache:
    """Packs of per-manifest aggregates under `root` (a local directory or an s3:// prefix)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def _location(self, table_location: str, small_limit: int) -> str:
        key = hashlib.sha256(("%s|%d" % (table_location.rstrip("/"), small_limit)).encode("utf-8")).hexdigest()
        return "%s/%s.json" % (self.root, key[:40])

    def load(self, table_location: str, small_limit: int) -> Dict[str, Aggregates]:
        """{manifest path: aggregates} of the table's last scanned snapshot, or {} when there is no usable pack."""
        location = self._location(table_location, small_limit)
        try:
            pack = json.loads(read_text(location, "health cache"))
            if pack.get("version") != PACK_VERSION or pack.get("table_location") != table_location:
                return {}
            return {path: decode(items) for path, items in pack["manifests"].items()}
        except Exception as exc:  # absent (the first scan), unreadable or from an older version: read the manifests
            if not _absent(exc):
                log.warning("health cache pack ignored", extra={"pack": location, "error": str(exc)[:200]})
            return {}

    def save(self, table_location: str, small_limit: int, manifests: Mapping[str, Optional[Aggregates]]) -> None:
        """Keep the aggregates of these manifests (None: one that cannot be kept); a failed write is only logged."""
        location = self._location(table_location, small_limit)
        packed = {}
        for path, aggregates in manifests.items():
            try:
                if aggregates is not None:
                    packed[path] = encode(aggregates)
            except Unencodable:
                continue
        pack = {"version": PACK_VERSION, "table_location": table_location, "manifests": packed}
        try:
            write_text(location, json.dumps(pack, separators=(",", ":")))
        except Exception as exc:  # the scan's figures stand; the next scan reads the manifests again
            log.warning("health cache pack not written", extra={"pack": location, "error": str(exc)[:200]})

    def _health_location(self, table_key: str, limits: str) -> str:
        key = hashlib.sha256(("health|%s|%s" % (table_key, limits)).encode("utf-8")).hexdigest()
        return "%s/%s.health.json" % (self.root, key[:40])

    def load_health(self, table_key: str, limits: str, metadata_location: str) -> Optional[Dict[str, Any]]:
        """The health kept for this table and limits if it was taken from `metadata_location`, else None."""
        location = self._health_location(table_key, limits)
        try:
            record = json.loads(read_text(location, "health cache"))
        except Exception as exc:
            if not _absent(exc):
                log.warning("health cache record ignored", extra={"record": location, "error": str(exc)[:200]})
            return None
        if record.get("version") != HEALTH_VERSION or record.get("metadata_location") != metadata_location:
            return None
        if record.get("table_key") != table_key or record.get("limits") != limits:
            return None
        health: Dict[str, Any] = record["health"]
        return health

    def save_health(self, table_key: str, limits: str, metadata_location: str, health: Dict[str, Any]) -> None:
        record = {
            "version": HEALTH_VERSION,
            "table_key": table_key,
            "limits": limits,
            "metadata_location": metadata_location,
            "health": health,
        }
        location = self._health_location(table_key, limits)
        try:
            write_text(location, json.dumps(record, separators=(",", ":")))
        except Exception as exc:
            log.warning("health cache record not written", extra={"record": location, "error": str(exc)[:200]})


def _absent(exc: Exception) -> bool:
    text = str(exc)
    return "No such file" in text or "NoSuchKey" in text or "Not Found" in text or "404" in text
