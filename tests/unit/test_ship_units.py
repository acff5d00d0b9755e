"""Shipping's pure parts: the exact EMR requests, following a run through every state, budgets, schedules."""

import json
import re
import shlex

import pytest

from lakehouse_ops.config import config_from_dict
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.runner.fleet import select
from lakehouse_ops.ship import airflow, steps
from lakehouse_ops.ship import follow as follow_mod
from lakehouse_ops.ship import requests as req
from lakehouse_ops.ship.schedule import EXECUTION_ID, TARGET_ARN, _same, desired

SHIP = {
    "python": "3.9",
    "artifacts": "s3://artifacts-bucket/lakehouse-ops",
    "emr_serverless": {
        "application_id": "00fabc",
        "execution_role_arn": "arn:aws:iam::123456789012:role/jobs",
        "log_uri": "s3://logs-bucket/serverless/",
        "cloudwatch_log_group": "/lakehouse-ops",
    },
    "emr": {"cluster_id": "j-ABC", "action_on_failure": "CANCEL_AND_WAIT"},
    "spark_conf": {"spark.executor.memory": "8g"},
    "tags": {"team": "platform"},
    "scheduler_role_arn": "arn:aws:iam::123456789012:role/scheduler",
    "schedules": [
        {
            "name": "compaction-hourly",
            "job": "maintain",
            "args": ["--only", "compaction"],
            "expression": "rate(1 hour)",
        },
        {
            "name": "expire-daily",
            "args": ["--only", "expire_snapshots"],
            "expression": "cron(0 3 * * ? *)",
            "flexible_window_minutes": 30,
        },
    ],
}


def config(**ship):
    return config_from_dict(
        {
            "catalog": {"name": "glue_catalog", "type": "glue", "warehouse": "s3://lake-bucket/warehouse/"},
            "spark": {"mode": "cluster", "conf": {"spark.sql.adaptive.enabled": "true"}},
            "ship": dict(SHIP, **ship),
        },
        source="prod.yaml",
    )


def test_start_job_run_request_is_what_emr_serverless_expects(tmp_path):
    cfg = config()
    (tmp_path / "conf").mkdir()
    (tmp_path / "dist").mkdir()
    (tmp_path / "conf" / "prod.yaml").write_text("catalog: {}\n")
    (tmp_path / "dist" / "lakehouse-ops-py39.tar.gz").write_bytes(b"archive")
    local_config, local_archive = (
        str(tmp_path / "conf" / "prod.yaml"),
        str(tmp_path / "dist" / "lakehouse-ops-py39.tar.gz"),
    )
    artifacts = req.artifacts_for(cfg.ship, "maintain", local_config, local_archive)
    request = req.start_job_run(
        cfg, "maintain", artifacts, ["--only", "compaction", "analytics.*"], name="nightly", client_token="t-1"
    )
    prefix = "s3://artifacts-bucket/lakehouse-ops/%s" % req.__version__
    driver = request["jobDriver"]["sparkSubmit"]
    # Keyed by content (first 16 hex digits of the sha256), the human name kept.
    assert driver["entryPoint"] == "%s/jobs/%s/maintain.py" % (
        prefix,
        req.content_digest(req.entry_point_file("maintain")),
    )
    assert driver["entryPointArguments"] == [
        "--config",
        "%s/config/%s/prod.yaml" % (prefix, req.content_digest(local_config)),
        "--only",
        "compaction",
        "analytics.*",
    ]
    conf = dict(item.split("=", 1) for item in shlex.split(driver["sparkSubmitParameters"])[1::2])
    assert shlex.split(driver["sparkSubmitParameters"])[0::2] == ["--conf"] * len(conf)
    assert conf["spark.sql.catalog.glue_catalog.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    assert conf["spark.sql.catalog.glue_catalog.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert conf["spark.sql.catalog.glue_catalog.warehouse"] == "s3://lake-bucket/warehouse/"
    assert conf["spark.sql.extensions"] == "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
    assert conf["spark.jars"] == "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
    assert conf["spark.archives"] == "%s/archives/%s/lakehouse-ops-py39.tar.gz#environment" % (
        prefix,
        req.content_digest(local_archive),
    )
    for key in (
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON",
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
        "spark.executorEnv.PYSPARK_PYTHON",
    ):
        assert conf[key] == "./environment/bin/python"
    assert conf["spark.executor.memory"] == "8g" and conf["spark.sql.adaptive.enabled"] == "true"
    assert request["applicationId"] == "00fabc" and request["name"] == "nightly" and request["clientToken"] == "t-1"
    assert request["executionRoleArn"] == "arn:aws:iam::123456789012:role/jobs"
    assert request["configurationOverrides"]["monitoringConfiguration"] == {
        "s3MonitoringConfiguration": {"logUri": "s3://logs-bucket/serverless/"},
        "cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": "/lakehouse-ops"},
    }
    assert request["tags"] == {"team": "platform", "lakehouse-ops:job": "maintain"}


def test_emr_step_request_runs_spark_submit_through_command_runner():
    cfg = config()
    artifacts = req.artifacts_for(cfg.ship, "erase", "s3://cfg-bucket/prod.yaml", "s3://envs/env.tar.gz")
    request = steps.add_job_flow_steps(cfg, "erase", artifacts, ["--subjects-file", "s3://req/1.txt"], name="erase-1")
    step = request["Steps"][0]
    assert request["JobFlowId"] == "j-ABC" and step["ActionOnFailure"] == "CANCEL_AND_WAIT"
    assert step["Name"] == "erase-1" and step["HadoopJarStep"]["Jar"] == "command-runner.jar"
    args = step["HadoopJarStep"]["Args"]
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert args[-5:] == [
        artifacts.entry_point,
        "--config",
        "s3://cfg-bucket/prod.yaml",
        "--subjects-file",
        "s3://req/1.txt",
    ]
    confs = dict(args[i + 1].split("=", 1) for i in range(3, len(args) - 5, 2))
    assert all(args[i] == "--conf" for i in range(3, len(args) - 5, 2))
    assert confs["spark.archives"] == "s3://envs/env.tar.gz#environment"
    assert confs["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
    assert "spark.jars" not in confs  # EMR on EC2: the iceberg-defaults classification provides Iceberg
    assert re.fullmatch(r".*/jobs/[0-9a-f]{16}/erase\.py", artifacts.entry_point)


def test_missing_sections_and_bad_values_are_named():
    with pytest.raises(ConfigError, match="ship.emr is not configured"):
        steps.add_job_flow_steps(config(emr=None), "maintain", req.Artifacts("s3://a/e.py", "s3://a/c.yaml"), [])
    with pytest.raises(ConfigError, match="unknown job 'compact'"):
        req.artifacts_for(config().ship, "compact", "c.yaml")
    with pytest.raises(ConfigError, match="holds a space"):
        req.submit_parameters({"spark.driver.extraJavaOptions": "-Da=1 -Db=2"})
    with pytest.raises(ConfigError, match="scheduler_role_arn"):
        config(scheduler_role_arn=None)
    with pytest.raises(ConfigError, match="expression"):
        config(schedules=[{"name": "x", "expression": "every hour"}])


def scripted(states):
    """get_state for a run that goes through `states` (then stays in the last)."""
    seen = list(states)

    def get_state():
        return (seen.pop(0) if len(seen) > 1 else seen[0]), ""

    return get_state


@pytest.mark.parametrize(
    "path, final, ok",
    [
        (["SUBMITTED", "PENDING", "SCHEDULED", "QUEUED", "RUNNING", "SUCCESS"], "SUCCESS", True),
        (["SUBMITTED", "RUNNING", "FAILED"], "FAILED", False),
        (["PENDING", "RUNNING", "CANCELLING", "CANCELLED"], "CANCELLED", False),
    ],
)
def test_following_an_emr_serverless_run_through_every_state(path, final, ok):
    heard = []
    state, success = follow_mod.follow(
        scripted(path), follow_mod.SERVERLESS_DONE, lambda: None, lambda s, d, t: heard.append(s), sleep=lambda s: None
    )
    assert (state, success) == (final, ok)
    assert heard == [s for i, s in enumerate(path) if i == 0 or path[i - 1] != s]
    assert set(path) <= set(follow_mod.SERVERLESS_STATES)


@pytest.mark.parametrize(
    "last, ok", [("COMPLETED", True), ("FAILED", False), ("CANCELLED", False), ("INTERRUPTED", False)]
)
def test_following_an_emr_step(last, ok):
    state, success = follow_mod.follow(
        scripted(["PENDING", "RUNNING", "RUNNING", last]),
        follow_mod.STEP_DONE,
        lambda: None,
        lambda *a: None,
        sleep=lambda s: None,
    )
    assert (state, success) == (last, ok)


def test_ctrl_c_cancels_the_run_and_keeps_following_until_it_ends():
    states = ["RUNNING"]
    cancels, heard, sleeps = [], [], []

    def cancel():
        cancels.append(1)
        states[:] = ["CANCELLING", "CANCELLED"]

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    def get_state():
        return (states.pop(0) if len(states) > 1 else states[0]), ""

    state, success = follow_mod.follow(
        get_state, follow_mod.SERVERLESS_DONE, cancel, lambda s, d, t: heard.append(s), poll_seconds=1, sleep=sleep
    )
    assert (state, success) == ("CANCELLED", False) and cancels == [1]
    assert heard == ["RUNNING", "CANCEL_REQUESTED", "CANCELLING", "CANCELLED"]
    assert sleeps[1] == 1.5  # an unchanged state is polled less often


def test_budget_takes_the_best_needy_tables_that_fit():
    entries = [
        {"table": "a", "needy": True, "score": 9, "rewrite_bytes": 800},
        {"table": "b", "needy": True, "score": 8, "rewrite_bytes": 500},
        {"table": "c", "needy": True, "score": 7, "rewrite_bytes": 100},
        {"table": "d", "needy": False, "score": 0, "rewrite_bytes": 0},
    ]
    budget = config(budget={"max_tables": 2, "max_rewrite_bytes": 1000}).ship.budget
    assert select(entries, budget) == ["a", "c"]
    assert select(entries[1:], config(budget={"max_tables": 1, "max_rewrite_bytes": 10}).ship.budget) == ["b"]


def test_schedules_start_job_runs_with_a_fresh_token_each_time():
    cfg = config()
    wanted = desired(cfg, "s3://cfg-bucket/prod.yaml", "s3://envs/env.tar.gz")
    hourly = wanted["compaction-hourly"]
    assert hourly["GroupName"] == "lakehouse-ops" and hourly["ScheduleExpression"] == "rate(1 hour)"
    assert hourly["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert wanted["expire-daily"]["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 30}
    assert hourly["Target"]["Arn"] == TARGET_ARN
    run = json.loads(hourly["Target"]["Input"])
    assert run["clientToken"] == EXECUTION_ID and run["applicationId"] == "00fabc"
    assert run["jobDriver"]["sparkSubmit"]["entryPointArguments"][-2:] == ["--only", "compaction"]
    assert _same(dict(hourly, Target=dict(hourly["Target"], Input=json.dumps(run))), hourly)
    assert not _same(dict(hourly, ScheduleExpression="rate(2 hours)"), hourly)


def test_airflow_operator_kwargs_carry_the_submitted_request():
    cfg = config()
    kwargs = airflow.airflow_start_job_run_kwargs(
        cfg,
        "maintain",
        ["--only", "expire_snapshots"],
        "s3://cfg-bucket/prod.yaml",
        "s3://envs/env.tar.gz",
        name="expire",
    )
    assert set(kwargs) == {
        "application_id",
        "execution_role_arn",
        "job_driver",
        "name",
        "configuration_overrides",
        "config",
    }
    artifacts = req.artifacts_for(cfg.ship, "maintain", "s3://cfg-bucket/prod.yaml", "s3://envs/env.tar.gz")
    sent = req.start_job_run(cfg, "maintain", artifacts, ["--only", "expire_snapshots"], name="expire")
    assert kwargs["job_driver"] == sent["jobDriver"] and kwargs["application_id"] == "00fabc"
    assert kwargs["configuration_overrides"] == sent["configurationOverrides"]
    assert kwargs["config"] == {"executionTimeoutMinutes": sent["executionTimeoutMinutes"], "tags": sent["tags"]}


def test_the_schedule_input_is_a_start_job_run_request_as_the_sdk_model_names_it():
    """Universal targets send Input as the request of the API they call, named as that API's SDK model names its
    members (docs/schedules.md cites the guides): for EMR Serverless StartJobRun, camelCase, applicationId in the
    request too. botocore's own validator checks every name and type against that model."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("emr-serverless")
    shape = model.operation_model("StartJobRun").input_shape
    for entry in desired(config(), "s3://cfg-bucket/prod.yaml", "s3://envs/env.tar.gz").values():
        run = json.loads(entry["Target"]["Input"])
        report = ParamValidator().validate(run, shape)
        assert not report.has_errors(), report.generate_report()
        assert set(run) <= set(shape.members) and set(shape.required_members) <= set(run)
        assert entry["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"


def test_scheduler_errors_become_one_line_naming_the_step():
    from botocore.exceptions import EndpointConnectionError

    from lakehouse_ops.ship.schedule import ScheduleError, scheduler_errors

    with pytest.raises(ScheduleError, match=r"^listing schedule group g failed: Could not connect to the endpoint URL"):
        with scheduler_errors("listing schedule group g"):
            raise EndpointConnectionError(endpoint_url="https://scheduler.us-east-1.amazonaws.com/")


def test_a_cancel_that_fails_is_reported_in_one_line_and_following_stops():
    from botocore.exceptions import ClientError

    heard = []

    def cancel():
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "CancelJobRun")

    def sleep(seconds):
        raise KeyboardInterrupt

    state, success = follow_mod.follow(
        lambda: ("RUNNING", ""), follow_mod.SERVERLESS_DONE, cancel, lambda s, d, t: heard.append((s, d)), sleep=sleep
    )
    assert (state, success) == ("RUNNING", False)
    assert [s for s, _ in heard] == ["RUNNING", "CANCEL_REQUESTED", "CANCEL_FAILED"]
    assert heard[-1][1].startswith("the run was not cancelled and may still be running: AWS refused the request")


def test_list_valued_settings_add_to_iceberg_and_never_replace_it():
    cfg = config_from_dict(
        {
            "catalog": {"name": "glue_catalog", "type": "glue", "warehouse": "s3://lake-bucket/warehouse/"},
            "spark": {"mode": "cluster", "conf": {"spark.sql.extensions": "com.example.MyExtensions"}},
            "ship": dict(
                SHIP,
                spark_conf={
                    "spark.jars": "s3://libs/udfs.jar",
                    "spark.archives": "s3://libs/models.tar.gz#models",
                    "spark.submit.pyFiles": "s3://libs/helpers.zip",
                },
            ),
        }
    )
    conf = req.spark_settings(cfg, "emr-serverless", "s3://envs/env.tar.gz")
    assert conf["spark.jars"] == "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar,s3://libs/udfs.jar"
    assert conf["spark.sql.extensions"] == (
        "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions,com.example.MyExtensions"
    )
    assert conf["spark.archives"] == "s3://envs/env.tar.gz#environment,s3://libs/models.tar.gz#models"
    assert conf["spark.submit.pyFiles"] == "s3://libs/helpers.zip"


def test_client_mode_with_an_archive_is_refused_with_the_ways_that_work():
    cfg = config(emr={"cluster_id": "j-ABC", "deploy_mode": "client"})
    artifacts = req.artifacts_for(cfg.ship, "maintain", "s3://cfg-bucket/prod.yaml", "s3://envs/env.tar.gz")
    with pytest.raises(ConfigError, match="deploy_mode: client") as refused:
        steps.add_job_flow_steps(cfg, "maintain", artifacts, [])
    assert "deploy_mode: cluster" in str(refused.value) and "bootstrap" in str(refused.value)
    plain = req.artifacts_for(cfg.ship, "maintain", "s3://cfg-bucket/prod.yaml")
    step = steps.add_job_flow_steps(cfg, "maintain", plain, [])["Steps"][0]  # no archive: the cluster's own Python
    assert step["HadoopJarStep"]["Args"][:3] == ["spark-submit", "--deploy-mode", "client"]


def test_an_endpoint_override_reaches_a_submitted_run_only_when_the_config_asks(monkeypatch):
    """A proxy or a local moto set for this process (AWS_ENDPOINT_URL) is no endpoint for the cluster."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    settings = req.spark_settings(config(), "emr-serverless")
    assert not [k for k, v in settings.items() if "127.0.0.1" in v or k.endswith((".endpoint", "s3a.endpoint"))]
    asked = config_from_dict(
        {
            "aws": {"endpoint_url": "https://vpce-0abc.s3.eu-west-1.vpce.amazonaws.com"},
            "catalog": {"name": "glue_catalog", "type": "glue", "warehouse": "s3://lake-bucket/warehouse/"},
            "spark": {"mode": "cluster"},
            "ship": SHIP,
        },
        source="vpce.yaml",
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    shipped = req.spark_settings(asked, "emr-serverless")
    assert shipped["spark.sql.catalog.glue_catalog.s3.endpoint"] == "https://vpce-0abc.s3.eu-west-1.vpce.amazonaws.com"


def test_an_archive_for_another_python_than_the_release_runs_is_refused_naming_both():
    req.check_release_python("emr-7.12.0", "3.9", "app x")
    req.check_release_python("emr-spark-8.0.0", "3.12", "app x")
    req.check_release_python("emr-6.15.0", "3.7", "app x")  # another line: not checked
    with pytest.raises(ConfigError, match=r"app x runs emr-spark-8.1.0, whose images have Python 3.11 or 3.12 or 3"):
        req.check_release_python("emr-spark-8.1.0", "3.9", "app x")
    with pytest.raises(ConfigError, match=r"--target-python 3.9"):
        req.check_release_python("emr-7.13.0", "3.11", "the transient cluster")


def test_alert_rules_watch_the_configured_targets_failures_and_are_refused_without_one():
    from lakehouse_ops.ship.alerts import wanted_rules

    topic = "arn:aws:sns:eu-west-1:123456789012:lakehouse-ops-alerts"
    rules = {r["Name"]: r for r in wanted_rules(config(alerts={"topic_arn": topic}).ship)}
    assert sorted(rules) == ["lakehouse-ops-serverless-failures", "lakehouse-ops-step-failures"]
    serverless = rules["lakehouse-ops-serverless-failures"]["EventPattern"]
    assert serverless["source"] == ["aws.emr-serverless"]
    assert serverless["detail"] == {"applicationId": ["00fabc"], "state": ["FAILED", "CANCELLED"]}
    assert rules["lakehouse-ops-step-failures"]["EventPattern"]["detail"]["clusterId"] == ["j-ABC"]
    assert wanted_rules(config().ship) == []
    only_serverless = config(alerts={"topic_arn": topic}, emr=None)
    assert [r["Name"] for r in wanted_rules(only_serverless.ship)] == ["lakehouse-ops-serverless-failures"]
    with pytest.raises(ConfigError, match="alerts watch the runs of emr_serverless or emr.cluster_id"):
        config(alerts={"topic_arn": topic}, emr_serverless=None, schedules=[], emr=None)
    with pytest.raises(ConfigError, match="topic_arn"):
        config(alerts={"topic_arn": "arn:aws:sqs:eu-west-1:123456789012:not-a-topic"})
