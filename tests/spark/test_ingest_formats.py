"""Landing formats on the real engine: JSON lines compressed with bzip2, Avro (deflate and uncompressed), and files
of the wrong format dead-lettered with the reason instead of being read as garbage."""

import bz2
import datetime
import os

import fastavro
import pytest

from lakehouse_ops.ingest.job import IngestJob

from ingest_helpers import Landing, create_target, ingest_config, records, write_json_lines

pytestmark = pytest.mark.spark
AVRO_SCHEMA = {
    "type": "record",
    "name": "Request",
    "fields": [
        {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "customer_id", "type": ["null", "string"]},
        {"name": "bytes_sent", "type": "long"},
        {"name": "rec_id", "type": "long"},
        {"name": "ignored_extra", "type": "string"},
    ],
}


@pytest.fixture
def landing(aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    return Landing(client("sqs"), tmp_path / "landing", table_name.replace(".", "-"))


def put_bytes(landing, key, data):
    path = os.path.join(landing.root, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    landing.announce(key)


def avro_file(landing, key, rows, codec):
    path = os.path.join(landing.root, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        fastavro.writer(
            handle,
            fastavro.parse_schema(AVRO_SCHEMA),
            [
                dict(
                    r,
                    event_time=datetime.datetime.fromisoformat(r["event_time"].replace("Z", "+00:00")),
                    ignored_extra="x",
                )
                for r in rows
            ],
            codec=codec,
        )
    landing.announce(key)


def reasons(landing):
    return sorted(m["MessageAttributes"]["lakehouse_ops_reason"]["StringValue"] for m in landing.dlq_messages())


def test_avro_in_both_codecs_and_a_parquet_file_announced_to_an_avro_target(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    avro_file(landing, "avro/deflate.avro", records(0, 5), "deflate")
    avro_file(landing, "avro/plain.avro", records(5, 5), "null")
    spark.range(1).coalesce(1).write.parquet(os.path.join(landing.root, "avro-pq"))
    [name] = [n for n in os.listdir(os.path.join(landing.root, "avro-pq")) if n.endswith(".parquet")]
    landing.announce("avro-pq/" + name)
    report = IngestJob(ingest_config(warehouse, landing, table_name, fmt="avro"), spark=spark).run(until_empty=True)
    assert report["totals"]["rows"] == 10
    rows = {r.rec_id: r for r in spark.table(ref).collect()}
    assert sorted(rows) == list(range(10)) and rows[7].customer_id == records(7, 1)[0]["customer_id"]
    assert rows[3].event_time == datetime.datetime(2024, 5, 13, 0, 3)  # the session's zone is UTC
    [reason] = reasons(landing)
    assert "format mismatch: not an Avro file" in reason and "a Parquet file" in reason and name in reason


def test_json_bz2_and_files_of_the_wrong_format_for_a_json_target(spark, warehouse, landing, table_name, tmp_path):
    ref = create_target(spark, table_name)
    lines = write_json_lines(str(tmp_path), "plain.json", records(0, 4))
    data = open(os.path.join(str(tmp_path), "plain.json"), "rb").read()
    assert lines == len(data)
    put_bytes(landing, "j/packed.json.bz2", bz2.compress(data))
    put_bytes(landing, "j/not-really.json.gz", data)  # named .gz, not compressed
    avro_file(landing, "j/events.json", records(10, 2), "null")  # an Avro file under a .json name
    spark.range(1).coalesce(1).write.parquet(os.path.join(landing.root, "jpq"))
    [name] = [n for n in os.listdir(os.path.join(landing.root, "jpq")) if n.endswith(".parquet")]
    landing.announce("jpq/" + name)
    report = IngestJob(ingest_config(warehouse, landing, table_name), spark=spark).run(until_empty=True)
    assert report["totals"]["rows"] == 4 and report["totals"]["quarantined"] == 0
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 2, 3]
    got = reasons(landing)
    assert len(got) == 3
    assert any("not-really.json.gz: format mismatch: named .gz but not gz-compressed" in r for r in got)
    assert any("events.json: format mismatch: an Avro file, not JSON lines" in r for r in got)
    assert any("format mismatch: a Parquet file, not JSON lines" in r for r in got)


def test_avro_with_add_new_columns_adds_fields_and_widens_declared_types(spark, warehouse, landing, table_name):
    ref = "lake.%s" % table_name
    spark.sql("CREATE TABLE %s (rec_id INT, name STRING) USING iceberg" % ref)
    schema = {
        "type": "record",
        "name": "Row",
        "fields": [
            {"name": "rec_id", "type": "long"},
            {"name": "name", "type": "string"},
            {
                "name": "geo",
                "type": ["null", {"type": "record", "name": "Geo", "fields": [{"name": "cc", "type": "string"}]}],
            },
            {"name": "tags", "type": {"type": "array", "items": "string"}},
        ],
    }
    path = os.path.join(landing.root, "evolve/rows.avro")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        fastavro.writer(
            handle,
            fastavro.parse_schema(schema),
            [{"rec_id": 3_000_000_000, "name": "a", "geo": {"cc": "NL"}, "tags": ["x", "y"]}],
            codec="deflate",
        )
    landing.announce("evolve/rows.avro")
    config = ingest_config(warehouse, landing, table_name, fmt="avro", schema_evolution="add_new_columns")
    report = IngestJob(config, spark=spark).run(until_empty=True)
    assert report["ok"] and report["totals"]["rows"] == 1, report
    fields = {f.name: f.dataType.simpleString() for f in spark.table(ref).schema.fields}
    assert fields["rec_id"] == "bigint" and fields["geo"] == "struct<cc:string>" and fields["tags"] == "array<string>"
    row = spark.table(ref).collect()[0]
    assert row.rec_id == 3_000_000_000 and row.geo.cc == "NL" and list(row.tags) == ["x", "y"]


def test_rescue_for_parquet_and_avro_keeps_records_whose_declared_types_do_not_fit(
    spark, warehouse, landing, table_name
):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    ref = create_target(spark, table_name)
    # A Parquet file declaring bytes_sent as text, with a column the target lacks.
    table = pa.table(
        {
            "event_time": pa.array([datetime.datetime(2024, 5, 13, 1, tzinfo=datetime.timezone.utc)] * 2),
            "customer_id": ["c1", "c2"],
            "bytes_sent": ["lots", "7"],
            "rec_id": [1, 2],
            "note": ["x", None],
        }
    )
    path = os.path.join(landing.root, "resc/a.parquet")
    os.makedirs(os.path.dirname(path))
    pq.write_table(table, path)
    landing.announce("resc/a.parquet")
    config = ingest_config(warehouse, landing, table_name, fmt="parquet", schema_evolution="rescue")
    report = IngestJob(config, spark=spark).run(until_empty=True)
    assert report["ok"] and report["totals"]["rows"] == 2, report
    rows = {r.rec_id: r for r in spark.table(ref).collect()}
    assert rows[1].bytes_sent is None and json.loads(rows[1]._rescued_data) == {"bytes_sent": "lots", "note": "x"}
    assert json.loads(rows[2]._rescued_data) == {"bytes_sent": "7"} and rows[2].customer_id == "c2"

    # An Avro file (its extra field rescued too).
    avro_file(landing, "resc/b.avro", records(10, 2), "deflate")
    config = ingest_config(warehouse, landing, table_name, fmt="avro", schema_evolution="rescue")
    assert IngestJob(config, spark=spark).run(until_empty=True)["totals"]["rows"] == 2
    rows = {r.rec_id: r for r in spark.table(ref).collect()}
    assert rows[10].bytes_sent == 100 and json.loads(rows[10]._rescued_data) == {"ignored_extra": "x"}
