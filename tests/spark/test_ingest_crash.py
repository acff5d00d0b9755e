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


def _config_file(tmp_path, warehouse, landing, table):
    path = tmp_path / "ingest.yaml"
    path.write_text(
        textwrap.dedent(
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
    )
    return str(path)


def test_kill_9_then_rerun_yields_every_record_exactly_once(spark, warehouse, aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    sqs = client("sqs")
    landing = Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))
    sqs.set_queue_attributes(QueueUrl=landing.queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY)})
    ref = create_target(spark, table_name)
    for i in range(30):
        size = landing.put("crash/file %02d.json" % i, records(i * 10, 10), send=False)
        body = s3_notification("crash/file %02d.json" % i, size, etag="etag-%d" % i)
        landing.send(body)
        if i % 6 == 0:
            landing.send(body)  # at-least-once delivery
    config = _config_file(tmp_path, warehouse, landing, table_name)

    for fault in ("after_receive", "after_pending", "after_commit", "before_delete"):
        proc = start_worker(config, fault)
        proc.wait(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (fault, proc.stderr.read()[-2000:])
        kill_group(proc)
    seed = int(os.environ.get("LAKEHOUSE_OPS_TEST_SEED", random.randrange(1 << 30)))
    print("seed", seed)  # shown on failure; set LAKEHOUSE_OPS_TEST_SEED to replay the kill times
    rng = random.Random(seed)
    for _ in range(2):
        proc = start_worker(config)
        time.sleep(rng.uniform(6, 16))
        kill_group(proc)

    for _ in range(6):
        time.sleep(VISIBILITY + 1)  # messages of killed batches become visible again
        proc = start_worker(config)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        if landing.depth() == 0:
            break
    assert landing.depth() == 0
    spark.sql("REFRESH TABLE %s" % ref)
    ids = [r.rec_id for r in spark.table(ref).select("rec_id").collect()]
    assert len(ids) == 300 and sorted(ids) == list(range(300))
    assert landing.dlq_messages() == []
