"""After an action deleted files of a table on a versioned S3 bucket: the storage it did not free (aws/versions.py).

With `storage.versioned_deletes` the noncurrent versions and delete markers under the table's location are
removed: only ever versions that are no longer current, so nothing a table reads is touched (Iceberg never writes
a data file twice; a rewritten `version-hint.text` leaves old versions that no one reads). Without it, what stays
is reported: the files' bytes keep their storage until a `NoncurrentVersionExpiration` rule removes them.
"""

from typing import Any, Dict, Sequence

from lakehouse_ops.aws.versions import bucket_copies, left_behind, remove, s3_location


def after_deletes(
    location: str, versioned_deletes: bool, deleted: int, s3: Any = None, skip: Sequence[str] = ()
) -> Dict[str, Any]:
    """Outputs for an action that deleted `deleted` files under `location` ({} when it is not on a versioned
    bucket). `skip`: the locations of tables nested in this one, whose versions their own policies decide."""
    where = s3_location(location)
    if where is None or not deleted:
        return {}
    if s3 is None:
        from lakehouse_ops.aws.clients import client

        s3 = client("s3")
    bucket, prefix = where
    copies = bucket_copies(s3, bucket)
    if not copies.versioned:
        return {}
    out: Dict[str, Any] = {"versioned_bucket": bucket}
    if copies.replicas:
        out["replicas"] = list(copies.replicas)  # they keep their copies; their own lifecycle rules expire them
    if not versioned_deletes:
        out["storage_not_freed"] = (
            "%s keeps versions: the %d deleted file(s) stay as noncurrent versions until a NoncurrentVersionExpiration "
            "lifecycle rule removes them (or set storage.versioned_deletes: true)" % (bucket, deleted)
        )
        return out
    nested = [where[1] for where in map(s3_location, skip) if where is not None and where[0] == bucket]
    versions = [v for v in left_behind(s3, bucket, prefix) if not any(v.key.startswith(n) for n in nested)]
    failed = remove(s3, bucket, versions)
    out.update(
        noncurrent_versions_removed=len(versions) - failed,
        noncurrent_bytes_freed=sum(v.size for v in versions) if not failed else None,
    )
    if failed:
        out["noncurrent_versions_left"] = failed
    return out
