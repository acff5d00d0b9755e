import textwrap

import pytest

from lakehouse_ops.config import config_from_dict, load_config
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.units import parse_size

BASE = {"catalog": {"name": "lake", "type": "hadoop", "warehouse": "/tmp/wh"}}


def write(tmp_path, text):
    path = tmp_path / "lakehouse-ops.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_of(tmp_path, text, environ=None):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ or {})
    return str(info.value), path


def test_shipped_configs_load():
    for name in ("conf/local.yaml", "conf/emr.yaml", "conf/emr-serverless.yaml", "conf/reference-workload.yaml"):
        config = load_config(name, environ={})
        assert config.catalog.name


def test_reference_workload_encodes_the_seed_deployment():
    config = load_config("conf/reference-workload.yaml", environ={})
    policy = config.policy_for("analytics.requests")
    assert policy.compaction.strategy == "sort"
    assert policy.compaction.sort_order[0].startswith("requested_at")
    assert "customer_id" in policy.compaction.sort_order[1]
    assert policy.snapshots.max_age_days == 7
    assert policy.properties.metadata_previous_versions_max == 10
    assert policy.properties.compression_codec == "zstd"
    assert policy.properties.object_storage is True


def test_orphan_age_under_24h_names_file_rule_key_value_and_range(tmp_path):
    message, path = error_of(
        tmp_path,
        """
        catalog: {name: lake, type: hadoop, warehouse: /tmp/wh}
        tables:
          - match: "analytics.*"
            orphans: {older_than_hours: 2}
        """,
    )
    assert path in message
    assert "tables[0] (match 'analytics.*')" in message
    assert "orphans.older_than_hours = 2" in message
    assert "greater than or equal to 24" in message


def test_negative_retention_and_tiny_target_size_in_defaults(tmp_path):
    message, _ = error_of(
        tmp_path,
        """
        catalog: {name: lake, type: hadoop, warehouse: /tmp/wh}
        defaults:
          target_file_size: 512KB
          snapshots: {retain_last: -1}
        """,
    )
    assert "defaults: target_file_size = '512KB'" in message
    assert "greater than or equal to 1048576" in message
    assert "snapshots.retain_last = -1" in message


def test_unknown_key_lists_accepted_keys(tmp_path):
    message, _ = error_of(
        tmp_path,
        """
        catalog: {name: lake, type: hadoop, warehouse: /tmp/wh}
        defaults:
          compaction: {stratgy: sort}
        """,
    )
    assert "unknown key 'compaction.stratgy'" in message
    assert "strategy" in message.split("accepted keys:")[1]


def test_wrong_type_and_unknown_top_level(tmp_path):
    message, _ = error_of(
        tmp_path,
        """
        catalog: {name: lake, type: hadoop, warehouse: /tmp/wh}
        colour: blue
        defaults:
          compaction: {min_input_files: many}
        """,
    )
    assert "unknown top-level key 'colour'" in message
    assert "compaction.min_input_files = 'many'" in message


def test_bad_enum_and_catalog_without_warehouse(tmp_path):
    message, _ = error_of(
        tmp_path,
        """
        catalog: {name: lake, type: glue}
        defaults:
          compaction: {strategy: shuffle}
        """,
    )
    assert "catalog type 'glue' needs a warehouse" in message
    assert "'binpack', 'sort' or 'zorder'" in message


def test_invalid_yaml_names_line(tmp_path):
    message, path = error_of(tmp_path, "catalog: {name: lake\n  type: [\n")
    assert path in message and "line" in message


def test_rule_without_match(tmp_path):
    message, _ = error_of(
        tmp_path,
        """
        catalog: {name: lake, type: hadoop, warehouse: /tmp/wh}
        tables:
          - compaction: {strategy: sort}
        """,
    )
    assert "tables[0]" in message and "'match'" in message


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read config file /nonexistent.yaml"):
        load_config("/nonexistent.yaml", environ={})


def test_most_specific_rule_wins_and_ties_go_to_the_later_rule():
    config = config_from_dict(
        dict(
            BASE,
            defaults={"snapshots": {"max_age_days": 7}},
            tables=[
                {"match": "analytics.events", "snapshots": {"max_age_days": 2}},
                {"match": "analytics.*", "snapshots": {"max_age_days": 3, "retain_last": 4}},
                {"match": "*", "snapshots": {"retain_last": 9}},
                {"match": "analytics.e*", "compaction": {"strategy": "sort"}},
                {"match": "analytics.e*", "compaction": {"strategy": "zorder", "zorder_columns": ["a"]}},
            ],
        )
    )
    policy, sources = config.explain("analytics.events")
    assert policy.snapshots.max_age_days == 2
    assert sources["snapshots.max_age_days"] == "tables[0] (match 'analytics.events')"
    assert policy.snapshots.retain_last == 4
    assert sources["snapshots.retain_last"] == "tables[1] (match 'analytics.*')"
    assert policy.compaction.strategy == "zorder"
    assert sources["compaction.strategy"] == "tables[4] (match 'analytics.e*')"
    assert sources["orphans.older_than_hours"] == "built-in default"
    other, _ = config.explain("sales.orders")
    assert other.snapshots.max_age_days == 7 and other.snapshots.retain_last == 9


def test_catalog_qualified_names_and_bad_names():
    config = config_from_dict(BASE)
    assert config.table_name("lake.db.t") == "db.t"
    assert config.table_name("db.t") == "db.t"
    with pytest.raises(ConfigError, match="namespace.table"):
        config.table_name("justatable")


def test_is_managed_follows_rules():
    assert config_from_dict(BASE).is_managed("any.table")
    config = config_from_dict(dict(BASE, tables=[{"match": "analytics.*"}]))
    assert config.is_managed("analytics.x") and not config.is_managed("sales.x")


def test_environment_overrides_and_their_provenance():
    env = {
        "LAKEHOUSE_OPS__CATALOG__WAREHOUSE": "s3://bucket/wh",
        "LAKEHOUSE_OPS__DEFAULTS__SNAPSHOTS__MAX_AGE_DAYS": "3",
        "UNRELATED": "x",
    }
    config = config_from_dict(BASE, environ=env)
    assert config.catalog.warehouse == "s3://bucket/wh"
    policy, sources = config.explain("db.t")
    assert policy.snapshots.max_age_days == 3
    assert sources["snapshots.max_age_days"] == "env LAKEHOUSE_OPS__DEFAULTS__SNAPSHOTS__MAX_AGE_DAYS"


def test_environment_override_is_validated():
    with pytest.raises(ConfigError) as info:
        config_from_dict(BASE, environ={"LAKEHOUSE_OPS__DEFAULTS__ORPHANS__OLDER_THAN_HOURS": "1"})
    assert "orphans.older_than_hours = 1" in str(info.value)
    with pytest.raises(ConfigError, match="LAKEHOUSE_OPS__NOPE__X"):
        config_from_dict(BASE, environ={"LAKEHOUSE_OPS__NOPE__X": "1"})


def test_sizes():
    assert parse_size("512MB") == 512 * 1024 * 1024
    assert parse_size("8 MiB") == 8 * 1024 * 1024
    assert parse_size(1000) == 1000
    with pytest.raises(ValueError):
        parse_size("lots")


def test_desired_properties_skip_unmanaged_values():
    config = config_from_dict(
        dict(
            BASE,
            defaults={
                "target_file_size": "256MB",
                "properties": {
                    "compression_codec": None,
                    "object_storage": True,
                    "distribution_mode": "hash",
                    "extra": {"commit.retry.num-retries": "10"},
                },
            },
        )
    )
    props = config.policy_for("db.t").desired_properties()
    assert props["write.target-file-size-bytes"] == str(256 * 1024 * 1024)
    assert "write.parquet.compression-codec" not in props
    assert props["write.object-storage.enabled"] == "true"
    assert props["write.distribution-mode"] == "hash"
    assert props["commit.retry.num-retries"] == "10"


def test_zorder_needs_columns():
    with pytest.raises(ConfigError, match="zorder_columns"):
        config_from_dict(dict(BASE, defaults={"compaction": {"strategy": "zorder"}}))
