"""Amazon S3 Inventory reports as S3 delivers them: the `manifest.json` (format, schema, creation time, data
files) and its data files (CSV, gzipped or not; ORC; Parquet), as rows of the current objects (the latest
version, not a delete marker) with bucket, key (URL-decoded where the report encodes it), size, ETag, last
modified and version id. `ingest reconcile` reads the rows here; orphan removal reads the same files with Spark
by the same columns and rule (`current_sql`)."""

import gzip
import io
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote_plus

from lakehouse_ops.errors import LakehouseOpsError

# Inventory field names (a CSV report's fileSchema) -> the columns Parquet and ORC reports use.
FIELDS = {
    "Bucket": "bucket",
    "Key": "key",
    "VersionId": "version_id",
    "IsLatest": "is_latest",
    "IsDeleteMarker": "is_delete_marker",
    "Size": "size",
    "LastModifiedDate": "last_modified_date",
    "ETag": "e_tag",
}
FORMATS = ("CSV", "ORC", "Parquet")


def current_sql(columns: Any) -> str:
    """SQL over a report's `columns`: the row is a current object (an all-versions report also lists older
    versions and delete markers; a current-versions report has neither column)."""
    parts = []
    if "is_latest" in columns:
        parts.append("coalesce(CAST(is_latest AS BOOLEAN), true)")
    if "is_delete_marker" in columns:
        parts.append("NOT coalesce(CAST(is_delete_marker AS BOOLEAN), false)")
    return " AND ".join(parts) or "true"


class InventoryError(LakehouseOpsError):
    pass


@dataclass(frozen=True)
class Manifest:
    uri: str  # where the manifest.json was read
    file_format: str  # CSV, ORC or Parquet
    columns: Tuple[str, ...]  # CSV: the columns in order (Parquet and ORC files carry their own)
    created_ms: Optional[int]  # when S3 began the report (the listing describes storage then); None: not said
    data_uris: Tuple[str, ...]  # the data files, where this process reads them

    @property
    def keys_encoded(self) -> bool:
        """CSV reports URL-encode object keys; ORC and Parquet reports do not."""
        return self.file_format == "CSV"

    def age_hours(self, now_ms: int) -> Optional[float]:
        return None if self.created_ms is None else (now_ms - self.created_ms) / 3_600_000.0


def local_data_path(manifest_path: str, key: str) -> str:
    """A data file of a report copied to local disk as S3 lays it out (`<config>/<date>/manifest.json` beside
    `<config>/data/<file>`, e.g. by `aws s3 sync`)."""
    here = os.path.dirname(os.path.abspath(manifest_path))
    cut = key.rfind("data/")
    tail = key[cut:] if cut == 0 or (cut > 0 and key[cut - 1] == "/") else os.path.basename(key)
    tried = [os.path.join(os.path.dirname(here), tail), os.path.join(here, tail)]
    for path in tried:
        if os.path.exists(path):
            return path
    raise InventoryError(
        "the S3 Inventory data file %s named by %s is not on local disk (looked at %s)"
        % (key, manifest_path, " and ".join(tried))
    )


def parse_manifest(data: bytes, uri: str, locate: Callable[[str, str], str]) -> Manifest:
    """The manifest read from `data`; `locate(bucket, key)` says where this process reads a data file."""
    try:
        manifest = json.loads(data)
        file_format = manifest["fileFormat"]
        destination = manifest["destinationBucket"].split(":::")[-1]
        keys = [entry["key"] for entry in manifest["files"]]
        created = manifest.get("creationTimestamp")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InventoryError("%s is not an S3 Inventory manifest.json (%s)" % (uri, exc)) from None
    if file_format not in FORMATS:
        raise InventoryError("%s: S3 Inventory format %r is not one of %s" % (uri, file_format, ", ".join(FORMATS)))
    if created is not None and not (str(created).isascii() and str(created).isdigit()):
        raise InventoryError("%s: creationTimestamp %r is not a time in milliseconds" % (uri, created))
    columns: Tuple[str, ...] = ()
    if file_format == "CSV":
        columns = tuple(FIELDS.get(f.strip(), f.strip()) for f in str(manifest.get("fileSchema", "")).split(","))
        if "key" not in columns or "bucket" not in columns:
            raise InventoryError("%s: the CSV report's fileSchema names no Bucket and Key columns" % uri)
    when = int(created) if created is not None else None
    return Manifest(uri, file_format, columns, when, tuple(locate(destination, key) for key in keys))


def load_manifest(uri: str, read: Callable[[str], bytes], map_s3: Optional[Callable[[str], str]] = None) -> Manifest:
    """The manifest at `uri` (s3:// or a local path). Its data files are read where the manifest was: on S3
    (through `map_s3` when given, e.g. ingest's uri_map), or beside a local copy."""
    try:
        data = read(uri)
    except (OSError, LakehouseOpsError) as exc:
        raise InventoryError("cannot read the S3 Inventory manifest %s: %s" % (uri, exc)) from None
    if uri.startswith(("s3://", "s3a://", "s3n://")):
        mapped = map_s3 or (lambda u: u)
        return parse_manifest(data, uri, lambda bucket, key: mapped("s3://%s/%s" % (bucket, key)))
    return parse_manifest(data, uri, lambda _bucket, key: local_data_path(uri, key))


def _records(data: bytes, uri: str, manifest: Manifest) -> List[Dict[str, Any]]:
    import pyarrow.csv as pacsv

    if manifest.file_format == "CSV":
        if uri.endswith(".gz"):
            data = gzip.decompress(data)
        if not data.strip():
            return []  # a report file without a row (a prefix with no object)
        names = list(manifest.columns)
        options = pacsv.ReadOptions(column_names=names)
        convert = pacsv.ConvertOptions(column_types={n: "string" for n in names})
        rows: List[Dict[str, Any]] = pacsv.read_csv(
            io.BytesIO(data), read_options=options, convert_options=convert
        ).to_pylist()
        return rows
    if manifest.file_format == "ORC":
        import pyarrow.orc as orc

        return list(orc.ORCFile(io.BytesIO(data)).read().to_pylist())
    import pyarrow.parquet as pq

    return list(pq.read_table(io.BytesIO(data)).to_pylist())


def _true(value: Optional[Any], default: bool) -> bool:
    if value is None or value == "":
        return default
    return str(value).lower() == "true"


def current_objects(manifest: Manifest, read: Callable[[str], bytes]) -> Iterator[Dict[str, Any]]:
    """Rows {bucket, key, size, etag, modified, version} of the current objects in the report."""
    for uri in manifest.data_uris:
        try:
            records = _records(read(uri), uri, manifest)
        except (OSError, ValueError, LakehouseOpsError) as exc:
            raise InventoryError("cannot read the S3 Inventory data file %s: %s" % (uri, exc)) from None
        for row in records:
            if not _true(row.get("is_latest"), True) or _true(row.get("is_delete_marker"), False):
                continue
            key = str(row["key"])
            yield {
                "bucket": row["bucket"],
                "key": unquote_plus(key) if manifest.keys_encoded else key,
                "size": int(row.get("size") or 0),
                "etag": str(row.get("e_tag") or "").strip('"'),
                "modified": row.get("last_modified_date"),
                "version": row.get("version_id") or None,
            }
