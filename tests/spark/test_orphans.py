"""Orphan cleanup: deletes old orphans, keeps new ones, never leaves the table location, obeys the budget."""

import os

import pytest

from lakehouse_ops.engine.tables import jvm_table
from lakehouse_ops.errors import SafetyError
from lakehouse_ops.maintenance import orphan_lists, orphans
from lakehouse_ops.units import now_ms

from conftest import make_config
from helpers import CATALOG, assert_same_rows, maintain, snapshot_id
from table_factory import create_streaming_table, plant_orphan

pytestmark = pytest.mark.spark


@pytest.fixture
def small_table(spark, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=2, rows_per_commit=20, files_per_commit=1)
    location = (
        spark.sql("DESCRIBE TABLE EXTENDED lake.%s" % table_name).filter("col_name = 'Location'").collect()[0].data_type
    )
    return table_name, location.replace("file:", "")


@pytest.mark.fast
def test_deletes_old_orphan_keeps_new_one_and_files_outside(spark, warehouse, small_table):
    table, location = small_table
    old = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    new = plant_orphan(location, "new-orphan.parquet", age_hours=1)
    # A sibling directory whose name starts like the table's: outside the table location all the same.
    outside_dir = location + "_backup"
    outside = plant_orphan(outside_dir, "outside.parquet", age_hours=500)
    before = snapshot_id(spark, table)
    config = make_config(warehouse, defaults={"orphans": {"older_than_hours": 72}})
    _, actions = maintain(spark, config, table, only=["remove_orphan_files"])
    result = actions["remove_orphan_files"]
    assert result["status"] == "done", result
    assert result["outputs"]["deleted_files"] == 1 and result["outputs"]["verified"] is True
    assert result["outputs"]["deleted_bytes"] == 4096
    assert not os.path.exists(old)
    assert os.path.exists(new) and os.path.exists(outside)
    assert_same_rows(spark, table, before)


def test_budget_stops_before_deleting_anything(spark, warehouse, small_table):
    table, location = small_table
    planted = [plant_orphan(location, "old-%d.parquet" % i, age_hours=100) for i in range(3)]
    config = make_config(warehouse, defaults={"orphans": {"max_files": 2}})
    entry, actions = maintain(spark, config, table, only=["remove_orphan_files"])
    result = actions["remove_orphan_files"]
    assert result["status"] == "failed"
    assert "3 orphan candidates exceed the budget of 2 files; nothing deleted" in result["reason"]
    assert all(os.path.exists(p) for p in planted)
    assert entry["ok"] is False

    by_bytes = make_config(warehouse, defaults={"orphans": {"max_bytes": 10000}})
    _, actions = maintain(spark, by_bytes, table, only=["remove_orphan_files"])
    assert "over the budget of 9.8 KiB; nothing deleted" in actions["remove_orphan_files"]["reason"]
    assert all(os.path.exists(p) for p in planted)


def test_dry_run_policy_lists_and_keeps(spark, warehouse, small_table):
    table, location = small_table
    old = plant_orphan(location, "old.parquet", age_hours=100)
    config = make_config(warehouse, defaults={"orphans": {"dry_run": True}})
    _, actions = maintain(spark, config, table, only=["remove_orphan_files"])
    outputs = actions["remove_orphan_files"]["outputs"]
    assert outputs["candidates"] == 1 and outputs["deleted_files"] == 0 and outputs["dry_run"] is True
    assert outputs["candidate_sample"][0].endswith("old.parquet")
    assert os.path.exists(old)


@pytest.mark.parametrize("spelling", ["bare", "file:", "file://"])
def test_external_file_list_limits_what_is_considered(spark, warehouse, small_table, tmp_path, spelling):
    """The listing may spell paths otherwise than the table location (Iceberg spells local paths `file:/...`):
    they match all the same."""
    table, location = small_table
    listed = plant_orphan(location, "listed.parquet", age_hours=100)
    unlisted = plant_orphan(location, "unlisted.parquet", age_hours=100)
    # An inventory-style listing: every live file plus only one of the two orphans.
    live = [r.file_path for r in spark.sql("SELECT file_path FROM lake.%s.all_files" % table).collect()]
    live += [r.path for r in spark.sql("SELECT path FROM lake.%s.all_manifests" % table).collect()]
    prefix = "" if spelling == "bare" else spelling
    rows = [(prefix + p.replace("file:", ""), "2020-01-01 00:00:00") for p in live + [listed]]
    inventory = str(tmp_path / "inventory")
    spark.createDataFrame(rows, "key string, modified string").write.parquet(inventory)
    config = make_config(
        warehouse,
        defaults={
            "orphans": {
                "file_list": {
                    "path": inventory,
                    "format": "parquet",
                    "file_path_column": "key",
                    "last_modified_column": "modified",
                }
            }
        },
    )
    _, actions = maintain(spark, config, table, only=["remove_orphan_files"])
    assert actions["remove_orphan_files"]["status"] == "done", actions["remove_orphan_files"]
    assert actions["remove_orphan_files"]["outputs"]["deleted_files"] == 1
    assert not os.path.exists(listed) and os.path.exists(unlisted)


def test_a_listed_path_with_a_double_slash_or_dot_segment_never_reaches_the_file_it_tidies_to(
    spark, warehouse, small_table, tmp_path
):
    """A list names `data//young.parquet` (and `data/./young.parquet`) as old: tidied, those spell the key of a
    file written a minute ago and unreferenced (a writer's uncommitted file). Such listed paths are never taken,
    so the young file is never deleted on the list's word for another key."""
    table, location = small_table
    young = plant_orphan(location, "young.parquet", age_hours=0)
    data = os.path.dirname(young)
    rows = [(data + "//young.parquet", "2020-01-01 00:00:00"), (data + "/./young.parquet", "2020-01-01 00:00:00")]
    inventory = str(tmp_path / "aliases")
    spark.createDataFrame(rows, "key string, modified string").write.parquet(inventory)
    source = {"path": inventory, "format": "parquet", "file_path_column": "key", "last_modified_column": "modified"}
    config = make_config(warehouse, defaults={"orphans": {"file_list": source}})
    _, actions = maintain(spark, config, table, only=["remove_orphan_files"])
    assert actions["remove_orphan_files"]["status"] in ("done", "skipped"), actions["remove_orphan_files"]
    assert os.path.exists(young)


def test_refuses_under_24_hours_even_if_policy_validation_was_bypassed(spark, warehouse, small_table):
    table, location = small_table
    young = plant_orphan(location, "young.parquet", age_hours=2)
    policy = make_config(warehouse).policy_for(table)
    bypassed = policy.model_copy(update={"orphans": policy.orphans.model_copy(update={"older_than_hours": 1})})
    from helpers import health

    # The floor lives in the plan's parameters: no plan with a younger cut-off can be made, so none can run.
    with pytest.raises(SafetyError, match="younger than 24 h"):
        orphans.plan(bypassed, health(make_config(warehouse), table), now_ms())
    assert os.path.exists(young)


def test_a_commit_after_the_dry_run_makes_iceberg_check_the_candidates_again(spark, warehouse, table_name, monkeypatch):
    """Without a commit since the dry run, the checked candidates go in one bulk delete through the table's FileIO;
    a writer committing between the dry run and the delete (here: it adopts an old file the dry run took for an
    orphan) sends them through remove_orphan_files again, which keeps the newly referenced file."""
    t = "lake." + table_name
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.%s" % table_name.split(".")[0])
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % t)
    spark.range(0, 50).writeTo(t).append()
    location = spark.sql("DESCRIBE TABLE EXTENDED %s" % t).filter("col_name = 'Location'").collect()[0].data_type
    location = location.replace("file:", "")
    config = make_config(warehouse, defaults={"orphans": {"older_than_hours": 72}})
    quiet = plant_orphan(location, "quiet-orphan.parquet", age_hours=100)
    _, actions = maintain(spark, config, table_name, only=["remove_orphan_files"])
    outputs = actions["remove_orphan_files"]["outputs"]
    assert outputs["deleted_with"].startswith("the table's FileIO") and outputs["verified"] is True
    assert outputs["deleted_files"] == 1 and not os.path.exists(quiet)

    stale = plant_orphan(location, "stale-orphan.parquet", age_hours=100)
    adopted_dir = os.path.join(location, "data", "adopted")
    spark.range(100, 110).coalesce(1).write.parquet("file://" + adopted_dir)
    adopted = [os.path.join(adopted_dir, n) for n in os.listdir(adopted_dir) if n.endswith(".parquet")]
    for name in os.listdir(adopted_dir):  # Spark's _SUCCESS and checksums: not part of the story
        if not name.endswith(".parquet"):
            os.remove(os.path.join(adopted_dir, name))
    old = os.path.getmtime(stale)
    os.utime(adopted[0], (old, old))
    real_call = orphan_lists.call  # the dry run lists through it

    def dry_run_then_commit(spark_, catalog, procedure, args, optional=()):
        rows = real_call(spark_, catalog, procedure, args, optional)
        if args.get("dry_run"):  # a writer appends the old file, spelled like the table's other files
            jvm, table = spark._jvm, jvm_table(spark, "lake", table_name)
            data_file = (
                jvm.org.apache.iceberg.DataFiles.builder(table.spec())
                .withPath(adopted[0])
                .withFileSizeInBytes(os.path.getsize(adopted[0]))
                .withRecordCount(10)
                .withFormat("parquet")
                .build()
            )
            table.newAppend().appendFile(data_file).commit()
        return rows

    monkeypatch.setattr(orphan_lists, "call", dry_run_then_commit)
    _, actions = maintain(spark, config, table_name, only=["remove_orphan_files"])
    result = actions["remove_orphan_files"]
    assert result["status"] == "done", result
    assert result["outputs"]["candidates"] == 2  # the adopted file looked like an orphan to the dry run
    assert result["outputs"]["deleted_with"].startswith("remove_orphan_files on the checked list")
    assert result["outputs"]["verified"] is True
    assert os.path.exists(adopted[0]) and not os.path.exists(stale)
    assert spark.table(t).count() == 60  # the adopted rows are readable: their file was kept
