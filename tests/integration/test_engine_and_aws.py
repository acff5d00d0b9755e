"""Session settings per catalog type, start-up errors that say how to fix them, S3 config and reports."""

import json

import pytest

from lakehouse_ops.config import config_from_dict, load_config
from lakehouse_ops.engine import catalog_conf, session_conf
from lakehouse_ops.engine import session as engine
from lakehouse_ops.errors import EngineError
from lakehouse_ops.runner.report import write_report


def conf_for(catalog, **spark):
    return config_from_dict({"catalog": catalog, "spark": spark})


def test_catalog_settings_for_each_type():
    glue = catalog_conf(
        conf_for(
            {
                "name": "glue_catalog",
                "type": "glue",
                "warehouse": "s3://b/wh/",
                "properties": {"client.region": "eu-west-1"},
            }
        ).catalog
    )
    assert glue == {
        "spark.sql.catalog.glue_catalog": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.glue_catalog.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        "spark.sql.catalog.glue_catalog.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "spark.sql.catalog.glue_catalog.warehouse": "s3://b/wh/",
        "spark.sql.catalog.glue_catalog.s3.retry.num-retries": "10",
        "spark.sql.catalog.glue_catalog.client.region": "eu-west-1",
    }
    rest = catalog_conf(conf_for({"name": "r", "type": "rest", "uri": "https://cat.example/api"}).catalog)
    assert rest["spark.sql.catalog.r.type"] == "rest" and rest["spark.sql.catalog.r.uri"] == "https://cat.example/api"
    hive = catalog_conf(conf_for({"name": "h", "type": "hive", "uri": "thrift://hms:9083"}).catalog)
    assert hive["spark.sql.catalog.h.type"] == "hive"
    hadoop = catalog_conf(conf_for({"name": "l", "type": "hadoop", "warehouse": "rel/wh"}).catalog)
    assert hadoop["spark.sql.catalog.l.warehouse"].endswith("/rel/wh")


def test_cluster_mode_adds_only_catalog_settings():
    conf = session_conf(
        conf_for(
            {"name": "g", "type": "glue", "warehouse": "s3://b/"},
            mode="cluster",
            conf={"spark.sql.adaptive.enabled": True},
        )
    )
    assert "spark.jars" not in conf and "spark.sql.shuffle.partitions" not in conf
    assert conf["spark.sql.extensions"] == engine.EXTENSIONS
    assert conf["spark.sql.adaptive.enabled"] == "true"


def test_local_mode_uses_the_pinned_jars():
    conf = session_conf(conf_for({"name": "l", "type": "hadoop", "warehouse": "/tmp/wh"}))
    jars = conf["spark.jars"].split(",")
    assert [j.rsplit("/", 1)[1] for j in jars] == ["iceberg-spark-runtime-3.5_2.12-1.10.2.jar"]


def test_a_jar_that_cannot_be_fetched_says_how_to_fix_it(monkeypatch, tmp_path):
    from lakehouse_ops.engine import jars

    monkeypatch.setenv("LAKEHOUSE_OPS_JAR_CACHE", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_OPS_MAVEN_REPOSITORY", "http://127.0.0.1:9/maven2")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.m2 either
    with pytest.raises(EngineError, match="cannot fetch org.apache.iceberg:iceberg-spark-runtime.*LAKEHOUSE_OPS_MAVEN"):
        jars.jar(jars.iceberg_runtime("3.5"))


def test_an_iceberg_release_that_is_not_one_or_has_no_build_for_the_spark_line_is_named(monkeypatch, tmp_path):
    """LAKEHOUSE_OPS_ICEBERG_VERSION: spaces around it are taken away; a value that is no release number is refused
    naming the variable; a release Maven Central has no build of for this Spark line says the variable chose it."""
    import http.server
    import threading

    from lakehouse_ops.engine import jars

    monkeypatch.setenv("LAKEHOUSE_OPS_ICEBERG_VERSION", " 1.10.0 ")
    assert jars.iceberg_runtime("4.0.2")[2] == "1.10.0"
    for wrong in ("1.10", "latest", "1.10.0-amzn-0"):
        monkeypatch.setenv("LAKEHOUSE_OPS_ICEBERG_VERSION", wrong)
        with pytest.raises(EngineError, match="LAKEHOUSE_OPS_ICEBERG_VERSION=.* is no Iceberg release"):
            jars.iceberg_runtime("3.5.1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("LAKEHOUSE_OPS_ICEBERG_VERSION", "1.9.2")
        monkeypatch.setenv("LAKEHOUSE_OPS_JAR_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("LAKEHOUSE_OPS_MAVEN_REPOSITORY", "http://127.0.0.1:%d/empty" % server.server_port)
        monkeypatch.setenv("HOME", str(tmp_path))
        with pytest.raises(EngineError, match=r"404.*LAKEHOUSE_OPS_ICEBERG_VERSION=1.9.2 chose this Iceberg release"):
            jars.jar(jars.iceberg_runtime("4.0.2"))
    finally:
        server.shutdown()


def test_missing_java_says_how_to_fix_it(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineError, match="Java was not found.*JAVA_HOME"):
        engine.check_java()


def test_config_and_report_on_s3(aws_env, tmp_path):
    from lakehouse_ops.aws.clients import client

    s3 = client("s3")
    s3.create_bucket(Bucket="ops-bucket")
    s3.put_object(
        Bucket="ops-bucket",
        Key="conf/lakehouse-ops.yaml",
        Body=b"catalog: {name: g, type: glue, warehouse: 's3://lake/wh/'}\n",
    )
    config = load_config("s3://ops-bucket/conf/lakehouse-ops.yaml", environ={})
    assert config.catalog.warehouse == "s3://lake/wh/"
    write_report({"ok": True, "tables": []}, "s3://ops-bucket/reports/run.json")
    body = s3.get_object(Bucket="ops-bucket", Key="reports/run.json")["Body"].read()
    assert json.loads(body) == {"ok": True, "tables": []}


def test_glue_catalog_lists_every_tables_location_from_its_table_listing(aws_env):
    """Orphan removal must know every table's location, Iceberg or not, without reading each table's metadata."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.config import config_from_dict
    from lakehouse_ops.health import open_tables

    glue = client("glue")
    glue.create_database(DatabaseInput={"Name": "sales"})
    for name, location, kind in (
        ("events", "s3://lake/sales/events", "ICEBERG"),
        ("events_archive", "s3://lake/sales/events/archive", None),  # a Hive table nested in it
    ):
        parameters = {"table_type": kind, "metadata_location": location + "/metadata/v1.metadata.json"} if kind else {}
        glue.create_table(
            DatabaseName="sales",
            TableInput={"Name": name, "StorageDescriptor": {"Location": location}, "Parameters": parameters},
        )
    catalog = {
        "name": "glue_catalog",
        "type": "glue",
        "warehouse": "s3://lake/",
        "properties": {"glue.endpoint": aws_env, "glue.region": "us-east-1"},
    }
    tables = open_tables(config_from_dict({"catalog": catalog}).catalog)
    assert tables.locations() == {
        "sales.events": "s3://lake/sales/events",
        "sales.events_archive": "s3://lake/sales/events/archive",
    }
    # The health cache's pointer: the entry's metadata_location, read without opening the metadata file (which
    # does not even exist here); a table without one, or absent, has none.
    assert tables.pointer("sales.events") == "s3://lake/sales/events/metadata/v1.metadata.json"
    assert tables.pointer("sales.events_archive") is None and tables.pointer("sales.nowhere") is None


def test_files_on_s3_are_found_by_listing_their_prefixes(aws_env):
    """One ListObjectsV2 per directory (moto's server, over HTTP): sizes and times of the objects asked for."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.engine.fs import stat_many

    s3 = client("s3")
    s3.create_bucket(Bucket="stat-bucket")
    keys = ["t/data/day=1/a.parquet", "t/data/day=1/b c.parquet", "t/data/day=2/a.parquet", "t/data/day=10/a.parquet"]
    for i, key in enumerate(keys):
        s3.put_object(Bucket="stat-bucket", Key=key, Body=b"x" * (i + 1))
    asked = ["s3://stat-bucket/" + k for k in keys[:3]] + [
        "s3a://stat-bucket/t/data/day=1/missing.parquet",
        "s3://stat-bucket/t/data/day=3/a.parquet",
    ]
    found = stat_many(None, asked)
    assert sorted(found) == sorted(asked[:3])  # day=10 shares a prefix with day=1 and is not asked for
    assert [found["s3://stat-bucket/" + k].size for k in keys[:3]] == [1, 2, 3]
    head = s3.head_object(Bucket="stat-bucket", Key=keys[0])
    assert found["s3://stat-bucket/" + keys[0]].mtime_ms == int(head["LastModified"].timestamp() * 1000)
