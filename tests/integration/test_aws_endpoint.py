"""The AWS endpoint override as a new user meets it: one variable (or `aws.endpoint_url`) sends boto3's clients,
pyiceberg's Glue catalog and S3 FileIO and Spark's catalog settings to moto's server; an endpoint that cannot be
reached, or refuses, is named in one line, in seconds, never as "not found" and never as a traceback."""

import json
import os
import subprocess
import sys
import time

import pytest

from lakehouse_ops.aws.clients import ENDPOINT_ENV, catalog_endpoint_properties, describe_failure, use_aws
from lakehouse_ops.config import config_from_dict
from lakehouse_ops.engine import session_conf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATALOG = {"name": "glue_catalog", "type": "glue", "warehouse": "s3://endpoint-lake/warehouse/"}


@pytest.fixture
def glue_events(aws_env):
    """An Iceberg table in Glue with its metadata and a data file on S3, made through pyiceberg on moto (dropped
    afterwards: moto's state is shared by the whole run)."""
    import pyarrow as pa

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.health import open_tables

    client("s3").create_bucket(Bucket="endpoint-lake")
    tables = open_tables(config_from_dict({"catalog": CATALOG}).catalog)
    tables.catalog.create_namespace("endpoint_sales")
    table = tables.catalog.create_table(
        "endpoint_sales.events", schema=pa.schema([("id", pa.int64()), ("name", pa.string())])
    )
    table.append(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}))
    yield tables
    tables.catalog.drop_table("endpoint_sales.events")
    tables.catalog.drop_namespace("endpoint_sales")


def cli(args, env, timeout=120):
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "lakehouse_ops.cli"] + args, env=env, capture_output=True, text=True, timeout=timeout
    )
    return proc, time.time() - started


def write_config(tmp_path, extra=""):
    path = tmp_path / "glue.yaml"
    path.write_text("catalog: {name: glue_catalog, type: glue, warehouse: 's3://endpoint-lake/warehouse/'}\n" + extra)
    return str(path)


def test_the_endpoint_variable_alone_reaches_glue_s3_and_spark(aws_env, glue_events, tmp_path):
    # No glue.endpoint or s3.endpoint in the catalog's properties: the variable is all there is.
    tables = glue_events
    assert tables.load("endpoint_sales.events").scan().to_arrow().num_rows == 3
    env = dict(os.environ)
    proc, _ = cli(["--config", write_config(tmp_path), "health", "endpoint_sales.events", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    health = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert health["data_files"] == 1 and health["records"] == 3
    # The fleet read through Glue, limited to this test's namespace (other tests' Glue tables, some broken on
    # purpose, may be in the same moto server).
    proc, _ = cli(["--config", write_config(tmp_path), "plan", "--all", "endpoint_sales.*", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    planned = json.loads(proc.stdout[proc.stdout.index("{") :])["tables"]
    assert [e["ok"] for e in planned if e["table"] == "endpoint_sales.events"] == [True], planned
    # Spark's catalog and Hadoop's s3a go to the same endpoint; the catalog's own properties still win.
    conf = session_conf(config_from_dict({"catalog": CATALOG, "spark": {"mode": "cluster"}}))
    assert conf["spark.sql.catalog.glue_catalog.glue.endpoint"] == aws_env
    assert conf["spark.sql.catalog.glue_catalog.s3.endpoint"] == aws_env
    assert conf["spark.hadoop.fs.s3a.endpoint"] == aws_env
    mine = dict(CATALOG, properties={"s3.endpoint": "http://elsewhere:9000"})
    assert session_conf(config_from_dict({"catalog": mine}))["spark.sql.catalog.glue_catalog.s3.endpoint"] == (
        "http://elsewhere:9000"
    )


def test_the_config_key_sets_the_endpoint_unless_the_environment_names_one(monkeypatch):
    for name in (ENDPOINT_ENV, "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, "")  # unset as far as the library goes, and restored after the test
    assert catalog_endpoint_properties("glue") == {}
    config_from_dict({"catalog": CATALOG, "aws": {"endpoint_url": "http://localhost:4566", "region": "eu-west-1"}})
    assert os.environ[ENDPOINT_ENV] == "http://localhost:4566" and os.environ["AWS_REGION"] == "eu-west-1"
    assert catalog_endpoint_properties("glue")["glue.endpoint"] == "http://localhost:4566"
    assert catalog_endpoint_properties("glue")["glue.region"] == "eu-west-1"
    use_aws("http://other:1", "us-west-2")  # the environment (set above) wins
    assert os.environ[ENDPOINT_ENV] == "http://localhost:4566" and os.environ["AWS_REGION"] == "eu-west-1"


SHIP = (
    "ship: {artifacts: 's3://endpoint-artifacts/lakehouse-ops', emr_serverless: {application_id: app1, "
    "execution_role_arn: 'arn:aws:iam::123456789012:role/jobs'}}\n"
)


@pytest.mark.parametrize(
    "command",
    [
        ["health", "endpoint_sales.events"],
        ["plan", "--all"],
        ["submit", "--target", "emr-serverless", "--job", "maintain", "--needy", "--archive", "s3://a/env.tar.gz"],
    ],
)
def test_an_unreachable_endpoint_is_named_in_one_line_within_seconds(tmp_path, command):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    env[ENDPOINT_ENV] = "http://127.0.0.1:9"  # nothing listens there
    proc, seconds = cli(["--config", write_config(tmp_path, SHIP)] + command, env)
    assert proc.returncode == 1, proc.stdout
    assert "cannot reach AWS at http://127.0.0.1:9" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "not found" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("lakehouse-ops:")]) == 1
    assert seconds < 30, seconds


def test_refused_credentials_are_named_as_such(aws_env):
    from botocore.exceptions import ClientError, NoCredentialsError

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no glue:GetTable"}}, "GetTable")
    assert describe_failure(RuntimeError("wrapped")) is None
    assert describe_failure(denied) == "AWS refused the request (AccessDeniedException): " + str(denied)
    try:
        raise ValueError("catalog said no") from NoCredentialsError()
    except ValueError as exc:
        assert describe_failure(exc).startswith("no usable AWS credentials")
