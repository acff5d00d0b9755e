"""Submitting to EMR Serverless and EMR on EC2, schedules and leases, over HTTP against moto's server."""

import json
import os

import pytest
import yaml
from click.testing import CliRunner
from slowdown import SlowDownProxy

from lakehouse_ops.aws.clients import ENDPOINT_ENV
from lakehouse_ops.cli import cli
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.ship import follow as follow_mod
from lakehouse_ops.ship import requests as req
from lakehouse_ops.ship import submit as sub

ARTIFACTS = "s3://artifacts-bucket/lakehouse-ops"


@pytest.fixture
def aws(aws_env):
    from lakehouse_ops.aws.clients import client

    clients = {name: client(name) for name in ("s3", "iam", "emr-serverless", "emr", "scheduler")}
    for bucket in ("artifacts-bucket", "logs-bucket", "lease-bucket"):
        try:
            clients["s3"].create_bucket(Bucket=bucket)
        except clients["s3"].exceptions.BucketAlreadyOwnedByYou:
            pass
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Service": ["emr-serverless.amazonaws.com", "scheduler.amazonaws.com"]},
                }
            ],
        }
    )
    roles = {}
    for name in ("lakehouse-ops-jobs", "lakehouse-ops-scheduler"):
        try:
            roles[name] = clients["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        except clients["iam"].exceptions.EntityAlreadyExistsException:
            roles[name] = clients["iam"].get_role(RoleName=name)["Role"]["Arn"]
    app = clients["emr-serverless"].create_application(name="lakehouse-ops", releaseLabel="emr-7.2.0", type="SPARK")[
        "applicationId"
    ]
    cluster = clients["emr"].run_job_flow(
        Name="lakehouse",
        ReleaseLabel="emr-7.2.0",
        LogUri="s3://logs-bucket/emr/",
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "SlaveInstanceType": "m5.xlarge",
            "InstanceCount": 3,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
    )["JobFlowId"]
    return clients, roles, app, cluster


def write_config(tmp_path, roles, app, cluster, **ship):
    section = {
        "python": "3.9",
        "artifacts": ARTIFACTS,
        "emr_serverless": {
            "application_id": app,
            "execution_role_arn": roles["lakehouse-ops-jobs"],
            "log_uri": "s3://logs-bucket/serverless/",
        },
        "emr": {"cluster_id": cluster},
        "tags": {"team": "platform"},
        "scheduler_role_arn": roles["lakehouse-ops-scheduler"],
        "leases": "s3://lease-bucket/leases/",
        "schedules": [
            {"name": "compaction-hourly", "args": ["--only", "compaction"], "expression": "rate(1 hour)"},
            {"name": "orphans-weekly", "args": ["--only", "remove_orphan_files"], "expression": "cron(0 4 ? * SUN *)"},
        ],
    }
    section.update(ship)
    path = tmp_path / "prod.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "catalog": {"name": "glue_catalog", "type": "glue", "warehouse": "s3://lake-bucket/warehouse/"},
                "spark": {"mode": "cluster"},
                "ship": section,
            }
        )
    )
    return str(path)


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    return result, (json.loads(result.stdout[result.stdout.index("{") :]) if "{" in result.stdout else None)


def job_runs(clients, app):
    serverless = clients["emr-serverless"]
    try:
        return serverless.list_job_runs(applicationId=app)["jobRuns"]
    except serverless.exceptions.ResourceNotFoundException:  # moto's answer for an application never run
        return []


def s3_body(s3, uri):
    bucket, key = uri[len("s3://") :].split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_emr_serverless_run_uploads_starts_and_follows(aws, tmp_path):
    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster)
    archive = tmp_path / "lakehouse-ops-py39.tar.gz"
    archive.write_bytes(b"packed environment")
    result, report = invoke(
        "--config",
        config,
        "submit",
        "--target",
        "emr-serverless",
        "--job",
        "maintain",
        "--archive",
        str(archive),
        "--wait",
        "--poll-seconds",
        "0.05",
        "--json",
        "--",
        "--only",
        "compaction",
        "analytics.*",
    )
    assert result.exit_code == 0, result.output
    run = report["runs"][0]
    assert run["state"] == "SUCCESS" and run["ok"] and "SUCCESS" in result.stderr
    assert run["logs"] == "s3://logs-bucket/serverless/applications/%s/jobs/%s/" % (app, run["id"])
    sent = clients["emr-serverless"].get_job_run(applicationId=app, jobRunId=run["id"])["jobRun"]
    driver = sent["jobDriver"]["sparkSubmit"]
    args = driver["entryPointArguments"]
    assert args[0] == "--config" and args[2:] == ["--only", "compaction", "analytics.*"]
    # Every upload lands where the request points.
    with open(req.entry_point_file("maintain"), "rb") as handle:
        assert s3_body(clients["s3"], driver["entryPoint"]) == handle.read()
    with open(config, "rb") as handle:
        assert s3_body(clients["s3"], args[1]) == handle.read()
    archive_uri = [
        p.split("=", 1)[1] for p in driver["sparkSubmitParameters"].split() if p.startswith("spark.archives=")
    ][0]
    assert archive_uri.endswith("#environment")
    assert s3_body(clients["s3"], archive_uri[: -len("#environment")]) == b"packed environment"
    # Ctrl-C during --wait calls this: the run is cancelled at EMR Serverless.
    started = sub.Run(
        "emr-serverless", {"applicationId": app}, {"jobRunId": run["id"]}, {"emr-serverless": clients["emr-serverless"]}
    )
    started.cancel()
    assert started.state()[0] == "CANCELLED"
    assert "spark.sql.catalog.glue_catalog.warehouse=s3://lake-bucket/warehouse/" in driver["sparkSubmitParameters"]


def test_emr_step_and_cancel(aws, tmp_path):
    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster)
    result, report = invoke(
        "--config", config, "submit", "--target", "emr", "--job", "ingest", "--json", "--", "--until-empty"
    )
    assert result.exit_code == 0, result.output
    step_id = report["runs"][0]["id"]
    plain, _ = invoke("--config", config, "submit", "--target", "emr", "--job", "ingest", "--", "--until-empty")
    assert plain.exit_code == 0 and plain.stdout.startswith("emr run s-") and "{" not in plain.stdout, plain.stdout
    assert " on %s" % cluster in plain.stdout.splitlines()[0]
    step = clients["emr"].describe_step(ClusterId=cluster, StepId=step_id)["Step"]
    args = step["Config"]["Args"]
    assert step["Config"]["Jar"] == "command-runner.jar" and step["ActionOnFailure"] == "CONTINUE"
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"] and args[-1] == "--until-empty"
    assert s3_body(clients["s3"], args[-4]).startswith(b'"""spark-submit entry point for SQS')
    assert report["runs"][0]["logs"] == "s3://logs-bucket/emr/%s/steps/%s/" % (cluster, step_id)
    # The run object reads the step's state (cancelling a run is covered on EMR Serverless below and, for every
    # state, in tests/unit/test_ship_units.py).
    run = sub.Run(
        "emr", {"JobFlowId": cluster, "Steps": [{"Name": "x"}]}, {"StepIds": [step_id]}, {"emr": clients["emr"]}
    )
    assert run.state()[0] in ("PENDING", "RUNNING")
    # moto's server answers CancelSteps with an error, as AWS does when the step cannot be cancelled or the caller
    # may not: Ctrl-C reports it in one line and stops following, the run goes on.
    heard = []

    def interrupted(seconds):
        raise KeyboardInterrupt

    state, success = follow_mod.follow(
        run.state, follow_mod.STEP_DONE, run.cancel, lambda s, d, t: heard.append((s, d)), sleep=interrupted
    )
    assert not success and state in ("PENDING", "RUNNING")
    assert heard[-1][0] == "CANCEL_FAILED" and "may still be running" in heard[-1][1]
    assert "\n" not in heard[-1][1] and "Traceback" not in heard[-1][1]


def test_dry_run_prints_the_request_and_sends_nothing(aws, tmp_path):
    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster, artifacts="s3://artifacts-bucket/dry-run")
    before = job_runs(clients, app)
    result, report = invoke(
        "--config",
        config,
        "submit",
        "--target",
        "emr-serverless",
        "--job",
        "erase",
        "--archive",
        "s3://envs/env.tar.gz",
        "--dry-run",
        "--",
        "--subjects-file",
        "s3://r/1.txt",
    )
    assert result.exit_code == 0, result.output
    request = report["runs"][0]["request"]
    assert request["applicationId"] == app and request["jobDriver"]["sparkSubmit"]["entryPoint"].endswith(
        "/jobs/%s/erase.py" % req.content_digest(req.entry_point_file("erase"))
    )
    assert [u["to"] for u in report["runs"][0]["uploads"]] == [
        request["jobDriver"]["sparkSubmit"]["entryPoint"],
        request["jobDriver"]["sparkSubmit"]["entryPointArguments"][1],
    ]
    assert job_runs(clients, app) == before
    assert clients["s3"].list_objects_v2(Bucket="artifacts-bucket", Prefix="dry-run/").get("KeyCount", 0) == 0
    bad, _ = invoke("--config", config, "submit", "--target", "emr-serverless", "--job", "maintain")
    assert bad.exit_code == 2 and "--archive" in bad.output
    missing = write_config(tmp_path, roles, app, cluster, artifacts="s3://no-such-bucket/lakehouse-ops")
    local_archive = tmp_path / "env.tar.gz"
    local_archive.write_bytes(b"packed")
    failed, _ = invoke(
        "--config",
        missing,
        "submit",
        "--target",
        "emr-serverless",
        "--job",
        "maintain",
        "--archive",
        str(local_archive),
    )
    assert failed.exit_code == 1 and "could not upload" in failed.output and "s3://no-such-bucket/" in failed.output
    assert job_runs(clients, app) == before  # nothing started


def test_schedules_are_idempotent_listed_updated_pruned_and_deleted(aws, tmp_path):
    clients, roles, app, cluster = aws
    dead_letter = "arn:aws:sqs:us-east-1:123456789012:lakehouse-ops-schedules-dlq"
    config = write_config(tmp_path, roles, app, cluster, schedule_dead_letter_arn=dead_letter)
    archive = "s3://artifacts-bucket/envs/env-%s.tar.gz" % os.urandom(4).hex()
    missing, _ = invoke("--config", config, "schedule", "--archive", archive, "--json")
    assert missing.exit_code != 0 and "archive %s does not exist" % archive in missing.output, missing.output
    dry_missing, shown = invoke("--config", config, "schedule", "--archive", archive, "--dry-run", "--json")
    assert dry_missing.exit_code != 0 and shown["ok"] is False  # the dry run says what the run would refuse
    assert shown["archive"].startswith("missing: archive %s does not exist" % archive)
    with pytest.raises(Exception):  # nothing scheduled with an archive that is not there
        clients["scheduler"].get_schedule(Name="compaction-hourly", GroupName="lakehouse-ops")
    clients["s3"].put_object(Bucket="artifacts-bucket", Key=archive.split("/", 3)[3], Body=b"packed env")
    result, first = invoke("--config", config, "schedule", "--archive", archive, "--json")
    assert result.exit_code == 0, result.output
    assert sorted((r["name"], r["action"]) for r in first["results"]) == [
        ("compaction-hourly", "created"),
        ("orphans-weekly", "created"),
    ]
    _, again = invoke("--config", config, "schedule", "--archive", archive, "--json")
    assert {r["action"] for r in again["results"]} == {"unchanged"}
    created = clients["scheduler"].get_schedule(Name="compaction-hourly", GroupName="lakehouse-ops")
    run = json.loads(created["Target"]["Input"])
    assert created["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
    assert created["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert created["Target"]["DeadLetterConfig"] == {"Arn": dead_letter}
    assert run["applicationId"] == app and run["jobDriver"]["sparkSubmit"]["entryPointArguments"][-2:] == [
        "--only",
        "compaction",
    ]
    changed = write_config(
        tmp_path,
        roles,
        app,
        cluster,
        schedules=[{"name": "compaction-hourly", "args": ["--only", "compaction"], "expression": "rate(2 hours)"}],
        schedule_dead_letter_arn=dead_letter,
    )
    dry_result, dry = invoke("--config", changed, "schedule", "--archive", archive, "--prune", "--dry-run", "--json")
    assert "schedule updated" not in dry_result.output and "schedule deleted" not in dry_result.output
    assert sorted((r["name"], r["action"]) for r in dry["results"]) == [
        ("compaction-hourly", "would update"),
        ("orphans-weekly", "would delete"),
    ]
    shown = next(r for r in dry["results"] if r["name"] == "compaction-hourly")["request"]
    assert shown["ScheduleExpression"] == "rate(2 hours)" and shown["Target"]["Arn"].endswith(":startJobRun")
    assert (
        clients["scheduler"].get_schedule(Name="compaction-hourly", GroupName="lakehouse-ops")["ScheduleExpression"]
        == "rate(1 hour)"
    )
    _, applied = invoke("--config", changed, "schedule", "--archive", archive, "--prune", "--json")
    assert sorted((r["name"], r["action"]) for r in applied["results"]) == [
        ("compaction-hourly", "updated"),
        ("orphans-weekly", "deleted"),
    ]
    _, listed = invoke("--config", changed, "schedule", "--list", "--json")
    assert [s["Name"] for s in listed["schedules"]] == ["compaction-hourly"]
    _, deleted = invoke("--config", changed, "schedule", "--delete", "compaction-hourly", "--json")
    assert deleted["results"] == [{"name": "compaction-hourly", "action": "deleted"}]


def test_a_schedule_dry_run_works_offline_and_shows_every_request(aws, tmp_path, monkeypatch):
    """No AWS endpoint to reach (a laptop, a CI job without credentials): the dry run shows each request as it
    would be sent, says the prune was not checked, and touches nothing."""
    from lakehouse_ops.aws.clients import ENDPOINT_ENV

    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster)
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:9")  # nothing listens there
    result, dry = invoke(
        "--config", config, "schedule", "--archive", "s3://envs/a.tar.gz", "--prune", "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.output
    actions = {r["name"]: r for r in dry["results"]}
    assert actions["compaction-hourly"]["action"] == "would create or update"
    request = actions["orphans-weekly"]["request"]
    assert request["ScheduleExpression"] == "cron(0 4 ? * SUN *)" and request["Target"]["RetryPolicy"]
    assert actions["*"]["action"] == "prune not checked" and "cannot reach AWS" in actions["*"]["reason"]
    assert "none" in dry["dead_letter"]


def test_leases_block_expire_and_are_taken_over(aws, tmp_path):
    from lakehouse_ops.config import load_config
    from lakehouse_ops.lease import Leases
    from lakehouse_ops.runner import MaintenanceRunner

    clients = aws[0]
    now = [1000000.0]
    first = Leases("s3://lease-bucket/leases/", minutes=10, owner="run-1", clock=lambda: now[0])
    second = Leases("s3://lease-bucket/leases/", minutes=10, owner="run-2", clock=lambda: now[0])
    assert first.acquire("analytics.events") == (True, None)
    taken, holder = second.acquire("analytics.events")
    assert not taken and holder["owner"] == "run-1" and holder["expires_at"] == now[0] + 600
    now[0] += 601  # run-1 died without releasing: its lease expires
    assert second.acquire("analytics.events") == (True, None)
    assert first.acquire("analytics.events")[0] is False
    first.release("analytics.events")  # not its lease any more: left alone
    body = json.loads(
        clients["s3"].get_object(Bucket="lease-bucket", Key="leases/analytics.events.json")["Body"].read()
    )
    assert body["owner"] == "run-2"
    # Renewed on S3 (a conditional replace) while held: a run that outlives its first ten minutes keeps its lease.
    now[0] += 500
    second.renew()
    now[0] += 200  # past the lease's first expiry, within the renewed one
    assert first.acquire("analytics.events")[0] is False and second.held("analytics.events")
    # A maintenance run skips a table whose lease another run holds, without touching it.
    config = load_config(write_config(tmp_path, *aws[1:]))
    runner = MaintenanceRunner(
        config,
        catalog_tables=object(),
        leases=Leases("s3://lease-bucket/leases/", minutes=10, owner="run-3", clock=lambda: now[0]),
    )
    report = runner.run(["analytics.events"])
    assert report["ok"] and "run-2" in report["tables"][0]["skipped"] and report["tables"][0]["actions"] == []
    second.release("analytics.events")
    assert clients["s3"].list_objects_v2(Bucket="lease-bucket", Prefix="leases/").get("KeyCount", 0) == 0


def test_uploads_are_keyed_by_content_and_never_overwrite_what_a_job_points_at(aws, tmp_path):
    clients, roles, app, cluster = aws
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    first = write_config(first_dir, roles, app, cluster)
    second = write_config(second_dir, roles, app, cluster, artifacts="s3://artifacts-bucket/lakehouse-ops")
    with open(second, "a") as handle:
        handle.write("# another config under the same file name\n")
    archive = tmp_path / "lakehouse-ops-py39.tar.gz"
    archive.write_bytes(b"build one")
    uris = []
    for config in (first, second, first):
        result, report = submit_maintain(config, str(archive))
        assert result.exit_code == 0, result.output
        sent = clients["emr-serverless"].get_job_run(applicationId=app, jobRunId=report["runs"][0]["id"])["jobRun"]
        uris.append(sent["jobDriver"]["sparkSubmit"]["entryPointArguments"][1])
    assert uris[0] != uris[1] and uris[0] == uris[2]  # same name, other content: another key; same content: same key
    assert all(u.endswith("/" + os.path.basename(first)) for u in uris)  # the human name is kept
    with open(first, "rb") as handle:
        assert s3_body(clients["s3"], uris[0]) == handle.read()
    with open(second, "rb") as handle:
        assert s3_body(clients["s3"], uris[1]) == handle.read()
    # A second build of the same version is another object; the first stays for the runs that point at it.
    before = {k for k in keys(clients["s3"], "artifacts-bucket") if k.endswith(".tar.gz")}
    archive_key = [k for k in before if "/%s/" % req.content_digest(str(archive)) in k]
    archive.write_bytes(b"build two")
    result, _ = submit_maintain(first, str(archive))
    assert result.exit_code == 0, result.output
    archives = {k for k in keys(clients["s3"], "artifacts-bucket") if k.endswith(".tar.gz")}
    assert len(archive_key) == 1 and len(archives - before) == 1 and archive_key[0] in archives
    assert clients["s3"].get_object(Bucket="artifacts-bucket", Key=archive_key[0])["Body"].read() == b"build one"
    # An s3:// archive that is not there stops the run before it starts.
    result, _ = submit_maintain(first, "s3://artifacts-bucket/nowhere/env.tar.gz")
    assert result.exit_code == 2 and "archive s3://artifacts-bucket/nowhere/env.tar.gz does not exist" in result.output


def submit_maintain(config, archive):
    return invoke(
        "--config", config, "submit", "--target", "emr-serverless", "--job", "maintain", "--archive", archive, "--json"
    )


def keys(s3, bucket):
    return [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]


def test_package_upload_puts_the_wheel_and_a_bootstrap_action_where_emr_installs_them(aws, tmp_path):
    import subprocess
    import sys

    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster)
    out = tmp_path / "dist"
    result, report = invoke("--config", config, "package", "--no-archive", "--upload", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    wheel_uri, script_uri = report["uploaded"]["wheel"], report["uploaded"]["bootstrap_action"]
    assert wheel_uri.startswith(ARTIFACTS) and "/wheels/" in wheel_uri and wheel_uri.endswith(".whl")
    with open(report["wheel"], "rb") as handle:
        assert s3_body(clients["s3"], wheel_uri) == handle.read()
    script = s3_body(clients["s3"], script_uri).decode()
    assert "aws s3 cp %s /tmp/" % wheel_uri in script and "sudo python3 -m pip install" in script
    syntax = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert syntax.returncode == 0, syntax.stderr
    # The uploaded object is a wheel pip installs.
    downloaded = tmp_path / os.path.basename(wheel_uri)
    downloaded.write_bytes(s3_body(clients["s3"], wheel_uri))
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(downloaded)],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    assert (target / "lakehouse_ops" / "spark_jobs").is_dir()
    # The request EMR gets: the cluster is created with the bootstrap action as reported.
    created = clients["emr"].run_job_flow(
        Name="with-lakehouse-ops",
        ReleaseLabel="emr-7.2.0",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        BootstrapActions=[report["bootstrap_action"]],
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )
    actions = clients["emr"].list_bootstrap_actions(ClusterId=created["JobFlowId"])["BootstrapActions"]
    assert [a["ScriptPath"] for a in actions] == [script_uri]
    assert script_uri in report["commands"]["emr_on_ec2"]


def test_emr_steps_run_as_a_runtime_role_print_as_the_cli_takes_them_and_respect_the_active_step_limit(
    aws, tmp_path, monkeypatch
):
    clients, roles, app, cluster = aws
    role = roles["lakehouse-ops-jobs"]
    config = write_config(tmp_path, roles, app, cluster, emr={"cluster_id": cluster, "execution_role_arn": role})
    result, dry = _emr_dry_run(config, "--report", "s3://r/m.json")
    assert result.exit_code == 0, result.output
    run = dry["runs"][0]
    assert run["request"]["ExecutionRoleArn"] == role
    cli = run["aws_cli"]
    assert cli["command"] == "aws emr add-steps --cluster-id %s --steps file://steps.json --execution-role-arn %s" % (
        cluster,
        role,
    )
    step = run["request"]["Steps"][0]
    assert cli["steps.json"] == [
        {
            "Type": "CUSTOM_JAR",
            "Name": step["Name"],
            "ActionOnFailure": "CONTINUE",
            "Jar": "command-runner.jar",
            "Args": step["HadoopJarStep"]["Args"],
        }
    ]
    # A fan-out over more runs than the cluster takes: EMR's limit of active steps (here 2, moto leaves steps
    # pending) is never passed; what could not be submitted is said, and nothing beyond the limit is added.
    from lakehouse_ops.config import load_config

    monkeypatch.setattr(sub, "EMR_ACTIVE_STEPS", 2 + _active_steps(clients, cluster))
    monkeypatch.setattr(sub, "STEP_ROOM_WAIT_S", 0.2)
    said = []
    report = sub.submit_runs(
        load_config(config),
        config,
        "emr",
        "maintain",
        [["t1"], ["t2"], ["t3"], ["t4"]],
        poll_seconds=0.1,
        say=said.append,
    )
    assert not report["ok"] and len(report["runs"]) == 2
    assert "2 run(s) not submitted" in report["message"] and "limit" in report["message"]
    assert any("waiting" in line for line in said)
    assert _active_steps(clients, cluster) == sub.EMR_ACTIVE_STEPS
    added = clients["emr"].describe_step(ClusterId=cluster, StepId=report["runs"][0]["id"])["Step"]
    assert added["Config"]["Args"][-1] == "t1"


def _emr_dry_run(config, *job_args):
    """`submit --target emr --job maintain --dry-run --json -- JOB_ARGS`: (result, report)."""
    return invoke(
        "--config", config, "submit", "--target", "emr", "--job", "maintain", "--dry-run", "--json", "--", *job_args
    )


def _active_steps(clients, cluster):
    steps = clients["emr"].list_steps(ClusterId=cluster, StepStates=["PENDING", "RUNNING"])["Steps"]
    return len(steps)


def test_airflow_tasks_are_written_as_json_a_dag_loads_without_lakehouse_ops(aws, tmp_path):
    """MWAA cannot install lakehouse-ops under Airflow's constraints: `airflow-tasks` writes each task's operator
    arguments as JSON. Checked: what Airflow's templating makes of them is exactly the request `submit` sends
    (Airflow's own rule: a string ending in a template extension is read as a file; the rest is rendered by
    Jinja), the EMR Serverless arguments form a valid StartJobRun, and the file loads in a Python with no
    third-party package at all."""
    import subprocess
    import sys

    import botocore.session
    import jinja2
    from botocore.validate import ParamValidator

    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster)
    archive = "s3://artifacts-bucket/envs/airflow-%s.tar.gz" % os.urandom(4).hex()
    clients["s3"].put_object(Bucket="artifacts-bucket", Key=archive.split("/", 3)[3], Body=b"packed env")
    out = str(tmp_path / "lakehouse_ops_tasks.json")
    result, report = invoke(
        "--config", config, "airflow-tasks", "--target", "emr-serverless", "--archive", archive, "--out", out, "--json"
    )
    assert result.exit_code == 0, result.output
    assert report["tasks"] == ["compaction-hourly", "orphans-weekly"]
    loaded = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import json,sys; d=json.load(open(sys.argv[1])); print(sorted(d['tasks']))",
            out,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "['compaction-hourly', 'orphans-weekly']"
    document = json.loads(open(out).read())
    assert document["operator"] == "EmrServerlessStartJobOperator"
    shape = (
        botocore.session.get_session().get_service_model("emr-serverless").operation_model("StartJobRun").input_shape
    )
    for kwargs in document["tasks"].values():
        run = {
            "applicationId": kwargs["application_id"],
            "executionRoleArn": kwargs["execution_role_arn"],
            "jobDriver": kwargs["job_driver"],
            "name": kwargs["name"],
            "configurationOverrides": kwargs["configuration_overrides"],
            **kwargs["config"],
            "clientToken": "the operator's client_request_token",
        }
        checked = ParamValidator().validate(run, shape)
        assert not checked.has_errors(), checked.generate_report()
        entry = run["jobDriver"]["sparkSubmit"]["entryPoint"]
        assert clients["s3"].head_object(Bucket=entry.split("/")[2], Key=entry.split("/", 3)[3])  # uploaded
    assert document["tasks"]["compaction-hourly"]["job_driver"]["sparkSubmit"]["entryPointArguments"][-2:] == [
        "--only",
        "compaction",
    ]

    # EMR on EC2: one task added to its own file; every step argument renders to what submit would send.
    steps_out = str(tmp_path / "steps.json")
    args = ["--task", "nightly", "--job", "maintain", "--", "--report", "s3://reports/{{ds}}/maintenance.json"]
    result, _ = invoke("--config", config, "airflow-tasks", "--target", "emr", "--out", steps_out, "--json", *args)
    assert result.exit_code == 0, result.output
    task = json.loads(open(steps_out).read())["tasks"]["nightly"]
    _, dry = _emr_dry_run(config, "--report", "s3://reports/{{ds}}/maintenance.json")
    sent = dry["runs"][0]["request"]["Steps"][0]["HadoopJarStep"]["Args"]
    rendered = []
    for arg in task["steps"][0]["HadoopJarStep"]["Args"]:
        assert not arg.endswith(".json")  # Airflow would read it as a template file
        rendered.append(jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(arg).render())
    assert rendered == sent and task["job_flow_id"] == cluster
    again, _ = invoke(
        "--config",
        config,
        "airflow-tasks",
        "--target",
        "emr-serverless",
        "--archive",
        archive,
        "--out",
        steps_out,
        "--task",
        "x",
        "--job",
        "maintain",
    )
    assert again.exit_code != 0 and "holds tasks for emr" in again.output
    # The schedules' tasks never replace another target's file either; a file that is no tasks file is named.
    schedules, _ = invoke(
        "--config", config, "airflow-tasks", "--target", "emr-serverless", "--archive", archive, "--out", steps_out
    )
    assert schedules.exit_code != 0 and "holds tasks for emr" in schedules.output
    assert "nightly" in json.loads(open(steps_out).read())["tasks"]
    for content in ("[1, 2]", "null", '{"foo": 1}'):
        (tmp_path / "other.json").write_text(content)
        args = ["--out", str(tmp_path / "other.json"), "--task", "t", "--job", "maintain"]
        odd, _ = invoke("--config", config, "airflow-tasks", "--target", "emr", *args)
        assert odd.exit_code == 2 and "is no lakehouse-ops tasks file" in odd.output, odd.output
    # A step whose name would be read as a template file (task "x.json") renders to itself too; the directory of
    # --out is made when it is not there (the docs' `dags/`).
    fresh = tmp_path / "new-dags" / "steps.json"
    named, _ = invoke(
        "--config",
        config,
        "airflow-tasks",
        "--target",
        "emr",
        "--out",
        str(fresh),
        "--task",
        "x.json",
        "--job",
        "maintain",
    )
    assert named.exit_code == 0, named.output
    step = json.loads(fresh.read_text())["tasks"]["x.json"]["steps"][0]
    assert not step["Name"].endswith(".json")
    assert (
        jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(step["Name"]).render()
        == "lakehouse-ops-x.json"
    )


def test_a_transient_cluster_is_created_for_the_steps_and_ends_with_them(aws, aws_env, tmp_path, monkeypatch):
    """`submit --target emr --transient`: one RunJobFlow whose steps are the run's batches, ended when they are
    (KeepJobFlowAliveWhenNoSteps false) or after falling idle, with the bootstrap action `package --upload` made;
    with a runtime role the steps are added with it (RunJobFlow's steps cannot carry one)."""
    import botocore.session
    from botocore.validate import ParamValidator

    from lakehouse_ops.config import load_config
    from lakehouse_ops.ship.transient import submit_transient

    clients, roles, app, cluster = aws
    transient = {
        "release_label": "emr-7.12.0",
        "log_uri": "s3://logs-bucket/transient/",
        "bootstrap_action": "s3://artifacts-bucket/bootstrap/0123/install-lakehouse-ops.sh",
        "idle_timeout_minutes": 20,
    }
    config = write_config(tmp_path, roles, app, cluster, emr={"transient": transient})
    result, dry = invoke(
        "--config", config, "submit", "--target", "emr", "--transient", "--job", "maintain", "--dry-run", "--", "db.t"
    )
    assert result.exit_code == 0, result.output
    request = dry["runs"][0]["request"]
    shape = botocore.session.get_session().get_service_model("emr").operation_model("RunJobFlow").input_shape
    checked = ParamValidator().validate(request, shape)
    assert not checked.has_errors(), checked.generate_report()
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 1200}
    assert request["BootstrapActions"][0]["ScriptBootstrapAction"]["Path"] == transient["bootstrap_action"]
    assert request["Steps"][0]["HadoopJarStep"]["Args"][-1] == "db.t"

    loaded = load_config(config)
    report = submit_transient(loaded, config, "maintain", [["db.a"], ["db.b"]], name="nightly")
    made = clients["emr"].describe_cluster(ClusterId=report["cluster"])["Cluster"]
    assert made["ReleaseLabel"] == "emr-7.12.0" and {"Key": "lakehouse-ops", "Value": "transient"} in made["Tags"]
    listed = clients["emr"].list_steps(ClusterId=report["cluster"])["Steps"]
    assert sorted(s["Name"] for s in listed) == ["nightly-1", "nightly-2"]
    assert [r["id"] for r in report["runs"]] == [
        next(s["Id"] for s in listed if s["Name"] == n) for n in ("nightly-1", "nightly-2")
    ]

    role = roles["lakehouse-ops-jobs"]
    no_security = write_config(tmp_path, roles, app, cluster, emr={"transient": transient, "execution_role_arn": role})
    with pytest.raises(ConfigError, match="transient.security_configuration"):
        load_config(no_security)  # runtime roles need a security configuration that enables them
    transient["security_configuration"] = "runtime-roles"
    with_role = write_config(tmp_path, roles, app, cluster, emr={"transient": transient, "execution_role_arn": role})
    report = submit_transient(load_config(with_role), with_role, "maintain", [["db.a"]], name="as-role")
    made = clients["emr"].describe_cluster(ClusterId=report["cluster"])["Cluster"]
    assert made["AutoTerminate"] is False  # kept alive for the steps added with the role
    listed = clients["emr"].list_steps(ClusterId=report["cluster"])["Steps"]
    assert [s["Name"] for s in listed] == ["as-role"]

    # EMR refuses the role's steps after the cluster was created: the cluster is ended, and named.
    with SlowDownProxy(aws_env, share=0.0, refuse_target="ElasticMapReduce.AddJobFlowSteps") as proxy:
        monkeypatch.setenv(ENDPOINT_ENV, proxy.url)
        with pytest.raises(sub.SubmitError) as refused:
            submit_transient(load_config(with_role), with_role, "maintain", [["db.a"]], name="refused")
    monkeypatch.setenv(ENDPOINT_ENV, aws_env)
    message = str(refused.value)
    assert "Runtime roles are not enabled" in message and message.endswith("terminated")
    left = message.split("cluster ")[-1].split(" ")[0]
    assert clients["emr"].describe_cluster(ClusterId=left)["Cluster"]["Status"]["State"] in (
        "TERMINATING",
        "TERMINATED",
    )


def test_a_job_run_whose_archive_is_for_another_python_than_the_application_runs_is_refused(aws, tmp_path):
    """EMR 7.x images run Python 3.9, the EMR 8 line's 3.11 to 3.13 (moto knows no emr-spark-8 release: the
    7.x case here): an archive built for another Python (ship.python) would fail in the job run minutes later.
    The application's release is read and the run refused, naming both; nothing starts."""
    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster, python="3.11")
    archive = "s3://artifacts-bucket/envs/py311-%s.tar.gz" % os.urandom(4).hex()
    clients["s3"].put_object(Bucket="artifacts-bucket", Key=archive.split("/", 3)[3], Body=b"packed env")
    before = job_runs(clients, app)
    args = ["--config", config, "submit", "--target", "emr-serverless", "--job", "maintain", "--archive", archive]
    result, _ = invoke(*args)
    assert result.exit_code != 0, result.output
    assert "runs emr-7.2.0, whose images have Python 3.9, but ship.python is 3.11" in result.output
    assert job_runs(clients, app) == before
    # A step on a long-running cluster: its release is read the same way.
    steps_before = len(clients["emr"].list_steps(ClusterId=cluster)["Steps"])
    on_cluster, _ = invoke("--config", config, "submit", "--target", "emr", "--job", "maintain", "--archive", archive)
    assert on_cluster.exit_code != 0
    assert "EMR cluster %s runs emr-7.2.0, whose images have Python 3.9, but ship.python is 3.11" % cluster in (
        on_cluster.output
    )
    assert len(clients["emr"].list_steps(ClusterId=cluster)["Steps"]) == steps_before


def _state_change(app=None, cluster=None, state="FAILED"):
    """A PutEvents entry shaped as EMR Serverless's job run or EMR's step state change event."""
    if app is not None:
        kind, source = "EMR Serverless Job Run State Change", "aws.emr-serverless"
        detail = {"jobRunId": "00f0000000000001", "applicationId": app, "state": state, "previousState": "RUNNING"}
    else:
        kind, source = "EMR Step Status Change", "aws.emr"
        detail = {"stepId": "s-0000000001", "clusterId": cluster, "state": state, "name": "maintain"}
    return {"Source": source, "DetailType": kind, "Detail": json.dumps(detail)}


def test_failed_runs_reach_an_sns_topic_through_the_rules_schedule_creates(aws, tmp_path):
    """`ship.alerts`: `schedule` creates one EventBridge rule per target (the application's job runs, the cluster's
    steps) that sends failed and cancelled runs to the topic, idempotently, keeping targets a user added. The
    rules' patterns are proven on moto's EventBridge: state-change events, as EMR sends them, reach a probe queue
    added to each rule only when they are failures of this application or cluster."""
    clients, roles, app, cluster = aws
    from lakehouse_ops.aws.clients import client

    events, sqs = client("events"), client("sqs")
    topic = client("sns").create_topic(Name="lakehouse-ops-alerts")["TopicArn"]
    config = write_config(tmp_path, roles, app, cluster, alerts={"topic_arn": topic, "rule_prefix": "lo-alerts"})
    archive = "s3://artifacts-bucket/envs/alerts-%s.tar.gz" % os.urandom(4).hex()
    clients["s3"].put_object(Bucket="artifacts-bucket", Key=archive.split("/", 3)[3], Body=b"packed env")
    dry_result, dry = invoke("--config", config, "schedule", "--archive", archive, "--dry-run", "--json")
    assert dry_result.exit_code == 0, dry_result.output
    assert sorted((a["name"], a["action"]) for a in dry["alerts"]) == [
        ("lo-alerts-serverless-failures", "would create"),
        ("lo-alerts-step-failures", "would create"),
    ]
    with pytest.raises(Exception):  # a dry run creates nothing
        events.describe_rule(Name="lo-alerts-serverless-failures")
    result, first = invoke("--config", config, "schedule", "--archive", archive, "--json")
    assert result.exit_code == 0, result.output
    assert sorted(a["action"] for a in first["alerts"]) == ["created", "created"]
    queue = sqs.create_queue(QueueName="alert-probe-%s" % os.urandom(3).hex())["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for name in ("lo-alerts-serverless-failures", "lo-alerts-step-failures"):
        targets = events.list_targets_by_rule(Rule=name)["Targets"]
        assert [(t["Id"], t["Arn"]) for t in targets] == [("lakehouse-ops-alerts", topic)]
        events.put_targets(Rule=name, Targets=[{"Id": "probe", "Arn": queue_arn}])
    _, again = invoke("--config", config, "schedule", "--archive", archive, "--json")
    assert [a["action"] for a in again["alerts"]] == ["unchanged", "unchanged"]
    assert len(events.list_targets_by_rule(Rule="lo-alerts-step-failures")["Targets"]) == 2  # the probe stays

    # moto's EventBridge delivers to SQS but not to SNS: the topic's target is taken off for the probe, and the next
    # `schedule` puts it back.
    for name in ("lo-alerts-serverless-failures", "lo-alerts-step-failures"):
        events.remove_targets(Rule=name, Ids=["lakehouse-ops-alerts"])
    sent = [
        _state_change(app=app, state="FAILED"),
        _state_change(app=app, state="CANCELLED"),
        _state_change(app=app, state="SUCCESS"),
        _state_change(app="00fanotherapp01", state="FAILED"),
        _state_change(cluster=cluster, state="FAILED"),
        _state_change(cluster=cluster, state="COMPLETED"),
        _state_change(cluster="j-ANOTHERCLUSTER", state="FAILED"),
    ]
    assert events.put_events(Entries=sent)["FailedEntryCount"] == 0
    arrived = []
    for _ in range(5):
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        arrived += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
    seen = sorted(
        (e["source"], e["detail"].get("applicationId") or e["detail"]["clusterId"], e["detail"]["state"])
        for e in arrived
    )
    assert seen == [
        ("aws.emr", cluster, "FAILED"),
        ("aws.emr-serverless", app, "CANCELLED"),
        ("aws.emr-serverless", app, "FAILED"),
    ]
    _, repaired = invoke("--config", config, "schedule", "--archive", archive, "--json")
    assert [a["action"] for a in repaired["alerts"]] == ["updated", "updated"]
    targets = events.list_targets_by_rule(Rule="lo-alerts-serverless-failures")["Targets"]
    assert sorted((t["Id"], t["Arn"]) for t in targets) == [("lakehouse-ops-alerts", topic), ("probe", queue_arn)]


def test_ctrl_c_while_following_a_fan_out_cancels_the_run_and_submits_no_more(aws, tmp_path):
    """`submit --per-table --wait`: Ctrl-C asks for the run being followed to be cancelled (moto's EMR refuses to
    cancel a step: the report says so), and the runs not yet started are not started; the report names them."""
    import signal
    import threading

    from lakehouse_ops.config import load_config

    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster)
    before = len(clients["emr"].list_steps(ClusterId=cluster)["Steps"])
    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    lines = []
    try:
        report = sub.submit_runs(
            load_config(config),
            config,
            "emr",
            "maintain",
            [["db.a"], ["db.b"], ["db.c"]],
            wait_for_end=True,
            poll_seconds=0.2,
            say=lines.append,
        )
    finally:
        timer.cancel()
    assert report["ok"] is False and report["message"] == "Ctrl-C: 2 run(s) not submitted", report
    assert report["not_submitted"] == [["db.b"], ["db.c"]]
    assert len(report["runs"]) == 1 and report["runs"][0]["ok"] is False
    assert any("CANCEL_REQUESTED" in line for line in lines)
    assert len(clients["emr"].list_steps(ClusterId=cluster)["Steps"]) == before + 1
