"""How a file's field names meet the target's columns: one rule for every format. Pure code: no Spark.

Names match case-insensitively, as Spark and Iceberg resolve column names: a JSON key `Customer_ID`, a CSV header
`CUSTOMER_ID` and a Parquet or Avro field `customer_Id` all fill `customer_id`. A record (JSON) or header (CSV)
that names one column twice under two spellings is ambiguous: the record is a misfit, the file with the header is
refused. CSV files are read by their header, never by position: columns in another order, missing ones (null)
and ones the target lacks (new columns with `add_new_columns`, rescued with `rescue`, else not read).
"""

import csv
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple


class HeaderError(ValueError):
    """A CSV header that cannot be mapped to the target's columns (the file is refused with this reason)."""


def folded(names: Iterable[str]) -> Dict[str, str]:
    """{lower-case name: the name}."""
    return {name.lower(): name for name in names}


def variants(keys: Iterable[str], names: Sequence[str]) -> Set[str]:
    """The keys that name one of `names` in another spelling (other case)."""
    exact = set(names)
    lowered = folded(names)
    return {k for k in keys if k not in exact and k.lower() in lowered}


def spellings_of(names: Sequence[str], known: Iterable[str]) -> Dict[str, List[str]]:
    """{column: its spellings to read, the column's own first} for the variant spellings `known` (seen in files)."""
    lowered = folded(names)
    out: Dict[str, List[str]] = {name: [name] for name in names}
    for key in sorted(set(known)):
        column = lowered.get(key.lower())
        if column is not None and key != column:
            out[column].append(key)
    return out


@dataclass(frozen=True)
class Header:
    """A CSV file's header mapped to the target: `columns` in the file's order, each (name in the file, target
    column or None when the target lacks it)."""

    columns: Tuple[Tuple[str, Optional[str]], ...]

    @property
    def unknown(self) -> List[str]:
        return [name for name, column in self.columns if column is None]


def map_header(names: Sequence[str], target: Sequence[str]) -> Header:
    """Map a header (its names, in order) to the target's columns, or raise HeaderError naming what is wrong."""
    if not names:
        raise HeaderError("the file has no header line (read_options header: 'true' says it has one)")
    lowered = folded(target)
    seen: Dict[str, int] = {}
    columns = []
    for position, name in enumerate(names, 1):
        clean = name.strip()
        if not clean:
            raise HeaderError("header column %d has no name" % position)
        if clean.lower() in seen:
            # The names are not quoted: in a file without a header line they are a record's values.
            raise HeaderError(
                "header columns %d and %d name one column twice (names match regardless of case)"
                % (seen[clean.lower()], position)
            )
        seen[clean.lower()] = position
        columns.append((clean, lowered.get(clean.lower())))
    if all(column is None for _, column in columns):
        raise HeaderError(
            "its first line (%d fields) names none of the target's columns: a file without a header line, or of "
            "another table?" % len(names)
        )
    return Header(tuple(columns))


def by_column(record: Dict[str, Any], names: List[str], path: str) -> Dict[str, Any]:
    """A record's fields keyed by the column they fill (regardless of case); fields no column takes keep their
    own name. Two fields filling one column fail the file (no value is quoted)."""
    lowered = folded(names)
    out: Dict[str, Any] = {}
    for key, value in record.items():
        column = lowered.get(key.lower(), key)
        if column in out:
            raise ValueError("%s: a record names column %s twice (names match regardless of case)" % (path, column))
        out[column] = value
    return out


# Escapes Spark's CSV options accept for a separator (CSVExprUtils.toChar).
ESCAPES = {"\\t": "\t", '\\"': '"', "\\'": "'", "\\u0000": "\u0000", "\\\\": "\\"}


def separator(options: Mapping[str, str]) -> str:
    """The reader's separator as Spark reads the option (`\\t` is a tab; several characters are allowed)."""
    sep = options.get("sep") or options.get("delimiter") or ","
    if sep in ESCAPES:
        return ESCAPES[sep]
    if sep.startswith("\\u") and len(sep) == 6:
        return chr(int(sep[2:], 16))
    return sep


def as_text(value: Any) -> Optional[str]:
    """A value as a STRING column holds it: text as it is, numbers and booleans as SQL prints them, structures as
    JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, sort_keys=True)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def parse_header(line: str, options: Mapping[str, str]) -> List[str]:
    """A CSV header line's names, split with the reader's separator and quote (`read_options` sep/delimiter,
    quote, escape); a byte-order mark is dropped."""
    sep = separator(options)
    quote = options.get("quote") or '"'
    escape = options.get("escape") or "\\"
    line = line.lstrip("\ufeff").rstrip("\r\n")
    if not line:
        return []
    if len(sep) > 1:  # Spark takes a separator of several characters; Python's csv module one
        return [name.strip().strip(quote[0]) for name in line.split(sep)]
    row = next(csv.reader([line], delimiter=sep, quotechar=quote[0], escapechar=escape[0]), [])
    return [str(name) for name in row]
