"""Recovery points (policy `recovery_points: {every: daily|weekly, max_age_days, prefix}`): a tag on the current
snapshot once a day or once a week, named `<prefix><date>` (the day, or the Monday of the week, in UTC), created
with `RETAIN max_age_days DAYS`. `expire_snapshots` never removes a tagged snapshot or its files while the tag
lives, and drops the tag once it is older than that, so the last good states stay readable
(`VERSION AS OF '<tag>'`) and restorable (`rollback_to_snapshot`) for as long as the policy says.
"""

import datetime
from dataclasses import dataclass
from typing import Any, Dict, Optional

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip
from lakehouse_ops.sqltext import quote_ident, table_ref
from lakehouse_ops.units import now_ms as _now_ms

NAME = "recovery_points"
COMMITS, REWRITES_DATA, DELETES_FILES = True, False, False


@dataclass(frozen=True)
class RecoveryPointParams(Params):
    tag: str
    snapshot_id: int
    retain_days: int


def tag_for(prefix: str, every: str, now_ms: int) -> str:
    day = datetime.datetime.fromtimestamp(now_ms / 1000.0, tz=datetime.timezone.utc).date()
    if every == "weekly":
        day -= datetime.timedelta(days=day.weekday())
    return "%s%s" % (prefix, day.strftime("%Y%m%d"))


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    r = policy.recovery_points
    if r.every is None:
        return skip(NAME, "no recovery points in the policy")
    if health.snapshot_id is None:
        return skip(NAME, "table has no snapshot yet")
    tag = tag_for(r.prefix, r.every, now_ms if now_ms is not None else _now_ms())
    if tag in health.tags:
        return skip(NAME, "recovery point %s exists" % tag)
    return Plan(
        action=NAME,
        run=True,
        reason="%s recovery point %s not taken yet (kept %d days)" % (r.every, tag, r.max_age_days),
        params=RecoveryPointParams(tag=tag, snapshot_id=health.snapshot_id, retain_days=r.max_age_days),
    )


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, RecoveryPointParams)
    spark.sql(
        "ALTER TABLE %s CREATE TAG IF NOT EXISTS %s AS OF VERSION %d RETAIN %d DAYS"
        % (table_ref(catalog, table), quote_ident(p.tag), p.snapshot_id, p.retain_days)
    )
    return {"tag": p.tag, "snapshot_id": p.snapshot_id, "retain_days": p.retain_days}


def summarize(outputs: Dict[str, Any]) -> str:
    return "tagged snapshot %s as %s for %s days" % (
        outputs.get("snapshot_id"),
        outputs.get("tag"),
        outputs.get("retain_days"),
    )
