"""Ingest benchmark: SQS-driven exactly-once ingest next to a plain Spark read + append of the same files.

    python benchmarks/ingest_bench.py [--files 1000] [--rows-per-file 1000] [--out benchmarks/out]

Starts moto's SQS server (benchmarks/fast_moto.py: moto with its receive path's quadratic cost removed) on a
loopback port, writes the landing files, sends one S3 event per file, then in the
same run measures:
- rows/s of `lakehouse-ops ingest --until-empty` (after start-up) and of a plain `spark.read.json(files)` +
  `writeTo(table).append()` into an identical table;
- messages received per second (parallel 10-message receives) and, on a refilled queue, the same receive loop
  with one receive in flight;
- files written per commit and the end-to-end lag (commit time minus S3 event time) per batch;
- rows/s of one and of three `lakehouse-ops ingest --until-empty` worker processes on one queue where every file
  is announced twice (each worker pays its own Spark start-up, so both figures include it), exactly once checked.
Writes <out>/ingest.json and <out>/ingest.png.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from lakehouse_ops.aws.local import start_moto  # noqa: E402
from lakehouse_ops.config import config_from_dict  # noqa: E402
from lakehouse_ops.engine import build_session  # noqa: E402
from lakehouse_ops.ingest.demo import DEMO_SCHEMA, write_landing_files  # noqa: E402
from lakehouse_ops.ingest.events import s3_notification  # noqa: E402
from lakehouse_ops.ingest.job import IngestJob  # noqa: E402
from lakehouse_ops.ingest.queue import Queue  # noqa: E402

from maintenance_bench import machine  # noqa: E402

CATALOG = "bench"
BUCKET = "landing-bucket"


def send_events(sqs, queue_url, written):
    entries = [
        {"Id": str(i), "MessageBody": s3_notification(BUCKET, key, size, etag)}
        for i, (key, size, etag) in enumerate(written)
    ]
    for start in range(0, len(entries), 10):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries[start : start + 10])


def receive_rate(sqs, queue_url, written, concurrency):
    """Messages/s of a drain with `concurrency` receives in flight (messages deleted as received)."""
    send_events(sqs, queue_url, written)
    queue = Queue(sqs, queue_url, visibility_timeout=60)
    got = 0
    started = time.time()
    while True:
        messages = queue.receive(concurrency, wait_time_seconds=0)
        if not messages:
            break
        got += len(messages)
        queue.delete(messages)
    return got / (time.time() - started)


def workers_run(sqs, written, work, landing, workers, table):
    """rows/s of `workers` ingest processes draining a queue on which every file is announced twice."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import yaml

    from commit_locks import lock_settings  # the local Hadoop catalog's commits, safe across processes

    name = "bench-workers-%d" % workers
    queue_url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    lock_conf, lock_props = lock_settings(os.path.join(work, "commit-locks"))
    raw = {
        "catalog": {
            "name": CATALOG,
            "type": "hadoop",
            "warehouse": os.path.join(work, "warehouse"),
            "properties": lock_props,
        },
        "spark": {
            "mode": "local",
            "master": "local[2]",
            "conf": dict(lock_conf, **{"spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "4"}),
        },
        "ingest": {
            "queue_url": queue_url,
            "dlq_url": dlq_url,
            "target_table": table,
            "quarantine_table": table + "_quarantine",
            "uri_map": {"s3://%s/" % BUCKET: landing},
            "batch": {
                "max_objects": 200,
                "max_bytes": "1GB",
                "max_wait_seconds": 10,
                "wait_time_seconds": 0,
                "receive_concurrency": 8,
            },
            "visibility_timeout_seconds": 300,
            "heartbeat_seconds": 60,
            "claim_seconds": 300,
        },
    }
    config = os.path.join(work, "%s.yaml" % name)
    with open(config, "w") as handle:
        yaml.safe_dump(raw, handle)
    send_events(sqs, queue_url, written)
    send_events(sqs, queue_url, written)
    started = time.time()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lakehouse_ops.cli", "--config", config, "ingest", "--until-empty", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError("ingest worker failed: %s" % err.decode()[-2000:])
        reports.append(json.loads(out))
    seconds = time.time() - started
    return {
        "workers": workers,
        "seconds": round(seconds, 2),
        "messages": 2 * len(written),
        "rows_by_worker": [r["totals"]["rows"] for r in reports],
        "objects_held_elsewhere": sum(b.get("held_elsewhere", 0) for r in reports for b in r["batches"]),
        "queue_left": sum(Queue(sqs, queue_url).depth()),
    }


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    r = results
    axes[0].bar(
        ["SQS ingest", "plain read+append"],
        [r["ingest"]["rows_per_s"], r["baseline"]["rows_per_s"]],
        color=["C2", "C7"],
    )
    axes[0].set_title("rows/s, ratio %.2f" % r["ratio"])
    axes[1].bar(
        ["8 receives in flight", "1 in flight"],
        [r["receive"]["parallel_msgs_per_s"], r["receive"]["sequential_msgs_per_s"]],
        color=["C2", "C7"],
    )
    axes[1].set_title("SQS messages received per second")
    lags = [b["lag_s"] for b in r["ingest"]["batches"]]
    axes[2].bar([str(i + 1) for i in range(len(lags))], lags, color="C0")
    axes[2].set_title("end-to-end lag per batch (s)")
    axes[2].set_xlabel("batch")
    axes[3].bar(
        ["1 worker", "3 workers"], [r["workers_1"]["rows_per_s"], r["workers_3"]["rows_per_s"]], color=["C7", "C2"]
    )
    axes[3].set_title("worker processes, files announced twice: rows/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rows-per-file", type=int, default=1000)
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    work = os.path.join(out, "ingest-work")
    shutil.rmtree(work, ignore_errors=True)
    landing = os.path.join(work, "landing")
    moto, endpoint = start_moto(launcher=os.path.join(HERE, "fast_moto.py"))
    os.environ.update(
        {
            "LAKEHOUSE_OPS_AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    try:
        from lakehouse_ops.aws.clients import client

        sqs = client("sqs")
        queue_url = sqs.create_queue(QueueName="bench-landing", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
        dlq_url = sqs.create_queue(QueueName="bench-landing-dlq")["QueueUrl"]
        raw = {
            "catalog": {"name": CATALOG, "type": "hadoop", "warehouse": os.path.join(work, "warehouse")},
            "spark": {
                "mode": "local",
                "master": "local[*]",
                "conf": {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8"},
            },
            "ingest": {
                "queue_url": queue_url,
                "dlq_url": dlq_url,
                "target_table": "bench.requests",
                "quarantine_table": "bench.requests_quarantine",
                "uri_map": {"s3://%s/" % BUCKET: landing},
                "batch": {
                    "max_objects": 500,
                    "max_bytes": "1GB",
                    "max_wait_seconds": 30,
                    "wait_time_seconds": 0,
                    "receive_concurrency": 8,
                },
                "visibility_timeout_seconds": 300,
                "heartbeat_seconds": 60,
            },
        }
        config = config_from_dict(raw)
        spark = build_session(config)
        for table in ("bench.requests", "bench.baseline"):
            spark.sql("CREATE NAMESPACE IF NOT EXISTS bench.bench")
            spark.sql(
                "CREATE TABLE %s.%s (%s) USING iceberg PARTITIONED BY (days(requested_at))"
                % (CATALOG, table, DEMO_SCHEMA)
            )
        written = write_landing_files(landing, BUCKET, args.files, args.rows_per_file, seed=11)
        total_bytes = sum(size for _, size, _ in written)
        results = {"machine": machine(), "parameters": vars(args), "landing_bytes": total_bytes}

        # Baseline first: a plain read of the same files and one append (warms the JVM for both).
        paths = ["file://" + os.path.join(landing, key) for key, _, _ in written]
        from lakehouse_ops.ingest.read import glob_escape

        started = time.time()
        df = spark.read.schema(DEMO_SCHEMA).json([glob_escape(p) for p in paths])
        df.writeTo("%s.bench.baseline" % CATALOG).append()
        baseline_s = time.time() - started
        baseline_rows = spark.table("%s.bench.baseline" % CATALOG).count()

        send_events(sqs, queue_url, written)
        job = IngestJob(config, spark=spark, sqs=sqs)
        job.prepare()
        started = time.time()
        report = job.run(until_empty=True)
        ingest_s = time.time() - started
        rows = spark.table("%s.bench.requests" % CATALOG).count()
        files_per_commit = [
            int(r.summary.get("added-data-files", 0))
            for r in spark.sql(
                "SELECT summary FROM %s.bench.requests.snapshots WHERE summary['lakehouse-ops.batch-id'] IS NOT NULL"
                % CATALOG
            ).collect()
        ]
        batches = [
            {
                k: b.get(k)
                for k in (
                    "messages",
                    "objects",
                    "rows",
                    "quarantined",
                    "receive_s",
                    "commit_s",
                    "lag_s",
                    "batch_s",
                    "timings_s",
                )
            }
            for b in report["batches"]
        ]
        calls = sum(b.get("receive_calls", 0) for b in report["batches"])
        receive_s = sum(b["receive_s"] for b in report["batches"])
        # Receiving overlaps writing (the next batch is prefetched); only the time the job sat waiting counts out.
        processing_s = ingest_s - report["receive_wait_s"]
        results["ingest"] = {
            "seconds": round(ingest_s, 2),
            "rows": rows,
            "rows_per_s": round(rows / ingest_s, 1),
            "receive_s": round(receive_s, 2),
            "receive_wait_s": report["receive_wait_s"],
            "processing_s": round(processing_s, 2),
            "processing_rows_per_s": round(rows / processing_s, 1),
            "messages": report["totals"]["messages"],
            "receive_calls": calls,
            "quarantined": report["totals"]["quarantined"],
            "files_per_commit": files_per_commit,
            "batches": batches,
        }
        results["baseline"] = {
            "seconds": round(baseline_s, 2),
            "rows": baseline_rows,
            "rows_per_s": round(baseline_rows / baseline_s, 1),
        }
        results["ratio"] = round(results["ingest"]["rows_per_s"] / results["baseline"]["rows_per_s"], 3)
        results["processing_ratio"] = round(
            results["ingest"]["processing_rows_per_s"] / results["baseline"]["rows_per_s"], 3
        )
        spark.stop()

        for workers in (1, 3):
            table = "bench.workers_%d" % workers
            spark = build_session(config)
            spark.sql(
                "CREATE TABLE %s.%s (%s) USING iceberg PARTITIONED BY (days(requested_at))"
                % (CATALOG, table, DEMO_SCHEMA)
            )
            spark.stop()
            run = workers_run(sqs, written, work, landing, workers, table)
            spark = build_session(config)
            run["rows"] = spark.table("%s.%s" % (CATALOG, table)).count()
            spark.stop()
            run["rows_per_s"] = round(run["rows"] / run["seconds"], 1)
            results["workers_%d" % workers] = run
        results["three_vs_one_worker"] = round(
            results["workers_3"]["rows_per_s"] / results["workers_1"]["rows_per_s"], 3
        )

        results["receive"] = {
            "parallel_msgs_per_s": round(receive_rate(sqs, queue_url, written, 8), 1),
            "sequential_msgs_per_s": round(receive_rate(sqs, queue_url, written, 1), 1),
        }
        results["targets"] = {
            "ingest_ge_0.7x_plain": results["ratio"] >= 0.7,
            "processing_ge_0.7x_plain": results["processing_ratio"] >= 0.7,
            "exactly_once": rows == args.files * args.rows_per_file
            and all(results["workers_%d" % w]["rows"] == args.files * args.rows_per_file for w in (1, 3)),
        }
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "ingest.json"), "w") as handle:
            json.dump(results, handle, indent=2)
        chart(results, os.path.join(out, "ingest.png"))
        print(
            json.dumps(
                {
                    k: results[k]
                    for k in (
                        "ingest",
                        "baseline",
                        "ratio",
                        "processing_ratio",
                        "receive",
                        "workers_1",
                        "workers_3",
                        "three_vs_one_worker",
                        "targets",
                    )
                },
                indent=1,
            )
        )
    finally:
        moto.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
