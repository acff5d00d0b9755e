"""`lakehouse-ops report --html PATH`: the fleet's plan (ranked by need, no Spark) and the run history of the last
days (read with pyiceberg, pruned to those days' partitions), rendered by `html.render` and written to a file or
an s3:// URI."""

import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from lakehouse_ops.aws.textio import write_text
from lakehouse_ops.engine.history import read_history
from lakehouse_ops.errors import CatalogError
from lakehouse_ops.health import open_tables
from lakehouse_ops.runner.fleet import plan_fleet
from lakehouse_ops.runner.html import render

DAY_S = 24 * 3600


def build(
    config: Any,
    patterns: Optional[List[str]] = None,
    days: float = 14.0,
    workers: int = 8,
    now_s: Optional[float] = None,
) -> Dict[str, Any]:
    now_s = time.time() if now_s is None else now_s
    report: Dict[str, Any] = {
        "catalog": config.catalog.name,
        "generated_at": datetime.fromtimestamp(now_s, timezone.utc),
        "days": days,
        "history_table": config.history.table,
        "fleet": plan_fleet(config, patterns=patterns, workers=workers),
        "history": [],
    }
    try:
        report["history"] = read_history(open_tables(config.catalog), config.history.table, now_s - days * DAY_S)
    except CatalogError:
        report["history_note"] = "no run recorded yet (the history table does not exist)"
    if patterns:
        shown = {e["table"] for e in report["fleet"]["tables"]}
        report["history"] = [r for r in report["history"] if r["table_name"] in shown]
    return report


def write_page(config: Any, path: str, patterns: Optional[List[str]] = None, days: float = 14.0) -> Dict[str, Any]:
    """Render the page to `path`; returns what the command prints."""
    report = build(config, patterns, days)
    page = render(report)
    write_text(path, page)
    return {
        "ok": True,
        "path": path,
        "bytes": len(page.encode("utf-8")),
        "tables": report["fleet"]["count"],
        "needy": report["fleet"]["needy"],
        "runs": len(report["history"]),
    }
