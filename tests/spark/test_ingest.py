"""SQS ingest over moto's server (real HTTP) into the real local Iceberg engine."""

import gzip
import json
import os

import pytest

from lakehouse_ops.ingest.job import IngestJob

from ingest_helpers import BUCKET, Landing, create_target, ingest_config, md5_of, records, s3_notification

pytestmark = pytest.mark.spark
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "s3-events")


@pytest.fixture
def sqs(aws_env):
    from lakehouse_ops.aws.clients import client

    return client("sqs")


@pytest.fixture
def landing(sqs, tmp_path, table_name):
    return Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))


def run(spark, config, **kw):
    kw.setdefault("until_empty", True)
    return IngestJob(config, spark=spark).run(**kw)


def rows_of(spark, ref):
    return {r.rec_id: r for r in spark.table(ref).collect()}


def fixture_body(name, **replace):
    text = open(os.path.join(FIXTURES, name)).read()
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def etag_of(landing, key):
    return md5_of(os.path.join(landing.root, key))


def test_every_message_shape_and_awkward_keys(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)
    # Keys with spaces, '+', '=', and non-ASCII characters, announced the way S3 encodes them.
    landing.put("cdn-logs/provider=edge-a/2024/05/13/requests 10-15+v2.json", records(0, 5))
    landing.put("cdn-logs/provider=edge-b/café (1).json.gz", records(5, 5), gz=True)
    # The reference multi-record message announces two objects; write both (its parquet key holds JSON here).
    multi = json.loads(fixture_body("s3-notification-multi.json"))
    multi["Records"][0]["s3"]["object"]["key"] = "cdn-logs/provider%3Dedge-b/2024/05/13/part-0001.json"
    multi["Records"][1]["s3"]["object"]["key"] = "cdn-logs/provider%3Dedge-b/2024/05/13/caf%C3%A9+%281%29.json"
    landing.put("cdn-logs/provider=edge-b/2024/05/13/part-0001.json", records(10, 3), send=False)
    landing.put("cdn-logs/provider=edge-b/2024/05/13/café (1).json", records(13, 3), send=False)
    # Each announces the bytes written (the first keeps its multipart ETag, which names no MD5).
    multi["Records"][1]["s3"]["object"]["eTag"] = etag_of(landing, "cdn-logs/provider=edge-b/2024/05/13/café (1).json")
    landing.send(json.dumps(multi))
    # SNS-wrapped and EventBridge shapes, pointing at files that exist.
    sns = json.loads(fixture_body("sns-wrapped-s3-notification.json"))
    inner = json.loads(sns["Message"])
    inner["Records"][0]["s3"]["object"]["key"] = "sns/a%2Bb+c.json"
    landing.put("sns/a+b c.json", records(16, 2), send=False)
    inner["Records"][0]["s3"]["object"]["eTag"] = etag_of(landing, "sns/a+b c.json")
    sns["Message"] = json.dumps(inner)
    landing.send(json.dumps(sns))
    eventbridge = json.loads(fixture_body("eventbridge-object-created.json"))
    eventbridge["detail"]["object"]["key"] = "eb/x=1/ä b.json"
    landing.put("eb/x=1/ä b.json", records(18, 2), send=False)
    eventbridge["detail"]["object"]["etag"] = etag_of(landing, "eb/x=1/ä b.json")
    landing.send(json.dumps(eventbridge))
    for ignored in ("s3-test-event.json", "s3-notification-removed.json", "eventbridge-object-deleted.json"):
        landing.send(fixture_body(ignored))

    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 20, report
    got = rows_of(spark, ref)
    assert sorted(got) == list(range(20))
    assert got[0]._source_object == "s3://%s/cdn-logs/provider=edge-a/2024/05/13/requests 10-15+v2.json" % BUCKET
    assert got[5]._source_object == "s3://%s/cdn-logs/provider=edge-b/café (1).json.gz" % BUCKET
    assert got[16]._source_object == "s3://%s/sns/a+b c.json" % BUCKET
    assert got[0]._ingested_at is not None and got[0]._ingest_batch.startswith("b-")
    assert landing.depth() == 0 and landing.dlq_messages() == []
    totals = report["totals"]
    # At-least-once: concurrent receives may hand out a message twice (moto does, as SQS may); it is read once.
    assert totals["messages"] >= 8 and totals["objects"] + totals["already_committed"] >= 6, totals


KEYS_S3_ALLOWS = [
    "odd/a:b.json",  # ':' (a local checksum file of it was unreadable once)
    "odd/time=2024-05-13T10:15:00Z/part:0.json",
    "odd/percent %41 100%.json",
    "odd/hash#and?query.json",
    "odd/brackets[1]{2}(3).json",
    "odd/star*and~tilde!.json",
    "odd/semi;comma,at@dollar$amp&.json",
    "odd/quote'back`caret^.json",
    "odd/unicode/日本語 ünï.json",
]


def test_every_key_s3_allows_is_ingested(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)
    for index, key in enumerate(KEYS_S3_ALLOWS):
        landing.put(key, records(index * 2, 2))
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 2 * len(KEYS_S3_ALLOWS), report
    got = rows_of(spark, ref)
    assert sorted(got) == list(range(2 * len(KEYS_S3_ALLOWS)))
    assert {got[i * 2]._source_object for i in range(len(KEYS_S3_ALLOWS))} == {
        "s3://%s/%s" % (BUCKET, key) for key in KEYS_S3_ALLOWS
    }
    assert landing.depth() == 0 and landing.dlq_messages() == []


@pytest.mark.fast
def test_duplicates_are_written_once(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)
    body = s3_notification("dup/file.json", etag="etag-1")
    landing.put("dup/file.json", records(0, 4), send=False)
    landing.send(body)
    landing.send(body)
    first = run(spark, config)
    assert first["totals"]["duplicates"] == 1
    landing.send(body)  # redelivered after the commit
    second = run(spark, config)
    assert second["totals"]["already_committed"] == 1 and second["totals"]["rows"] == 0
    assert spark.table(ref).count() == 4 and landing.depth() == 0


def test_poison_missing_unreadable_and_unparseable(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)
    landing.send("this is not an S3 event")
    landing.announce("missing/never-written.json")
    corrupt = os.path.join(landing.root, "bad/corrupt.json.gz")
    os.makedirs(os.path.dirname(corrupt))
    with open(corrupt, "wb") as handle:
        handle.write(gzip.compress(b'{"rec_id": 1}\n')[:-12] + b"garbage!")
    landing.announce("bad/corrupt.json.gz")
    landing.put("good/mixed.json", records(0, 3), extra_lines=['{"rec_id": "not a number"}', "{broken json"])

    report = run(spark, config)
    assert report["totals"]["rows"] == 3 and report["totals"]["quarantined"] == 2
    assert sorted(rows_of(spark, ref)) == [0, 1, 2]
    quarantine = spark.table("lake.%s_quarantine" % table_name).collect()
    assert sorted(q.raw for q in quarantine) == ['{"rec_id": "not a number"}', "{broken json"]
    assert all(q.source_object == "s3://%s/good/mixed.json" % BUCKET and q.reason for q in quarantine)
    reasons = sorted(m["MessageAttributes"]["lakehouse_ops_reason"]["StringValue"] for m in landing.dlq_messages())
    assert len(reasons) == 3
    assert any("does not exist" in r and "never-written.json" in r for r in reasons)
    assert any(r.startswith("poison: message body is not JSON") for r in reasons)
    assert any(r.startswith("unreadable:") for r in reasons)
    assert landing.depth() == 0


def test_csv_gzip_and_parquet(spark, warehouse, landing, table_name, tmp_path):
    ref = create_target(spark, table_name)
    csv_config = ingest_config(warehouse, landing, table_name, fmt="csv", read_options={"header": "true"})
    path = os.path.join(landing.root, "csv/part 1.csv.gz")
    os.makedirs(os.path.dirname(path))
    with gzip.open(path, "wt") as handle:
        handle.write(
            "event_time,customer_id,bytes_sent,rec_id\n2024-05-13 10:00:00,c1,10,1\n2024-05-13 11:00:00,c2,oops,2\n"
        )
    landing.announce("csv/part 1.csv.gz")
    report = run(spark, csv_config)
    assert report["totals"]["rows"] == 1 and report["totals"]["quarantined"] == 1

    parquet_dir = str(tmp_path / "pq")
    spark.createDataFrame(
        [(r["rec_id"], r["customer_id"], r["bytes_sent"]) for r in records(100, 4)],
        "rec_id BIGINT, customer_id STRING, bytes_sent BIGINT",
    ).selectExpr("TIMESTAMP '2024-05-13 09:00:00' AS event_time", "customer_id", "bytes_sent", "rec_id").coalesce(
        1
    ).write.parquet(parquet_dir)
    [name] = [n for n in os.listdir(parquet_dir) if n.endswith(".parquet")]
    os.makedirs(os.path.join(landing.root, "pq"))
    os.rename(os.path.join(parquet_dir, name), os.path.join(landing.root, "pq", "data.parquet"))
    landing.announce("pq/data.parquet")
    report = run(spark, ingest_config(warehouse, landing, table_name, fmt="parquet"))
    assert report["totals"]["rows"] == 4
    assert sorted(rows_of(spark, ref)) == [1, 100, 101, 102, 103]


def test_enrichment_and_policy_properties(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse,
        landing,
        table_name,
        enrichment="ingest_helpers.add_tag",
        defaults={"properties": {"object_storage": True}},
    )
    spark.sql("ALTER TABLE %s ADD COLUMN tag STRING" % ref)
    landing.put("enrich/a.json", records(0, 2))
    run(spark, config)
    assert {r.tag for r in spark.table(ref).collect()} == {"enriched"}
    props = {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES %s" % ref).collect()}
    assert props["write.object-storage.enabled"] == "true"


def test_max_batches_and_batch_budget(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse,
        landing,
        table_name,
        batch={"max_objects": 2, "wait_time_seconds": 0, "receive_concurrency": 1, "max_wait_seconds": 5},
    )
    for i in range(15):
        landing.put("budget/%d.json" % i, records(i * 10, 2))
    report = run(spark, config, until_empty=False, max_batches=1)
    assert report["stopped"] == "max_batches" and len(report["batches"]) == 1
    # The budget closes the batch after the receive round that reached it (one call: at most 10 messages).
    first = report["batches"][0]["objects"]
    assert 2 <= first <= 10
    assert spark.table(ref).count() == first * 2
    rest = run(spark, config)
    assert spark.table(ref).count() == 30 and landing.depth() == 0
    assert rest["totals"]["objects"] == 15 - first


def test_slow_batch_stays_hidden_from_other_workers(spark, warehouse, sqs, tmp_path, table_name):
    """Visibility timeout 5 s, a batch that takes 8 s: the heartbeat keeps its messages away from a second
    worker polling all along, and they are deleted once committed."""
    import threading
    import time

    landing = Landing(sqs, tmp_path / "slow-landing", table_name.replace(".", "-") + "-slow")
    sqs.set_queue_attributes(QueueUrl=landing.queue_url, Attributes={"VisibilityTimeout": "5"})
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse,
        landing,
        table_name,
        enrichment="ingest_helpers.slow_enrich",
        visibility_timeout_seconds=5,
        heartbeat_seconds=1,
    )
    for i in range(3):
        landing.put("slow/%d.json" % i, records(i * 10, 3))
    result = {}
    worker = threading.Thread(target=lambda: result.update(report=run(spark, config)))
    worker.start()
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until the job holds the batch
        attrs = sqs.get_queue_attributes(
            QueueUrl=landing.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        if attrs["ApproximateNumberOfMessagesNotVisible"] == "3":
            break
        time.sleep(0.2)
    stolen = []
    while worker.is_alive():
        stolen += sqs.receive_message(QueueUrl=landing.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
    worker.join()
    assert stolen == []
    assert result["report"]["totals"]["rows"] == 9 and spark.table(ref).count() == 9
    assert result["report"]["batches"][0]["batch_s"] > 5
    assert landing.depth() == 0


def test_continuous_mode_backs_off_on_an_empty_queue_until_max_runtime(spark, warehouse, landing, table_name):
    create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, empty_backoff_seconds=0.5, max_empty_backoff_seconds=1)
    report = run(spark, config, until_empty=False, max_runtime_s=3)
    assert report["stopped"] == "max_runtime" and report["batches"] == []
    assert report["totals"]["duration_s"] >= 3
    landing.put("late/a.json", records(0, 2))
    report = run(spark, config, until_empty=False, max_runtime_s=4)
    assert report["stopped"] == "max_runtime" and report["totals"]["rows"] == 2


def test_a_batch_committed_twice_is_a_failure_naming_both_snapshots(spark, table_name):
    from lakehouse_ops.errors import IngestError
    from lakehouse_ops.ingest.ledger import BATCH_PROPERTY, batch_snapshot

    from conftest import CATALOG

    ref = create_target(spark, table_name)
    rows = spark.createDataFrame(
        [r for r in records(0, 3)], "event_time STRING, customer_id STRING, bytes_sent BIGINT, rec_id BIGINT"
    ).selectExpr("CAST(event_time AS TIMESTAMP) AS event_time", "customer_id", "bytes_sent", "rec_id")
    rows.writeTo(ref).option("snapshot-property." + BATCH_PROPERTY, "b-once").append()
    assert batch_snapshot(spark, CATALOG, table_name, "b-once") is not None
    for _ in range(2):
        rows.writeTo(ref).option("snapshot-property." + BATCH_PROPERTY, "b-twice").append()
    with pytest.raises(IngestError, match="b-twice was committed 2 times"):
        batch_snapshot(spark, CATALOG, table_name, "b-twice")
