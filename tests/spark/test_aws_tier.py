"""The production stack: Iceberg's GlueCatalog and S3FileIO over moto's S3 and Glue (a versioned bucket), with
every maintenance action a policy can turn on, as a scheduled run does them; ingest by several workers,
pseudonymization, erasure and the run history's fleet page, through the CLI."""

import json

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.runner import MaintenanceRunner

from conftest import PSEUDO_API_KEY
from helpers import days_later
from ingest_helpers import TARGET_SCHEMA, records, start_worker

pytestmark = pytest.mark.spark


def _now(spark):
    return spark.sql("SELECT date_format(current_timestamp(), 'yyyy-MM-dd HH:mm:ss') AS t").collect()[0].t


def test_maintain_runs_every_action_on_glue_and_s3(spark, glue_lake):
    lake = glue_lake
    name = "%s.orders" % lake.namespace
    ref = "%s.%s" % (lake.catalog, name)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    spark.sql(
        "CREATE TABLE %s (id BIGINT, customer STRING, ts TIMESTAMP) USING iceberg PARTITIONED BY (days(ts)) "
        "TBLPROPERTIES ('write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read')" % ref
    )
    for day in range(3):  # many small files in three day partitions, the oldest beyond retention's horizon
        for start in range(0, 400, 100):
            spark.sql(
                "INSERT INTO %s SELECT id, concat('c', id %% 7), timestamp'%s' - make_interval(0, 0, 0, %d) "
                "FROM range(%d, %d)" % (ref, _now(spark), day, start + day * 1000, start + day * 1000 + 100)
            )
    spark.sql("DELETE FROM %s WHERE id %% 10 = 0" % ref)  # position deletes
    before = spark.table(ref).where("id < 2000").count()  # the two newest days
    policy = {
        "compaction": {"min_input_files": 2},
        "position_deletes": {"min_delete_files": 1},
        "snapshots": {"max_age_days": 1, "retain_last": 2},
        "orphans": {"older_than_hours": 96, "trash": {"enabled": True}},
        "statistics": {"enabled": True},
        "recovery_points": {"every": "daily"},
        "retention": {
            "column": "ts",
            "keep_days": 4.5,
            "max_share": 0.5,
        },  # three days on, the oldest day is 5 days old
        "manifests": {"min_manifests": 2},
    }
    # Three days on: snapshots are old enough to expire; retention's horizon is measured from then too.
    report = MaintenanceRunner(lake.config(defaults=policy), spark=spark, clock=days_later(3)).run([name])
    entry = report["tables"][0]
    statuses = {a["action"]: a["status"] for a in entry["actions"]}
    failed = {a["action"]: a.get("reason") for a in entry["actions"] if a["status"] == "failed"}
    assert not failed, failed
    for action in ("compaction", "expire_snapshots", "remove_orphan_files", "recovery_points", "retention"):
        assert statuses.get(action) in ("done", "partial"), (action, statuses)
    compaction = next(a for a in entry["actions"] if a["action"] == "compaction")
    assert compaction["outputs"]["verification"]["verified"] is True
    expiry = next(a for a in entry["actions"] if a["action"] == "expire_snapshots")
    assert expiry["outputs"].get("versioned_bucket") == lake.bucket  # storage not freed is said
    spark.sql("REFRESH TABLE %s" % ref)
    assert spark.table(ref).count() == before  # the oldest day went to retention, nothing else
    assert spark.sql("SELECT count(*) AS n FROM %s.files" % ref).collect()[0].n < 12


def _put(lake, bucket, key, rows, extra_lines=()):
    """Upload JSON lines to S3 and the notification S3 sends for that very version of the object."""
    from lakehouse_ops.ingest import events

    body = ("\n".join([json.dumps(r) for r in rows] + list(extra_lines)) + "\n").encode("utf-8")
    put = lake.s3.put_object(Bucket=bucket, Key=key, Body=body)
    return events.s3_notification(bucket, key, len(body), etag=put["ETag"].strip('"'), version_id=put["VersionId"])


def test_ingest_from_s3_by_two_workers_then_pseudonymize_erase_and_report_over_glue(
    spark, glue_lake, pseudo_service, tmp_path, monkeypatch
):
    """Landing files on a versioned S3 bucket, announced on SQS (some twice, one key overwritten before it is
    read, one file with a broken line); two worker processes claim by S3 conditional writes and keep their
    ledger, quarantine and run history in Glue. Then the pseudonymize job, an erasure with its receipt on S3,
    and the fleet page from the run history, every one through the CLI on the same Glue catalog."""
    from lakehouse_ops.aws.clients import client

    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    lake = glue_lake
    sqs, glue = client("sqs"), client("glue")
    landing = "landing" + lake.bucket[4:]
    lake.s3.create_bucket(Bucket=landing)
    lake.s3.put_bucket_versioning(Bucket=landing, VersioningConfiguration={"Status": "Enabled"})
    queue = sqs.create_queue(QueueName=landing, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    dlq = sqs.create_queue(QueueName=landing + "-dlq")["QueueUrl"]
    name = "%s.events" % lake.namespace
    ref = "%s.%s" % (lake.catalog, name)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    spark.sql("CREATE TABLE %s (%s) USING iceberg PARTITIONED BY (days(event_time))" % (ref, TARGET_SCHEMA))

    bodies = []
    for i in range(10):
        body = _put(lake, landing, "in/day 1/file %02d.json" % i, records(i * 10, 10))
        bodies += [body, body] if i % 3 == 0 else [body]  # redelivered
    # One key written twice before any worker reads it: each version is read from its own bytes.
    bodies.append(_put(lake, landing, "in/overwritten.json", records(1000, 10)))
    bodies.append(_put(lake, landing, "in/overwritten.json", records(2000, 10)))
    bodies.append(_put(lake, landing, "in/broken.json", records(3000, 5), extra_lines=['{"rec_id": 3005, "bytes']))
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    history = {"enabled": True, "table": "lakehouse_ops.run_history"}
    ingest = {
        "queue_url": queue,
        "dlq_url": dlq,
        "target_table": name,
        "quarantine_table": name + "_quarantine",
        "format": "json",
        "visibility_timeout_seconds": 30,
        "heartbeat_seconds": 5,
        "claim_seconds": 30,
        "batch": {"max_objects": 4, "wait_time_seconds": 0, "max_wait_seconds": 1, "receive_concurrency": 1},
    }
    worker_config = lake.write(tmp_path / "ingest.yaml", master="local[1]", ingest=ingest, history=history)
    workers = [start_worker(worker_config) for _ in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=900)
        assert worker.returncode == 0, err[-3000:]
        assert json.loads(out)["ok"]
    depth = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"

    spark.sql("REFRESH TABLE %s" % ref)
    ids = sorted(r.rec_id for r in spark.table(ref).select("rec_id").collect())
    assert ids == list(range(100)) + list(range(1000, 1010)) + list(range(2000, 2010)) + list(range(3000, 3005))
    quarantined = spark.table(ref + "_quarantine").collect()
    assert len(quarantined) == 1 and "in/broken.json" in str(quarantined[0].asDict()), quarantined
    # Ledger, quarantine and history are Iceberg tables in Glue; claims were conditional writes on S3.
    in_glue = {
        t["Name"]: t["Parameters"].get("table_type") for t in glue.get_tables(DatabaseName=lake.namespace)["TableList"]
    }
    assert {"events", "events_ingest_ledger", "events_quarantine"} <= set(in_glue) and set(in_glue.values()) == {
        "ICEBERG"
    }, in_glue
    claims = lake.s3.list_object_versions(Bucket=lake.bucket, Prefix="warehouse/_lakehouse_ops/ingest-claims/")
    assert len(claims.get("Versions", [])) >= 12, claims.get("Versions")

    pseudo = {
        "service_url": pseudo_service.url,
        "jobs": {"events": {"source": {"table": name}, "target": name + "_safe", "columns": ["customer_id"]}},
    }
    erasure = {"tables": [{"table": name, "columns": ["customer_id"]}]}
    config = lake.write(
        tmp_path / "lake.yaml",
        history=history,
        pseudonymization=pseudo,
        erasure=erasure,
        defaults={"storage": {"versioned_deletes": True}},
    )
    result = CliRunner().invoke(cli, ["--config", config, "pseudonymize", "--job", "events", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 125
    safe = spark.table(ref + "_safe")
    assert safe.count() == 125 and safe.where("customer_id LIKE 'c0%'").count() == 0

    subject = "c007"
    receipt_uri = "s3://%s/receipts/request-1.json" % lake.bucket
    result = CliRunner().invoke(
        cli, ["--config", config, "erase", "--subject", subject, "--receipt", receipt_uri, "--json"]
    )
    assert result.exit_code == 0, result.output
    receipt = json.loads(lake.s3.get_object(Bucket=lake.bucket, Key="receipts/request-1.json")["Body"].read())
    assert receipt["ok"] and receipt["verified"], json.dumps(receipt, indent=1)
    assert subject not in json.dumps(receipt)  # the subject by reference only
    spark.sql("REFRESH TABLE %s" % ref)
    assert spark.table(ref).where("customer_id = '%s'" % subject).count() == 0

    page = "s3://%s/reports/fleet.html" % lake.bucket
    result = CliRunner().invoke(cli, ["--config", config, "report", "--html", page, "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["runs"] >= 4, outcome  # two ingest workers, pseudonymize, erase
    html = lake.s3.get_object(Bucket=lake.bucket, Key="reports/fleet.html")["Body"].read().decode("utf-8")
    assert name in html and subject not in html


def _old_listing(spark, lake, tmp_path, prefix, name):
    """A file list of every object under `prefix`, dated long ago: each is old enough to be an orphan."""
    keys = [
        o["Key"]
        for page in lake.s3.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    rows = [("s3://%s/%s" % (lake.bucket, key), "2020-01-01 00:00:00") for key in keys]
    path = str(tmp_path / name)
    spark.createDataFrame(rows, "file_path string, last_modified string").write.parquet(path)
    return keys, {"orphans": {"file_list": {"path": path}}}


def test_a_moved_tables_old_files_in_a_neighbours_data_directory_are_never_taken(spark, glue_lake, tmp_path):
    """`moved` was created inside `host`'s data directory, then moved (SET LOCATION): its old data files stay
    referenced at the old path (its first manifests too), and its old metadata.json files are gone from there (as
    metadata cleanup removes them), so only its metadata log says it ever lived there. `host`'s orphan removal never
    takes those files."""
    lake = glue_lake
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    host = "%s.%s.host" % (lake.catalog, lake.namespace)
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % host)
    spark.sql("INSERT INTO %s SELECT id FROM range(0, 10)" % host)
    host_location = spark.sql("DESCRIBE TABLE EXTENDED %s" % host).where("col_name = 'Location'").collect()[0]
    host_prefix = host_location.data_type.split("/", 3)[3] + "/"
    moved = "%s.%s.moved" % (lake.catalog, lake.namespace)
    old_location = "s3://%s/%sdata/moved" % (lake.bucket, host_prefix)
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg LOCATION '%s'" % (moved, old_location))
    spark.sql("INSERT INTO %s SELECT id FROM range(100, 120)" % moved)
    spark.sql("ALTER TABLE %s SET LOCATION 's3://%s/elsewhere/moved'" % (moved, lake.bucket))
    spark.sql("INSERT INTO %s SELECT id FROM range(120, 130)" % moved)
    old_metadata = lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix=host_prefix + "data/moved/metadata/")
    for item in old_metadata.get("Contents", []):
        if item["Key"].endswith(".metadata.json"):
            lake.s3.delete_object(Bucket=lake.bucket, Key=item["Key"])
    keys, policy = _old_listing(spark, lake, tmp_path, host_prefix, "listing")
    old_data = [k for k in keys if k.startswith(host_prefix + "data/moved/")]
    # the moved table's first data files, manifests and manifest list, still referenced at the old path
    assert [k for k in old_data if "/data/moved/data/" in k] and [k for k in old_data if k.endswith(".avro")]

    report = MaintenanceRunner(lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"]).run(
        ["%s.host" % lake.namespace]
    )
    action = report["tables"][0]["actions"][0]
    assert action["status"] in ("done", "skipped") and not action["outputs"].get("deleted_files"), action
    left = {o["Key"] for o in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix=host_prefix).get("Contents", [])}
    assert set(old_data) <= left
    spark.sql("REFRESH TABLE %s" % moved)
    assert sorted(r.id for r in spark.table(moved).collect()) == list(range(100, 130))


def test_a_glue_table_without_a_location_stops_a_neighbours_orphan_removal(spark, glue_lake, tmp_path):
    """A table registered in Glue without `StorageDescriptor.Location` could keep files anywhere: orphan removal
    deletes nothing and names it, until the policy lists it in orphans.ignore_tables."""
    from lakehouse_ops.aws.clients import client

    lake = glue_lake
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    table = "%s.%s.kept" % (lake.catalog, lake.namespace)
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % table)
    spark.sql("INSERT INTO %s SELECT id FROM range(0, 10)" % table)
    client("glue").create_table(
        DatabaseName=lake.namespace, TableInput={"Name": "nowhere", "TableType": "EXTERNAL_TABLE"}
    )
    prefix = spark.sql("DESCRIBE TABLE EXTENDED %s" % table).where("col_name = 'Location'").collect()[0].data_type
    prefix = prefix.split("/", 3)[3] + "/"
    lake.s3.put_object(Bucket=lake.bucket, Key=prefix + "data/stray.parquet", Body=b"PAR1 not referenced")
    keys, policy = _old_listing(spark, lake, tmp_path, prefix, "listing")
    name = "%s.kept" % lake.namespace
    refused = MaintenanceRunner(lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"]).run([name])
    action = refused["tables"][0]["actions"][0]
    assert action["status"] == "failed" and "%s.nowhere" % lake.namespace in action["reason"], action
    assert "StorageDescriptor.Location" in action["reason"] and "orphans.ignore_tables" in action["reason"]
    assert prefix + "data/stray.parquet" in {k for k in keys}
    policy["orphans"]["ignore_tables"] = ["%s.nowhere" % lake.namespace]
    done = MaintenanceRunner(lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"]).run([name])
    action = done["tables"][0]["actions"][0]
    assert action["status"] == "done" and action["outputs"]["deleted_files"] == 1, action
    assert spark.table(table).count() == 10
