"""Several ingest workers, each its own process, on one queue where every object is announced by several
messages (S3 notification, EventBridge, redelivery) that reach different workers at once; some workers are
killed while they hold claims. Every row must land exactly once."""

import json
import os
import random
import signal
import time

import pytest

from conftest import CATALOG, write_config
from ingest_helpers import BUCKET, Landing, create_target, kill_group, records, s3_notification, start_worker

pytestmark = [pytest.mark.spark, pytest.mark.slow]
VISIBILITY = 12
# Long enough for a first batch with four JVMs sharing two cores (a claim that expires mid-batch voids it).
CLAIM_SECONDS = 30
OBJECTS, ROWS = 48, 10


def eventbridge_created(key, size, etag):
    return json.dumps(
        {
            "version": "0",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "time": "2024-05-13T10:17:02Z",
            "resources": ["arn:aws:s3:::%s" % BUCKET],
            "detail": {
                "bucket": {"name": BUCKET},
                "object": {"key": key, "size": size, "etag": etag},
                "reason": "PutObject",
            },
        }
    )


def test_three_workers_on_one_queue_write_every_object_once(spark, warehouse, aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    seed = int(os.environ.get("LAKEHOUSE_OPS_TEST_SEED", random.randrange(1 << 30)))
    print("seed", seed)  # shown on failure; set LAKEHOUSE_OPS_TEST_SEED to replay
    rng = random.Random(seed)
    sqs = client("sqs")
    landing = Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))
    sqs.set_queue_attributes(QueueUrl=landing.queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY)})
    ref = create_target(spark, table_name)
    bodies = []
    for i in range(OBJECTS):
        key = "workers/file %02d.json" % i
        size = landing.put(key, records(i * ROWS, ROWS), send=False)
        etag = "etag-%d" % i
        # The same object, announced three ways; shuffled so the copies reach different workers.
        bodies += [
            s3_notification(key, size, etag=etag),
            eventbridge_created(key, size, etag),
            s3_notification(key, size, etag=etag),
        ]
    rng.shuffle(bodies)
    for body in bodies:
        landing.send(body)
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
            "eventbridge_key_encoding": "none",
            "visibility_timeout_seconds": VISIBILITY,
            "heartbeat_seconds": 3,
            "claim_seconds": CLAIM_SECONDS,
            "batch": {"max_objects": 6, "wait_time_seconds": 0, "max_wait_seconds": 1, "receive_concurrency": 1},
        },
    )

    # Round 1: three workers at once; one dies right after sealing a batch (its batch must be finished by
    # another), one dies right after claiming and writing pending rows (its claims must be taken over).
    procs = [start_worker(config), start_worker(config, "after_seal"), start_worker(config, "after_pending")]
    for proc in procs[1:]:
        proc.wait(timeout=600)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-3000:]
    # And one killed at a random moment while it works.
    victim = start_worker(config)
    time.sleep(rng.uniform(12, 25))
    kill_group(victim)
    out, err = procs[0].communicate(timeout=900)
    assert procs[0].returncode == 0, err[-3000:]
    reports = [json.loads(out)]

    # Round 2 and on: three clean workers at once until the queue is drained.
    for _ in range(6):
        if landing.depth() == 0:
            break
        time.sleep(max(VISIBILITY, CLAIM_SECONDS) + 1)  # killed workers' messages and claims come back
        procs = [start_worker(config) for _ in range(3)]
        for proc in procs:
            out, err = proc.communicate(timeout=900)
            assert proc.returncode == 0, err[-3000:]
            reports.append(json.loads(out))
    assert landing.depth() == 0
    batches = [b for r in reports for b in r["batches"]]
    # The batch sealed by the worker killed after sealing was landed by another worker, not written again.
    assert sum(b.get("finished_batches", 0) for b in batches) >= 1, batches
    assert landing.dlq_messages() == []

    spark.sql("REFRESH TABLE %s" % ref)
    ids = [r.rec_id for r in spark.table(ref).select("rec_id").collect()]
    assert len(ids) == OBJECTS * ROWS and sorted(ids) == list(range(OBJECTS * ROWS)), (
        "seed %d: %d rows for %d distinct ids" % (seed, len(ids), len(set(ids)))
    )
    # Each batch landed once, and each object is committed under exactly one batch.
    ledger = "%s.%s_ingest_ledger" % (CATALOG, table_name)
    spark.sql("REFRESH TABLE %s" % ledger)
    per_object = spark.sql(
        "SELECT object_id, count(DISTINCT batch_id) AS n FROM %s WHERE status = 'committed' GROUP BY object_id" % ledger
    ).collect()
    assert len(per_object) == OBJECTS and all(r.n == 1 for r in per_object), [r for r in per_object if r.n > 1]
    published = spark.sql(
        "SELECT coalesce(summary['published-wap-id'], summary['lakehouse-ops.batch-id']) AS b "
        "FROM %s.snapshots s JOIN %s.history h USING (snapshot_id) WHERE h.is_current_ancestor "
        "AND s.operation = 'append'" % (ref, ref)
    ).collect()
    batches = [r.b for r in published if r.b]
    assert len(batches) == len(set(batches))
