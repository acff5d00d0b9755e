"""`lakehouse-ops package`: the wheel, and a venv-pack archive of a virtualenv holding it and its runtime
dependencies (never pyspark: the cluster provides Spark) for `spark.archives=...#environment`.

The archive holds compiled packages (pydantic-core, pyarrow, numpy, cryptography), so it must be built with the
Python version of the cluster image on a matching platform: Amazon Linux 2023 (or the EMR Serverless base image),
same architecture as the application. The Python check is enforced; the platform is the builder's to choose
(docs/emr-serverless.md shows a container build).
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lakehouse_ops.errors import ConfigError, LakehouseOpsError
from lakehouse_ops.logs import get_logger
from lakehouse_ops.ship.requests import ARCHIVE_ALIAS, archive_settings

log = get_logger("ship.package")


class PackageError(LakehouseOpsError):
    """Building the wheel or the archive failed."""


# Where Python lives in the EMR Serverless image and on EMR on EC2 (Amazon Linux 2023): the archive's bin/python is
# a link to the interpreter that made it, and on the cluster that path must exist.
EMR_PYTHON_DIR = "/usr/bin/"
CONTAINER_BUILD = "docs/emr-serverless.md, step 1 (a build inside the EMR Serverless image)"


def _follow(start: str, readlink: Any, limit: int = 16) -> str:
    """Where a chain of links inside the environment's bin/ ends: the first absolute target (or the last name)."""
    name = start
    for _ in range(limit):
        target = readlink(name)
        if target is None:
            return name
        if os.path.isabs(target):
            return str(target)
        name = os.path.normpath(os.path.join(os.path.dirname(name), target))
    return name


def venv_interpreter(env: str) -> str:
    """The interpreter a virtualenv's bin/python leads to (an absolute path outside the environment)."""
    return _follow(os.path.join(env, "bin", "python"), lambda path: os.readlink(path) if os.path.islink(path) else None)


def archive_interpreter(archive: str) -> str:
    """What bin/python of a packed environment leads to, read from the archive: the path EMR will run."""
    import tarfile

    with tarfile.open(archive) as tar:
        links = {m.name.lstrip("./"): m.linkname for m in tar.getmembers() if m.issym()}
    return _follow("bin/python", links.get)


def check_interpreter_path(target: str, force: bool = False) -> None:
    """Refuse an environment whose bin/python leads to a path EMR does not have (pyenv, conda, a virtualenv)."""
    if target.startswith(EMR_PYTHON_DIR) or force:
        return
    raise ConfigError(
        "the archive's bin/python would lead to %s, which exists only on this machine: on EMR it must be %spython3 "
        "(or python3.N). Build with the image's interpreter (--python /usr/bin/python3) inside the EMR Serverless "
        "image, as in %s; or pass --force" % (target, EMR_PYTHON_DIR, CONTAINER_BUILD)
    )


def source_root() -> Optional[str]:
    """The checkout this package was installed from (editable install), or None for an installed wheel."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return here if os.path.isfile(os.path.join(here, "setup.cfg")) else None


def python_version(interpreter: str) -> str:
    """`major.minor` of a Python interpreter, as it reports it."""
    try:
        out = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError as exc:
        raise ConfigError("cannot run Python interpreter %s: %s" % (interpreter, exc.strerror)) from None
    if out.returncode != 0:
        raise ConfigError("cannot run Python interpreter %s: %s" % (interpreter, out.stderr.strip()[:200]))
    return out.stdout.strip()


def check_python(interpreter: str, target: str, force: bool = False) -> str:
    """The archive's Python must be the cluster's: compiled packages and the venv's interpreter path depend on it."""
    found = python_version(interpreter)
    if found != target and not force:
        raise ConfigError(
            "%s is Python %s but the target is Python %s (ship.python): an archive built with it "
            "would not run on the cluster. Build with a %s interpreter (--python), or pass --force"
            % (interpreter, found, target, target)
        )
    return found


def _run(cmd: List[str], what: str, timeout: float = 1800) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise PackageError("%s failed (%s): %s" % (what, " ".join(cmd[:4]), (proc.stderr or proc.stdout)[-1500:]))
    return proc.stdout


def build_wheel(outdir: str, source: Optional[str] = None) -> str:
    """Build the lakehouse-ops wheel from the checkout into `outdir`; its path."""
    source = source or source_root()
    if source is None:
        raise ConfigError(
            "lakehouse-ops is installed from a wheel here, so there is no checkout to build one from: pass "
            "--wheel PATH (a built lakehouse-ops wheel) or --source DIR (a checkout of lakehouse-ops)"
        )
    if not os.path.isfile(os.path.join(source, "setup.cfg")) and not os.path.isfile(
        os.path.join(source, "pyproject.toml")
    ):
        raise ConfigError("--source %s is not a checkout of lakehouse-ops (no setup.cfg or pyproject.toml)" % source)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", outdir, source], "pip wheel")
    wheels = sorted(glob.glob(os.path.join(outdir, "lakehouse_ops-*.whl")), key=os.path.getmtime)
    if not wheels:
        raise PackageError("pip wheel wrote no lakehouse_ops wheel into %s" % outdir)
    return wheels[-1]


def build_archive(
    wheel: str, output: str, interpreter: str, extras: Sequence[str] = (), force: bool = False
) -> Tuple[str, str]:
    """(path, the interpreter its bin/python leads to) of a venv-pack archive of a fresh virtualenv (made by
    `interpreter`) holding `wheel` and its dependencies. Refused before anything is installed when the
    environment's Python would not exist on EMR (unless `force`), and checked again in the archive."""
    try:
        import venv_pack
    except ImportError:
        raise ConfigError("venv-pack is missing: pip install 'lakehouse-ops[ship]'") from None
    work = tempfile.mkdtemp(prefix="lakehouse-ops-package-")
    try:
        env = os.path.join(work, ARCHIVE_ALIAS)
        _run([interpreter, "-m", "venv", env], "creating the virtualenv")
        check_interpreter_path(venv_interpreter(env), force)
        python = os.path.join(env, "bin", "python")
        target = wheel + ("[%s]" % ",".join(extras) if extras else "")
        _run([python, "-m", "pip", "install", "--quiet", target], "installing the wheel")
        check = _run(
            [python, "-c", "import importlib.util, lakehouse_ops; print(importlib.util.find_spec('pyspark') is None)"],
            "checking the environment",
        )
        if check.strip() != "True":
            raise PackageError("pyspark ended up in the environment; the cluster provides Spark")
        if os.path.exists(output):
            os.remove(output)
        venv_pack.pack(prefix=env, output=output, verbose=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    inside = archive_interpreter(output)
    check_interpreter_path(inside, force)
    return output, inside


def parameters(archive_uri: str) -> Dict[str, Dict[str, str]]:
    """The spark-submit settings that use the archive, for EMR Serverless and for EMR on EC2 (YARN)."""
    return {target: archive_settings(target, archive_uri) for target in ("emr-serverless", "emr")}


def package(
    outdir: str,
    target_python: str,
    interpreter: Optional[str] = None,
    force: bool = False,
    wheel: Optional[str] = None,
    source: Optional[str] = None,
    archive: bool = True,
    artifacts_prefix: Optional[str] = None,
) -> Dict[str, Any]:
    """Build what a cluster needs; returns a report (paths, Python, spark-submit settings)."""
    interpreter = interpreter or sys.executable
    os.makedirs(outdir, exist_ok=True)
    found = check_python(interpreter, target_python, force) if archive else None
    wheel = wheel or build_wheel(outdir, source)
    report: Dict[str, Any] = {"ok": True, "wheel": wheel, "python": found, "target_python": target_python}
    if archive:
        name = "lakehouse-ops-py%s.tar.gz" % (found or target_python).replace(".", "")
        path, inside = build_archive(wheel, os.path.join(outdir, name), interpreter, force=force)
        report["archive"] = path
        report["archive_python"] = inside
        report["archive_bytes"] = os.path.getsize(path)
        uri = "%s/%s" % (artifacts_prefix.rstrip("/"), name) if artifacts_prefix else "s3://YOUR-BUCKET/" + name
        report["spark_submit"] = parameters(uri)
        log.info("archive built", extra={"archive": path, "bytes": report["archive_bytes"], "python": found})
    return report


BOOTSTRAP = """#!/bin/bash
# EMR bootstrap action written by `lakehouse-ops package --upload`: installs lakehouse-ops on every node of the
# cluster (its Python, python3, is the image's: 3.9 on EMR 7.x). Dependencies come from PyPI or the pip mirror the
# nodes are configured with; pyspark is not one of them (the cluster has Spark).
set -euo pipefail
aws s3 cp %(wheel_uri)s /tmp/%(wheel)s
sudo python3 -m pip install --quiet /tmp/%(wheel)s
"""


def upload_built(report: Dict[str, Any], prefix: str, outdir: str, s3: Any = None) -> Dict[str, Any]:
    """Upload what `package` built under `prefix` (keyed by content, as submit keys them) with a bootstrap action
    that installs the wheel on EMR on EC2; the report gains the URIs and the commands that use them."""
    from lakehouse_ops.ship.requests import keyed_uri
    from lakehouse_ops.ship.submit import upload

    wheel = report["wheel"]
    wheel_uri = keyed_uri(prefix, "wheels", wheel)
    script = os.path.join(outdir, "install-lakehouse-ops.sh")
    with open(script, "w") as handle:
        handle.write(BOOTSTRAP % {"wheel_uri": wheel_uri, "wheel": os.path.basename(wheel)})
    uploaded = {"wheel": wheel_uri, "bootstrap_action": keyed_uri(prefix, "bootstrap", script)}
    files = [(wheel, wheel_uri), (script, uploaded["bootstrap_action"])]
    if report.get("archive"):
        uploaded["archive"] = keyed_uri(prefix, "archives", report["archive"])
        files.append((report["archive"], uploaded["archive"]))
        report["spark_submit"] = parameters(uploaded["archive"])
    upload(files, s3)
    report["uploaded"] = uploaded
    # RunJobFlow's BootstrapActions entry (boto3, CloudFormation and Terraform spell it alike).
    report["bootstrap_action"] = {
        "Name": "install lakehouse-ops",
        "ScriptBootstrapAction": {"Path": uploaded["bootstrap_action"]},
    }
    report["commands"] = {
        "emr_on_ec2": "aws emr create-cluster ... --bootstrap-actions Path=%s,Name=lakehouse-ops"
        % uploaded["bootstrap_action"]
    }
    if "archive" in uploaded:
        report["commands"]["emr_serverless"] = (
            "lakehouse-ops --config CONFIG submit --target emr-serverless --job JOB --archive %s" % uploaded["archive"]
        )
    return report
