"""Delete-file debt on merge-on-read tables: health counts position, equality and dangling delete files per
partition; compaction converts equality deletes by rewriting the data they apply to; dangling deletes are removed
by a metadata-only commit; rows stay the same throughout, also with upserts committing meanwhile."""

import random
import threading

import pytest

from conftest import make_config
from delete_files import commit_equality_deletes
from helpers import CATALOG, assert_same_rows, health, maintain, ref, snapshot_id

pytestmark = pytest.mark.spark
MOR = (
    "'format-version' = '2', 'write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read', "
    "'write.merge.mode' = 'merge-on-read'"
)


def _create(spark, table, commits=4, per_commit=25):
    spark.sql(
        "CREATE TABLE %s (id int, region string, v string) USING iceberg PARTITIONED BY (region) TBLPROPERTIES (%s)"
        % (ref(table), MOR)
    )
    for region, base in (("a", 0), ("b", 100)):
        for c in range(commits):
            start = base + c * per_commit
            spark.range(start, start + per_commit).selectExpr(
                "CAST(id AS INT) AS id", "'%s' AS region" % region, "'0' AS v"
            ).coalesce(1).writeTo(ref(table)).append()


def _part(h, name):
    return next(p for p in h.partitions if p.partition == name)


def test_equality_deletes_are_converted_and_dangling_deletes_removed(spark, warehouse, table_name):
    _create(spark, table_name)
    commit_equality_deletes(spark, CATALOG, table_name, "id", range(0, 40), {"region": "a"})
    spark.sql("DELETE FROM %s WHERE id IN (100, 101)" % ref(table_name))  # position deletes in b
    expected = snapshot_id(spark, table_name)
    assert spark.table(ref(table_name)).count() == 158
    config = make_config(warehouse, defaults={"compaction": {"min_input_files": 100}})
    h = health(config, table_name)
    a, b = _part(h, "region=a"), _part(h, "region=b")
    assert (a.equality_delete_files, a.position_delete_files, a.delete_records) == (1, 0, 40)
    assert (b.equality_delete_files, b.position_delete_files, b.delete_records) == (0, 1, 2)
    assert h.equality_delete_files == 1 and h.dangling_delete_files == 0

    # 40 % of region a is deleted by key: its data is rewritten with the deletes applied, the equality delete
    # file is dropped in the same commit; region b (2 %) is left alone.
    _, actions = maintain(spark, config, table_name, only=["compaction"])
    result = actions["compaction"]
    assert result["status"] == "done", result
    assert "deletes name 40% of its 100 rows" in result["reason"] and "region=b" not in result["reason"]
    assert result["outputs"]["verification"]["verified"] is True
    assert_same_rows(spark, table_name, expected)
    after = health(config, table_name)
    assert _part(after, "region=a").delete_files == 0 and _part(after, "region=a").data_files == 1
    assert _part(after, "region=b").position_delete_files == 1

    # Region b rewritten by a policy that keeps dangling deletes: its position delete now applies to nothing.
    keeping = make_config(
        warehouse, defaults={"compaction": {"delete_file_threshold": 1, "remove_dangling_deletes": False}}
    )
    _, actions = maintain(spark, keeping, table_name, only=["compaction"])
    assert actions["compaction"]["status"] == "done", actions["compaction"]
    stale = health(config, table_name)
    assert _part(stale, "region=b").dangling_delete_files == 1 and stale.dangling_delete_files == 1

    # The metadata-only removal, verified row for row.
    _, actions = maintain(spark, config, table_name, only=["remove_dangling_deletes"])
    result = actions["remove_dangling_deletes"]
    assert result["status"] == "done", result
    assert result["outputs"]["removed_delete_files"] == 1 and result["outputs"]["verification"]["verified"]
    assert health(config, table_name).delete_files == 0
    assert_same_rows(spark, table_name, expected)
    _, again = maintain(spark, config, table_name, only=["remove_dangling_deletes"])
    assert again["remove_dangling_deletes"]["status"] == "skipped"


def test_compaction_and_dangling_removal_keep_every_upsert_committed_meanwhile(spark, warehouse, table_name):
    """Upserts (MERGE INTO, merge-on-read: position deletes plus new rows) keep committing while compaction
    rewrites the files their deletes point to; afterwards every key holds the value of its last committed upsert."""
    _create(spark, table_name, commits=6, per_commit=10)
    commit_equality_deletes(spark, CATALOG, table_name, "id", range(0, 5), {"region": "a"})
    model = {i: "0" for i in list(range(5, 60)) + list(range(100, 160))}
    stop, errors, merges = threading.Event(), [], []
    rng = random.Random(7)

    def upserts():
        round_ = 0
        while not stop.is_set() and round_ < 40:
            round_ += 1
            keys = rng.sample(sorted(model), 8) + [1000 + round_]  # updates and one insert
            rows = ", ".join("(%d, '%s', '%d')" % (k, "a" if k < 100 else "b", round_) for k in keys)
            for attempt in range(10):
                try:
                    spark.sql(
                        "MERGE INTO %s t USING (SELECT * FROM VALUES %s AS s(id, region, v)) s ON t.id = s.id "
                        "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *" % (ref(table_name), rows)
                    )
                    break
                except Exception as exc:  # a conflict with the rewrite: Iceberg refused the commit; try again
                    if attempt == 9:
                        errors.append(str(exc)[:500])
                        return
            for k in keys:
                model[k] = str(round_)
            merges.append(round_)

    writer = threading.Thread(target=upserts)
    writer.start()
    try:
        while len(merges) < 3 and writer.is_alive():
            stop.wait(0.5)
        config = make_config(warehouse, defaults={"compaction": {"min_input_files": 2, "delete_file_threshold": 1}})
        for _ in range(2):
            _, actions = maintain(spark, config, table_name, only=["compaction", "remove_dangling_deletes"])
            assert actions["compaction"]["status"] in ("done", "partial", "skipped"), actions["compaction"]
            assert actions["compaction"].get("outputs", {}).get("verification", {"verified": True})["verified"]
    finally:
        stop.set()
        writer.join(timeout=600)
    assert not errors, errors
    assert len(merges) >= 4
    spark.sql("REFRESH TABLE %s" % ref(table_name))
    got = {r.id: r.v for r in spark.table(ref(table_name)).collect()}
    assert got == model
