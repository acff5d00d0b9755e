"""A producer's reality, in one ingest run: several workers (some killed at random moments) on one queue that
announces a generated mix of what producers really send: keys overwritten before they are read, versioned objects
on S3, CSV headers in any order and case, case-variant and unknown JSON fields, numeric and string ids in the
pseudonymized column, malformed lines, a header that cannot be mapped, duplicate announcements and late ones.

Invariants at the end: every announced version's rows exactly once, or the version named as superseded; every
value in its own column; no plaintext id anywhere in the lake, the quarantine, the DLQ, the reports or the logs.
Seeded: the seed is printed, and LAKEHOUSE_OPS_TEST_SEED replays it."""

import csv
import io
import json
import os
import random
import re
import time

import pytest

from conftest import PSEUDO_API_KEY, write_config
from ingest_helpers import BUCKET, Landing, create_target, kill_group, start_worker

pytestmark = [pytest.mark.spark, pytest.mark.slow]
VISIBILITY, CLAIM_SECONDS = 8, 10
COLUMNS = ("event_time", "customer_id", "bytes_sent", "rec_id")


class Producer:
    """Generates objects and remembers what each announced version holds."""

    def __init__(self, rng, landing, s3, bucket):
        self.rng, self.landing, self.s3, self.bucket = rng, landing, s3, bucket
        self.next_id = 0
        self.expected = {"json": {}, "csv": {}}  # target -> {rec_id: (event_time, plaintext id, bytes_sent)}
        self.plaintext = set()
        self.superseded = set()  # (key, etag) announced and overwritten before any read
        self.quarantined = 0
        self.refused = 0
        self.bodies = []

    def _record(self):
        rec_id = self.next_id
        self.next_id += 1
        plain = 900000000 + rec_id if self.rng.random() < 0.5 else "c-%06d" % rec_id  # numbers and strings
        self.plaintext.add(str(plain))
        moment = "2024-05-13 %02d:%02d:00" % (rec_id // 60 % 24, rec_id % 60)
        return rec_id, moment, plain, self.rng.randrange(1, 90000)

    def json_object(self, rows=4, malformed=False):
        lines, expected = [], {}
        for _ in range(rows):
            rec_id, moment, plain, size = self._record()
            record = {"event_time": moment.replace(" ", "T") + "Z", "customer_id": plain, "bytes_sent": size}
            record["rec_id"] = rec_id
            if self.rng.random() < 0.3:
                record[self.rng.choice(["Customer_ID", "CUSTOMER_ID"])] = record.pop("customer_id")
            if self.rng.random() < 0.3:
                record["BYTES_SENT"] = record.pop("bytes_sent")
            if self.rng.random() < 0.3:
                record["note"] = "unknown field"
            lines.append(json.dumps(record))
            expected[rec_id] = (moment, str(plain), size)
        if malformed:
            secret = "c-bad-%06d" % self.next_id
            self.plaintext.add(secret)
            lines.insert(1, json.dumps({"customer_id": secret, "rec_id": "not a number"}))
            self.quarantined += 1
        return ("\n".join(lines) + "\n").encode(), expected

    def csv_object(self, rows=4):
        header = list(COLUMNS) + ["url"]
        self.rng.shuffle(header)
        spelled = [h.upper() if self.rng.random() < 0.2 else h for h in header]
        out, expected = io.StringIO(), {}
        writer = csv.writer(out)
        writer.writerow(spelled)
        for _ in range(rows):
            rec_id, moment, plain, size = self._record()
            values = {"event_time": moment, "customer_id": plain, "bytes_sent": size, "rec_id": rec_id}
            writer.writerow([values.get(h, "https://example.com/%d" % rec_id) for h in header])
            expected[rec_id] = (moment, str(plain), size)
        return out.getvalue().encode(), expected

    def announce(self, bucket, key, body, etag, version=None, copies=None):
        from lakehouse_ops.ingest import events

        note = json.loads(events.s3_notification(bucket, key, len(body), etag))
        if version:
            note["Records"][0]["s3"]["object"]["versionId"] = version
        for _ in range(copies or self.rng.choice([1, 1, 2, 3])):  # at-least-once delivery
            self.bodies.append(json.dumps(note))
        return json.dumps(note)

    def local(self, key, body, copies=None):
        import hashlib

        path = os.path.join(self.landing.root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(body)
        return self.announce(BUCKET, key, body, hashlib.md5(body).hexdigest(), copies=copies)

    def on_s3(self, key, body):
        put = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return self.announce(self.bucket, key, body, put["ETag"].strip('"'), put["VersionId"])

    def generate(self):
        late = []
        for i in range(10):
            body, rows = self.json_object(malformed=i % 4 == 1)
            late.append(self.local("j/%02d.json" % i, body))
            self.expected["json"].update(rows)
        for i in range(6):
            body, rows = self.csv_object()
            self.local("c/%02d.csv" % i, body)
            self.expected["csv"].update(rows)
        self.local("c/twice.csv", b"rec_id,customer_id,CUSTOMER_ID\n1,c-x,c-y\n", copies=1)  # refused, named
        self.refused += 1
        for i in range(3):  # overwritten before any read: the first version's bytes are gone
            first, _ = self.json_object()
            note = json.loads(self.local("o/%02d.json" % i, first))
            self.superseded.add(("o/%02d.json" % i, note["Records"][0]["s3"]["object"]["eTag"]))
            second, rows = self.json_object()
            self.local("o/%02d.json" % i, second)
            self.expected["json"].update(rows)
        for i in range(3):  # versioned: each version read from its own bytes
            for _ in range(2):
                body, rows = self.json_object()
                self.on_s3("v/%02d.json" % i, body)
                self.expected["json"].update(rows)
        self.rng.shuffle(self.bodies)
        return late


def _config(tmp_path, warehouse, landing, table, csv_table, service_url):
    pseudo = {"columns": ["customer_id"]}
    return write_config(
        tmp_path / "reality.yaml",
        warehouse,
        master="local[1]",
        pseudonymization={"service_url": service_url, "batch_size": 50, "max_retries": 2},
        ingest={
            "queue_url": landing.queue_url,
            "dlq_url": landing.dlq_url,
            "target_table": table,
            "quarantine_table": table + "_quarantine",
            "uri_map": {"s3://%s/" % BUCKET: landing.root},
            "pseudonymize": pseudo,
            "visibility_timeout_seconds": VISIBILITY,
            "heartbeat_seconds": 2,
            "claim_seconds": CLAIM_SECONDS,
            "batch": {"max_objects": 5, "wait_time_seconds": 0, "max_wait_seconds": 1, "receive_concurrency": 1},
            "routes": [
                {
                    "pattern": "*.csv",
                    "target_table": csv_table,
                    "quarantine_table": csv_table + "_quarantine",
                    "format": "csv",
                    "read_options": {"header": "true"},
                }
            ],
        },
    )


def _finish(procs, said):
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        said.append(out.decode() + err.decode())
        assert proc.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    return reports


def _plaintext_found(texts, plaintext):
    pattern = re.compile(r"(?<![\w-])(%s)(?![\w-])" % "|".join(re.escape(p) for p in sorted(plaintext)))
    return sorted({m.group(1) for text in texts for m in pattern.finditer(text)})


def test_a_producers_reality(spark, warehouse, aws_env, tmp_path, table_name, pseudo_server, monkeypatch):
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.pseudo.spark import ServiceSettings, reidentify

    seed = int(os.environ.get("LAKEHOUSE_OPS_TEST_SEED", random.randrange(1 << 30)))
    print("seed", seed)  # shown on failure; set LAKEHOUSE_OPS_TEST_SEED to replay
    rng = random.Random(seed)
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    sqs, s3 = client("sqs"), client("s3")
    landing = Landing(sqs, tmp_path / "landing", table_name.replace(".", "-"))
    sqs.set_queue_attributes(QueueUrl=landing.queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY)})
    bucket = "reality-" + table_name.replace(".", "-").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    csv_table = table_name + "_csv"
    refs = {"json": create_target(spark, table_name), "csv": create_target(spark, csv_table)}
    producer = Producer(rng, landing, s3, bucket)
    late = producer.generate()
    for body in producer.bodies:
        landing.send(body)
    config = _config(tmp_path, warehouse, landing, table_name, csv_table, pseudo_server.url)

    said = []
    for _ in range(2):  # workers killed at random moments while they work
        procs = [start_worker(config), start_worker(config)]
        time.sleep(rng.uniform(10, 20))
        kill_group(procs[rng.randrange(2)])
        for proc in procs:
            proc.wait(timeout=900)
            out, err = proc.communicate()
            said.append(out.decode() + err.decode())
    reports = _finish([start_worker(config) for _ in range(3)], said)
    for body in late[:4]:  # late notifications of objects long committed
        landing.send(body)
    reports += _finish([start_worker(config)], said)
    assert reports[-1]["totals"]["rows"] == 0 and reports[-1]["totals"]["already_committed"] >= 1

    settings = ServiceSettings(url=pseudo_server.url)
    for target, ref in refs.items():
        spark.sql("REFRESH TABLE %s" % ref)
        rows = reidentify(spark.table(ref), ["customer_id"], settings).collect()
        got = {r.rec_id: (str(r.event_time), r.customer_id, r.bytes_sent) for r in rows}
        assert len(rows) == len(got), "seed %d: %s rows duplicated" % (seed, target)
        assert got == producer.expected[target], "seed %d: %s rows differ" % (seed, target)
    ledger = spark.table("lake.%s_ingest_ledger" % table_name).where("status = 'superseded'").collect()
    superseded = {(r.object_key, r.etag) for r in ledger}
    assert superseded == producer.superseded, seed
    quarantine = spark.table(refs["json"] + "_quarantine").collect()
    assert len(quarantine) == producer.quarantined and all(q.raw is None for q in quarantine)
    dead = landing.dlq_messages()
    assert len(dead) == producer.refused and "twice" in json.dumps(dead[0]["MessageAttributes"])
    assert landing.depth() == 0

    lake = [
        json.dumps(r.asDict(recursive=True), default=str) for ref in refs.values() for r in spark.table(ref).collect()
    ]
    lake += [json.dumps(q.asDict(), default=str) for q in quarantine]
    for ref in refs.values():  # and the ledger each target keeps
        lake += [
            json.dumps(r.asDict(recursive=True), default=str) for r in spark.table(ref + "_ingest_ledger").collect()
        ]
    found = _plaintext_found(lake + [json.dumps(dead)] + said, producer.plaintext)
    assert found == [], "seed %d: plaintext ids found: %s" % (seed, found[:5])
