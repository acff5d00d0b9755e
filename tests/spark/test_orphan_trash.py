"""Recoverable orphan removal: orphans move to the table's trash, the trash is never a candidate itself, a
window of batches is restored with one command, and batches past `keep_days` are purged."""

import glob
import json
import os
import time

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.maintenance import trash

from conftest import make_config, write_config
from helpers import assert_same_rows, maintain, snapshot_id
from table_factory import create_streaming_table, plant_orphan

pytestmark = pytest.mark.spark
TRASH = {"orphans": {"trash": {"enabled": True, "keep_days": 5}}}


def _location(spark, table):
    rows = spark.sql("DESCRIBE TABLE EXTENDED lake.%s" % table).filter("col_name = 'Location'").collect()
    return rows[0].data_type.replace("file:", "")


def _trashed(location):
    return sorted(glob.glob(os.path.join(location, ".lakehouse-trash", "*", "data", "*.parquet")))


def test_orphans_go_to_the_trash_come_back_with_restore_and_are_purged_after_keep_days(
    spark, warehouse, table_name, tmp_path
):
    create_streaming_table(spark, "lake", table_name, days=1, commits=2, rows_per_commit=20, files_per_commit=1)
    location = _location(spark, table_name)
    before = snapshot_id(spark, table_name)
    planted = [plant_orphan(location, "old-%d.parquet" % i, age_hours=100, size=1000 + i) for i in range(2)]
    young = plant_orphan(location, "young.parquet", age_hours=1)
    config = make_config(warehouse, defaults=TRASH)

    _, actions = maintain(spark, config, table_name, only=["remove_orphan_files"])
    result = actions["remove_orphan_files"]
    assert result["status"] == "done", result
    out = result["outputs"]
    assert out["trashed_files"] == 2 and out["trashed_bytes"] == 2001 and out["verified"] is True
    assert out["deleted_files"] == 0 and "moved 2 orphan file(s)" in result["reason"]
    assert not any(os.path.exists(p) for p in planted) and os.path.exists(young)
    trashed = _trashed(location)
    assert [os.path.basename(p) for p in trashed] == ["old-0.parquet", "old-1.parquet"]
    assert [os.path.getsize(p) for p in trashed] == [1000, 1001]
    assert_same_rows(spark, table_name, before)

    # The trash is hidden from Iceberg's listing: a second run finds no candidate and keeps the batch.
    _, again = maintain(spark, config, table_name, only=["remove_orphan_files"])
    assert again["remove_orphan_files"]["outputs"]["candidates"] == 0
    assert again["remove_orphan_files"]["outputs"]["trash_purge"]["purged_batches"] == []
    assert _trashed(location) == trashed

    # An inventory that lists the trash too (S3 Inventory lists every key) never makes it a candidate.
    inventory = str(tmp_path / "inventory")
    rows = [(p, "2020-01-01 00:00:00") for p in trashed]
    spark.createDataFrame(rows, "file_path string, last_modified string").write.parquet(inventory)
    listed = make_config(warehouse, defaults={"orphans": dict(TRASH["orphans"], file_list={"path": inventory})})
    _, by_list = maintain(spark, listed, table_name, only=["remove_orphan_files"])
    assert by_list["remove_orphan_files"]["status"] == "done", by_list["remove_orphan_files"]
    assert by_list["remove_orphan_files"]["outputs"]["candidates"] == 0 and _trashed(location) == trashed

    # One command puts them back, byte for byte (a dry run first moves nothing).
    path = write_config(tmp_path / "trash.yaml", warehouse, defaults=TRASH)
    base = ["--config", path, "orphans", "restore", table_name, "--since", "1h", "--json"]
    dry = CliRunner().invoke(cli, base + ["--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["files"] == 2 and _trashed(location) == trashed
    done = CliRunner().invoke(cli, base)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["restored_files"] == 2 and report["conflicts"] == 0 and report["table"] == table_name
    assert [os.path.getsize(p) for p in planted] == [1000, 1001] and _trashed(location) == []
    bad = CliRunner().invoke(cli, ["--config", path, "orphans", "restore", table_name, "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.stderr

    # Moved again; the batch is dated back (as if moved days ago: Iceberg's own listing refuses a shifted clock).
    maintain(spark, config, table_name, only=["remove_orphan_files"])
    (batch,) = os.listdir(os.path.join(location, ".lakehouse-trash"))
    batch = _date_back(location, batch, days=4)
    os.utime(young, (time.time() - 100 * 3600,) * 2)
    _, early = maintain(spark, config, table_name, only=["remove_orphan_files"])
    assert early["remove_orphan_files"]["outputs"]["trashed_files"] == 1 and not os.path.exists(young)
    assert early["remove_orphan_files"]["outputs"]["trash_purge"]["purged_batches"] == []  # 4 of 5 days
    assert len(_trashed(location)) == 3
    batch = _date_back(location, batch, days=2)
    _, late = maintain(spark, config, table_name, only=["remove_orphan_files"])
    purge = late["remove_orphan_files"]["outputs"]["trash_purge"]
    assert purge["purged_batches"] == [batch] and purge["purged_files"] == 2
    assert [os.path.basename(p) for p in _trashed(location)] == ["young.parquet"]
    assert_same_rows(spark, table_name, before)


def _date_back(location, batch, days):
    """Rename a trash batch as if it had been moved `days` earlier."""
    root = os.path.join(location, ".lakehouse-trash")
    older = trash.batch_name(trash.batch_time_ms(batch) - int(days * 24 * 3600 * 1000))
    os.rename(os.path.join(root, batch), os.path.join(root, older))
    return older
