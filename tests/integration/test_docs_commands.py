"""The AWS CLI commands the docs show, pasted as they are into a shell with the real AWS CLI (its own virtualenv)
against moto's server: only the placeholders a reader replaces (a cluster id, an application id) are filled in.
Each must be accepted and create what it says, with the arguments as written; so must the command `submit
--dry-run` prints under `aws_cli`."""

import json
import os
import re
import subprocess
import sys

import pytest
from test_ship_aws import _emr_dry_run, aws, write_config  # noqa: F401 (aws: the fixture of moto's EMR accounts)

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = ("README.md", "docs/ingest.md", "docs/emr-step.md", "docs/pseudonymization.md", "docs/emr-serverless.md")
PASTED = ("aws emr add-steps", "aws emr-serverless start-job-run")


@pytest.fixture(scope="module")
def aws_cli(tmp_path_factory):
    venv = str(tmp_path_factory.mktemp("awscli") / "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = os.path.join(venv, "bin", "python")
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", python, "awscli"], check=True, timeout=600
    )
    return os.path.join(venv, "bin")


def documented_commands():
    """(page, command) for every shell block line group starting with one of PASTED, continuation lines and
    multi-line quotes included."""
    found = []
    for page in PAGES:
        text = open(os.path.join(ROOT, page)).read()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            for match in re.finditer(r"^(aws [a-z-]+ [a-z-]+)", block, re.M):
                if match.group(1) not in PASTED:
                    continue
                rest = block[match.start() :]
                found.append((page, _one_command(rest)))
    return found


def _one_command(text):
    """The command at the start of `text`: up to the first newline outside quotes and not escaped."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "\n" and (i == 0 or text[i - 1] != "\\"):
            return text[:i]
    return text


def cli_env():
    """The AWS CLI's own variables, pointing at the run's moto server."""
    from lakehouse_ops.aws.clients import ENDPOINT_ENV

    return dict(os.environ, AWS_ENDPOINT_URL=os.environ[ENDPOINT_ENV], AWS_DEFAULT_REGION="us-east-1")


def paste(bin_dir, command, env):
    proc = subprocess.run(
        ["bash", "-c", command + " --output json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(env, PATH=bin_dir + os.pathsep + env["PATH"]),
    )
    assert proc.returncode == 0, "%s\nfailed: %s" % (command, proc.stderr[-2000:])
    return json.loads(proc.stdout)


def test_the_documented_aws_cli_commands_work_when_pasted(aws, aws_cli, tmp_path):  # noqa: F811
    clients, roles, app, cluster = aws
    commands = documented_commands()
    pages = sorted({page for page, _ in commands})
    assert pages == ["docs/emr-step.md", "docs/ingest.md", "docs/pseudonymization.md"], pages
    env = cli_env()
    for page, command in commands:
        filled = re.sub(r"j-X+", cluster, command)
        filled = filled.replace("--application-id 00f...", "--application-id " + app)
        answer = paste(aws_cli, filled, env)
        if command.startswith("aws emr add-steps"):
            (step_id,) = answer["StepIds"]
            step = clients["emr"].describe_step(ClusterId=cluster, StepId=step_id)["Step"]
            args = step["Config"]["Args"]
            assert args and all(a.strip() == a and a for a in args), (page, args)  # no space or newline kept
            for word in re.findall(r"s3://[^,\]\"' ]+", command):
                assert any(word in a for a in args), (page, word, args)
        else:
            run = clients["emr-serverless"].get_job_run(applicationId=app, jobRunId=answer["jobRunId"])["jobRun"]
            assert run["jobDriver"]["sparkSubmit"]["entryPoint"].endswith("pseudonymize.py"), page


def test_the_cli_command_submit_prints_creates_the_steps_it_shows(aws, aws_cli, tmp_path):  # noqa: F811
    """`submit --target emr --dry-run` prints, under `aws_cli`, the command and its steps file: run as printed,
    it adds exactly the steps the API request holds."""
    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster)
    _, dry = _emr_dry_run(config, "--report", "s3://reports/maintenance.json")
    cli = dry["runs"][0]["aws_cli"]
    steps_file = tmp_path / "steps.json"
    steps_file.write_text(json.dumps(cli["steps.json"]))
    command = cli["command"].replace("file://steps.json", "file://%s" % steps_file)
    env = cli_env()
    (step_id,) = paste(aws_cli, command, env)["StepIds"]
    step = clients["emr"].describe_step(ClusterId=cluster, StepId=step_id)["Step"]
    sent = dry["runs"][0]["request"]["Steps"][0]
    assert step["Config"]["Args"] == sent["HadoopJarStep"]["Args"]
    assert step["Name"] == sent["Name"] and step["ActionOnFailure"] == sent["ActionOnFailure"]
