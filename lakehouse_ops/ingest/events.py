"""Building S3 event notification bodies, as S3 sends them (used by the demo, tests and benchmarks)."""

import datetime
import json
import uuid
from typing import Optional
from urllib.parse import quote_plus


def s3_notification(
    bucket: str,
    key: str,
    size: int,
    etag: Optional[str] = None,
    event: str = "ObjectCreated:Put",
    event_time: Optional[str] = None,
    version_id: Optional[str] = None,
) -> str:
    """An S3 event notification body for one object; the key is encoded the way S3 encodes it. `version_id`: the
    object's version, as a versioned bucket announces it."""
    obj = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag or uuid.uuid4().hex}
    if version_id:
        obj["versionId"] = version_id
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": event,
                    "eventTime": event_time
                    or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": bucket, "arn": "arn:aws:s3:::" + bucket},
                        "object": obj,
                    },
                }
            ]
        }
    )
