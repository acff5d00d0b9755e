"""The one function that builds every SparkSession, and the catalog settings it applies.

local mode: local[*], Iceberg's SQL extensions, the Iceberg runtime jar from Maven Central (engine/jars.py).
cluster mode: the cluster's own Spark and Iceberg (EMR `iceberg.enabled`, or the EMR Serverless jar); only the
catalog configuration is added.
"""

import os
import shutil
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional

from lakehouse_ops.aws.clients import catalog_endpoint_properties, endpoint_url
from lakehouse_ops.engine.jars import hadoop_aws, iceberg_aws, iceberg_runtime, jars
from lakehouse_ops.errors import EngineError
from lakehouse_ops.logs import get_logger

log = get_logger("engine")

EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"

# Hadoop's S3 filesystem for local runs that read s3:// (spark.local_s3; jars.hadoop_aws). On EMR, EMRFS reads
# s3:// and none of this applies.
S3A = "org.apache.hadoop.fs.s3a.S3AFileSystem"

# Spark hides the values of settings (and environment variables) whose names match this in its UI, event logs and
# logged configuration: Spark's own pattern, plus the API keys the library reads from executors' environments.
REDACTION = r"(?i)secret|password|token|access[.]?key|api[._-]?key|credential"

# Settings that make a 2-core laptop or CI machine usable; any of them can be overridden in `spark.conf`.
LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


# S3FileIO retries throttling (503 SlowDown) with backoff from 2 s to 20 s, 5 times by default: a maintenance job's
# bulk reads and deletes on a busy prefix meet more than that. The catalog's own `s3.retry.num-retries` wins.
S3FILEIO_RETRIES = 10


def catalog_conf(catalog: Any, endpoint: Optional[str] = None) -> Dict[str, str]:
    """spark.sql.catalog.<name>.* settings for a CatalogConfig (AWS calls to `endpoint`, default: the endpoint
    override of this process, if any)."""
    prefix = "spark.sql.catalog." + catalog.name
    conf = {prefix: "org.apache.iceberg.spark.SparkCatalog"}
    if catalog.type == "hadoop":
        conf[prefix + ".type"] = "hadoop"
        conf[prefix + ".warehouse"] = _warehouse_uri(catalog.warehouse)
    elif catalog.type == "glue":
        conf[prefix + ".catalog-impl"] = "org.apache.iceberg.aws.glue.GlueCatalog"
        conf[prefix + ".io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
        conf[prefix + ".warehouse"] = catalog.warehouse
        conf[prefix + ".s3.retry.num-retries"] = str(S3FILEIO_RETRIES)
    elif catalog.type == "rest":
        conf[prefix + ".type"] = "rest"
        conf[prefix + ".uri"] = catalog.uri
        if catalog.warehouse:
            conf[prefix + ".warehouse"] = catalog.warehouse
    elif catalog.type == "hive":
        conf[prefix + ".type"] = "hive"
        conf[prefix + ".uri"] = catalog.uri
        if catalog.warehouse:
            conf[prefix + ".warehouse"] = catalog.warehouse
    # The AWS endpoint override (aws.endpoint_url / LAKEHOUSE_OPS_AWS_ENDPOINT_URL), then the catalog's own
    # properties, which win over it.
    for key, value in dict(catalog_endpoint_properties(catalog.type, endpoint), **catalog.properties).items():
        conf["%s.%s" % (prefix, key)] = value
    return conf


def _warehouse_uri(warehouse: str) -> str:
    if "://" in warehouse:
        return warehouse
    return os.path.abspath(warehouse)


def local_spark_version() -> str:
    """The installed pyspark's version (the local Spark a session starts)."""
    import pyspark

    return str(pyspark.__version__)


def iceberg_jars() -> List[str]:
    """The Iceberg runtime jar local Spark runs with (for its Spark line, from Maven Central or its cache)."""
    return jars([iceberg_runtime(local_spark_version())])


def check_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.isfile(os.path.join(java_home, "bin", "java")):
        return
    if shutil.which("java"):
        return
    raise EngineError(
        "Java was not found: Spark needs Java 17 (or 8/11). Install it (e.g. apt-get install "
        "openjdk-17-jre-headless) and put it on PATH or set JAVA_HOME"
    )


def session_conf(config: Any, mode: Optional[str] = None, submitted: bool = False) -> Dict[str, str]:
    """Every Spark setting the builder would apply, as a dict (used by submit and tests too). `submitted`: for a
    run on EMR: an endpoint override reaches it only when the config itself names one (`aws.endpoint_url`), never
    from this process's environment (a proxy or local moto set there is no endpoint for the cluster)."""
    mode = mode or config.spark.mode
    conf: Dict[str, str] = {}
    if mode == "local":
        conf.update(LOCAL_DEFAULTS)
        aws = config.spark.local_s3 or config.catalog.type == "glue"
        aws_jars = list(hadoop_aws(local_spark_version())) + list(iceberg_aws())
        local_jars = iceberg_jars() + (jars(aws_jars) if aws else [])
        conf["spark.jars"] = ",".join(local_jars)
        conf["spark.pyspark.python"] = sys.executable
        if config.spark.local_s3:
            conf["spark.hadoop.fs.s3.impl"] = S3A
    conf["spark.sql.extensions"] = EXTENSIONS
    conf["spark.redaction.regex"] = REDACTION
    endpoint = (config.aws.endpoint_url if config.aws is not None else None) if submitted else endpoint_url()
    if endpoint:  # s3:// and s3a:// paths read through Hadoop (ingest, file lists) go there too
        conf.update({"spark.hadoop.fs.s3a.endpoint": endpoint, "spark.hadoop.fs.s3a.path.style.access": "true"})
        if endpoint.startswith("http://"):
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false"
    conf.update(catalog_conf(config.catalog, endpoint or ""))
    return merge_conf(conf, config.spark.conf)


# Comma-separated lists: a user's value adds to what the library needs (the Iceberg jar and extensions) instead
# of replacing it, so `spark.jars: my.jar` never silently drops Iceberg.
LIST_SETTINGS = (
    "spark.jars",
    "spark.jars.packages",
    "spark.sql.extensions",
    "spark.submit.pyFiles",
    "spark.archives",
    "spark.files",
)


def merge_conf(base: Mapping[str, str], overrides: Mapping[str, str]) -> Dict[str, str]:
    """`base` updated with `overrides`, list-valued settings merged (base entries first, no duplicates); a user's
    redaction pattern adds to the library's instead of replacing it."""
    merged = dict(base)
    for key, value in overrides.items():
        if key == "spark.redaction.regex" and merged.get(key) and value != merged[key]:
            merged[key] = "%s|%s" % (merged[key], value)
        elif key in LIST_SETTINGS and merged.get(key):
            entries = [e.strip() for e in (merged[key] + "," + value).split(",") if e.strip()]
            merged[key] = ",".join(dict.fromkeys(entries))
        else:
            merged[key] = value
    return merged


def build_session(config: Any, mode: Optional[str] = None) -> Any:
    """Build (or join) the SparkSession for this config."""
    mode = mode or config.spark.mode
    conf = session_conf(config, mode)
    if mode == "local":
        check_java()
        # Python workers must run this interpreter (its virtualenv has pyarrow, pandas and lakehouse_ops), not
        # whatever `python3` comes first on PATH; PySpark reads the variable when the context starts.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError(
            "pyspark is not installed: on EMR it is provided by the cluster; locally install "
            "pip install 'lakehouse-ops[local]'"
        ) from None
    builder = SparkSession.builder.appName(config.spark.app_name)
    if mode == "local":
        builder = builder.master(config.spark.master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        raise EngineError(
            "Spark did not start (%s). Check that Java 17 is installed and JAVA_HOME points at it"
            % str(exc).splitlines()[0]
        ) from exc
    if mode == "cluster":
        # getOrCreate may return a session started by spark-submit; catalog settings are runtime-settable.
        for key, value in catalog_conf(config.catalog).items():
            spark.conf.set(key, value)
    # Locally, Iceberg's retried-commit warnings would bury the report; on a cluster they belong in the logs.
    default_level = "ERROR" if mode == "local" else "WARN"
    spark.sparkContext.setLogLevel(os.environ.get("LAKEHOUSE_OPS_SPARK_LOG_LEVEL", default_level))
    log.info(
        "spark session ready", extra={"mode": mode, "catalog": config.catalog.name, "catalog_type": config.catalog.type}
    )
    return spark


class LazySession:
    """The SparkSession a job was handed, or one built the first time it is needed (healthy tables and empty
    queues never start Spark)."""

    def __init__(self, config: Any, spark: Any = None, factory: Optional[Callable[[], Any]] = None) -> None:
        self.config = config
        self._spark = spark
        self._factory = factory

    @property
    def started(self) -> bool:
        """A session was handed in or has been built."""
        return self._spark is not None

    def get(self) -> Any:
        if self._spark is None:
            self._spark = self._factory() if self._factory is not None else build_session(self.config)
        return self._spark
