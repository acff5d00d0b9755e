"""Other automation on a table, as AWS's APIs tell it (moto's server): S3 lifecycle rules that reach the table's
objects, Glue optimizers (unknown where the endpoint does not offer the API), and the plan leaving the overlapped
action alone unless the policy says otherwise."""

import pytest

from lakehouse_ops.config import config_from_dict
from lakehouse_ops.health import table_health
from lakehouse_ops.health.automation import lifecycle_findings
from lakehouse_ops.maintenance import plan_all

CATALOG = {"name": "glue_catalog", "type": "glue", "warehouse": "s3://automation-lake/warehouse/"}


def test_lifecycle_rules_that_reach_a_table():
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7}},
        {
            "ID": "tmp",
            "Status": "Enabled",
            "Filter": {"Prefix": "warehouse/sales/events/tmp/"},
            "Expiration": {"Days": 1},
        },
        {
            "ID": "cold",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "warehouse/"}},
            "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}, {"Days": 30, "StorageClass": "STANDARD_IA"}],
        },
        {"ID": "off", "Status": "Disabled", "Filter": {}, "Expiration": {"Days": 1}},
        {
            "ID": "uploads",
            "Status": "Enabled",
            "Filter": {},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
    ]
    found = lifecycle_findings(rules, "warehouse/sales/events/")
    # An expiration deletes files: orphan removal is left to it. A transition deletes nothing: a warning only.
    assert [(what, action) for what, _, action in found] == [
        ("s3-lifecycle:tmp", "remove_orphan_files"),
        ("s3-lifecycle:cold", None),
    ]
    assert "after 1 days" in found[0][1] and "GLACIER" in found[1][1] and "a warning" in found[1][1]


@pytest.fixture
def glue_table(aws_env):
    import pyarrow as pa

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.health import open_tables

    s3 = client("s3")
    s3.create_bucket(Bucket="automation-lake")
    tables = open_tables(config_from_dict({"catalog": CATALOG}).catalog)
    tables.catalog.create_namespace("auto_sales")
    table = tables.catalog.create_table("auto_sales.events", schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2, 3]}))
    yield s3, table.metadata.location
    tables.catalog.drop_table("auto_sales.events")
    tables.catalog.drop_namespace("auto_sales")
    s3.delete_bucket_lifecycle(Bucket="automation-lake")


def test_a_lifecycle_rule_on_the_table_prefix_is_found_and_orphan_removal_left_alone(glue_table):
    s3, location = glue_table
    key_prefix = location.split("automation-lake/", 1)[1]
    s3.put_bucket_lifecycle_configuration(
        Bucket="automation-lake",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-all",
                    "Status": "Enabled",
                    "Filter": {"Prefix": key_prefix[:10]},
                    "Expiration": {"Days": 30},
                }
            ]
        },
    )
    from lakehouse_ops.health import automation

    automation._lifecycles.clear()  # a fresh process would ask S3 again
    config = config_from_dict({"catalog": CATALOG, "defaults": {"orphans": {"older_than_hours": 24}}})
    health = table_health(config, "auto_sales.events")
    assert "expires current objects" in health.automation["s3-lifecycle:expire-all"]
    assert health.automation["glue-optimizers"].startswith("unknown: ")  # moto does not offer the API
    assert health.automation_overlaps == ["remove_orphan_files"]
    plans = {p.action: p for p in plan_all(config.policy_for("auto_sales.events"), health)}
    assert not plans["remove_orphan_files"].run
    assert "left to other automation" in plans["remove_orphan_files"].reason
    ignoring = config_from_dict({"catalog": CATALOG, "defaults": {"external_automation": "ignore"}})
    plans = {p.action: p for p in plan_all(ignoring.policy_for("auto_sales.events"), health)}
    assert "left to other automation" not in plans["remove_orphan_files"].reason


def test_a_transition_only_lifecycle_rule_is_a_warning_and_orphan_removal_still_runs(glue_table):
    s3, location = glue_table
    key_prefix = location.split("automation-lake/", 1)[1]
    s3.put_bucket_lifecycle_configuration(
        Bucket="automation-lake",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "to-glacier",
                    "Status": "Enabled",
                    "Filter": {"Prefix": key_prefix},
                    "Transitions": [{"Days": 365, "StorageClass": "DEEP_ARCHIVE"}],
                }
            ]
        },
    )
    from lakehouse_ops.health import automation

    automation._lifecycles.clear()
    config = config_from_dict({"catalog": CATALOG, "defaults": {"orphans": {"older_than_hours": 24}}})
    health = table_health(config, "auto_sales.events")
    assert "DEEP_ARCHIVE" in health.automation["s3-lifecycle:to-glacier"]
    assert health.automation_overlaps == []
    plans = {p.action: p for p in plan_all(config.policy_for("auto_sales.events"), health)}
    assert plans["remove_orphan_files"].run, plans["remove_orphan_files"].reason

    # One rule that archives and expires: both are said, and the expiration still leaves orphans to it.
    s3.put_bucket_lifecycle_configuration(
        Bucket="automation-lake",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "to-glacier",
                    "Status": "Enabled",
                    "Filter": {"Prefix": key_prefix},
                    "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
                    "Expiration": {"Days": 365},
                }
            ]
        },
    )
    automation._lifecycles.clear()
    health = table_health(config, "auto_sales.events")
    said = health.automation["s3-lifecycle:to-glacier"]
    assert "expires current objects" in said and "GLACIER" in said, said
    assert health.automation_overlaps == ["remove_orphan_files"]
