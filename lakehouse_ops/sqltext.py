"""Spark SQL text: quoted identifiers and literals, table references. No Spark needed to build them."""

from typing import Any


def quote_ident(name: str) -> str:
    """Backtick-quote a (possibly nested, dotted) column name for Spark SQL."""
    return ".".join("`%s`" % part.replace("`", "``") for part in name.split("."))


def quote_string(value: str) -> str:
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "\\'")


def table_ref(catalog: str, table: str) -> str:
    """`catalog`.`ns`.`table` for SQL statements."""
    return ".".join(quote_ident(p) for p in [catalog] + table.split("."))


class Timestamp(str):
    """An ISO UTC instant to be rendered as a TIMESTAMP literal."""


def literal(value: Any) -> str:
    if isinstance(value, Timestamp):
        return "TIMESTAMP %s" % quote_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "array(%s)" % ", ".join(literal(v) for v in value)
    if isinstance(value, dict):
        if not value:
            return "map()"
        return "map(%s)" % ", ".join("%s, %s" % (quote_string(k), quote_string(v)) for k, v in value.items())
    return quote_string(value)
