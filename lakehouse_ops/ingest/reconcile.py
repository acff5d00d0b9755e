"""`lakehouse-ops ingest reconcile`: ingest the objects under a prefix whose S3 notifications never arrived.

S3 event notifications are delivered at least once, not always once: an object can land and never be announced.
Reconcile lists a prefix (ListObjectsV2, an S3 Inventory report, or the local directory `uri_map` maps it to),
keeps the objects last modified within a window, drops those the ledger has committed (same bucket, key and
ETag), and ingests the rest through the job's own batch protocol: claimed, recorded, committed once. Each object
has the identity its notification gives it (bucket, key and ETag, whether or not the bucket is versioned), so a
notification that arrives after all finds it committed, and the same object reconciled twice or by two runs at
once is written once. A budget bounds one run; a dry run lists what would be ingested.
"""

import datetime
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from lakehouse_ops.aws.s3 import split_uri
from lakehouse_ops.ingest.batch import Batch
from lakehouse_ops.ingest.inventory import read_inventory
from lakehouse_ops.ingest.messages import S3Object, normal_etag
from lakehouse_ops.ingest.pin import file_md5
from lakehouse_ops.ingest.read import local_uri
from lakehouse_ops.units import iso_seconds

LISTED_IN_REPORT = 1000  # objects named in the report (the counts are whole)


@dataclass(frozen=True)
class Listed:
    """An object as a listing shows it."""

    bucket: str
    key: str
    size: int
    etag: str  # without quotes (normal_etag)
    modified_ms: float
    version_id: Optional[str] = None

    @property
    def uri(self) -> str:
        return "s3://%s/%s" % (self.bucket, self.key)

    def as_object(self) -> S3Object:
        moment = datetime.datetime.fromtimestamp(self.modified_ms / 1000.0, tz=datetime.timezone.utc)
        return S3Object(
            self.bucket,
            self.key,
            size=self.size,
            etag=self.etag,
            version_id=self.version_id,
            event_time=moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        )


def list_local(prefix: str, directory: str) -> Iterator[Listed]:
    """Files under a local directory as S3 would list them under `prefix` (ETag: the MD5 of the content, as S3's
    is for an object uploaded in one part)."""
    bucket, key_prefix = split_uri(prefix)
    root = directory[len("file://") :] if directory.startswith("file://") else directory
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            key = key_prefix.rstrip("/") + "/" + rel if key_prefix else rel
            info = os.stat(path)
            yield Listed(bucket, key, info.st_size, file_md5(path), info.st_mtime * 1000.0)


def list_s3(prefix: str, s3: Any) -> Iterator[Listed]:
    bucket, key_prefix = split_uri(prefix)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix):
        for item in page.get("Contents", []):
            yield Listed(
                bucket, item["Key"], int(item["Size"]), normal_etag(item.get("ETag")), _epoch_ms(item["LastModified"])
            )


def _epoch_ms(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp() * 1000.0
    text = str(value).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp() * 1000.0


def listing(prefix: str, uri_map: Dict[str, str], inventory: Optional[str], s3: Any) -> Iterator[Listed]:
    """The objects under `prefix`: from the inventory report when given, else the local directory the config's
    uri_map maps the prefix to, else S3."""
    if inventory:
        for row in read_inventory(inventory, uri_map, s3):
            if row["key"].startswith(split_uri(prefix)[1]) and row["bucket"] == split_uri(prefix)[0]:
                yield Listed(
                    row["bucket"], row["key"], row["size"], row["etag"], _epoch_ms(row["modified"]), row["version"]
                )
        return
    mapped = local_uri(prefix, uri_map)
    if mapped != prefix:
        yield from list_local(prefix, mapped)
        return
    yield from list_s3(prefix, s3)


def in_window(listed: Iterable[Listed], since_ms: float, until_ms: float) -> List[Listed]:
    """The objects last modified in [since, until), oldest first."""
    return sorted((o for o in listed if since_ms <= o.modified_ms < until_ms), key=lambda o: (o.modified_ms, o.key))


def within_budget(objects: Sequence[Listed], max_objects: int, max_bytes: int) -> List[Listed]:
    """The first of `objects` that fit the budget (at least one, however large)."""
    chosen: List[Listed] = []
    total = 0
    for obj in objects:
        if len(chosen) >= max_objects or (chosen and total + obj.size > max_bytes):
            break
        chosen.append(obj)
        total += obj.size
    return chosen


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def reconcile(
    job: Any,
    prefix: str,
    since_ms: float,
    until_ms: float,
    max_objects: int,
    max_bytes: int,
    dry_run: bool = False,
    inventory: Optional[str] = None,
    s3: Any = None,
) -> Dict[str, Any]:
    """Ingest (or, dry run, list) the objects under `prefix` modified in the window that the ledger has not
    committed, at most the budget's worth, through `job`'s batch protocol (an IngestJob, or a RoutedIngest: each
    object is looked up in the ledger of the target its route sends it to)."""
    cfg = job.cfg
    local = inventory is None and local_uri(prefix, cfg.uri_map) != prefix
    if s3 is None and not local:
        from lakehouse_ops.aws.clients import client

        s3 = client("s3")
    inside = in_window(listing(prefix, cfg.uri_map, inventory, s3), since_ms, until_ms)
    job.prepare()
    earliest = int(inside[0].modified_ms) if inside else 0
    done = set()
    for target, objects in by_target(job, inside):
        done |= target.ledger.committed_contents([(o.bucket, o.key, o.etag) for o in objects], earliest)
    missing = [o for o in inside if (o.bucket, o.key, o.etag) not in done]
    chosen = within_budget(missing, max_objects, max_bytes)
    report: Dict[str, Any] = {
        "ok": True,
        "target": job.report_target,
        "prefix": prefix,
        "since": iso_seconds(since_ms / 1000.0),
        "until": iso_seconds(until_ms / 1000.0),
        "dry_run": dry_run,
        "in_window": len(inside),
        "already_committed": len(inside) - len(missing),
        "unannounced": len(missing),
        "chosen": len(chosen),
        "chosen_bytes": sum(o.size for o in chosen),
        "left_for_next_run": len(missing) - len(chosen),
        "objects": [o.uri for o in chosen[:LISTED_IN_REPORT]],
    }
    if dry_run or not chosen:
        job.stop()
        return report
    try:
        report["batches"] = [job.process(_batch(group)) for group in chunks(chosen, cfg.batch.max_objects)]
    finally:
        job.stop()
    report["rows"] = sum(b.get("rows", 0) for b in report["batches"])
    report["failed_objects"] = {k: v for b in report["batches"] for k, v in b.get("failed_objects", {}).items()}
    report["held_elsewhere"] = sum(b.get("held_elsewhere", 0) for b in report["batches"])
    report["ok"] = not report["failed_objects"]
    return report


def by_target(worker: Any, objects: Sequence[Listed]) -> List[Tuple[Any, List[Listed]]]:
    """(IngestJob, its objects) for a worker with routes (each object to its route's target) or without."""
    jobs = getattr(worker, "jobs", None)
    if jobs is None:
        return [(worker, list(objects))]
    groups: List[Tuple[Any, List[Listed]]] = [(j, []) for j in jobs]
    for obj in objects:
        for (route, _), (_, group) in zip(worker.routes, groups):
            if route is None or route.matches(obj.uri):
                group.append(obj)
                break
    return groups


def _batch(group: Sequence[Listed]) -> Batch:
    objects = [o.as_object() for o in group]
    return Batch(objects={o.identity: o for o in objects}, bytes=sum(o.size or 0 for o in objects))
