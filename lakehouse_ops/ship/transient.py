"""`submit --target emr --transient`: a cluster created for the run's steps (RunJobFlow, ship.emr.transient) that
ends with them: no steps left and nothing keeping it alive, or, whatever happens to its steps, its auto-termination
policy after falling idle. Every batch of a fan-out is one step of that one cluster (up to EMR's 256).

Runtime roles (ship.emr.execution_role_arn): RunJobFlow's steps cannot run as one, so the cluster is created
without steps and kept alive, the steps are added with the role, and the cluster is terminated when they have
ended (with --wait), else by the idle policy."""

from typing import Any, Callable, Dict, List, Optional, Sequence

from lakehouse_ops.config import Config
from lakehouse_ops.errors import first_line
from lakehouse_ops.ship import checks, steps
from lakehouse_ops.ship import requests as req
from lakehouse_ops.ship import submit as sub


def plan_cluster(
    config: Config, config_path: str, job: str, batches: Sequence[Sequence[str]], archive: Optional[str], name: str
) -> Dict[str, Any]:
    """{request (RunJobFlow), add_steps (for a runtime role, else None), steps, uploads}."""
    target = req.need_target(config, "emr")
    if archive and target.transient is not None:
        req.check_release_python(target.transient.release_label, config.section("ship").python, "the transient cluster")
    artifacts = req.artifacts_for(config.section("ship"), job, config_path, archive)
    names = [name] if len(batches) == 1 else ["%s-%d" % (name, i + 1) for i in range(len(batches))]
    step_list = [steps.emr_step(config, job, artifacts, list(args), n) for n, args in zip(names, batches)]
    role = target.execution_role_arn
    request = steps.run_job_flow(config, [] if role else step_list, name)
    add_steps = None
    if role:
        request["Instances"]["KeepJobFlowAliveWhenNoSteps"] = True
        add_steps = {"Steps": step_list, "ExecutionRoleArn": role}
    return {
        "request": request,
        "add_steps": add_steps,
        "steps": step_list,
        "uploads": sub.uploads(artifacts, job, config_path, archive),
    }


def _step_ids(emr: Any, cluster: str, names: List[str]) -> List[str]:
    """The ids of the cluster's steps named `names`, in that order."""
    pages = emr.get_paginator("list_steps").paginate(ClusterId=cluster)
    by_name = {step["Name"]: step["Id"] for page in pages for step in page.get("Steps", [])}
    return [by_name[n] for n in names]


def submit_transient(
    config: Config,
    config_path: str,
    job: str,
    batches: Sequence[Sequence[str]],
    archive: Optional[str] = None,
    name: Optional[str] = None,
    wait_for_end: bool = False,
    dry_run: bool = False,
    poll_seconds: float = 10.0,
    say: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Create the cluster with its steps; with `wait_for_end`, follow each step to its end. Returns the report."""
    from lakehouse_ops.aws.clients import client

    say = say or sub.log.info
    planned = plan_cluster(config, config_path, job, batches, archive, name or req.run_name(job))
    report: Dict[str, Any] = {"ok": True, "dry_run": dry_run, "target": "emr", "job": job, "transient": True}
    if dry_run:
        uploads = [{"from": f, "to": u} for f, u in planned["uploads"]]
        report["runs"] = [{"request": planned["request"], "add_steps": planned["add_steps"], "uploads": uploads}]
        return report
    checks.check_archive(archive)
    sub.upload(planned["uploads"])
    emr = client("emr")
    cluster = None
    try:
        cluster = emr.run_job_flow(**planned["request"])["JobFlowId"]
        if planned["add_steps"]:
            emr.add_job_flow_steps(JobFlowId=cluster, **planned["add_steps"])
    except Exception as exc:
        ended = "; cluster %s %s" % (cluster, _end(emr, cluster)) if cluster else ""
        raise sub.SubmitError("could not start the transient cluster's run: %s%s" % (first_line(exc), ended)) from None
    say("created transient cluster %s" % cluster)
    report["cluster"] = cluster
    try:
        _follow(emr, cluster, planned, report, wait_for_end, poll_seconds, say)
    except Exception as exc:  # a cluster kept alive for a role's steps must not outlive the run
        ended = _end(emr, cluster) if planned["add_steps"] else "left to its auto-termination policy"
        raise sub.SubmitError(
            "following transient cluster %s failed: %s; the cluster %s" % (cluster, first_line(exc), ended)
        ) from None
    return report


def _end(emr: Any, cluster: str) -> str:
    """Terminate the cluster; what happened, in words."""
    try:
        emr.terminate_job_flows(JobFlowIds=[cluster])
        return "terminated"
    except Exception as exc:
        return "NOT terminated (%s): terminate it yourself" % first_line(exc)


def _follow(
    emr: Any,
    cluster: str,
    planned: Dict[str, Any],
    report: Dict[str, Any],
    wait_for_end: bool,
    poll_seconds: float,
    say: Callable[[str], None],
) -> None:
    ids = _step_ids(emr, cluster, [s["Name"] for s in planned["steps"]])
    runs = [
        sub.Run("emr", {"JobFlowId": cluster, "Steps": [s]}, {"StepIds": [i]}, {"emr": emr})
        for s, i in zip(planned["steps"], ids)
    ]
    report["runs"] = [run.describe() for run in runs]
    if not wait_for_end:
        return
    for run, described in zip(runs, report["runs"]):
        state, success, interrupted = sub.wait(
            run, lambda s, d, t: say("%7.0f s  %s %s%s" % (t, run.id, s, "  (%s)" % d if d else "")), poll_seconds
        )
        described.update(state=state, ok=success)
        if interrupted:  # Ctrl-C: the run is over, and so is the cluster made for it
            report["message"] = "Ctrl-C: the cluster's other steps were not followed; cluster %s" % _end(emr, cluster)
            say(report["message"])
            break
    else:
        if planned["add_steps"]:  # kept alive for the role's steps: ended now that they have
            emr.terminate_job_flows(JobFlowIds=[cluster])
    report["cluster_state"] = emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"]
    report["ok"] = all(r.get("ok", True) for r in report["runs"]) and "message" not in report
