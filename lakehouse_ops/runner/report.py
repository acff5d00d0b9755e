"""Reports: JSON for machines (stdout, a file or s3://), readable tables for people."""

import json
import os
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from rich.console import Console

from lakehouse_ops.aws.textio import to_json, write_json
from lakehouse_ops.config import TablePolicy
from lakehouse_ops.units import human_bytes

__all__ = [
    "to_json",
    "write_report",
    "print_health",
    "print_compare",
    "print_actions",
    "print_ingest",
    "print_erasure",
    "print_fleet",
    "print_policy",
]


def write_report(report: Mapping[str, Any], destination: str) -> None:
    write_json(destination, report)


def _console(default_width: int = 120) -> "Console":
    from rich.console import Console

    return Console(width=max(100, int(os.environ.get("COLUMNS", str(default_width)))))


def health_rows(health: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """(label, value) pairs summarising a health dict."""
    return [
        (
            "data files",
            "%d (%d small, %.0f%%)" % (health["data_files"], health["small_files"], health["small_file_ratio"] * 100),
        ),
        ("data bytes", human_bytes(health["data_bytes"])),
        ("records", "%d" % health["records"]),
        ("delete files", "%d" % health["delete_files"]),
        ("partitions", "%d" % len(health["partitions"])),
        ("snapshots", "%d (oldest %.1f h)" % (health["snapshots"], health["oldest_snapshot_age_hours"])),
        (
            "manifests",
            "%d (%d small, avg %s)"
            % (health["manifests"], health["small_manifests"], human_bytes(health["avg_manifest_bytes"])),
        ),
        (
            "metadata files",
            "%d on storage, %d in the log" % (health["metadata_files"], health["metadata_log_files"])
            if health.get("metadata_files_listed")
            else "%d in the log" % health["metadata_files"],
        ),
        ("property drift", ", ".join(sorted(health["property_drift"])) or "none"),
    ]


def print_health(healths: Sequence[Mapping[str, Any]], console: Optional["Console"] = None) -> None:
    from rich.table import Table

    console = console or _console()
    for health in healths:
        table = Table(title="health of %s" % health["table"], show_header=False)
        table.add_column("what")
        table.add_column("value")
        for label, value in health_rows(health):
            table.add_row(label, value)
        console.print(table)


def print_compare(before: Mapping[str, Any], after: Mapping[str, Any], console: Optional["Console"] = None) -> None:
    from rich.table import Table

    console = console or _console()
    table = Table(title="%s: before and after" % before["table"])
    for column in ("what", "before", "after"):
        table.add_column(column)
    for (label, b), (_, a) in zip(health_rows(before), health_rows(after)):
        table.add_row(label, b, a)
    console.print(table)


def print_actions(report: Mapping[str, Any], console: Optional["Console"] = None) -> None:
    from rich.table import Table

    console = console or _console()
    styles = {"done": "green", "skipped": "dim", "failed": "bold red", "planned": "cyan"}
    for entry in report["tables"]:
        table = Table(title="%s%s" % (entry["table"], " (dry run)" if report.get("dry_run") else ""))
        for column in ("action", "status", "seconds", "reason"):
            table.add_column(column, overflow="fold")
        if entry.get("error"):
            table.add_row("-", "[bold red]failed[/]", "", entry["error"])
        for action in entry["actions"]:
            style = styles.get(action["status"], "")
            table.add_row(
                action["action"],
                "[%s]%s[/]" % (style, action["status"]) if style else action["status"],
                "%.1f" % action["duration_s"] if action["duration_s"] else "",
                action["reason"],
            )
        console.print(table)
    if report.get("error"):
        console.print("[bold red]%s[/]" % report["error"])
    console.print("[bold %s]%s[/]" % (("green", "ok") if report["ok"] else ("red", "something failed: see above")))


def print_ingest(report: Mapping[str, Any], console: Optional["Console"] = None) -> None:
    from rich.table import Table

    console = console or _console()
    table = Table(title="ingest into %s" % report["target"])
    columns = ("batch", "messages", "objects", "dup", "rows", "quarantined", "dlq", "commit s", "lag s")
    for column in columns:
        table.add_column(column, justify="right")
    for i, b in enumerate(report["batches"], 1):
        table.add_row(
            str(i),
            str(b["messages"]),
            str(b["objects"]),
            str(b["duplicates"] + b["already_committed"]),
            str(b["rows"]),
            str(b["quarantined"]),
            str(b["dlq_messages"]),
            "%.2f" % b["commit_s"],
            "%.1f" % b.get("lag_s", 0),
        )
    console.print(table)
    t = report["totals"]
    console.print(
        "%d batches, %d rows, %.1f rows/s, %.1f messages/s; stopped: %s"
        % (t["batches"], t["rows"], t["rows_per_s"], t["messages_per_s"], report.get("stopped", "-"))
    )


def print_erasure(receipt: Mapping[str, Any], console: Optional["Console"] = None) -> None:
    from rich.table import Table

    console = console or _console()
    title = "erasure%s%s" % (
        " (dry run)" if receipt["dry_run"] else "",
        " for %s" % receipt["request_id"] if receipt.get("request_id") else "",
    )
    table = Table(title=title)
    for column in (
        "table",
        "found",
        "rows deleted",
        "files rewritten",
        "snapshots expired",
        "files removed",
        "verified",
    ):
        table.add_column(column)
    for t in receipt["tables"]:
        verified = t["verification"].get("verified")
        table.add_row(
            t["table"],
            "yes" if t["found"] else "no",
            str(t["rows_deleted"]),
            str(t["files_rewritten"]),
            str(len(t["snapshots_expired"])),
            str(sum(t["files_removed"].values())),
            "-" if verified is None else ("yes" if verified else "NO"),
        )
    console.print(table)
    for t in receipt["tables"]:
        for problem in t["problems"]:
            console.print("[red]%s[/red]: %s" % (t["table"], problem))
    console.print(receipt["summary"])
    if receipt.get("receipt_path"):
        console.print("receipt: %s" % receipt["receipt_path"])


def print_fleet(report: Mapping[str, Any], console: Optional["Console"] = None) -> None:
    from rich.table import Table

    out = Table(
        title="%d tables, %d need maintenance (%.1f s, no Spark)"
        % (report["count"], report["needy"], report["duration_s"])
    )
    for column in ("rank", "table", "score", "actions", "to rewrite", "files (small)", "manifests", "snapshots"):
        out.add_column(column)
    for i, e in enumerate(report["tables"], 1):
        if not e["ok"]:
            out.add_row(str(i), e["table"], "-", "error: " + e["error"], "", "", "", "")
            continue
        h = e["health"]
        out.add_row(
            str(i) if e["needy"] else "-",
            e["table"],
            "%.1f" % e["score"],
            ", ".join(e["actions"]) or "-",
            human_bytes(e["rewrite_bytes"]),
            "%d (%d)" % (h["data_files"], h["small_files"]),
            str(h["manifests"]),
            str(h["snapshots"]),
        )
    (console or _console(140)).print(out)


def print_policy(
    table: str, policy: TablePolicy, sources: Mapping[str, str], console: Optional["Console"] = None
) -> None:
    """Every key of the effective policy, its value and the rule (or default) that set it."""
    from rich.table import Table

    from lakehouse_ops.config.rules import flatten

    out = Table(title="policy of %s" % table)
    for column in ("key", "value", "set by"):
        out.add_column(column, overflow="fold")
    flat = flatten(policy.model_dump())
    for key in sorted(flat):
        out.add_row(key, json.dumps(flat[key], default=str), sources.get(key, ""))
    (console or _console(140)).print(out)
