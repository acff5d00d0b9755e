"""`ingest reconcile` reading an Amazon S3 Inventory report (aws/inventory.py), with the config's uri_map applied
to the manifest and its data files."""

from typing import Any, Dict, Iterator, Mapping

from lakehouse_ops.aws.inventory import InventoryError, current_objects, load_manifest
from lakehouse_ops.aws.s3 import split_uri
from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest.read import local_uri


def read_inventory(manifest_uri: str, uri_map: Mapping[str, str], s3: Any) -> Iterator[Dict[str, Any]]:
    """Rows {bucket, key, size, etag, modified, version} of the current objects in the report."""

    def read(uri: str) -> bytes:
        mapped = local_uri(uri, uri_map) if uri.startswith("s3://") else uri
        if not mapped.startswith("s3://"):
            with open(mapped[len("file://") :] if mapped.startswith("file://") else mapped, "rb") as handle:
                return handle.read()
        bucket, key = split_uri(mapped)
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    try:
        yield from current_objects(load_manifest(manifest_uri, read), read)
    except InventoryError as exc:
        raise IngestError(str(exc)) from None
