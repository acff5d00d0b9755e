"""Versioned and replicated S3 buckets: what a delete leaves behind, and removing it.

On a versioned bucket (cross-region replication requires one) a DELETE without a version id only adds a delete
marker: the bytes stay as a noncurrent version until a `NoncurrentVersionExpiration` lifecycle rule or a delete by
version id removes them, and a replica bucket keeps its own copy (deletes by version id are never replicated).
Expiry, orphan removal and erasure free no storage there, and an erased subject's bytes stay, unless the versions
are removed too: `storage.versioned_deletes`.
"""

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from lakehouse_ops.aws.s3 import split_uri

TTL_S = 300  # a bucket's versioning and replication are asked once per five minutes per process
_facts: Dict[str, Tuple[float, "BucketCopies"]] = {}


@dataclass(frozen=True)
class BucketCopies:
    bucket: str
    versioning: str  # Enabled, Suspended, or "" (never enabled)
    replicas: Tuple[str, ...]  # destination buckets of its replication rules

    @property
    def versioned(self) -> bool:
        return self.versioning in ("Enabled", "Suspended")


def _code(exc: BaseException) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))


def bucket_copies(s3: Any, bucket: str) -> BucketCopies:
    """Whether `bucket` keeps versions, and the buckets it replicates to (cached for TTL_S)."""
    cached = _facts.get(bucket)
    if cached is not None and time.time() - cached[0] < TTL_S:
        return cached[1]
    versioning = str(s3.get_bucket_versioning(Bucket=bucket).get("Status") or "")
    replicas: List[str] = []
    try:
        rules = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"].get("Rules", [])
        for rule in rules:
            if rule.get("Status") == "Enabled":
                replicas.append(str((rule.get("Destination") or {}).get("Bucket", "")).split(":::")[-1])
    except Exception as exc:
        if _code(exc) not in ("ReplicationConfigurationNotFoundError", "NoSuchReplicationConfiguration"):
            raise
    found = BucketCopies(bucket, versioning, tuple(sorted(set(r for r in replicas if r))))
    _facts[bucket] = (time.time(), found)
    return found


class Version(NamedTuple):
    key: str
    version_id: str
    size: int  # 0 for a delete marker
    latest: bool
    marker: bool  # a delete marker, not bytes


def versions(s3: Any, bucket: str, prefix: str) -> Iterable[Version]:
    """Every version and delete marker under `prefix`."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Versions", []):
            yield Version(item["Key"], item["VersionId"], int(item.get("Size", 0)), bool(item.get("IsLatest")), False)
        for item in page.get("DeleteMarkers", []):
            yield Version(item["Key"], item["VersionId"], 0, bool(item.get("IsLatest")), True)


def left_behind(s3: Any, bucket: str, prefix: str) -> List[Version]:
    """The noncurrent versions and the delete markers under `prefix`: the bytes of files deleted there."""
    return [v for v in versions(s3, bucket, prefix) if v.marker or not v.latest]


def _delete(s3: Any, bucket: str, doomed: List[Version]) -> Set[Tuple[str, str]]:
    """Delete by version id, 1,000 per request: the (key, version id) S3 did not delete."""
    failed: Set[Tuple[str, str]] = set()
    for start in range(0, len(doomed), 1000):
        chunk = doomed[start : start + 1000]
        try:
            answer = s3.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": v.key, "VersionId": v.version_id} for v in chunk], "Quiet": True},
            )
        except Exception:  # the whole request failed (throttling, permissions): none of the chunk is gone
            failed.update((v.key, v.version_id) for v in chunk)
            continue
        failed.update((e.get("Key", ""), e.get("VersionId", "")) for e in answer.get("Errors", []))
    return failed


def remove(s3: Any, bucket: str, doomed: List[Version]) -> int:
    """Delete these versions by id; how many are still there. The bytes go first, then the delete markers of keys
    none of whose listed versions failed: a marker removed while a version of its key stays would make that
    version current again (a deleted file back, its bytes readable)."""
    failed = _delete(s3, bucket, [v for v in doomed if not v.marker])
    kept = {key for key, _ in failed}
    markers = [v for v in doomed if v.marker and v.key not in kept]
    failed |= _delete(s3, bucket, markers)
    return len(failed) + sum(1 for v in doomed if v.marker and v.key in kept)


def s3_location(location: str) -> Optional[Tuple[str, str]]:
    """(bucket, key prefix ending in '/') of an s3:// (s3a://, s3n://) location, or None."""
    if not location.startswith(("s3://", "s3a://", "s3n://")):
        return None
    bucket, key = split_uri(location)
    return bucket, key.rstrip("/") + "/"
