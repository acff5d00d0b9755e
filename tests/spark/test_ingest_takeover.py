"""Workers killed at every protocol point and at random moments, then three clean `--until-empty` workers at once:
the dead workers' objects are taken over within a claim's life (claims live only while their worker renews them),
and each clean worker returns only when the queue holds nothing it could still take, with no duplicate message
left behind."""

import json
import os
import random
import time

import pytest

from conftest import write_config
from ingest_helpers import BUCKET, Landing, create_target, kill_group, records, start_worker

pytestmark = [pytest.mark.spark, pytest.mark.slow]
# Messages stay hidden longer than a clean worker takes to start: those a killed worker left are still in flight when
# the clean workers first look, and must be waited for.
VISIBILITY, CLAIM_SECONDS, OBJECTS, ROWS = 60, 10, 24, 10


def test_dead_workers_objects_are_taken_over_and_until_empty_drains_the_queue(
    spark, warehouse, aws_env, tmp_path, table_name
):
    from lakehouse_ops.aws.clients import client

    seed = int(os.environ.get("LAKEHOUSE_OPS_TEST_SEED", random.randrange(1 << 30)))
    print("seed", seed)  # shown on failure; set LAKEHOUSE_OPS_TEST_SEED to replay the kill times
    rng = random.Random(seed)
    sqs = client("sqs")
    landing = Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))
    sqs.set_queue_attributes(QueueUrl=landing.queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY)})
    ref = create_target(spark, table_name)
    for i in range(OBJECTS):
        landing.put("takeover/f%02d.json" % i, records(i * ROWS, ROWS))
        landing.announce("takeover/f%02d.json" % i)  # every object announced twice
    config = write_config(
        tmp_path / "ingest.yaml",
        warehouse,
        master="local[1]",
        ingest={
            "queue_url": landing.queue_url,
            "dlq_url": landing.dlq_url,
            "target_table": table_name,
            "quarantine_table": table_name + "_quarantine",
            "uri_map": {"s3://%s/" % BUCKET: landing.root},
            "visibility_timeout_seconds": VISIBILITY,
            "heartbeat_seconds": 2,
            "claim_seconds": CLAIM_SECONDS,
            "batch": {"max_objects": 4, "wait_time_seconds": 0, "max_wait_seconds": 1, "receive_concurrency": 1},
        },
    )
    for stage in ("after_receive", "after_pending", "after_evolve", "after_seal", "after_commit", "before_delete"):
        proc = start_worker(config, stage)
        proc.wait(timeout=300)
        kill_group(proc)
    for _ in range(3):  # and at random moments while they work
        proc = start_worker(config)
        time.sleep(rng.uniform(8, 16))
        kill_group(proc)
    last = start_worker(config, "after_pending")  # one more, whose batch's messages are hidden for a minute
    last.wait(timeout=300)
    kill_group(last)

    started = time.time()  # right after the last kill: its batch's messages and claims are still held
    procs = [start_worker(config) for _ in range(3)]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    took = time.time() - started
    assert all(r["stopped"] == "queue empty" for r in reports), [r.get("left") for r in reports]
    assert landing.depth() == 0 and landing.dlq_messages() == []  # no duplicate left deferred behind a claim
    spark.sql("REFRESH TABLE %s" % ref)
    ids = sorted(r.rec_id for r in spark.table(ref).select("rec_id").collect())
    assert ids == list(range(OBJECTS * ROWS)), "seed %d: %d rows" % (seed, len(ids))
    # Taken over within a claim's life and a visibility timeout, not after a long claim expiry.
    assert took < 600, took


def test_until_empty_with_a_message_held_elsewhere_says_what_is_left_and_exits_non_zero(
    spark, warehouse, aws_env, tmp_path, table_name
):
    """A message another consumer holds (a worker on another cluster, or one that stopped): `--until-empty` lands
    what it can take, waits `until_empty_wait_seconds`, then stops with the message named as in flight and exit 1.
    Once the message is back, a run drains the queue and exits 0."""
    from click.testing import CliRunner

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.cli import cli

    sqs = client("sqs")
    landing = Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))
    ref = create_target(spark, table_name)
    landing.put("held/f0.json", records(0, ROWS))
    held = sqs.receive_message(QueueUrl=landing.queue_url, VisibilityTimeout=600)["Messages"][0]
    landing.put("held/f1.json", records(ROWS, ROWS))
    config = write_config(
        tmp_path / "ingest.yaml",
        warehouse,
        ingest={
            "queue_url": landing.queue_url,
            "dlq_url": landing.dlq_url,
            "target_table": table_name,
            "uri_map": {"s3://%s/" % BUCKET: landing.root},
            "until_empty_wait_seconds": 2,
            "batch": {"wait_time_seconds": 0, "max_wait_seconds": 1, "receive_concurrency": 1},
        },
    )
    result = CliRunner().invoke(cli, ["--config", config, "ingest", "--until-empty", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert not report["ok"] and report["stopped"] == "in flight", report
    assert report["left"]["in_flight"] == 1 and report["left"]["visible"] == 0
    spark.sql("REFRESH TABLE %s" % ref)
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == list(range(ROWS, 2 * ROWS))

    sqs.change_message_visibility(QueueUrl=landing.queue_url, ReceiptHandle=held["ReceiptHandle"], VisibilityTimeout=0)
    result = CliRunner().invoke(cli, ["--config", config, "ingest", "--until-empty", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stopped"] == "queue empty"
    spark.sql("REFRESH TABLE %s" % ref)
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == list(range(2 * ROWS))
