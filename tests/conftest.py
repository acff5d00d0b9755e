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
