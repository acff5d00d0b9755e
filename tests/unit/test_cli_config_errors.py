"""Bad config files fail with exit code 2 and a named error, before Spark is even imported."""

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import sys
    from click.testing import CliRunner
    from lakehouse_ops.cli import cli
    result = CliRunner().invoke(cli, sys.argv[1:])
    print(result.output)
    print("EXIT", result.exit_code)
    print("PYSPARK_IMPORTED", "pyspark" in sys.modules)
""")


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-c", PROBE] + list(args), capture_output=True, text=True, timeout=120)
    return proc.stdout


def test_bad_policy_exits_2_without_starting_spark(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        textwrap.dedent(
            """
        catalog: {name: lake, type: hadoop, warehouse: %s}
        tables:
          - match: "analytics.*"
            orphans: {older_than_hours: 3}
            snapshots: {retain_last: 0}
        """
            % (tmp_path / "wh")
        )
    )
    out = run_cli("--config", str(config), "maintain", "analytics.events")
    assert "EXIT 2" in out
    assert "PYSPARK_IMPORTED False" in out
    assert str(config) in out and "tables[0] (match 'analytics.*')" in out
    assert "orphans.older_than_hours = 3" in out and "snapshots.retain_last = 0" in out


def test_missing_config_and_usage_errors_exit_2(tmp_path):
    assert "EXIT 2" in run_cli("maintain")
    assert "EXIT 2" in run_cli("--config", str(tmp_path / "absent.yaml"), "health", "db.t")
    assert "EXIT 2" in run_cli("no-such-verb")


def test_policy_show_names_the_rule_behind_each_value(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        textwrap.dedent("""
        catalog: {name: lake, type: hadoop, warehouse: /tmp/wh}
        defaults:
          snapshots: {max_age_days: 5}
        tables:
          - match: "analytics.*"
            compaction: {strategy: sort, sort_order: [event_time]}
        """)
    )
    out = run_cli("--config", str(config), "policy", "show", "lake.analytics.events", "--json")
    body = json.loads(out.split("\nEXIT")[0])
    assert body["table"] == "analytics.events"
    assert body["policy"]["compaction"]["strategy"] == "sort"
    assert body["sources"]["compaction.strategy"] == "tables[0] (match 'analytics.*')"
    assert body["sources"]["snapshots.max_age_days"].startswith("defaults (")
    assert body["sources"]["snapshots.retain_last"] == "built-in default"
    text = run_cli("--config", str(config), "policy", "show", "analytics.events")
    assert "compaction.strategy" in text and "EXIT 0" in text


def test_a_misspelt_action_is_refused_by_the_cli_and_the_entry_point_alike(capsys):
    from click.testing import CliRunner

    from lakehouse_ops.cli import cli
    from lakehouse_ops.spark_jobs import maintain

    result = CliRunner().invoke(cli, ["maintain", "--only", "compation"])
    assert result.exit_code == 2 and "compation" in result.output
    assert maintain.main(["--config", "x.yaml", "--only", "compation"]) == 2
    assert "compation" in capsys.readouterr().err
    # The same options reach the same command: a correct one gets as far as reading the (absent) config.
    assert maintain.main(["--config", "absent.yaml", "--only", "compaction"]) == 2
    assert "cannot read config file absent.yaml" in capsys.readouterr().err
