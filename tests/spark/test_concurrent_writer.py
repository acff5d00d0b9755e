"""Maintenance against another writer in its own process, committing every moment it can.

The writer records every commit it made; afterwards each of those rows must be in the table exactly once.
"""

import contextlib
import os
import subprocess
import sys
import time

import pytest

from lakehouse_ops.errors import VerificationError
from lakehouse_ops.maintenance.verify import verify_rewrites
from lakehouse_ops.runner import MaintenanceRunner

from conftest import make_config, write_config
from helpers import CATALOG, at, ref, snapshot_id
from table_factory import create_streaming_table
from writer_process import ROWS

pytestmark = [pytest.mark.spark, pytest.mark.slow]
WRITER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "writer_process.py")


class Writer:
    def __init__(self, ledger):
        self.ledger = ledger

    def commits(self):
        if not os.path.exists(self.ledger):
            return []
        with open(self.ledger) as handle:
            return [int(line) for line in handle.read().split()]


@contextlib.contextmanager
def concurrent_writer(tmp_path, warehouse, table, tag="writer", pause=0.2):
    """Start the writer process, wait for its first commit, yield; then stop it and require a clean exit."""
    config = write_config(tmp_path / "writer.yaml", warehouse, master="local[1]")
    ledger, stop = str(tmp_path / ("%s.ledger" % tag)), str(tmp_path / ("%s.stop" % tag))
    proc = subprocess.Popen(
        [sys.executable, WRITER, config, table, tag, ledger, stop, str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    writer = Writer(ledger)
    try:
        deadline = time.time() + 180
        while not writer.commits():
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.time() < deadline, "the writer made no commit in 180 s"
            time.sleep(0.5)
        yield writer
    finally:
        open(stop, "w").close()
        try:
            out = proc.communicate(timeout=180)[0].decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0].decode()
    assert proc.returncode == 0, out[-3000:]


def assert_every_commit_once(spark, table, writer, tag="writer"):
    commits = writer.commits()
    spark.sql("REFRESH TABLE %s" % ref(table))
    got = sorted(
        r.bytes_sent for r in spark.table(ref(table)).where("customer_id = '%s'" % tag).select("bytes_sent").collect()
    )
    assert got == sorted(c * ROWS + i for c in commits for i in range(ROWS)), (
        "%d rows of the writer's %d commits in the table (%d expected)" % (len(got), len(commits), len(commits) * ROWS)
    )
    return len(commits)


def _last_change(spark, table):
    return (
        spark.sql(
            "SELECT snapshot_id FROM %s.snapshots WHERE operation <> 'append' ORDER BY committed_at DESC "
            "LIMIT 1" % ref(table)
        )
        .collect()[0]
        .snapshot_id
    )


def test_rollback_after_a_mismatch_keeps_every_concurrent_append(spark, warehouse, tmp_path, table_name):
    create_streaming_table(
        spark,
        CATALOG,
        table_name,
        days=1,
        commits=2,
        rows_per_commit=400,
        files_per_commit=2,
        extra_properties={"commit.retry.num-retries": "30"},
    )
    failures = 500
    status_500 = spark.table(ref(table_name)).where("status = %d" % failures).count()
    assert status_500 > 0
    with concurrent_writer(tmp_path, warehouse, table_name) as writer:
        for round_ in range(3):
            start = snapshot_id(spark, table_name)
            # A "rewrite" that loses rows: verification must see it and undo it, whatever the writer does meanwhile.
            spark.sql("DELETE FROM %s WHERE status = %d" % (ref(table_name), failures))
            bad = _last_change(spark, table_name)
            seen_before = len(writer.commits())
            with pytest.raises(VerificationError, match="rolled back to snapshot %d" % start):
                verify_rewrites(spark, CATALOG, table_name, start, is_rewrite=lambda s, bad=bad: s.snapshot_id == bad)
            # The writer committed while the checksums ran: the case that lost appends.
            assert len(writer.commits()) > seen_before, "round %d: no commit overlapped the verification" % round_
            spark.sql("REFRESH TABLE %s" % ref(table_name))
            assert spark.table(ref(table_name)).where("status = %d" % failures).count() == status_500
    commits = assert_every_commit_once(spark, table_name, writer)
    assert commits >= 6
    assert at(spark, table_name, snapshot_id(spark, table_name)).where("customer_id <> 'writer'").count() == 800


def test_maintain_succeeds_while_a_writer_commits(spark, warehouse, tmp_path, table_name):
    # Every append merges manifests, so a manifest rewrite's inputs vanish under it: the conflict to retry.
    create_streaming_table(
        spark,
        CATALOG,
        table_name,
        days=2,
        commits=12,
        rows_per_commit=200,
        files_per_commit=3,
        extra_properties={
            "commit.retry.num-retries": "30",
            "commit.manifest-merge.enabled": "true",
            "commit.manifest.min-count-to-merge": "3",
        },
    )
    config = make_config(
        warehouse,
        defaults={
            "target_file_size": "8MB",
            "commits": {"retries": 8, "backoff_seconds": 0.5},
            "compaction": {"min_input_files": 2},
            "manifests": {"max_manifests": 1, "min_manifests": 2},
            "snapshots": {"max_age_days": 0.0001, "retain_last": 5},
            "orphans": {"older_than_hours": 24},
        },
    )
    attempts = []
    # Whether a rewrite meets a commit is a matter of timing (an idle machine rewrites faster): manifest rewrites
    # back to back, with the writer committing back to back, until one does (each must succeed), then whole runs.
    with concurrent_writer(tmp_path, warehouse, table_name, pause=0.0) as writer:
        for _ in range(60):
            report = MaintenanceRunner(config, spark=spark, only=["rewrite_manifests"]).run([table_name])
            action = report["tables"][0]["actions"][0]
            assert report["ok"] and action["status"] in ("done", "skipped"), action
            if action["status"] == "done":
                attempts.append(action["outputs"]["attempts"])
            if attempts and max(attempts) > 1:
                break
        for _ in range(2):
            report = MaintenanceRunner(config, spark=spark).run([table_name])
            entry = report["tables"][0]
            actions = {a["action"]: a for a in entry["actions"]}
            assert report["ok"], entry
            assert {a["status"] for a in actions.values()} <= {"done", "skipped"}, actions
    assert attempts and max(attempts) > 1, "no manifest rewrite met a conflicting commit (attempts %s)" % attempts
    assert_every_commit_once(spark, table_name, writer)
