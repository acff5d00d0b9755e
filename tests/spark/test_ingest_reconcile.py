"""`ingest reconcile`: objects whose notifications never arrived are ingested exactly once, within a window and a
budget; a late notification afterwards finds them committed."""

import hashlib
import json
import os
import time

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.ingest.job import IngestJob
from lakehouse_ops.ingest.reconcile import reconcile

from conftest import write_config
from ingest_helpers import BUCKET, Landing, create_target, ingest_config, records, s3_notification, write_json_lines

pytestmark = pytest.mark.spark
PREFIX = "s3://%s/rec/" % BUCKET


@pytest.fixture
def landing(aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    return Landing(client("sqs"), tmp_path / "landing", table_name.replace(".", "-"))


def put(landing, key, rows, announce):
    """A landing file; announced (with its S3 ETag, the MD5 of a one-part upload) or not."""
    size = write_json_lines(landing.root, key, rows)
    etag = hashlib.md5(open(os.path.join(landing.root, key), "rb").read()).hexdigest()
    if announce:
        landing.send(s3_notification(key, size, etag=etag))
    return s3_notification(key, size, etag=etag)


def test_unannounced_objects_are_ingested_once_within_window_and_budget(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, batch={"max_objects": 2, "max_wait_seconds": 1})
    late = {}
    for i in range(6):
        late[i] = put(landing, "rec/day/f%d.json" % i, records(i * 5, 5), announce=i % 2 == 0)
    put(landing, "other/f9.json", records(90, 5), announce=False)  # outside the prefix
    old = os.path.join(landing.root, "rec/day/f5.json")
    os.utime(old, (time.time() - 10 * 86400,) * 2)  # outside the window
    job = IngestJob(config, spark=spark)
    assert job.run(until_empty=True)["totals"]["rows"] == 15

    now = time.time() * 1000
    window = (now - 86400 * 1000, now + 1000)
    dry = reconcile(job, PREFIX, *window, max_objects=100, max_bytes=1 << 30, dry_run=True)
    assert (dry["in_window"], dry["already_committed"], dry["unannounced"]) == (5, 3, 2)
    assert sorted(dry["objects"]) == [PREFIX + "day/f1.json", PREFIX + "day/f3.json"]
    assert spark.table(ref).count() == 15  # a dry run ingests nothing

    first = reconcile(job, PREFIX, *window, max_objects=1, max_bytes=1 << 30)
    assert first["ok"] and first["chosen"] == 1 and first["left_for_next_run"] == 1 and first["rows"] == 5
    rest = reconcile(job, PREFIX, *window, max_objects=100, max_bytes=1 << 30)
    assert rest["chosen"] == 1 and rest["rows"] == 5
    again = reconcile(job, PREFIX, *window, max_objects=100, max_bytes=1 << 30)
    assert again["unannounced"] == 0 and "batches" not in again

    # The notifications arrive after all: the objects are found committed and nothing is written twice.
    landing.send(late[1])
    landing.send(late[3])
    report = IngestJob(config, spark=spark).run(until_empty=True)
    assert report["totals"]["rows"] == 0 and report["totals"]["already_committed"] == 2
    ids = sorted(r.rec_id for r in spark.table(ref).collect())
    assert ids == list(range(25)) and landing.depth() == 0


def test_reconcile_command_dry_run_and_bad_window(spark, warehouse, landing, table_name, tmp_path):
    create_target(spark, table_name)
    put(landing, "rec/a.json", records(0, 2), announce=False)
    section = {
        "queue_url": landing.queue_url,
        "dlq_url": landing.dlq_url,
        "target_table": table_name,
        "uri_map": {"s3://%s/" % BUCKET: landing.root},
    }
    path = write_config(tmp_path / "rec.yaml", warehouse, ingest=section)
    args = ["--config", path, "ingest", "reconcile", "--prefix", PREFIX, "--until", "0m", "--dry-run", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the log goes to stderr
    assert report["dry_run"] and report["objects"] == [PREFIX + "a.json"]
    bad = CliRunner().invoke(cli, ["--config", path, "ingest", "reconcile", "--prefix", PREFIX, "--since", "yesterday"])
    assert bad.exit_code == 2 and "neither a time ago" in bad.stderr
