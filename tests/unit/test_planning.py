"""Planning is pure: policy + health -> plan. No Spark here."""

import dataclasses

import pytest

from lakehouse_ops import paths
from lakehouse_ops.config import config_from_dict
from lakehouse_ops.engine.procedures import procedure_sql
from lakehouse_ops.errors import SafetyError
from lakehouse_ops.health.scan import PartitionHealth, TableHealth
from lakehouse_ops.maintenance import compaction, manifests, orphans, plan_all, position_deletes, properties, snapshots
from lakehouse_ops.maintenance.verify import Snapshot, rewrite_runs
from lakehouse_ops.sqltext import Timestamp
from lakehouse_ops.units import iso_utc

NOW = 1_800_000_000_000
HOUR = 3600 * 1000
MB = 1024 * 1024


def policy(**defaults):
    return config_from_dict({"catalog": {"type": "hadoop", "warehouse": "/tmp/wh"}, "defaults": defaults}).policy_for(
        "db.t"
    )


def part(name, files, small, deletes=0, hours_ago=48, day=None, compacted=0):
    return PartitionHealth(
        partition=name,
        data_files=files,
        data_bytes=files * MB,
        small_files=small,
        small_bytes=small * MB,
        new_small_files=small - compacted,
        records=files * 10,
        delete_files=deletes,
        last_updated_ms=NOW - hours_ago * HOUR,
        filter=None if day is None else "(`ts` >= DATE '%s')" % day,
    )


def health(parts, **kw):
    values = dict(
        table="db.t",
        location="/tmp/wh/db/t",
        format_version=2,
        snapshot_id=1,
        data_files=sum(p.data_files for p in parts),
        data_bytes=sum(p.data_bytes for p in parts),
        small_files=sum(p.small_files for p in parts),
        small_bytes=sum(p.small_bytes for p in parts),
        snapshots=3,
        oldest_snapshot_age_hours=1.0,
        manifests=3,
        small_manifests=3,
        partitions=parts,
    )
    values.update(kw)
    return TableHealth(**values)


def test_compaction_selects_only_partitions_over_thresholds():
    h = health(
        [
            part("d=1", 20, 18, day="2024-05-01"),
            part("d=2", 3, 3, day="2024-05-02"),
            part("d=3", 10, 1, day="2024-05-03"),
        ]
    )
    plan = compaction.plan(policy(), h, NOW)
    assert plan.run and plan.partitions == ("d=1",)
    assert plan.params.where == "(`ts` >= DATE '2024-05-01')"
    assert plan.params.strategy == "binpack"
    assert plan.estimated_bytes == 18 * MB
    assert plan.params.options["min-input-files"] == "5"
    assert plan.params.options["target-file-size-bytes"] == str(512 * MB)
    assert "18 of 20 files small" in plan.reason


def test_compaction_skips_recent_partitions():
    p = policy(compaction={"skip_recent_hours": 6})
    h = health([part("d=1", 20, 20, day="2024-05-01"), part("d=2", 20, 20, hours_ago=1, day="2024-05-02")])
    plan = compaction.plan(p, h, NOW)
    assert plan.partitions == ("d=1",) and "1 recently written partition(s) left alone" in plan.reason
    only_recent = compaction.plan(p, health([part("d=2", 20, 20, hours_ago=1, day="x")]), NOW)
    assert not only_recent.run and "written within 6" in only_recent.reason


def test_compaction_limited_to_recently_written_partitions():
    p = policy(compaction={"only_written_within_hours": 3})
    h = health(
        [part("d=1", 20, 20, hours_ago=30, day="2024-05-01"), part("d=2", 20, 20, hours_ago=1, day="2024-05-02")]
    )
    plan = compaction.plan(p, h, NOW)
    assert plan.partitions == ("d=2",) and plan.params.where == "(`ts` >= DATE '2024-05-02')"
    assert "only partitions written within 3h (1 older ones left)" in plan.reason
    none = compaction.plan(p, health([part("d=1", 20, 20, hours_ago=30, day="2024-05-01")]), NOW)
    assert not none.run and "not written within the last 3h" in none.reason


def test_compaction_whole_table_has_no_where_and_policy_where_is_anded():
    h = health([part("d=1", 20, 20, day="2024-05-01"), part("d=2", 20, 20, day="2024-05-02")])
    assert compaction.plan(policy(), h, NOW).params.where is None
    p = policy(compaction={"where": "status = 200"})
    assert compaction.plan(p, h, NOW).params.where == "status = 200"
    partial = health([part("d=1", 20, 20, day="2024-05-01"), part("d=2", 2, 0, day="2024-05-02")])
    assert compaction.plan(p, partial, NOW).params.where == "(status = 200) AND ((`ts` >= DATE '2024-05-01'))"


def test_compaction_delete_heavy_partition_qualifies():
    h = health([part("d=1", 2, 0, deletes=12, day="2024-05-01"), part("d=2", 2, 0, day="2024-05-02")])
    plan = compaction.plan(policy(), h, NOW)
    assert plan.partitions == ("d=1",) and "12 delete files" in plan.reason


def test_compaction_strategies():
    h = health([part("d=1", 20, 20, day="a")], sort_order=["ts ASC NULLS FIRST"])
    sort_policy = policy(compaction={"strategy": "sort", "sort_order": ["ts ASC", "customer_id"]})
    assert compaction.plan(sort_policy, h, NOW).params.sort_order == "ts ASC, customer_id"
    table_order = compaction.plan(policy(compaction={"strategy": "sort"}), h, NOW)
    assert table_order.params.strategy == "sort" and table_order.params.sort_order is None
    assert table_order.estimated_bytes == 20 * MB  # sort rewrites whole partitions
    no_order = compaction.plan(policy(compaction={"strategy": "sort"}), health([part("d=1", 20, 20, day="a")]), NOW)
    assert no_order.params.strategy == "binpack" and "neither the policy nor the table" in no_order.reason
    z = compaction.plan(policy(compaction={"strategy": "zorder", "zorder_columns": ["a", "b"]}), h, NOW)
    assert z.params.sort_order == "zorder(a,b)"


def test_small_files_left_by_an_earlier_compaction_do_not_requalify():
    settled = health([part("d=1", 15, 15, compacted=15, day="a")])
    assert not compaction.plan(policy(), settled, NOW).run
    fresh = health([part("d=1", 21, 21, compacted=15, day="a")])
    assert compaction.plan(policy(), fresh, NOW).run


def test_compaction_not_needed_and_disabled():
    h = health([part("d=1", 4, 4, day="a")])
    assert "no partition crosses" in compaction.plan(policy(), h, NOW).reason
    assert "disabled" in compaction.plan(policy(compaction={"enabled": False}), h, NOW).reason


def test_unexpressible_partitions_with_recent_ones_are_not_guessed():
    p = policy(compaction={"skip_recent_hours": 6})
    h = health([part("b=1", 20, 20), part("b=2", 20, 20, hours_ago=1)])
    plan = compaction.plan(p, h, NOW)
    assert not plan.run and "cannot be selected by a filter" in plan.reason


def test_manifests_plan():
    assert manifests.plan(policy(), health([], manifests=150, small_manifests=0), NOW).run
    ratio = manifests.plan(policy(), health([], manifests=20, small_manifests=15), NOW)
    assert ratio.run and "15 of 20" in ratio.reason
    assert not manifests.plan(policy(), health([], manifests=5, small_manifests=5), NOW).run
    v3 = manifests.plan(policy(), health([], format_version=3, manifests=150, small_manifests=0), NOW)
    assert not v3.run and "apache/iceberg#16699" in v3.reason  # Iceberg would change every _row_id


def test_position_deletes_plan():
    assert position_deletes.plan(policy(), health([], position_delete_files=12), NOW).run
    assert not position_deletes.plan(policy(), health([], position_delete_files=3), NOW).run
    assert not position_deletes.plan(policy(), health([], format_version=1, position_delete_files=30), NOW).run


def test_snapshots_plan():
    p = policy(snapshots={"max_age_days": 7, "retain_last": 2})
    old = snapshots.plan(p, health([], snapshots=40, oldest_snapshot_age_hours=24 * 9), NOW)
    assert old.run and old.params.older_than_ms == NOW - 7 * 24 * HOUR
    assert old.to_dict()["params"]["older_than"] == iso_utc(NOW - 7 * 24 * HOUR)  # reports show instants as text
    assert old.params.retain_last == 2
    assert not snapshots.plan(p, health([], snapshots=40, oldest_snapshot_age_hours=24), NOW).run
    assert not snapshots.plan(p, health([], snapshots=2, oldest_snapshot_age_hours=24 * 30), NOW).run
    no_gc = snapshots.plan(
        p, health([], snapshots=40, oldest_snapshot_age_hours=24 * 9, properties={"gc.enabled": "false"}), NOW
    )
    assert not no_gc.run and "gc.enabled=false" in no_gc.reason


def test_orphans_plan_and_guards():
    plan = orphans.plan(policy(orphans={"older_than_hours": 48, "max_files": 7}), health([]), NOW)
    assert plan.params.older_than_ms == NOW - 48 * HOUR
    assert plan.params.location == "/tmp/wh/db/t" and plan.params.max_files == 7
    # The floor holds for any plan, however it is made: a younger cut-off cannot even be represented.
    with pytest.raises(SafetyError, match="younger than 24 h"):
        dataclasses.replace(plan.params, older_than_ms=NOW - 2 * HOUR)
    with pytest.raises(SafetyError, match="younger than 24 h"):
        orphans.OrphanParams(
            older_than_ms=NOW - 23 * HOUR, now_ms=NOW, location="/x", dry_run=True, max_files=1, max_bytes=1
        )


def test_orphan_path_scope():
    assert paths.within("file:/tmp/wh/db/t/data/x.parquet", "/tmp/wh/db/t")
    assert paths.within("file:///tmp/wh/db/t/data/x.parquet", "/tmp/wh/db/t")
    assert paths.within("s3a://b/wh/db/t/data/x", "s3://b/wh/db/t")
    assert not paths.within("/tmp/wh/db/t2/data/x.parquet", "/tmp/wh/db/t")
    assert not paths.within("/tmp/wh/db/other.parquet", "/tmp/wh/db/t")


def test_orphans_know_the_tables_around_them():
    from lakehouse_ops.health.reach import Reach

    plan = orphans.plan(policy(), health([]), NOW)
    locations = {
        "db.t": ("/tmp/wh/db/t",),  # itself
        "db.t2": ("file:///tmp/wh/db/t2",),  # a sibling sharing a name prefix: no concern
        "db.archive": ("file:/tmp/wh/db/t/archive/",),  # nested: its files are left out
        "raw.t": ("s3://elsewhere/t", "/tmp/wh/db/t/raw-data"),  # keeps its data inside db.t: left out too
        "db.moved": ("s3://new/place", "/tmp/wh/db"),  # moved away from above db.t: its references are checked
    }
    near = orphans.with_neighbors(plan, "db.t", Reach(locations)).params
    assert near.nested == ("/tmp/wh/db/t/raw-data", "file:/tmp/wh/db/t/archive/") and near.shared_with == ()
    assert near.check_against == ("db.moved",) and near.unknown == ()
    above = orphans.with_neighbors(plan, "db.t", Reach(dict(locations, **{"db.all": ("/tmp/wh/db",)}))).params
    assert above.shared_with == ("db.all (/tmp/wh/db)",)
    same = orphans.with_neighbors(plan, "db.t", Reach({"db.copy": ("file:///tmp/wh/db/t/",)})).params
    assert same.shared_with == ("db.copy (file:///tmp/wh/db/t/)",) and same.nested == ()
    hidden = Reach(locations, {"sales.secret": "its metadata cannot be read (AccessDenied)"})
    assert orphans.with_neighbors(plan, "db.t", hidden).params.unknown == (
        "sales.secret (its metadata cannot be read (AccessDenied))",
    )
    assert orphans.with_neighbors(plan, "db.t", hidden, ["sales.*"]).params.unknown == ()


def test_versioned_expiry_knows_the_tables_nested_in_it_and_no_other_expiry_asks():
    """Expiry's versioned deletes remove what deletes left under the table location: never under a table nested
    in it (its own policy decides its versions). Only then does expiry need the catalog's other tables."""
    from lakehouse_ops.health.reach import Reach

    old = health([], snapshots=40, oldest_snapshot_age_hours=24 * 9)
    plain = snapshots.plan(policy(snapshots={"max_age_days": 7, "retain_last": 2}), old, NOW)
    assert not snapshots.needs_neighbors(plain)
    versioned = policy(snapshots={"max_age_days": 7, "retain_last": 2}, storage={"versioned_deletes": True})
    plan = snapshots.plan(versioned, old, NOW)
    assert snapshots.needs_neighbors(plan)
    reach = Reach({"db.t": ("/tmp/wh/db/t",), "db.inner": ("/tmp/wh/db/t/data/inner",), "db.t2": ("/tmp/wh/db/t2",)})
    assert snapshots.with_neighbors(plan, "db.t", reach).params.nested == ("/tmp/wh/db/t/data/inner",)


def test_a_tables_reach_holds_its_data_paths_and_old_locations():
    from types import SimpleNamespace

    from lakehouse_ops.health.reach import table_reach

    meta = SimpleNamespace(
        location="s3://b/new/t",
        properties={"write.data.path": "s3://b/data/t"},
        metadata_log=[SimpleNamespace(metadata_file="s3://b/old/t/metadata/00001-a.metadata.json")],
    )
    assert table_reach(meta, "s3://b/new/t/metadata/00002-b.metadata.json") == (
        "s3://b/new/t",
        "s3://b/data/t",
        "s3://b/old/t",
    )


def test_properties_plan_reports_drift():
    h = health([], property_drift={"write.parquet.compression-codec": {"actual": "snappy", "expected": "zstd"}})
    plan = properties.plan(policy(), h, NOW)
    assert plan.run and plan.params.wanted == {"write.parquet.compression-codec": "zstd"}
    assert plan.to_dict()["params"]["set"] == {"write.parquet.compression-codec": "zstd"}
    assert "snappy -> zstd" in plan.reason
    assert not properties.plan(policy(), health([]), NOW).run


def test_plan_all_is_in_execution_order():
    names = [p.action for p in plan_all(policy(), health([]), NOW)]
    assert names == [
        "properties",
        "retention",
        "compaction",
        "rewrite_position_deletes",
        "remove_dangling_deletes",
        "statistics",
        "rewrite_manifests",
        "recovery_points",
        "expire_snapshots",
        "remove_orphan_files",
    ]


def test_procedure_sql_renders_literals():
    sql = procedure_sql(
        "lake",
        "expire_snapshots",
        {
            "table": "db.t",
            "older_than": Timestamp("2024-05-01 00:00:00.000Z"),
            "retain_last": 3,
            "stream_results": True,
            "options": {"a": "1", "b": "it's"},
            "where": None,
        },
    )
    assert sql == (
        "CALL `lake`.system.expire_snapshots(table => 'db.t', older_than => TIMESTAMP "
        "'2024-05-01 00:00:00.000Z', retain_last => 3, stream_results => true, options => map('a', '1', "
        "'b', 'it\\'s'))"
    )


def test_rewrite_runs_groups_consecutive_rewrites():
    chain = [Snapshot(2, 1, "replace"), Snapshot(3, 2, "replace"), Snapshot(4, 3, "append"), Snapshot(5, 4, "replace")]
    assert rewrite_runs(chain, lambda s: s.operation == "replace") == [(1, 3), (4, 5)]
    assert rewrite_runs([Snapshot(2, 1, "append")], lambda s: s.operation == "replace") == []
