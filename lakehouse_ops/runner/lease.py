"""Per-table leases in S3, so two maintenance runs never work on the same table at once.

A lease is the object <prefix>/<table>.json holding its owner and expiry. Taking one is a conditional write:
`If-None-Match: *` when there is none; when the one there has expired, `If-Match: <its ETag>`, so of two runs
racing for an expired lease exactly one wins. Releasing deletes it only if it is still ours. A run that dies
leaves its lease to expire (ship.lease_minutes).
"""

import json
import socket
import time
import uuid
from typing import Any, Callable, Dict, Optional, Tuple

from lakehouse_ops.aws.s3 import split_uri
from lakehouse_ops.logs import get_logger

log = get_logger("runner.lease")


class Leases:
    def __init__(
        self,
        prefix: str,
        minutes: float,
        s3: Any = None,
        owner: Optional[str] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from lakehouse_ops.aws.clients import client

        self.bucket, key = split_uri(prefix.rstrip("/") + "/")
        self.prefix = key
        self.seconds = minutes * 60
        self.s3 = s3 or client("s3")
        self.owner = owner or "%s/%s" % (socket.gethostname(), uuid.uuid4().hex[:12])
        self.clock = clock

    def _key(self, table: str) -> str:
        return "%s%s.json" % (self.prefix, table)

    def _body(self) -> str:
        now = self.clock()
        return json.dumps({"owner": self.owner, "taken_at": int(now), "expires_at": int(now + self.seconds)})

    def acquire(self, table: str) -> Tuple[bool, Optional[Dict[str, Any]]]:
        """(True, None) if the lease is now ours; (False, holder) if another run holds it."""
        from botocore.exceptions import ClientError

        key = self._key(table)
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=self._body(), IfNoneMatch="*")
            return True, None
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
        try:
            current = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return self.acquire(table)  # released meanwhile
            raise
        holder = json.loads(current["Body"].read())
        if holder.get("owner") != self.owner and holder.get("expires_at", 0) > self.clock():
            return False, holder
        try:  # expired (or ours): take it over, unless someone else just did
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=self._body(), IfMatch=current["ETag"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False, holder
            raise
        log.info("took over an expired lease", extra={"table": table, "previous_owner": holder.get("owner")})
        return True, None

    def release(self, table: str) -> None:
        from botocore.exceptions import ClientError

        key = self._key(table)
        try:
            current = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return
        if json.loads(current["Body"].read()).get("owner") == self.owner:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
