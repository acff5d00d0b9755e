"""Reading a batch's objects with Spark, in one job, under the target table's schema.

Records that do not fit the schema carry their raw text in `_corrupt_record` (for quarantine); an object that is
missing or cannot be read is reported with the reason and the rest of the batch goes on.
"""

import importlib
import os
from typing import Any, Callable, Collection, Dict, Iterable, List, Mapping, Tuple

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.ingest.evolve import CORRUPT
from lakehouse_ops.ingest.formats import load_avro
from lakehouse_ops.ingest.rescue import load_declared_rescued, load_rescued, rescue_csv
from lakehouse_ops.logs import get_logger
from lakehouse_ops.paths import glob_escape

log = get_logger("ingest.read")
RAW_LOCAL_FILES = {"fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem", "fs.file.impl.disable.cache": "true"}
# identity -> (the path Spark loads, the file's qualified URI); identity -> why an object is not used
Located = Dict[str, Tuple[str, str]]
Reasons = Dict[str, str]


def local_uri(uri: str, uri_map: Mapping[str, str]) -> str:
    """Apply the config's uri_map (longest prefix first): s3://landing/... -> file:///data/landing/..."""
    for prefix in sorted(uri_map, key=len, reverse=True):
        if uri.startswith(prefix):
            target = uri_map[prefix]
            if "://" not in target:
                target = "file://" + os.path.abspath(target)
            return target.rstrip("/") + "/" + uri[len(prefix) :].lstrip("/")
    return uri


def load_function(dotted: str) -> Callable[..., Any]:
    """`package.module.function` or `package.module:function` -> the function."""
    module_name, _, attr = dotted.replace(":", ".").rpartition(".")
    try:
        function: Callable[..., Any] = getattr(importlib.import_module(module_name), attr)
        return function
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError("ingest.enrichment '%s' cannot be imported: %s" % (dotted, exc)) from None


def data_schema(spark: Any, target_ref: str, meta_columns: Collection[str]) -> Any:
    """The target's schema without the columns the job adds itself."""
    from pyspark.sql.types import StructType

    return StructType([f for f in spark.table(target_ref).schema.fields if f.name not in meta_columns])


def _reader(spark: Any, cfg: IngestConfig, schema: Any, quarantine: bool) -> Any:
    from pyspark.sql.types import StringType, StructField, StructType

    # Local files through the raw filesystem: the checksumming one builds `.<name>.crc` paths that Hadoop cannot
    # parse for names holding ':' (a key S3 allows). Only this read's Hadoop settings change.
    reader = spark.read.format(cfg.format).options(**RAW_LOCAL_FILES)
    if cfg.format in ("json", "csv"):
        if quarantine:
            schema = StructType(list(schema.fields) + [StructField(CORRUPT, StringType())])
            reader = reader.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
        else:
            # No quarantine table: a record that does not fit makes its file unreadable (and dead-lettered).
            reader = reader.option("mode", "FAILFAST")
    reader = reader.schema(schema)
    for key, value in cfg.read_options.items():
        reader = reader.option(key, value)
    return reader


def inference_reader(spark: Any, cfg: IngestConfig) -> Any:
    """A reader of the configured format and options with no schema: Spark infers one from the files."""
    return spark.read.format(cfg.format).options(**RAW_LOCAL_FILES).options(**cfg.read_options)


def load(spark: Any, cfg: IngestConfig, schema: Any, paths: Iterable[str], quarantine: bool = True) -> Any:
    """Lazily read `paths` (local or s3 URIs); adds `_lakehouse_ops_file`, the file as Spark reports it."""
    escaped = [glob_escape(p) for p in paths]
    rescue = cfg.schema_evolution == "rescue"
    if rescue and cfg.format == "json":
        return load_rescued(spark, cfg, schema, escaped, quarantine, RAW_LOCAL_FILES)
    if rescue and cfg.format in ("parquet", "avro"):
        return load_declared_rescued(spark, cfg, schema, escaped, RAW_LOCAL_FILES)
    if cfg.format == "avro":
        return load_avro(spark, schema, escaped, RAW_LOCAL_FILES)
    # CSV with rescue reads permissively: the values that do not fit are rescued from each record's line.
    df = _reader(spark, cfg, schema, quarantine or rescue).load(escaped)
    df = df.selectExpr("*", "_metadata.file_path AS _lakehouse_ops_file")
    return rescue_csv(df, cfg, schema) if rescue else df


def spark_spellings(uri: str) -> List[str]:
    """The ways Spark may spell a qualified file URI in _metadata.file_path (local files: file:/ or file:///)."""
    if uri.startswith("file:///"):
        return [uri, "file:/" + uri[len("file:///") :]]
    if uri.startswith("file:/"):
        return [uri, "file:///" + uri[len("file:/") :]]
    return [uri]


def find_unreadable(spark: Any, cfg: IngestConfig, schema: Any, paths: Located, quarantine: bool = True) -> Reasons:
    """After a failed batch read: {identity: reason} for the files that fail on their own."""
    unreadable: Reasons = {}
    for identity, (path, _) in paths.items():
        try:
            load(spark, cfg, schema, [path], quarantine).count()
        except Exception as exc:
            unreadable[identity] = _reason(exc)
    return unreadable


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if "Exception:" in line or "Error:" in line), lines[0] if lines else "")
    return "unreadable: %s" % detail[:500]
