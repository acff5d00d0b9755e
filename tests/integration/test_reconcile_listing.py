"""What `ingest reconcile` lists: S3 (moto's server) with the identity a notification gives, S3 Inventory
reports (CSV and Parquet), the window and the budget."""

import gzip
import io
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest.inventory import read_inventory
from lakehouse_ops.ingest.messages import parse_body
from lakehouse_ops.ingest.reconcile import Listed, in_window, list_s3, listing, within_budget
from lakehouse_ops.units import parse_moment


def test_s3_listing_gives_the_identity_a_notification_carries(aws_env):
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.ingest import events

    s3 = client("s3")
    plain, versioned = "rec-plain-%s" % uuid.uuid4().hex[:8], "rec-versioned-%s" % uuid.uuid4().hex[:8]
    for bucket in (plain, versioned):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    try:
        etag = s3.put_object(Bucket=plain, Key="in/a b.json", Body=b"{}\n")["ETag"]
        version = s3.put_object(Bucket=versioned, Key="in/v.json", Body=b"{}\n")["VersionId"]
        s3.put_object(Bucket=plain, Key="elsewhere/c.json", Body=b"{}\n")
        listed = list(list_s3("s3://%s/in/" % plain, s3))
        assert [(o.key, o.size, o.etag) for o in listed] == [("in/a b.json", 3, etag.strip('"'))]
        # A notification of the same object names it the same way.
        body = events.s3_notification(plain, "in/a b.json", 3, etag=etag.strip('"'))
        assert parse_body(body).created[0].identity == listed[0].as_object().identity
        # On a versioned bucket the notification also carries the version id; the identity is the bytes' (the
        # ETag) all the same, so a listing (no version ids) and the notification meet in the ledger and claims.
        head = s3.head_object(Bucket=versioned, Key="in/v.json")
        in_versioned = list(list_s3("s3://%s/in/" % versioned, s3))
        announced = events.s3_notification(versioned, "in/v.json", 3, etag=head["ETag"].strip('"'))
        announced = json.loads(announced)
        announced["Records"][0]["s3"]["object"]["versionId"] = version
        created = parse_body(json.dumps(announced)).created[0]
        assert created.version_id == version
        assert (
            created.identity
            == in_versioned[0].as_object().identity
            == "%s/in/v.json#%s" % (versioned, head["ETag"].strip('"'))
        )
    finally:
        for bucket in (plain, versioned):
            for v in s3.list_object_versions(Bucket=bucket).get("Versions", []):
                s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            s3.delete_bucket(Bucket=bucket)


def _manifest(
    tmp_path, fmt, files, schema="Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"
):
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "sourceBucket": "land",
                "destinationBucket": "arn:aws:s3:::inv",
                "fileFormat": fmt,
                "fileSchema": schema,
                "creationTimestamp": "1795478400000",
                "files": [{"key": f} for f in files],
            }
        )
    )
    return str(tmp_path / "manifest.json")


def test_inventory_reports_in_csv_and_parquet(tmp_path):
    uri_map = {"s3://inv/": str(tmp_path)}
    lines = [
        '"land","in/a+b.json","","true","false","10","2026-11-20T10:00:00.000Z","""e1"""',
        '"land","in/old.json","v1","false","false","10","2026-11-19T10:00:00.000Z","e2"',
        '"land","in/gone.json","v2","true","true","0","2026-11-19T10:00:00.000Z","e3"',
        '"land","in/c%3Dd.json","v3","true","false","7","2026-11-21T10:00:00.000Z","e4"',
    ]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part.csv.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (tmp_path / "data" / "empty.csv.gz").write_bytes(gzip.compress(b""))  # a file of no row is no error
    rows = list(read_inventory(_manifest(tmp_path, "CSV", ["data/part.csv.gz", "data/empty.csv.gz"]), uri_map, None))
    assert [(r["key"], r["version"], r["etag"], r["size"]) for r in rows] == [
        ("in/a b.json", None, "e1", 10),
        ("in/c=d.json", "v3", "e4", 7),
    ]
    table = pa.table(
        {
            "bucket": ["land"],
            "key": ["in/p q.json"],
            "size": [5],
            "last_modified_date": ["2026-11-21T00:00:00Z"],
            "e_tag": ["e5"],
            "is_latest": [True],
            "is_delete_marker": [False],
            "version_id": [None],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    (tmp_path / "data" / "part.parquet").write_bytes(sink.getvalue())
    manifest = _manifest(tmp_path, "Parquet", ["data/part.parquet"], schema="message s3.inventory {...}")
    listed = list(listing("s3://land/in/", uri_map, manifest, None))
    assert [(o.key, o.etag, o.size) for o in listed] == [("in/p q.json", "e5", 5)]
    with pytest.raises(IngestError, match="cannot read the S3 Inventory manifest"):
        list(read_inventory(str(tmp_path / "missing.json"), uri_map, None))


def test_window_and_budget():
    objs = [
        Listed("b", "k%d" % i, size, "e", float(ms))
        for i, (size, ms) in enumerate([(5, 30), (5, 10), (50, 20), (1, 99)])
    ]
    inside = in_window(objs, 10, 99)
    assert [o.key for o in inside] == ["k1", "k2", "k0"]  # oldest first; 99 is past the window's end
    assert [o.key for o in within_budget(inside, 10, 20)] == ["k1"]
    assert [o.key for o in within_budget(inside, 2, 1000)] == ["k1", "k2"]
    assert [o.key for o in within_budget([objs[2]], 10, 1)] == ["k2"]  # one object always fits
    assert parse_moment("36h", 1_000_000.0) == 1_000_000.0 - 36 * 3600
    assert parse_moment("2026-11-24T00:00:00Z", 0) == parse_moment("2026-11-24T00:00:00", 0) == 1795478400.0
    with pytest.raises(ValueError, match="neither"):
        parse_moment("last week", 0)


def test_inventory_manifests_as_s3_lays_them_out_and_what_is_refused(tmp_path):
    """A report copied to local disk as S3 lays it out (`<config>/<date>/manifest.json` beside `<config>/data/`),
    an ORC report, and manifests that cannot be used, each named."""
    import pyarrow.orc as orc

    from lakehouse_ops.aws.inventory import InventoryError, current_objects, load_manifest

    day = tmp_path / "land" / "daily" / "2026-12-06T01-00Z"
    (tmp_path / "land" / "daily" / "data").mkdir(parents=True)
    day.mkdir()
    table = pa.table({"bucket": ["land", "land"], "key": ["in/a+b.json", "in/gone.json"], "size": [3, 0]})
    table = table.append_column("is_latest", pa.array([True, True]))
    table = table.append_column("is_delete_marker", pa.array([False, True]))
    orc.write_table(table, str(tmp_path / "land" / "daily" / "data" / "part.orc"))
    manifest = {
        "destinationBucket": "arn:aws:s3:::inv",
        "fileFormat": "ORC",
        "creationTimestamp": "1796000000000",
        "files": [{"key": "land/daily/data/part.orc"}],
    }
    (day / "manifest.json").write_text(json.dumps(manifest))

    def read(path):
        with open(path, "rb") as handle:
            return handle.read()

    loaded = load_manifest(str(day / "manifest.json"), read)
    assert loaded.created_ms == 1796000000000 and not loaded.keys_encoded
    assert [(r["key"], r["size"]) for r in current_objects(loaded, read)] == [("in/a+b.json", 3)]  # ORC keys as is
    (day / "manifest.json").write_text(json.dumps(dict(manifest, creationTimestamp=None)))
    assert load_manifest(str(day / "manifest.json"), read).created_ms is None  # reconcile needs no age
    for broken, message in (
        (dict(manifest, creationTimestamp="yesterday"), "is not a time in milliseconds"),
        (dict(manifest, fileFormat="Avro"), "is not one of CSV, ORC, Parquet"),
        ({"files": []}, "is not an S3 Inventory manifest.json"),
        (dict(manifest, files=[{"key": "land/daily/data/missing.orc"}]), "is not on local disk"),
    ):
        (day / "manifest.json").write_text(json.dumps(broken))
        with pytest.raises(InventoryError, match=message):
            load_manifest(str(day / "manifest.json"), read)
