"""A compaction that leaves planned partitions behind (as Iceberg's partial progress does when a file group's
commit fails) is completed by another round, or reported `partial` with exit code 1."""

import json

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.maintenance import compaction

from conftest import make_config, write_config
from helpers import CATALOG, assert_same_rows, health, maintain, snapshot_id
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark


def _fragmented(spark, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=3, commits=8, rows_per_commit=300, files_per_commit=3)


def _first_attempt_reaches_one_partition(monkeypatch, config, table_name):
    """The first rewrite commits only the first planned partition, as if the other groups' commits had failed;
    later rounds run as they are. Returns the plans executed."""
    real = compaction.execute
    filters = {p.partition: p.filter for p in health(config, table_name).partitions}
    plans = []

    def execute(spark, catalog, table, plan):
        plans.append(plan)
        if len(plans) == 1:
            first = filters[plan.partitions[0]]
            plan = compaction.Plan(
                plan.action,
                True,
                plan.reason,
                compaction.CompactionParams(strategy=plan.params.strategy, options=plan.params.options, where=first),
            )
        return real(spark, catalog, table, plan)

    monkeypatch.setattr(compaction, "execute", execute)
    return plans


def _policy(retries):
    return {
        "target_file_size": "8MB",
        "commits": {"retries": retries, "backoff_seconds": 0.1},
        "compaction": {"options": {"partial-progress.max-commits": "50"}},
    }


def test_partitions_left_behind_are_completed_by_another_round(spark, warehouse, table_name, monkeypatch):
    _fragmented(spark, table_name)
    before = snapshot_id(spark, table_name)
    config = make_config(warehouse, defaults=_policy(retries=2))
    plans = _first_attempt_reaches_one_partition(monkeypatch, config, table_name)
    entry, actions = maintain(spark, config, table_name, only=["compaction"])
    result = actions["compaction"]
    assert result["status"] == "done" and entry["ok"], result
    rounds = result["outputs"]["completion_rounds"]
    assert len(plans) == 2 and len(rounds) == 1 and len(rounds[0]["partitions"]) == 2
    assert "left_behind" not in result["outputs"]
    planned = set(plans[0].partitions)
    after = {p.partition: p for p in health(config, table_name).partitions}
    assert all(after[p].new_small_files == 0 for p in planned)  # every planned partition compacted
    assert_same_rows(spark, table_name, before)


def test_a_plan_not_achieved_is_partial_and_exits_1(spark, warehouse, table_name, monkeypatch, tmp_path):
    _fragmented(spark, table_name)
    config = write_config(tmp_path / "lakehouse-ops.yaml", warehouse, defaults=_policy(retries=0))
    _first_attempt_reaches_one_partition(monkeypatch, make_config(warehouse), table_name)
    result = CliRunner().invoke(cli, ["--config", config, "maintain", "--only", "compaction", "--json", table_name])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    action = report["tables"][0]["actions"][0]
    assert report["ok"] is False and action["status"] == "partial"
    left = action["outputs"]["left_behind"]
    assert len(left["partitions"]) == 2 and "commits did not land" in left["cause"]
    assert action["reason"].startswith("plan not achieved after 0 completion round(s): ")
    assert action["outputs"]["rewritten_data_files_count"] > 0  # what was committed stays committed
