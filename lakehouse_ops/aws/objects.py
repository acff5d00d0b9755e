"""File operations on S3 through boto3: stat, recursive and directory listings, a move that never replaces an
object, many deletes at once, a prefix delete, and whether a directory holds an Iceberg table's metadata. Paths
come back spelled with the scheme they were given (s3, s3a or s3n)."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lakehouse_ops.aws.s3 import split_uri


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0] + "://"


def _missing(exc: BaseException) -> bool:
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound")


def _head(s3: Any, uri: str) -> Optional[Dict[str, Any]]:
    """The object's HeadObject answer, or None when there is none."""
    bucket, key = split_uri(uri)
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except Exception as exc:
        if _missing(exc):
            return None
        raise


def stat(s3: Any, uri: str) -> Optional[Tuple[int, int]]:
    """(size, modification time in ms) of an object, or None when there is none."""
    head = _head(s3, uri)
    if head is None:
        return None
    return int(head["ContentLength"]), int(head["LastModified"].timestamp() * 1000)


def _pages(s3: Any, uri: str, **extra: Any) -> Any:
    bucket, key = split_uri(uri)
    prefix = key.rstrip("/") + "/" if key else ""
    return bucket, prefix, s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **extra)


def list_files(s3: Any, location: str) -> List[Tuple[str, int, int]]:
    """Every object under the directory `location`: [(uri, size, modification time in ms)]."""
    bucket, _, pages = _pages(s3, location)
    scheme = _scheme(location)
    return [
        ("%s%s/%s" % (scheme, bucket, item["Key"]), int(item["Size"]), int(item["LastModified"].timestamp() * 1000))
        for page in pages
        for item in page.get("Contents", [])
    ]


def list_directories(s3: Any, location: str) -> List[str]:
    """The names of the directories (common prefixes) directly under `location`."""
    bucket, prefix, pages = _pages(s3, location, Delimiter="/")
    names = {p["Prefix"][len(prefix) :].rstrip("/") for page in pages for p in page.get("CommonPrefixes", [])}
    # A directory is a prefix with an object under it. Some S3 emulations (moto's server on a versioned bucket)
    # name a prefix whose objects all carry delete markers: each one is confirmed with a one-key listing.
    return sorted(
        n for n in names if n and s3.list_objects_v2(Bucket=bucket, Prefix=prefix + n + "/", MaxKeys=1).get("Contents")
    )


def delete_tree(s3: Any, location: str) -> bool:
    """Delete every object under `location`; True when none is left. Keys a batch delete reports as not deleted
    (S3 answers some per key, InternalError or SlowDown) are tried once more."""
    bucket = split_uri(location)[0]
    for _ in range(2):
        keys = [split_uri(uri)[1] for uri, _, _ in list_files(s3, location)]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True}
            )
        if not list_files(s3, location):
            return True
    return False


DELETE_BATCH = 250  # keys per DeleteObjects request (S3 takes up to 1000): smaller batches spread over the pool


def _delete_batch(s3: Any, bucket: str, keys: Sequence[str]) -> List[str]:
    """Delete `keys` of `bucket` in one request; the keys S3 answered with an error (per key: SlowDown,
    InternalError, AccessDenied)."""
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    return [error["Key"] for error in answer.get("Errors", [])]


def delete_keys(s3: Any, uris: Sequence[str], threads: int) -> List[str]:
    """Delete the objects `uris` (any of them may be gone already), DELETE_BATCH keys per request, `threads`
    requests at once on one client (its adaptive retry mode sets the pace for all of them). The keys S3 did not
    delete, or whose request spent its retries while S3 throttled, are tried once more after the others, one
    request at a time. Returns the uris that were not deleted; a refusal of a whole request (no permission, no
    bucket) raises."""
    spelled = {split_uri(uri): uri for uri in uris}

    def batches(pairs: Sequence[Tuple[str, str]]) -> List[Tuple[str, List[str]]]:
        by_bucket: Dict[str, List[str]] = {}
        for bucket, key in pairs:
            by_bucket.setdefault(bucket, []).append(key)
        return [
            (bucket, keys[start : start + DELETE_BATCH])
            for bucket, keys in sorted(by_bucket.items())
            for start in range(0, len(keys), DELETE_BATCH)
        ]

    def one(batch: Tuple[str, List[str]]) -> List[Tuple[str, str]]:
        try:
            return [(batch[0], key) for key in _delete_batch(s3, batch[0], batch[1])]
        except Exception as exc:
            if _throttled(exc):
                return [(batch[0], key) for key in batch[1]]
            raise

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        undone = [pair for pairs in pool.map(one, batches(sorted(spelled))) for pair in pairs]
    left = [pair for batch in batches(undone) for pair in one(batch)]
    return sorted(spelled[pair] for pair in left)


def _throttled(exc: BaseException) -> bool:
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    return code in ("SlowDown", "503", "ServiceUnavailable", "RequestTimeout", "InternalError", "500")


MAX_COPY_BYTES = 5 * 1024**3  # CopyObject's limit; larger objects are copied in parts
PART_BYTES = 512 * 1024**2


def _refused(exc: BaseException) -> bool:
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def _copy(s3: Any, source: Tuple[str, str], etag: str, size: int, target: Tuple[str, str]) -> bool:
    """Copy the source as it was when stated (its ETag) to a target that must not exist: both conditions are
    S3's, checked as it writes, so a target written meanwhile is never replaced. False when a condition fails."""
    copy_source = {"Bucket": source[0], "Key": source[1]}
    try:
        if size <= MAX_COPY_BYTES:  # one request
            s3.copy_object(
                Bucket=target[0], Key=target[1], CopySource=copy_source, CopySourceIfMatch=etag, IfNoneMatch="*"
            )
            return True
        upload = s3.create_multipart_upload(Bucket=target[0], Key=target[1])["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, PART_BYTES), 1):
                part = s3.upload_part_copy(
                    Bucket=target[0],
                    Key=target[1],
                    UploadId=upload,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceIfMatch=etag,
                    CopySourceRange="bytes=%d-%d" % (start, min(start + PART_BYTES, size) - 1),
                )
                parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
            s3.complete_multipart_upload(
                Bucket=target[0], Key=target[1], UploadId=upload, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
            )
        except Exception:
            s3.abort_multipart_upload(Bucket=target[0], Key=target[1], UploadId=upload)  # no parts left to pay for
            raise
        return True
    except Exception as exc:
        if _refused(exc):
            return False
        raise


def move(s3: Any, source: str, target: str) -> bool:
    """Copy `source` to `target` and delete the source, never over an existing object: True once the target
    holds the source's bytes and the source is gone. A move that fails leaves the source in place."""
    if stat(s3, target) is not None:
        return False
    source_bucket, source_key = split_uri(source)
    head = _head(s3, source)
    if head is None:
        return False
    size = int(head["ContentLength"])
    if not _copy(s3, (source_bucket, source_key), head["ETag"], size, split_uri(target)):
        return False
    copied = stat(s3, target)
    if copied is None or copied[0] != size:
        return False
    try:
        s3.delete_object(Bucket=source_bucket, Key=source_key)
    except Exception as exc:
        raise SourceNotDeleted(source, target) from exc
    return True


class SourceNotDeleted(Exception):
    """A move copied its source to the target (checked) but could not delete the source: the file is in both
    places until the caller deletes one of them (the error it met is the cause)."""

    def __init__(self, source: str, target: str) -> None:
        super().__init__("copied to the target, but the source could not be deleted")
        self.source, self.target = source, target


def holds_table_metadata(s3: Any, directory: str) -> bool:
    """Whether `<directory>/metadata/` holds an Iceberg `*.metadata.json`."""
    _, _, pages = _pages(s3, directory.rstrip("/") + "/metadata")
    return any(item["Key"].endswith(".metadata.json") for page in pages for item in page.get("Contents", []))
