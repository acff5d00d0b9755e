"""What a submitted run looks like, as data (pure: no AWS calls): artifact locations, spark-submit settings, and the
exact EMR Serverless StartJobRun / EMR AddJobFlowSteps requests."""

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from lakehouse_ops.errors import ConfigError
from lakehouse_ops.jobs import JOBS
from lakehouse_ops.version import __version__

ARCHIVE_ALIAS = "environment"
ENV_PYTHON = "./%s/bin/python" % ARCHIVE_ALIAS


@dataclass(frozen=True)
class Artifacts:
    """Where a run's files live in S3: under ship.artifacts/<version>/<kind>/<content digest>/<file name>, so two
    configs with one name, or two builds of one version, never take each other's place under a running job."""

    entry_point: str
    config: str
    archive: Optional[str] = None


def artifact_prefix(ship: Any) -> str:
    return "%s/%s" % (ship.artifacts.rstrip("/"), __version__)


def content_digest(path: str, what: str = "file") -> str:
    """The first 16 hex digits of the sha256 of a file's bytes (what its upload is keyed by)."""
    if not os.path.isfile(path):
        raise ConfigError("%s %s does not exist" % (what, path))
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def keyed_uri(prefix: str, kind: str, path: str, what: str = "file") -> str:
    """<prefix>/<kind>/<digest>/<file name>: the human name kept, the key made by the content."""
    return "%s/%s/%s/%s" % (prefix, kind, content_digest(path, what), os.path.basename(path))


def entry_point_file(job: str) -> str:
    """The job's entry point script inside the installed package (what gets uploaded)."""
    import importlib.util

    package = importlib.util.find_spec("lakehouse_ops.spark_jobs")  # found, not imported: entry points sit above
    if package is None or package.origin is None:
        raise ConfigError("lakehouse_ops.spark_jobs is not installed with this package")
    return os.path.join(os.path.dirname(package.origin), JOBS[job] + ".py")


def artifacts_for(ship: Any, job: str, config_path: str, archive: Optional[str] = None) -> Artifacts:
    """S3 locations of the job's entry point, the config and (if any) the archive: s3:// inputs as they are, local
    files keyed by their content."""
    if job not in JOBS:
        raise ConfigError("unknown job %r; jobs: %s" % (job, ", ".join(sorted(JOBS))))
    prefix = artifact_prefix(ship)
    config_uri = config_path
    if not config_path.startswith("s3://"):
        config_uri = keyed_uri(prefix, "config", config_path, "config file")
    archive_uri = archive
    if archive and not archive.startswith("s3://"):
        archive_uri = keyed_uri(prefix, "archives", archive, "archive (build it with `lakehouse-ops package`)")
    return Artifacts(keyed_uri(prefix, "jobs", entry_point_file(job)), config_uri, archive_uri)


def spark_settings(config: Any, target: str, archive_uri: Optional[str] = None) -> Dict[str, str]:
    """Every --conf of a submitted run: the Iceberg catalog from the config, the `spark.conf` section, ship's
    spark_conf, the Iceberg jar (EMR Serverless) and the packed environment's Python."""
    from lakehouse_ops.engine.session import merge_conf, session_conf

    conf = session_conf(config, mode="cluster", submitted=True)
    ship = config.ship
    if target == "emr-serverless":
        # The image's Iceberg jar first; jars the config adds come after it.
        conf["spark.jars"] = merge_conf(
            {"spark.jars": ship.emr_serverless.iceberg_jar}, {"spark.jars": conf.get("spark.jars", "")}
        )["spark.jars"]
    if archive_uri:
        conf = merge_conf(conf, archive_settings(target, archive_uri))
    merged: Dict[str, str] = merge_conf(conf, ship.spark_conf)
    return merged


def archive_settings(target: str, archive_uri: str) -> Dict[str, str]:
    """The settings that run the job's Python from the packed environment (EMR Serverless, or YARN on EMR)."""
    conf = {"spark.archives": "%s#%s" % (archive_uri, ARCHIVE_ALIAS), "spark.executorEnv.PYSPARK_PYTHON": ENV_PYTHON}
    if target == "emr-serverless":
        conf["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] = ENV_PYTHON
        conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = ENV_PYTHON
    else:
        conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = ENV_PYTHON
    return conf


def submit_parameters(conf: Dict[str, str]) -> str:
    """sparkSubmitParameters text: --conf k=v, in a stable order."""
    for key, value in conf.items():
        if " " in str(value) or " " in key:
            raise ConfigError(
                "spark setting %s=%r holds a space, which sparkSubmitParameters cannot carry" % (key, value)
            )
    return " ".join("--conf %s=%s" % (k, conf[k]) for k in sorted(conf))


def run_name(job: str, now: Optional[float] = None) -> str:
    return "lakehouse-ops-%s-%s" % (job, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now or time.time())))


def job_arguments(artifacts: Artifacts, job_args: List[str]) -> List[str]:
    return ["--config", artifacts.config] + list(job_args)


def start_job_run(
    config: Any,
    job: str,
    artifacts: Artifacts,
    job_args: List[str],
    name: Optional[str] = None,
    client_token: Optional[str] = None,
) -> Dict[str, Any]:
    """The EMR Serverless StartJobRun request."""
    ship = config.ship
    target = _need(config, "emr_serverless")
    request = {
        "applicationId": target.application_id,
        "executionRoleArn": target.execution_role_arn,
        "name": name or run_name(job),
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": artifacts.entry_point,
                "entryPointArguments": job_arguments(artifacts, job_args),
                "sparkSubmitParameters": submit_parameters(spark_settings(config, "emr-serverless", artifacts.archive)),
            }
        },
        "executionTimeoutMinutes": target.execution_timeout_minutes,
        "tags": dict(ship.tags, **{"lakehouse-ops:job": job}),
    }
    monitoring = {}
    if target.log_uri:
        monitoring["s3MonitoringConfiguration"] = {"logUri": target.log_uri}
    if target.cloudwatch_log_group:
        monitoring["cloudWatchLoggingConfiguration"] = {"enabled": True, "logGroupName": target.cloudwatch_log_group}
    if monitoring:
        request["configurationOverrides"] = {"monitoringConfiguration": monitoring}
    if client_token:
        request["clientToken"] = client_token
    return request


def add_job_flow_steps(
    config: Any, job: str, artifacts: Artifacts, job_args: List[str], name: Optional[str] = None
) -> Dict[str, Any]:
    """The EMR on EC2 AddJobFlowSteps request: command-runner.jar running spark-submit."""
    target = _need(config, "emr")
    if target.deploy_mode == "client" and artifacts.archive:
        # In client mode the driver runs on the primary node, outside YARN: the archive is unpacked only in the
        # containers, so the driver would run the system Python without lakehouse-ops.
        raise ConfigError(
            "emr.deploy_mode: client cannot run the job from an archive (%s): the driver runs on the primary node, "
            "where the archive is not unpacked. Use emr.deploy_mode: cluster, or install lakehouse-ops on the "
            "cluster with the bootstrap action (docs/emr-step.md) and submit without --archive" % artifacts.archive
        )
    args: List[str] = ["spark-submit", "--deploy-mode", target.deploy_mode]
    settings: Dict[str, str] = spark_settings(config, "emr", artifacts.archive)
    for key in sorted(settings):
        args += ["--conf", "%s=%s" % (key, settings[key])]
    args += [artifacts.entry_point] + job_arguments(artifacts, job_args)
    request: Dict[str, Any] = {
        "JobFlowId": target.cluster_id,
        "Steps": [
            {
                "Name": name or run_name(job),
                "ActionOnFailure": target.action_on_failure,
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
            }
        ],
    }
    if target.execution_role_arn:
        request["ExecutionRoleArn"] = target.execution_role_arn
    return request


def add_steps_command(request: Mapping[str, Any]) -> Dict[str, Any]:
    """The same AddJobFlowSteps request as the AWS CLI takes it (`aws emr add-steps` wants each step's
    `Type`/`Jar`/`Args`, not the API's `HadoopJarStep`): the steps file's content and the command that uses it."""
    steps = [
        {
            "Type": "CUSTOM_JAR",
            "Name": step["Name"],
            "ActionOnFailure": step["ActionOnFailure"],
            "Jar": step["HadoopJarStep"]["Jar"],
            "Args": list(step["HadoopJarStep"]["Args"]),
        }
        for step in request["Steps"]
    ]
    command = "aws emr add-steps --cluster-id %s --steps file://steps.json" % request["JobFlowId"]
    if request.get("ExecutionRoleArn"):
        command += " --execution-role-arn %s" % request["ExecutionRoleArn"]
    return {"command": command, "steps.json": steps}


# Airflow renders the templated fields of an operator with Jinja, and reads a string ending in one of the operator's
# template extensions (EmrAddStepsOperator: .json) as the path of a template file. Such an argument, or one holding
# Jinja's own delimiters, is wrapped in a raw block: Jinja renders it back to exactly the same text.
_JINJA_MARKS = ("{{", "{%", "{#")
STEPS_TEMPLATE_EXT = (".json",)  # EmrAddStepsOperator's template_ext


def jinja_safe(value: str, template_ext: Sequence[str] = STEPS_TEMPLATE_EXT) -> str:
    """`value` as a templated Airflow field of an operator with these template extensions renders it to itself."""
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
    artifacts = artifacts_for(config.ship, job, config_uri, archive_uri)
    request = add_job_flow_steps(config, job, artifacts, job_args, name=name)
    steps = [
        dict(
            step, HadoopJarStep=dict(step["HadoopJarStep"], Args=[jinja_safe(a) for a in step["HadoopJarStep"]["Args"]])
        )
        for step in request["Steps"]
    ]
    kwargs: Dict[str, Any] = {"job_flow_id": request["JobFlowId"], "steps": steps}
    if request.get("ExecutionRoleArn"):
        kwargs["execution_role_arn"] = request["ExecutionRoleArn"]
    return kwargs


def _need(config: Any, target: str) -> Any:
    section = getattr(config.section("ship"), target)
    if section is None:
        raise ConfigError(
            "ship.%s is not configured: see docs/%s.md"
            % (target, "emr-serverless" if target == "emr_serverless" else "emr-step")
        )
    return section


def airflow_start_job_run_kwargs(
    config: Any, job: str, job_args: List[str], config_uri: str, archive_uri: str, name: Optional[str] = None
) -> Dict[str, Any]:
    """Keyword arguments for the Amazon provider's EmrServerlessStartJobOperator (Airflow / MWAA), from the same
    request `submit` sends; the artifacts must already be in S3 (upload them once with `submit` or `schedule`)."""
    artifacts = artifacts_for(config.ship, job, config_uri, archive_uri)
    request = start_job_run(config, job, artifacts, job_args, name=name)
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
