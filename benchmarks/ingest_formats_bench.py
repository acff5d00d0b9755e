"""Ingest rows/s per landing format, for upserts and for rescue, each next to a plain Spark read + append of the same
files in the same run.

    python benchmarks/ingest_formats_bench.py [--files 100] [--rows-per-file 5000] [--out benchmarks/out]

The same rows are written as JSON lines, gzip JSON, CSV, gzip CSV, Parquet and Avro (deflate). For each mode the
plain read + append of the files into a fresh table comes first, then `lakehouse-ops ingest --until-empty` of the
same files announced on SQS (moto's server, benchmarks/fast_moto.py) into another fresh table; rows/s of both and
their ratio are recorded, and every row checked once in the target. Avro's plain read is lakehouse-ops' own
reader (Spark's Avro source is not installed here). Upserts (keys customer_id + url, latest requested_at wins) are
measured next to the plain append and next to a plain `MERGE INTO` of the same files; rescue next to the plain
JSON read. Writes <out>/ingest_formats.json and <out>/ingest_formats.png.
"""

import argparse
import csv
import datetime
import gzip
import io
import json
import os
import random
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from ingest_bench import send_events  # noqa: E402

from lakehouse_ops.aws.local import start_moto  # noqa: E402
from lakehouse_ops.config import config_from_dict  # noqa: E402
from lakehouse_ops.engine import build_session  # noqa: E402
from lakehouse_ops.ingest.demo import DEMO_SCHEMA  # noqa: E402
from lakehouse_ops.ingest.formats import load_avro  # noqa: E402
from lakehouse_ops.ingest.job import IngestJob  # noqa: E402
from lakehouse_ops.ingest.read import RAW_LOCAL_FILES  # noqa: E402
from lakehouse_ops.paths import glob_escape  # noqa: E402

from maintenance_bench import machine  # noqa: E402

CATALOG = "bench"
BUCKET = "landing-bucket"
COLUMNS = ["requested_at", "customer_id", "provider", "status", "bytes_sent", "url"]
AVRO_SCHEMA = {
    "type": "record",
    "name": "Request",
    "fields": [
        {"name": "requested_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "customer_id", "type": "string"},
        {"name": "provider", "type": "string"},
        {"name": "status", "type": "int"},
        {"name": "bytes_sent", "type": "long"},
        {"name": "url", "type": "string"},
    ],
}
# mode -> (landing format, file suffix, ingest settings)
MODES = {
    "json": ("json", ".json", {}),
    "json.gz": ("json", ".json.gz", {}),
    "csv": ("csv", ".csv", {"read_options": {"header": "true"}}),
    "csv.gz": ("csv", ".csv.gz", {"read_options": {"header": "true"}}),
    "parquet": ("parquet", ".parquet", {}),
    "avro": ("avro", ".avro", {}),
    "upsert": ("json", ".json", {"upsert": {"keys": ["customer_id", "url"], "order_by": "requested_at"}}),
    "rescue": ("json", ".json", {"schema_evolution": "rescue"}),
}


def rows_for(rng, count):
    base = datetime.datetime(2024, 5, 13, tzinfo=datetime.timezone.utc)
    return [
        {
            "requested_at": base
            + datetime.timedelta(seconds=rng.randrange(3 * 86400), microseconds=rng.randrange(10**6)),
            "customer_id": "c%05d" % rng.randrange(500),
            "provider": rng.choice(["edge-a", "edge-b"]),
            "status": rng.choice([200, 200, 200, 304, 404]),
            "bytes_sent": rng.randrange(100000),
            "url": "/assets/%d.jpg" % rng.randrange(1000),
        }
        for _ in range(count)
    ]


def encode(rows, suffix):
    """The bytes of one landing file."""
    import fastavro
    import pyarrow as pa
    import pyarrow.parquet as pq

    if suffix.startswith(".json"):
        text = "".join(
            json.dumps(dict(r, requested_at=r["requested_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"))) + "\n" for r in rows
        )
        data = text.encode()
    elif suffix.startswith(".csv"):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([r["requested_at"].strftime("%Y-%m-%d %H:%M:%S.%f")] + [r[c] for c in COLUMNS[1:]])
        data = out.getvalue().encode()
    elif suffix == ".parquet":
        sink = io.BytesIO()
        schema = pa.schema(
            [
                ("requested_at", pa.timestamp("us", tz="UTC")),
                ("customer_id", pa.string()),
                ("provider", pa.string()),
                ("status", pa.int32()),
                ("bytes_sent", pa.int64()),
                ("url", pa.string()),
            ]
        )
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
        data = sink.getvalue()
    else:
        sink = io.BytesIO()
        fastavro.writer(sink, fastavro.parse_schema(AVRO_SCHEMA), rows, codec="deflate")
        data = sink.getvalue()
    return gzip.compress(data) if suffix.endswith(".gz") else data


def write_files(landing, mode, suffix, files, rows_per_file, seed):
    """[(key, size, etag)] of the mode's files (the same rows for every mode)."""
    rng = random.Random(seed)
    written = []
    for i in range(files):
        key = "%s/part-%04d%s" % (mode, i, suffix)
        data = encode(rows_for(rng, rows_per_file), suffix)
        path = os.path.join(landing, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        written.append((key, len(data), "etag-%s-%d" % (mode, i)))
    return written


def plain_read(spark, fmt, settings, paths):
    if fmt == "avro":
        schema = spark.createDataFrame([], DEMO_SCHEMA).schema
        return load_avro(spark, schema, paths, RAW_LOCAL_FILES).drop("_lakehouse_ops_file")
    return spark.read.format(fmt).options(**settings.get("read_options", {})).schema(DEMO_SCHEMA).load(paths)


def measure_mode(spark, sqs, work, landing, mode, args):
    fmt, suffix, settings = MODES[mode]
    written = write_files(landing, mode, suffix, args.files, args.rows_per_file, seed=11)
    paths = [glob_escape("file://" + os.path.join(landing, key)) for key, _, _ in written]
    safe = mode.replace(".", "_")
    for table in ("plain_" + safe, "ingest_" + safe):
        spark.sql(
            "CREATE TABLE %s.bench.%s (%s) USING iceberg PARTITIONED BY (days(requested_at))"
            % (CATALOG, table, DEMO_SCHEMA)
        )
    started = time.time()
    plain_read(spark, fmt, settings, paths).writeTo("%s.bench.plain_%s" % (CATALOG, safe)).append()
    plain_s = time.time() - started
    total = args.files * args.rows_per_file
    out = {"format": fmt, "files": args.files, "rows": total, "plain_s": round(plain_s, 2)}
    if mode == "upsert":
        out["plain_merge_s"] = round(plain_merge(spark, fmt, settings, paths, safe), 2)

    queue_url = sqs.create_queue(QueueName="fmt-" + safe, Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName="fmt-%s-dlq" % safe)["QueueUrl"]
    send_events(sqs, queue_url, written)
    section = dict(
        settings,
        queue_url=queue_url,
        dlq_url=dlq_url,
        target_table="bench.ingest_" + safe,
        format=fmt,
        uri_map={"s3://%s/" % BUCKET: landing},
        batch={"max_objects": 50, "max_bytes": "1GB", "max_wait_seconds": 30, "wait_time_seconds": 0},
        visibility_timeout_seconds=300,
        heartbeat_seconds=60,
    )
    config = config_from_dict(dict(base_config(work), ingest=section))
    job = IngestJob(config, spark=spark, sqs=sqs)
    job.prepare()
    started = time.time()
    report = job.run(until_empty=True)
    ingest_s = time.time() - started
    landed = spark.table("%s.bench.ingest_%s" % (CATALOG, safe))
    expected = spark.table("%s.bench.plain_%s" % (CATALOG, safe))
    if mode == "upsert":
        expected = expected.dropDuplicates(["customer_id", "url"])
    out.update(
        ingest_s=round(ingest_s, 2),
        batches=report["totals"]["batches"],
        target_rows=landed.count(),
        expected_rows=expected.count(),
        plain_rows_per_s=round(total / plain_s, 1),
        ingest_rows_per_s=round(total / ingest_s, 1),
    )
    out["ratio"] = round(out["ingest_rows_per_s"] / out["plain_rows_per_s"], 3)
    if "plain_merge_s" in out:
        out["plain_merge_rows_per_s"] = round(total / out["plain_merge_s"], 1)
        out["ratio_to_plain_merge"] = round(out["ingest_rows_per_s"] / out["plain_merge_rows_per_s"], 3)
    out["exactly_once"] = out["target_rows"] == out["expected_rows"]
    return out


def plain_merge(spark, fmt, settings, paths, safe):
    """A plain MERGE INTO of the same files (latest per key), into a fresh table: the upsert's own baseline."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    table = "%s.bench.plain_merge_%s" % (CATALOG, safe)
    spark.sql("CREATE TABLE %s (%s) USING iceberg PARTITIONED BY (days(requested_at))" % (table, DEMO_SCHEMA))
    started = time.time()
    window = Window.partitionBy("customer_id", "url").orderBy(F.col("requested_at").desc())
    plain_read(spark, fmt, settings, paths).withColumn("_r", F.row_number().over(window)).filter("_r = 1").drop(
        "_r"
    ).createOrReplaceTempView("bench_source")
    spark.sql(
        "MERGE INTO %s t USING bench_source s ON t.customer_id = s.customer_id AND t.url = s.url "
        "WHEN MATCHED AND s.requested_at > t.requested_at THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *" % table
    )
    return time.time() - started


def base_config(work):
    return {
        "catalog": {"name": CATALOG, "type": "hadoop", "warehouse": os.path.join(work, "warehouse")},
        "spark": {
            "mode": "local",
            "master": "local[*]",
            "conf": {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8"},
        },
    }


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(results["modes"])
    fig, ax = plt.subplots(figsize=(12, 4.5))
    xs = range(len(modes))
    ax.bar(
        [x - 0.2 for x in xs],
        [results["modes"][m]["plain_rows_per_s"] for m in modes],
        0.4,
        label="plain read+append",
        color="C7",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [results["modes"][m]["ingest_rows_per_s"] for m in modes],
        0.4,
        label="SQS ingest",
        color="C2",
    )
    ax.set_xticks(list(xs))
    ax.set_xticklabels(["%s\n%.2fx" % (m, results["modes"][m]["ratio"]) for m in modes])
    ax.set_ylabel("rows/s")
    ax.set_title("ingest rows/s per format and mode, next to a plain read + append (ratio below)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--rows-per-file", type=int, default=5000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    work = os.path.join(out, "ingest-formats-work")
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
        spark = build_session(config_from_dict(base_config(work)))
        spark.sql("CREATE NAMESPACE IF NOT EXISTS %s.bench" % CATALOG)
        results = {"machine": machine(), "parameters": vars(args), "modes": {}}
        # Warm the JVM (class loading, JIT) on a throwaway read + append, so the first mode is not measured cold.
        warm = write_files(landing, "warm-up", ".json", 20, args.rows_per_file, seed=3)
        spark.sql("CREATE TABLE %s.bench.warm_up (%s) USING iceberg" % (CATALOG, DEMO_SCHEMA))
        plain_read(spark, "json", {}, ["file://" + os.path.join(landing, k) for k, _, _ in warm]).writeTo(
            "%s.bench.warm_up" % CATALOG
        ).append()
        for mode in args.modes.split(","):
            results["modes"][mode] = measure_mode(spark, sqs, work, landing, mode, args)
            print(mode, json.dumps(results["modes"][mode]), flush=True)
        results["exactly_once"] = all(m["exactly_once"] for m in results["modes"].values())
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "ingest_formats.json"), "w") as handle:
            json.dump(results, handle, indent=2)
        chart(results, os.path.join(out, "ingest_formats.png"))
        spark.stop()
    finally:
        moto.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
