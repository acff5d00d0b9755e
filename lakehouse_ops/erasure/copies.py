"""The copies of an erased subject's files that S3 keeps beside the table (aws/versions.py): noncurrent versions
on a versioned bucket, and the objects of replica buckets. An erasure is verified only when none is left: every
noncurrent version under the table's location is a deleted file's bytes (which may hold the subject: they are not
read), and a replica's object whose key the table's bucket no longer holds, or a replica's noncurrent version, is
a copy of one. With `storage.versioned_deletes` they are removed by version id (in the replicas too, where this
run can reach them); otherwise what remains is named, and the erasure is not verified."""

from typing import Any, Dict, List, Set, Tuple

from lakehouse_ops.aws.versions import Version, bucket_copies, left_behind, remove, s3_location, versions


def _current_keys(s3: Any, bucket: str, prefix: str) -> Set[str]:
    return {v.key for v in versions(s3, bucket, prefix) if v.latest and not v.marker}


def _replica_left(s3: Any, bucket: str, replica: str, prefix: str) -> List[Version]:
    """A replica's versions under `prefix` that are copies of deleted files: noncurrent ones, and current ones
    whose key the table's bucket no longer holds. The replica is listed first: a file written and replicated
    meanwhile is then among the table's current keys."""
    held = list(versions(s3, replica, prefix))
    live = _current_keys(s3, bucket, prefix)
    return [v for v in held if v.marker or not v.latest or v.key not in live]


def check_copies(location: str, versioned_deletes: bool, s3: Any = None) -> Tuple[List[str], Dict[str, Any]]:
    """(problems, counts) for a table at `location`, after its erasure deleted the files that held the subject."""
    where = s3_location(location)
    if where is None:
        return [], {}
    if s3 is None:
        from lakehouse_ops.aws.clients import client

        s3 = client("s3")
    bucket, prefix = where
    copies = bucket_copies(s3, bucket)
    problems: List[str] = []
    counts: Dict[str, Any] = {"versioned_bucket": copies.versioned}
    if copies.versioned:
        left = left_behind(s3, bucket, prefix)
        if left and versioned_deletes:
            remove(s3, bucket, left)
            left = left_behind(s3, bucket, prefix)
        counts["noncurrent_versions_left"] = len(left)
        if left:
            problems.append(
                "%d noncurrent version(s) of deleted files remain under the table's location in the versioned bucket "
                "%s and may hold the subject (set storage.versioned_deletes: true to remove them)" % (len(left), bucket)
            )
    for replica in copies.replicas:
        try:
            left = _replica_left(s3, bucket, replica, prefix)
            if left and versioned_deletes:
                remove(s3, replica, left)
                left = _replica_left(s3, bucket, replica, prefix)
        except Exception as exc:
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") or type(exc).__name__
            problems.append("replica bucket %s could not be checked (%s): copies may remain there" % (replica, code))
            continue
        counts.setdefault("replicas", {})[replica] = len(left)
        if left:
            problems.append(
                "replica bucket %s still holds %d copy(ies) of deleted files, which may hold the subject (set "
                "storage.versioned_deletes: true to remove them)" % (replica, len(left))
            )
    return problems, counts
