"""Upserts by key on the real engine: the latest record per key wins, whatever the order and repetition of
deliveries."""

import pytest

from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest.job import IngestJob

from ingest_helpers import Landing, create_target, ingest_config, records

pytestmark = pytest.mark.spark
UPSERT = {"keys": ["customer_id"], "order_by": "event_time"}


@pytest.fixture
def landing(aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    return Landing(client("sqs"), tmp_path / "landing", table_name.replace(".", "-"))


def run(spark, config):
    return IngestJob(config, spark=spark).run(until_empty=True)


def latest(spark, ref):
    return {r.customer_id: r.rec_id for r in spark.table(ref).collect()}


def test_the_latest_record_per_key_wins_and_replays_change_nothing(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, upsert=UPSERT)
    landing.put("u/first.json", records(0, 120))  # customers c000..c049, several records each
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 50
    assert latest(spark, ref) == {"c%03d" % c: max(i for i in range(120) if i % 50 == c) for c in range(50)}
    snapshots = spark.sql("SELECT count(*) FROM %s.snapshots" % ref).collect()[0][0]

    # The same records again under another name (a re-upload): nothing changes, not even the ingest columns.
    before = {r.customer_id: (r.rec_id, r._ingest_batch) for r in spark.table(ref).collect()}
    landing.put("u/again.json", records(0, 120))
    assert run(spark, config)["ok"]
    assert {r.customer_id: (r.rec_id, r._ingest_batch) for r in spark.table(ref).collect()} == before
    assert spark.sql("SELECT count(*) FROM %s.snapshots" % ref).collect()[0][0] == snapshots + 1

    # A late, older record is ignored; a newer one replaces; a new key is inserted; a null key is one key.
    old = dict(records(5, 1)[0], rec_id=9005)
    newer = dict(records(200, 1)[0], customer_id="c007", rec_id=9200)
    new_key = dict(records(201, 1)[0], customer_id="c999", rec_id=9201)
    no_key = dict(records(202, 1)[0], customer_id=None, rec_id=9202)
    landing.put("u/late.json", [old, newer, new_key, no_key])
    landing.put("u/late-again.json", [no_key])
    assert run(spark, config)["ok"]
    rows = latest(spark, ref)
    assert rows["c005"] == 105 and rows["c007"] == 9200 and rows["c999"] == 9201 and rows[None] == 9202
    assert spark.table(ref).count() == 52
    assert spark.table(ref).groupBy("customer_id").count().filter("count > 1").count() == 0


def test_upsert_columns_must_exist(spark, warehouse, landing, table_name):
    create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, upsert={"keys": ["nope"], "order_by": "event_time"})
    with pytest.raises(IngestError, match="nope.*not columns of"):
        run(spark, config)
