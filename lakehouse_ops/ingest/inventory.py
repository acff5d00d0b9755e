"""Reading an Amazon S3 Inventory report (its manifest.json and the CSV or Parquet files it lists) as rows of
bucket, key, size, ETag, last modified and version id: the current, non-deleted objects only."""

import gzip
import io
import json
from typing import Any, Dict, Iterator, List, Mapping, Optional
from urllib.parse import unquote_plus

from lakehouse_ops.aws.s3 import split_uri
from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest.read import local_uri

# Inventory field names (CSV fileSchema) -> the columns Parquet and ORC reports use.
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


def _read(uri: str, uri_map: Mapping[str, str], s3: Any) -> bytes:
    mapped = local_uri(uri, uri_map) if uri.startswith("s3://") else uri
    if not mapped.startswith("s3://"):
        with open(mapped[len("file://") :] if mapped.startswith("file://") else mapped, "rb") as handle:
            return handle.read()
    bucket, key = split_uri(mapped)
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _table(data: bytes, name: str, fmt: str, schema: str) -> List[Dict[str, Any]]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "CSV":
        names = [FIELDS.get(f.strip(), f.strip()) for f in schema.split(",")]
        options = pacsv.ReadOptions(column_names=names)
        convert = pacsv.ConvertOptions(column_types={n: "string" for n in names})
        if name.endswith(".gz"):
            data = gzip.decompress(data)
        table = pacsv.read_csv(io.BytesIO(data), read_options=options, convert_options=convert)
        rows: List[Dict[str, Any]] = table.to_pylist()
        for row in rows:
            row["key"] = unquote_plus(row["key"])  # CSV reports URL-encode keys
        return rows
    if fmt == "Parquet":
        return list(pq.read_table(io.BytesIO(data)).to_pylist())
    raise IngestError("S3 Inventory format %s is not read (use CSV or Parquet reports)" % fmt)


def _true(value: Optional[Any], default: bool) -> bool:
    if value is None or value == "":
        return default
    return str(value).lower() == "true"


def read_inventory(manifest_uri: str, uri_map: Mapping[str, str], s3: Any) -> Iterator[Dict[str, Any]]:
    """Rows {bucket, key, size, etag, modified, version} of the current objects in the report."""
    try:
        manifest = json.loads(_read(manifest_uri, uri_map, s3))
        files = manifest["files"]
        fmt = manifest["fileFormat"]
        destination = manifest["destinationBucket"].split(":::")[-1]
    except (OSError, ValueError, KeyError) as exc:
        raise IngestError("cannot read the S3 Inventory manifest %s: %s" % (manifest_uri, exc)) from None
    for entry in files:
        uri = "s3://%s/%s" % (destination, entry["key"])
        for row in _table(_read(uri, uri_map, s3), entry["key"], fmt, manifest.get("fileSchema", "")):
            if not _true(row.get("is_latest"), True) or _true(row.get("is_delete_marker"), False):
                continue
            yield {
                "bucket": row["bucket"],
                "key": row["key"],
                "size": int(row.get("size") or 0),
                "etag": str(row.get("e_tag") or "").strip('"'),
                "modified": row.get("last_modified_date"),
                "version": row.get("version_id") or None,
            }
