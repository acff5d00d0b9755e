"""The runner and its entry points: report shape, exit codes, one failing table never stops the others."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli

from conftest import make_config
from helpers import CATALOG, HEALTH_KEYS, data_files
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACTIONS = [
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


def _config_file(tmp_path, warehouse, extra=""):
    path = tmp_path / "lakehouse-ops.yaml"
    path.write_text(
        textwrap.dedent(
            """
        catalog: {name: %s, type: hadoop, warehouse: %s}
        spark: {mode: local, master: "local[2]"}
        defaults:
          target_file_size: 8MB
        %s
        """
            % (CATALOG, warehouse, extra)
        )
    )
    return str(path)


def test_maintain_json_report_and_exit_code(spark, warehouse, table_name, tmp_path):
    create_streaming_table(spark, CATALOG, table_name, days=2, commits=6, rows_per_commit=100, files_per_commit=2)
    files_before = len(data_files(spark, table_name))
    config = _config_file(tmp_path, warehouse)
    report_path = tmp_path / "reports" / "run.json"
    result = CliRunner().invoke(
        cli, ["--config", config, "maintain", table_name, "--json", "--report", str(report_path)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads(report_path.read_text())
    assert report["ok"] is True
    entry = report["tables"][0]
    assert entry["table"] == table_name
    assert [a["action"] for a in entry["actions"]] == ACTIONS
    for action in entry["actions"]:
        assert set(action) == {"action", "status", "reason", "outputs", "duration_s"}
        assert action["status"] in ("done", "skipped", "failed")
    by_name = {a["action"]: a for a in entry["actions"]}
    assert by_name["compaction"]["status"] == "done"
    assert by_name["expire_snapshots"]["status"] == "skipped"
    assert entry["before"]["data_files"] == files_before > 2 and entry["after"]["data_files"] == 2
    for key in HEALTH_KEYS:
        assert key in entry["before"] and key in entry["after"]


def test_dry_run_changes_nothing(spark, warehouse, table_name, tmp_path):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=5, rows_per_commit=50, files_per_commit=2)
    files = data_files(spark, table_name)
    config = _config_file(tmp_path, warehouse)
    result = CliRunner().invoke(cli, ["--config", config, "maintain", "--dry-run", "--json", table_name])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    compaction = [a for a in report["tables"][0]["actions"] if a["action"] == "compaction"][0]
    assert compaction["status"] == "planned" and compaction["outputs"]["estimated_bytes"] > 0
    assert data_files(spark, table_name) == files
    text = CliRunner().invoke(cli, ["--config", config, "plan", table_name])
    assert text.exit_code == 0 and "compaction" in text.output and "planned" in text.output


def test_failing_table_does_not_stop_the_others(spark, warehouse, table_name, tmp_path):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=5, rows_per_commit=50, files_per_commit=2)
    config = _config_file(tmp_path, warehouse)
    result = CliRunner().invoke(cli, ["--config", config, "maintain", "--json", "nowhere.missing", table_name])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    missing, real = report["tables"]
    assert missing["ok"] is False and "nowhere.missing" in missing["error"]
    assert real["ok"] is True
    assert [a for a in real["actions"] if a["action"] == "compaction"][0]["status"] == "done"


def test_default_selection_is_every_table_a_rule_matches(spark, warehouse, table_name, tmp_path):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=1, rows_per_commit=10, files_per_commit=1)
    namespace = table_name.split(".")[0]
    config = make_config(warehouse, tables=[{"match": "%s.*" % namespace}])
    from lakehouse_ops.health import open_tables
    from lakehouse_ops.runner import resolve_tables

    tables = resolve_tables(config, open_tables(config.catalog))
    assert table_name in tables and all(t.startswith(namespace + ".") for t in tables)
    assert resolve_tables(config, open_tables(config.catalog), ["%s.*" % namespace]) == tables


def test_health_json_needs_no_spark_and_has_the_documented_keys(spark, warehouse, table_name, tmp_path):
    create_streaming_table(
        spark, CATALOG, table_name, days=2, commits=2, rows_per_commit=10, files_per_commit=1, late_fraction=0.0
    )
    config = _config_file(tmp_path, warehouse)
    probe = (
        "import sys, json; from click.testing import CliRunner; from lakehouse_ops.cli import cli; "
        "r = CliRunner().invoke(cli, sys.argv[1:]); print(r.stdout); "
        "print('PYSPARK_IMPORTED', 'pyspark' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, "--config", config, "health", "--json", table_name],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    health = json.loads(lines[0])
    assert health["table"] == table_name and health["data_files"] == 2 and len(health["partitions"]) == 2
    assert "PYSPARK_IMPORTED False" in proc.stdout


@pytest.mark.fast
def test_spark_job_entry_point(spark, warehouse, table_name, tmp_path, capsys):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=5, rows_per_commit=50, files_per_commit=2)
    from lakehouse_ops.spark_jobs import maintain as job

    config = _config_file(tmp_path, warehouse)
    code = job.main(["--config", config, "--mode", "local", table_name, "--only", "compaction"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"]
    assert [a["action"] for a in report["tables"][0]["actions"]] == ["compaction"]
    assert job.main(["--config", str(tmp_path / "absent.yaml")]) == 2


def test_notebook_api_uses_the_given_session(spark, warehouse, table_name):
    import lakehouse_ops

    create_streaming_table(spark, CATALOG, table_name, days=1, commits=5, rows_per_commit=50, files_per_commit=2)
    config = make_config(warehouse, defaults={"target_file_size": "8MB"})
    report = lakehouse_ops.maintain(spark, table_name, config=config, only=["compaction"])
    assert report["ok"] and report["tables"][0]["actions"][0]["status"] == "done"
    assert lakehouse_ops.table_health(table_name, config=config)["data_files"] == 1


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    """The README's first command, in a fresh process and directory: landing files -> local SQS -> ingest with
    pseudonymization through the local reference service -> maintenance. Free ports stand in for the config's
    fixed ones, through the documented environment overrides."""
    import re

    from lakehouse_ops.aws.local import free_port
    from lakehouse_ops.config.sections import CatalogConfig
    from lakehouse_ops.health import open_tables

    sqs = "http://127.0.0.1:%d/123456789012/" % free_port()
    env = dict(
        os.environ,
        LAKEHOUSE_OPS__INGEST__QUEUE_URL=sqs + "landing-events",
        LAKEHOUSE_OPS__INGEST__DLQ_URL=sqs + "landing-events-dlq",
        LAKEHOUSE_OPS__PSEUDONYMIZATION__SERVICE_URL="http://127.0.0.1:%d" % free_port(),
    )
    env.pop("LAKEHOUSE_OPS_AWS_ENDPOINT_URL", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakehouse_ops.cli",
            "--config",
            os.path.join(ROOT, "conf", "local.yaml"),
            "demo",
            "--json",
            "--files",
            "18",
            "--rows",
            "60",
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert report["ok"] and report["ingest"]["totals"]["rows"] == 18 * 60
    assert report["ingest"]["totals"]["batches"] >= 4  # small batches, as streaming makes
    actions = {a["action"]: a for a in report["maintenance"]["tables"][0]["actions"]}
    assert actions["compaction"]["status"] == "done"
    # conf/local.yaml keeps orphans in the table's trash (orphans restore brings them back)
    assert actions["remove_orphan_files"]["outputs"]["trashed_files"] == 1
    entry = report["maintenance"]["tables"][0]
    assert entry["after"]["data_files"] < entry["before"]["data_files"]
    # No plaintext customer id landed: every value is a token of the local service.
    table = open_tables(CatalogConfig(name="local", type="hadoop", warehouse=str(tmp_path / "warehouse"))).load(
        "demo.requests"
    )
    ids = table.scan().to_arrow().column("customer_id").to_pylist()
    assert len(ids) == 18 * 60 and not any(re.match(r"^c\d{5}$", v) for v in ids)
    assert os.path.exists(str(tmp_path / "dev-keys.json"))
    # Both runs are in the history table, and the fleet page shows them.
    assert (
        report["ingest"]["history"]
        == report["maintenance"]["history"]
        == {"table": "lakehouse_ops.run_history", "rows": 1}
    )
    assert report["report_page"]["runs"] == 2 and report["report_page"]["tables"] == 1
    page = (tmp_path / "report.html").read_text()
    assert page.count('<tr class="run">') == 2 and "demo.requests" in page


def test_plan_all_ranks_the_fleet_without_spark(spark, warehouse, tmp_path, monkeypatch):
    """plan --all: every managed table read concurrently through pyiceberg, needy first by score; no JVM."""
    namespace = "fleet%d" % os.getpid()
    fragmented, lighter, healthy = ["%s.%s" % (namespace, n) for n in ("fragmented", "lighter", "healthy")]
    create_streaming_table(spark, CATALOG, fragmented, days=1, commits=8, rows_per_commit=40, files_per_commit=2)
    create_streaming_table(spark, CATALOG, lighter, days=1, commits=4, rows_per_commit=40, files_per_commit=2)
    create_streaming_table(
        spark,
        CATALOG,
        healthy,
        days=1,
        commits=1,
        rows_per_commit=40,
        files_per_commit=1,
        extra_properties={
            "write.metadata.delete-after-commit.enabled": "true",
            "write.metadata.previous-versions-max": "100",
            "write.target-file-size-bytes": "536870912",
        },
    )
    path = tmp_path / "fleet.yaml"
    path.write_text(
        json.dumps(
            {
                "catalog": {"name": CATALOG, "type": "hadoop", "warehouse": str(warehouse)},
                "tables": [{"match": namespace + ".*"}],
            }
        )
    )
    probe = (
        "import sys, json; from click.testing import CliRunner; from lakehouse_ops.cli import cli; "
        "r = CliRunner().invoke(cli, sys.argv[1:]); print(r.stdout); "
        "print('PYSPARK_IMPORTED', 'pyspark' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, "--config", str(path), "plan", "--all", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(proc.stdout[proc.stdout.index("{") : proc.stdout.rindex("}") + 1])
    assert "PYSPARK_IMPORTED False" in proc.stdout
    order = [e["table"] for e in report["tables"]]
    assert order == [fragmented, lighter, healthy] and report["count"] == 3 and report["needy"] == 2
    assert report["tables"][0]["score"] > report["tables"][1]["score"] > 0
    assert "compaction" in report["tables"][0]["actions"] and not report["tables"][2]["needy"]

    # Spread over two worker processes (a fleet this small is read in one unless told), with the health cache: the
    # same plans; a second run takes every table's health from the cache.
    from lakehouse_ops.config import load_config
    from lakehouse_ops.runner import fleet

    def plans(entries):  # what was planned, not how long it took or where the figures came from
        return [
            dict(e, read_s=None, health={k: v for k, v in e["health"].items() if k not in ("cached", "manifests_read")})
            for e in entries
        ]

    monkeypatch.setattr(fleet, "PROCESS_MIN_TABLES", 1)
    data = json.loads(path.read_text())
    path.write_text(json.dumps(dict(data, health={"cache": str(tmp_path / "cache"), "processes": 2})))
    first = fleet.plan_fleet(load_config(str(path)))
    again = fleet.plan_fleet(load_config(str(path)))
    assert plans(first["tables"]) == plans(again["tables"]) == plans(report["tables"])
    assert [e["health"]["cached"] for e in first["tables"] + again["tables"]] == [False] * 3 + [True] * 3
    spread = fleet._plan_spread(load_config(str(path)), order, 2, 2, None)  # None: the processes failed
    assert spread is not None and sorted(e["table"] for e in spread) == sorted(order)


def test_submit_needy_runs_only_the_tables_that_need_it_within_the_budget(spark, warehouse, tmp_path):
    namespace = "needy%d" % os.getpid()
    tables = ["%s.%s" % (namespace, n) for n in ("big", "small", "clean")]
    create_streaming_table(spark, CATALOG, tables[0], days=1, commits=8, rows_per_commit=40, files_per_commit=2)
    create_streaming_table(spark, CATALOG, tables[1], days=1, commits=4, rows_per_commit=40, files_per_commit=2)
    create_streaming_table(spark, CATALOG, tables[2], days=1, commits=1, rows_per_commit=40, files_per_commit=1)
    path = tmp_path / "needy.yaml"
    path.write_text(
        json.dumps(
            {
                "catalog": {"name": CATALOG, "type": "hadoop", "warehouse": str(warehouse)},
                "defaults": {"properties": {"enabled": False}},
                "tables": [{"match": namespace + ".*"}],
                "ship": {
                    "artifacts": "s3://artifacts/lo",
                    "budget": {"max_tables": 5, "max_rewrite_bytes": "10GB"},
                    "emr_serverless": {"application_id": "00fapp", "execution_role_arn": "arn:aws:iam::1:role/r"},
                },
            }
        )
    )
    common = [
        "--config",
        str(path),
        "submit",
        "--target",
        "emr-serverless",
        "--job",
        "maintain",
        "--archive",
        "s3://envs/env.tar.gz",
        "--needy",
        "--dry-run",
    ]
    one = CliRunner().invoke(cli, common + ["--", "--only", "compaction"])
    assert one.exit_code == 0, one.output
    runs = json.loads(one.stdout)["runs"]
    assert len(runs) == 1
    args = runs[0]["request"]["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    assert args[2:] == [tables[0], tables[1], "--only", "compaction"]  # best first; the clean table is left out
    each = json.loads(CliRunner().invoke(cli, common + ["--per-table"]).stdout)["runs"]
    assert [r["request"]["jobDriver"]["sparkSubmit"]["entryPointArguments"][2:] for r in each] == [
        [tables[0]],
        [tables[1]],
    ]


def test_a_lease_taken_over_during_a_run_stops_the_tables_remaining_actions(spark, warehouse, table_name, tmp_path):
    """A run's lease is taken over while it works (its holder seemed dead to another run): from the moment the
    run learns it, no further action touches the table, and its release leaves the new holder's lease alone."""
    import threading
    import time

    from lakehouse_ops.conditional import LocalStore
    from lakehouse_ops.lease import Leases
    from lakehouse_ops.runner import MaintenanceRunner

    create_streaming_table(spark, CATALOG, table_name, days=2, commits=6, rows_per_commit=100, files_per_commit=2)
    store = LocalStore(str(tmp_path / "leases"))
    ours = Leases("unused", minutes=0.05, store=store, owner="this-run")  # renewed every second
    theirs = Leases("unused", minutes=10, store=store, owner="other-run", clock=lambda: time.time() + 3600)

    def take_over():  # as soon as this run holds the lease, another run (whose clock says it expired) takes it
        for _ in range(600):
            if store.read(table_name + ".json") is not None:
                assert theirs.acquire(table_name) == (True, None)
                return
            time.sleep(0.05)

    thief = threading.Thread(target=take_over)
    thief.start()
    policy = {"compaction": {"min_input_files": 2}, "snapshots": {"max_age_days": 1, "retain_last": 1}}
    only = ["compaction", "rewrite_manifests", "expire_snapshots", "remove_orphan_files"]
    report = MaintenanceRunner(make_config(warehouse, defaults=policy), spark=spark, only=only, leases=ours).run(
        [table_name]
    )
    thief.join(60)
    actions = report["tables"][0]["actions"]
    stopped = [i for i, a in enumerate(actions) if "taken over" in (a.get("reason") or "")]
    assert stopped and not report["ok"], actions
    assert all(a["status"] == "skipped" and "taken over" in a["reason"] for a in actions[stopped[0] :]), actions
    assert store.read(table_name + ".json")[0]["owner"] == "other-run"  # this run's release left it alone
    theirs.release(table_name)


def test_maintain_with_emf_prints_one_metric_line_per_action_that_ran_and_keeps_stdout_one_document(
    spark, warehouse, table_name, tmp_path
):
    create_streaming_table(spark, CATALOG, table_name, days=2, commits=6, rows_per_commit=100, files_per_commit=2)
    extra = "metrics: {emf: true, namespace: data/lakehouse, dimensions: {Environment: test}}"
    config = _config_file(tmp_path, warehouse, extra)
    result = CliRunner().invoke(cli, ["--config", config, "maintain", table_name, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the report alone
    ran = [a for a in report["tables"][0]["actions"] if a["status"] in ("done", "partial", "failed")]
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{") and '"_aws"' in line]
    assert report["emf_lines"] == len(lines) == len(ran) >= 2
    assert [line["Action"] for line in lines] == [a["action"] for a in ran]
    for line, action in zip(lines, ran):
        directive = line["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "data/lakehouse"
        assert directive["Dimensions"] == [["Environment", "Job", "Table", "Action"]]
        assert (line["Job"], line["Table"], line["Environment"]) == ("maintain", table_name, "test")
        assert line["Duration"] == action["duration_s"] and line["Failed"] == 0
    compaction = next(line for line in lines if line["Action"] == "compaction")
    done = next(a for a in ran if a["action"] == "compaction")["outputs"]
    assert compaction["FilesRewritten"] == done["rewritten_data_files_count"] > 0
    assert compaction["BytesRewritten"] == done["rewritten_bytes_count"] > 0
