"""One queue, several targets: objects routed by prefix and pattern, each target with its own format, schema and
ledger, one commit per target per batch; a message announcing objects of two targets is settled once both
have them."""

import json
import os

import pytest

from lakehouse_ops.config.ingest import IngestRoute
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.routing import RoutedIngest, ingest_worker, split
from lakehouse_ops.ingest.status import ingest_status

from conftest import CATALOG
from ingest_helpers import BUCKET, Landing, create_target, ingest_config, records

pytestmark = pytest.mark.spark


def test_split_takes_the_first_matching_route_and_leaves_the_rest_to_the_default():
    routes = [
        (IngestRoute(prefix="s3://b/orders/", target_table="db.orders"), None),
        (IngestRoute(pattern="s3://b/*.csv", target_table="db.csv"), None),
        (None, None),
    ]
    objects = {k: S3Object("b", k) for k in ("orders/1.csv", "x/2.csv", "x/3.json")}
    assert [sorted(part) for part in split(objects, routes)] == [["orders/1.csv"], ["x/2.csv"], ["x/3.json"]]


def test_one_queue_feeds_three_targets_each_exactly_once(spark, warehouse, aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    sqs = client("sqs")
    landing = Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))
    events = create_target(spark, table_name)
    orders = create_target(spark, table_name + "_orders")
    spark.sql("CREATE TABLE %s.%s_csv (customer_id STRING, amount BIGINT) USING iceberg" % (CATALOG, table_name))
    routes = [
        {
            "prefix": "s3://%s/orders/" % BUCKET,
            "target_table": table_name + "_orders",
            "upsert": {"keys": ["customer_id"], "order_by": "event_time"},
        },
        {
            "pattern": "s3://%s/*.csv" % BUCKET,
            "target_table": table_name + "_csv",
            "format": "csv",
            "read_options": {"header": "true"},
        },
    ]
    config = ingest_config(warehouse, landing, table_name, routes=routes)
    landing.put("events/e1.json", records(0, 4))
    landing.put("orders/o1.json", records(0, 60), send=False)
    path = os.path.join(landing.root, "sales/s1.csv")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write("customer_id,amount\nc1,10\nc2,20\n")
    # One message announcing an order file and an events file (two targets), plus the CSV file on its own.
    landing.put("events/e2.json", records(4, 2), send=False)
    both = json.loads(landing.notification("orders/o1.json"))
    both["Records"] += json.loads(landing.notification("events/e2.json"))["Records"]
    landing.send(json.dumps(both))
    landing.send(json.dumps(both))  # delivered twice
    landing.announce("sales/s1.csv")

    worker = ingest_worker(config, spark=spark)
    assert isinstance(worker, RoutedIngest)
    report = worker.run(until_empty=True)
    assert report["ok"] and report["totals"]["rows"] == 6 + 50 + 2, report
    assert sorted(r.rec_id for r in spark.table(events).collect()) == list(range(6))
    assert spark.table(orders).count() == 50  # upserted: one row per customer
    assert sorted((r.customer_id, r.amount) for r in spark.table("%s.%s_csv" % (CATALOG, table_name)).collect()) == [
        ("c1", 10),
        ("c2", 20),
    ]
    targets = {t for b in report["batches"] for t in b.get("targets", {})}
    assert targets == {table_name, table_name + "_orders", table_name + "_csv"}
    # Each target has its own ledger.
    for name in (table_name, table_name + "_orders", table_name + "_csv"):
        assert spark.table("%s.%s_ingest_ledger" % (CATALOG, name)).filter("status = 'committed'").count() >= 1
    assert landing.depth() == 0 and landing.dlq_messages() == []
    status = ingest_status(config)
    assert status["committed_objects"] == 2  # events/e1.json and events/e2.json
    assert {t: r["committed_objects"] for t, r in status["routes"].items()} == {
        table_name + "_orders": 1,
        table_name + "_csv": 1,
    }

    # The same announcements again: every target finds its objects committed.
    landing.send(json.dumps(both))
    again = ingest_worker(config, spark=spark).run(until_empty=True)
    assert again["totals"]["rows"] == 0 and again["totals"]["already_committed"] == 2
    assert spark.table(events).count() == 6 and spark.table(orders).count() == 50
