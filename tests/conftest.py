"""Shared fixtures: one local Spark session (built by the library's own builder) and one warehouse per run."""

import itertools
import os

import pytest

from lakehouse_ops.config import config_from_dict

from commit_locks import lock_settings

CATALOG = "lake"


def pytest_collection_modifyitems(items):
    """The quick loop (`pytest -m "not slow"`, under 2 minutes) keeps every test without Spark and one or two
    Spark tests per area (marked `fast`); every other Spark test counts as slow. `.ci/run` runs them all."""
    for item in items:
        if item.get_closest_marker("spark") and not item.get_closest_marker("fast"):
            item.add_marker(pytest.mark.slow)


PSEUDO_API_KEY = "test-api-key-0123456789"
_counter = itertools.count()


def config_data(warehouse, defaults=None, tables=None, master="local[2]", **sections):
    """The config for the test warehouse, as YAML would hold it; every process built from it commits under the
    same cross-process lock."""
    lock_conf, lock_props = lock_settings(str(warehouse).rstrip("/") + "-commit-locks")
    conf = {
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.memory": "2g",
        # Python workers read the service API key from their environment.
        "spark.executorEnv.LAKEHOUSE_OPS_PSEUDO_API_KEY": PSEUDO_API_KEY,
        # s3:// through S3A at moto's server (the endpoint comes from the environment, as aws_env sets it).
        "spark.hadoop.fs.s3a.access.key": "testing",
        "spark.hadoop.fs.s3a.secret.key": "testing",
    }
    conf.update(lock_conf)
    data = {
        "catalog": {"name": CATALOG, "type": "hadoop", "warehouse": str(warehouse), "properties": lock_props},
        "spark": {"mode": "local", "master": master, "conf": conf, "local_s3": True},
        "defaults": defaults or {},
        # Run history is tested where it is the subject (test_history.py, the demo); elsewhere it would only add
        # an append to every run.
        "history": {"enabled": False},
    }
    if tables is not None:
        data["tables"] = tables
    data.update(sections)
    return data


def make_config(warehouse, defaults=None, tables=None, **sections):
    return config_from_dict(config_data(warehouse, defaults, tables, **sections), source="test.yaml")


def write_config(path, warehouse, **kwargs):
    """The same config as a YAML file, for the tests' other processes (writers, workers, the CLI)."""
    import yaml

    path.write_text(yaml.safe_dump(config_data(warehouse, **kwargs)))
    return str(path)


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory):
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def spark(warehouse, moto_server):
    """The run's one session; it reads s3:// from moto's server (its S3A endpoint is fixed when it starts)."""
    from lakehouse_ops.aws.clients import ENDPOINT_ENV
    from lakehouse_ops.engine import build_session

    # The JVM takes its environment when it starts: the AWS SDK inside (GlueCatalog, S3FileIO) finds the test
    # credentials there, as it would an instance profile on EMR.
    started_with = {ENDPOINT_ENV: moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    started_with["AWS_REGION"] = "us-east-1"
    before = {key: os.environ.get(key) for key in started_with}
    os.environ.update(started_with)
    try:
        session = build_session(make_config(warehouse))
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    yield session
    session.stop()


@pytest.fixture
def table_name():
    """A fresh `namespace.table` name per test, so tests never share a table."""
    return "t%d.events_%d_%d" % (os.getpid() % 1000, next(_counter), os.getpid())


@pytest.fixture(scope="session")
def moto_server():
    """moto's standalone server on a free loopback port; AWS clients reach it over real HTTP."""
    from lakehouse_ops.aws.local import start_moto

    proc, url = start_moto()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def aws_env(moto_server, monkeypatch):
    """Point every client built by lakehouse_ops.aws at the moto server, with dummy credentials."""
    monkeypatch.setenv("LAKEHOUSE_OPS_AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto_server


@pytest.fixture(scope="session")
def pseudo_server():
    """The reference pseudonymization service over HTTP on loopback, one per run (its `url` attribute is set)."""
    from lakehouse_ops.pseudo.cipher import Keyring
    from lakehouse_ops.pseudo.service import PseudonymService, serve

    # One key for both directions here (the service allows it when told so: reidentify_api_key).
    service = PseudonymService(Keyring.generate(), PSEUDO_API_KEY, reidentify_api_key=PSEUDO_API_KEY)
    server, service.url = serve(service)
    yield service
    server.shutdown()


@pytest.fixture
def pseudo_service(pseudo_server):
    """The shared service with no fault left over from another test, and none left behind for the next."""
    pseudo_server.clear_faults()
    yield pseudo_server
    pseudo_server.clear_faults()


def _drop_glue_databases(glue):
    for page in glue.get_paginator("get_databases").paginate():
        for database in page["DatabaseList"]:
            name = database["Name"]
            for tables in glue.get_paginator("get_tables").paginate(DatabaseName=name):
                for table in tables["TableList"]:
                    glue.delete_table(DatabaseName=name, Name=table["Name"])
            glue.delete_database(Name=name)


@pytest.fixture
def glue_lake(spark, aws_env, table_name):
    """A Glue catalog (moto) whose warehouse is a versioned S3 bucket, on the run's session through Iceberg's
    GlueCatalog and S3FileIO: `config(**sections)` gives its config, `write(path, **sections)` the same as a YAML file;
    the bucket's name is `bucket`."""
    from types import SimpleNamespace

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.config import config_from_dict
    from lakehouse_ops.engine.session import catalog_conf

    # The Glue catalog is one per account, and orphan removal reads every table in it: what earlier tests
    # registered (some on purpose without readable metadata) is dropped, so each lake starts as a new account's.
    _drop_glue_databases(client("glue"))
    s3 = client("s3")
    bucket = "lake-" + table_name.replace(".", "-").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # A catalog of its own per test: Spark keeps a catalog as it was first configured.
    catalog = {"name": "glue_%d" % next(_counter), "type": "glue", "warehouse": "s3://%s/warehouse" % bucket}

    def config(**sections):
        data = config_data("/unused", **sections)
        data["catalog"] = catalog
        return config_from_dict(data, source="glue-test.yaml")

    def write(path, **sections):
        """The same config as a YAML file, for the CLI and the tests' other processes."""
        import yaml

        data = config_data("/unused", **sections)
        data["catalog"] = catalog
        path.write_text(yaml.safe_dump(data))
        return str(path)

    for key, value in catalog_conf(config().catalog).items():
        spark.conf.set(key, value)
    namespace = "%s_glue_%d" % (table_name.split(".")[0], next(_counter))
    return SimpleNamespace(
        config=config, write=write, bucket=bucket, s3=s3, namespace=namespace, catalog=catalog["name"]
    )


@pytest.fixture
def no_hadoop_s3(spark):
    """This session's Hadoop without its s3:// filesystem (and no cached instance of it), for one test."""
    from lakehouse_ops.engine import fs

    conf = spark._jsc.hadoopConfiguration()
    impl = conf.get("fs.s3.impl")
    conf.unset("fs.s3.impl")
    conf.set("fs.s3.impl.disable.cache", "true")
    fs._hadoop_has.clear()
    try:
        yield
    finally:
        conf.set("fs.s3.impl", impl)
        conf.unset("fs.s3.impl.disable.cache")
        fs._hadoop_has.clear()
