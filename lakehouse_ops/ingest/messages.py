"""SQS message bodies -> the S3 objects they announce. Pure code: no AWS, no Spark.

Accepted shapes (see docs/ingest.md):
- S3 event notifications sent straight to SQS: every entry of `Records`; keys are form-URL-encoded;
- the same fanned out through SNS (`Type: Notification`, the notification as a JSON string in `Message`);
- EventBridge `Object Created` / `Object Deleted` events from `aws.s3`;
- `s3:TestEvent`, sent when a notification is configured: ignored.
Deletions are recorded and not ingested. Anything else is poison, with a reason that names what was wrong.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, unquote_plus

MAX_BODY_BYTES = 256 * 1024

OBJECTS, IGNORED, POISON = "objects", "ignored", "poison"


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    size: Optional[int] = None
    etag: Optional[str] = None
    version_id: Optional[str] = None
    sequencer: Optional[str] = None
    event_time: Optional[str] = None

    @property
    def uri(self) -> str:
        return "s3://%s/%s" % (self.bucket, self.key)

    @property
    def content_tag(self) -> str:
        """The ETag without the quotes HEAD and listings put around it ('' when the announcement has none)."""
        return normal_etag(self.etag)

    @property
    def identity(self) -> str:
        """What makes two announcements the same bytes: bucket, key, and the ETag (else the version id).

        The ETag names the content, so a notification (which carries a version id on a versioned bucket), a
        listing and an inventory report (which do not) give one object one identity; the version id is kept to
        read those bytes once the key holds others (see pin.py)."""
        return "%s/%s#%s" % (self.bucket, self.key, self.content_tag or self.version_id or "")


@dataclass(frozen=True)
class Parsed:
    kind: str  # objects | ignored | poison
    created: List[S3Object] = field(default_factory=list)
    deleted: List[S3Object] = field(default_factory=list)
    reason: str = ""


def normal_etag(etag: Optional[str]) -> str:
    """An ETag as S3 event notifications spell it: no surrounding quotes."""
    return (etag or "").strip().strip('"')


def decode_key(key: str, encoding: str) -> str:
    """`form`: S3 notification style ('+' is a space); `url`: percent escapes only; `none`: as sent."""
    if encoding == "form":
        return unquote_plus(key, encoding="utf-8", errors="strict")
    if encoding == "url":
        return unquote(key, encoding="utf-8", errors="strict")
    return key


def _poison(reason: str) -> Parsed:
    return Parsed(kind=POISON, reason=reason)


def _s3_records(records: Any, key_encoding: str = "form") -> Tuple[List[S3Object], List[S3Object]]:
    created, deleted = [], []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError("Records[%d] is not an object" % index)
        name = record.get("eventName", "")
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        if not bucket or not isinstance(obj.get("key"), str):
            raise ValueError("Records[%d] has no s3.bucket.name or s3.object.key" % index)
        item = S3Object(
            bucket=bucket,
            key=decode_key(obj["key"], key_encoding),
            size=obj.get("size"),
            etag=obj.get("eTag"),
            version_id=obj.get("versionId"),
            sequencer=obj.get("sequencer"),
            event_time=record.get("eventTime"),
        )
        if name.startswith("ObjectCreated:"):
            created.append(item)
        elif name.startswith("ObjectRemoved:"):
            deleted.append(item)
        else:
            raise ValueError(
                "Records[%d] has eventName %r; expected ObjectCreated:* or ObjectRemoved:*" % (index, name)
            )
    return created, deleted


def _eventbridge(event: Dict[str, Any], key_encoding: str) -> Tuple[List[S3Object], List[S3Object]]:
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    if not bucket or not isinstance(obj.get("key"), str):
        raise ValueError("EventBridge event has no detail.bucket.name or detail.object.key")
    item = S3Object(
        bucket=bucket,
        key=decode_key(obj["key"], key_encoding),
        size=obj.get("size"),
        etag=obj.get("etag"),
        version_id=obj.get("version-id"),
        sequencer=obj.get("sequencer"),
        event_time=event.get("time"),
    )
    kind = event.get("detail-type")
    if kind == "Object Created":
        return [item], []
    if kind == "Object Deleted":
        return [], [item]
    raise ValueError("EventBridge detail-type %r is not 'Object Created' or 'Object Deleted'" % kind)


def parse_body(body: str, eventbridge_key_encoding: str = "none", _depth: int = 0) -> Parsed:
    """Parse one SQS message body. Never raises: bad input is a POISON result with the reason."""
    if not body:
        return _poison("empty message body")
    if len(body.encode("utf-8")) > MAX_BODY_BYTES:
        return _poison("message body is larger than 256 KiB")
    try:
        event = json.loads(body)
    except ValueError as exc:
        return _poison("message body is not JSON (%s)" % exc)
    if not isinstance(event, dict):
        return _poison("message body is JSON but not an object")
    try:
        if event.get("Event") == "s3:TestEvent":
            return Parsed(kind=IGNORED, reason="s3:TestEvent")
        if event.get("Type") == "Notification" and "Message" in event:
            if _depth > 0:
                return _poison("SNS notification nested inside another")
            inner = parse_body(event["Message"], eventbridge_key_encoding, _depth + 1)
            if inner.kind == POISON:
                return _poison("SNS Message: " + inner.reason)
            return inner
        if isinstance(event.get("Records"), list):
            if not event["Records"]:
                return _poison("Records is empty")
            created, deleted = _s3_records(event["Records"])
        elif event.get("source") == "aws.s3" and "detail-type" in event:
            created, deleted = _eventbridge(event, eventbridge_key_encoding)
        else:
            return _poison(
                "not an S3 event notification, SNS-wrapped notification or EventBridge S3 event "
                "(top-level keys: %s)" % ", ".join(sorted(event)[:8])
            )
    except (ValueError, UnicodeDecodeError) as exc:
        return _poison(str(exc))
    if not created:
        return Parsed(kind=IGNORED, deleted=deleted, reason="deletion only")
    return Parsed(kind=OBJECTS, created=created, deleted=deleted)
