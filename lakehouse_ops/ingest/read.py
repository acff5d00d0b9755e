"""Reading a batch's objects with Spark, in one job, under the target table's schema.

Records that do not fit the schema are split off for quarantine (raw text, source, reason); an object that is
missing or cannot be read is reported with the reason and the rest of the batch goes on.
"""
import importlib
import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from lakehouse_ops.engine.fs import stat
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.logs import get_logger

log = get_logger("ingest.read")
CORRUPT = "_corrupt_record"
_GLOB_CHARS = "\\*?[]{}"


def local_uri(uri, uri_map):
    """Apply the config's uri_map (longest prefix first): s3://landing/... -> file:///data/landing/..."""
    for prefix in sorted(uri_map, key=len, reverse=True):
        if uri.startswith(prefix):
            target = uri_map[prefix]
            if "://" not in target:
                target = "file://" + os.path.abspath(target)
            return target.rstrip("/") + "/" + uri[len(prefix):].lstrip("/")
    return uri


def glob_escape(path):
    """Spark treats load paths as globs; object keys may hold glob characters."""
    return "".join("\\" + ch if ch in _GLOB_CHARS else ch for ch in path)


def _normal(path):
    """Spark reports file paths URI-encoded and with file:/ rather than file:///; compare on one spelling."""
    text = unquote(path)
    if text.startswith("file:"):
        text = "/" + text[len("file:"):].lstrip("/")
    return text


def load_function(dotted):
    """`package.module.function` or `package.module:function` -> the function."""
    module_name, _, attr = dotted.replace(":", ".").rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError("ingest.enrichment '%s' cannot be imported: %s" % (dotted, exc)) from None


def data_schema(spark, target_ref, meta_columns):
    """The target's schema without the columns the job adds itself."""
    from pyspark.sql.types import StructType
    return StructType([f for f in spark.table(target_ref).schema.fields if f.name not in meta_columns])


def _reader(spark, cfg, schema):
    from pyspark.sql.types import StringType, StructField, StructType
    reader = spark.read.format(cfg.format)
    if cfg.format in ("json", "csv"):
        schema = StructType(list(schema.fields) + [StructField(CORRUPT, StringType())])
        reader = reader.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
    reader = reader.schema(schema)
    for key, value in cfg.read_options.items():
        reader = reader.option(key, value)
    return reader


def _load(spark, cfg, schema, paths):
    df = _reader(spark, cfg, schema).load([glob_escape(p) for p in paths])
    return df.selectExpr("*", "_metadata.file_path AS _lakehouse_ops_file")


def existing(spark, objects, uri_map, threads=8):
    """Split {identity: S3Object} into ({identity: local uri} that exist, {identity: reason} missing).

    The checks are metadata calls (HEAD on S3), made from a few threads at once.
    """
    def check(item):
        identity, obj = item
        path = local_uri(obj.uri, uri_map)
        try:
            present = stat(spark, path)
        except Exception as exc:
            return identity, None, "cannot check %s: %s" % (obj.uri, str(exc).splitlines()[0])
        if present is None:
            return identity, None, "object %s does not exist" % obj.uri
        return identity, path, None

    found, missing = {}, {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for identity, path, problem in pool.map(check, list(objects.items())):
            if problem is None:
                found[identity] = path
            else:
                missing[identity] = problem
    return found, missing


def read_batch(spark, cfg, schema, paths):
    """Read `paths` ({identity: local uri}) in one job.

    Returns (cached DataFrame with the data columns, the corrupt-record column for text formats and the file
    column, {identity: reason} for objects that could not be read). The caller unpersists the DataFrame.
    """
    from pyspark import StorageLevel
    unreadable = {}
    readable = dict(paths)
    while readable:
        df = _load(spark, cfg, schema, list(readable.values())).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            df.count()
            return df, file_map(df, readable), unreadable
        except Exception as exc:
            df.unpersist()
            if len(readable) == 1:
                identity = next(iter(readable))
                unreadable[identity] = _reason(exc)
                readable = {}
                break
            # Find the culprits one file at a time, then read the rest together again.
            log.warning("batch read failed; checking objects one by one", extra={"objects": len(readable)})
            for identity, path in list(readable.items()):
                try:
                    _load(spark, cfg, schema, [path]).count()
                except Exception as one:
                    unreadable[identity] = _reason(one)
                    del readable[identity]
            if len(unreadable) == 0:
                raise
    return None, {}, unreadable


def file_map(df, paths):
    """{file path as Spark reports it: identity} for the files a DataFrame read."""
    by_normal = {_normal(p): identity for identity, p in paths.items()}
    out = {}
    for row in df.select("_lakehouse_ops_file").distinct().collect():
        identity = by_normal.get(_normal(row[0]))
        if identity is not None:
            out[row[0]] = identity
    return out


def _reason(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if "Exception:" in line or "Error:" in line), lines[0] if lines else "")
    return "unreadable: %s" % detail[:500]
