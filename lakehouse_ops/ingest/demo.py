"""`lakehouse-ops demo-ingest`: watch the ingest pipeline work on the embedded default.

Writes landing files (plain and gzip JSON lines, keys with spaces, '=', '+' and non-ASCII characters, one file
with records that do not fit the schema), announces them on a local SQS queue served by moto's server (started
here if nothing answers at the configured endpoint), adds a duplicate announcement and a poison message, and
ingests until the queue is empty.
"""

import gzip
import hashlib
import json
import os
import random
import subprocess
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlparse

from lakehouse_ops.config import Config
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.ingest.events import s3_notification
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref

log = get_logger("ingest.demo")

DEMO_SCHEMA = "requested_at TIMESTAMP, customer_id STRING, provider STRING, status INT, bytes_sent BIGINT, url STRING"


def local_sqs(queue_url: str) -> Optional["subprocess.Popen[bytes]"]:
    """Make sure an SQS endpoint answers at the queue URL's host; start moto's server there if needed.

    Returns the server process we started (or None) after pointing lakehouse-ops' AWS clients at it.
    """
    parsed = urlparse(queue_url)
    host = parsed.hostname or ""
    if host not in ("127.0.0.1", "localhost"):
        raise ConfigError("demo-ingest runs against a local SQS endpoint; ingest.queue_url is %s" % queue_url)
    endpoint = "%s://%s:%d" % (parsed.scheme, host, parsed.port or 80)
    os.environ.setdefault("LAKEHOUSE_OPS_AWS_ENDPOINT_URL", endpoint)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from lakehouse_ops.aws.local import listening

    if listening(host, parsed.port or 80):
        return None
    try:
        import moto.server  # noqa: F401  (only to give a clear message when it is missing)
    except ImportError:
        raise ConfigError(
            "nothing answers at %s and moto is not installed: pip install 'moto[server]'" % endpoint
        ) from None
    from lakehouse_ops.aws.local import start_moto

    proc, _ = start_moto(host, parsed.port or 80)
    log.info("started moto's SQS server for the demo", extra={"endpoint": endpoint})
    return proc


def _queue(sqs: Any, url: str, visibility: int) -> str:
    name = url.rstrip("/").rsplit("/", 1)[1]
    created: str = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
    if created.rstrip("/") != url.rstrip("/"):
        raise ConfigError("the local SQS server named the queue %s, but the config says %s" % (created, url))
    return created


def _rows(rng: random.Random, count: int, day: int) -> List[Dict[str, Any]]:
    out = []
    for i in range(count):
        out.append(
            {
                "requested_at": "2024-05-%02dT%02d:%02d:%02dZ"
                % (day, rng.randrange(24), rng.randrange(60), rng.randrange(60)),
                "customer_id": "c%05d" % rng.randrange(500),
                "provider": rng.choice(["edge-a", "edge-b"]),
                "status": rng.choice([200, 200, 200, 304, 404]),
                "bytes_sent": rng.randrange(100000),
                "url": "/assets/%d.jpg" % rng.randrange(1000),
            }
        )
    return out


def write_landing_files(root: str, bucket: str, files: int, rows: int, seed: int = 7) -> List[Tuple[str, int, str]]:
    """Write `files` landing files under `root`; return [(key, size, etag)] in the order written."""
    rng = random.Random(seed)
    names = ["requests %02d.json", "provider=edge-b/part+%02d.json.gz", "café/run %02d.json"]
    written = []
    for i in range(files):
        key = "cdn-logs/2024/05/%02d/%s" % (13 + i % 3, names[i % len(names)] % i)
        lines = [json.dumps(r) for r in _rows(rng, rows, 13 + i % 3)]
        if i == 0:
            lines += ['{"requested_at": "yesterday", "status": "ok"}', "not even json"]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if key.endswith(".gz"):
            data = gzip.compress(data)
        path = os.path.join(root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        written.append((key, len(data), hashlib.md5(data).hexdigest()))
    return written


def prepare_landing(config: Config, spark: Any, sqs: Any, files: int, rows: int, replace: bool = False) -> str:
    """Queues and target table exist; `files` landing files are written and announced (plus one duplicate
    announcement and one poison message). Returns the target table name."""
    cfg = config.section("ingest")
    prefix, root = sorted(cfg.uri_map.items())[0]
    bucket = prefix[len("s3://") :].split("/", 1)[0]
    root = root[len("file://") :] if root.startswith("file://") else os.path.abspath(root)
    _queue(sqs, cfg.queue_url, cfg.visibility_timeout_seconds)
    if cfg.dlq_url:
        _queue(sqs, cfg.dlq_url, cfg.visibility_timeout_seconds)
    target = config.table_name(cfg.target_table)
    catalog = config.catalog.name
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % table_ref(catalog, target.rsplit(".", 1)[0]))
    if replace:
        for table in (target, cfg.quarantine_table, cfg.ledger):
            if table:
                spark.sql("DROP TABLE IF EXISTS %s PURGE" % table_ref(catalog, config.table_name(table)))
    spark.sql(
        "CREATE TABLE IF NOT EXISTS %s (%s) USING iceberg PARTITIONED BY (days(requested_at))"
        % (table_ref(catalog, target), DEMO_SCHEMA)
    )
    written = write_landing_files(root, bucket, files, rows, seed=int(time.time()))
    for key, size, etag in written:
        sqs.send_message(QueueUrl=cfg.queue_url, MessageBody=s3_notification(bucket, key, size, etag))
    # At-least-once delivery: the first object is announced twice; and one message is not an S3 event.
    sqs.send_message(QueueUrl=cfg.queue_url, MessageBody=s3_notification(bucket, *written[0]))
    sqs.send_message(QueueUrl=cfg.queue_url, MessageBody='{"hello": "not an S3 event"}')
    log.info("landing files written and announced", extra={"files": len(written), "rows_per_file": rows})
    return target


def require_local_ingest(config: Config, command: str) -> None:
    if config.ingest is None or not config.ingest.uri_map:
        raise ConfigError(
            "%s needs an 'ingest' section with a uri_map to a local directory, such as the one in "
            "conf/local.yaml" % command
        )
