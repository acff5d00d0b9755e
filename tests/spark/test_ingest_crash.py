"""kill -9 of the ingest process at every dangerous moment and at random ones, then a clean run:
every record exactly once, nothing left on the queue."""

import os
import random
import signal
import textwrap
import time

import pytest

from conftest import CATALOG
from ingest_helpers import BUCKET, Landing, create_target, kill_group, records, s3_notification, start_worker

pytestmark = [pytest.mark.spark, pytest.mark.slow]
VISIBILITY = 6


def _config_file(tmp_path, warehouse, landing, table, extra=()):
    """The workers' config; `extra`: more lines of the ingest section."""
    path = tmp_path / "ingest.yaml"
    text = textwrap.dedent(
        """
        catalog: {name: %s, type: hadoop, warehouse: "%s"}
        spark: {mode: local, master: "local[2]", conf: {spark.sql.shuffle.partitions: "4"}}
        ingest:
          queue_url: "%s"
          dlq_url: "%s"
          target_table: %s
          quarantine_table: %s_quarantine
          uri_map: {"s3://%s/": "%s"}
          visibility_timeout_seconds: %d
          claim_seconds: %d
          heartbeat_seconds: 2
          batch: {max_objects: 4, wait_time_seconds: 0, max_wait_seconds: 1, receive_concurrency: 1}
        """
        % (
            CATALOG,
            warehouse,
            landing.queue_url,
            landing.dlq_url,
            table,
            table,
            BUCKET,
            landing.root,
            VISIBILITY,
            VISIBILITY,
        )
    )
    path.write_text(text + "".join("  %s\n" % line for line in extra))
    return str(path)


def _landing(tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    sqs = client("sqs")
    landing = Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))
    sqs.set_queue_attributes(QueueUrl=landing.queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY)})
    return landing


def _kill_at(config, faults, random_kills):
    """A worker killed at each protocol point of `faults`, then `random_kills` at random moments."""
    for fault in faults:
        proc = start_worker(config, fault)
        proc.wait(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (fault, proc.stderr.read()[-2000:])
        kill_group(proc)
    seed = int(os.environ.get("LAKEHOUSE_OPS_TEST_SEED", random.randrange(1 << 30)))
    print("seed", seed)  # shown on failure; set LAKEHOUSE_OPS_TEST_SEED to replay the kill times
    rng = random.Random(seed)
    for _ in range(random_kills):
        proc = start_worker(config)
        time.sleep(rng.uniform(6, 16))
        kill_group(proc)


def _drain(config, landing):
    """Clean runs until the queue is empty, as messages of killed batches become visible again."""
    for _ in range(6):
        time.sleep(VISIBILITY + 1)
        proc = start_worker(config)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        if landing.depth() == 0:
            break
    assert landing.depth() == 0
    assert landing.dlq_messages() == []


def test_kill_9_then_rerun_yields_every_record_exactly_once(warehouse, aws_env, tmp_path, table_name, spark):
    landing = _landing(tmp_path, table_name)
    ref = create_target(spark, table_name)
    for i in range(30):
        size = landing.put("crash/file %02d.json" % i, records(i * 10, 10), send=False)
        body = s3_notification("crash/file %02d.json" % i, size, etag="etag-%d" % i)
        landing.send(body)
        if i % 6 == 0:
            landing.send(body)  # at-least-once delivery
    config = _config_file(tmp_path, warehouse, landing, table_name)
    _kill_at(config, ("after_receive", "after_pending", "after_commit", "before_delete"), random_kills=2)
    _drain(config, landing)
    spark.sql("REFRESH TABLE %s" % ref)
    ids = [r.rec_id for r in spark.table(ref).select("rec_id").collect()]
    assert len(ids) == 300 and sorted(ids) == list(range(300))


def test_kill_9_while_upserting_and_evolving_the_schema_leaves_the_latest_record_per_key(
    warehouse, aws_env, tmp_path, table_name, spark
):
    """upsert by key with add_new_columns: killed right after a batch added its new column, after a merge (not yet
    recorded), before the message deletes and at random; every object announced twice, files in shuffled order so
    older records arrive after newer ones. The table ends with one row per key, the latest record's, with the new
    column filled exactly where that record had the field."""
    landing = _landing(tmp_path, table_name)
    ref = create_target(spark, table_name)
    order = list(range(12))
    random.Random(7).shuffle(order)
    for i in order:
        rows = records(i * 10, 10)
        if i % 3 == 1:  # every third file brings a field the target lacks
            rows = [dict(r, region="r%d" % r["rec_id"]) for r in rows]
        size = landing.put("upsert/file %02d.json" % i, rows, send=False)
        body = s3_notification("upsert/file %02d.json" % i, size, etag="etag-%d" % i)
        landing.send(body)
        landing.send(body)
    extra = ["upsert: {keys: [customer_id], order_by: event_time}", "schema_evolution: add_new_columns"]
    config = _config_file(tmp_path, warehouse, landing, table_name, extra)
    _kill_at(config, ("after_evolve", "after_commit", "before_delete"), random_kills=1)
    _drain(config, landing)
    spark.sql("REFRESH TABLE %s" % ref)
    got = {
        r.customer_id: (r.rec_id, r.region)
        for r in spark.table(ref).select("customer_id", "rec_id", "region").collect()
    }
    assert spark.table(ref).count() == 50
    latest = {"c%03d" % c: max(i for i in range(120) if i % 50 == c) for c in range(50)}
    assert got == {c: (i, "r%d" % i if (i // 10) % 3 == 1 else None) for c, i in latest.items()}
