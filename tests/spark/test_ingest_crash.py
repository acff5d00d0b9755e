"""kill -9 of the ingest process at every dangerous moment and at random ones, then a clean run:
every record exactly once, nothing left on the queue."""
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import CATALOG
from ingest_helpers import BUCKET, Landing, create_target, records, s3_notification
from lakehouse_ops.ingest.job import FAULT_ENV

pytestmark = pytest.mark.spark
VISIBILITY = 6


def _config_file(tmp_path, warehouse, landing, table):
    path = tmp_path / "ingest.yaml"
    path.write_text(textwrap.dedent("""
        catalog: {name: %s, type: hadoop, warehouse: "%s"}
        spark: {mode: local, master: "local[2]", conf: {spark.sql.shuffle.partitions: "4"}}
        ingest:
          queue_url: "%s"
          dlq_url: "%s"
          target_table: %s
          quarantine_table: %s_quarantine
          uri_map: {"s3://%s/": "%s"}
          visibility_timeout_seconds: %d
          heartbeat_seconds: 2
          batch: {max_objects: 4, wait_time_seconds: 0, max_wait_seconds: 1, receive_concurrency: 1}
        """ % (CATALOG, warehouse, landing.queue_url, landing.dlq_url, table, table, BUCKET, landing.root,
               VISIBILITY)))
    return str(path)


def _start(config, fault=None):
    env = dict(os.environ)
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.Popen([sys.executable, "-m", "lakehouse_ops.cli", "--config", config, "ingest",
                             "--until-empty", "--json"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


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
        proc = _start(config, fault)
        proc.wait(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (fault, proc.stderr.read()[-2000:])
        _kill_group(proc)
    rng = random.Random(int(time.time()))
    for _ in range(2):
        proc = _start(config)
        time.sleep(rng.uniform(6, 16))
        _kill_group(proc)

    for _ in range(6):
        time.sleep(VISIBILITY + 1)  # messages of killed batches become visible again
        proc = _start(config)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        if landing.depth() == 0:
            break
    assert landing.depth() == 0
    spark.sql("REFRESH TABLE %s" % ref)
    ids = [r.rec_id for r in spark.table(ref).select("rec_id").collect()]
    assert len(ids) == 300 and sorted(ids) == list(range(300))
    assert landing.dlq_messages() == []
