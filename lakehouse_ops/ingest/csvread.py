"""Reading CSV files with a header (`read_options: {header: "true"}`) by the names in each file's header.

Spark's CSV reader given a schema applies it by position, whatever the header says. So each file's header is read
first (its first line, decompressed as Spark would), mapped to the target's columns (names.py: regardless of case;
a header naming a column twice, naming none of them, or with an empty name refuses its file), and the files are
read in groups of one header each, under a schema in that header's order, then selected by name: columns in
another order land where they belong, missing ones are null, and ones the target lacks are not read (they are
rescued with `rescue`; `add_new_columns` adds them to the target as STRING columns before the read).

With `rescue`, values that do not fit their column, values of columns the target lacks and values past the
header's last column (`_extra_N`, up to EXTRA_FIELDS) go to the rescued-data column. When the target has
pseudonymized columns, a record with a value that does not fit or values past its header is a misfit instead (its
values may have moved: an unquoted separator inside a protected value shifts the rest of the line).
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.engine.fs import read_first_line
from lakehouse_ops.errors import without_values
from lakehouse_ops.ingest.evolve import CORRUPT
from lakehouse_ops.ingest.names import Header, HeaderError, map_header, parse_header

EXTRA_FIELDS = 10  # trailing values past the header's columns kept in the rescued data, per record


def has_header(cfg: IngestConfig) -> bool:
    return cfg.format == "csv" and str(cfg.read_options.get("header", "false")).lower() == "true"


def read_headers(
    spark: Any, cfg: IngestConfig, paths: Mapping[str, str], target: Sequence[str]
) -> Tuple[Dict[str, List[str]], Dict[str, str]]:
    """({path: its header's names}, {identity: why its file is refused}) for {identity: path}: a header that
    cannot be mapped to `target` (the target's columns) refuses its file."""
    encoding = cfg.read_options.get("encoding") or cfg.read_options.get("charset") or "UTF-8"
    protected = cfg.pseudonymize is not None

    def one(item: Tuple[str, str]) -> Tuple[str, str, Any]:
        identity, path = item
        try:
            names = parse_header(read_first_line(spark, path, encoding), cfg.read_options)
            map_header(names, target)
            return identity, path, names
        except HeaderError as exc:
            return identity, path, "CSV header cannot be mapped to the target: %s" % exc
        except Exception as exc:
            said = str(exc).splitlines()[0][:300]
            return identity, path, "cannot read the CSV header: %s" % (without_values(said) if protected else said)

    headers: Dict[str, List[str]] = {}
    refused: Dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for identity, path, found in pool.map(one, list(paths.items())):
            if isinstance(found, list):
                headers[path] = found
            else:
                refused[identity] = found
    return headers, refused


def header_fields(header: Header, schema: Any) -> List[Tuple[str, Any]]:
    """(name in the file, Spark type) in the header's order: the target column's type, else STRING."""
    from pyspark.sql.types import StringType

    types = {f.name: f.dataType for f in schema.fields}
    return [(name, types[column] if column else StringType()) for name, column in header.columns]


def load_csv(
    spark: Any, cfg: IngestConfig, schema: Any, headers: Mapping[str, Sequence[str]], protected: bool, options: Any
) -> Any:
    """The files of `headers` ({path: its header's names}) as the target's columns, `_corrupt_record`, the
    rescued-data column (`rescue`) and `_lakehouse_ops_file`, one read per distinct header."""
    groups: Dict[Header, List[str]] = {}
    target = [f.name for f in schema.fields]
    for path, names in headers.items():
        groups.setdefault(map_header(names, target), []).append(path)
    frames = [_group(spark, cfg, schema, header, paths, protected, options) for header, paths in groups.items()]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def _quoted(name: str) -> str:
    return "`%s`" % name.replace("`", "``")


def _group(
    spark: Any, cfg: IngestConfig, schema: Any, header: Header, paths: List[str], protected: bool, options: Any
) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    fields = [StructField(name, kind) for name, kind in header_fields(header, schema)]
    read_schema = StructType(fields + [StructField(CORRUPT, StringType())])
    reader_options = dict(
        cfg.read_options,
        header="true" if has_header(cfg) else "false",
        enforceSchema="true",
        mode="PERMISSIVE",
        columnNameOfCorruptRecord=CORRUPT,
    )
    df = spark.read.format("csv").options(**options).options(**reader_options).schema(read_schema).load(paths)
    df = df.selectExpr("*", "_metadata.file_path AS _lakehouse_ops_file")
    by_column = {column: name for name, column in header.columns if column is not None}
    columns = [
        (F.col(_quoted(by_column[f.name])) if f.name in by_column else F.lit(None).cast(f.dataType)).alias(f.name)
        for f in schema.fields
    ]
    corrupt = F.col(CORRUPT)
    if cfg.schema_evolution == "rescue":
        columns.append(_rescued(cfg, header).alias(cfg.rescued_data_column))
        # A record is kept, unless it holds protected values: then a value that does not fit or a value past
        # its header (which value is whose is unknown: a protected one may have moved) makes it a misfit.
        corrupt = F.col(CORRUPT) if protected else F.lit(None).cast("string")
    columns.append(corrupt.alias(CORRUPT))
    return df.select(*columns, "_lakehouse_ops_file")


def _rescued(cfg: IngestConfig, header: Header) -> Any:
    """The rescued-data column for one header's files."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    # The record's line split again as text, by position (names of the file's own columns may not be DDL-safe).
    positions = ["_f%d" % i for i in range(1, len(header.columns) + 1)]
    extras = ["_extra_%d" % i for i in range(1, EXTRA_FIELDS + 1)]
    as_text = StructType([StructField(n, StringType()) for n in positions + extras])
    options = {k: v for k, v in cfg.read_options.items() if k != "header"}
    raw = F.from_csv(F.col(CORRUPT), as_text.simpleString(), options)
    values = []
    for position, (name, column) in zip(positions, header.columns):
        if column is None:  # a column the target lacks: its value, on every record
            values.append(F.col(_quoted(name)).alias(name))
        else:  # a value that did not fit its column (the record was flagged)
            values.append(F.when(F.col(_quoted(name)).isNull() & (raw[position] != ""), raw[position]).alias(name))
    values += [raw[n].alias(n) for n in extras]
    rescued = F.to_json(F.struct(*values))  # null fields are left out
    return F.when(rescued != "{}", rescued)
