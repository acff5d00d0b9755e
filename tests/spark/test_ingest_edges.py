"""Ingest at the edges producers reach: keys overwritten before they are read, headers in another order, case
variants, protected values of the wrong type, malformed records without a quarantine table."""

import json
import os

import pytest

from lakehouse_ops.ingest.job import IngestJob

from ingest_helpers import Landing, create_target, ingest_config, records

pytestmark = pytest.mark.spark


@pytest.fixture
def landing(aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    return Landing(client("sqs"), tmp_path / "landing", table_name.replace(".", "-"))


def run(spark, config, **kw):
    kw.setdefault("until_empty", True)
    return IngestJob(config, spark=spark).run(**kw)


def ledger_states(spark, table_name):
    rows = spark.table("lake.%s_ingest_ledger" % table_name).collect()
    return sorted((r.object_id.rsplit("#", 1)[1], r.status) for r in rows)


@pytest.mark.parametrize("max_objects", [1000, 1], ids=["one batch", "a batch each"])
def test_a_key_overwritten_before_it_is_read_lands_only_the_bytes_it_holds(
    spark, warehouse, landing, table_name, max_objects
):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, batch={"max_objects": max_objects, "max_wait_seconds": 2})
    landing.put("k/file.json", records(0, 5))
    first = json.loads(landing.notification("k/file.json"))["Records"][0]["s3"]["object"]["eTag"]
    landing.put("k/file.json", records(100, 3))  # written again before any worker read the first
    second = json.loads(landing.notification("k/file.json"))["Records"][0]["s3"]["object"]["eTag"]

    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 3 and report["totals"]["superseded"] == 1, report
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [100, 101, 102]
    named = {k: v for b in report["batches"] for k, v in b.get("superseded_objects", {}).items()}
    assert list(named) == ["landing-bucket/k/file.json#" + first] and "holds other bytes now" in named[list(named)[0]]
    states = ledger_states(spark, table_name)
    assert (first, "superseded") in states and (second, "committed") in states
    assert (first, "committed") not in states
    from lakehouse_ops.ingest.status import ingest_status

    status = ingest_status(config)
    assert status["superseded_count"] == 1 and status["superseded_objects"] == list(named)

    # The first announcement delivered again later: still superseded, never read as the second bytes.
    landing.send(landing.notification("k/file.json").replace(second, first))
    again = run(spark, config)
    assert again["totals"]["rows"] == 0 and again["totals"]["superseded"] == 1
    assert spark.table(ref).count() == 3 and landing.depth() == 0 and landing.dlq_messages() == []


def test_a_versioned_bucket_is_read_at_each_announced_version(spark, warehouse, landing, table_name):
    """On S3 (moto's server, read through S3A): a key written twice before it is read gives each version's own
    rows once, the older one read from a copy of its version."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.ingest import events

    s3 = client("s3")
    bucket = "versioned-" + table_name.replace(".", "-").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)
    for rows in (records(0, 5), records(100, 3)):
        body = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
        put = s3.put_object(Bucket=bucket, Key="v/file.json", Body=body)
        notification = json.loads(events.s3_notification(bucket, "v/file.json", len(body), put["ETag"].strip('"')))
        notification["Records"][0]["s3"]["object"]["versionId"] = put["VersionId"]
        landing.send(json.dumps(notification))
    landing.send(json.dumps(notification))  # the second announced twice

    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 8 and report["totals"]["superseded"] == 0, report
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 2, 3, 4, 100, 101, 102]
    sources = {r._source_object for r in spark.table(ref).collect()}
    assert sources == {"s3://%s/v/file.json" % bucket}
    assert len([s for s in ledger_states(spark, table_name) if s[1] == "committed"]) == 2
    assert landing.depth() == 0 and landing.dlq_messages() == []
    copies = os.path.join(str(warehouse), "_lakehouse_ops", "ingest-claims", table_name, "versions")
    assert [f for _, _, files in os.walk(copies) for f in files] == []  # the copy of the version is gone


def test_reconcile_from_an_inventory_and_a_versioned_notification_commit_an_object_once(
    spark, warehouse, landing, table_name, tmp_path
):
    """An S3 Inventory "current versions" report names no version id; the object's notification does. Both name
    the same bytes, so the object reconciled first is found committed when its notification arrives."""
    import gzip
    import time

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.ingest import events
    from lakehouse_ops.ingest.reconcile import reconcile

    s3 = client("s3")
    bucket = "inv-src-" + table_name.replace(".", "-").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ref = create_target(spark, table_name)
    body = ("\n".join(json.dumps(r) for r in records(0, 4)) + "\n").encode()
    put = s3.put_object(Bucket=bucket, Key="in/a.json", Body=body)
    etag = put["ETag"].strip('"')
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    (tmp_path / "inv" / "data").mkdir(parents=True)
    line = '"%s","in/a.json","%d","%s","%s"\n' % (bucket, len(body), now, etag)
    (tmp_path / "inv" / "data" / "part.csv.gz").write_bytes(gzip.compress(line.encode()))
    manifest = {
        "sourceBucket": bucket,
        "destinationBucket": "arn:aws:s3:::inventory-bucket",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [{"key": "data/part.csv.gz"}],
    }
    (tmp_path / "inv" / "manifest.json").write_text(json.dumps(manifest))
    uri_map = {"s3://landing-bucket/": landing.root, "s3://inventory-bucket/": str(tmp_path / "inv")}
    config = ingest_config(warehouse, landing, table_name, uri_map=uri_map)
    job = IngestJob(config, spark=spark)
    window = (time.time() * 1000 - 3600 * 1000, time.time() * 1000 + 1000)
    done = reconcile(
        job, "s3://%s/in/" % bucket, *window, 100, 1 << 30, inventory="s3://inventory-bucket/manifest.json"
    )
    assert done["ok"] and done["rows"] == 4, done

    notification = json.loads(events.s3_notification(bucket, "in/a.json", len(body), etag))
    notification["Records"][0]["s3"]["object"]["versionId"] = put["VersionId"]
    landing.send(json.dumps(notification))
    report = run(spark, config)
    assert report["totals"]["rows"] == 0 and report["totals"]["already_committed"] == 1, report
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 2, 3]
