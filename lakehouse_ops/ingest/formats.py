"""Landing file formats beyond Spark's built-in readers, and telling a file of the wrong format before it is read.

Avro (`ingest.format: avro`) is decoded on the executors with fastavro from the file's bytes as Spark's
`binaryFile` source reads them (so through the same filesystem as every other read: EMRFS on EMR), into the
target's columns: Spark's own Avro source is an extra package that not every cluster or local install carries.
Avro files hold their codec themselves (null, deflate; snappy and zstandard when python-snappy and zstandard
are installed).

`mismatch` looks at a file's first bytes: a Parquet, Avro or ORC file announced to a JSON or CSV target, a gzip
file not named `.gz`, or a Parquet/Avro target's file without its magic number goes to the DLQ with that reason
instead of being read as garbage records.
"""

from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from lakehouse_ops.ingest.names import as_text, by_column

MAGIC = {b"PAR1": "Parquet", b"Obj\x01": "Avro", b"ORC": "ORC"}
ARTICLE = {"Parquet": "a", "Avro": "an", "ORC": "an"}
COMPRESSED = {".gz": b"\x1f\x8b", ".bz2": b"BZh"}
SNIFF_BYTES = 4


def _kind(head: bytes) -> Optional[str]:
    for magic, kind in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def mismatch(name: str, head: bytes, fmt: str) -> Optional[str]:
    """Why a file whose name is `name` and whose first bytes are `head` is not a `fmt` file, or None."""
    kind = _kind(head)
    if fmt in ("parquet", "avro"):
        wanted = "Parquet" if fmt == "parquet" else "Avro"
        if kind != wanted:
            return "format mismatch: not %s %s file (it starts %r%s)" % (
                ARTICLE[wanted],
                wanted,
                head,
                ", %s %s file" % (ARTICLE[kind], kind) if kind else "",
            )
        return None
    if kind is not None:
        return "format mismatch: %s %s file, not %s" % (ARTICLE[kind], kind, "CSV" if fmt == "csv" else "JSON lines")
    lower = name.lower()
    for suffix, magic in COMPRESSED.items():
        if lower.endswith(suffix) and not head.startswith(magic):
            return "format mismatch: named %s but not %s-compressed" % (suffix, suffix[1:])
        if not lower.endswith(suffix) and head.startswith(magic) and len(head) >= len(magic):
            return "format mismatch: %s-compressed but not named %s (the reader decompresses by name)" % (
                suffix[1:],
                suffix,
            )
    return None


def _fields(record: Any, names: List[str], path: str, strings: Any = ()) -> Dict[str, Any]:
    """A record's values in the target's columns (by name, regardless of case); a STRING column takes any value as
    its text (`strings`: those columns)."""
    if not isinstance(record, dict):
        raise ValueError("%s: an Avro file of %s values, not records" % (path, type(record).__name__))
    keyed = by_column(record, names, path)
    return {n: as_text(keyed.get(n)) if n in strings else keyed.get(n) for n in names}


def arrow_records(records: List[Dict[str, Any]], arrow_schema: Any, path: str) -> Any:
    """An Arrow table of records in the target's columns; a value that does not fit names its column, never the
    value (Arrow's own message quotes it)."""
    import pyarrow as pa

    try:
        return pa.Table.from_pylist(records, schema=arrow_schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    for field in arrow_schema:
        try:
            pa.array([r.get(field.name) for r in records], type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            raise ValueError(
                "%s: a value of field %s does not fit its column's type %s" % (path, field.name, field.type)
            )
    raise ValueError("%s: its records do not fit the target's columns" % path)


def load_avro(spark: Any, schema: Any, paths: Iterable[str], options: Any) -> Any:
    """The records of Avro files as the target's columns (by name, regardless of case; missing fields null, others
    dropped), plus `_lakehouse_ops_file`. A file that does not decode, or a value that does not fit its column,
    fails the read (its object is then found and dead-lettered with the reason, which quotes no value)."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StringType, StructField, StructType

    out_schema = StructType(list(schema.fields) + [StructField("_lakehouse_ops_file", StringType())])
    arrow_schema = to_arrow_schema(schema)
    names = [f.name for f in schema.fields]
    strings = {f.name for f in schema.fields if f.dataType.simpleString() == "string"}

    def decode(batches: Iterator[Any]) -> Iterator[Any]:
        import io

        import fastavro
        import pyarrow as pa

        for batch in batches:
            for path, content in zip(batch.column("path").to_pylist(), batch.column("content").to_pylist()):
                records = [_fields(r, names, path, strings) for r in fastavro.reader(io.BytesIO(content))]
                table = arrow_records(records, arrow_schema, path)
                table = table.append_column("_lakehouse_ops_file", pa.array([path] * len(records), pa.string()))
                yield from table.to_batches()

    files = spark.read.format("binaryFile").options(**options).load(list(paths)).select("path", "content")
    return files.mapInArrow(decode, out_schema)


AVRO_PRIMITIVES = {
    "boolean": "boolean",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "bytes": "binary",
    "string": "string",
    "fixed": "binary",
    "enum": "string",
}
AVRO_LOGICAL = {
    "timestamp-micros": "timestamp",
    "timestamp-millis": "timestamp",
    "local-timestamp-micros": "timestamp_ntz",
    "local-timestamp-millis": "timestamp_ntz",
    "date": "date",
    "uuid": "string",
}


def avro_type_ddl(avro: Any) -> str:
    """An Avro schema (as fastavro parses it) as Spark DDL, as Spark's own Avro reader maps it: unions with null
    are nullable, other unions are not read."""
    if isinstance(avro, list):
        kinds = [a for a in avro if a != "null"]
        if len(kinds) != 1:
            raise ValueError("an Avro union of %s has no single column type" % kinds)
        return avro_type_ddl(kinds[0])
    if isinstance(avro, str):
        if avro not in AVRO_PRIMITIVES:
            raise ValueError("Avro type %r (a named type) is not read" % avro)
        return AVRO_PRIMITIVES[avro]
    logical = avro.get("logicalType")
    if logical == "decimal":
        return "decimal(%d,%d)" % (avro["precision"], avro.get("scale", 0))
    if logical in AVRO_LOGICAL:
        return AVRO_LOGICAL[logical]
    kind = avro.get("type")
    if kind == "record":
        return "struct<%s>" % ",".join("`%s`:%s" % (f["name"], avro_type_ddl(f["type"])) for f in avro["fields"])
    if kind == "array":
        return "array<%s>" % avro_type_ddl(avro["items"])
    if kind == "map":
        return "map<string,%s>" % avro_type_ddl(avro["values"])
    return avro_type_ddl(kind)


AVRO_HEADER_BYTES = 1 << 20  # an Avro file's header (magic, metadata with the schema, sync marker) fits in this


def avro_fields(headers: Iterable[bytes]) -> List[Tuple[str, str]]:
    """[(field, Spark DDL type)] of the union of the Avro files' writer schemas (first seen wins), from the
    first bytes of each file: their declared types, for `add_new_columns`."""
    import io

    import fastavro

    fields: Dict[str, str] = {}
    for head in headers:
        schema = fastavro.reader(io.BytesIO(head)).writer_schema
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise ValueError("an Avro file of %s values, not records" % schema)
        for field in schema.get("fields", []):
            fields.setdefault(field["name"], avro_type_ddl(field["type"]))
    return list(fields.items())
