"""The one place boto3 clients are built, and the one place the AWS endpoint and Region are decided.

The endpoint comes from `LAKEHOUSE_OPS_AWS_ENDPOINT_URL` (or boto3's own `AWS_ENDPOINT_URL`), or the config's
`aws.endpoint_url` (which sets the variable when the config is loaded, so worker processes inherit it): that is how
tests and local runs point every client at moto's standalone server or LocalStack. The same endpoint reaches
pyiceberg's catalogs and S3 FileIO and the Spark catalog (`catalog_endpoint_properties`). Credentials follow
boto3's usual chain. Connections time out after CONNECT_TIMEOUT_S and calls are retried a bounded number of
times, so an unreachable endpoint is reported in seconds (see `describe_failure`), not after minutes.
"""

import os
import re
import threading
from typing import Any, Dict, Optional, Tuple

from lakehouse_ops.errors import first_line

ENDPOINT_ENV, REGION_DEFAULT = "LAKEHOUSE_OPS_AWS_ENDPOINT_URL", "us-east-1"
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 3, 60
_DEFAULT_RETRIES = {"max_attempts": 4, "mode": "adaptive"}
# S3 answers a busy prefix with 503 SlowDown for longer than four attempts cover (a claim failed so on a loaded
# machine): its requests take eight, as pyiceberg's S3 FileIO does here (aws/s3retry.py).
S3_ATTEMPTS = 8
MAX_POOL_CONNECTIONS = 32  # a shared client serves a pool of threads: one connection each, kept alive


def endpoint_url() -> Optional[str]:
    """The endpoint every AWS client, catalog and FileIO goes to instead of AWS's own (None: AWS)."""
    return os.environ.get(ENDPOINT_ENV) or os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or REGION_DEFAULT


def use_aws(url: Optional[str], region_name: Optional[str]) -> None:
    """The config's `aws` section: applied unless the environment names them already (the environment wins)."""
    if url and not endpoint_url():
        os.environ[ENDPOINT_ENV] = url
    if region_name and not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        os.environ["AWS_REGION"] = region_name


def client(service: str, region_name: Optional[str] = None, endpoint: Optional[str] = None, session: Any = None) -> Any:
    """A boto3 client with bounded connect timeouts and adaptive retries, at the endpoint `endpoint_url()` gives."""
    import boto3
    from botocore.config import Config as BotoConfig

    session = session or boto3.session.Session()
    return session.client(
        service,
        region_name=region_name or region(),
        endpoint_url=endpoint or endpoint_url(),
        config=BotoConfig(
            retries=dict(_DEFAULT_RETRIES, max_attempts=S3_ATTEMPTS) if service == "s3" else _DEFAULT_RETRIES,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            max_pool_connections=MAX_POOL_CONNECTIONS,
        ),
    )


_shared: Dict[Tuple[str, str, Optional[str], int], Any] = {}
_shared_lock = threading.Lock()


def shared_client(service: str) -> Any:
    """One client per service, Region and endpoint in this process, for the many small calls of a thread pool
    (boto3's clients are thread-safe): its adaptive retry mode then keeps one request rate for all of them, backing
    off on throttling (S3's 503 SlowDown) and growing back once answers come, instead of each call probing alone."""
    key = (service, region(), endpoint_url(), os.getpid())
    with _shared_lock:
        if key not in _shared:
            _shared[key] = client(service)
        return _shared[key]


def catalog_endpoint_properties(catalog_type: str, url: Optional[str] = None) -> Dict[str, str]:
    """Catalog properties (pyiceberg and Iceberg's Spark catalog spell them alike) that send a catalog and its S3
    FileIO to `url` (default: `endpoint_url()`); {} when AWS's own endpoints are used."""
    url = url if url is not None else endpoint_url()
    if not url:
        return {}
    props = {"s3.endpoint": url, "s3.path-style-access": "true", "client.region": region(), "s3.region": region()}
    if catalog_type == "glue":
        props.update({"glue.endpoint": url, "glue.region": region()})
    return props


_UNREACHABLE = ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError")
_NO_CREDENTIALS = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError")
_DENIED = (
    "403",  # a refused HEAD: S3 sends no body, so no error code either
    "Forbidden",
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
)


# pyarrow names the error (ACCESS_DENIED), or only the status when S3 sent no body: never a "403" inside a key.
_PYARROW_DENIED = re.compile(r"AWS Error ACCESS_DENIED|AWS Error \w+ \(HTTP status 403\)")


def describe_failure(exc: BaseException) -> Optional[str]:
    """One line naming an AWS connection, credential or permission failure (None for anything else), whatever
    library raised it (boto3, pyiceberg, pyarrow's S3)."""
    for err in _chain(exc):
        name = type(err).__name__
        if name in _UNREACHABLE:
            return "cannot reach AWS at %s (%s): check %s or aws.endpoint_url, the network and the Region" % (
                endpoint_url() or "its public endpoints",
                first_line(err),
                ENDPOINT_ENV,
            )
        if name in _NO_CREDENTIALS:
            return (
                "no usable AWS credentials (%s): set them as boto3 expects (instance profile, EMR role, "
                % (first_line(err))
                + "AWS_PROFILE or AWS_ACCESS_KEY_ID)"
            )
        code = (getattr(err, "response", None) or {}).get("Error", {}).get("Code")
        if code in _DENIED:
            return "AWS refused the request (%s): %s" % (code, first_line(err))
        text = str(err)
        if isinstance(err, OSError) and "AWS Error" in text:  # pyarrow's S3 filesystem
            if _PYARROW_DENIED.search(text):
                return "AWS refused an S3 request: %s" % first_line(err)
            if "NETWORK_CONNECTION" in text or "Could not resolve" in text or "Connection refused" in text:
                return "cannot reach S3 at %s: %s" % (endpoint_url() or "its public endpoint", first_line(err))
    return None


def _chain(exc: BaseException) -> Any:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
