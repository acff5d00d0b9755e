"""The production stack: Iceberg's GlueCatalog and S3FileIO over moto's S3 and Glue (a versioned bucket), with
every maintenance action a policy can turn on, as a scheduled run does them."""

import pytest

from lakehouse_ops.runner import MaintenanceRunner

from helpers import days_later

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
