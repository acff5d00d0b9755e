"""`lakehouse-ops ingest status`: backlog from SQS (moto's server), the last commits and their lag from the
ledger (read with pyiceberg), batches left uncommitted."""

import json

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.ingest.job import IngestJob
from lakehouse_ops.ingest.ledger import PENDING, Ledger
from lakehouse_ops.ingest.messages import S3Object

from conftest import CATALOG, write_config
from ingest_helpers import BUCKET, Landing, create_target, ingest_config, records

pytestmark = pytest.mark.spark


def test_status_shows_backlog_last_commits_with_lag_and_uncommitted_batches(
    spark, warehouse, aws_env, tmp_path, table_name
):
    from lakehouse_ops.aws.clients import client

    sqs = client("sqs")
    landing = Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))
    create_target(spark, table_name)
    section = {
        "queue_url": landing.queue_url,
        "dlq_url": landing.dlq_url,
        "target_table": table_name,
        "uri_map": {"s3://%s/" % BUCKET: landing.root},
        "batch": {"max_objects": 1, "max_wait_seconds": 1, "wait_time_seconds": 0, "receive_concurrency": 1},
    }
    for i in range(3):
        landing.put("status/f%d.json" % i, records(i * 4, 4))
    report = IngestJob(ingest_config(warehouse, landing, table_name, **section), spark=spark).run(until_empty=True)
    assert report["ok"] and report["totals"]["batches"] == 3
    committed = [b["batch_id"] for b in report["batches"]]
    # What the queue still holds, and a batch a killed worker left pending.
    landing.put("status/later.json", records(100, 1))
    Ledger(spark, CATALOG, table_name + "_ingest_ledger").record("stuck-batch", [S3Object(BUCKET, "x.json")], PENDING)
    sqs.send_message(QueueUrl=landing.dlq_url, MessageBody="dead")

    path = write_config(tmp_path / "status.yaml", warehouse, ingest=section)
    result = CliRunner().invoke(cli, ["--config", path, "ingest", "status", "--json", "--last", "2"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert (status["queue_visible"], status["queue_in_flight"], status["dlq_visible"]) == (1, 0, 1)
    assert status["committed_batches"] == 3 and status["committed_objects"] == 3
    assert [c["batch_id"] for c in status["last_commits"]] == committed[::-1][:2]
    assert all(c["objects"] == 1 and c["bytes"] > 0 and c["snapshot_id"] for c in status["last_commits"])
    # The events are stamped at announcement, seconds before their commit.
    assert all(0 <= c["lag_s"] < 600 for c in status["last_commits"])
    assert 0 <= status["since_last_commit_s"] < 600
    assert [b["batch_id"] for b in status["uncommitted_batches"]] == ["stuck-batch"]

    text = CliRunner().invoke(cli, ["--config", path, "ingest", "status"])
    assert text.exit_code == 0 and "3 batches committed" in text.output and "not committed: stuck-batch" in text.output
