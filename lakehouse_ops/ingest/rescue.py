"""Reading JSON lines with `ingest.schema_evolution: rescue`: a record is kept whatever its fields; each field the
target lacks (names match exactly, as Spark's JSON reader matches them) or whose value does not fit its column's
type goes to the rescued-data column as one JSON object (`{"field": "raw value"}`), and that column is null.
Only a line that is not a JSON object at all is a misfit (quarantined, or its file dead-lettered without a
quarantine table).

Each field is parsed on its own (`from_json` with a one-field schema), so one bad value never nulls the others.
"""

from typing import Any, Iterable

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.ingest.evolve import CORRUPT

NOT_JSON = "a line of the file is not a JSON object"


def load_rescued(
    spark: Any, cfg: IngestConfig, schema: Any, paths: Iterable[str], quarantine: bool, options: Any
) -> Any:
    """Like read.load for JSON, plus `cfg.rescued_data_column`. `options`: the Hadoop settings of the read."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    text = spark.read.format("text").options(**options).load(list(paths))
    text = text.selectExpr("value", "_metadata.file_path AS _lakehouse_ops_file").filter(F.trim("value") != "")
    json_options = dict(cfg.read_options)
    raw = F.from_json("value", "MAP<STRING, STRING>", json_options)
    lines = text.select("value", "_lakehouse_ops_file", raw.alias("_raw"))
    unparsed = F.col("_raw").isNull()
    if not quarantine:
        # No quarantine table: a line that is not a JSON object fails its file (dead-lettered with the reason).
        lines = lines.filter(F.coalesce(F.when(unparsed, F.raise_error(F.lit(NOT_JSON))), F.lit(True)))
    parsed = {f.name: F.from_json("value", StructType([f]), json_options).getField(f.name) for f in schema.fields}
    fits = {name: F.col("_raw")[name].isNull() | value.isNotNull() for name, value in parsed.items()}
    # The names whose values were taken (nulls dropped: array_contains over a null element is null, not false).
    kept = F.filter(F.array(*[F.when(fit, F.lit(name)) for name, fit in fits.items()]), lambda n: n.isNotNull())
    rescued = F.map_filter("_raw", lambda k, v: v.isNotNull() & ~F.array_contains(kept, k))
    columns = [F.when(fits[f.name], parsed[f.name]).alias(f.name) for f in schema.fields]
    columns.append(F.when(F.size(rescued) > 0, F.to_json(rescued)).alias(cfg.rescued_data_column))
    if quarantine:
        columns.append(F.when(unparsed, F.col("value")).alias(CORRUPT))
    return lines.select(*columns, "_lakehouse_ops_file")
