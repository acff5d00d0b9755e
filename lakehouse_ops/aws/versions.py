"""Versioned and replicated S3 buckets: what a delete leaves behind, and removing it.

On a versioned bucket (cross-region replication requires one) a DELETE without a version id only adds a delete
marker: the bytes stay as a noncurrent version until a `NoncurrentVersionExpiration` lifecycle rule or a delete by
version id removes them, and a replica bucket keeps its own copy (deletes by version id are never replicated).
Expiry, orphan removal and erasure free no storage there, and an erased subject's bytes stay, unless the versions
are removed too: `storage.versioned_deletes`.
"""

import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from lakehouse_ops.aws.s3 import split_uri

TTL_S = 300  # a bucket's versioning and replication are asked once per five minutes per process
_facts: Dict[str, Tuple[float, "BucketCopies"]] = {}
Version = Tuple[str, str, int]  # key, version id, size (0 for a delete marker)


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


def versions(s3: Any, bucket: str, prefix: str) -> Iterable[Tuple[str, str, int, bool]]:
    """(key, version id, size, latest) of every version and delete marker under `prefix`."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Versions", []):
            yield item["Key"], item["VersionId"], int(item.get("Size", 0)), bool(item.get("IsLatest"))
        for item in page.get("DeleteMarkers", []):
            yield item["Key"], item["VersionId"], 0, False


def left_behind(s3: Any, bucket: str, prefix: str) -> List[Version]:
    """The noncurrent versions and delete markers under `prefix`: the bytes of files deleted there."""
    return [(k, v, size) for k, v, size, latest in versions(s3, bucket, prefix) if not latest]


def remove(s3: Any, bucket: str, versions: List[Version]) -> int:
    """Delete these versions by id (1,000 per request); how many S3 did not delete."""
    failed = 0
    for start in range(0, len(versions), 1000):
        chunk = versions[start : start + 1000]
        answer = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k, "VersionId": v} for k, v, _ in chunk], "Quiet": True}
        )
        failed += len(answer.get("Errors", []))
    return failed


def s3_location(location: str) -> Optional[Tuple[str, str]]:
    """(bucket, key prefix ending in '/') of an s3:// (s3a://, s3n://) location, or None."""
    if not location.startswith(("s3://", "s3a://", "s3n://")):
        return None
    bucket, key = split_uri(location)
    return bucket, key.rstrip("/") + "/"
