"""Run history: every maintain, ingest, pseudonymize and erase run (dry runs aside) appends one row per table it
touched to an Iceberg table, so "what happened to this table last week" is a SQL query (Athena, Spark, Trino)
and `lakehouse-ops report --html` can draw trends.

One append per run, however many tables it covered (a fleet run of thousands of tables is one commit); the table
is partitioned by day of `started_at`, so a week's question reads a week's files. Concurrent runs append
concurrently: appends never conflict in Iceberg, and the table's commit retries cover the races. Recording is
best effort: a run whose history cannot be written still did its work, and its report says why (`history`)."""

import json
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional

from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref

log = get_logger("engine.history")
KINDS = ("maintain", "ingest", "pseudonymize", "erase")
# Health figures a maintain run records before and after, for trends.
HEALTH_FIGURES = ("data_files", "data_bytes", "small_files", "delete_files", "records", "snapshots", "manifests")
SCHEMA = (
    "run_id string, kind string, started_at timestamp, finished_at timestamp, duration_s double, "
    "table_name string, ok boolean, "
    "actions array<struct<action: string, status: string, duration_s: double, summary: string>>, "
    "metrics map<string, double>, report string"
)
SUMMARY_CHARS = 1000


def _instant(text: Any, fallback: datetime) -> datetime:
    if not isinstance(text, str) or not text:
        return fallback
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _numbers(
    values: Optional[Dict[str, Any]], prefix: str = "", keys: Optional[Iterable[str]] = None
) -> Dict[str, float]:
    if not isinstance(values, dict):
        return {}
    wanted = values if keys is None else {k: values.get(k) for k in keys}
    return {prefix + k: float(v) for k, v in wanted.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _actions(entry: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [
        {
            "action": str(a.get("action")),
            "status": str(a.get("status")),
            "duration_s": float(a.get("duration_s") or 0.0),
            "summary": str(a.get("reason", ""))[:SUMMARY_CHARS],
        }
        for a in entry.get("actions") or []
    ]


def _entries(kind: str, report: Dict[str, Any]) -> List[Dict[str, Any]]:
    """(table name, ok, actions, metrics, what to keep of the report) for each table the run covered."""
    if kind == "maintain":
        return [
            {
                "table_name": e.get("table"),
                "ok": bool(e.get("ok")),
                "actions": _actions(e),
                "metrics": dict(
                    _numbers(e.get("before"), "before.", HEALTH_FIGURES),
                    **_numbers(e.get("after") or e.get("before"), "after.", HEALTH_FIGURES),
                ),
                "report": e,
            }
            for e in report.get("tables") or []
        ]
    if kind == "ingest":
        kept = {k: v for k, v in report.items() if k != "batches"}  # a long run's batches stay in its report file
        totals = report.get("totals") or {}
        return [
            {
                "table_name": report.get("target"),
                "ok": bool(report.get("ok")),
                "metrics": _numbers(totals),
                "report": kept,
            }
        ]
    if kind == "pseudonymize":
        return [
            {
                "table_name": report.get("target"),
                "ok": bool(report.get("ok")),
                "metrics": _numbers(report),
                "report": report,
            }
        ]
    if kind == "erase":
        return [
            {"table_name": e.get("table"), "ok": bool(e.get("ok")), "metrics": _numbers(e), "report": e}
            for e in report.get("tables") or []
        ]
    raise ValueError("history: unknown run kind %r (one of %s)" % (kind, ", ".join(KINDS)))


def rows_of(kind: str, report: Dict[str, Any], now: Optional[datetime] = None) -> List[Dict[str, Any]]:
    """The history rows of one run's report (pure): one per table, sharing the run's id and times."""
    now = now or datetime.now(timezone.utc)
    finished = _instant(report.get("finished_at"), now)
    duration = float(report.get("duration_s") or 0.0)
    started = _instant(report.get("started_at"), datetime.fromtimestamp(finished.timestamp() - duration, timezone.utc))
    if not duration:
        duration = max(0.0, (finished - started).total_seconds())
    run_id = uuid.uuid4().hex
    return [
        {
            "run_id": run_id,
            "kind": kind,
            "started_at": started,
            "finished_at": finished,
            "duration_s": duration,
            "table_name": str(e["table_name"] or ""),
            "ok": e["ok"],
            "actions": e.get("actions") or [],
            "metrics": e["metrics"],
            "report": json.dumps(e["report"], default=str, sort_keys=True),
        }
        for e in _entries(kind, report)
    ]


def ensure_table(spark: Any, catalog: str, table: str) -> str:
    ref = table_ref(catalog, table)
    namespace = table.rsplit(".", 1)[0]
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(catalog, namespace))
    spark.sql(
        "CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg PARTITIONED BY (days(started_at)) "
        "TBLPROPERTIES ('commit.retry.num-retries' = '20', 'write.distribution-mode' = 'none')" % (ref, SCHEMA)
    )
    return ref


def record(spark: Any, catalog: str, table: str, kind: str, report: Dict[str, Any]) -> Dict[str, Any]:
    """Append the run's rows to the history table (created on first use); returns what the report says of it."""
    try:
        rows = rows_of(kind, report)
        if not rows:
            return {"table": table, "rows": 0}
        ref = ensure_table(spark, catalog, table)
        spark.createDataFrame(rows, SCHEMA).coalesce(1).writeTo(ref).append()
        return {"table": table, "rows": len(rows)}
    except Exception as exc:  # the run did its work all the same: say why its history is missing
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        log.warning("run history not recorded", extra={"table": table, "kind": kind, "error": reason})
        return {"table": table, "error": reason}


def record_run(
    spark: Callable[[], Any],
    config: Any,
    kind: str,
    report: Dict[str, Any],
    dry_run: bool = False,
    session_started: bool = True,
) -> None:
    """Record a finished run as `config.history` says (`spark`: how to get the job's session); the report
    carries the outcome under `history`. Dry runs change nothing and are not recorded; nor is a run that never
    needed Spark (`session_started` false: every table healthy or skipped), which is not worth starting it."""
    if dry_run or not config.history.enabled:
        return
    if not session_started:
        report["history"] = {"table": config.history.table, "rows": 0, "skipped": "nothing ran: Spark not started"}
        return
    report["history"] = record(spark(), config.catalog.name, config.history.table, kind, report)


COLUMNS = ("run_id", "kind", "started_at", "finished_at", "duration_s", "table_name", "ok", "actions", "metrics")


def read_history(catalog_tables: Any, table: str, since_s: float) -> List[Dict[str, Any]]:
    """History rows that started since `since_s` (epoch seconds), times as aware datetimes; CatalogError when
    the table does not exist yet."""
    history = catalog_tables.load(table)
    # Epoch microseconds: pyiceberg compares them with the timestamp column as they are (and prunes by day).
    scan = history.scan(row_filter="started_at >= %d" % int(since_s * 1_000_000), selected_fields=COLUMNS)
    rows: List[Dict[str, Any]] = scan.to_arrow().to_pylist()
    for row in rows:
        for key in ("started_at", "finished_at"):
            if row[key] is not None and row[key].tzinfo is None:
                row[key] = row[key].replace(tzinfo=timezone.utc)
        row["metrics"] = dict(row["metrics"] or [])  # Arrow gives a map as (key, value) pairs
    return rows
