"""Landing files and their S3 events, for the ingest tests and the demo-style kill test."""

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys

from lakehouse_ops.ingest import events

from conftest import CATALOG, make_config

BUCKET = "landing-bucket"
TARGET_SCHEMA = "event_time TIMESTAMP, customer_id STRING, bytes_sent BIGINT, rec_id BIGINT"


def s3_notification(key, size=100, etag=None):
    return events.s3_notification(BUCKET, key, size, etag=etag)


def md5_of(path):
    with open(path, "rb") as handle:
        return hashlib.md5(handle.read()).hexdigest()


def write_json_lines(landing, key, records, gz=False, extra_lines=()):
    path = os.path.join(landing, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if gz:
        data = gzip.compress(data)
    with open(path, "wb") as handle:
        handle.write(data)
    return len(data)


def records(start, count, day="2024-05-13"):
    return [
        {
            "event_time": "%sT%02d:%02d:00Z" % (day, (i // 60) % 24, i % 60),
            "customer_id": "c%03d" % (i % 50),
            "bytes_sent": i * 10,
            "rec_id": i,
        }
        for i in range(start, start + count)
    ]


class Landing:
    """A landing 'bucket' (a local directory mapped from s3://landing-bucket/) with its SQS queues."""

    def __init__(self, sqs, root, name):
        self.sqs = sqs
        self.root = str(root)
        os.makedirs(self.root, exist_ok=True)
        self.queue_url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        self.dlq_url = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]

    def put(self, key, rows, gz=False, extra_lines=(), send=True):
        size = write_json_lines(self.root, key, rows, gz=gz, extra_lines=extra_lines)
        if send:
            self.announce(key)
        return size

    def notification(self, key):
        """The notification S3 sends for the file as it is now (its size, and the MD5 of its bytes as ETag)."""
        path = os.path.join(self.root, key)
        if not os.path.exists(path):
            return s3_notification(key)
        return s3_notification(key, os.path.getsize(path), etag=md5_of(path))

    def announce(self, key):
        self.send(self.notification(key))

    def send(self, body):
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def depth(self, url=None):
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def dlq_messages(self):
        out = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                return out
            out.extend(got)
            self.sqs.delete_message_batch(
                QueueUrl=self.dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )


def ingest_config(warehouse, landing, target, fmt="json", defaults=None, sections=None, **ingest):
    section = {
        "queue_url": landing.queue_url,
        "dlq_url": landing.dlq_url,
        "target_table": target,
        "quarantine_table": target + "_quarantine",
        "format": fmt,
        "uri_map": {"s3://%s/" % BUCKET: landing.root},
        "visibility_timeout_seconds": 30,
        "heartbeat_seconds": 5,
        "batch": {"max_wait_seconds": 2, "wait_time_seconds": 0, "receive_concurrency": 4},
    }
    section.update(ingest)
    return make_config(warehouse, defaults=defaults, ingest=section, **(sections or {}))


def create_target(spark, table):
    ref = "%s.%s" % (CATALOG, table)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.%s" % (CATALOG, table.split(".")[0]))
    spark.sql("CREATE TABLE %s (%s) USING iceberg PARTITIONED BY (days(event_time))" % (ref, TARGET_SCHEMA))
    return ref


def add_tag(df):
    """An enrichment step as users write them: DataFrame -> DataFrame."""
    from pyspark.sql import functions as F

    return df.withColumn("tag", F.lit("enriched"))


def slow_enrich(df):
    """An enrichment that takes longer than the queue's visibility timeout."""
    import time

    time.sleep(float(os.environ.get("SLOW_ENRICH_SECONDS", "8")))
    return df


def start_worker(config, fault=None):
    """An ingest worker (`lakehouse-ops ingest --until-empty --json`, through tests/ingest_worker.py) in its own
    process group; `fault` names a stage of the batch protocol at which it kills itself with SIGKILL."""
    args = [
        sys.executable,
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "ingest_worker.py"),
        "--config",
        config,
    ] + (["--kill-at", fault] if fault else [])
    return subprocess.Popen(args, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_group(proc):
    """kill -9 of a worker and of the JVM it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)
