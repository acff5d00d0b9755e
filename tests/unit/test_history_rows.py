"""Run history rows from each kind of report (pure): one row per table, the run's id and times shared, health
figures before/after for trends, the ingest report without its batches."""

import json
from datetime import datetime, timezone

import pytest

from lakehouse_ops.engine.history import rows_of

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
MAINTAIN = {
    "ok": False,
    "started_at": "2026-11-24T05:00:00Z",
    "finished_at": "2026-11-24T05:02:00Z",
    "duration_s": 120.0,
    "tables": [
        {
            "table": "sales.orders",
            "ok": True,
            "before": {"data_files": 120, "small_files": 100, "snapshots": 40, "partitions": [{"x": 1}]},
            "after": {"data_files": 12, "small_files": 0, "snapshots": 2},
            "actions": [
                {"action": "compaction", "status": "done", "reason": "x" * 5000, "duration_s": 30.5},
                {"action": "remove_orphan_files", "status": "skipped", "reason": "disabled", "duration_s": 0},
            ],
        },
        {"table": "sales.items", "ok": False, "error": "cannot read", "before": None, "after": None, "actions": []},
    ],
}


def test_a_maintain_run_gives_one_row_per_table_with_health_before_and_after():
    rows = rows_of("maintain", MAINTAIN, NOW)
    assert [r["table_name"] for r in rows] == ["sales.orders", "sales.items"]
    assert len({r["run_id"] for r in rows}) == 1 and all(r["kind"] == "maintain" for r in rows)
    first = rows[0]
    assert first["started_at"] == datetime(2026, 11, 24, 5, 0, tzinfo=timezone.utc)
    assert first["finished_at"] == datetime(2026, 11, 24, 5, 2, tzinfo=timezone.utc) and first["duration_s"] == 120
    assert first["metrics"] == {
        "before.data_files": 120.0,
        "before.small_files": 100.0,
        "before.snapshots": 40.0,
        "after.data_files": 12.0,
        "after.small_files": 0.0,
        "after.snapshots": 2.0,
    }
    assert [a["action"] for a in first["actions"]] == ["compaction", "remove_orphan_files"]
    assert len(first["actions"][0]["summary"]) == 1000 and first["actions"][0]["duration_s"] == 30.5
    assert rows[1]["ok"] is False and rows[1]["metrics"] == {} and json.loads(rows[1]["report"])["error"]


def test_ingest_pseudonymize_and_erase_runs():
    ingest = {
        "ok": True,
        "target": "demo.requests",
        "started_at": "2026-11-24T05:00:00Z",
        "finished_at": "2026-11-24T05:00:30Z",
        "batches": [{"rows": 10}] * 1000,
        "totals": {"rows": 10000, "batches": 1000, "rows_per_s": 333.3, "duration_s": 30.0},
    }
    (row,) = rows_of("ingest", ingest, NOW)
    assert row["table_name"] == "demo.requests" and row["metrics"]["rows"] == 10000 and row["duration_s"] == 30
    assert "batches" not in json.loads(row["report"]) and row["actions"] == []

    # No start time in the report: the finish (now) less its duration.
    (pseudo,) = rows_of("pseudonymize", {"ok": True, "target": "p.t", "rows": 7, "duration_s": 60.0}, NOW)
    assert pseudo["started_at"] == datetime(2026, 11, 24, 5, 59, tzinfo=timezone.utc)
    assert pseudo["metrics"] == {"rows": 7.0, "duration_s": 60.0}

    receipt = {
        "ok": True,
        "started_at": "2026-11-24T05:00:00Z",
        "finished_at": "2026-11-24T05:01:00Z",
        "tables": [{"table": "a.b", "ok": True, "rows_deleted": 3, "verification": {"verified": True}}],
    }
    (erased,) = rows_of("erase", receipt, NOW)
    assert erased["metrics"] == {"rows_deleted": 3.0} and erased["duration_s"] == 60


def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match="unknown run kind 'vacuum'"):
        rows_of("vacuum", {}, NOW)


def test_runs_that_started_no_spark_or_changed_nothing_do_not_start_it():
    from types import SimpleNamespace

    from lakehouse_ops.config.sections import HistoryConfig
    from lakehouse_ops.engine.history import record_run

    config = SimpleNamespace(history=HistoryConfig(), catalog=SimpleNamespace(name="lake"))

    def no_spark():
        raise AssertionError("Spark started for the history row alone")

    healthy = {"tables": [{"table": "a.b", "ok": True}]}
    record_run(no_spark, config, "maintain", healthy, session_started=False)
    assert healthy["history"] == {
        "table": "lakehouse_ops.run_history",
        "rows": 0,
        "skipped": "nothing ran: Spark not started",
    }
    dry = {"tables": [{"table": "a.b", "ok": True}]}
    record_run(no_spark, config, "maintain", dry, dry_run=True)
    off = {"tables": []}
    record_run(no_spark, SimpleNamespace(history=HistoryConfig(enabled=False)), "maintain", off)
    assert "history" not in dry and "history" not in off
