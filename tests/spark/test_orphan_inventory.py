"""Orphan removal from an S3 Inventory report as S3 delivers it (manifest.json; CSV.gz, Parquet or ORC; URL-encoded
keys in CSV; all-versions reports with older versions and delete markers), on a Glue + S3FileIO table over moto's
S3: only current objects under the table location are candidates, and a report older than the orphan age is
refused."""

import datetime
import gzip
import io
import json
import uuid
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from lakehouse_ops.runner import MaintenanceRunner
from lakehouse_ops.units import HOUR_MS, now_ms

pytestmark = pytest.mark.spark
OLD = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
SCHEMA = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"


def _rows(lake, prefix):
    """The report's rows for every version and delete marker under `prefix`, all dated long ago."""
    found = lake.s3.list_object_versions(Bucket=lake.bucket, Prefix=prefix)
    rows = [(v["Key"], v["VersionId"], v["IsLatest"], False, v["Size"]) for v in found.get("Versions", [])]
    rows += [(m["Key"], m["VersionId"], m["IsLatest"], True, 0) for m in found.get("DeleteMarkers", [])]
    return rows


def _deliver(lake, rows, fmt, created_ms):
    """An inventory report of `rows` delivered to its own bucket as S3 lays it out; its manifest.json's URI."""
    destination = "inv-" + lake.bucket
    if destination not in [b["Name"] for b in lake.s3.list_buckets()["Buckets"]]:
        lake.s3.create_bucket(Bucket=destination)
    base = "%s/daily" % lake.bucket
    data_key = "%s/data/%s.%s" % (base, uuid.uuid4().hex, {"CSV": "csv.gz", "Parquet": "parquet", "ORC": "orc"}[fmt])
    if fmt == "CSV":
        lines = [
            ",".join(
                '"%s"' % v
                for v in (lake.bucket, quote_plus(key), version, str(latest).lower(), str(marker).lower(), size)
            )
            + ',"%s","etag"' % OLD.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for key, version, latest, marker, size in rows
        ]
        body = gzip.compress(("\n".join(lines) + "\n").encode())
    else:
        table = pa.table(
            {
                "bucket": [lake.bucket] * len(rows),
                "key": [r[0] for r in rows],
                "version_id": [r[1] for r in rows],
                "is_latest": [r[2] for r in rows],
                "is_delete_marker": [r[3] for r in rows],
                "size": pa.array([r[4] for r in rows], pa.int64()),
                # ORC reports carry a plain timestamp (Spark reads no "timestamp with local time zone" from ORC)
                "last_modified_date": pa.array(
                    [OLD] * len(rows), pa.timestamp("ms", tz="UTC" if fmt == "Parquet" else None)
                ),
                "e_tag": ["etag"] * len(rows),
            }
        )
        sink = io.BytesIO()
        (pq.write_table if fmt == "Parquet" else orc.write_table)(table, sink)
        body = sink.getvalue()
    lake.s3.put_object(Bucket=destination, Key=data_key, Body=body)
    manifest = {
        "sourceBucket": lake.bucket,
        "destinationBucket": "arn:aws:s3:::" + destination,
        "version": "2016-11-30",
        "creationTimestamp": None if created_ms is None else str(created_ms),
        "fileFormat": fmt,
        "fileSchema": SCHEMA if fmt == "CSV" else "message s3.inventory { ... }",
        "files": [{"key": data_key, "size": len(body), "MD5checksum": "x"}],
    }
    key = "%s/%s/manifest.json" % (
        base,
        datetime.datetime.utcfromtimestamp((created_ms or 0) / 1000).strftime("%Y-%m-%dT%H-%MZ"),
    )
    lake.s3.put_object(Bucket=destination, Key=key, Body=json.dumps(manifest).encode())
    return "s3://%s/%s" % (destination, key)


def _config(lake, manifest):
    return lake.config(defaults={"orphans": {"older_than_hours": 72, "file_list": {"path": manifest}}})


def _orphans(spark, lake, config, clock, name="events"):
    report = MaintenanceRunner(config, spark=spark, only=["remove_orphan_files"], clock=clock).run(
        ["%s.%s" % (lake.namespace, name)]
    )
    return report["tables"][0]["actions"][0]


def test_orphans_are_found_from_an_s3_inventory_report_in_each_format(spark, glue_lake):
    lake = glue_lake
    ref = "%s.%s.events" % (lake.catalog, lake.namespace)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % ref)
    spark.sql("INSERT INTO %s SELECT id FROM range(0, 100)" % ref)
    location = spark.sql("DESCRIBE TABLE EXTENDED %s" % ref).filter("col_name = 'Location'").collect()[0].data_type
    prefix = location.split("/", 3)[3] + "/"
    # Planted beside the table's files: one orphan per report, a deleted object (an older version and a delete
    # marker in an all-versions report), and a sibling table's file (a location that starts like this one's).
    orphans = {fmt: prefix + "data/orphan %s+1.parquet" % fmt for fmt in ("CSV", "Parquet", "ORC")}
    for key in list(orphans.values()) + [prefix + "data/deleted.parquet", prefix.rstrip("/") + "_v2/data/x.parquet"]:
        lake.s3.put_object(Bucket=lake.bucket, Key=key, Body=b"PAR1 not referenced")
    lake.s3.delete_object(Bucket=lake.bucket, Key=prefix + "data/deleted.parquet")
    clock = now_ms  # the report's dates make the listed files old; S3's own dates stay today's
    rows = _rows(lake, prefix.rstrip("/"))  # the sibling's file too, as a bucket-wide report lists it
    kept = [r for r in rows if r[0] != prefix.rstrip("/") + "_v2/data/x.parquet"]
    assert len(rows) == len(kept) + 1 and any(r[3] for r in rows)  # the delete marker is in the report
    for fmt in ("CSV", "Parquet", "ORC"):
        # Each report lists the table's files and only its own orphan among the three (the others are not listed).
        others = {v for f, v in orphans.items() if f != fmt}
        listed = [r for r in rows if r[0] not in others]
        manifest = _deliver(lake, listed, fmt, clock() - 30 * HOUR_MS)  # delivered a day late: fine
        result = _orphans(spark, lake, _config(lake, manifest), clock)
        assert result["status"] == "done", result
        outputs = result["outputs"]
        assert outputs["candidates"] == 1 and outputs["deleted_files"] == 1, outputs
        assert outputs["candidate_sample"][0].endswith("orphan %s+1.parquet" % fmt)
        assert outputs["file_list_age_hours"] == pytest.approx(30, abs=0.2)
        current = {o["Key"] for o in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix=prefix).get("Contents", [])}
        assert orphans[fmt] not in current and others <= current
        rows = [r for r in rows if r[0] != orphans[fmt]]
        orphans.pop(fmt)
    assert spark.table(ref).count() == 100
    assert prefix.rstrip("/") + "_v2/data/x.parquet" in {
        o["Key"] for o in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix=prefix.rstrip("/")).get("Contents", [])
    }

    # A report older than the orphan age describes the location as it was: refused, nothing deleted.
    lake.s3.put_object(Bucket=lake.bucket, Key=prefix + "data/late.parquet", Body=b"PAR1 not referenced")
    stale = _deliver(lake, _rows(lake, prefix), "CSV", clock() - 80 * HOUR_MS)
    result = _orphans(spark, lake, _config(lake, stale), clock)
    assert result["status"] == "failed" and "older than the orphan age of 72 h" in result["reason"], result
    assert lake.s3.head_object(Bucket=lake.bucket, Key=prefix + "data/late.parquet")
    ahead = _deliver(lake, _rows(lake, prefix), "CSV", clock() + 5 * HOUR_MS)  # a clock somewhere is wrong
    result = _orphans(spark, lake, _config(lake, ahead), clock)
    assert result["status"] == "failed" and "in the future" in result["reason"], result
    ageless = _deliver(lake, _rows(lake, prefix), "CSV", None)
    result = _orphans(spark, lake, _config(lake, ageless), clock)
    assert result["status"] == "failed" and "no creationTimestamp" in result["reason"], result
    assert lake.s3.head_object(Bucket=lake.bucket, Key=prefix + "data/late.parquet")


@pytest.mark.parametrize("suffix", ["#copy", "?versionId=1"])
def test_a_stray_object_named_like_a_live_file_with_a_fragment_never_costs_the_live_file(
    spark, glue_lake, tmp_path, suffix
):
    """S3 keys may hold `#` and `?`; Iceberg's S3 FileIO reads them as the end of the key, so deleting
    `<live>.parquet#copy` would delete `<live>.parquet`. Such candidates are left alone and named."""
    lake = glue_lake
    name = "stray_" + ("fragment" if suffix.startswith("#") else "query")
    ref = "%s.%s.%s" % (lake.catalog, lake.namespace, name)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % ref)
    spark.sql("INSERT INTO %s SELECT id FROM range(0, 100)" % ref)
    live = spark.sql("SELECT file_path FROM %s.files" % ref).collect()[0].file_path
    stray = live.split("/", 3)[3] + suffix
    lake.s3.put_object(Bucket=lake.bucket, Key=stray, Body=b"PAR1 a stray copy")
    prefix = live.split("/", 3)[3].split("/data/")[0] + "/"
    keys = [o["Key"] for o in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix=prefix)["Contents"]]
    listing = str(tmp_path / "listing")
    rows = [("s3://%s/%s" % (lake.bucket, k), "2020-01-01 00:00:00") for k in keys]
    spark.createDataFrame(rows, "path string, modified string").write.parquet(listing)
    listed = {"path": listing, "format": "parquet", "file_path_column": "path", "last_modified_column": "modified"}
    config = lake.config(defaults={"orphans": {"older_than_hours": 72, "file_list": listed}})
    result = _orphans(spark, lake, config, now_ms, name)
    assert result["status"] == "done", result
    assert result["outputs"]["deleted_files"] == 0 and result["outputs"]["foreign_files_left"]["files"] == 1
    lake.s3.head_object(Bucket=lake.bucket, Key=live.split("/", 3)[3])  # still there
    lake.s3.head_object(Bucket=lake.bucket, Key=stray)
    spark.sql("REFRESH TABLE %s" % ref)
    assert spark.table(ref).count() == 100
