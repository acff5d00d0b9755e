"""Jars local Spark needs beyond pyspark's own, by Maven coordinates: taken from Maven Central as Spark users
take them, pinned, checked against the SHA-1 Maven Central publishes, and cached between runs (never part of the
project). A local Maven repository (~/.m2) that already holds a jar is used as it is.

Spark's own `spark.jars.packages` would resolve them too, but prints its resolution on standard output, where a
job's `--json` report goes.
"""

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from lakehouse_ops.errors import EngineError
from lakehouse_ops.logs import get_logger

log = get_logger("engine.jars")

Coordinate = Tuple[str, str, str]  # group, artifact, version
REPOSITORY = "https://repo1.maven.org/maven2"
ICEBERG_VERSION_ENV = "LAKEHOUSE_OPS_ICEBERG_VERSION"  # another Iceberg release for local Spark (1.10.0, 1.11.0)


class SparkLine(NamedTuple):
    iceberg_artifact: str
    iceberg_version: str  # the default here
    hadoop_aws: Tuple[Coordinate, ...]


# Per Spark line, as EMR runs them (7.x: Spark 3.5 and Scala 2.12; the EMR 8 line, emr-spark-8.x: Spark 4.0 and
# Scala 2.13): Iceberg's Spark runtime (it holds the SQL extensions, GlueCatalog and S3FileIO; on EMR the runtime's
# own Iceberg is used instead) and its default version here; Hadoop's S3 filesystem for pyspark's Hadoop client
# (3.3.4 in pyspark 3.5, 3.4.1 in pyspark 4.0) with the AWS SDK bundle it was built with.
SPARK_LINES: Dict[str, SparkLine] = {
    "3.5": SparkLine(
        "iceberg-spark-runtime-3.5_2.12",
        "1.10.2",
        (("org.apache.hadoop", "hadoop-aws", "3.3.4"), ("com.amazonaws", "aws-java-sdk-bundle", "1.12.262")),
    ),
    "4.0": SparkLine(
        "iceberg-spark-runtime-4.0_2.13",
        "1.10.1",
        (("org.apache.hadoop", "hadoop-aws", "3.4.1"), ("software.amazon.awssdk", "bundle", "2.24.6")),
    ),
}
# The AWS SDK v2 Iceberg's GlueCatalog and S3FileIO need (its runtime jar holds them, not the SDK), of the Iceberg
# release in use; 1.10.1 is the newest bundle published for the 1.10 line (emr-spark-8.0.0 runs 1.10.1).
ICEBERG_AWS_DEFAULT = "1.10.1"


def spark_line(spark_version: str) -> str:
    """ "3.5" or "4.0" for a pyspark version; another line is refused, naming the ones that run here."""
    line = ".".join(spark_version.split(".")[:2])
    if line not in SPARK_LINES:
        raise EngineError(
            "local Spark %s: lakehouse-ops runs local Spark %s (EMR 7.x and the EMR 8 line)"
            % (spark_version, " or ".join(sorted(SPARK_LINES)))
        )
    return line


def chosen_iceberg() -> Optional[str]:
    """The Iceberg release LAKEHOUSE_OPS_ICEBERG_VERSION asks for (None: the line's default); one that is no
    release number is refused, naming the variable."""
    version = (os.environ.get(ICEBERG_VERSION_ENV) or "").strip()
    if version and not re.match(r"^\d+\.\d+\.\d+$", version):
        raise EngineError("%s=%r is no Iceberg release (e.g. 1.10.1)" % (ICEBERG_VERSION_ENV, version))
    return version or None


def iceberg_runtime(spark_version: str) -> Coordinate:
    line = SPARK_LINES[spark_line(spark_version)]
    return ("org.apache.iceberg", line.iceberg_artifact, chosen_iceberg() or line.iceberg_version)


def hadoop_aws(spark_version: str) -> Sequence[Coordinate]:
    return SPARK_LINES[spark_line(spark_version)].hadoop_aws


def iceberg_aws() -> Sequence[Coordinate]:
    version = chosen_iceberg()
    bundled = ICEBERG_AWS_DEFAULT if not version or version.startswith("1.10.") else version
    return (("org.apache.iceberg", "iceberg-aws-bundle", bundled),)


def installed_spark_version() -> str:
    """The installed pyspark's version ("3.5.x" where none is installed: the default line)."""
    try:
        import pyspark
    except ImportError:
        return "3.5.0"
    return str(pyspark.__version__)


def cache_dir() -> str:
    return os.environ.get("LAKEHOUSE_OPS_JAR_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "lakehouse-ops", "jars"
    )


def _relative(coordinate: Coordinate) -> str:
    group, artifact, version = coordinate
    return "%s/%s/%s/%s-%s.jar" % (group.replace(".", "/"), artifact, version, artifact, version)


def _sha1(path: str) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as answer:
            for chunk in iter(lambda: answer.read(1 << 20), b""):
                out.write(chunk)
        with urllib.request.urlopen(url + ".sha1", timeout=60) as answer:
            expected = answer.read().decode("ascii").split()[0].strip().lower()
        if _sha1(partial) != expected:
            raise EngineError("%s does not match its published SHA-1: not used" % url)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def jar(coordinate: Coordinate) -> str:
    """The local path of a jar: from ~/.m2, the cache, or Maven Central (into the cache)."""
    relative = _relative(coordinate)
    local_maven = os.path.join(os.path.expanduser("~"), ".m2", "repository", relative)
    if os.path.isfile(local_maven):
        return local_maven
    cached = os.path.join(cache_dir(), relative)
    if not os.path.isfile(cached):
        repository = os.environ.get("LAKEHOUSE_OPS_MAVEN_REPOSITORY", REPOSITORY).rstrip("/")
        log.info("fetching a jar", extra={"jar": ":".join(coordinate), "from": repository})
        try:
            _download("%s/%s" % (repository, relative), cached)
        except urllib.error.HTTPError as exc:
            chosen = chosen_iceberg()
            why = (
                " (%s=%s chose this Iceberg release: it has no build of %s)"
                % (ICEBERG_VERSION_ENV, chosen, coordinate[1])
                if exc.code == 404 and chosen and coordinate[0] == "org.apache.iceberg"
                else ""
            )
            raise EngineError("cannot fetch %s from %s (%s)%s" % (":".join(coordinate), repository, exc, why)) from None
        except OSError as exc:
            raise EngineError(
                "cannot fetch %s from %s (%s): local Spark needs it; reach Maven Central, set "
                "LAKEHOUSE_OPS_MAVEN_REPOSITORY to a mirror, or put the jar in ~/.m2"
                % (":".join(coordinate), repository, exc)
            ) from None
    return cached


def jars(coordinates: Sequence[Coordinate]) -> List[str]:
    return [jar(c) for c in coordinates]
