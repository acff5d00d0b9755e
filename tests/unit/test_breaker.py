"""The circuit breaker's decision from run-history rows (maintenance/breaker.py)."""

from datetime import datetime, timedelta, timezone

from lakehouse_ops.maintenance.breaker import by_table, suspended

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def run(hours_ago, status, table="db.t", action="compaction", summary="boom"):
    started = NOW - timedelta(hours=hours_ago)
    return {
        "kind": "maintain",
        "table_name": table,
        "started_at": started,
        "finished_at": started + timedelta(minutes=5),
        "actions": [{"action": action, "status": status, "summary": summary}],
    }


def test_three_failures_in_a_row_suspend_the_action_until_the_cooldown_after_the_last():
    runs = by_table([run(30, "failed"), run(20, "failed"), run(10, "failed", summary="disk full")])["db.t"]
    held = suspended(runs, "compaction", 3, 24, NOW)
    assert held is not None and held.failures == 3 and held.last_reason == "disk full"
    assert held.until == NOW - timedelta(hours=10) + timedelta(minutes=5) + timedelta(hours=24)
    assert held.reason().startswith("suspended until 2026-12-08 02:05:00.000Z: failed in the last 3 runs in a row")
    assert suspended(runs, "expire_snapshots", 3, 24, NOW) is None  # another action
    assert suspended(runs, "compaction", 4, 24, NOW) is None  # under the threshold
    assert suspended(runs, "compaction", 0, 24, NOW) is None  # turned off


def test_a_success_closes_the_breaker_and_skipped_runs_do_not_count():
    closed = by_table([run(40, "failed"), run(30, "failed"), run(20, "done"), run(10, "failed")])["db.t"]
    assert suspended(closed, "compaction", 3, 24, NOW) is None
    skipped = by_table(
        [run(40, "failed"), run(30, "skipped"), run(20, "failed"), run(15, "planned"), run(10, "failed")]
    )
    assert suspended(skipped["db.t"], "compaction", 3, 24, NOW).failures == 3


def test_after_the_cooldown_one_try_is_allowed_and_its_failure_suspends_again():
    old = [run(100, "failed"), run(90, "failed"), run(80, "failed")]
    assert suspended(by_table(old)["db.t"], "compaction", 3, 24, NOW) is None  # the cooldown is over: try
    again = by_table(old + [run(2, "failed")])["db.t"]
    held = suspended(again, "compaction", 3, 24, NOW)
    assert held is not None and held.failures == 4


def test_other_tables_and_jobs_are_apart():
    rows = [run(3, "failed", table="db.other")] * 3 + [dict(run(2, "failed"), kind="ingest")] * 3
    grouped = by_table(rows)
    assert "db.t" not in grouped and suspended(grouped["db.other"], "compaction", 3, 24, NOW) is not None
