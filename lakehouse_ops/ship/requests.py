"""What a submitted run looks like, as data (pure: no AWS calls): artifact locations, spark-submit settings, and the
exact EMR Serverless StartJobRun / EMR AddJobFlowSteps requests."""

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

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


# The Pythons each runtime line's images run: EMR 7.x 3.9; the EMR 8 line (emr-spark-8.x) 3.11 to 3.13.
RELEASE_PYTHONS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("emr-7.", ("3.9",)),
    ("emr-spark-8.", ("3.11", "3.12", "3.13")),
)


def check_release_python(release_label: str, python: str, where: str) -> None:
    """An archive built for `python` (ship.python) must match a Python the release's images run: its packages
    (pyarrow, cryptography) are built for one Python only. Releases of other lines are not checked."""
    for prefix, pythons in RELEASE_PYTHONS:
        if release_label.startswith(prefix) and python not in pythons:
            raise ConfigError(
                "%s runs %s, whose images have Python %s, but ship.python is %s: build the archive for one of them "
                "(`lakehouse-ops package --target-python %s`) and set ship.python to it"
                % (where, release_label, " or ".join(pythons), python, pythons[0])
            )


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
    target = need_target(config, "emr_serverless")
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


def need_target(config: Any, target: str) -> Any:
    section = getattr(config.section("ship"), target)
    if section is None:
        raise ConfigError(
            "ship.%s is not configured: see docs/%s.md"
            % (target, "emr-serverless" if target == "emr_serverless" else "emr-step")
        )
    return section
