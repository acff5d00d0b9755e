"""The DAGs of docs/schedules.md, as written there, loaded by Airflow's real DagBag with the Amazon provider (each in
a virtualenv of its own, as MWAA runs them: Airflow 2.10 and 3.0), next to the task files `airflow-tasks` writes.
Checked: the DAGs load without an import error and without lakehouse-ops, its dependencies or pyspark installed;
every operator takes the arguments (an unknown or missing one fails the DAG's import); what Airflow renders from
them at run time is exactly what the task file holds (so exactly what `submit` sends)."""

import json
import os
import re
import subprocess
import sys

import jinja2
import pytest
from test_ship_aws import aws, invoke, write_config  # noqa: F401 (aws: the fixture of moto's EMR accounts)

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAVY = ("lakehouse_ops", "pyarrow", "pyiceberg", "pyspark")

# Airflow as MWAA offers it, with an Amazon provider released for that Airflow.
AIRFLOWS = {
    "2.10": ["apache-airflow==2.10.5", "apache-airflow-providers-amazon==9.2.0"],
    "3.0": ["apache-airflow==3.0.6", "apache-airflow-providers-amazon==9.12.0"],
}

LOAD = r"""
import json, sys
from airflow.models.dagbag import DagBag

class StepsAdded:  # what EmrAddStepsOperator pushes to XCom: the ids of the steps it added
    def xcom_pull(self, task_ids=None, **kwargs):
        return ["s-ADDED"]

bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
out = {"errors": {k: str(v)[-3000:] for k, v in bag.import_errors.items()}, "tasks": {}, "heavy": []}
out["heavy"] = sorted(m for m in sys.modules if m.split(".")[0] in %r)
for dag_id, dag in sorted(bag.dags.items()):
    env = dag.get_template_env()
    for task in dag.tasks:
        task.render_template_fields({"ds": "2026-12-07", "task_instance": StepsAdded()}, jinja_env=env)
        names = set(task.template_fields) | {"config", "job_flow_id", "steps", "execution_role_arn"}
        fields = {f: getattr(task, f) for f in names if hasattr(task, f)}
        out["tasks"]["%%s.%%s" %% (dag_id, task.task_id)] = {"type": type(task).__name__, "fields": fields}
print("DAGBAG" + json.dumps(out, default=str))
""" % (HEAVY,)


def run(cmd, timeout, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(cmd[:5]), proc.stdout[-4000:], proc.stderr[-4000:])
    return proc.stdout


@pytest.fixture(scope="module", params=sorted(AIRFLOWS))
def airflow_python(request, tmp_path_factory):
    venv = str(tmp_path_factory.mktemp("airflow") / "venv")
    run([sys.executable, "-m", "venv", venv], timeout=120)
    python = os.path.join(venv, "bin", "python")
    # uv's resolver: pip backtracks for many minutes over Airflow 3's dependencies without MWAA's constraints file
    run(
        [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", python] + AIRFLOWS[request.param],
        timeout=900,
    )
    return request.param, python


def documented_dags():
    """The DAG files docs/schedules.md shows, by the file name each one's docstring gives."""
    text = open(os.path.join(ROOT, "docs", "schedules.md")).read()
    dags = {}
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        named = re.match(r'"""dags/(\w+\.py)', block)
        if named and "from airflow import DAG" in block:
            dags[named.group(1)] = block
    return dags


def test_the_documented_dags_load_in_airflows_dagbag_and_render_the_task_files(aws, tmp_path, airflow_python):  # noqa: F811
    version, python = airflow_python
    clients, roles, app, cluster = aws
    config = write_config(tmp_path, roles, app, cluster)
    archive = "s3://artifacts-bucket/envs/dagbag-%s.tar.gz" % os.urandom(4).hex()
    clients["s3"].put_object(Bucket="artifacts-bucket", Key=archive.split("/", 3)[3], Body=b"packed env")
    dags = tmp_path / "dags"
    dags.mkdir()
    serverless = str(dags / "lakehouse_ops_tasks.json")
    steps = str(dags / "lakehouse_ops_steps.json")
    made, _ = invoke(
        "--config", config, "airflow-tasks", "--target", "emr-serverless", "--archive", archive, "--out", serverless
    )
    assert made.exit_code == 0, made.output
    args = ["--task", "nightly", "--job", "maintain", "--", "--report", "s3://my-reports/maintenance.json"]
    made, _ = invoke("--config", config, "airflow-tasks", "--target", "emr", "--out", steps, *args)
    assert made.exit_code == 0, made.output
    written = documented_dags()
    assert sorted(written) == ["lakehouse_maintenance.py", "lakehouse_nightly_steps.py"]
    for name, code in written.items():
        (dags / name).write_text(code)

    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    out = run([python, "-c", LOAD, str(dags)], timeout=600, env=env, cwd=str(tmp_path))
    loaded = json.loads(out[out.index("DAGBAG") + len("DAGBAG") :])
    assert loaded["errors"] == {}, "Airflow %s: %s" % (version, loaded["errors"])
    assert loaded["heavy"] == [], "the DAGs imported %s" % loaded["heavy"]
    tasks = loaded["tasks"]
    held = json.loads(open(serverless).read())["tasks"]
    for task_id, kwargs in (("compaction", held["compaction-hourly"]), ("orphans", held["orphans-weekly"])):
        task = tasks["lakehouse_maintenance." + task_id]
        assert task["type"] == "EmrServerlessStartJobOperator"
        for field in ("application_id", "execution_role_arn", "job_driver", "configuration_overrides", "name"):
            assert task["fields"][field] == kwargs[field], (version, task_id, field)
        assert task["fields"]["config"] == kwargs["config"]
    nightly = json.loads(open(steps).read())["tasks"]["nightly"]
    add = tasks["lakehouse_nightly_steps.add_steps"]
    assert add["type"] == "EmrAddStepsOperator" and add["fields"]["job_flow_id"] == cluster
    sent = [jinja2.Environment().from_string(a).render() for a in nightly["steps"][0]["HadoopJarStep"]["Args"]]
    assert add["fields"]["steps"][0]["HadoopJarStep"]["Args"] == sent
    assert sent[-2:] == ["--report", "s3://my-reports/maintenance.json"]
    watch = tasks["lakehouse_nightly_steps.watch"]
    assert watch["type"] == "EmrStepSensor"
    assert watch["fields"]["job_flow_id"] == cluster and watch["fields"]["step_id"] == "s-ADDED"
