"""Small S3 helpers: URI parsing, reading a config file, writing a report."""

from typing import Any, Tuple

from lakehouse_ops.errors import LakehouseOpsError


def split_uri(uri: str) -> Tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); s3a:// and s3n:// are accepted as the same thing."""
    for scheme in ("s3://", "s3a://", "s3n://"):
        if uri.startswith(scheme):
            bucket, _, key = uri[len(scheme) :].partition("/")
            if bucket:
                return bucket, key
    raise LakehouseOpsError("'%s' is not an S3 URI of the form s3://bucket/key" % uri)


def read_bytes(uri: str, s3: Any = None) -> bytes:
    from lakehouse_ops.aws.clients import client

    bucket, key = split_uri(uri)
    s3 = s3 or client("s3")
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    except Exception as exc:  # botocore raises many types; the message names the object either way
        raise LakehouseOpsError("cannot read %s: %s" % (uri, exc)) from None


def read_text(uri: str, s3: Any = None) -> str:
    data = read_bytes(uri, s3)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LakehouseOpsError("cannot read %s: %s" % (uri, exc)) from None


def write_text(uri: str, text: str, s3: Any = None, content_type: str = "application/json") -> None:
    from lakehouse_ops.aws.clients import client

    bucket, key = split_uri(uri)
    s3 = s3 or client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    """True when the object is there (HEAD); False when S3 says it is not; other failures raise."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception as exc:
        if (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
