"""Table properties: set what the policy manages, report the drift it found."""

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from lakehouse_ops.config.policy import TablePolicy
from lakehouse_ops.health.scan import TableHealth
from lakehouse_ops.maintenance.base import Params, Plan, params_of, skip
from lakehouse_ops.sqltext import quote_string, table_ref

NAME = "properties"
METADATA_CLEANUP = "write.metadata."
COMMITS, REWRITES_DATA, DELETES_FILES = True, False, False


@dataclass(frozen=True)
class PropertyParams(Params):
    wanted: Mapping[str, str]  # what the policy wants set
    previous: Mapping[str, Any]  # what the table had (None: unset)

    def to_dict(self) -> Dict[str, Any]:
        return {"set": dict(self.wanted), "previous": dict(self.previous)}


def plan(policy: TablePolicy, health: TableHealth, now_ms: Optional[int] = None) -> Plan:
    if not policy.properties.enabled:
        return skip(NAME, "disabled by policy (properties.enabled=false)")
    drift = health.property_drift
    if not drift:
        return skip(NAME, "every managed property matches the policy")
    changes = ", ".join("%s: %s -> %s" % (k, v["actual"], v["expected"]) for k, v in sorted(drift.items()))
    if any(k.startswith(METADATA_CLEANUP) for k in drift) and health.metadata_files > health.metadata_log_files:
        changes += (
            "; %d metadata.json files on storage, %d tracked by the metadata log (the untracked ones go with orphan "
            "removal)" % (health.metadata_files, health.metadata_log_files)
        )
    return Plan(
        action=NAME,
        run=True,
        reason="drift from policy: " + changes,
        params=PropertyParams(
            wanted={k: str(v["expected"]) for k, v in sorted(drift.items())},
            previous={k: v["actual"] for k, v in sorted(drift.items())},
        ),
    )


def execute(spark: Any, catalog: str, table: str, plan: Plan) -> Dict[str, Any]:
    p = params_of(plan, PropertyParams)
    values = dict(p.wanted)
    pairs = ", ".join("%s = %s" % (quote_string(k), quote_string(v)) for k, v in values.items())
    spark.sql("ALTER TABLE %s SET TBLPROPERTIES (%s)" % (table_ref(catalog, table), pairs))
    return {"set": values, "previous": dict(p.previous)}


def summarize(outputs: Dict[str, Any]) -> str:
    return "set %s" % ", ".join("%s=%s" % kv for kv in sorted(outputs.get("set", {}).items()))
