"""The EMF documents of a maintain run (config `metrics`): one per action that ran on a table, with dimensions Job,
Table, Action (and the config's own), its duration and outcome, and what it rewrote, deleted or moved to the
trash. What each action reports under its own names is summed into the common metric names here."""

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from lakehouse_ops import emf

# Metric name, unit, and the output keys of the actions that count toward it.
FIGURES: Sequence[Tuple[str, str, Tuple[str, ...]]] = (
    (
        "FilesRewritten",
        "Count",
        ("rewritten_data_files_count", "rewritten_delete_files_count", "rewritten_manifests_count"),
    ),
    ("FilesAdded", "Count", ("added_data_files_count", "added_delete_files_count", "added_manifests_count")),
    ("BytesRewritten", "Bytes", ("rewritten_bytes_count",)),
    (
        "FilesDeleted",
        "Count",
        (
            "deleted_files",
            "deleted_data_files_count",
            "deleted_position_delete_files_count",
            "deleted_equality_delete_files_count",
            "deleted_manifest_files_count",
            "deleted_manifest_lists_count",
            "removed_delete_files",
        ),
    ),
    ("BytesDeleted", "Bytes", ("deleted_bytes",)),
    ("FilesTrashed", "Count", ("trashed_files",)),
    ("BytesTrashed", "Bytes", ("trashed_bytes",)),
    ("RowsDeleted", "Count", ("rows_deleted",)),
)
RAN = ("done", "partial", "failed")


def _sum(outputs: Mapping[str, Any], keys: Sequence[str]) -> Optional[float]:
    values = [outputs[k] for k in keys if isinstance(outputs.get(k), (int, float)) and not isinstance(outputs[k], bool)]
    return float(sum(values)) if values else None


def action_metrics(action: Mapping[str, Any]) -> List[emf.Metric]:
    outputs = action.get("outputs") or {}
    metrics: List[emf.Metric] = [
        ("Duration", float(action.get("duration_s") or 0.0), "Seconds"),
        ("Failed", 1 if action.get("status") == "failed" else 0, "Count"),
        ("Partial", 1 if action.get("status") == "partial" else 0, "Count"),
    ]
    for name, unit, keys in FIGURES:
        metrics.append((name, _sum(outputs, keys), unit))
    return metrics


def maintain_documents(config: Any, report: Mapping[str, Any], now_ms: Optional[int] = None) -> List[Dict[str, Any]]:
    """One document per action that ran (skipped and planned ones measure nothing)."""
    settings = config.metrics
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    out: List[Dict[str, Any]] = []
    for entry in report.get("tables") or []:
        for action in entry.get("actions") or []:
            if action.get("status") not in RAN:
                continue
            dimensions = dict(settings.dimensions, Job="maintain", Table=str(entry.get("table")))
            dimensions["Action"] = str(action.get("action"))
            properties = {"status": action.get("status")}
            doc = emf.document(settings.namespace, dimensions, action_metrics(action), now_ms, properties)
            if doc is not None:
                out.append(doc)
    return out
