"""`lakehouse-ops package` as a new user meets it: after a normal install it names the options that exist, and an
archive whose bin/python would lead to a path EMR does not have (pyenv, conda) is refused before anything is
installed, checked in the archive itself the way EMR will run it."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.ship import package as pkg

SYSTEM_PYTHON = "/usr/bin/python%d.%d" % sys.version_info[:2]


def bare_venv(interpreter, path):
    subprocess.run([interpreter, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return str(path)


def test_an_environment_made_by_a_pyenv_python_is_refused_and_says_how_to_build(tmp_path):
    env = bare_venv(sys.executable, tmp_path / "env")
    target = pkg.venv_interpreter(env)
    assert os.path.isabs(target) and not target.startswith(env)
    if target.startswith("/usr/bin/"):
        pytest.skip("this interpreter is the system's own: nothing to refuse")
    with pytest.raises(ConfigError) as refused:
        pkg.check_interpreter_path(target)
    message = str(refused.value)
    assert target in message and "/usr/bin/python3" in message and "docs/emr-serverless.md" in message
    pkg.check_interpreter_path(target, force=True)  # --force builds it all the same


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="no system Python of this version")
def test_the_packed_archive_leads_to_the_system_python_as_emr_sees_it(tmp_path):
    import venv_pack

    env = bare_venv(SYSTEM_PYTHON, tmp_path / "environment")
    assert pkg.venv_interpreter(env) == SYSTEM_PYTHON
    archive = str(tmp_path / "env.tar.gz")
    venv_pack.pack(prefix=env, output=archive, verbose=False)
    assert pkg.archive_interpreter(archive) == SYSTEM_PYTHON
    pkg.check_interpreter_path(pkg.archive_interpreter(archive))


def test_the_package_command_refuses_a_pyenv_archive_before_installing_anything(tmp_path):
    if os.path.realpath(sys.executable).startswith("/usr/bin/"):
        pytest.skip("this interpreter is the system's own")
    version = "%d.%d" % sys.version_info[:2]
    out = tmp_path / "dist"
    result = CliRunner().invoke(
        cli, ["package", "--out", str(out), "--python", sys.executable, "--target-python", version]
    )
    assert result.exit_code == 2, result.output
    assert "exists only on this machine" in result.output and "--force" in result.output
    assert not list(out.glob("*.tar.gz")) and list(out.glob("lakehouse_ops-*.whl"))  # the wheel was built


def test_without_a_checkout_package_names_the_options_that_exist(tmp_path, monkeypatch):
    monkeypatch.setattr(pkg, "source_root", lambda: None)  # as installed from a wheel
    result = CliRunner().invoke(cli, ["package", "--out", str(tmp_path), "--no-archive"])
    assert result.exit_code == 2
    assert "--wheel PATH" in result.output and "--source DIR" in result.output
    result = CliRunner().invoke(cli, ["package", "--out", str(tmp_path), "--no-archive", "--source", str(tmp_path)])
    assert result.exit_code == 2 and "is not a checkout of lakehouse-ops" in result.output
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = CliRunner().invoke(cli, ["package", "--out", str(tmp_path), "--no-archive", "--source", checkout])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.glob("lakehouse_ops-*.whl"))
