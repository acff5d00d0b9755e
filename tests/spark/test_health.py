"""Health numbers read through pyiceberg equal what Spark's metadata tables say."""

import pytest

from conftest import make_config
from helpers import CATALOG, HEALTH_KEYS, health, ref
from table_factory import create_streaming_table

pytestmark = pytest.mark.spark


@pytest.mark.fast
def test_health_matches_spark_metadata_tables(spark, warehouse, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=3, commits=6, rows_per_commit=300, files_per_commit=2)
    spark.sql("DELETE FROM %s WHERE status = 500 AND customer_id < 'c00100'" % ref(table_name))
    config = make_config(warehouse, defaults={"target_file_size": "1MB", "compaction": {"small_file_threshold": 0.5}})
    h = health(config, table_name)

    files = spark.sql(
        "SELECT count(*) n, sum(file_size_in_bytes) b, sum(record_count) r, "
        "sum(CASE WHEN file_size_in_bytes < %d THEN 1 ELSE 0 END) s FROM %s.files WHERE content = 0"
        % (512 * 1024, ref(table_name))
    ).collect()[0]
    assert (h.data_files, h.data_bytes, h.records, h.small_files) == (files.n, files.b, files.r, files.s)
    deletes = spark.sql("SELECT count(*) n FROM %s.files WHERE content > 0" % ref(table_name)).collect()[0].n
    assert h.delete_files == deletes
    assert h.manifests == spark.sql("SELECT count(*) n FROM %s.manifests" % ref(table_name)).collect()[0].n
    assert h.snapshots == spark.sql("SELECT count(*) n FROM %s.snapshots" % ref(table_name)).collect()[0].n
    assert (
        h.metadata_files == spark.sql("SELECT count(*) n FROM %s.metadata_log_entries" % ref(table_name)).collect()[0].n
    )

    per_partition = {
        "event_time_day=%s" % r.day: (r.n, r.b)
        for r in spark.sql(
            "SELECT partition.event_time_day AS day, count(*) n, sum(file_size_in_bytes) b FROM %s.files "
            "WHERE content = 0 GROUP BY 1" % ref(table_name)
        ).collect()
    }
    assert {p.partition: (p.data_files, p.data_bytes) for p in h.partitions} == per_partition
    assert h.partition_spec == ["day(event_time)"]
    # The filter health derives for each partition selects exactly that partition's rows.
    for p in h.partitions:
        day = p.partition.split("=")[1]
        in_filter = spark.sql("SELECT count(*) n FROM %s WHERE %s" % (ref(table_name), p.filter)).collect()[0].n
        on_day = (
            spark.sql("SELECT count(*) n FROM %s WHERE to_date(event_time) = DATE '%s'" % (ref(table_name), day))
            .collect()[0]
            .n
        )
        assert in_filter == on_day > 0
    as_json = h.to_dict()
    for key in HEALTH_KEYS:
        assert key in as_json
    assert set(as_json["partitions"][0]) >= {"data_files", "data_bytes", "small_files"}


def test_metadata_files_are_counted_on_storage_not_from_the_capped_log(spark, warehouse, table_name):
    """The log keeps previous-versions-max entries; without delete-after-commit the older files stay on disk.
    Health counts the files there, reports the log's length beside it, and the plan names both."""
    import glob

    from lakehouse_ops.maintenance import properties

    create_streaming_table(
        spark,
        CATALOG,
        table_name,
        days=1,
        commits=6,
        rows_per_commit=10,
        files_per_commit=1,
        extra_properties={
            "write.metadata.previous-versions-max": "2",
            "write.metadata.delete-after-commit.enabled": "false",
        },
    )
    config = make_config(warehouse)
    h = health(config, table_name)
    on_disk = glob.glob("%s/metadata/*.metadata.json" % h.location.replace("file:", ""))
    log_entries = spark.sql("SELECT count(*) n FROM %s.metadata_log_entries" % ref(table_name)).collect()[0].n
    assert h.metadata_files_listed and h.metadata_files == len(on_disk) > log_entries
    assert h.metadata_log_files == log_entries == 3
    plan = properties.plan(config.policy_for(table_name), h)
    assert plan.run and "%d metadata.json files on storage, 3 tracked" % len(on_disk) in plan.reason


@pytest.mark.fast
def test_health_cache_decodes_only_the_manifests_of_new_commits(spark, warehouse, table_name, tmp_path):
    from lakehouse_ops.health import table_health

    create_streaming_table(spark, CATALOG, table_name, days=3, commits=6, rows_per_commit=300, files_per_commit=2)
    spark.sql("DELETE FROM %s WHERE status = 500 AND customer_id < 'c00100'" % ref(table_name))
    plain = make_config(warehouse)
    cached = make_config(warehouse, health={"cache": str(tmp_path / "health-cache")})

    def figures(h):  # what the table holds, not when or how it was read
        out = h.to_dict()
        for key in ("read_seconds", "manifests_read", "oldest_snapshot_age_hours", "cached"):
            out.pop(key)
        return out

    first = table_health(cached, table_name)
    assert first.manifests_read == first.manifests > 0 and not first.cached  # nothing known yet
    # The same metadata file again: its whole health comes from the cache; the snapshot age is that of now.
    again = table_health(cached, table_name, now_ms=first.oldest_snapshot_ms + 7 * 3600 * 1000)
    assert again.cached and again.manifests_read == 0 and figures(again) == figures(first)
    assert again.oldest_snapshot_age_hours == 7.0
    # Other limits (a smaller target file size, so another small-file limit): the table is scanned again, from the
    # per-manifest packs of those limits (none yet: every manifest is read).
    smaller = make_config(
        warehouse, health={"cache": str(tmp_path / "health-cache")}, defaults={"target_file_size": "1MB"}
    )
    other = table_health(smaller, table_name)
    assert not other.cached and other.manifests_read == other.manifests
    assert other.small_file_threshold_bytes < first.small_file_threshold_bytes
    # One more commit (it writes one manifest, merging small ones into it): that one is decoded, the rest comes from
    # the cache; the figures are the same as a scan without any cache.
    spark.sql("INSERT INTO %s SELECT * FROM %s LIMIT 10" % (ref(table_name), ref(table_name)))
    after = table_health(cached, table_name)
    assert after.manifests_read == 1 and after.manifests > 1
    assert figures(after) == figures(table_health(plain, table_name))
    # A damaged pack is ignored: the manifests are read again.
    for pack in (tmp_path / "health-cache").iterdir():
        pack.write_text("{not json")
    damaged = table_health(cached, table_name)
    assert damaged.manifests_read == damaged.manifests and figures(damaged) == figures(after)


def test_a_large_scan_spread_over_processes_gives_the_same_figures(spark, warehouse, table_name, monkeypatch):
    from lakehouse_ops.health import aggregate, table_health

    create_streaming_table(spark, CATALOG, table_name, days=3, commits=6, rows_per_commit=300, files_per_commit=2)
    spark.sql("DELETE FROM %s WHERE status = 500 AND customer_id < 'c00100'" % ref(table_name))
    one = table_health(make_config(warehouse, health={"processes": 1}), table_name).to_dict()
    monkeypatch.setattr(aggregate, "PROCESS_MIN_BYTES", 0)  # this small table counts as large
    spread = table_health(make_config(warehouse, health={"processes": 2}), table_name).to_dict()
    for figures in (one, spread):  # what the table holds, not when it was read
        figures.pop("read_seconds")
        figures.pop("oldest_snapshot_age_hours")
    assert spread == one and one["manifests_read"] == one["manifests"] > 1


def test_a_scan_through_spark_gives_the_same_figures_and_fills_the_cache(spark, warehouse, table_name, tmp_path):
    """Above `health.spark_min_files`, a job's Spark session decodes the manifests (Iceberg's entries metadata
    table): every figure, per partition and per spec, equals pyiceberg's, and the cache it fills serves the next
    scan."""
    from lakehouse_ops.health import table_health

    t = ref(table_name)
    spark.sql(
        "CREATE TABLE %s (id BIGINT, ts TIMESTAMP, d DATE, name STRING, raw BINARY) USING iceberg "
        "PARTITIONED BY (days(ts), d, name) TBLPROPERTIES ('format-version'='2', 'write.delete.mode'='merge-on-read')"
        % t
    )
    for i in range(4):
        spark.sql(
            "INSERT INTO %s VALUES (%d, TIMESTAMP '2024-05-0%d 10:00:00', DATE '2024-01-0%d', %s, X'0A0B'), "
            "(%d, TIMESTAMP '2024-05-0%d 23:59:59', NULL, 'b', NULL)"
            % (t, i, i + 1, i % 2 + 1, "'a'" if i else "NULL", i + 10, i + 1)
        )
    spark.sql(
        "INSERT INTO %s VALUES (30, TIMESTAMP '2024-05-09 01:00:00', DATE '2024-01-09', 'z', NULL), "
        "(31, TIMESTAMP '2024-05-09 02:00:00', DATE '2024-01-09', 'z', NULL)" % t
    )
    spark.sql("DELETE FROM %s WHERE id = 30" % t)  # a position delete file
    spark.sql("ALTER TABLE %s ADD PARTITION FIELD bucket(4, id)" % t)  # a second spec
    spark.sql("INSERT INTO %s VALUES (20, TIMESTAMP '2024-05-01 00:00:00', DATE '2024-01-01', 'c', X'00')" % t)
    spark.sql(
        "CALL %s.system.rewrite_data_files(table => '%s', where => 'id < 2', options => map('rewrite-all', 'true'))"
        % (CATALOG, table_name)
    )
    spark.sql("INSERT INTO %s VALUES (21, TIMESTAMP '2024-05-02 00:00:00', DATE '2024-01-02', 'c', X'01')" % t)

    def figures(h):
        out = h.to_dict()
        for key in ("read_seconds", "oldest_snapshot_age_hours", "reader", "cached", "manifests_read"):
            out.pop(key)
        return out

    plain = table_health(make_config(warehouse), table_name)
    cache = str(tmp_path / "health-cache")
    through_spark = table_health(
        make_config(warehouse, health={"spark_min_files": 1, "cache": cache}), table_name, spark=lambda: spark
    )
    assert plain.reader == "pyiceberg" and through_spark.reader == "spark"
    assert figures(through_spark) == figures(plain)
    assert plain.delete_files >= 1 and any(p.partition.startswith("spec=0/") for p in plain.partitions)
    assert {p.new_small_files for p in plain.partitions} != {p.small_files for p in plain.partitions}
    # Below the limit, or without a session, pyiceberg reads.
    below = table_health(make_config(warehouse, health={"spark_min_files": 10**6}), table_name, spark=lambda: spark)
    assert below.reader == "pyiceberg"
    # One more commit: the next scan decodes only its manifest, from the packs Spark's scan left.
    spark.sql("INSERT INTO %s VALUES (22, TIMESTAMP '2024-05-03 00:00:00', DATE '2024-01-01', 'a', NULL)" % t)
    after = table_health(make_config(warehouse, health={"cache": cache}), table_name)
    assert after.manifests_read == 1 < after.manifests
    assert figures(after) == figures(table_health(make_config(warehouse), table_name))
