"""Read data files raw, by Iceberg field id, to find which files hold a subject's values; and the path checks the
verification makes."""

from typing import Any, Collection, Dict, List, Sequence, Set, Tuple
from urllib.parse import unquote, unquote_plus

from lakehouse_ops.erasure.files import TableFiles
from lakehouse_ops.paths import glob_escape, normalize

FIELD_ID_READ = "spark.sql.parquet.fieldId.read.enabled"
Holding = Dict[str, Set[str]]  # normalized file path -> the values it holds


def names_value(uri: str, values: Collection[str]) -> bool:
    """Whether a path segment `name=value` (a partition directory) spells one of `values`."""
    for segment in uri.split("/"):  # split first: an encoded value may hold "/" (%2F)
        if "=" not in segment:
            continue
        value = segment.split("=", 1)[1]
        # Iceberg form-encodes partition values in paths (space as "+"); a URI may percent-encode them once more.
        if unquote_plus(value) in values or unquote_plus(unquote(value)) in values:
            return True
    return False


def spark_key(path: str) -> str:
    """Spark reports file paths URL-encoded (file:/a%20b); Iceberg keeps them as written."""
    return normalize(unquote(path))


class RawReader:
    """Read data files raw, by Iceberg field id, in one Spark job per call."""

    def __init__(self, spark: Any, field_ids: Sequence[int]) -> None:
        from pyspark.sql.types import StringType, StructField, StructType

        self.spark = spark
        self.columns = ["f%d" % fid for fid in field_ids]
        self.schema = StructType(
            [StructField("f%d" % fid, StringType(), True, metadata={"parquet.field.id": fid}) for fid in field_ids]
        )

    def frame(self, paths: Sequence[str]) -> Any:
        """(_path, v): every non-null value of the columns, with the file it is in."""
        from pyspark.sql import functions as F

        df = self.spark.read.schema(self.schema).parquet(*[glob_escape(p) for p in paths])
        return df.select(
            F.col("_metadata.file_path").alias("_path"), F.explode(F.array(*self.columns)).alias("v")
        ).where("v IS NOT NULL")

    def holding(self, paths: Sequence[str], values: Collection[str]) -> Holding:
        """{normalized path: set of values} for the files among `paths` holding any of `values` (joined against
        them: subjects never appear in a query's text or plan, so not in Spark's UI or event log)."""
        if not paths or not values:
            return {}
        from lakehouse_ops.engine.frames import frame

        wanted = frame(self.spark, {"v": sorted(values)}, "v string")
        out: Holding = {}
        with FieldIdReads(self.spark):
            rows = self.frame(paths).join(wanted, "v", "left_semi").distinct().collect()
        for row in rows:
            out.setdefault(spark_key(row["_path"]), set()).add(row["v"])
        return out

    def versions(self, paths: Sequence[str]) -> Set[int]:
        """The key versions of the tokens the columns hold in `paths` (each token's first byte)."""
        if not paths:
            return set()
        from lakehouse_ops.pseudo.spark import token_version

        with FieldIdReads(self.spark):
            rows = self.frame(paths).select(token_version("v").alias("k")).distinct().collect()
        return {int(r["k"]) for r in rows if r["k"] is not None}

    def tokens_of(self, paths: Sequence[str], versions: Collection[int]) -> Any:
        """A DataFrame (token) of the distinct tokens of key versions `versions` in `paths` (read lazily: run it
        inside `FieldIdReads`)."""
        from pyspark.sql import functions as F

        from lakehouse_ops.pseudo.spark import token_version

        tokens = self.frame(paths).where(token_version("v").isin(sorted(versions)))
        return tokens.select(F.col("v").alias("token")).distinct()


class FieldIdReads:
    """Spark reads Parquet columns by Iceberg field id while inside (renamed columns are still found)."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def __enter__(self) -> None:
        self.before = self.spark.conf.get(FIELD_ID_READ, None)
        self.spark.conf.set(FIELD_ID_READ, "true")

    def __exit__(self, *exc: Any) -> None:
        if self.before is None:
            self.spark.conf.unset(FIELD_ID_READ)
        else:
            self.spark.conf.set(FIELD_ID_READ, self.before)


def check_unreferenced(raw: RawReader, paths: Sequence[str], values: Collection[str]) -> Tuple[Holding, List[str]]:
    """({path: values} held by unreferenced Parquet files, [paths that cannot be read by field id])."""
    try:
        return raw.holding(paths, set(values)), []
    except Exception:
        if len(paths) == 1:
            return {}, list(paths)
    found: Holding = {}
    unreadable: List[str] = []
    for path in paths:  # one bad file (no field ids, truncated) must not hide the others
        held, bad = check_unreferenced(raw, [path], values)
        found.update(held)
        unreadable += bad
    return found, unreadable


def check_location(
    spark: Any, files: TableFiles, raw: RawReader, values: Collection[str]
) -> Tuple[List[str], Dict[str, int]]:
    """(problems, counts) of the files in the table's location that no snapshot references: Parquet files still
    holding a value, Avro/ORC files that cannot be checked, and paths that spell a value."""
    from lakehouse_ops.engine.fs import list_files

    problems = []
    referenced = files.referenced()
    listed = list_files(spark, files.table.metadata.location)
    unreferenced = [uri for uri, _, _ in listed if spark_key(uri) not in referenced and not uri.endswith(".crc")]
    parquet = [uri for uri in unreferenced if uri.endswith(".parquet")]
    unchecked = [uri for uri in unreferenced if uri.endswith((".avro", ".orc"))]
    leftover, unreadable = check_unreferenced(raw, parquet, values)
    unchecked += unreadable
    if leftover:
        problems.append(
            "%d unreferenced file(s) in the table location still hold the subject (younger than "
            "the orphan age limit, or over its budget): erase again once orphan removal can take "
            "them" % len(leftover)
        )
    if unchecked:
        problems.append(
            "%d unreferenced Avro/ORC file(s) in the table location could not be checked (e.g. %s)"
            % (len(unchecked), unchecked[0].rsplit("/", 1)[-1])
        )
    named = [uri for uri, _, _ in listed if names_value(uri, values)]
    if named:
        problems.append(
            "%d file path(s) in the table location name the subject (identity partition on the column?)" % len(named)
        )
    counts = {
        "files_in_location": len(listed),
        "unreferenced_files": len(unreferenced),
        "unreferenced_parquet_checked": len(parquet),
    }
    return problems, counts
