"""Removing what deletes left on a versioned bucket (moto's server): the bytes of a deleted file whose version
cannot be removed (a legal hold here; a denied DeleteObjectVersion or a failed request alike) keep their delete
marker, so the file never comes back as a current object, and the erasure's copy check names what remains."""

import uuid

from lakehouse_ops.aws import versions
from lakehouse_ops.erasure.copies import check_copies
from lakehouse_ops.maintenance.storage import after_deletes


def _gone(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except Exception as exc:
        return exc.response["Error"]["Code"] in ("404", "NoSuchKey", "405", "MethodNotAllowed")


def test_a_version_that_cannot_be_removed_keeps_its_delete_marker(aws_env):
    from lakehouse_ops.aws.clients import client

    s3 = client("s3")
    bucket = "locked-%s" % uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)  # object lock: versioned
    versions._facts.clear()
    held, free = "wh/ns/events/data/held.parquet", "wh/ns/events/data/free.parquet"
    made = {key: s3.put_object(Bucket=bucket, Key=key, Body=b"bytes that held the subject") for key in (held, free)}
    s3.put_object_legal_hold(Bucket=bucket, Key=held, LegalHold={"Status": "ON"})
    for key in (held, free):
        s3.delete_object(Bucket=bucket, Key=key)  # what the erasure's delete does: a delete marker
    try:
        problems, counts = check_copies("s3://%s/wh/ns/events" % bucket, versioned_deletes=True, s3=s3)
        assert _gone(s3, bucket, held) and _gone(s3, bucket, free)  # neither file is back
        assert counts["noncurrent_versions_left"] == 2, counts  # the held version and its marker
        assert problems and "2 noncurrent version(s)" in problems[0]
        left = versions.left_behind(s3, bucket, "wh/")
        assert {(v.key, v.marker) for v in left} == {(held, False), (held, True)}  # free.parquet's are gone

        s3.put_object(Bucket=bucket, Key="wh/ns/events/data/other.parquet", Body=b"x")
        s3.delete_object(Bucket=bucket, Key="wh/ns/events/data/other.parquet")
        out = after_deletes("s3://%s/wh/ns/events" % bucket, True, 1, s3=s3)  # expiry or orphan removal
        assert out["noncurrent_versions_left"] == 2 and out["noncurrent_bytes_freed"] is None, out
        assert _gone(s3, bucket, held) and _gone(s3, bucket, "wh/ns/events/data/other.parquet")
    finally:
        s3.put_object_legal_hold(
            Bucket=bucket, Key=held, VersionId=made[held]["VersionId"], LegalHold={"Status": "OFF"}
        )


def test_versioned_deletes_leave_a_nested_tables_versions_to_its_own_policy(aws_env):
    """A table nested in the location (its own policy may keep versions as its backup): what an orphan run of the
    outer table removes by version id stops at the nested table's location, and at a sibling sharing the name."""
    from lakehouse_ops.aws.clients import client

    s3 = client("s3")
    bucket = "nested-%s" % uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    versions._facts.clear()
    for key in ("t/data/orphan.parquet", "t/data/inner/data/gone.parquet", "t_v2/data/gone.parquet"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"bytes")
        s3.delete_object(Bucket=bucket, Key=key)
    out = after_deletes("s3://%s/t" % bucket, True, 1, s3=s3, skip=["s3://%s/t/data/inner" % bucket])
    assert out["noncurrent_versions_removed"] == 2, out  # the outer orphan's bytes and its marker
    left = {(v.key, v.marker) for v in versions.left_behind(s3, bucket, "")}
    assert left == {
        ("t/data/inner/data/gone.parquet", False),
        ("t/data/inner/data/gone.parquet", True),
        ("t_v2/data/gone.parquet", False),
        ("t_v2/data/gone.parquet", True),
    }
