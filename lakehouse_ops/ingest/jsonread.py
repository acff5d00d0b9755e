"""Reading JSON lines into the target's columns by name, whatever the keys' case (names.py).

Each line is parsed under the target's schema (with every spelling of a column seen so far) and for its top-level
keys, in one pass. A key that names a column in a spelling not read yet is reported in `VARIANTS` (the batch
observes it and is read again with that spelling: its staged rows are never published), and its value is never
put anywhere else meanwhile. A line that names one column twice (`customer_id` and `Customer_ID`), or a field of a
struct column in another case (nested fields are matched exactly, as Spark's parser matches them: the record is set
aside rather than its field nulled), or that is not a JSON object, or (modes other than `rescue`) that has a value
that does not fit its column, is a misfit: its text is in `_corrupt_record`.

With `rescue`, a record is kept whatever its fields: keys the target lacks and values that do not fit their column
go to the rescued-data column as one JSON object of raw values (`{"bytes_sent": "lots"}`). A STRING column takes
any value as its text (as Spark's JSON reader does), so a pseudonymized column's value is never rescued.
"""

from typing import Any, Collection, Iterable, Mapping

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.ingest.evolve import CORRUPT
from lakehouse_ops.ingest.names import spellings_of

VARIANTS = "_lakehouse_ops_variants"  # per line: keys naming a column in a spelling this read did not parse


def load_json(
    spark: Any, cfg: IngestConfig, schema: Any, paths: Iterable[str], known: Collection[str], options: Mapping[str, str]
) -> Any:
    """The lines of JSON files as the target's columns, `_corrupt_record` (misfits), the rescued-data column
    (`rescue`), VARIANTS and `_lakehouse_ops_file`. `known`: variant spellings seen before (read as their column);
    `options`: the read's Hadoop settings."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    names = [f.name for f in schema.fields]
    types = {f.name: f.dataType for f in schema.fields}
    spellings = spellings_of(names, known)
    spelled = [(n, s) for n in names for s in spellings[n]]
    parse = StructType([StructField(s, types[n]) for n, s in spelled] + [StructField(CORRUPT, StringType())])
    # Spellings of one column differ only in case, which Spark's field access does not tell apart: the parsed
    # struct is renamed by position (_s0, _s1, ...) before its fields are taken.
    positional = StructType(
        [StructField("_s%d" % i, types[n]) for i, (n, _) in enumerate(spelled)] + [StructField(CORRUPT, StringType())]
    )
    slot = {s: "_s%d" % i for i, (_, s) in enumerate(spelled)}
    text = spark.read.format("text").options(**options).load(list(paths))
    text = text.selectExpr("value", "_metadata.file_path AS _lakehouse_ops_file").filter(F.trim("value") != "")
    json_options = dict(cfg.read_options, columnNameOfCorruptRecord=CORRUPT)
    lines = text.select(
        "value",
        "_lakehouse_ops_file",
        F.from_json("value", parse, json_options).cast(positional).alias("_parsed"),
        F.json_object_keys("value").alias("_keys"),
    )
    lowered = F.array(*[F.lit(n.lower()) for n in names])
    read = F.array(*[F.lit(s) for n in names for s in spellings[n]])
    ours = F.filter("_keys", lambda k: F.array_contains(lowered, F.lower(k)))
    ambiguous = F.size(F.array_distinct(F.transform(ours, F.lower))) < F.size(ours)
    unparsed = F.col("_keys").isNull()
    misfit = unparsed | ambiguous | _nested_variant(schema, spellings)
    if cfg.schema_evolution != "rescue":
        misfit = misfit | F.col("_parsed")[CORRUPT].isNotNull()
    columns = [F.coalesce(*[F.col("_parsed")[slot[s]] for s in spellings[n]]).alias(n) for n in names]
    if cfg.schema_evolution == "rescue":
        columns.append(F.when(~misfit, _rescued(cfg, slot, lowered)).alias(cfg.rescued_data_column))
    columns.append(F.when(misfit, F.col("value")).alias(CORRUPT))
    columns.append(F.filter(ours, lambda k: ~F.array_contains(read, k)).alias(VARIANTS))
    return lines.select(*columns, "_lakehouse_ops_file")


def _nested_variant(schema: Any, spellings: Mapping[str, Any]) -> Any:
    """Whether a line names a field of a struct column in another case (`{"geo": {"City": ...}}` for `geo.city`):
    Spark's parser matches nested fields exactly and would null it, so the record is a misfit instead."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    flags = []
    for column in schema.fields:
        if not isinstance(column.dataType, StructType):
            continue
        names = [f.name for f in column.dataType.fields]
        lowered = F.array(*[F.lit(n.lower()) for n in names])
        exact = F.array(*[F.lit(n) for n in names])
        for spelling in spellings[column.name]:
            path = "$['%s']" % spelling.replace("\\", "\\\\").replace("'", "\\'")
            keys = F.json_object_keys(F.get_json_object("value", path))
            other_case = F.exists(keys, lambda k: F.array_contains(lowered, F.lower(k)) & ~F.array_contains(exact, k))
            flags.append(F.coalesce(other_case, F.lit(False)))
    out = F.lit(False)
    for flag in flags:
        out = out | flag
    return out


def _rescued(cfg: IngestConfig, slot: Mapping[str, str], lowered: Any) -> Any:
    """The record's keys the target lacks and its values that did not fit, as one JSON object (null if none).
    `slot`: {spelling read: its field in the parsed struct}.

    Only a record flagged by the parser, or with a key no column takes, is parsed a third time (as raw values)."""
    from pyspark.sql import functions as F

    # The spellings whose values were taken (nulls dropped: array_contains over a null element is null).
    kept = F.filter(
        F.array(*[F.when(F.col("_parsed")[field].isNotNull(), F.lit(s)) for s, field in slot.items()]),
        lambda k: k.isNotNull(),
    )
    unknown = F.filter("_keys", lambda k: ~F.array_contains(lowered, F.lower(k)))
    suspect = F.col("_parsed")[CORRUPT].isNotNull() | (F.size(unknown) > 0)
    raw = F.from_json("value", "MAP<STRING, STRING>", dict(cfg.read_options))
    # A key naming a column (in any spelling) is never rescued unless its value was read and did not fit: a
    # spelling not read yet is read when the batch is read again.
    spelled = F.array(*[F.lit(s) for s in slot])
    rescued = F.map_filter(
        raw,
        lambda k, v: (
            v.isNotNull()
            & ~F.array_contains(kept, k)
            & (~F.array_contains(lowered, F.lower(k)) | F.array_contains(spelled, k))
        ),
    )
    return F.when(suspect & (F.size(rescued) > 0), F.to_json(rescued))
