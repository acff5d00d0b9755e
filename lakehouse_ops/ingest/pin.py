"""Pinning each announced object to its own bytes before a batch reads it.

An announcement names bytes: bucket, key, ETag, and a version id on a versioned bucket. Reading by key reads
whatever the key holds *now*: a key written twice before a worker reads it would give the second bytes for both
announcements. So before a batch is read, each object's key is looked at (S3: a HEAD; a local file mapped by
`uri_map`: its size, time and MD5, which is what S3's ETag is for a one-part upload) and:

- the key still holds the announced bytes (same ETag, or same version id): read it, and look again after the
  rows are staged: if it changed meanwhile, the staged rows are dropped and the batch is read again;
- it holds other bytes, and the announcement names a version the bucket still has: that version is copied aside
  (server side, under the job's claims prefix) and the copy is read;
- it holds other bytes and the announced ones cannot be read any more: the object is *superseded*, recorded so in
  the ledger, counted and named in the batch's metrics, never read as something it is not;
- it does not exist (and no announced version does): reported missing, as before.

An announcement without an ETag or version id cannot be compared: its key is read as it is. Two announcements in
one batch never read one file: the second is an alias of the first (the same bytes), recorded with it.
"""

import dataclasses
import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from lakehouse_ops.aws.s3 import split_uri
from lakehouse_ops.engine.fs import head_bytes, stat
from lakehouse_ops.ingest.formats import SNIFF_BYTES, mismatch
from lakehouse_ops.ingest.messages import S3Object, normal_etag
from lakehouse_ops.ingest.read import Located, Reasons, local_uri
from lakehouse_ops.logs import get_logger

log = get_logger("ingest.pin")

READ, VERSION, SUPERSEDED, MISSING = "read", "version", "superseded", "missing"
# An ETag S3 gives a one-part upload: the MD5 of the bytes (a local file's can be compared with it).
MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
NOT_FOUND = ("404", "NoSuchKey", "NotFound", "NoSuchVersion", "InvalidArgument", "400")


@dataclass(frozen=True)
class Current:
    """A key as the store shows it now."""

    etag: Optional[str]  # None: nothing to compare an announcement with
    version_id: Optional[str]
    signature: Tuple[Any, ...]  # what changes when the key is written again


def same_bytes(obj: S3Object, current: Current) -> Optional[bool]:
    """Does the key hold the announced bytes? None when neither an ETag nor a version id can be compared."""
    if obj.content_tag and current.etag:
        return obj.content_tag == current.etag
    if obj.version_id and current.version_id:
        return obj.version_id == current.version_id
    return None


def decide(obj: S3Object, current: Optional[Current], version_readable: bool) -> str:
    """READ (the key as it is), VERSION (the announced version, copied aside), SUPERSEDED or MISSING."""
    if current is not None and same_bytes(obj, current) is not False:
        return READ
    if obj.version_id and version_readable:
        return VERSION
    return SUPERSEDED if current is not None else MISSING


@dataclass
class Pinned:
    """A batch's objects, each pinned to its bytes."""

    located: Located = field(default_factory=dict)  # identity -> (path Spark loads, its qualified uri)
    failed: Reasons = field(default_factory=dict)  # missing, unreadable, of another format
    superseded: Reasons = field(default_factory=dict)  # the key holds other bytes; the announced ones are gone
    aliases: Dict[str, str] = field(default_factory=dict)  # identity -> the identity read for the same bytes
    signatures: Dict[str, Tuple[Any, ...]] = field(default_factory=dict)  # identity -> key's state when pinned
    staged: List[str] = field(default_factory=list)  # copies of versions, removed after the batch
    headers: Dict[str, List[str]] = field(default_factory=dict)  # CSV with a header: path -> its names (csvread)
    # Announcements without an ETag: the ETag of the bytes read for them (recorded in the ledger: the same bytes
    # announced again, with or without one, are then known committed).
    resolved: Dict[str, str] = field(default_factory=dict)

    def as_read(self, obj: S3Object) -> S3Object:
        """The object as the ledger records it: with the ETag of the bytes read when its announcement had none."""
        etag = self.resolved.get(obj.identity)
        return dataclasses.replace(obj, etag=etag) if etag else obj

    def reading(self) -> Dict[str, str]:
        """{path Spark loads: the identity read from it}."""
        return {path: identity for identity, (path, _) in self.located.items()}


def _error_code(exc: BaseException) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))


def current_s3(s3: Any, obj: S3Object) -> Optional[Current]:
    try:
        head = s3.head_object(Bucket=obj.bucket, Key=obj.key)
    except Exception as exc:
        if _error_code(exc) in NOT_FOUND:
            return None
        raise
    version = head.get("VersionId")
    version = None if version in (None, "null") else version
    etag = normal_etag(head.get("ETag")) or None
    return Current(etag, version, (etag, version, head.get("ContentLength")))


def version_readable(s3: Any, obj: S3Object) -> bool:
    """The bucket still holds the announced version (a versioned bucket keeps it until it is deleted by id)."""
    try:
        s3.head_object(Bucket=obj.bucket, Key=obj.key, VersionId=obj.version_id)
        return True
    except Exception as exc:
        if _error_code(exc) in NOT_FOUND:
            return False
        raise


def file_md5(path: str) -> str:
    """The MD5 of a local file, as S3's ETag of a one-part upload."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def current_local(path: str, obj: S3Object) -> Optional[Current]:
    """A local file (a `uri_map` landing directory): its MD5 stands for the ETag when the announcement's is one."""
    local = path[len("file://") :] if path.startswith("file://") else path
    try:
        info = os.stat(local)
    except FileNotFoundError:
        return None
    signature = (info.st_size, info.st_mtime_ns, info.st_ino)
    # A multipart upload's ETag is not an MD5 of the bytes: such an announcement cannot be compared here.
    etag = file_md5(local) if not obj.content_tag or MD5_ETAG.match(obj.content_tag) else None
    return Current(etag, None, signature)


def local_file(path: str) -> bool:
    return path.startswith("file:") or "://" not in path


class Pinner:
    """Pins objects for one job: `uri_map` (local landing), the format (first bytes checked), where versions are
    copied aside (`staging`, the job's claims prefix), and an S3 client made when first needed."""

    def __init__(self, spark: Any, uri_map: Mapping[str, str], fmt: Optional[str], staging: str, s3: Any = None):
        self.spark = spark
        self.uri_map = uri_map
        self.fmt = fmt
        self.staging = staging.rstrip("/")
        self._s3 = s3

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            from lakehouse_ops.aws.clients import client

            self._s3 = client("s3")
        return self._s3

    def current(self, obj: S3Object, path: str) -> Optional[Current]:
        if path != obj.uri and local_file(path):
            return current_local(path, obj)
        if path == obj.uri:
            return current_s3(self.s3, obj)
        info = stat(self.spark, path)  # another filesystem `uri_map` points at: nothing to compare
        return None if info is None else Current(None, None, (info.size, info.mtime_ms))

    def qualified(self, path: str) -> str:
        """The path as Hadoop qualifies it (what Spark reports in `_metadata.file_path`): a local file's from its
        status, an object store's from the URI alone (no second request)."""
        if local_file(path):
            info = stat(self.spark, path)
            if info is None:
                raise FileNotFoundError(path)
            return str(info.uri)
        return str(self.spark._jvm.org.apache.hadoop.fs.Path(path).toUri().toString())

    def stage(self, identity: str, obj: S3Object) -> str:
        """Copy the announced version aside; the copy's path (its name ends as the key's, for decompression)."""
        name = obj.key.rsplit("/", 1)[-1]
        digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
        target = "%s/versions/%s/%s" % (self.staging, digest, name)
        if target.startswith("s3://"):
            bucket, key = split_uri(target)
            source = {"Bucket": obj.bucket, "Key": obj.key, "VersionId": obj.version_id}
            self.s3.copy(source, bucket, key)
        else:
            local = target[len("file://") :] if target.startswith("file://") else target
            os.makedirs(os.path.dirname(local), exist_ok=True)
            self.s3.download_file(obj.bucket, obj.key, local, ExtraArgs={"VersionId": obj.version_id})
        return target

    def one(self, identity: str, obj: S3Object) -> Tuple[str, str, Any]:
        """(identity, outcome, detail): READ/VERSION -> (load path, signature), others -> the reason."""
        path = local_uri(obj.uri, self.uri_map)
        try:
            current = self.current(obj, path)
            # Only an S3 object can be read at a version, and only when its key no longer holds it.
            elsewhere = current is None or same_bytes(obj, current) is False
            wanted = elsewhere and bool(obj.version_id) and path == obj.uri
            outcome = decide(obj, current, wanted and version_readable(self.s3, obj))
        except Exception as exc:
            return identity, MISSING, "cannot check %s: %s" % (obj.uri, str(exc).splitlines()[0][:300])
        if outcome == SUPERSEDED:
            return (
                identity,
                outcome,
                "%s holds other bytes now (ETag %s); the announced ones (%s) are gone"
                % (obj.uri, current.etag if current is not None else "?", obj.content_tag or obj.version_id),
            )
        if outcome == MISSING:
            return identity, outcome, "object %s does not exist" % obj.uri
        if outcome == VERSION:
            return identity, outcome, (self.stage(identity, obj), None, None)
        signature, etag = (current.signature, current.etag) if current is not None else (None, None)
        return identity, outcome, (path, signature, etag)

    def pin(
        self, objects: Mapping[str, S3Object], reading: Optional[Mapping[str, str]] = None, threads: int = 8
    ) -> Pinned:
        """Pin every object (a few at once): located, failed, superseded, aliases. `reading`: paths the batch
        already reads, {path: identity} (an object pinned to one of them is an alias of that identity)."""
        out = Pinned()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(lambda item: self.one(*item), list(objects.items())))
        read_by_path: Dict[str, str] = dict(reading or {})
        for identity, outcome, detail in results:
            if outcome == SUPERSEDED:
                out.superseded[identity] = detail
            elif outcome == MISSING:
                out.failed[identity] = detail
            else:
                path, signature, etag = detail
                if outcome == VERSION:
                    out.staged.append(path)
                if etag and not objects[identity].content_tag:
                    out.resolved[identity] = etag
                if path in read_by_path:
                    out.aliases[identity] = read_by_path[path]
                    continue
                problem = self._check_format(objects[identity], path)
                if problem is not None:
                    out.failed[identity] = problem
                    continue
                read_by_path[path] = identity
                out.located[identity] = (path, self.qualified(path))
                if signature is not None:
                    out.signatures[identity] = signature
        return out

    def _check_format(self, obj: S3Object, path: str) -> Optional[str]:
        if self.fmt is None:
            return None
        try:
            wrong = mismatch(obj.key, head_bytes(self.spark, path, SNIFF_BYTES), self.fmt)
        except Exception as exc:
            return "cannot read %s: %s" % (obj.uri, str(exc).splitlines()[0][:300])
        return None if wrong is None else "%s: %s" % (obj.uri, wrong)

    def changed(self, objects: Mapping[str, S3Object], pinned: Pinned) -> List[str]:
        """The identities read from their key whose key changed since they were pinned (read again)."""

        def check(identity: str) -> Optional[str]:
            obj = objects[identity]
            now = self.current(obj, pinned.located[identity][0])
            return identity if now is None or now.signature != pinned.signatures[identity] else None

        with ThreadPoolExecutor(max_workers=8) as pool:
            read = [i for i in pinned.signatures if i in pinned.located]
            return [i for i in pool.map(check, read) if i is not None]

    def discard(self, pinned: Pinned) -> None:
        """Remove the copies of versions a batch read (best effort: the claims prefix's lifecycle rule is the
        backstop)."""
        for path in pinned.staged:
            try:
                if path.startswith("s3://"):
                    bucket, key = split_uri(path)
                    self.s3.delete_object(Bucket=bucket, Key=key)
                else:
                    os.remove(path[len("file://") :] if path.startswith("file://") else path)
            except Exception as exc:
                log.warning("a copied version was not removed", extra={"path": path, "error": str(exc)[:200]})
        pinned.staged = []
