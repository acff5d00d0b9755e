"""The circuit breaker: an action that failed on a table in `after_failures` maintain runs in a row (read from the
run history) is suspended for that table for `cooldown_hours` after its last failure, then tried once more; a
failure of that try suspends it again, a success closes the breaker. Runs where the action was skipped or only
planned do not count either way. Pure: history rows in, a Suspension or None out."""

import dataclasses
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional

from lakehouse_ops.units import iso_utc

FAILED, NOT_RUN = "failed", ("skipped", "planned")


@dataclasses.dataclass(frozen=True)
class Suspension:
    action: str
    failures: int  # failed runs in a row, the newest first
    until: datetime
    last_reason: str

    def reason(self) -> str:
        return "suspended until %s: failed in the last %d runs in a row (last: %s)" % (
            iso_utc(int(self.until.timestamp() * 1000)),
            self.failures,
            self.last_reason[:300],
        )


def by_table(rows: Iterable[Mapping[str, Any]]) -> Dict[str, List[Mapping[str, Any]]]:
    """Maintain runs per table, newest first."""
    out: Dict[str, List[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("kind") == "maintain" and row.get("started_at") is not None:
            out.setdefault(str(row.get("table_name")), []).append(row)
    for runs in out.values():
        runs.sort(key=lambda r: r["started_at"], reverse=True)
    return out


def suspended(
    runs: List[Mapping[str, Any]], action: str, after_failures: int, cooldown_hours: float, now: datetime
) -> Optional[Suspension]:
    """The action's suspension on the table whose maintain runs (newest first) are `runs`, or None."""
    if after_failures <= 0:
        return None
    streak, last = 0, None
    for run in runs:
        status = next((a.get("status") for a in run.get("actions") or [] if a.get("action") == action), None)
        if status is None or status in NOT_RUN:
            continue
        if status != FAILED:
            break
        streak += 1
        last = last or run
    if last is None or streak < after_failures:
        return None
    failed_at = last.get("finished_at") or last["started_at"]
    until = failed_at + timedelta(hours=cooldown_hours)
    if now >= until:
        return None  # the one try after the cooldown
    summary = next((a.get("summary") for a in last.get("actions") or [] if a.get("action") == action), "")
    return Suspension(action, streak, until, str(summary or ""))
