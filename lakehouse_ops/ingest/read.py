"""Reading a batch's objects with Spark, in one job, under the target table's schema.

Columns are matched by name in every format (names.py). Records that do not fit the schema carry their raw text in
`_corrupt_record` (quarantined, or their file dead-lettered without a quarantine table); an object that is missing
or cannot be read is reported with the reason and the rest of the batch goes on.
"""

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Dict, List, Mapping, Set, Tuple

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.errors import ConfigError, without_values
from lakehouse_ops.ingest.csvread import has_header, load_csv
from lakehouse_ops.ingest.evolve import CORRUPT
from lakehouse_ops.ingest.formats import load_avro
from lakehouse_ops.ingest.jsonread import load_json
from lakehouse_ops.ingest.rescue import load_declared_rescued
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


@dataclass
class Files:
    """What one read loads: the paths, each CSV file's header (csvread), and the JSON keys' spellings seen."""

    paths: List[str]
    headers: Dict[str, List[str]] = field(default_factory=dict)  # path -> its header's names
    spellings: Set[str] = field(default_factory=set)


def inference_reader(spark: Any, cfg: IngestConfig) -> Any:
    """A reader of the configured format and options with no schema: Spark infers one from the files."""
    return spark.read.format(cfg.format).options(**RAW_LOCAL_FILES).options(**cfg.read_options)


def _json_lines(cfg: IngestConfig) -> bool:
    return cfg.format == "json" and str(cfg.read_options.get("multiLine", "false")).lower() != "true"


def load(spark: Any, cfg: IngestConfig, schema: Any, files: Files) -> Any:
    """Lazily read `files` (local or s3 URIs) into the target's columns by name, plus `_corrupt_record` (the text
    of a misfit record; null where the format has none) and `_lakehouse_ops_file`, the file as Spark reports it.
    Reads are permissive: a misfit record never fails the read (the batch decides what becomes of its file)."""
    from pyspark.sql import functions as F

    escaped = [glob_escape(p) for p in files.paths]
    rescue = cfg.schema_evolution == "rescue"
    if _json_lines(cfg):
        return load_json(spark, cfg, schema, escaped, files.spellings, RAW_LOCAL_FILES)
    if cfg.format == "csv":
        if has_header(cfg):
            headers = {glob_escape(p): files.headers[p] for p in files.paths}
        else:  # no header: the target's columns in order, by position
            headers = {p: [f.name for f in schema.fields] for p in escaped}
        return load_csv(spark, cfg, schema, headers, cfg.pseudonymize is not None, RAW_LOCAL_FILES)
    if rescue and cfg.format in ("parquet", "avro"):
        df = load_declared_rescued(spark, cfg, schema, escaped, RAW_LOCAL_FILES)
    elif cfg.format == "avro":
        df = load_avro(spark, schema, escaped, RAW_LOCAL_FILES)
    else:  # Parquet (names resolved regardless of case), multi-line JSON
        reader = spark.read.format(cfg.format).options(**RAW_LOCAL_FILES).schema(schema)
        df = reader.options(**cfg.read_options).load(escaped)
        df = df.selectExpr("*", "_metadata.file_path AS _lakehouse_ops_file")
    return df.withColumn(CORRUPT, F.lit(None).cast("string"))


def spark_spellings(uri: str) -> List[str]:
    """The ways Spark may spell a qualified file URI in _metadata.file_path (local files: file:/ or file:///)."""
    if uri.startswith("file:///"):
        return [uri, "file:/" + uri[len("file:///") :]]
    if uri.startswith("file:/"):
        return [uri, "file:///" + uri[len("file:/") :]]
    return [uri]


def find_unreadable(spark: Any, cfg: IngestConfig, schema: Any, located: Located, files: Files) -> Reasons:
    """After a failed batch read: {identity: reason} for the files that fail on their own, each read in full
    (a count would not decode its values). Reasons of a target with pseudonymized columns quote no value."""
    unreadable: Reasons = {}
    for identity, (path, _) in located.items():
        one = Files([path], {path: files.headers[path]} if path in files.headers else {}, files.spellings)
        try:
            load(spark, cfg, schema, one).write.format("noop").mode("overwrite").save()
        except Exception as exc:
            unreadable[identity] = reason(exc, cfg.pseudonymize is not None)
    return unreadable


def reason(exc: BaseException, protected: bool) -> str:
    """Why a file could not be read, in one line (no quoted values when the target holds protected ones)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if "Exception:" in line or "Error:" in line), lines[0] if lines else "")
    text = "unreadable: %s" % detail[:500]
    return without_values(text) if protected else text
