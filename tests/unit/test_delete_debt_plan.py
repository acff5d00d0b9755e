"""Delete-file debt (pure): which delete files dangle, which partitions a rewrite must take for their deletes, and
the metadata-only removal planned for the rest."""

import dataclasses

from lakehouse_ops.health.aggregate import Counts
from lakehouse_ops.health.scan import PartitionHealth
from lakehouse_ops.maintenance import compaction, dangling

from test_planning import health, part, policy


def test_dangling_follows_icebergs_rule_by_sequence_number():
    counts = Counts(None)
    counts.data_seq(5)
    counts.data_seq(7)
    counts.deletes_at(4, 1, 1)  # older than every data file: both dangle
    counts.deletes_at(5, 2, 1)  # a position delete at 5 may apply to data at 5; an equality delete at 5 may not
    counts.deletes_at(9, 1, 1)  # newer than data: applies
    assert counts.min_data_seq == 5 and counts.dangling() == 1 + 1 + 1
    merged = Counts.total([counts, Counts(None)])
    assert merged.delete_seqs == {4: [1, 1], 5: [2, 1], 9: [1, 1]} and merged.dangling() == 3
    empty = Counts(None)  # a partition with deletes and no data file left: every delete dangles
    empty.deletes_at(3, 2, 1)
    assert empty.dangling() == 3


def test_cache_packs_keep_what_dangling_needs():
    from pyiceberg.typedef import Record

    from lakehouse_ops.health.cache import decode, encode

    counts = Counts(Record("a"), data_files=2, delete_records=7, position_delete_files=1, equality_delete_files=2)
    counts.data_seq(6)
    counts.deletes_at(5, 1, 0)
    counts.deletes_at(8, 0, 2)
    (back,) = decode(encode({(0, ("a",)): counts})).values()
    assert back.min_data_seq == 6 and back.delete_seqs == {5: [1, 0], 8: [0, 2]}
    assert back.delete_records == 7 and back.dangling() == 1


def _with_deletes(p: PartitionHealth, position=0, equality=0, dangling_files=0, records=0) -> PartitionHealth:
    return dataclasses.replace(
        p,
        delete_files=position + equality,
        position_delete_files=position,
        equality_delete_files=equality,
        dangling_delete_files=dangling_files,
        delete_records=records,
    )


def test_equality_deletes_naming_a_third_of_the_rows_rewrite_the_data_they_apply_to():
    heavy = _with_deletes(part("region=a", 4, 0, day="2024-05-01"), equality=1, records=16)  # 16 of 40 rows
    light = _with_deletes(part("region=b", 4, 0, day="2024-05-02"), equality=1, records=2)
    plan = compaction.plan(policy(), health([heavy, light]), 0)
    assert plan.run and plan.partitions == ("region=a",)
    assert "deletes name 40% of its 40 rows (0 position, 1 equality delete files)" in plan.reason
    assert plan.params.options["delete-file-threshold"] == "1"  # every data file a delete applies to
    assert plan.params.options["remove-dangling-deletes"] == "true"
    assert plan.params.options["delete-ratio-threshold"] == "0.3"
    # Dangling deletes apply to nothing: they never make a partition worth rewriting.
    stale = _with_deletes(part("region=a", 4, 0), position=12, dangling_files=12, records=30)
    assert not compaction.plan(policy(), health([stale]), 0).run
    off = policy(compaction={"remove_dangling_deletes": False, "delete_ratio_threshold": 0.5})
    heavier = dataclasses.replace(heavy, delete_records=24)
    options = compaction.plan(off, health([heavier]), 0).params.options
    assert "remove-dangling-deletes" not in options and options["delete-ratio-threshold"] == "0.5"
    assert not compaction.plan(off, health([heavy]), 0).run  # 40 % is under 50 %


def test_dangling_removal_is_planned_for_partitioned_tables_only():
    stale = _with_deletes(part("region=a", 4, 0), position=3, dangling_files=3)
    partitioned = health([stale], dangling_delete_files=3, partition_spec=["region"])
    plan = dangling.plan(policy(), partitioned, 0)
    assert plan.run and plan.partitions == ("region=a",) and plan.params.expected == 3
    assert "3 delete files apply to no live data file (region=a: 3)" in plan.reason
    assert not dangling.plan(policy(), health([stale], dangling_delete_files=3), 0).run  # unpartitioned
    assert "no dangling" in dangling.plan(policy(), health([stale]), 0).reason
    off = policy(compaction={"remove_dangling_deletes": False})
    assert "disabled by policy" in dangling.plan(off, partitioned, 0).reason
