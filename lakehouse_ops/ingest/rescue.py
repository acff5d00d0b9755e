"""Reading with `ingest.schema_evolution: rescue` (JSON lines and CSV below; Parquet and Avro at the end).

JSON lines: a record is kept whatever its fields; each field the target lacks (names match exactly, as Spark's
JSON reader matches them) or whose value does not fit its column's type goes to the rescued-data column as one
JSON object (`{"field": "raw value"}`), and that column is null.
Only a line that is not a JSON object at all is a misfit (quarantined, or its file dead-lettered without a
quarantine table).

Spark's JSON parser keeps the values of a record that fit and nulls only those that do not, so one bad value
never nulls the others.
"""

import json
from typing import Any, Dict, Iterable, Iterator, List

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


def rescued_table(records: List[Dict[str, Any]], arrow_schema: Any, rescued_column: str) -> Any:
    """An Arrow table of `records` (dicts, as Avro or Parquet files hold them) in the target's columns, plus the
    rescued-data column: a value that does not convert to its column's type (no casting: the file declares a type)
    is null there and kept, as JSON, in the rescued data with every field the target lacks."""
    import pyarrow as pa

    names = [f.name for f in arrow_schema]
    rescued: List[Dict[str, Any]] = [{k: v for k, v in r.items() if k not in names and v is not None} for r in records]
    columns = []
    for field in arrow_schema:
        values = [r.get(field.name) for r in records]
        try:
            columns.append(pa.array(values, type=field.type))
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        kept = []
        for i, value in enumerate(values):
            try:
                pa.array([value], type=field.type)
                kept.append(value)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                kept.append(None)
                rescued[i][field.name] = value
        columns.append(pa.array(kept, type=field.type))
    text = [json.dumps(r, default=str, sort_keys=True) if r else None for r in rescued]
    return pa.Table.from_arrays(columns + [pa.array(text, pa.string())], names=names + [rescued_column])


def load_declared_rescued(spark: Any, cfg: IngestConfig, schema: Any, paths: Iterable[str], options: Any) -> Any:
    """Parquet or Avro files with `rescue`: read on the executors from the bytes Spark's `binaryFile` source reads
    (pyarrow, fastavro), each record into the target's columns and the rescued data (see rescued_table)."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StringType, StructField, StructType

    extra = [StructField(cfg.rescued_data_column, StringType()), StructField("_lakehouse_ops_file", StringType())]
    out_schema = StructType(list(schema.fields) + extra)
    arrow_schema = to_arrow_schema(schema)
    fmt, rescued_column = cfg.format, cfg.rescued_data_column

    def decode(batches: Iterator[Any]) -> Iterator[Any]:
        import io

        import pyarrow as pa

        for batch in batches:
            for path, content in zip(batch.column("path").to_pylist(), batch.column("content").to_pylist()):
                if fmt == "avro":
                    import fastavro

                    records = list(fastavro.reader(io.BytesIO(content)))
                else:
                    import pyarrow.parquet as pq

                    records = pq.read_table(io.BytesIO(content)).to_pylist()
                if any(not isinstance(r, dict) for r in records):
                    raise ValueError("%s holds values that are not records" % path)
                table = rescued_table([dict(r) for r in records if isinstance(r, dict)], arrow_schema, rescued_column)
                table = table.append_column("_lakehouse_ops_file", pa.array([path] * len(records), pa.string()))
                yield from table.to_batches()

    files = spark.read.format("binaryFile").options(**options).load(list(paths)).select("path", "content")
    return files.mapInArrow(decode, out_schema)
