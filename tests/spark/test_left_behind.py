"""Actions that can half-succeed say so: a position-delete rewrite that leaves partitions behind is completed by
another round (or is `partial`); an orphan or an expired file whose delete fails on storage makes the action
`partial` (and the run not ok) instead of `done`.

Deletes are made to fail for real: the file is made immutable (`chattr +i`), so the storage refuses Iceberg's
delete even to root; the flag is cleared before the test ends."""

import contextlib
import os
import subprocess

import pytest

from lakehouse_ops.maintenance import position_deletes

from conftest import make_config
from helpers import CATALOG, assert_same_rows, days_later, health, maintain, ref, snapshot_id
from table_factory import create_streaming_table, plant_orphan

pytestmark = pytest.mark.spark


@contextlib.contextmanager
def undeletable(*paths):
    """Storage refuses to delete `paths` inside the block."""
    subprocess.run(["chattr", "+i"] + list(paths), check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i"] + list(paths), check=True)


def _location(spark, table_name):
    described = spark.sql("DESCRIBE TABLE EXTENDED %s" % ref(table_name)).filter("col_name = 'Location'").collect()
    return described[0].data_type.replace("file:", "")


def _deletes_in_three_partitions(spark, table_name, deletes=6):
    """Three partitions with `deletes` partition-scoped position delete files each."""
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % ref(table_name.split(".")[0]))
    spark.sql(
        "CREATE TABLE %s (id BIGINT, p INT) USING iceberg PARTITIONED BY (p) TBLPROPERTIES ('format-version'='2', "
        "'write.delete.mode'='merge-on-read', 'write.delete.granularity'='partition')" % ref(table_name)
    )
    spark.range(0, 900, 1, 3).selectExpr("id", "CAST(id % 3 AS INT) p").writeTo(ref(table_name)).append()
    for i in range(deletes):  # each DELETE adds one delete file to each partition
        spark.sql("DELETE FROM %s WHERE id IN (%d, %d, %d)" % (ref(table_name), 3 * i, 3 * i + 1, 3 * i + 2))


def _first_rewrite_reaches_one_partition(monkeypatch, config, table_name):
    """The first rewrite commits only the first planned partition's delete files, as if the other groups' commits
    had failed; later rounds run as they are. Returns the plans executed."""
    real = position_deletes.execute
    filters = {p.partition: p.filter for p in health(config, table_name).partitions}
    plans = []

    def execute(spark, catalog, table, plan):
        plans.append(plan)
        if len(plans) == 1:
            params = position_deletes.PositionDeleteParams(
                options=plan.params.options, where=filters[plan.partitions[0]]
            )
            plan = position_deletes.Plan(plan.action, True, plan.reason, params, plan.partitions)
        return real(spark, catalog, table, plan)

    monkeypatch.setattr(position_deletes, "execute", execute)
    return plans


def _delete_policy(retries):
    return {"position_deletes": {"min_delete_files": 10}, "commits": {"retries": retries, "backoff_seconds": 0.1}}


def test_position_deletes_left_behind_are_rewritten_by_another_round(spark, warehouse, table_name, monkeypatch):
    _deletes_in_three_partitions(spark, table_name)
    before = snapshot_id(spark, table_name)
    config = make_config(warehouse, defaults=_delete_policy(retries=2))
    plans = _first_rewrite_reaches_one_partition(monkeypatch, config, table_name)
    entry, actions = maintain(spark, config, table_name, only=["rewrite_position_deletes"])
    result = actions["rewrite_position_deletes"]
    assert result["status"] == "done" and entry["ok"], result
    rounds = result["outputs"]["completion_rounds"]
    assert len(plans) == 2 and len(rounds) == 1 and len(rounds[0]["partitions"]) == 2
    assert plans[1].params.where is not None  # the second round rewrites only the partitions left behind
    assert result["outputs"]["rewritten_delete_files_count"] == 18  # 6 in the first round, 12 in the second
    assert entry["after"]["position_delete_files"] == 3  # one per partition
    assert_same_rows(spark, table_name, before)


def test_position_deletes_not_achieved_are_partial(spark, warehouse, table_name, monkeypatch):
    _deletes_in_three_partitions(spark, table_name)
    config = make_config(warehouse, defaults=_delete_policy(retries=0))
    _first_rewrite_reaches_one_partition(monkeypatch, config, table_name)
    entry, actions = maintain(spark, config, table_name, only=["rewrite_position_deletes"])
    result = actions["rewrite_position_deletes"]
    assert result["status"] == "partial" and entry["ok"] is False, result
    left = result["outputs"]["left_behind"]
    assert len(left["partitions"]) == 2 and "12 position delete file(s) in 2 planned partition(s)" in left["reason"]
    assert result["outputs"]["rewritten_delete_files_count"] == 6  # what was committed stays committed


def test_orphan_that_storage_refuses_to_delete_is_left_behind(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=2, rows_per_commit=20, files_per_commit=1)
    location = _location(spark, table_name)
    stuck = plant_orphan(location, "stuck-orphan.parquet", age_hours=100)
    gone = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    config = make_config(warehouse)
    with undeletable(stuck):
        entry, actions = maintain(spark, config, table_name, only=["remove_orphan_files"])
    result = actions["remove_orphan_files"]
    assert result["status"] == "partial" and entry["ok"] is False, result
    outputs = result["outputs"]
    assert outputs["deleted_files"] == 1 and outputs["verified"] is False
    assert outputs["left_behind"]["files"] == 1 and outputs["left_behind"]["sample"][0].endswith("stuck-orphan.parquet")
    assert result["reason"].startswith("plan not achieved: 1 of 2 orphan file(s) are still on storage")
    assert os.path.exists(stuck) and not os.path.exists(gone)

    entry, actions = maintain(spark, config, table_name, only=["remove_orphan_files"])  # the next run takes it
    assert actions["remove_orphan_files"]["status"] == "done" and not os.path.exists(stuck)


def test_expired_file_that_storage_refuses_to_delete_is_left_behind(spark, warehouse, table_name):
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % ref(table_name.split(".")[0]))
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg TBLPROPERTIES ('format-version'='2')" % ref(table_name))
    spark.range(0, 100, 1, 2).writeTo(ref(table_name)).append()
    first = [r.file_path for r in spark.sql("SELECT file_path FROM %s.files" % ref(table_name)).collect()]
    spark.range(100, 200, 1, 1).writeTo(ref(table_name)).overwritePartitions()  # first files: unreferenced soon
    config = make_config(warehouse, defaults={"snapshots": {"max_age_days": 1, "retain_last": 1}})
    stuck = first[0].replace("file:", "")
    with undeletable(stuck):
        entry, actions = maintain(spark, config, table_name, only=["expire_snapshots"], clock=days_later(3))
    result = actions["expire_snapshots"]
    assert result["status"] == "partial" and entry["ok"] is False, result
    left = result["outputs"]["left_behind"]
    # The local file system refuses the delete without an error: Iceberg counts the file deleted, the check on
    # storage finds it.
    assert left["files"] == 1 and [p.replace("file:", "") for p in left["sample"]] == [stuck], left
    assert os.path.exists(stuck) and all(not os.path.exists(p.replace("file:", "")) for p in first[1:])
    assert spark.table(ref(table_name)).count() == 100
