"""Schema evolution of an ingest target (`ingest.schema_evolution: add_new_columns`): the fields a batch's files
carry that the target lacks become nullable columns, and Parquet types wider than the target's are promoted
where Iceberg allows it, before the batch's commit.

`plan` is pure (two Spark StructTypes in, typed changes out); `file_schema` and `apply` run on the session.
Iceberg commits a schema change on its own, so a worker killed after `apply` leaves an added column and no rows:
the batch is read again under the wider schema when its messages come back.
"""

import functools
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, List, Optional, Sequence, Tuple

from lakehouse_ops.errors import IngestError
from lakehouse_ops.logs import get_logger

log = get_logger("ingest.evolve")
# The column Spark's reader puts a record it cannot parse in (also in an inferred schema); never data.
CORRUPT = "_corrupt_record"


@dataclass(frozen=True)
class Addition:
    path: Tuple[str, ...]  # ("point", "z") adds field z to struct column point
    type_sql: str  # Spark SQL type, e.g. "BIGINT", "STRUCT<a: STRING>"


@dataclass(frozen=True)
class Widening:
    path: Tuple[str, ...]
    from_sql: str
    to_sql: str


@dataclass(frozen=True)
class SchemaChanges:
    additions: Tuple[Addition, ...] = ()
    widenings: Tuple[Widening, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.additions and not self.widenings

    def describe(self) -> List[str]:
        return ["add %s %s" % (".".join(a.path), a.type_sql) for a in self.additions] + [
            "widen %s %s -> %s" % (".".join(w.path), w.from_sql, w.to_sql) for w in self.widenings
        ]


def type_sql(dtype: Any) -> str:
    """A Spark type as DDL, field names quoted."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    if isinstance(dtype, StructType):
        return "STRUCT<%s>" % ", ".join("%s: %s" % (_quoted([f.name]), type_sql(f.dataType)) for f in dtype.fields)
    if isinstance(dtype, ArrayType):
        return "ARRAY<%s>" % type_sql(dtype.elementType)
    if isinstance(dtype, MapType):
        return "MAP<%s, %s>" % (type_sql(dtype.keyType), type_sql(dtype.valueType))
    return str(dtype.simpleString()).upper()


def _promotion(current: Any, wanted: Any) -> Optional[str]:
    """The SQL type Iceberg may promote `current` to so that `wanted` fits, or None."""
    from pyspark.sql.types import DecimalType, DoubleType, FloatType, IntegerType, LongType

    if isinstance(current, IntegerType) and isinstance(wanted, LongType):
        return "BIGINT"
    if isinstance(current, FloatType) and isinstance(wanted, DoubleType):
        return "DOUBLE"
    if (
        isinstance(current, DecimalType)
        and isinstance(wanted, DecimalType)
        and wanted.scale == current.scale
        and wanted.precision > current.precision
    ):
        return "DECIMAL(%d,%d)" % (wanted.precision, wanted.scale)
    return None


def plan(
    target: Any, files: Any, widen: bool, path: Tuple[str, ...] = (), reserved: Collection[str] = ()
) -> SchemaChanges:
    """What makes the target (a StructType) hold every field of `files` (the batch's StructType).

    Names match case-insensitively, as Spark resolves them. New fields inside existing struct columns are added
    to them; new fields inside arrays and maps are not (their element type would change). `widen`: the files'
    types are declared (Parquet), not inferred from text, so a wider one is a promotion to make.
    """
    from pyspark.sql.types import StructType

    present = {f.name.lower(): f for f in target.fields}
    # The job's own columns (source object, batch id, ...): a file's field of that name is never a new column.
    skipped = {name.lower() for name in reserved}
    additions: List[Addition] = []
    widenings: List[Widening] = []
    for field in files.fields:
        if not path and (field.name == CORRUPT or field.name.lower() in skipped):
            continue
        mine = present.get(field.name.lower())
        here = path + (field.name,)
        if mine is None:
            present[field.name.lower()] = field  # another spelling of it is not added again
            additions.append(Addition(here, type_sql(field.dataType)))
        elif isinstance(mine.dataType, StructType) and isinstance(field.dataType, StructType):
            nested = plan(mine.dataType, field.dataType, widen, path + (mine.name,))
            additions += nested.additions
            widenings += nested.widenings
        elif widen and mine.dataType != field.dataType:
            promoted = _promotion(mine.dataType, field.dataType)
            if promoted is not None:
                widenings.append(Widening(path + (mine.name,), type_sql(mine.dataType), promoted))
    return SchemaChanges(tuple(additions), tuple(widenings))


def _quoted(path: Sequence[str]) -> str:
    return ".".join("`%s`" % part.replace("`", "``") for part in path)


def statements(target_ref: str, changes: SchemaChanges) -> List[Tuple[Any, str]]:
    """(change, DDL) pairs, promotions first, so an added field never waits on one."""
    out: List[Tuple[Any, str]] = [
        (w, "ALTER TABLE %s ALTER COLUMN %s TYPE %s" % (target_ref, _quoted(w.path), w.to_sql))
        for w in changes.widenings
    ]
    out += [
        (a, "ALTER TABLE %s ADD COLUMN %s %s" % (target_ref, _quoted(a.path), a.type_sql)) for a in changes.additions
    ]
    return out


def struct_of(spark: Any, fields: Sequence[Tuple[str, str]]) -> Any:
    """A StructType from (name, Spark DDL type) pairs, parsed by Spark."""
    if not fields:
        from pyspark.sql.types import StructType

        return StructType([])
    ddl = ", ".join("%s %s" % (_quoted([name]), kind) for name, kind in fields)
    return spark.createDataFrame([], ddl).schema


def file_schema(spark: Any, reader: Any, paths: Iterable[str]) -> Any:
    """The union schema of the batch's files as Spark reads them without a schema (JSON: inferred from every
    record; Parquet: the footers, merged). Names are kept as the files spell them (Spark would refuse two
    spellings of one name): `plan` matches them regardless of case."""
    before = spark.conf.get("spark.sql.caseSensitive", "false")
    spark.conf.set("spark.sql.caseSensitive", "true")
    try:
        return reader.option("mergeSchema", "true").load(list(paths)).schema
    finally:
        spark.conf.set("spark.sql.caseSensitive", before)


def apply(
    spark: Any,
    target_ref: str,
    current: Callable[[], Any],
    files: Any,
    widen: bool,
    ddl: Callable[[Any, str, Callable[[], bool]], None],
    reserved: Collection[str] = (),
) -> SchemaChanges:
    """Make the target hold `files`. `current()` reads the target's data schema; `ddl(spark, statement, done)`
    runs a statement another worker may run at the same moment; `reserved`: the job's own columns. Returns the
    changes made (by anyone)."""
    changes = plan(current(), files, widen, reserved=reserved)
    if changes.empty:
        return changes
    # Another worker may have changed the schema since this session cached the table: decide on a fresh one.
    spark.sql("REFRESH TABLE %s" % target_ref)
    changes = plan(current(), files, widen, reserved=reserved)
    if changes.empty:
        return changes
    for change, statement in statements(target_ref, changes):
        made = functools.partial(_made, spark, target_ref, current, files, widen, change, reserved)
        ddl(spark, statement, made)
    spark.sql("REFRESH TABLE %s" % target_ref)
    left = plan(current(), files, widen, reserved=reserved)
    if not left.empty:
        raise IngestError("schema changes did not take on %s: %s" % (target_ref, "; ".join(left.describe())))
    log.info("target schema evolved", extra={"table": target_ref, "changes": changes.describe()})
    return changes


def _made(
    spark: Any, target_ref: str, current: Callable[[], Any], files: Any, widen: bool, change: Any, reserved: Any
) -> bool:
    """After a DDL failed: did another worker make this change?"""
    spark.sql("REFRESH TABLE %s" % target_ref)
    left = plan(current(), files, widen, reserved=reserved)
    return change not in left.additions and change not in left.widenings
