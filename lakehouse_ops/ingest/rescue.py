"""Reading Parquet and Avro files with `ingest.schema_evolution: rescue` (JSON lines: jsonread.py; CSV: csvread.py).

The files declare their types, so a value fits its column only as it is (no casting: a text "7" in a BIGINT column
is rescued), except that a STRING column takes any value as its text (a numeric id in a pseudonymized column is
protected like any other). Fields match columns regardless of case (names.py); a record naming one column twice
fails its file. Values that do not fit and fields the target lacks go to the rescued-data column as one JSON object.
"""

import json
from typing import Any, Dict, Iterable, Iterator, List

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.ingest.names import as_text, by_column


def rescued_table(records: List[Dict[str, Any]], arrow_schema: Any, rescued_column: str) -> Any:
    """An Arrow table of `records` (dicts keyed by column, see by_column) in the target's columns, plus the
    rescued-data column: a value that does not convert to its column's type (no casting: the file declares a type;
    STRING columns take any value as text) is null there and kept, as JSON, in the rescued data with every field
    the target lacks."""
    import pyarrow as pa

    names = [f.name for f in arrow_schema]
    rescued: List[Dict[str, Any]] = [{k: v for k, v in r.items() if k not in names and v is not None} for r in records]
    columns = []
    for field in arrow_schema:
        values = [r.get(field.name) for r in records]
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            values = [as_text(v) for v in values]
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
    names = [f.name for f in schema.fields]

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
                keyed = [by_column(dict(r), names, path) for r in records if isinstance(r, dict)]
                table = rescued_table(keyed, arrow_schema, rescued_column)
                table = table.append_column("_lakehouse_ops_file", pa.array([path] * len(records), pa.string()))
                yield from table.to_batches()

    files = spark.read.format("binaryFile").options(**options).load(list(paths)).select("path", "content")
    return files.mapInArrow(decode, out_schema)
