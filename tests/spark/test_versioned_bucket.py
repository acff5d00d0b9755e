"""Tables on a versioned S3 bucket (moto's server, through Iceberg's GlueCatalog and S3FileIO): a delete leaves the
bytes as a noncurrent version and in replicas. Erasure is verified only when no copy is left; expiry and orphan
removal report the storage they did not free, or free it with storage.versioned_deletes."""

import json

import pytest

from lakehouse_ops.erasure.job import erase
from lakehouse_ops.runner import MaintenanceRunner

from helpers import days_later

pytestmark = pytest.mark.spark
SUBJECT = "cust-00042"


def _create(spark, lake, name):
    ref = "%s.%s.%s" % (lake.catalog, lake.namespace, name)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (lake.catalog, lake.namespace))
    spark.sql("CREATE TABLE %s (id BIGINT, customer_id STRING) USING iceberg" % ref)
    for start in (0, 100, 200):
        spark.sql(
            "INSERT INTO %s SELECT id, concat('cust-', lpad(CAST(id %% 50 AS STRING), 5, '0')) FROM range(%d, %d)"
            % (ref, start, start + 100)
        )
    return ref, "%s.%s" % (lake.namespace, name)


def _noncurrent(lake, bucket=None):
    found = lake.s3.list_object_versions(Bucket=bucket or lake.bucket, Prefix="warehouse/")
    return [v for v in found.get("Versions", []) if not v["IsLatest"]] + found.get("DeleteMarkers", [])


def test_an_erasure_on_a_versioned_bucket_is_verified_only_once_no_copy_is_left(spark, glue_lake):
    lake = glue_lake
    ref, name = _create(spark, lake, "customers")
    tables = {"tables": [{"table": name, "columns": ["customer_id"]}]}
    plain = lake.config(erasure=tables)
    receipt = erase(plain, [SUBJECT], spark=spark)
    assert receipt["tables"][0]["rows_deleted"] == 6 and not receipt["verified"], json.dumps(receipt, indent=1)
    problems = " ".join(receipt["tables"][0]["problems"])
    assert "noncurrent version(s) of deleted files remain" in problems and lake.bucket in problems
    assert _noncurrent(lake)  # the subject's files: deleted, their bytes still in S3

    freeing = lake.config(erasure=tables, defaults={"storage": {"versioned_deletes": True}})
    again = erase(freeing, [SUBJECT], spark=spark)  # the request again, now allowed to remove versions
    assert again["ok"] and again["verified"], json.dumps(again, indent=1)
    assert again["tables"][0]["verification"]["copies"]["noncurrent_versions_left"] == 0
    assert _noncurrent(lake) == []
    assert spark.table(ref).where("customer_id = '%s'" % SUBJECT).count() == 0 and spark.table(ref).count() == 294


def test_an_erasure_removes_the_copies_a_replica_bucket_keeps(spark, glue_lake):
    lake = glue_lake
    replica = lake.bucket + "-replica"
    lake.s3.create_bucket(Bucket=replica)
    lake.s3.put_bucket_versioning(Bucket=replica, VersioningConfiguration={"Status": "Enabled"})
    rule = {
        "ID": "crr",
        "Status": "Enabled",
        "Priority": 1,
        "Filter": {},
        "Destination": {"Bucket": "arn:aws:s3:::" + replica},
    }
    rule["DeleteMarkerReplication"] = {"Status": "Disabled"}
    lake.s3.put_bucket_replication(
        Bucket=lake.bucket, ReplicationConfiguration={"Role": "arn:aws:iam::123456789012:role/crr", "Rules": [rule]}
    )
    ref, name = _create(spark, lake, "replicated")
    for item in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix="warehouse/").get("Contents", []):
        # What replication would have copied by now (moto's server does not replicate).
        lake.s3.copy_object(Bucket=replica, Key=item["Key"], CopySource={"Bucket": lake.bucket, "Key": item["Key"]})
    config = lake.config(
        erasure={"tables": [{"table": name, "columns": ["customer_id"]}]},
        defaults={"storage": {"versioned_deletes": True}},
    )
    receipt = erase(config, [SUBJECT], spark=spark)
    assert receipt["verified"], json.dumps(receipt, indent=1)
    assert receipt["tables"][0]["verification"]["copies"]["replicas"] == {replica: 0}, receipt["tables"][0]
    live = {i["Key"] for i in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix="warehouse/")["Contents"]}
    kept = lake.s3.list_object_versions(Bucket=replica, Prefix="warehouse/")
    assert {v["Key"] for v in kept.get("Versions", [])} <= live  # copies of live files stay; of deleted ones, gone

    lake.s3.put_bucket_replication(
        Bucket=lake.bucket,
        ReplicationConfiguration={
            "Role": "arn:aws:iam::123456789012:role/crr",
            "Rules": [dict(rule, Destination={"Bucket": "arn:aws:s3:::no-such-replica-bucket"})],
        },
    )
    from lakehouse_ops.aws import versions

    versions._facts.clear()  # as a new run would ask S3
    unreachable = erase(config, ["cust-00007"], spark=spark)
    assert not unreachable["verified"]
    assert "replica bucket no-such-replica-bucket could not be checked" in " ".join(
        unreachable["tables"][0]["problems"]
    )


def test_expiry_and_orphan_removal_free_the_storage_of_what_they_delete_only_when_asked(spark, glue_lake):
    lake = glue_lake
    _, name = _create(spark, lake, "events")
    spark.sql("DELETE FROM %s.%s WHERE id < 150" % (lake.catalog, name))
    keep = lake.config(defaults={"snapshots": {"max_age_days": 1, "retain_last": 1}})
    report = MaintenanceRunner(keep, spark=spark, only=["expire_snapshots"], clock=days_later(3)).run([name])
    outputs = report["tables"][0]["actions"][0]["outputs"]
    assert "noncurrent versions" in outputs["storage_not_freed"] and outputs["versioned_bucket"] == lake.bucket
    assert _noncurrent(lake)
    spark.sql("INSERT INTO %s.%s VALUES (1000, 'x')" % (lake.catalog, name))
    spark.sql("DELETE FROM %s.%s WHERE id = 1000" % (lake.catalog, name))
    freeing = lake.config(
        defaults={"snapshots": {"max_age_days": 1, "retain_last": 1}, "storage": {"versioned_deletes": True}}
    )
    report = MaintenanceRunner(freeing, spark=spark, only=["expire_snapshots"], clock=days_later(3)).run([name])
    outputs = report["tables"][0]["actions"][0]["outputs"]
    assert outputs["noncurrent_versions_removed"] > 0, outputs
    assert _noncurrent(lake) == []
    assert spark.table("%s.%s" % (lake.catalog, name)).count() == 150


def _orphans_listed(spark, lake, name, tmp_path, count, tag):
    """Stray objects in the table's data directory, and a file list that dates them long ago."""
    location = spark.sql("DESCRIBE TABLE EXTENDED %s.%s" % (lake.catalog, name)).where("col_name = 'Location'")
    prefix = location.collect()[0].data_type.split("/", 3)[3] + "/data/"
    keys = [prefix + "stray-%s-%d.parquet" % (tag, i) for i in range(count)]
    for key in keys:
        lake.s3.put_object(Bucket=lake.bucket, Key=key, Body=b"PAR1 not referenced")
    listing = str(tmp_path / ("listing-" + tag))
    rows = [("s3://%s/%s" % (lake.bucket, key), "2020-01-01 00:00:00") for key in keys]
    spark.createDataFrame(rows, "file_path string, last_modified string").write.parquet(listing)
    return keys, {"orphans": {"file_list": {"path": listing}}}


def _keys(lake):
    pages = lake.s3.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket, Prefix="warehouse/")
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_orphan_removal_on_a_versioned_bucket_says_what_it_did_not_free_or_frees_it_when_asked(
    spark, glue_lake, tmp_path
):
    lake = glue_lake
    _, name = _create(spark, lake, "strays")
    keys, policy = _orphans_listed(spark, lake, name, tmp_path, 3, "kept")
    report = MaintenanceRunner(lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"]).run([name])
    outputs = report["tables"][0]["actions"][0]["outputs"]
    assert outputs["deleted_files"] == 3 and outputs["versioned_bucket"] == lake.bucket, outputs
    assert "noncurrent versions" in outputs["storage_not_freed"]
    left = {v["Key"] for v in _noncurrent(lake) if v["Key"] in keys}
    assert left == set(keys)  # deleted, their bytes still in the bucket, as the report says

    keys, policy = _orphans_listed(spark, lake, name, tmp_path, 2, "freed")
    policy["storage"] = {"versioned_deletes": True}
    report = MaintenanceRunner(lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"]).run([name])
    outputs = report["tables"][0]["actions"][0]["outputs"]
    assert outputs["deleted_files"] == 2 and outputs["noncurrent_versions_removed"] >= 2, outputs
    assert not {v["Key"] for v in _noncurrent(lake)} & set(keys)
    assert spark.table("%s.%s" % (lake.catalog, name)).count() == 300


def test_trash_moves_and_purges_on_a_versioned_bucket_count_in_the_storage_not_freed(spark, glue_lake, tmp_path):
    """A move into the trash deletes its source and a purge deletes the trash copy: on a versioned bucket each
    leaves a noncurrent version, and the report counts them (the move's run its moved files, the purge's run its
    purged ones); with versioned_deletes the next run frees what both left."""
    lake = glue_lake
    _, name = _create(spark, lake, "trashed")
    keys, policy = _orphans_listed(spark, lake, name, tmp_path, 3, "moved")
    policy["orphans"]["trash"] = {"enabled": True, "keep_days": 1}
    policy["orphans"]["older_than_hours"] = 120  # days later by the clocks below: still five days back from then
    moved = MaintenanceRunner(lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"]).run([name])
    outputs = moved["tables"][0]["actions"][0]["outputs"]
    assert outputs["trashed_files"] == 3 and "the 3 deleted file(s)" in outputs["storage_not_freed"], outputs
    assert {v["Key"] for v in _noncurrent(lake) if v["Key"] in keys} == set(keys)

    runner = MaintenanceRunner(
        lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"], clock=days_later(3)
    )
    action = runner.run([name])["tables"][0]["actions"][0]
    assert action["status"] == "done", (action["status"], action["reason"])
    outputs = action["outputs"]
    assert outputs["trash_purge"]["purged_files"] == 3 and outputs["candidates"] == 0, outputs
    assert outputs["listed_not_found"] == 3  # the list still names the files the first run moved
    assert "the 3 deleted file(s)" in outputs["storage_not_freed"], outputs
    trash_keys = [v["Key"] for v in _noncurrent(lake) if ".lakehouse-trash/" in v["Key"]]
    assert len(set(trash_keys)) == 3  # the purged copies, kept as versions as the report says

    keys, policy = _orphans_listed(spark, lake, name, tmp_path, 1, "freed")
    policy["orphans"]["trash"] = {"enabled": True, "keep_days": 1}
    policy["orphans"]["older_than_hours"] = 144
    policy["storage"] = {"versioned_deletes": True}
    runner = MaintenanceRunner(
        lake.config(defaults=policy), spark=spark, only=["remove_orphan_files"], clock=days_later(4)
    )
    outputs = runner.run([name])["tables"][0]["actions"][0]["outputs"]
    assert outputs["trashed_files"] == 1 and outputs["noncurrent_versions_removed"] >= 7, outputs
    assert not [v for v in _noncurrent(lake) if ".lakehouse-trash/" in v["Key"] or "/stray-" in v["Key"]]
    assert len([k for k in _keys(lake) if ".lakehouse-trash/" in k]) == 1  # the one just moved, kept a day
    assert spark.table("%s.%s" % (lake.catalog, name)).count() == 300
