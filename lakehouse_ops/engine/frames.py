"""DataFrames from values the driver holds (candidate lists, paths to check): through Arrow when pandas is there
(100,000 paths: a fraction of a second), else row by row through Python pickling (seconds)."""

from typing import Any, List, Mapping, Sequence


def frame(spark: Any, columns: Mapping[str, Sequence[Any]], ddl: str) -> Any:
    """A DataFrame of `columns` ({name: values}, all of one length; strings and integers) with the schema `ddl`."""
    names = list(columns)
    try:
        import pandas as pd
    except ImportError:
        rows: List[Any] = list(zip(*(columns[n] for n in names)))
        return spark.createDataFrame(rows, ddl)
    key = "spark.sql.execution.arrow.pyspark.enabled"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        return spark.createDataFrame(pd.DataFrame({n: list(columns[n]) for n in names}), ddl)
    finally:
        spark.conf.set(key, before)
