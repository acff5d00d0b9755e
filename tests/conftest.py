"""Shared fixtures: one local Spark session (built by the library's own builder) and one warehouse per run."""
import itertools
import os

import pytest

from lakehouse_ops.config import config_from_dict

CATALOG = "lake"
_counter = itertools.count()


def make_config(warehouse, defaults=None, tables=None, **sections):
    data = {"catalog": {"name": CATALOG, "type": "hadoop", "warehouse": str(warehouse)},
            "spark": {"mode": "local", "master": "local[2]",
                      "conf": {"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "2g"}},
            "defaults": defaults or {}}
    if tables is not None:
        data["tables"] = tables
    data.update(sections)
    return config_from_dict(data, source="test.yaml")


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory):
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def spark(warehouse):
    from lakehouse_ops.engine import build_session
    session = build_session(make_config(warehouse))
    yield session
    session.stop()


@pytest.fixture
def table_name():
    """A fresh `namespace.table` name per test, so tests never share a table."""
    return "t%d.events_%d_%d" % (os.getpid() % 1000, next(_counter), os.getpid())


@pytest.fixture(scope="session")
def moto_server():
    """moto's standalone server on a free loopback port; AWS clients reach it over real HTTP."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto server did not start on %s" % url)
            time.sleep(0.2)
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
