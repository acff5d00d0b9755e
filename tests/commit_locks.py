"""Commits that hold across the tests' processes: a lock manager for Iceberg's Hadoop catalog.

Production catalogs (Glue, REST, Hive) commit atomically. The local Hadoop catalog commits by "check, then
rename", which on a local file system is only safe within one JVM; tests that run a second writer or several
ingest workers in their own processes need it safe across them. tests/java holds a small LockManager (an OS file
lock per metadata version), compiled here once per source version with the JDK's javac.
"""

import hashlib
import os
import subprocess
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "java", "lakehouseops", "tests", "FileLockManager.java")
CLASS = "lakehouseops.tests.FileLockManager"


def lock_jar():
    """Path of the compiled lock manager jar (built on first use)."""
    from lakehouse_ops.engine.session import iceberg_jars

    with open(SOURCE, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:16]
    out_dir = os.path.join(tempfile.gettempdir(), "lakehouse-ops-tests", digest)
    jar = os.path.join(out_dir, "commit-locks.jar")
    if os.path.exists(jar):
        return jar
    classes = os.path.join(out_dir, "classes")
    os.makedirs(classes, exist_ok=True)
    try:
        subprocess.run(
            ["javac", "--release", "8", "-cp", iceberg_jars()[0], "-d", classes, SOURCE],
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise RuntimeError(
            "javac was not found: the multi-process tests compile %s with the JDK (install "
            "openjdk-17-jdk-headless)" % SOURCE
        ) from None
    except subprocess.CalledProcessError as exc:
        raise RuntimeError("javac could not compile %s:\n%s" % (SOURCE, exc.stderr)) from None
    partial = jar + ".%d" % os.getpid()
    with zipfile.ZipFile(partial, "w") as archive:
        relative = CLASS.replace(".", "/") + ".class"
        archive.write(os.path.join(classes, relative), relative)
    os.replace(partial, jar)
    return jar


def lock_settings(lock_dir):
    """(spark conf, catalog properties) that put every test process's commits under one lock directory."""
    return {"spark.jars": lock_jar()}, {"lock-impl": CLASS, "lock.dir": str(lock_dir)}
