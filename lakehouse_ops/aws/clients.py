"""The one place boto3 clients are built.

The endpoint comes from `LAKEHOUSE_OPS_AWS_ENDPOINT_URL` (or boto3's own `AWS_ENDPOINT_URL`), which is how tests
and local runs point every client at moto's standalone server. Credentials follow boto3's usual chain.
"""

import os
from typing import Any, Optional

_DEFAULT_RETRIES = {"max_attempts": 8, "mode": "adaptive"}


def client(service: str, region: Optional[str] = None, endpoint_url: Optional[str] = None, session: Any = None) -> Any:
    """A boto3 client with adaptive retries; the endpoint may be redirected (moto, LocalStack) by
    LAKEHOUSE_OPS_AWS_ENDPOINT_URL."""
    import boto3
    from botocore.config import Config as BotoConfig

    endpoint_url = endpoint_url or os.environ.get("LAKEHOUSE_OPS_AWS_ENDPOINT_URL") or None
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = session or boto3.session.Session()
    return session.client(
        service, region_name=region, endpoint_url=endpoint_url, config=BotoConfig(retries=_DEFAULT_RETRIES)
    )
