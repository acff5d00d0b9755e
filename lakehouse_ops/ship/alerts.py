"""Failure alerts: EventBridge rules on the default event bus that send every failed or cancelled run of the
config's targets to an SNS topic (`ship.alerts`), created or updated by `lakehouse-ops schedule` next to the
schedules, idempotently.

- EMR Serverless: "EMR Serverless Job Run State Change" events of the application (`ship.emr_serverless`) whose
  state is FAILED or CANCELLED: scheduled runs and runs started by `submit`, Airflow or anyone else alike.
- EMR on EC2: "EMR Step Status Change" events of the cluster (`ship.emr.cluster_id`) in those states. Transient
  clusters have no id before they exist; their steps are followed by `submit --wait`, which exits non-zero.

The topic's access policy must let EventBridge publish (`events.amazonaws.com`, `sns:Publish`); the rule cannot
say so itself (docs/schedules.md)."""

import json
from typing import Any, Dict, List, Mapping, Optional

from lakehouse_ops.logs import get_logger

log = get_logger("ship.alerts")
FAILED_STATES = ["FAILED", "CANCELLED"]
TARGET_ID = "lakehouse-ops-alerts"
Rule = Dict[str, Any]  # {"Name", "EventPattern" (dict), "Description", "State", "topic_arn"}


def wanted_rules(ship: Any) -> List[Rule]:
    """The rules the config asks for (none without `ship.alerts`)."""
    alerts = ship.alerts
    if alerts is None:
        return []
    rules: List[Rule] = []
    if ship.emr_serverless is not None:
        pattern = {
            "source": ["aws.emr-serverless"],
            "detail-type": ["EMR Serverless Job Run State Change"],
            "detail": {"applicationId": [ship.emr_serverless.application_id], "state": FAILED_STATES},
        }
        rules.append(_rule(alerts, "serverless-failures", pattern, "EMR Serverless application"))
    if ship.emr is not None and ship.emr.cluster_id:
        pattern = {
            "source": ["aws.emr"],
            "detail-type": ["EMR Step Status Change"],
            "detail": {"clusterId": [ship.emr.cluster_id], "state": FAILED_STATES},
        }
        rules.append(_rule(alerts, "step-failures", pattern, "EMR cluster"))
    return rules


def _rule(alerts: Any, suffix: str, pattern: Mapping[str, Any], what: str) -> Rule:
    return {
        "Name": "%s-%s" % (alerts.rule_prefix, suffix),
        "EventPattern": dict(pattern),
        "Description": "managed by lakehouse-ops: failed or cancelled runs of the %s, to SNS" % what,
        "State": "ENABLED",
        "topic_arn": alerts.topic_arn,
    }


def _current(events: Any, name: str) -> Optional[Dict[str, Any]]:
    """The rule as it stands (pattern, state, description, its targets), or None."""
    from botocore.exceptions import ClientError

    try:
        rule = events.describe_rule(Name=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return None
    targets = events.list_targets_by_rule(Rule=name).get("Targets", [])
    return {
        "EventPattern": json.loads(rule.get("EventPattern") or "null"),
        "State": rule.get("State"),
        "Description": rule.get("Description"),
        "targets": {t["Id"]: t["Arn"] for t in targets},
    }


def apply_rules(events: Any, rules: List[Rule], dry_run: bool = False) -> List[Dict[str, Any]]:
    """Create or update each rule and its SNS target; one already as wanted is left alone. Other targets a
    user added to the rule are kept. Returns [{name, action}] (in a dry run: would create / would update, with
    the requests)."""
    results: List[Dict[str, Any]] = []
    for rule in rules:
        current = _current(events, rule["Name"])
        same = current is not None and (
            current["EventPattern"] == rule["EventPattern"]
            and current["State"] == rule["State"]
            and current["Description"] == rule["Description"]
            and current["targets"].get(TARGET_ID) == rule["topic_arn"]
        )
        if same:
            results.append({"name": rule["Name"], "action": "unchanged"})
            continue
        verb = "create" if current is None else "update"
        put_rule = {
            "Name": rule["Name"],
            "EventPattern": json.dumps(rule["EventPattern"], sort_keys=True),
            "State": rule["State"],
            "Description": rule["Description"],
        }
        put_targets = {"Rule": rule["Name"], "Targets": [{"Id": TARGET_ID, "Arn": rule["topic_arn"]}]}
        if dry_run:
            requests = {"put_rule": put_rule, "put_targets": put_targets}
            results.append({"name": rule["Name"], "action": "would " + verb, "requests": requests})
            continue
        events.put_rule(**put_rule)
        answer = events.put_targets(**put_targets)
        if answer.get("FailedEntryCount"):
            raise RuntimeError("the alert rule %s took no SNS target: %s" % (rule["Name"], answer["FailedEntries"]))
        results.append({"name": rule["Name"], "action": verb + "d"})
        log.info("alert rule %sd" % verb, extra={"rule": rule["Name"]})
    return results
