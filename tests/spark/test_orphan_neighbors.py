"""Orphan removal next to other tables: the files of a table nested in this table's location, of a table sharing
it, or of a sibling whose location shares a name prefix (`.../events` and `.../events_v2`) are never removed."""

import os

import pytest

from lakehouse_ops.health import open_tables
from lakehouse_ops.runner import MaintenanceRunner

from conftest import make_config
from helpers import CATALOG
from table_factory import create_streaming_table, plant_orphan

pytestmark = pytest.mark.spark


class WithNeighbor:
    """The catalog's tables, plus one more table located at `location` (as Glue allows: any location)."""

    def __init__(self, tables, name, location):
        self.tables, self.extra = tables, {name: location}

    def load(self, table):
        return self.tables.load(table)

    def list_tables(self):
        return self.tables.list_tables()

    def locations(self):
        return dict(self.tables.locations(), **self.extra)

    def reaches(self):
        found = self.tables.reaches()
        found.prefixes.update({name: (location,) for name, location in self.extra.items()})
        return found


@pytest.fixture
def events(spark, table_name):
    create_streaming_table(spark, CATALOG, table_name, days=1, commits=2, rows_per_commit=20, files_per_commit=1)
    location = (
        spark.sql("DESCRIBE TABLE EXTENDED lake.%s" % table_name).filter("col_name = 'Location'").collect()[0].data_type
    )
    return table_name, location.replace("file:", "")


def _remove_orphans(spark, config, table, catalog_tables):
    runner = MaintenanceRunner(config, spark=spark, only=["remove_orphan_files"], catalog_tables=catalog_tables)
    return runner.run([table])["tables"][0]["actions"][0]


def test_files_of_a_table_nested_in_the_location_are_never_candidates(spark, warehouse, events):
    table, location = events
    config = make_config(warehouse)
    nested = os.path.join(location, "archive")
    theirs = plant_orphan(nested, "part-0001.parquet", age_hours=500)  # a live file of the nested table
    ours = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    tables = WithNeighbor(open_tables(config.catalog), "other.archive", "file:" + nested)
    result = _remove_orphans(spark, config, table, tables)
    assert result["status"] == "done", result
    assert result["outputs"]["deleted_files"] == 1 and result["outputs"]["nested_table_files_skipped"] == 1
    assert os.path.exists(theirs) and not os.path.exists(ours)


def test_a_table_sharing_the_location_makes_the_removal_refuse(spark, warehouse, events):
    table, location = events
    config = make_config(warehouse)
    ours = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    for neighbor in (location, os.path.dirname(location)):  # the same location, and one above it
        tables = WithNeighbor(open_tables(config.catalog), "other.same_place", neighbor + "/")
        result = _remove_orphans(spark, config, table, tables)
        assert result["status"] == "failed", result
        assert "shares its location" in result["reason"] and "other.same_place" in result["reason"]
        assert "nothing deleted" in result["reason"] and os.path.exists(ours)


def test_a_file_list_naming_a_sibling_tables_files_removes_only_this_tables_orphans(spark, warehouse, events, tmp_path):
    table, location = events
    ours = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    sibling = plant_orphan(location + "_v2", "part-0001.parquet", age_hours=500)  # `events_v2`: a prefix sibling
    live = [r.file_path for r in spark.sql("SELECT file_path FROM lake.%s.all_files" % table).collect()]
    live += [r.path for r in spark.sql("SELECT path FROM lake.%s.all_manifests" % table).collect()]
    rows = [(p.replace("file:", ""), "2020-01-01 00:00:00") for p in live + [ours, sibling]]
    inventory = str(tmp_path / "inventory")
    spark.createDataFrame(rows, "key string, modified string").write.parquet(inventory)
    file_list = {"path": inventory, "format": "parquet", "file_path_column": "key", "last_modified_column": "modified"}
    config = make_config(warehouse, defaults={"orphans": {"file_list": file_list}})
    result = _remove_orphans(spark, config, table, open_tables(config.catalog))
    assert result["status"] == "done", result
    assert result["outputs"]["candidates"] == 1 and result["outputs"]["deleted_files"] == 1
    assert os.path.exists(sibling) and not os.path.exists(ours)


def _age(directory, hours):
    import time

    moment = time.time() - hours * 3600
    for folder, _, files in os.walk(directory):
        for name in files:
            os.utime(os.path.join(folder, name), (moment, moment))


def test_a_table_created_inside_another_tables_directory_is_never_touched(spark, warehouse, events):
    """The Hadoop catalog lets `ns.events.archive` live at <warehouse>/ns/events/archive, and no catalog listing
    shows it: its metadata, found under the location, keeps every one of its files."""
    table, location = events
    archive = "lake.%s.archive" % table
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.%s" % table)
    spark.sql("CREATE TABLE %s (id BIGINT) USING iceberg" % archive)
    for start in (0, 10):
        spark.sql("INSERT INTO %s SELECT id FROM range(%d, %d)" % (archive, start, start + 10))
    _age(os.path.join(location, "archive"), 500)
    ours = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    config = make_config(warehouse)
    result = _remove_orphans(spark, config, table, open_tables(config.catalog))
    assert result["status"] == "done", result
    assert result["outputs"]["deleted_files"] == 1 and not os.path.exists(ours)
    assert [r.endswith("/archive") for r in result["outputs"]["tables_inside_location"]] == [True]
    spark.sql("REFRESH TABLE %s" % archive)
    assert spark.table(archive).count() == 20


def test_files_another_table_writes_inside_the_location_are_never_taken(spark, warehouse, events, table_name):
    table, location = events
    other = table_name + "_writer"
    spark.sql(
        "CREATE TABLE lake.%s (id BIGINT) USING iceberg TBLPROPERTIES ('write.data.path'='%s/their-data')"
        % (other, location)
    )
    spark.sql("INSERT INTO lake.%s SELECT id FROM range(5)" % other)
    _age(os.path.join(location, "their-data"), 500)
    config = make_config(warehouse)
    result = _remove_orphans(spark, config, table, open_tables(config.catalog))
    assert result["status"] == "done", result
    assert result["outputs"]["deleted_files"] == 0
    assert spark.table("lake.%s" % other).count() == 5


class Unreadable(WithNeighbor):
    def reaches(self):
        found = self.tables.reaches()
        found.unknown["other.hidden"] = "its metadata cannot be read (AccessDenied)"
        return found


def test_a_table_whose_files_cannot_be_located_stops_the_removal(spark, warehouse, events):
    table, location = events
    ours = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    config = make_config(warehouse)
    result = _remove_orphans(spark, config, table, Unreadable(open_tables(config.catalog), "x.y", "s3://b/x"))
    assert result["status"] == "failed" and "cannot tell where other.hidden" in result["reason"], result
    assert os.path.exists(ours)
    told = make_config(warehouse, defaults={"orphans": {"ignore_tables": ["other.*"]}})
    result = _remove_orphans(spark, told, table, Unreadable(open_tables(told.catalog), "x.y", "s3://b/x"))
    assert result["status"] == "done" and not os.path.exists(ours), result


@pytest.mark.parametrize(
    "case",
    [
        "deep_namespace",  # a table four namespace levels deep writes into the location
        "double_slash",  # its data path is '<location>//their-data'
        "dot_dot",  # its data path is '<warehouse>/ns/<sibling>/../<events>/their-data'
        "glob_name",  # ns.events.`archive[1]` at <location>/archive[1]: a name that reads as a pattern
    ],
)
def test_another_tables_files_however_its_path_is_spelled_are_never_taken(spark, warehouse, events, case):
    table, location = events
    ns, name = table.split(".")
    if case == "glob_name":
        other = "%s.`archive[1]`" % table
        spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.%s" % table)
        spark.sql("CREATE TABLE lake.%s (id BIGINT) USING iceberg" % other)
        theirs = os.path.join(location, "archive[1]")
    else:
        other, data_path = {
            "deep_namespace": ("a%s.b.c.d.w_%s" % (ns, name), location + "/their-data"),
            "double_slash": (table + "_w2", location + "//their-data"),
            "dot_dot": (table + "_w3", "%s/%s_x/../%s/their-data" % (os.path.dirname(location), name, name)),
        }[case]
        spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.%s" % other.rsplit(".", 1)[0])
        spark.sql(
            "CREATE TABLE lake.%s (id BIGINT) USING iceberg TBLPROPERTIES ('write.data.path'='%s')" % (other, data_path)
        )
        theirs = os.path.join(location, "their-data")
    spark.sql("INSERT INTO lake.%s SELECT id FROM range(5)" % other)
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(theirs) for f in names)
    assert files
    _age(theirs, 500)
    ours = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    config = make_config(warehouse)
    result = _remove_orphans(spark, config, table, open_tables(config.catalog))
    assert result["status"] == "done", result
    assert result["outputs"]["deleted_files"] == 1 and not os.path.exists(ours)
    assert [f for f in files if not os.path.exists(f)] == []
    spark.sql("REFRESH TABLE lake.%s" % other)
    assert spark.table("lake.%s" % other).count() == 5


def test_paths_are_compared_in_sql_as_in_python(spark):
    """The references read in Spark and the candidates held in the driver are spelled one way."""
    from lakehouse_ops.maintenance.orphan_lists import normalized_sql
    from lakehouse_ops.paths import normalize

    paths = [
        "s3a://b/wh//ns/t/data/x.parquet",
        "s3n://b/wh/ns/t_x/../t/./data/x.parquet",
        "file:/tmp/wh/ns/t/a/b/../../data/x.parquet",
        "file:///tmp/wh/ns//t/data/x.parquet",
        "/tmp/wh/ns/t/data/x.parquet",
        "s3://b/wh/ns/t/data/a b+c=d.parquet",
        "/wh/ns/a/b/c/d/e/../../../../../t/data/x.parquet",  # five deep
        "s3://b/./wh/ns/t/data/x.parquet",
        "s3://b/../wh/ns/t/data/x.parquet",  # never above the bucket
        "/wh/ns/t/data/.",
        "/wh/ns/t/data/x/..",
        "/wh/ns/t/.../x.parquet",
        "/wh/ns/t/..x/../data/.hidden",
    ]
    df = spark.createDataFrame([(p,) for p in paths], "p string")
    got = [r.n for r in df.selectExpr("%s AS n" % normalized_sql("p")).collect()]
    assert got == [normalize(p) for p in paths]
    assert got[1] == got[0] == "s3://b/wh/ns/t/data/x.parquet" and got[7] == got[8] == got[0]
    assert got[6] == "/wh/ns/t/data/x.parquet" and got[9] == got[10] == "/wh/ns/t/data"
    assert got[11] == "/wh/ns/t/.../x.parquet" and got[12] == "/wh/ns/t/data/.hidden"


@pytest.mark.parametrize("change", ["unset", "moved"])
def test_files_a_table_wrote_into_the_location_before_its_data_path_changed_are_never_taken(
    spark, warehouse, events, table_name, change
):
    """Another table wrote into this location, then its data path was unset or moved: its current metadata no
    longer says where those files are, but it still references them. They lie outside this table's own data and
    metadata directories, so they are left alone and named."""
    table, location = events
    other = table_name + "_dp_" + change
    spark.sql(
        "CREATE TABLE lake.%s (id BIGINT) USING iceberg TBLPROPERTIES ('write.data.path'='%s/their-data')"
        % (other, location)
    )
    spark.sql("INSERT INTO lake.%s SELECT id FROM range(5)" % other)
    if change == "unset":
        spark.sql("ALTER TABLE lake.%s UNSET TBLPROPERTIES ('write.data.path')" % other)
    else:
        spark.sql("ALTER TABLE lake.%s SET TBLPROPERTIES ('write.data.path'='%s/elsewhere')" % (other, warehouse))
    theirs = os.path.join(location, "their-data")
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(theirs) for f in names)
    listed = [f for f in files if not os.path.basename(f).startswith(".")]  # the hidden checksums are not listed
    _age(theirs, 500)
    ours = plant_orphan(location, "old-orphan.parquet", age_hours=100)
    config = make_config(warehouse)
    result = _remove_orphans(spark, config, table, open_tables(config.catalog))
    assert result["status"] == "done", result
    outputs = result["outputs"]
    assert outputs["deleted_files"] == 1 and not os.path.exists(ours)
    assert files and [f for f in files if not os.path.exists(f)] == []
    assert outputs["foreign_files_left"]["files"] == len(listed)
    assert all("/their-data/" in f for f in outputs["foreign_files_left"]["sample"])
    spark.sql("REFRESH TABLE lake.%s" % other)
    assert spark.table("lake.%s" % other).count() == 5
