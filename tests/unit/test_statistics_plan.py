"""The statistics plan (pure): missing, stale, after a planned compaction, or fresh; and the statistics position
health reads from table metadata."""

from types import SimpleNamespace

from lakehouse_ops.health.scan import PartitionHealth
from lakehouse_ops.health.statistics import statistics_position
from lakehouse_ops.maintenance import statistics
from lakehouse_ops.maintenance.base import params_of

from test_planning import NOW, health, part, policy

ON = {"enabled": True, "columns": ["customer_id"], "max_staleness_snapshots": 5}


def quiet(**kw):
    return health([part("d=1", 1, 0)], **kw)


def test_missing_stale_fresh_and_after_compaction():
    assert not statistics.plan(policy(), quiet(), NOW).run  # off by default
    missing = statistics.plan(policy(statistics=ON), quiet(), NOW)
    assert missing.run and "no column statistics" in missing.reason
    assert params_of(missing, statistics.StatisticsParams).columns == ("customer_id",)
    fresh = quiet(snapshots_since_stats=2, snapshots_since_partition_stats=2)
    assert not statistics.plan(policy(statistics=ON), fresh, NOW).run
    stale = quiet(snapshots_since_stats=5, snapshots_since_partition_stats=1)
    assert "5 snapshots behind (limit 5)" in statistics.plan(policy(statistics=ON), stale, NOW).reason
    no_parts = quiet(snapshots_since_stats=0)
    assert "no partition statistics" in statistics.plan(policy(statistics=ON), no_parts, NOW).reason
    off = dict(ON, partition_stats=False)
    assert not statistics.plan(policy(statistics=off), no_parts, NOW).run
    busy = health([part("d=1", 20, 20)], snapshots_since_stats=0, snapshots_since_partition_stats=0)
    assert "compaction is planned" in statistics.plan(policy(statistics=ON), busy, NOW).reason


def test_statistics_position_walks_the_current_ancestry():
    snaps = [SimpleNamespace(snapshot_id=i, parent_snapshot_id=i - 1 if i > 1 else None) for i in range(1, 6)]
    meta = SimpleNamespace(
        snapshots=snaps,
        statistics=[SimpleNamespace(snapshot_id=2)],
        partition_statistics=[SimpleNamespace(snapshot_id=4), SimpleNamespace(snapshot_id=99)],
    )
    out = statistics_position(meta, snaps[-1])
    assert (out["stats_snapshot_id"], out["snapshots_since_stats"]) == (2, 3)
    assert (out["partition_stats_snapshot_id"], out["snapshots_since_partition_stats"]) == (4, 1)
    assert out["statistics_files"] == 3
    assert statistics_position(SimpleNamespace(snapshots=[]), None)["snapshots_since_stats"] is None
    assert PartitionHealth(partition="p").ranges == {}


def test_recovery_points_daily_and_weekly():
    from lakehouse_ops.maintenance import recovery_points

    # NOW is 2027-01-15 08:00 UTC, a Friday.
    assert recovery_points.tag_for("lakehouse-ops-", "daily", NOW) == "lakehouse-ops-20270115"
    assert recovery_points.tag_for("rp-", "weekly", NOW) == "rp-20270111"
    daily = {"every": "daily", "max_age_days": 7}
    plan = recovery_points.plan(policy(recovery_points=daily), quiet(), NOW)
    p = params_of(plan, recovery_points.RecoveryPointParams)
    assert plan.run and (p.tag, p.snapshot_id, p.retain_days) == ("lakehouse-ops-20270115", 1, 7)
    taken = recovery_points.plan(policy(recovery_points=daily), quiet(tags=["lakehouse-ops-20270115"]), NOW)
    assert not taken.run and "exists" in taken.reason
    assert not recovery_points.plan(policy(), quiet(), NOW).run
