"""Run history: maintain runs append their reports to an Iceberg table that SQL can ask; `report --html` renders
the fleet page, checked in a real headless Chromium (screenshot taken, the page's parts present as it rendered)."""

import json
import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.runner import MaintenanceRunner

from conftest import make_config, write_config
from helpers import ref
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,1800",
]


def _chromium(args, profile):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("Chromium is needed for the HTML report check: scripts/test installs Debian's chromium as root")
    cmd = [binary] + CHROMIUM_FLAGS + ["--user-data-dir=%s" % profile] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _history_settings(table_name):
    """(history table, config sections): a run history of the test's own, compaction of 2 files or more."""
    history = "%s_ops.run_history" % table_name.split(".")[0]
    settings = {
        "defaults": {"compaction": {"min_input_files": 2}, "orphans": {"enabled": False}},
        "history": {"enabled": True, "table": history},
    }
    return history, settings


def test_maintain_runs_are_recorded_and_the_fleet_page_renders_in_chromium(spark, warehouse, table_name, tmp_path):
    history, settings = _history_settings(table_name)
    config = make_config(warehouse, **settings)
    create_streaming_table(spark, "lake", table_name, days=1, commits=6, rows_per_commit=40, files_per_commit=2)
    first = MaintenanceRunner(config, spark=spark).run([table_name])
    assert first["ok"] and first["history"] == {"table": history, "rows": 1}
    create_streaming_table(
        spark, "lake", table_name, days=1, commits=4, rows_per_commit=40, files_per_commit=2, replace=False
    )
    second = MaintenanceRunner(config, spark=spark, only=["compaction"]).run([table_name])
    assert second["history"] == {"table": history, "rows": 1}
    dry = MaintenanceRunner(config, spark=spark).run([table_name], dry_run=True)
    assert "history" not in dry  # a dry run changes nothing and is not history

    # "What happened to this table last week" is one query.
    rows = spark.sql(
        "SELECT kind, ok, actions, metrics, report FROM %s WHERE table_name = '%s' "
        "AND started_at >= current_timestamp() - INTERVAL 7 DAYS ORDER BY started_at" % (ref(history), table_name)
    ).collect()
    assert [r.kind for r in rows] == ["maintain", "maintain"] and all(r.ok for r in rows)
    compaction = [a for a in rows[0].actions if a.action == "compaction"]
    assert compaction[0].status == "done" and compaction[0].duration_s > 0 and "rewrote" in compaction[0].summary
    assert rows[0].metrics["after.data_files"] < rows[0].metrics["before.data_files"]
    assert rows[1].metrics["before.data_files"] > rows[0].metrics["after.data_files"]  # the writer's new files
    assert json.loads(rows[0].report)["table"] == table_name

    path = write_config(tmp_path / "history.yaml", warehouse, **settings)
    page_path = str(tmp_path / "fleet.html")
    result = CliRunner().invoke(cli, ["--config", path, "report", table_name, "--html", page_path, "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["tables"] == 1 and outcome["runs"] == 2
    page = open(page_path, encoding="utf-8").read()
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # self-contained: nothing fetched

    profile = tmp_path / "chromium-profile"
    shot = tmp_path / "fleet.png"
    taken = _chromium(["--screenshot=%s" % shot, "file://" + page_path], profile)
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    from PIL import Image

    with Image.open(str(shot)) as image:
        assert image.size == (1280, 1800)
        colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 20  # a rendered page, not a blank one
    dom = _chromium(["--dump-dom", "file://" + page_path], profile).stdout
    assert '<table id="ranked">' in dom and table_name in dom
    assert re.search(r'<div class="trend" data-table="%s">.*?<polyline' % re.escape(table_name), dom)
    assert dom.count('<tr class="run">') == 2 and '<svg id="durations"' in dom and "compaction" in dom
    assert os.path.getsize(shot) > 10000


def test_an_action_that_failed_three_runs_in_a_row_is_suspended_then_tried_after_the_cooldown(
    spark, warehouse, table_name
):
    """The circuit breaker reads the run history: three maintain runs whose compaction of the table failed
    suspend it (plan and maintain say until when, and the last failure), other actions still run; after the
    cooldown it is tried once, and its success closes the breaker."""
    import time

    from lakehouse_ops.engine.history import record
    from lakehouse_ops.units import iso_seconds

    history, settings = _history_settings(table_name)
    config = make_config(warehouse, **settings)
    create_streaming_table(spark, "lake", table_name, days=1, commits=6, rows_per_commit=40, files_per_commit=2)
    now = time.time()
    for hours_ago in (30, 20, 10):
        failed = {"action": "compaction", "status": "failed", "reason": "java.lang.OutOfMemoryError: Java heap space"}
        started = now - hours_ago * 3600
        report = {
            "started_at": iso_seconds(started),
            "finished_at": iso_seconds(started + 60),
            "tables": [{"table": table_name, "ok": False, "actions": [failed]}],
        }
        assert record(spark, "lake", history, "maintain", report) == {"table": history, "rows": 1}

    def actions(report):
        return {a["action"]: a for a in report["tables"][0]["actions"]}

    planned = actions(MaintenanceRunner(config, spark=spark).run([table_name], dry_run=True))
    compaction = planned["compaction"]
    assert compaction["status"] == "skipped" and compaction["reason"].startswith("suspended until ")
    assert "failed in the last 3 runs in a row" in compaction["reason"] and "Java heap space" in compaction["reason"]
    before = spark.sql("SELECT count(*) FROM %s.files" % ref(table_name)).first()[0]
    suspended = MaintenanceRunner(config, spark=spark, only=["compaction"]).run([table_name])
    assert actions(suspended)["compaction"]["status"] == "skipped"
    assert spark.sql("SELECT count(*) FROM %s.files" % ref(table_name)).first()[0] == before  # nothing rewritten

    later = int((now + 15 * 3600) * 1000)  # past the 24 h cooldown after the last failure (10 h ago)
    tried = MaintenanceRunner(config, spark=spark, only=["compaction"], clock=lambda: later).run([table_name])
    assert actions(tried)["compaction"]["status"] == "done", actions(tried)["compaction"]
    assert spark.sql("SELECT count(*) FROM %s.files" % ref(table_name)).first()[0] < before
    again = actions(MaintenanceRunner(config, spark=spark).run([table_name], dry_run=True))
    assert not again["compaction"]["reason"].startswith("suspended")  # the success closed the breaker
