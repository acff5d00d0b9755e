"""The fleet report as one self-contained HTML page (inline CSS and SVG: no script, font or image fetched, so it
opens from S3, an e-mail or a laptop alike). Pure: `render(report)` from what `fleet_page.build` gathers."""

import html
from collections import defaultdict
from datetime import datetime
from typing import Any, Dict, List, Sequence, Tuple

from lakehouse_ops.units import human_bytes

TREND_TABLES = 12  # tables drawn in the trends section: the neediest with history first
LAST_RUNS = 50
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2433;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.meta{color:#5b6578;font-size:13px} .cards{display:flex;gap:12px;margin:14px 0;flex-wrap:wrap}
.card{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:22px} table{border-collapse:collapse;background:#fff;font-size:13px;width:100%}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top} th{background:#eef1f6}
.ok{color:#17803d} .bad{color:#b42318} .tag{display:inline-block;border-radius:3px;padding:0 5px;margin:1px;
font-size:12px;background:#eef1f6} .tag.done{background:#d9f2e3} .tag.failed{background:#fbe0dd}
.tag.partial{background:#fdf0d2} .tag.skipped{color:#7a8394} .trends{display:flex;flex-wrap:wrap;gap:12px}
.trend{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:8px} .trend h3{font-size:13px;margin:0 0 4px}
.empty{color:#7a8394;font-style:italic}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else _e(value)


def _cards(report: Dict[str, Any]) -> str:
    fleet, runs = report["fleet"], report["history"]
    failed = sum(1 for r in runs if not r.get("ok"))
    cards = [
        ("tables", fleet.get("count", 0)),
        ("need maintenance", fleet.get("needy", 0)),
        ("runs in %g days" % report["days"], len(runs)),
        ("failed runs", failed),
    ]
    return '<div class="cards" id="summary">%s</div>' % "".join(
        '<div class="card"><b>%s</b>%s</div>' % (_e(v), _e(k)) for k, v in cards
    )


def _ranked(fleet: Dict[str, Any]) -> str:
    rows = []
    for rank, e in enumerate(fleet.get("tables") or [], 1):
        if not e.get("ok"):
            rows.append(
                '<tr><td>-</td><td>%s</td><td colspan="5" class="bad">error: %s</td></tr>'
                % (_e(e["table"]), _e(e.get("error")))
            )
            continue
        h = e.get("health") or {}
        reasons = "<br>".join("<b>%s</b>: %s" % (_e(a), _e(r)) for a, r in (e.get("reasons") or {}).items())
        rows.append(
            "<tr><td>%s</td><td>%s</td><td>%.1f</td><td>%s</td><td>%s</td><td>%s (%s small)</td><td>%s</td></tr>"
            % (
                rank if e.get("needy") else "-",
                _e(e["table"]),
                e.get("score", 0.0),
                _e(", ".join(e.get("actions") or []) or "-"),
                _e(human_bytes(e.get("rewrite_bytes", 0))),
                _e(h.get("data_files", "")),
                _e(h.get("small_files", "")),
                reasons or '<span class="empty">nothing to do</span>',
            )
        )
    head = "".join("<th>%s</th>" % h for h in ("rank", "table", "score", "actions", "to rewrite", "files", "why"))
    return '<table id="ranked"><tr>%s</tr>%s</table>' % (head, "".join(rows))


def _polyline(points: Sequence[Tuple[float, float]], box: Tuple[float, float, float, float], color: str) -> str:
    x0, x1, y0, y1 = box
    width, height, pad = 300.0, 90.0, 6.0
    sx = (width - 2 * pad) / ((x1 - x0) or 1.0)
    sy = (height - 2 * pad) / ((y1 - y0) or 1.0)
    placed = [(pad + (x - x0) * sx, height - pad - (y - y0) * sy) for x, y in points]
    coords = " ".join("%.1f,%.1f" % xy for xy in placed)
    dots = "".join('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>' % (x, y, color) for x, y in placed)
    return '<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>%s' % (color, coords, dots)


def _trend(table: str, runs: List[Dict[str, Any]]) -> str:
    """Data files and small files after each maintain run (and before the first), on one time axis."""
    series: Dict[str, List[Tuple[float, float]]] = {"data_files": [], "small_files": []}
    for i, run in enumerate(runs):
        metrics = run.get("metrics") or {}
        for name, points in series.items():
            if i == 0 and "before." + name in metrics:
                points.append((run["started_at"].timestamp(), metrics["before." + name]))
            if "after." + name in metrics:
                points.append((run["finished_at"].timestamp(), metrics["after." + name]))
    every = [p for points in series.values() for p in points]
    if not every:
        return ""
    box = (min(x for x, _ in every), max(x for x, _ in every), 0.0, max(y for _, y in every) or 1.0)
    lines = _polyline(series["data_files"], box, "#2f6fdb") + _polyline(series["small_files"], box, "#e07b39")
    last = {k: int(v[-1][1]) for k, v in series.items() if v}
    return (
        '<div class="trend" data-table="%s"><h3>%s</h3>'
        '<svg width="300" height="90" role="img" aria-label="trend of %s">'
        '<rect width="300" height="90" fill="#fbfcfe"/>%s</svg><div class="meta">%d runs; now %s files, %s small '
        '(<span style="color:#2f6fdb">files</span>, <span style="color:#e07b39">small</span>)</div></div>'
        % (_e(table), _e(table), _e(table), lines, len(runs), last.get("data_files", "-"), last.get("small_files", "-"))
    )


def _trends(fleet: Dict[str, Any], runs: List[Dict[str, Any]]) -> str:
    by_table: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r["started_at"]):
        if run.get("kind") == "maintain":
            by_table[run["table_name"]].append(run)
    order = [e["table"] for e in fleet.get("tables") or [] if e["table"] in by_table]
    order += sorted(t for t in by_table if t not in order)
    charts = "".join(_trend(t, by_table[t]) for t in order[:TREND_TABLES])
    return '<div class="trends" id="trends">%s</div>' % (
        charts or '<p class="empty">no maintain run recorded in this window</p>'
    )


def _runs(runs: List[Dict[str, Any]]) -> str:
    rows = []
    for run in sorted(runs, key=lambda r: r["started_at"], reverse=True)[:LAST_RUNS]:
        tags = "".join(
            '<span class="tag %s" title="%s">%s %s %.1fs</span>'
            % (_e(a["status"]), _e(a.get("summary", "")), _e(a["action"]), _e(a["status"]), a.get("duration_s") or 0.0)
            for a in run.get("actions") or []
            if a["status"] != "skipped"
        )
        rows.append(
            '<tr class="run"><td>%s</td><td>%s</td><td>%s</td><td>%.1f s</td><td class="%s">%s</td><td>%s</td></tr>'
            % (
                _when(run["started_at"]),
                _e(run["kind"]),
                _e(run["table_name"]),
                run.get("duration_s") or 0.0,
                "ok" if run.get("ok") else "bad",
                "ok" if run.get("ok") else "failed",
                tags or '<span class="empty">-</span>',
            )
        )
    head = "<tr><th>started</th><th>kind</th><th>table</th><th>took</th><th>outcome</th><th>actions</th></tr>"
    if not rows:
        return '<p class="empty" id="runs">no run recorded in this window</p>'
    return '<table id="runs">%s%s</table>' % (head, "".join(rows))


def _durations(runs: List[Dict[str, Any]]) -> str:
    """Time spent per action over the window: one horizontal bar each."""
    spent: Dict[str, float] = defaultdict(float)
    for run in runs:
        for a in run.get("actions") or []:
            if a["status"] != "skipped":
                spent[a["action"]] += a.get("duration_s") or 0.0
    if not spent:
        return '<p class="empty" id="durations">no action ran in this window</p>'
    top = max(spent.values()) or 1.0
    bars = "".join(
        '<text x="0" y="%d" font-size="12">%s</text><rect x="190" y="%d" width="%.1f" height="14" fill="#2f6fdb"/>'
        '<text x="%.1f" y="%d" font-size="12">%.1f s</text>'
        % (20 * i + 13, _e(name), 20 * i + 2, 300 * s / top, 196 + 300 * s / top, 20 * i + 13, s)
        for i, (name, s) in enumerate(sorted(spent.items(), key=lambda kv: -kv[1]))
    )
    return '<svg id="durations" width="560" height="%d" role="img" aria-label="time per action">%s</svg>' % (
        20 * len(spent) + 4,
        bars,
    )


def render(report: Dict[str, Any]) -> str:
    """The page: summary cards, tables ranked by need, health trends from the history, the last runs with their
    actions and durations, and time per action."""
    history_note = report.get("history_note") or ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>lakehouse-ops fleet report</title>'
        "<style>%s</style></head><body><h1>lakehouse-ops fleet report</h1>"
        '<div class="meta">catalog %s, generated %s, history from %s (last %g days)%s</div>%s'
        "<h2>Tables ranked by need</h2>%s<h2>Health trends</h2>%s<h2>Last runs</h2>%s<h2>Time per action</h2>%s"
        "</body></html>"
        % (
            CSS,
            _e(report["catalog"]),
            _when(report["generated_at"]),
            _e(report["history_table"]),
            report["days"],
            " - " + _e(history_note) if history_note else "",
            _cards(report),
            _ranked(report["fleet"]),
            _trends(report["fleet"], report["history"]),
            _runs(report["history"]),
            _durations(report["history"]),
        )
    )
