"""`lakehouse-ops submit`: upload what a run needs, start it on EMR Serverless or EMR on EC2, optionally follow it."""

import os
import time
import uuid
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.errors import ConfigError, LakehouseOpsError
from lakehouse_ops.logs import get_logger
from lakehouse_ops.ship import checks, steps
from lakehouse_ops.ship import follow as follow_mod
from lakehouse_ops.ship import requests as req

log = get_logger("ship.submit")
TARGETS = ("emr-serverless", "emr")
Uploads = List[Tuple[str, str]]  # (local path, s3 URI)
NEED_ARCHIVE = "EMR Serverless runs need the packed environment: pass --archive (built by `lakehouse-ops package`)"


class SubmitError(LakehouseOpsError):
    """The run could not be started, or it ended in failure."""


def uploads(artifacts: req.Artifacts, job: str, config_path: str, archive: Optional[str]) -> Uploads:
    """[(local path, s3 uri)] of the run's local files (the keys are made by their content)."""
    out = [(req.entry_point_file(job), artifacts.entry_point)]
    if not config_path.startswith("s3://"):
        out.append((config_path, artifacts.config))
    if archive and artifacts.archive and not archive.startswith("s3://"):
        out.append((archive, artifacts.archive))
    return out


def plan_submission(
    config: Config,
    config_path: str,
    target: str,
    job: str,
    job_args: Sequence[str],
    archive: Optional[str] = None,
    name: Optional[str] = None,
) -> Tuple[Dict[str, Any], Uploads]:
    """(request, uploads) for one run: the exact API request and the files it needs in S3."""
    if target not in TARGETS:
        raise ConfigError("target must be one of %s" % ", ".join(TARGETS))
    if target == "emr-serverless" and not archive:
        raise ConfigError(NEED_ARCHIVE)
    artifacts = req.artifacts_for(config.section("ship"), job, config_path, archive)
    if target == "emr-serverless":
        request = req.start_job_run(config, job, artifacts, list(job_args), name=name, client_token=str(uuid.uuid4()))
    else:
        request = steps.add_job_flow_steps(config, job, artifacts, list(job_args), name=name)
    return request, uploads(artifacts, job, config_path, archive)


def upload(files: Iterable[Tuple[str, str]], s3: Any = None) -> None:
    """Upload each (local path, s3 URI); a failure names the file and why."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.aws.s3 import object_exists, split_uri
    from lakehouse_ops.errors import first_line

    s3 = s3 or client("s3")
    for path, uri in files:
        bucket, key = split_uri(uri)
        try:
            if object_exists(s3, bucket, key):  # keyed by content: what is there is this very file; never overwritten
                log.info("already uploaded", extra={"file": os.path.basename(path), "at": uri})
                continue
            s3.upload_file(path, bucket, key)
        except Exception as exc:  # credentials, bucket, permissions: say which upload and why
            raise SubmitError("could not upload %s to %s: %s" % (path, uri, first_line(exc))) from None
        log.info("uploaded", extra={"file": os.path.basename(path), "to": uri})


class Run:
    """A started run: how to read its state, cancel it, and where its logs and UI are."""

    def __init__(
        self, target: str, request: Dict[str, Any], response: Mapping[str, Any], clients: Mapping[str, Any]
    ) -> None:
        self.target = target
        self.request = request
        self.response = response
        self.clients = clients
        if target == "emr-serverless":
            self.app = request["applicationId"]
            self.id = response["jobRunId"]
        else:
            self.app = request["JobFlowId"]
            self.id = response["StepIds"][0]

    def describe(self) -> Dict[str, Any]:
        out = {
            "target": self.target,
            "id": self.id,
            "application_or_cluster": self.app,
            "name": self.request.get("name") or self.request.get("Steps", [{}])[0].get("Name"),
        }
        out.update(self.where())
        return out

    def state(self) -> Tuple[str, str]:
        if self.target == "emr-serverless":
            run = self.clients["emr-serverless"].get_job_run(applicationId=self.app, jobRunId=self.id)["jobRun"]
            return run["state"], run.get("stateDetails") or ""
        status = self.clients["emr"].describe_step(ClusterId=self.app, StepId=self.id)["Step"]["Status"]
        failure = status.get("FailureDetails") or {}
        details = "; ".join(str(failure[k]) for k in ("Reason", "Message", "LogFile") if failure.get(k))
        return status["State"], details or status.get("StateChangeReason", {}).get("Message", "")

    def cancel(self) -> None:
        if self.target == "emr-serverless":
            self.clients["emr-serverless"].cancel_job_run(applicationId=self.app, jobRunId=self.id)
        else:
            answer = self.clients["emr"].cancel_steps(
                ClusterId=self.app, StepIds=[self.id], StepCancellationOption="SEND_INTERRUPT"
            )
            refused = [i for i in answer.get("CancelStepsInfoList", []) if i.get("Status") == "FAILED"]
            if refused:
                raise LakehouseOpsError(
                    "EMR refused to cancel step %s: %s" % (self.id, refused[0].get("Reason") or "no reason given")
                )

    def where(self) -> Dict[str, str]:
        """Where the logs and the Spark UI are."""
        if self.target == "emr-serverless":
            out: Dict[str, str] = {}
            monitoring = self.request.get("configurationOverrides", {}).get("monitoringConfiguration", {})
            log_uri = monitoring.get("s3MonitoringConfiguration", {}).get("logUri")
            if log_uri:
                out["logs"] = "%s/applications/%s/jobs/%s/" % (log_uri.rstrip("/"), self.app, self.id)
            group = monitoring.get("cloudWatchLoggingConfiguration", {}).get("logGroupName")
            if group:
                out["cloudwatch_log_group"] = group
            try:
                out["spark_ui"] = self.clients["emr-serverless"].get_dashboard_for_job_run(
                    applicationId=self.app, jobRunId=self.id
                )["url"]
            except Exception:  # not offered for every state (and not by every endpoint)
                out["spark_ui"] = "EMR Studio: application %s, job run %s" % (self.app, self.id)
            return out
        out = {"spark_ui": "EMR console: cluster %s, Application user interfaces" % self.app}
        try:
            log_uri = self.clients["emr"].describe_cluster(ClusterId=self.app)["Cluster"].get("LogUri")
        except Exception:
            log_uri = None
        if log_uri:
            out["logs"] = "%s/%s/steps/%s/" % (log_uri.rstrip("/"), self.app, self.id)
        return out


def start(target: str, request: Dict[str, Any], clients: Optional[Mapping[str, Any]] = None) -> Run:
    """Start the run `request` describes; a failure says why."""
    from lakehouse_ops.aws.clients import client

    clients = clients or {"emr-serverless": client("emr-serverless"), "emr": client("emr")}
    try:
        if target == "emr-serverless":
            response = clients["emr-serverless"].start_job_run(**request)
        else:
            response = clients["emr"].add_job_flow_steps(**request)
    except Exception as exc:
        from lakehouse_ops.errors import first_line

        raise SubmitError("could not start the %s run: %s" % (target, first_line(exc))) from None
    return Run(target, request, response, clients)


def wait(
    run: Run,
    report: Callable[[str, str, float], None],
    poll_seconds: float = 10.0,
    sleep: Optional[Callable[[float], None]] = None,
) -> Tuple[str, bool, bool]:
    """Follow `run` to its end: (final state, success, interrupted: the user pressed Ctrl-C while following)."""
    done = follow_mod.SERVERLESS_DONE if run.target == "emr-serverless" else follow_mod.STEP_DONE
    heard: List[str] = []

    def hear(state: str, details: str, seconds: float) -> None:
        heard.append(state)
        report(state, details, seconds)

    state, success = follow_mod.follow(
        run.state, done, run.cancel, hear, poll_seconds=poll_seconds, sleep=sleep or time.sleep
    )
    return state, success, follow_mod.CANCEL_REQUESTED in heard


EMR_ACTIVE_STEPS = steps.EMR_MAX_STEPS  # EMR's limit of PENDING and RUNNING steps on one cluster
STEP_ROOM_WAIT_S = 3600.0  # how long a fan-out waits for a full cluster to take another step


class StepRoom:
    """Room on a cluster for one more step: a fan-out (`--per-table`) never goes over EMR's limit of active steps
    (AddJobFlowSteps fails there); when the cluster is full, it waits for steps to end, up to `max_wait_s`."""

    def __init__(self, say: Callable[[str], None], poll_seconds: float) -> None:
        from lakehouse_ops.aws.clients import client

        self.emr, self.say, self.poll_seconds, self.max_wait_s = client("emr"), say, poll_seconds, STEP_ROOM_WAIT_S
        self.active: Optional[int] = None

    def _count(self, cluster: str) -> int:
        pages = self.emr.get_paginator("list_steps").paginate(ClusterId=cluster, StepStates=["PENDING", "RUNNING"])
        return sum(len(page.get("Steps", [])) for page in pages)

    def take(self, cluster: str) -> bool:
        """True once the cluster has room for one more step (counted as taken); False after waiting in vain."""
        if self.active is None or self.active >= EMR_ACTIVE_STEPS:
            self.active = self._count(cluster)
        waited = 0.0
        while self.active >= EMR_ACTIVE_STEPS:
            if waited >= self.max_wait_s:
                return False
            self.say("cluster %s has %d pending or running steps (EMR's limit): waiting" % (cluster, self.active))
            time.sleep(self.poll_seconds)
            waited += self.poll_seconds
            self.active = self._count(cluster)
        self.active += 1
        return True

    def full_message(self, cluster: str, left: int) -> str:
        return (
            "cluster %s stayed at EMR's limit of %d pending or running steps for %.0f s: %d run(s) not submitted "
            "(submit them again once steps have ended, or use a second cluster)"
            % (cluster, EMR_ACTIVE_STEPS, self.max_wait_s, left)
        )


def _stopped(
    target: str, job: str, runs: List[Dict[str, Any]], message: str, left: Sequence[Sequence[str]]
) -> Dict[str, Any]:
    """The report of a fan-out that stopped before its end: what ran, why it stopped, the arguments not submitted."""
    not_submitted = [list(args) for args in left]
    return {
        "ok": False,
        "dry_run": False,
        "target": target,
        "job": job,
        "runs": runs,
        "message": message,
        "not_submitted": not_submitted,
    }


def submit_runs(
    config: Config,
    config_path: str,
    target: str,
    job: str,
    batches: Iterable[Sequence[str]],
    archive: Optional[str] = None,
    name: Optional[str] = None,
    wait_for_end: bool = False,
    dry_run: bool = False,
    poll_seconds: float = 10.0,
    say: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Submit one run per argument list of `batches` (uploads first); with `wait_for_end`, follow each to its end.
    `say(text)` receives progress lines. Returns the submit report."""
    say = say or log.info
    runs: List[Dict[str, Any]] = []
    if not dry_run:
        checks.check_archive(archive)
        if target == "emr-serverless" and archive:
            checks.check_application_python(config)
        if target == "emr" and archive:
            checks.check_cluster_python(config)
    room = StepRoom(say, poll_seconds) if target == "emr" and not dry_run else None
    batches = list(batches)
    for index, args in enumerate(batches):
        request, files = plan_submission(config, config_path, target, job, args, archive, name)
        if dry_run:
            runs.append({"request": request, "uploads": [{"from": f, "to": u} for f, u in files]})
            if target == "emr":
                runs[-1]["aws_cli"] = steps.add_steps_command(request)
            continue
        if room is not None and not room.take(request["JobFlowId"]):
            message = room.full_message(request["JobFlowId"], len(batches) - index)
            say(message)
            return _stopped(target, job, runs, message, batches[index:])
        upload(files)
        run = start(target, request)
        runs.append(run.describe())
        say("started %s run %s" % (target, run.id))
        if wait_for_end:

            def report(state: str, details: str, seconds: float) -> None:
                say("%7.0f s  %s%s" % (seconds, state, "  (%s)" % details if details else ""))

            state, success, interrupted = wait(run, report, poll_seconds)
            runs[-1].update(state=state, ok=success)
            for key, value in run.where().items():
                say("%s: %s" % (key, value))
            if interrupted and index + 1 < len(batches):  # Ctrl-C stops the fan-out, not only the run
                message = "Ctrl-C: %d run(s) not submitted" % (len(batches) - index - 1)
                say(message)
                return _stopped(target, job, runs, message, batches[index + 1 :])
    return {"ok": all(r.get("ok", True) for r in runs), "dry_run": dry_run, "target": target, "job": job, "runs": runs}
