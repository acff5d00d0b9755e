"""File operations on S3 through boto3 (aws/objects.py: what a Spark without a Hadoop filesystem for s3:// uses),
on moto's server: stat, listings, a move that never replaces an object, a prefix delete, table metadata."""

import uuid

from lakehouse_ops.aws import objects


def test_file_operations_on_s3_without_hadoop(aws_env):
    from lakehouse_ops.aws.clients import client

    s3 = client("s3")
    bucket = "objects-%s" % uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    root = "s3a://%s/wh/ns/t" % bucket
    for key, body in (
        ("wh/ns/t/data/a b.parquet", b"aaaa"),
        ("wh/ns/t/data/c.parquet", b"cc"),
        ("wh/ns/t/metadata/v1.metadata.json", b"{}"),
        ("wh/ns/t_v2/data/x.parquet", b"x"),  # a sibling whose name starts like the table's
        ("wh/ns/t/nested/metadata/00001-x.metadata.json", b"{}"),
    ):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert objects.stat(s3, root + "/data/a b.parquet")[0] == 4
    assert objects.stat(s3, root + "/data/missing.parquet") is None
    listed = objects.list_files(s3, root + "/data")
    assert [(uri, size) for uri, size, _ in listed] == [(root + "/data/a b.parquet", 4), (root + "/data/c.parquet", 2)]
    assert objects.list_directories(s3, root) == ["data", "metadata", "nested"]
    assert objects.holds_table_metadata(s3, root) and objects.holds_table_metadata(s3, root + "/nested")
    assert not objects.holds_table_metadata(s3, root + "/data")

    trash = root + "/.trash/20261207T000000000Z/data/a b.parquet"
    assert objects.move(s3, root + "/data/a b.parquet", trash)
    assert objects.stat(s3, root + "/data/a b.parquet") is None and objects.stat(s3, trash)[0] == 4
    # Never over an existing object: the place is taken again, the move is refused and nothing changes.
    s3.put_object(Bucket=bucket, Key="wh/ns/t/data/a b.parquet", Body=b"new")
    assert not objects.move(s3, trash, root + "/data/a b.parquet")
    assert objects.stat(s3, root + "/data/a b.parquet")[0] == 3 and objects.stat(s3, trash)[0] == 4
    assert not objects.move(s3, root + "/data/gone.parquet", root + "/data/elsewhere.parquet")

    assert objects.delete_tree(s3, root + "/.trash")
    assert objects.list_files(s3, root + "/.trash") == []
    assert objects.stat(s3, "s3://%s/wh/ns/t_v2/data/x.parquet" % bucket)[0] == 1  # the sibling is untouched


def test_a_directory_whose_objects_are_all_deleted_on_a_versioned_bucket_is_not_listed(aws_env):
    """A trash batch emptied by a restore on a versioned bucket leaves only delete markers: it is no directory."""
    from lakehouse_ops.aws.clients import client

    s3 = client("s3")
    bucket = "objects-%s" % uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in ("t/.trash/b1/data/a.parquet", "t/.trash/b2/data/b.parquet"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.delete_object(Bucket=bucket, Key="t/.trash/b1/data/a.parquet")
    assert objects.list_directories(s3, "s3://%s/t/.trash" % bucket) == ["b2"]
    assert objects.delete_tree(s3, "s3://%s/t/.trash/b2" % bucket)
    assert objects.list_directories(s3, "s3://%s/t/.trash" % bucket) == []


def test_a_large_move_is_copied_in_parts_and_never_over_an_object_written_meanwhile(aws_env, monkeypatch):
    """Objects over CopyObject's limit are copied in parts (the limit lowered here so a test object crosses it),
    completed only if the target is still absent: a target written meanwhile keeps its bytes, and the parts are
    aborted (nothing left to pay for)."""
    import hashlib
    import os

    from lakehouse_ops.aws.clients import client

    monkeypatch.setattr(objects, "MAX_COPY_BYTES", 1024)
    monkeypatch.setattr(objects, "PART_BYTES", 5 * 1024 * 1024)
    s3 = client("s3")
    bucket = "objects-%s" % uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(12 * 1024 * 1024)  # three parts
    s3.put_object(Bucket=bucket, Key="t/data/big.parquet", Body=body)
    root = "s3://%s/t" % bucket
    assert objects.move(s3, root + "/data/big.parquet", root + "/.trash/b1/data/big.parquet")
    moved = s3.get_object(Bucket=bucket, Key="t/.trash/b1/data/big.parquet")["Body"].read()
    assert hashlib.sha256(moved).digest() == hashlib.sha256(body).digest()
    assert objects.stat(s3, root + "/data/big.parquet") is None

    # A writer puts the target after the move's check: S3's condition on the completion refuses the copy.
    s3.put_object(Bucket=bucket, Key="t/data/big.parquet", Body=b"WRITER")
    head = s3.head_object(Bucket=bucket, Key="t/.trash/b1/data/big.parquet")
    source, target = (bucket, "t/.trash/b1/data/big.parquet"), (bucket, "t/data/big.parquet")
    assert objects._copy(s3, source, head["ETag"], len(body), target) is False
    assert s3.get_object(Bucket=bucket, Key="t/data/big.parquet")["Body"].read() == b"WRITER"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_source_deleted_by_someone_else_during_the_trash_move_is_counted_apart(aws_env):
    """Orphan removal moves its checked orphans into the trash; one of them is deleted by another cleaner
    meanwhile. It is neither moved nor left behind: counted apart (`gone_meanwhile`), and the run verifies."""
    import uuid

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.maintenance.trash import move_to_trash

    s3 = client("s3")
    bucket = "gone-%s" % uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    location = "s3://%s/wh/db/t" % bucket
    sizes = {}
    for name in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key="wh/db/t/data/%s.parquet" % name, Body=b"PAR1 orphan")
        sizes["%s/data/%s.parquet" % (location, name)] = len(b"PAR1 orphan")
    s3.delete_object(Bucket=bucket, Key="wh/db/t/data/b.parquet")  # the other cleaner, after the check
    out = move_to_trash(None, sizes, location, ".lakehouse-trash", 1765000000000)
    assert out["trashed_files"] == 2 and out["gone_meanwhile"]["files"] == 1, out
    assert out["verified"] is True and "left_behind" not in out
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert not {k for k in keys if k.startswith("wh/db/t/data/")}
    assert len([k for k in keys if "/.lakehouse-trash/" in k]) == 2
