"""EMR 7.x runs Python 3.9, the EMR 8 line (emr-spark-8.x) 3.11 to 3.13: library code must parse, import and pass
its pure tests under each (3.11 runs the whole suite).

Static: vermin checks every module against 3.9. Dynamic, for each of 3.9, 3.12 and 3.13 installed here: the wheel
is built, installed into a fresh virtualenv of that Python (without pyspark, as on EMR's Python), every module is
imported, the CLI answers --help, and the pure unit tests run. tests/unit therefore holds only tests that need
nothing but the wheel's own dependencies (no Spark, no moto).
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_python(version):
    """A working interpreter of `version` ("3.9"): pyenv's installs first (its shims may refuse to run), then
    PATH."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s*/bin/python%s" % (version, version))))
    candidates += ["/usr/bin/python" + version, "/usr/local/bin/python" + version, shutil.which("python" + version)]
    wanted = "(%s, %s)" % tuple(version.split("."))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            probe = subprocess.run(
                [candidate, "-c", "import sys, venv; print(sys.version_info[:2])"], capture_output=True, text=True
            )
            if probe.returncode == 0 and wanted in probe.stdout:
                return candidate
    return None


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(cmd), proc.stdout[-4000:], proc.stderr[-4000:])
    return proc.stdout


def test_vermin_targets_python_39():
    out = run(
        [
            os.path.join(os.path.dirname(sys.executable), "vermin"),
            "-q",
            "--target=3.9-",
            "--violations",
            "--no-tips",
            "--eval-annotations",
            os.path.join(ROOT, "lakehouse_ops"),
            os.path.join(ROOT, "spark_jobs"),
        ]
    )
    assert out.strip() == ""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), ROOT], timeout=600)
    wheels = glob.glob(str(out / "lakehouse_ops-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_carries_the_package_and_not_pyspark(wheel):
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read([n for n in names if n.endswith("METADATA")][0]).decode()
    assert "lakehouse_ops/cli/base.py" in names and "lakehouse_ops/maintenance/orphans.py" in names
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not [r for r in requires if "pyspark" in r and "extra ==" not in r]
    assert any("pyspark" in r and 'extra == "local"' in r for r in requires)


def check_entry_points(venv):
    """`lakehouse-ops --help` and every spark_jobs entry point's --help, run as spark-submit runs them: the
    module's file as a script, with the code it imports coming from the installed wheel."""
    from lakehouse_ops.spark_jobs import JOBS

    py = os.path.join(venv, "bin", "python")
    out = run([os.path.join(venv, "bin", "lakehouse-ops"), "--help"])
    assert "maintain" in out and "erase" in out and "submit" in out
    where = run(
        [py, "-c", "import os, lakehouse_ops.spark_jobs as j; print(os.path.dirname(j.__file__))"], cwd=venv
    ).strip()
    assert where.startswith(venv)
    for module in JOBS.values():
        usage = run([py, os.path.join(where, module + ".py"), "--help"], cwd=venv)
        assert usage.startswith("usage: %s.py" % module) and "--config" in usage


def test_wheel_in_a_fresh_virtualenv(wheel, tmp_path):
    venv = str(tmp_path / "venv")
    run([sys.executable, "-m", "venv", venv])
    run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet", wheel], timeout=900)
    check_entry_points(venv)


@pytest.mark.parametrize("version", ["3.9", "3.12", "3.13"])
def test_imports_and_pure_tests_under_each_emr_python(wheel, tmp_path, version):
    python = find_python(version)
    if python is None:
        pytest.skip("no Python %s interpreter on this machine (vermin still checked 3.9 statically)" % version)
    venv = str(tmp_path / ("venv" + version))
    run([python, "-m", "venv", venv])
    py = os.path.join(venv, "bin", "python")
    run([py, "-m", "pip", "install", "--quiet", wheel, "pytest"], timeout=900)
    run([py, "-c", "import sys; assert sys.version_info[:2] == (%s)" % version.replace(".", ", ")])
    importer = (
        "import importlib, pkgutil, lakehouse_ops\n"
        "for m in pkgutil.walk_packages(lakehouse_ops.__path__, 'lakehouse_ops.'):\n"
        "    importlib.import_module(m.name)\n"
        "import sys; assert 'pyspark' not in sys.modules\n"
    )
    run([py, "-c", importer])
    check_entry_points(venv)
    # The pure tests, against the installed wheel (run from a copy so the source tree is not imported).
    tests = tmp_path / "tests"
    shutil.copytree(os.path.join(ROOT, "tests", "unit"), str(tests / "unit"))
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures"), str(tests / "fixtures"))
    shutil.copytree(os.path.join(ROOT, "conf"), str(tmp_path / "conf"))
    run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests / "unit")], cwd=str(tmp_path), timeout=600)


def test_package_builds_an_archive_for_the_target_python_and_refuses_another(wheel, tmp_path):
    import tarfile

    from click.testing import CliRunner

    from lakehouse_ops.cli import cli

    here = "%d.%d" % sys.version_info[:2]
    other = "3.9" if here != "3.9" else "3.11"
    refused = CliRunner().invoke(cli, ["package", "--out", str(tmp_path), "--wheel", wheel, "--target-python", other])
    assert refused.exit_code == 2 and "is Python %s but the target is Python %s" % (here, other) in refused.output
    assert "--force" in refused.output
    # The system's Python, where EMR keeps it, is accepted as it is; another (pyenv) only with --force.
    system = "/usr/bin/python%s" % here
    how = ["--python", system] if os.path.exists(system) else ["--force"]
    result = CliRunner().invoke(
        cli, ["package", "--out", str(tmp_path), "--wheel", wheel, "--target-python", here, "--json"] + how
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["python"] == here and os.path.isfile(report["archive"])
    assert report["archive_python"] == (system if how[0] == "--python" else os.path.realpath(sys.executable))
    with tarfile.open(report["archive"]) as archive:
        names = archive.getnames()
    site = "lib/python%s/site-packages/" % here
    assert "bin/python" in names and site + "lakehouse_ops/spark_jobs/maintain.py" in names
    assert site + "pyiceberg/__init__.py" in names and not [n for n in names if n.startswith(site + "pyspark/")]
    serverless = report["spark_submit"]["emr-serverless"]
    assert serverless["spark.archives"].endswith(os.path.basename(report["archive"]) + "#environment")
    assert serverless["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] == "./environment/bin/python"
