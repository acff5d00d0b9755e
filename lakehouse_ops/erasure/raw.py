"""Read data files raw, by Iceberg field id, to find which files hold a subject's values; and the path checks the
verification makes."""

from urllib.parse import unquote, unquote_plus

from lakehouse_ops.paths import glob_escape, normalize

FIELD_ID_READ = "spark.sql.parquet.fieldId.read.enabled"


def names_value(uri, values) -> bool:
    """Whether a path segment `name=value` (a partition directory) spells one of `values`."""
    for segment in uri.split("/"):  # split first: an encoded value may hold "/" (%2F)
        if "=" not in segment:
            continue
        value = segment.split("=", 1)[1]
        # Iceberg form-encodes partition values in paths (space as "+"); a URI may percent-encode them once more.
        if unquote_plus(value) in values or unquote_plus(unquote(value)) in values:
            return True
    return False


def spark_key(path):
    """Spark reports file paths URL-encoded (file:/a%20b); Iceberg keeps them as written."""
    return normalize(unquote(path))


class RawReader:
    """Read data files raw, by Iceberg field id, in one Spark job per call."""

    def __init__(self, spark, field_ids) -> None:
        from pyspark.sql.types import StringType, StructField, StructType

        self.spark = spark
        self.columns = ["f%d" % fid for fid in field_ids]
        self.schema = StructType(
            [StructField("f%d" % fid, StringType(), True, metadata={"parquet.field.id": fid}) for fid in field_ids]
        )

    def frame(self, paths):
        from pyspark.sql import functions as F

        df = self.spark.read.schema(self.schema).parquet(*[glob_escape(p) for p in paths])
        return df.select(
            F.col("_metadata.file_path").alias("_path"), F.explode(F.array(*self.columns)).alias("v")
        ).where("v IS NOT NULL")

    def holding(self, paths, values):
        """{normalized path: set of values} for the files among `paths` holding any of `values`."""
        if not paths or not values:
            return {}
        out = {}
        with FieldIdReads(self.spark):
            rows = self.frame(paths).where(self._in(values)).distinct().collect()
        for row in rows:
            out.setdefault(spark_key(row["_path"]), set()).add(row["v"])
        return out

    def distinct_values(self, paths):
        if not paths:
            return []
        with FieldIdReads(self.spark):
            return [r["v"] for r in self.frame(paths).select("v").distinct().collect()]

    @staticmethod
    def _in(values):
        from pyspark.sql import functions as F

        return F.col("v").isin(sorted(values))


class FieldIdReads:
    """Spark reads Parquet columns by Iceberg field id while inside (renamed columns are still found)."""

    def __init__(self, spark) -> None:
        self.spark = spark

    def __enter__(self) -> None:
        self.before = self.spark.conf.get(FIELD_ID_READ, None)
        self.spark.conf.set(FIELD_ID_READ, "true")

    def __exit__(self, *exc) -> None:
        if self.before is None:
            self.spark.conf.unset(FIELD_ID_READ)
        else:
            self.spark.conf.set(FIELD_ID_READ, self.before)


def check_unreferenced(raw, paths, values):
    """({path: values} held by unreferenced Parquet files, [paths that cannot be read by field id])."""
    try:
        return raw.holding(paths, set(values)), []
    except Exception:
        if len(paths) == 1:
            return {}, list(paths)
    found, unreadable = {}, []
    for path in paths:  # one bad file (no field ids, truncated) must not hide the others
        held, bad = check_unreferenced(raw, [path], values)
        found.update(held)
        unreadable += bad
    return found, unreadable
