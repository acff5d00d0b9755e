"""Operator arguments for Apache Airflow (Amazon MWAA), written as a JSON file a DAG loads with the standard
library: the DAG then needs no lakehouse-ops install. (MWAA installs `requirements.txt` under the Airflow
constraints of its version, which pyarrow and pyiceberg, dependencies of lakehouse-ops, do not meet.)

One task per entry of `ship.schedules` (its name, job and arguments; Airflow decides when), or one named task
added to the file. For EMR Serverless the arguments of `EmrServerlessStartJobOperator`, for EMR on EC2 those of
`EmrAddStepsOperator` (with every argument safe from Airflow's templating, `jinja_safe`). The files a run
needs are uploaded first, as `submit` uploads them."""

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.ship import checks, steps
from lakehouse_ops.ship import requests as req
from lakehouse_ops.ship import submit as sub
from lakehouse_ops.version import __version__

# Airflow renders the templated fields of an operator with Jinja, and reads a string ending in one of the operator's
# template extensions (EmrAddStepsOperator: .json) as the path of a template file. Such an argument, or one holding
# Jinja's own delimiters, is wrapped in a raw block: Jinja renders it back to exactly the same text.
_JINJA_MARKS = ("{{", "{%", "{#")
STEPS_TEMPLATE_EXT = (".json",)  # EmrAddStepsOperator's template_ext


def jinja_safe(value: str, template_ext: Sequence[str] = STEPS_TEMPLATE_EXT) -> str:
    """`value` as a templated Airflow field of an operator with these template extensions renders it to itself."""
    if "endraw" in value:  # a raw block would end inside it: a Jinja string literal instead (ASCII escapes)
        return "{{ %s }}" % json.dumps(value)
    if value.endswith(tuple(template_ext)) or any(mark in value for mark in _JINJA_MARKS):
        return "{%% raw %%}%s{%% endraw %%}" % value
    return value


def jinja_safe_tree(value: Any, template_ext: Sequence[str] = STEPS_TEMPLATE_EXT) -> Any:
    """Every string in `value` (dicts and lists, as Airflow renders them) made `jinja_safe`."""
    if isinstance(value, str):
        return jinja_safe(value, template_ext)
    if isinstance(value, dict):
        return {key: jinja_safe_tree(item, template_ext) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jinja_safe_tree(item, template_ext) for item in value]
    return value


def airflow_add_steps_kwargs(
    config: Any,
    job: str,
    job_args: List[str],
    config_uri: str,
    archive_uri: Optional[str] = None,
    name: Optional[str] = None,
) -> Dict[str, Any]:
    """Keyword arguments for the Amazon provider's EmrAddStepsOperator (Airflow / MWAA), from the same request
    `submit --target emr` sends, with every argument safe from Jinja (`jinja_safe`)."""
    artifacts = req.artifacts_for(config.ship, job, config_uri, archive_uri)
    request = steps.add_job_flow_steps(config, job, artifacts, job_args, name=name)
    kwargs: Dict[str, Any] = {"job_flow_id": request["JobFlowId"], "steps": jinja_safe_tree(request["Steps"])}
    if request.get("ExecutionRoleArn"):
        kwargs["execution_role_arn"] = request["ExecutionRoleArn"]
    return kwargs


def airflow_start_job_run_kwargs(
    config: Any, job: str, job_args: List[str], config_uri: str, archive_uri: str, name: Optional[str] = None
) -> Dict[str, Any]:
    """Keyword arguments for the Amazon provider's EmrServerlessStartJobOperator (Airflow / MWAA), from the same
    request `submit` sends; the artifacts must already be in S3 (upload them once with `submit` or `schedule`)."""
    artifacts = req.artifacts_for(config.ship, job, config_uri, archive_uri)
    request = req.start_job_run(config, job, artifacts, job_args, name=name)
    kwargs = {
        "application_id": request["applicationId"],
        "execution_role_arn": request["executionRoleArn"],
        "job_driver": request["jobDriver"],
        "name": request["name"],
        "configuration_overrides": request.get("configurationOverrides") or {},
        # The operator's `config`: further StartJobRun parameters, passed to boto3 as they are.
        "config": {"executionTimeoutMinutes": request["executionTimeoutMinutes"], "tags": request["tags"]},
    }
    return kwargs


FORMAT = 1  # the file's layout: {"format", "lakehouse_ops", "target", "tasks": {name: operator arguments}}
OPERATORS = {"emr-serverless": "EmrServerlessStartJobOperator", "emr": "EmrAddStepsOperator"}


def task_arguments(
    config: Config, job: str, job_args: List[str], config_uri: str, archive_uri: Optional[str], target: str, name: str
) -> Dict[str, Any]:
    """The operator's keyword arguments for one task."""
    if target == "emr-serverless":
        if not archive_uri:
            raise ConfigError(
                "EMR Serverless runs need the packed environment: pass --archive (`lakehouse-ops package`)"
            )
        kwargs = airflow_start_job_run_kwargs(config, job, job_args, config_uri, archive_uri, name=name)
        return dict(jinja_safe_tree(kwargs, template_ext=()))
    return airflow_add_steps_kwargs(config, job, job_args, config_uri, archive_uri, name=name)


def tasks_of(config: Config, single: Optional[Tuple[str, str, Sequence[str]]]) -> List[Tuple[str, str, List[str]]]:
    """[(task name, job, job arguments)]: the one task asked for, else the config's schedules."""
    if single is not None:
        return [(single[0], single[1], list(single[2]))]
    ship = config.section("ship")
    if not ship.schedules:
        raise ConfigError("%s has no ship.schedules: name a task with --task NAME --job JOB" % config.source)
    return [(entry.name, entry.job, list(entry.args)) for entry in ship.schedules]


def write_tasks(
    config: Config,
    config_path: str,
    target: str,
    out: str,
    archive: Optional[str] = None,
    single: Optional[Tuple[str, str, Sequence[str]]] = None,
    dry_run: bool = False,
) -> Dict[str, Any]:
    """Upload what the tasks' runs need and write (or update) the tasks file `out`. Returns the report."""
    if target not in OPERATORS:
        raise ConfigError("target must be one of %s" % ", ".join(OPERATORS))
    ship = config.section("ship")
    wanted = tasks_of(config, single)
    artifacts = {job: req.artifacts_for(ship, job, config_path, archive) for _, job, _ in wanted}
    files = [f for job, a in sorted(artifacts.items()) for f in sub.uploads(a, job, config_path, archive)]
    tasks = {
        name: task_arguments(
            config, job, args, artifacts[job].config, artifacts[job].archive, target, "lakehouse-ops-" + name
        )
        for name, job, args in wanted
    }
    document = _existing(out, target)
    if single is None:  # the schedules are all the file's tasks
        document["tasks"] = {}
    document.update(format=FORMAT, lakehouse_ops=__version__, target=target, operator=OPERATORS[target])
    document["tasks"] = dict(document.get("tasks") or {}, **tasks)
    report: Dict[str, Any] = {"ok": True, "out": out, "dry_run": dry_run, "tasks": sorted(tasks)}
    if dry_run:
        report["document"] = document
        report["uploads"] = [{"from": f, "to": u} for f, u in dict(files).items()]
        return report
    sub.upload(dict(files).items())
    checks.check_archive(next(iter(artifacts.values())).archive)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return report


def _existing(path: str, target: str) -> Dict[str, Any]:
    """The tasks file already at `path` ({} when there is none); one written for another target is refused."""
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        try:
            document = json.load(handle)
        except ValueError as exc:
            raise ConfigError("%s is no tasks file (%s): remove it or choose another --out" % (path, exc)) from None
    if not isinstance(document, dict) or "tasks" not in document or "target" not in document:
        raise ConfigError("%s is no lakehouse-ops tasks file: remove it or choose another --out" % path)
    if document.get("format") != FORMAT or document.get("target") != target:
        raise ConfigError(
            "%s holds tasks for %s (format %s): write %s tasks to another file"
            % (path, document.get("target"), document.get("format"), target)
        )
    return dict(document)
