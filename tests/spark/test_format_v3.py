"""Format v3 tables (Iceberg 1.10): health, compaction and expiry with deletion vectors, row lineage kept."""

import pytest

from conftest import make_config
from helpers import CATALOG, days_later, health, maintain, ref

pytestmark = pytest.mark.spark


def test_v3_table_with_deletion_vectors_is_compacted_with_its_row_lineage_and_expired(spark, warehouse, table_name):
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (CATALOG, table_name.split(".")[0]))
    spark.sql(
        "CREATE TABLE %s (id BIGINT, v STRING, d DATE) USING iceberg PARTITIONED BY (d) TBLPROPERTIES "
        "('format-version'='3', 'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read')"
        % ref(table_name)
    )
    for i in range(6):
        spark.sql(
            "INSERT INTO %s SELECT id, 'x', DATE '2024-05-01' + CAST(id %% 2 AS INT) FROM range(%d, %d)"
            % (ref(table_name), i * 100, i * 100 + 100)
        )
    spark.sql("DELETE FROM %s WHERE id %% 10 = 0" % ref(table_name))
    spark.sql("UPDATE %s SET v = 'y' WHERE id %% 10 = 1" % ref(table_name))
    lineage = {r.id: (r._row_id, r.v) for r in spark.sql("SELECT id, v, _row_id FROM %s" % ref(table_name)).collect()}
    formats = {r.file_format for r in spark.sql("SELECT file_format FROM %s.delete_files" % ref(table_name)).collect()}
    assert formats == {"PUFFIN"}  # deletion vectors

    config = make_config(
        warehouse,
        defaults={
            "target_file_size": "8MB",
            "compaction": {"min_input_files": 2, "delete_file_threshold": 1},
            "position_deletes": {"min_delete_files": 1},
            "snapshots": {"max_age_days": 1, "retain_last": 1},
        },
    )
    h = health(config, table_name)
    assert h.format_version == 3 and h.position_delete_files >= 2 and h.records >= 600
    _, dry = maintain(spark, config, table_name, dry_run=True)
    assert dry["rewrite_position_deletes"]["status"] == "skipped" and "v3" in dry["rewrite_position_deletes"]["reason"]
    assert dry["compaction"]["status"] == "planned"

    _, actions = maintain(spark, config, table_name, only=["compaction"])
    assert actions["compaction"]["status"] == "done", actions["compaction"]["reason"]
    assert actions["compaction"]["outputs"]["verification"]["verified"] is True
    after = {r.id: (r._row_id, r.v) for r in spark.sql("SELECT id, v, _row_id FROM %s" % ref(table_name)).collect()}
    assert after == lineage  # every row kept, with its row id
    assert spark.sql("SELECT count(*) FROM %s.delete_files" % ref(table_name)).collect()[0][0] == 0

    _, expired = maintain(spark, config, table_name, only=["expire_snapshots"], clock=days_later(3))
    assert expired["expire_snapshots"]["status"] == "done", expired["expire_snapshots"]["reason"]
    assert spark.sql("SELECT count(*) FROM %s.snapshots" % ref(table_name)).collect()[0][0] == 1
    final = {r.id: (r._row_id, r.v) for r in spark.sql("SELECT id, v, _row_id FROM %s" % ref(table_name)).collect()}
    assert final == lineage


def test_v3_manifests_are_left_alone_and_a_rewrite_that_changes_row_ids_is_rolled_back(spark, warehouse, table_name):
    from lakehouse_ops.errors import VerificationError
    from lakehouse_ops.maintenance.verify import verify_rewrites

    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (CATALOG, table_name.split(".")[0]))
    spark.sql(
        "CREATE TABLE %s (id BIGINT, v STRING) USING iceberg TBLPROPERTIES ('format-version'='3')" % ref(table_name)
    )
    for i in range(12):
        spark.sql("INSERT INTO %s VALUES (%d, 'x')" % (ref(table_name), i))
    lineage = {r.id: r._row_id for r in spark.sql("SELECT id, _row_id FROM %s" % ref(table_name)).collect()}
    config = make_config(warehouse, defaults={"manifests": {"max_manifests": 2}})
    _, actions = maintain(spark, config, table_name, only=["rewrite_manifests"])
    assert actions["rewrite_manifests"]["status"] == "skipped"
    assert "_row_id" in actions["rewrite_manifests"]["reason"]
    assert {r.id: r._row_id for r in spark.sql("SELECT id, _row_id FROM %s" % ref(table_name)).collect()} == lineage

    # The same rows written again get new row ids: a rewrite that does that is caught and undone.
    start = spark.sql("SELECT snapshot_id FROM %s.snapshots ORDER BY committed_at DESC LIMIT 1" % ref(table_name))
    start_id = start.collect()[0][0]
    spark.sql("INSERT OVERWRITE %s SELECT id, v FROM %s" % (ref(table_name), ref(table_name)))
    bad = spark.sql("SELECT snapshot_id FROM %s.snapshots ORDER BY committed_at DESC LIMIT 1" % ref(table_name))
    bad_id = bad.collect()[0][0]
    with pytest.raises(VerificationError, match="rolled back"):
        verify_rewrites(spark, CATALOG, table_name, start_id, is_rewrite=lambda s: s.snapshot_id == bad_id)
    assert {r.id: r._row_id for r in spark.sql("SELECT id, _row_id FROM %s" % ref(table_name)).collect()} == lineage
