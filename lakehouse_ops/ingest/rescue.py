"""Reading JSON lines with `ingest.schema_evolution: rescue`: a record is kept whatever its fields; each field the
target lacks (names match exactly, as Spark's JSON reader matches them) or whose value does not fit its column's
type goes to the rescued-data column as one JSON object (`{"field": "raw value"}`), and that column is null.
Only a line that is not a JSON object at all is a misfit (quarantined, or its file dead-lettered without a
quarantine table).

Spark's JSON parser keeps the values of a record that fit and nulls only those that do not, so one bad value
never nulls the others.
"""

from typing import Any, Iterable

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.ingest.evolve import CORRUPT

NOT_JSON = "a line of the file is not a JSON object"


def load_rescued(
    spark: Any, cfg: IngestConfig, schema: Any, paths: Iterable[str], quarantine: bool, options: Any
) -> Any:
    """Like read.load for JSON, plus `cfg.rescued_data_column`. `options`: the Hadoop settings of the read.

    Every line is parsed twice: under the target's schema (Spark keeps the values that fit and flags the record)
    and for its top-level keys. Only a flagged record, or one with a key the target lacks, is parsed a third time
    (as a map of raw values) to build its rescued data.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    text = spark.read.format("text").options(**options).load(list(paths))
    text = text.selectExpr("value", "_metadata.file_path AS _lakehouse_ops_file").filter(F.trim("value") != "")
    json_options = dict(cfg.read_options, columnNameOfCorruptRecord=CORRUPT)
    with_flag = StructType(list(schema.fields) + [StructField(CORRUPT, StringType())])
    names = [f.name for f in schema.fields]
    lines = text.select(
        "value",
        "_lakehouse_ops_file",
        F.from_json("value", with_flag, json_options).alias("_parsed"),
        F.json_object_keys("value").alias("_keys"),
    )
    unparsed = F.col("_keys").isNull()
    if not quarantine:
        # No quarantine table: a line that is not a JSON object fails its file (dead-lettered with the reason).
        lines = lines.filter(F.coalesce(F.when(unparsed, F.raise_error(F.lit(NOT_JSON))), F.lit(True)))
    known = F.array(*[F.lit(n) for n in names])
    suspect = F.col("_parsed")[CORRUPT].isNotNull() | (F.size(F.array_except("_keys", known)) > 0)
    # The names whose values were taken (nulls dropped: array_contains over a null element is null, not false).
    kept = F.filter(
        F.array(*[F.when(F.col("_parsed")[n].isNotNull(), F.lit(n)) for n in names]), lambda n: n.isNotNull()
    )
    raw = F.from_json("value", "MAP<STRING, STRING>", dict(cfg.read_options))
    rescued = F.map_filter(raw, lambda k, v: v.isNotNull() & ~F.array_contains(kept, k))
    columns = [F.col("_parsed")[n].alias(n) for n in names]
    columns.append(
        F.when(~unparsed & suspect & (F.size(rescued) > 0), F.to_json(rescued)).alias(cfg.rescued_data_column)
    )
    if quarantine:
        columns.append(F.when(unparsed, F.col("value")).alias(CORRUPT))
    return lines.select(*columns, "_lakehouse_ops_file")


EXTRA_FIELDS = 10  # trailing values past the target's columns kept in the rescued data, per record


def rescue_csv(df: Any, cfg: IngestConfig, schema: Any) -> Any:
    """CSV with `rescue`: `df` as Spark's CSV reader gives it in PERMISSIVE mode (values that do not fit are null,
    the record's line in `_corrupt_record`). For those records, each value that did not fit (and each value past
    the target's columns, as `_extra_N`) goes to the rescued-data column; the record is kept (never quarantined:
    a CSV line always splits into values)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    names = [f.name for f in schema.fields]
    extras = ["_extra_%d" % i for i in range(1, EXTRA_FIELDS + 1)]
    as_text = StructType([StructField(n, StringType()) for n in names + extras])
    options = {k: v for k, v in cfg.read_options.items() if k != "header"}
    raw = F.from_csv(F.col(CORRUPT), as_text.simpleString(), options)
    misfits = [F.when(F.col(n).isNull() & (raw[n] != ""), raw[n]).alias(n) for n in names]
    misfits += [raw[n].alias(n) for n in extras]
    rescued = F.to_json(F.struct(*misfits))  # null fields are left out
    column = F.when(F.col(CORRUPT).isNotNull() & (rescued != "{}"), rescued)
    return df.withColumn(cfg.rescued_data_column, column).withColumn(CORRUPT, F.lit(None).cast("string"))
