"""Calling Iceberg procedures from Python: argument feature detection, result rows, commit conflicts."""

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from lakehouse_ops.errors import MaintenanceError
from lakehouse_ops.errors import first_line as _first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import literal, quote_ident, table_ref

log = get_logger("sql")


def procedure_sql(catalog: str, procedure: str, args: Mapping[str, Any]) -> str:
    # None and empty maps mean "use Iceberg's default": the argument is left out.
    rendered = ", ".join("%s => %s" % (k, literal(v)) for k, v in args.items() if v is not None and v != {})
    return "CALL %s.system.%s(%s)" % (quote_ident(catalog), procedure, rendered)


def call(
    spark: Any, catalog: str, procedure: str, args: Mapping[str, Any], optional: Sequence[str] = ()
) -> List[Dict[str, Any]]:
    """Run CALL <catalog>.system.<procedure>(...) and return its rows as dicts.

    Arguments listed in `optional` are newer than the oldest Iceberg on EMR 7.x: if the cluster's Iceberg does not
    know one, the call is repeated without it (and a warning names it) instead of failing the action.
    """
    args = dict(args)
    if isinstance(args.get("table"), str):
        # Qualify with the catalog: a namespace that shares a catalog's name would otherwise be read as one.
        args["table"] = table_ref(catalog, args["table"])
    while True:
        statement = procedure_sql(catalog, procedure, args)
        try:
            return [row.asDict(recursive=True) for row in spark.sql(statement).collect()]
        except Exception as exc:
            unknown = _unknown_argument(str(exc), [a for a in optional if args.get(a) is not None])
            if unknown is None:
                if is_commit_conflict(exc):
                    raise
                raise MaintenanceError("%s failed: %s [%s]" % (procedure, _first_line(exc), statement)) from exc
            log.warning(
                "this Iceberg version does not support an argument; calling without it",
                extra={"procedure": procedure, "argument": unknown},
            )
            args.pop(unknown)


def _unknown_argument(message: str, candidates: Sequence[str]) -> Optional[str]:
    for name in candidates:
        if re.search(r"\b%s\b" % re.escape(name), message) and re.search(
            r"(?i)(unknown|not found|cannot|invalid|does not|couldn't|could not)", message
        ):
            return name
    return None


def is_commit_conflict(exc: BaseException) -> bool:
    text = str(exc)
    # A metadata file gone while the table was loaded: another writer committed and its commit cleaned up old
    # metadata (write.metadata.delete-after-commit) in between; loading again sees the new one.
    if "NotFoundException" in text and ".metadata.json" in text:
        return True
    return any(
        marker in text
        for marker in (
            "CommitFailedException",
            "ValidationException",
            "Cannot commit",
            "conflicting files",
            "Found conflicting",
            "could not be found in the latest snapshot",
        )
    )
