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
