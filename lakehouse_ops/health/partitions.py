"""Turn an Iceberg partition tuple into a Spark SQL filter on the source columns.

rewrite_data_files' `where` filters source columns, not partition fields, so a day partition `ts_day=19844`
becomes `ts >= TIMESTAMP '2024-05-01 00:00:00Z' AND ts < TIMESTAMP '2024-05-02 00:00:00Z'`. Bucket and truncate
partitions, which have no range form, are selected with Iceberg's own functions (`<catalog>.system.bucket(16, c)
= 5`, which rewrite_data_files' `where` accepts); a transform with neither gives None.
"""

import datetime
import math
from typing import Any, Dict, List, Optional, Tuple

from lakehouse_ops.sqltext import quote_ident, quote_string

EPOCH = datetime.date(1970, 1, 1)
# bucket and truncate partitions are selected by Iceberg's own functions, called in the table's catalog
# (`<catalog>.system.bucket(16, customer_id) = 5`): the catalog's name is put in where a filter is used.
SYSTEM = "__catalog__.system"
EPOCH_TS = datetime.datetime(1970, 1, 1)


def _type_name(iceberg_type: Any) -> str:
    return type(iceberg_type).__name__


def _ts_literal(moment: datetime.datetime, iceberg_type: Any) -> str:
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f" if moment.microsecond else "%Y-%m-%d %H:%M:%S")
    if _type_name(iceberg_type) == "TimestampType":  # without zone: Spark's TIMESTAMP_NTZ
        return "TIMESTAMP_NTZ '%s'" % text
    return "TIMESTAMP '%sZ'" % text


def _range(
    column: str, iceberg_type: Any, span: Optional[Tuple[datetime.datetime, Optional[datetime.datetime]]]
) -> Optional[str]:
    """`column` in [start, end); a partition whose end lies past year 9999 (a 9999-12-31 sentinel) has no upper
    bound, and one whose start does has no filter."""
    if span is None:
        return None
    start, end = span
    if _type_name(iceberg_type) == "DateType":
        low, high = "DATE '%s'" % start.date().isoformat(), end and "DATE '%s'" % end.date().isoformat()
    elif _type_name(iceberg_type) in ("TimestampType", "TimestamptzType", "TimestampNanoType", "TimestamptzNanoType"):
        low, high = _ts_literal(start, iceberg_type), end and _ts_literal(end, iceberg_type)
    else:
        return None
    if high is None:
        return "%s >= %s" % (column, low)
    return "%s >= %s AND %s < %s" % (column, low, column, high)


def _add_months(moment: datetime.datetime, months: int) -> datetime.datetime:
    total = moment.year * 12 + (moment.month - 1) + months
    return datetime.datetime(total // 12, total % 12 + 1, 1)


def _identity_literal(value: Any, iceberg_type: Any) -> Optional[str]:
    kind = _type_name(iceberg_type)
    if isinstance(value, bool) or kind == "BooleanType":
        return "true" if value else "false"
    if kind in ("IntegerType", "LongType"):
        return str(int(value))
    if kind in ("FloatType", "DoubleType"):
        number = float(value)  # NaN and the infinities have no literal Iceberg's filter parser reads
        return repr(number) if math.isfinite(number) else None
    if kind == "DecimalType":
        return "%s" % value
    if kind == "DateType":
        day = value if isinstance(value, datetime.date) else EPOCH + datetime.timedelta(days=int(value))
        return "DATE '%s'" % day.isoformat()
    if kind in ("TimestampType", "TimestamptzType"):
        moment = (
            value if isinstance(value, datetime.datetime) else EPOCH_TS + datetime.timedelta(microseconds=int(value))
        )
        return _ts_literal(moment, iceberg_type)
    if kind == "StringType":
        return quote_string(value)
    return None


def field_filter(transform: Any, column: str, iceberg_type: Any, value: Any) -> Optional[str]:
    """Filter for one partition field, or None when it has no source-column form."""
    name = type(transform).__name__
    if value is None:
        return "%s IS NULL" % column if name == "IdentityTransform" else None
    if name == "IdentityTransform":
        literal = _identity_literal(value, iceberg_type)
        return None if literal is None else "%s = %s" % (column, literal)
    if name in ("DayTransform", "MonthTransform", "YearTransform") or (
        name == "HourTransform" and _type_name(iceberg_type) != "DateType"
    ):
        return _range(column, iceberg_type, _span(name, int(value)))
    if name == "HourTransform":
        return None
    if name == "BucketTransform":
        return "%s.bucket(%d, %s) = %d" % (SYSTEM, int(transform.num_buckets), column, int(value))
    if name == "TruncateTransform":
        literal = _identity_literal(value, iceberg_type)
        if literal is None:
            return None
        return "%s.truncate(%d, %s) = %s" % (SYSTEM, int(transform.width), column, literal)
    return None


def in_catalog(where: Optional[str], catalog: str) -> Optional[str]:
    """A filter with the catalog's name where its system functions are called (bucket, truncate)."""
    return where.replace(SYSTEM, "%s.system" % quote_ident(catalog)) if where else where


def partition_filter(spec: Any, schema: Any, record: Any) -> Optional[str]:
    """AND of every field's filter; None if any field cannot be expressed."""
    if not spec.fields:
        return None
    parts = []
    for pos, pfield in enumerate(spec.fields):
        if type(pfield.transform).__name__ == "VoidTransform":
            continue
        column = quote_ident(schema.find_column_name(pfield.source_id))
        source_type = schema.find_field(pfield.source_id).field_type
        clause = field_filter(pfield.transform, column, source_type, record[pos])
        if clause is None:
            return None
        parts.append("(%s)" % clause)
    return " AND ".join(parts) if parts else None


# The end of a partition that reaches past year 9999: later than any moment a column holds.
OPEN_END_MS = 2**62
TIME_TYPES = ("DateType", "TimestampType", "TimestamptzType", "TimestampNanoType", "TimestamptzNanoType")


def _span(name: str, value: int) -> Optional[Tuple[datetime.datetime, Optional[datetime.datetime]]]:
    """[start, end) of a time transform's partition value as UTC wall-clock moments; end None past year 9999,
    None when the start is."""
    steps = {
        "DayTransform": lambda v: EPOCH_TS + datetime.timedelta(days=v),
        "IdentityTransform": lambda v: EPOCH_TS + datetime.timedelta(days=v),  # a date
        "HourTransform": lambda v: EPOCH_TS + datetime.timedelta(hours=v),
        "MonthTransform": lambda v: _add_months(EPOCH_TS, v),
        "YearTransform": lambda v: datetime.datetime(1970 + v, 1, 1),
    }
    if name not in steps:
        return None
    try:
        start = steps[name](value)
    except (OverflowError, ValueError):
        return None
    try:
        return start, steps[name](value + 1)
    except (OverflowError, ValueError):
        return start, None


def _bounds(
    name: str, value: int, iceberg_type: Any
) -> Optional[Tuple[datetime.datetime, Optional[datetime.datetime]]]:
    """[start, end) of a time transform's partition value, as UTC wall-clock moments."""
    if name == "IdentityTransform" and _type_name(iceberg_type) != "DateType":
        return None
    return _span(name, value)


def partition_ranges(spec: Any, schema: Any, record: Any) -> Dict[str, List[int]]:
    """{source column: [start_ms, end_ms)} of the partition's time fields (day, hour, month, year transforms, and
    identity on a date column): every row of the partition has that column in the range (UTC wall clock for
    columns without a zone). Several fields on one column narrow the range."""
    out: Dict[str, List[int]] = {}
    for pos, pfield in enumerate(spec.fields):
        source_type = schema.find_field(pfield.source_id).field_type
        value = record[pos]
        if value is None or _type_name(source_type) not in TIME_TYPES or isinstance(value, datetime.datetime):
            continue
        if isinstance(value, datetime.date):  # an identity date partition, as pyiceberg may give it
            value = (value - EPOCH).days
        bounds = _bounds(type(pfield.transform).__name__, int(value), source_type)
        if bounds is None:
            continue
        start, end = (int((b - EPOCH_TS).total_seconds() * 1000) if b else OPEN_END_MS for b in bounds)
        column = schema.find_column_name(pfield.source_id)
        if column in out:
            start, end = max(start, out[column][0]), min(end, out[column][1])
        out[column] = [start, end]
    return out
