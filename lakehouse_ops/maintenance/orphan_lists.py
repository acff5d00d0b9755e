"""The file lists orphan removal hands to Iceberg and checks against: an external listing cut to one table's
files, the checked candidates as a `file_list_view`, and paths spelled the one way `paths.normalize` spells them
(in SQL too)."""

import uuid
from typing import Any, Dict, List, Sequence

from lakehouse_ops.config.policy import FileListSource
from lakehouse_ops.engine.frames import frame
from lakehouse_ops.paths import normalize
from lakehouse_ops.sqltext import quote_string, table_ref


def normalized_sql(column: str) -> str:
    """SQL: the path in `column` spelled as `paths.normalize` spells it (s3a/s3n as s3, file: forms bare)."""
    return "regexp_replace(regexp_replace(%s, '^s3[an]://', 's3://'), '^file:/+', '/')" % column


def under_sql(column: str, location: str) -> str:
    """SQL: `column` (a path) lies under the directory `location`."""
    base = normalize(location).rstrip("/") + "/"
    return "substring(%s, 1, %d) = %s" % (normalized_sql(column), len(base), quote_string(base))


def register_file_list(spark: Any, source: FileListSource, location: str, nested: Sequence[str]) -> str:
    """The external listing, cut to the files under the table location and outside the tables nested in it (a
    sibling table sharing a name prefix, or a nested one, never contributes a candidate)."""
    df = spark.read.format(source.format)
    if source.format == "csv":
        df = df.option("header", "true")
    df = df.load(source.path).selectExpr(
        "CAST(`%s` AS STRING) AS file_path" % source.file_path_column,
        "CAST(`%s` AS TIMESTAMP) AS last_modified" % source.last_modified_column,
    )
    df = df.where(under_sql("file_path", location))
    for inner in nested:
        df = df.where("NOT (%s)" % under_sql("file_path", inner))
    return temp_view(df)


def temp_view(df: Any) -> str:
    name = "lakehouse_ops_files_%s" % uuid.uuid4().hex[:12]
    df.createOrReplaceTempView(name)
    return name


def as_location_path(path: str, location: str) -> str:
    """`path` spelled with the table location's own prefix: Iceberg keeps only list entries under `location`."""
    return location.rstrip("/") + normalize(path)[len(normalize(location).rstrip("/")) :]


def candidate_view(spark: Any, stats: Dict[str, Any], location: str) -> str:
    paths = list(stats)
    columns = {"file_path": [as_location_path(p, location) for p in paths], "ms": [stats[p][1] for p in paths]}
    df = frame(spark, columns, "file_path string, ms long")
    return temp_view(df.selectExpr("file_path", "timestamp_millis(ms) AS last_modified"))


def referenced(spark: Any, catalog: str, table: str, paths: List[str]) -> List[str]:
    """Those of `paths` (normalized) that any snapshot of the table still references (data, delete or manifest
    files): a join in Spark, so the driver never holds every file the table ever referenced."""
    if not paths:
        return []
    ref = table_ref(catalog, table)
    wanted = frame(spark, {"p": sorted({normalize(p) for p in paths})}, "p string")
    live = spark.sql(
        "SELECT %s AS p FROM %s.all_files UNION ALL SELECT %s AS p FROM %s.all_manifests"
        % (normalized_sql("file_path"), ref, normalized_sql("path"), ref)
    )
    return sorted({row.p for row in live.join(wanted, "p", "left_semi").collect()})
