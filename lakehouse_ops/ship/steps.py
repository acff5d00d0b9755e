"""EMR on EC2 requests: a step (command-runner.jar running spark-submit), AddJobFlowSteps on a long-running
cluster, RunJobFlow for a transient cluster that ends with its steps, and the same steps as the AWS CLI takes them."""

from typing import Any, Dict, List, Mapping, Optional

from lakehouse_ops.errors import ConfigError
from lakehouse_ops.ship.requests import Artifacts, job_arguments, need_target, run_name, spark_settings


def emr_step(
    config: Any, job: str, artifacts: Artifacts, job_args: List[str], name: Optional[str] = None
) -> Dict[str, Any]:
    """One EMR on EC2 step: command-runner.jar running spark-submit."""
    target = need_target(config, "emr")
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
    return {
        "Name": name or run_name(job),
        "ActionOnFailure": target.action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def add_job_flow_steps(
    config: Any, job: str, artifacts: Artifacts, job_args: List[str], name: Optional[str] = None
) -> Dict[str, Any]:
    """The EMR on EC2 AddJobFlowSteps request for one step on the configured cluster."""
    target = need_target(config, "emr")
    if not target.cluster_id:
        raise ConfigError("ship.emr has no cluster_id to add steps to: set it, or create a cluster with --transient")
    request: Dict[str, Any] = {
        "JobFlowId": target.cluster_id,
        "Steps": [emr_step(config, job, artifacts, job_args, name)],
    }
    if target.execution_role_arn:
        request["ExecutionRoleArn"] = target.execution_role_arn
    return request


EMR_MAX_STEPS = 256  # steps one RunJobFlow or AddJobFlowSteps request (and a cluster, pending or running) takes


def run_job_flow(config: Any, steps: List[Dict[str, Any]], name: str) -> Dict[str, Any]:
    """The RunJobFlow request of a transient cluster: created for `steps`, ended once they have run (no steps
    left, KeepJobFlowAliveWhenNoSteps false) or after falling idle (the auto-termination policy), whichever first."""
    target = need_target(config, "emr")
    spec = target.transient
    if spec is None:
        raise ConfigError("ship.emr.transient is not configured: see docs/emr-step.md (transient clusters)")
    if len(steps) > EMR_MAX_STEPS:
        raise ConfigError(
            "%d runs, over the %d steps a cluster takes: fewer tables per run" % (len(steps), EMR_MAX_STEPS)
        )
    groups = [{"Name": "primary", "InstanceRole": "MASTER", "InstanceType": spec.instance_type, "InstanceCount": 1}]
    if spec.core_instances:
        groups.append(
            {
                "Name": "core",
                "InstanceRole": "CORE",
                "InstanceType": spec.instance_type,
                "InstanceCount": spec.core_instances,
            }
        )
    instances: Dict[str, Any] = {
        "InstanceGroups": groups,
        "KeepJobFlowAliveWhenNoSteps": False,
        "TerminationProtected": False,
    }
    if spec.subnet_id:
        instances["Ec2SubnetId"] = spec.subnet_id
    request: Dict[str, Any] = {
        "Name": name,
        "ReleaseLabel": spec.release_label,
        "Applications": [{"Name": "Spark"}],
        "Configurations": [{"Classification": "iceberg-defaults", "Properties": {"iceberg.enabled": "true"}}],
        "Instances": instances,
        "Steps": steps,
        "ServiceRole": spec.service_role,
        "JobFlowRole": spec.instance_profile,
        "AutoTerminationPolicy": {"IdleTimeout": spec.idle_timeout_minutes * 60},
        "VisibleToAllUsers": True,
        "Tags": [
            {"Key": k, "Value": v} for k, v in sorted(dict(config.ship.tags, **{"lakehouse-ops": "transient"}).items())
        ],
    }
    if spec.log_uri:
        request["LogUri"] = spec.log_uri
    if spec.security_configuration:
        request["SecurityConfiguration"] = spec.security_configuration
    if spec.bootstrap_action:
        request["BootstrapActions"] = [
            {"Name": "lakehouse-ops", "ScriptBootstrapAction": {"Path": spec.bootstrap_action}}
        ]
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
