"""EMF documents (lakehouse_ops/emf.py, runner/metrics.py) checked against the Embedded Metric Format
specification's rules: `_aws` with an integer `Timestamp` and a `CloudWatchMetrics` array of directives; each
directive a `Namespace` (1-255 characters, not starting with ':'), `Dimensions` (arrays of at most 30 names, each
a root member holding a string) and `Metrics` (at most 100, each a `Name` whose root member holds a number or an
array of at most 100 numbers, and a `Unit` of CloudWatch's)."""

import json

import pytest

from lakehouse_ops import emf
from lakehouse_ops.config import config_from_dict
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.runner.metrics import maintain_documents

CLOUDWATCH_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def check_emf(line):
    """The specification's rules, as a list of what is wrong (empty: valid)."""
    wrong = []
    doc = json.loads(line)
    meta = doc.get("_aws")
    if not isinstance(meta, dict) or not isinstance(meta.get("Timestamp"), int) or isinstance(meta["Timestamp"], bool):
        return ["_aws.Timestamp must be an integer (epoch milliseconds)"]
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return ["_aws.CloudWatchMetrics must be a non-empty array"]
    for directive in directives:
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= 255 or namespace.startswith(":"):
            wrong.append("Namespace %r" % namespace)
        for dimension_set in directive.get("Dimensions", []):
            if len(dimension_set) > 30:
                wrong.append("a dimension set of %d names" % len(dimension_set))
            for name in dimension_set:
                if not isinstance(doc.get(name), str):
                    wrong.append("dimension %s has no string member" % name)
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or len(metrics) > 100:
            wrong.append("Metrics must be an array of at most 100")
            continue
        for metric in metrics:
            value = doc.get(metric.get("Name"))
            numbers = value if isinstance(value, list) else [value]
            if len(numbers) > 100 or not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
                wrong.append("metric %s has no number member" % metric.get("Name"))
            if "Unit" in metric and metric["Unit"] not in CLOUDWATCH_UNITS:
                wrong.append("metric %s unit %r" % (metric.get("Name"), metric["Unit"]))
    return wrong


def test_a_document_follows_the_specification_and_drops_values_that_are_no_numbers():
    doc = emf.document(
        "lakehouse-ops",
        {"Environment": "prod", "Job": "maintain"},
        [
            ("Duration", 1.5, "Seconds"),
            ("Failed", 0, "Count"),
            ("Skipped", None, "Count"),
            ("Odd", float("nan"), "Count"),
        ],
        1_765_000_000_000,
        {"status": "done"},
    )
    line = json.dumps(doc)
    assert check_emf(line) == []
    assert [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["Duration", "Failed"]
    assert "Skipped" not in doc and "Odd" not in doc
    assert emf.document("n", {"Job": "x"}, [("A", None, "Count")], 0) is None  # nothing measured: no line
    with pytest.raises(ValueError, match="unit 'Files'"):
        emf.document("n", {"Job": "x"}, [("A", 1, "Files")], 0)
    with pytest.raises(ValueError, match="at most 100 metrics"):
        emf.document("n", {"Job": "x"}, [("M%d" % i, i, "Count") for i in range(101)], 0)


def test_the_checker_itself_catches_what_the_specification_forbids():
    good = emf.document("ns", {"Job": "maintain"}, [("Duration", 1.0, "Seconds")], 1)
    assert check_emf(json.dumps(good)) == []
    assert check_emf(json.dumps(dict(good, Job=3)))  # a dimension that is no string
    assert check_emf(json.dumps(dict(good, Duration="1")))  # a metric that is no number
    bad_unit = json.loads(json.dumps(good))
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Files"
    assert check_emf(json.dumps(bad_unit))
    assert check_emf(json.dumps(dict(good, _aws=dict(good["_aws"], Timestamp="now"))))


def test_a_maintain_report_gives_one_line_per_action_that_ran_with_its_figures():
    config = config_from_dict(
        {
            "catalog": {"name": "lake", "type": "hadoop", "warehouse": "/tmp/wh"},
            "metrics": {"emf": True, "namespace": "data/lakehouse", "dimensions": {"Environment": "prod"}},
        }
    )
    report = {
        "tables": [
            {
                "table": "sales.events",
                "actions": [
                    {
                        "action": "compaction",
                        "status": "done",
                        "duration_s": 12.5,
                        "outputs": {
                            "rewritten_data_files_count": 40,
                            "added_data_files_count": 2,
                            "rewritten_bytes_count": 1e9,
                        },
                    },
                    {"action": "rewrite_manifests", "status": "skipped", "duration_s": 0, "outputs": {}},
                    {"action": "expire_snapshots", "status": "failed", "duration_s": 3.0, "outputs": {}},
                    {
                        "action": "remove_orphan_files",
                        "status": "done",
                        "duration_s": 4.0,
                        "outputs": {"deleted_files": 0, "trashed_files": 7, "trashed_bytes": 7000},
                    },
                ],
            }
        ]
    }
    docs = maintain_documents(config, report, now_ms=1_765_000_000_000)
    assert [d["Action"] for d in docs] == ["compaction", "expire_snapshots", "remove_orphan_files"]
    for doc in docs:
        assert check_emf(json.dumps(doc)) == []
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "data/lakehouse"
        assert directive["Dimensions"] == [["Environment", "Job", "Table", "Action"]]
        assert doc["Environment"] == "prod" and doc["Job"] == "maintain" and doc["Table"] == "sales.events"
    compaction, expiry, orphans = docs
    assert compaction["FilesRewritten"] == 40 and compaction["BytesRewritten"] == 1e9 and compaction["Failed"] == 0
    assert expiry["Failed"] == 1 and "FilesRewritten" not in expiry
    assert orphans["FilesTrashed"] == 7 and orphans["BytesTrashed"] == 7000 and orphans["FilesDeleted"] == 0


def test_metrics_settings_are_checked():
    base = {"catalog": {"name": "lake", "type": "hadoop", "warehouse": "/tmp/wh"}}
    assert config_from_dict(base).metrics.emf is False  # off by default
    for wrong in ({"namespace": ":x"}, {"dimensions": {"Table": "x"}}, {"dimensions": {"Env": ""}}):
        with pytest.raises(ConfigError, match="metrics"):
            config_from_dict(dict(base, metrics=wrong))
