"""`lakehouse-ops schedule`: EventBridge Scheduler schedules that start EMR Serverless job runs, one per entry of
ship.schedules, in the group ship.schedule_group. Idempotent: a schedule that already says the same is left alone;
one that differs is updated; `prune` deletes schedules of the group the config no longer names."""

import contextlib
import json
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from lakehouse_ops.config import Config
from lakehouse_ops.errors import ConfigError, LakehouseOpsError, first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.ship import alerts, checks
from lakehouse_ops.ship import requests as req

log = get_logger("ship.schedule")
TARGET_ARN = "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
MANAGED = "managed by lakehouse-ops"
TARGET_KEYS = ("Arn", "RoleArn", "Input", "RetryPolicy", "DeadLetterConfig")  # what a schedule's target says
# Scheduler fills this in per invocation: each run gets its own idempotency token.
EXECUTION_ID = "<aws.scheduler.execution-id>"
Request = Dict[str, Any]  # a CreateSchedule / UpdateSchedule request
Outcome = Dict[str, Any]  # {name, action}


class ScheduleError(LakehouseOpsError):
    """EventBridge Scheduler refused a call."""


@contextlib.contextmanager
def scheduler_errors(what: str) -> Iterator[None]:
    """Turn an AWS error into one line naming what was being done (role, group, permissions...)."""
    try:
        yield
    except LakehouseOpsError:
        raise
    except Exception as exc:
        raise ScheduleError("%s failed: %s" % (what, first_line(exc))) from None


def desired(config: Config, config_uri: str, archive_uri: Optional[str]) -> Dict[str, Request]:
    """{schedule name: CreateSchedule request} for the config's schedules."""
    ship = config.ship
    if ship is None or not ship.schedules:
        raise ConfigError("%s has no ship.schedules to create" % config.source)
    out: Dict[str, Request] = {}
    for entry in ship.schedules:
        artifacts = req.artifacts_for(ship, entry.job, config_uri, archive_uri)
        run = req.start_job_run(
            config, entry.job, artifacts, entry.args, name="lakehouse-ops-" + entry.name, client_token=EXECUTION_ID
        )
        run["tags"] = dict(run["tags"], **{"lakehouse-ops:schedule": entry.name})
        target = _target(ship, run)
        window = (
            {"Mode": "OFF"}
            if not entry.flexible_window_minutes
            else {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": entry.flexible_window_minutes}
        )
        out[entry.name] = {
            "Name": entry.name,
            "GroupName": ship.schedule_group,
            "ScheduleExpression": entry.expression,
            "ScheduleExpressionTimezone": entry.timezone,
            "FlexibleTimeWindow": window,
            "State": "ENABLED" if entry.enabled else "DISABLED",
            "Description": "%s: %s" % (MANAGED, entry.job),
            "Target": target,
        }
    return out


def _target(ship: Any, run: Mapping[str, Any]) -> Dict[str, Any]:
    """The schedule's target: the StartJobRun request, its retry policy and its dead-letter queue."""
    target: Dict[str, Any] = {
        "Arn": TARGET_ARN,
        "RoleArn": ship.scheduler_role_arn,
        "Input": json.dumps(run, sort_keys=True),
        "RetryPolicy": {
            "MaximumRetryAttempts": ship.schedule_retry.max_attempts,
            "MaximumEventAgeInSeconds": ship.schedule_retry.max_event_age_minutes * 60,
        },
    }
    if ship.schedule_dead_letter_arn:
        target["DeadLetterConfig"] = {"Arn": ship.schedule_dead_letter_arn}
    return target


def _same(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    def norm(request: Mapping[str, Any]) -> Dict[str, Any]:
        target = dict(request.get("Target") or {})
        try:
            target["Input"] = json.loads(target.get("Input") or "null")
        except ValueError:
            pass
        return {
            "ScheduleExpression": request.get("ScheduleExpression"),
            "ScheduleExpressionTimezone": request.get("ScheduleExpressionTimezone") or "UTC",
            "FlexibleTimeWindow": request.get("FlexibleTimeWindow"),
            "State": request.get("State"),
            "Description": request.get("Description"),
            "Target": {k: target.get(k) for k in TARGET_KEYS},
        }

    return norm(current) == norm(wanted)


def apply(
    scheduler: Any, wanted: Mapping[str, Request], group: str, prune: bool = False, dry_run: bool = False
) -> List[Outcome]:
    """Create, update or leave each schedule; with prune, delete the group's schedules not wanted.
    Returns [{name, action}] (action: created, updated, unchanged, deleted; in a dry run: would create, would
    update, would delete, with the request that would be sent)."""
    from botocore.exceptions import ClientError

    results: List[Outcome] = []
    if not dry_run:
        try:
            scheduler.get_schedule_group(Name=group)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            scheduler.create_schedule_group(Name=group)
    for name, request in sorted(wanted.items()):
        try:
            current = scheduler.get_schedule(Name=name, GroupName=group)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            current = None
        if current is not None and _same(current, request):
            results.append({"name": name, "action": "unchanged"})
            continue
        verb = "create" if current is None else "update"
        if dry_run:
            results.append({"name": name, "action": "would " + verb, "request": dict(request)})
        else:
            (scheduler.create_schedule if current is None else scheduler.update_schedule)(**request)
            results.append({"name": name, "action": verb + "d"})
        log.info(
            "schedule %s" % ("would be %sd" % verb if dry_run else verb + "d"),
            extra={"schedule": name, "group": group, "dry_run": dry_run},
        )
    if prune:
        for existing in listed(scheduler, group):
            if existing["Name"] not in wanted:
                if not dry_run:
                    scheduler.delete_schedule(Name=existing["Name"], GroupName=group)
                results.append({"name": existing["Name"], "action": "would delete" if dry_run else "deleted"})
    return results


def listed(scheduler: Any, group: str) -> List[Dict[str, Any]]:
    """The schedules in `group` (name, state, expression where the listing gives it)."""
    out: List[Dict[str, Any]] = []
    token = None
    while True:
        kwargs = {"GroupName": group}
        if token:
            kwargs["NextToken"] = token
        page = scheduler.list_schedules(**kwargs)
        out.extend(page.get("Schedules", []))
        token = page.get("NextToken")
        if not token:
            return out


def delete(scheduler: Any, group: str, names: Sequence[str]) -> List[Outcome]:
    """Delete the named schedules of `group`; [{name, action}] (deleted, or not found)."""
    from botocore.exceptions import ClientError

    results: List[Outcome] = []
    for name in names:
        try:
            scheduler.delete_schedule(Name=name, GroupName=group)
            results.append({"name": name, "action": "deleted"})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            results.append({"name": name, "action": "not found"})
    return results


def manage(
    config: Config,
    config_path: str,
    archive: Optional[str] = None,
    list_only: bool = False,
    delete_names: Sequence[str] = (),
    prune: bool = False,
    dry_run: bool = False,
    scheduler: Any = None,
) -> Dict[str, Any]:
    """What `lakehouse-ops schedule` does: list the group, delete named schedules, or upload what the
    schedules' runs need and create/update them. Returns the report."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.ship import submit as sub

    ship = config.section("ship")
    scheduler = scheduler or client("scheduler")
    group = ship.schedule_group
    if list_only:
        with scheduler_errors("listing schedule group %s" % group):
            return {"ok": True, "group": group, "schedules": listed(scheduler, group)}
    if delete_names:
        with scheduler_errors("deleting schedules in group %s" % group):
            return {"ok": True, "group": group, "results": delete(scheduler, group, delete_names)}
    if not archive:
        raise ConfigError("scheduled runs need the packed environment: pass --archive (`lakehouse-ops package`)")
    artifacts = {e.job: req.artifacts_for(ship, e.job, config_path, archive) for e in ship.schedules}
    any_artifacts = next(iter(artifacts.values()))
    wanted = desired(config, any_artifacts.config, any_artifacts.archive)
    report: Dict[str, Any] = {"ok": True, "group": group, "dry_run": dry_run}
    if not ship.schedule_dead_letter_arn:
        report["dead_letter"] = "none: a run Scheduler cannot start is only counted in its CloudWatch metrics"
    if not ship.alerts:
        report["alerts"] = "none: a failed run alerts nobody (ship.alerts names an SNS topic)"
    if dry_run:
        report["results"] = _dry_run(scheduler, wanted, group, prune)
        report["archive"] = _archive_in_dry_run(any_artifacts.archive)
        report["ok"] = not report["archive"].startswith("missing")
        if ship.alerts:
            report["alerts"] = _alerts_dry_run(ship)
        return report
    files = []
    for job in artifacts:
        files += sub.uploads(artifacts[job], job, config_path, archive)
    sub.upload(dict(files).items())
    # The archive every scheduled run unpacks must be there, as submit checks before a run (the entry points and
    # the config were just uploaded): a schedule naming a missing one would fail each time it fires.
    checks.check_archive(any_artifacts.archive)
    with scheduler_errors("applying schedules to group %s" % group):
        report["results"] = apply(scheduler, wanted, group, prune=prune)
    if ship.alerts:
        with scheduler_errors("applying the alert rules to EventBridge"):
            report["alerts"] = alerts.apply_rules(client("events"), alerts.wanted_rules(ship))
    return report


def _archive_in_dry_run(archive: Optional[str]) -> str:
    """Whether the archive the schedules name is there, as far as a dry run can tell (a local one is uploaded by
    the real run; offline, S3 cannot be asked)."""
    from lakehouse_ops.aws.clients import describe_failure

    if not archive or not archive.startswith("s3://"):
        return "uploaded by the run"
    try:
        checks.check_archive(archive)
    except ConfigError as exc:
        return "missing: %s; schedule would refuse" % exc
    except Exception as exc:
        return "not checked: %s" % (describe_failure(exc) or first_line(exc))
    return "present"


def _alerts_dry_run(ship: Any) -> List[Outcome]:
    """The alert rules a run would create or update; offline, every request as it would be sent."""
    from lakehouse_ops.aws.clients import client, describe_failure

    rules = alerts.wanted_rules(ship)
    try:
        return alerts.apply_rules(client("events"), rules, dry_run=True)
    except Exception as exc:
        if describe_failure(exc) is None:
            raise ScheduleError("reading the alert rules failed: %s" % first_line(exc)) from None
    return [{"name": r["Name"], "action": "would create or update", "rule": dict(r)} for r in rules]


def _dry_run(scheduler: Any, wanted: Mapping[str, Request], group: str, prune: bool) -> List[Outcome]:
    """What `schedule` would do: compared with the group's schedules where AWS answers; offline (no endpoint, no
    credentials, no permission to read the group) every request is shown as it would be sent."""
    from lakehouse_ops.aws.clients import describe_failure

    try:
        return apply(scheduler, wanted, group, prune=prune, dry_run=True)
    except Exception as exc:
        reason = describe_failure(exc)
        if reason is None:
            raise ScheduleError("reading schedule group %s failed: %s" % (group, first_line(exc))) from None
        log.info("the schedule group cannot be read: every request shown", extra={"reason": reason})
    results: List[Outcome] = [
        {"name": name, "action": "would create or update", "request": dict(request)}
        for name, request in sorted(wanted.items())
    ]
    if prune:
        results.append({"name": "*", "action": "prune not checked", "reason": reason})
    return results
