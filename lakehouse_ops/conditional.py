"""Small records that several processes update safely: create-if-absent and compare-and-swap.

Two backends with one interface: S3 (conditional writes: `If-None-Match: *` to create, `If-Match: <ETag>` to
replace) for clusters, and a local directory (an OS file lock around each check-and-write) for a laptop or the
tests. Ingest claims are built on it. Each record is a small JSON document; its version tag (`etag`) changes with
every write.
"""

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Tuple

Record = Tuple[Dict[str, Any], str]  # (document, etag)


class ConditionalStore:
    """Records under string keys, written only if absent (`create`) or unchanged since read (`replace`)."""

    def create(self, key: str, doc: Dict[str, Any]) -> Optional[str]:
        """Write `doc` at `key` if nothing is there; its etag, or None if a record exists."""
        raise NotImplementedError

    def read(self, key: str) -> Optional[Record]:
        raise NotImplementedError

    def replace(self, key: str, doc: Dict[str, Any], etag: str) -> Optional[str]:
        """Write `doc` at `key` only if the record there still has `etag`; the new etag, or None."""
        raise NotImplementedError

    def delete(self, key: str, etag: Optional[str] = None) -> bool:
        """Delete the record at `key` (only if it still has `etag`, when given); False if it had another."""
        raise NotImplementedError


def open_store(root: str, s3: Any = None) -> ConditionalStore:
    """The store under `root`: an s3:// prefix, or a local directory."""
    if root.startswith(("s3://", "s3a://", "s3n://")):
        return S3Store(root, s3)
    return LocalStore(root[len("file://") :] if root.startswith("file://") else root)


def _encode(doc: Dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True).encode("utf-8")


class LocalStore(ConditionalStore):
    """Records as files; every check-and-write holds an exclusive lock on the record's lock file."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    @contextmanager
    def _locked(self, path: str) -> Iterator[None]:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _load(path: str) -> Optional[Record]:
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        return json.loads(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest()[:32]

    @staticmethod
    def _write(path: str, doc: Dict[str, Any]) -> str:
        raw = _encode(doc)
        partial = "%s.%d.tmp" % (path, os.getpid())
        with open(partial, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        return hashlib.sha256(raw).hexdigest()[:32]

    def create(self, key: str, doc: Dict[str, Any]) -> Optional[str]:
        path = self._path(key)
        with self._locked(path):
            if os.path.exists(path):
                return None
            return self._write(path, doc)

    def read(self, key: str) -> Optional[Record]:
        return self._load(self._path(key))

    def replace(self, key: str, doc: Dict[str, Any], etag: str) -> Optional[str]:
        path = self._path(key)
        with self._locked(path):
            current = self._load(path)
            if current is None or current[1] != etag:
                return None
            return self._write(path, doc)

    def delete(self, key: str, etag: Optional[str] = None) -> bool:
        path = self._path(key)
        with self._locked(path):
            if etag is not None:
                current = self._load(path)
                if current is not None and current[1] != etag:
                    return False
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            return True


class S3Store(ConditionalStore):
    """Records as S3 objects under a prefix, written with S3's conditional writes."""

    CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict")

    def __init__(self, root: str, s3: Any = None) -> None:
        from lakehouse_ops.aws.clients import client
        from lakehouse_ops.aws.s3 import split_uri

        self.bucket, prefix = split_uri(root.rstrip("/") + "/")
        self.prefix = prefix
        self.s3 = s3 or client("s3")

    def _put(self, key: str, doc: Dict[str, Any], **condition: str) -> Optional[str]:
        from botocore.exceptions import ClientError

        try:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=_encode(doc),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in self.CONFLICT:
                return None
            raise
        etag: str = response["ETag"]
        return etag

    def create(self, key: str, doc: Dict[str, Any]) -> Optional[str]:
        return self._put(key, doc, IfNoneMatch="*")

    def read(self, key: str) -> Optional[Record]:
        from botocore.exceptions import ClientError

        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(response["Body"].read().decode("utf-8")), response["ETag"]

    def replace(self, key: str, doc: Dict[str, Any], etag: str) -> Optional[str]:
        from botocore.exceptions import ClientError

        try:
            return self._put(key, doc, IfMatch=etag)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def delete(self, key: str, etag: Optional[str] = None) -> bool:
        """S3's conditional delete (`If-Match`) when `etag` is given."""
        from botocore.exceptions import ClientError

        try:
            if etag is None:
                self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + key)
            else:
                self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + key, IfMatch=etag)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in self.CONFLICT:
                return False
            if exc.response["Error"]["Code"] not in ("NoSuchKey", "404"):
                raise
        return True
