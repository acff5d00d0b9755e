"""Orphan removal and its trash on S3 where Spark's Hadoop has no filesystem for s3:// (a plain Spark without
hadoop-aws; EMR's EMRFS has one): Iceberg lists through the table's FileIO (`prefix_listing`), and the library's
own checks, moves, restores and purges go through boto3 (aws/objects.py). Glue + S3FileIO on moto."""

import json

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.maintenance import trash
from lakehouse_ops.runner import MaintenanceRunner
from lakehouse_ops.units import now_ms

pytestmark = pytest.mark.spark


def _keys(lake, prefix):
    return sorted(o["Key"] for o in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix=prefix).get("Contents", []))


def test_orphan_removal_and_its_trash_work_on_s3_without_a_hadoop_filesystem(spark, glue_lake, no_hadoop_s3, tmp_path):
    lake = glue_lake
    name = "%s.events" % lake.namespace
    ref = "%s.%s" % (lake.catalog, name)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % ref)
    spark.sql("INSERT INTO %s SELECT id FROM range(0, 100)" % ref)
    location = spark.sql("DESCRIBE TABLE EXTENDED %s" % ref).where("col_name = 'Location'").collect()[0].data_type
    prefix = location.split("/", 3)[3] + "/"
    jvm = spark._jvm
    with pytest.raises(Exception, match="No FileSystem for scheme"):
        jvm.org.apache.hadoop.fs.Path(location).getFileSystem(spark._jsc.hadoopConfiguration())

    # A listing of the location: through the table's FileIO (nothing is old enough to be an orphan yet).
    listed = MaintenanceRunner(lake.config(), spark=spark, only=["remove_orphan_files"]).run([name])
    action = listed["tables"][0]["actions"][0]
    assert action["status"] == "done" and action["outputs"]["candidates"] == 0, action

    # Orphans from a file list that dates them long ago: moved to the trash and back, through boto3.
    # Beside them, on S3 keys: a table nobody registered inside the data directory, and a sibling location
    # whose name starts like this one's: neither is ever a candidate.
    orphans = [prefix + "data/orphan-%d.parquet" % i for i in range(2)]
    hidden = [prefix + "data/hidden/metadata/v1.metadata.json", prefix + "data/hidden/data/h.parquet"]
    sibling = prefix.rstrip("/") + "_v2/data/s.parquet"
    for key in orphans + hidden + [sibling]:
        lake.s3.put_object(Bucket=lake.bucket, Key=key, Body=b"PAR1 not referenced")
    keys = _keys(lake, prefix) + [sibling]
    rows = [("s3://%s/%s" % (lake.bucket, key), "2020-01-01 00:00:00") for key in keys]
    inventory = str(tmp_path / "listing")
    spark.createDataFrame(rows, "file_path string, last_modified string").write.parquet(inventory)
    policy = {"orphans": {"trash": {"enabled": True, "keep_days": 5}, "file_list": {"path": inventory}}}
    moved = MaintenanceRunner(lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"]).run([name])
    action = moved["tables"][0]["actions"][0]
    assert action["status"] == "done" and action["outputs"]["trashed_files"] == 2, action
    in_trash = [k for k in _keys(lake, prefix) if "/.lakehouse-trash/" in k]
    assert len(in_trash) == 2 and not set(orphans) & set(_keys(lake, prefix))
    assert set(hidden) <= set(_keys(lake, prefix)) and _keys(lake, sibling) == [sibling]
    assert [r.endswith("/data/hidden") for r in action["outputs"]["tables_inside_location"]] == [True]
    assert spark.table(ref).count() == 100

    config = lake.write(tmp_path / "lake.yaml", defaults=policy)
    result = CliRunner().invoke(cli, ["--config", config, "orphans", "restore", name, "--since", "1d", "--json"])
    assert result.exit_code == 0, result.output
    back = json.loads(result.stdout)
    assert back["restored_files"] == 2 and back["conflicts"] == 0, back
    assert set(orphans) <= set(_keys(lake, prefix)) and not [k for k in _keys(lake, prefix) if "trash" in k]
    purged = trash.purge(spark, location, ".lakehouse-trash", now_ms(), 0, dry_run=False)
    assert purged["purged_batches"] == []  # restore removed the emptied batch


def test_a_table_sharing_the_location_on_s3_stops_the_removal(spark, glue_lake, no_hadoop_s3):
    lake = glue_lake
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    first = "%s.%s.shared_a" % (lake.catalog, lake.namespace)
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % first)
    location = spark.sql("DESCRIBE TABLE EXTENDED %s" % first).where("col_name = 'Location'").collect()[0].data_type
    spark.sql(
        "CREATE TABLE %s.%s.shared_b (id BIGINT) USING iceberg LOCATION '%s'" % (lake.catalog, lake.namespace, location)
    )
    report = MaintenanceRunner(lake.config(), spark=spark, only=["remove_orphan_files"]).run(
        ["%s.shared_a" % lake.namespace]
    )
    action = report["tables"][0]["actions"][0]
    assert action["status"] == "failed" and "shares its location" in action["reason"], action


def test_expiry_orphan_removal_and_the_trash_under_slowdown_lose_nothing(
    spark, glue_lake, no_hadoop_s3, moto_server, monkeypatch, tmp_path
):
    """S3 answers a share of requests `503 SlowDown`, in bursts (a proxy in front of moto): the table's own S3
    traffic (S3FileIO's reads, writes and expiry's deletes) and the library's (boto3's checks, moves, restores and
    orphan deletes) back off and go on; every step completes, nothing referenced is touched, every orphan comes back
    on restore and is then deleted once."""
    from slowdown import SlowDownProxy

    from helpers import days_later

    lake = glue_lake
    with SlowDownProxy(moto_server, seed=11, share=0.2, burst=3) as proxy:
        setting = "spark.sql.catalog.%s." % lake.catalog
        spark.conf.set(setting + "s3.endpoint", proxy.url)  # before the catalog's first use
        # S3FileIO's backoff from 0.2 s to 2 s instead of 2 s to 20 s: the same retries, in a test's time.
        spark.conf.set(setting + "s3.retry.min-wait-ms", "200")
        spark.conf.set(setting + "s3.retry.max-wait-ms", "2000")
        monkeypatch.setenv("LAKEHOUSE_OPS_AWS_ENDPOINT_URL", proxy.url)
        name = "%s.busy" % lake.namespace
        ref = "%s.%s" % (lake.catalog, name)
        spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
        spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % ref)
        for start in range(0, 300, 50):
            spark.sql("INSERT INTO %s SELECT id FROM range(%d, %d)" % (ref, start, start + 50))
        spark.sql("DELETE FROM %s WHERE id < 100" % ref)  # two files only old snapshots reference
        location = spark.sql("DESCRIBE TABLE EXTENDED %s" % ref).where("col_name = 'Location'").collect()[0].data_type
        prefix = location.split("/", 3)[3] + "/"
        orphans = [prefix + "data/orphan-%02d.parquet" % i for i in range(30)]
        for key in orphans:
            lake.s3.put_object(Bucket=lake.bucket, Key=key, Body=b"PAR1 not referenced")
        rows = [("s3://%s/%s" % (lake.bucket, key), "2020-01-01 00:00:00") for key in _keys(lake, prefix)]
        listing = str(tmp_path / "listing")
        spark.createDataFrame(rows, "file_path string, last_modified string").write.parquet(listing)
        policy = {
            "snapshots": {"max_age_days": 1, "retain_last": 1},
            # Three days on (the clock below), and older than four days: a day ago by the real clock.
            "orphans": {
                "older_than_hours": 96,
                "trash": {"enabled": True, "keep_days": 5},
                "file_list": {"path": listing},
            },
        }
        runner = MaintenanceRunner(
            lake.config(defaults=policy),
            spark=spark,
            only=["expire_snapshots", "remove_orphan_files"],
            clock=days_later(3),
        )
        entry = runner.run([name])["tables"][0]
        results = {a["action"]: a for a in entry["actions"]}
        assert {a: r["status"] for a, r in results.items()} == {
            "expire_snapshots": "done",
            "remove_orphan_files": "done",
        }, [(a["action"], a["status"], a["reason"]) for a in entry["actions"]]
        assert results["remove_orphan_files"]["outputs"]["trashed_files"] == 30
        assert spark.table(ref).count() == 200
        back = trash.restore(spark, location, ".lakehouse-trash", 0, dry_run=False)
        assert back["restored_files"] == 30 and back["conflicts"] == 0, back
        assert set(orphans) <= set(_keys(lake, prefix)) and not [k for k in _keys(lake, prefix) if "trash" in k]
        # And deleted for good, without the trash: the library's multi-object deletes, checked on storage after.
        policy["orphans"]["trash"] = {"enabled": False}
        runner = MaintenanceRunner(
            lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"], clock=days_later(3)
        )
        action = runner.run([name])["tables"][0]["actions"][0]
        assert action["status"] == "done" and action["outputs"]["deleted_files"] == 30, action
        assert action["outputs"]["verified"] is True
        assert action["outputs"]["deleted_with"].startswith("S3 multi-object deletes"), action["outputs"]
        spark.sql("REFRESH TABLE %s" % ref)
        assert sorted(r.id for r in spark.table(ref).collect()) == list(range(100, 300))
    assert proxy.faults > 5, (proxy.faults, proxy.s3_requests)  # SlowDown was met, often
    assert not set(orphans) & set(_keys(lake, prefix))


def _stray_orphans(spark, lake, short, tmp_path):
    """A table with three unreferenced objects in its data directory, and a file list that dates them long ago."""
    ref = "%s.%s.%s" % (lake.catalog, lake.namespace, short)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % ref)
    spark.sql("INSERT INTO %s SELECT id FROM range(0, 10)" % ref)
    location = spark.sql("DESCRIBE TABLE EXTENDED %s" % ref).where("col_name = 'Location'").collect()[0].data_type
    prefix = location.split("/", 3)[3] + "/"
    orphans = [prefix + "data/orphan-%d.parquet" % i for i in range(3)]
    for key in orphans:
        lake.s3.put_object(Bucket=lake.bucket, Key=key, Body=b"PAR1 not referenced")
    rows = [("s3://%s/%s" % (lake.bucket, key), "2020-01-01 00:00:00") for key in _keys(lake, prefix)]
    listing = str(tmp_path / ("listing-" + short))
    spark.createDataFrame(rows, "file_path string, last_modified string").write.parquet(listing)
    policy = {"orphans": {"trash": {"enabled": True, "keep_days": 5}, "file_list": {"path": listing}}}
    return "%s.%s" % (lake.namespace, short), prefix, orphans, policy


@pytest.mark.parametrize("hadoop", ["with Hadoop's S3 filesystem", "without"])
def test_trash_moves_when_s3_refuses_this_process_deletes(
    spark, glue_lake, moto_server, monkeypatch, tmp_path, request, hadoop
):
    """The run's own S3 credentials may copy but not delete (an EMR runtime role grants what EMRFS uses, the
    instance profile less). With Hadoop's filesystem (EMRFS, S3A) the move is finished there: verified, each
    orphan in the trash once. Without one the copy cannot be taken back either: nothing is lost, the report says
    the files stayed, why (the refusal, named), and that the trash holds a second copy of each."""
    from slowdown import SlowDownProxy

    if hadoop == "without":
        request.getfixturevalue("no_hadoop_s3")
    lake = glue_lake
    name, prefix, orphans, policy = _stray_orphans(spark, lake, "refused_%s" % hadoop[:4], tmp_path)
    with SlowDownProxy(moto_server, share=0.0, deny="DELETE") as proxy:
        monkeypatch.setenv("LAKEHOUSE_OPS_AWS_ENDPOINT_URL", proxy.url)
        report = MaintenanceRunner(lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"]).run([name])
    action = report["tables"][0]["actions"][0]
    keys = _keys(lake, prefix)
    trashed = [k for k in keys if ".lakehouse-trash/" in k]
    if hadoop == "without":
        assert action["status"] == "partial", action
        left = action["outputs"]["left_behind"]
        assert left["files"] == 3 and left["also_in_the_trash"] == 3 and "AccessDenied" in left["reason"], left
        assert "not verified" in action["reason"]
        assert set(orphans) <= set(keys) and len(trashed) == 3  # nothing lost: each still where it was
    else:
        assert action["status"] == "done" and action["outputs"]["trashed_files"] == 3, action
        assert action["outputs"]["verified"] is True
        assert not set(orphans) & set(keys) and len(trashed) == 3
