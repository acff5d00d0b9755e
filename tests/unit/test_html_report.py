"""The fleet page (pure rendering): ranked tables, trends, last runs, time per action; values escaped."""

from datetime import datetime, timedelta, timezone

from lakehouse_ops.runner.html import render

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)


def _report(history):
    fleet = {
        "count": 2,
        "needy": 1,
        "tables": [
            {
                "table": "sales.orders",
                "ok": True,
                "needy": True,
                "score": 12.5,
                "actions": ["compaction"],
                "rewrite_bytes": 3 << 20,
                "reasons": {"compaction": "2 partitions with <b>small</b> files"},
                "health": {"data_files": 120, "small_files": 100},
            },
            {"table": "sales.broken", "ok": False, "error": "metadata missing", "needy": False, "score": 0.0},
        ],
    }
    return {
        "catalog": "glue",
        "generated_at": NOW,
        "days": 14,
        "history_table": "lakehouse_ops.run_history",
        "fleet": fleet,
        "history": history,
    }


def _run(hours_ago, kind="maintain", ok=True, before=120, after=12):
    started = NOW - timedelta(hours=hours_ago)
    run = {
        "kind": kind,
        "table_name": "sales.orders",
        "ok": ok,
        "started_at": started,
        "finished_at": started + timedelta(minutes=2),
        "duration_s": 120.0,
        "actions": [],
        "metrics": {"rows": 1000.0},
    }
    if kind == "maintain":
        run["actions"] = [
            {"action": "compaction", "status": "done" if ok else "failed", "duration_s": 90.0, "summary": "x"},
            {"action": "remove_orphan_files", "status": "skipped", "duration_s": 0.0, "summary": "off"},
        ]
        run["metrics"] = {"before.data_files": before, "after.data_files": after, "after.small_files": 0}
    return run


def test_the_page_ranks_draws_and_lists_runs_with_values_escaped():
    page = render(_report([_run(30), _run(5, ok=False, before=60, after=60), _run(1, kind="ingest")]))
    assert page.startswith("<!DOCTYPE html>") and "http" not in page.split("<style>")[0]
    ranked = page[page.index('<table id="ranked">') : page.index("</table>")]
    assert "sales.orders" in ranked and "12.5" in ranked and "3.0 MiB" in ranked
    assert "&lt;b&gt;small&lt;/b&gt;" in ranked and "<b>small</b>" not in ranked
    assert "error: metadata missing" in page
    assert page.count('<tr class="run">') == 3
    assert page.index("2026-11-24 05:00 UTC") < page.index("2026-11-23 00:00 UTC")  # newest first
    assert '<div class="trend" data-table="sales.orders">' in page and page.count("<polyline") == 2
    assert "remove_orphan_files skipped" not in page  # skipped actions are not listed
    assert '<svg id="durations"' in page and "180.0 s" in page  # two compactions of 90 s
    assert '<td class="bad">failed</td>' in page


def test_without_history_the_page_says_so():
    report = _report([])
    report["history_note"] = "no run recorded yet"
    page = render(report)
    assert "no maintain run recorded in this window" in page and "no run recorded in this window" in page
    assert "no run recorded yet" in page and "no action ran in this window" in page
