"""Ingest settings (schema evolution modes, upserts), the status summary, the format check and Avro schemas:
pure, no Spark."""

import pytest

from lakehouse_ops.config import config_from_dict
from lakehouse_ops.errors import ConfigError


def _ingest(**extra):
    section = {"queue_url": "http://q", "dlq_url": "http://d", "target_table": "db.t"}
    section.update(extra)
    return {"catalog": {"name": "lake", "type": "hadoop", "warehouse": "/tmp/wh"}, "ingest": section}


def test_modes_are_validated_with_the_format_they_need():
    assert config_from_dict(_ingest()).section("ingest").schema_evolution == "fail"
    cfg = config_from_dict(_ingest(schema_evolution="rescue")).section("ingest")
    assert cfg.rescued_data_column == "_rescued_data"
    assert config_from_dict(_ingest(schema_evolution="rescue", format="avro")).section("ingest").format == "avro"
    with pytest.raises(ConfigError, match="header"):
        config_from_dict(_ingest(schema_evolution="add_new_columns", format="csv"))
    csv = _ingest(schema_evolution="add_new_columns", format="csv", read_options={"header": "true"})
    assert config_from_dict(csv).section("ingest").format == "csv"
    with pytest.raises(ConfigError, match="schema_evolution"):
        config_from_dict(_ingest(schema_evolution="evolve"))
    randomized = {"columns": ["customer_id"], "mode": "randomized"}
    upsert = {"keys": ["customer_id"], "order_by": "event_time"}
    section = _ingest(upsert=upsert, pseudonymize=randomized)
    section["pseudonymization"] = {"service_url": "http://127.0.0.1:1"}
    with pytest.raises(ConfigError, match="upsert key customer_id is pseudonymized randomized"):
        config_from_dict(section)


def test_status_summary_of_ledger_rows():
    import datetime

    from lakehouse_ops.ingest.status import summarize

    def at(seconds):
        return datetime.datetime.fromtimestamp(1_700_000_000 + seconds, tz=datetime.timezone.utc)

    rows = [
        {
            "object_id": "a",
            "batch_id": "b1",
            "status": "pending",
            "size": 10,
            "recorded_at": at(0),
            "event_time": at(-5),
        },
        {
            "object_id": "a",
            "batch_id": "b1",
            "status": "committed",
            "size": 10,
            "recorded_at": at(4),
            "event_time": at(-5),
            "target_snapshot_id": 11,
        },
        {
            "object_id": "b",
            "batch_id": "b2",
            "status": "committed",
            "size": 7,
            "recorded_at": at(9),
            "event_time": None,
            "target_snapshot_id": 12,
        },
        {
            "object_id": "c",
            "batch_id": "b2",
            "status": "committed",
            "size": 3,
            "recorded_at": at(9),
            "event_time": at(1),
            "target_snapshot_id": 12,
        },
        {"object_id": "d", "batch_id": "b3", "status": "pending", "size": 1, "recorded_at": at(10), "event_time": None},
        # killed after its commit, then redelivered and committed as b2: done with
        {"object_id": "c", "batch_id": "b0", "status": "pending", "size": 3, "recorded_at": at(2), "event_time": None},
        # announced, but its key held other bytes when read
        {
            "object_id": "e",
            "batch_id": "b2",
            "status": "superseded",
            "size": 5,
            "recorded_at": at(9),
            "event_time": None,
        },
    ]
    out = summarize(rows, now_ms=(1_700_000_000 + 20) * 1000.0, last=5)
    assert out["committed_batches"] == 2 and out["committed_objects"] == 3 and out["committed_bytes"] == 20
    assert [(c["batch_id"], c["objects"], c["bytes"], c["snapshot_id"], c["lag_s"]) for c in out["last_commits"]] == [
        ("b2", 2, 10, 12, 8.0),
        ("b1", 1, 10, 11, 9.0),
    ]
    assert out["since_last_commit_s"] == 11.0 and out["max_lag_s"] == 9.0
    assert [b["batch_id"] for b in out["uncommitted_batches"]] == ["b3"]
    assert out["superseded_count"] == 1 and out["superseded_objects"] == ["e"]
    assert summarize([], 0.0, 5)["last_commit_at"] is None


def test_format_mismatch_from_the_first_bytes():
    from lakehouse_ops.ingest.formats import mismatch

    assert mismatch("a.json", b'{"a"', "json") is None
    assert mismatch("a.json.gz", b"\x1f\x8b\x08\x00", "json") is None
    assert mismatch("a.csv.bz2", b"BZh9", "csv") is None
    assert mismatch("a.json", b"PAR1", "json") == "format mismatch: a Parquet file, not JSON lines"
    assert mismatch("a.csv", b"Obj\x01", "csv") == "format mismatch: an Avro file, not CSV"
    assert mismatch("a.json.gz", b'{"a"', "json") == "format mismatch: named .gz but not gz-compressed"
    assert "not named .gz" in mismatch("a.json", b"\x1f\x8b\x08\x00", "json")
    assert mismatch("a.parquet", b"PAR1", "parquet") is None and mismatch("x", b"Obj\x01", "avro") is None
    assert "not a Parquet file" in mismatch("a.parquet", b'{"a"', "parquet")
    assert mismatch("empty.json", b"", "json") is None  # an empty file is an empty batch of records


def test_avro_writer_schemas_as_spark_types():
    import io

    import fastavro

    from lakehouse_ops.ingest.formats import avro_fields, avro_type_ddl

    assert avro_type_ddl(["null", "long"]) == "bigint"
    assert avro_type_ddl({"type": "long", "logicalType": "timestamp-micros"}) == "timestamp"
    assert avro_type_ddl({"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}) == "decimal(12,2)"
    assert avro_type_ddl({"type": "map", "values": {"type": "array", "items": "int"}}) == "map<string,array<int>>"
    assert avro_type_ddl({"type": "record", "name": "g", "fields": [{"name": "x", "type": "double"}]}) == (
        "struct<`x`:double>"
    )
    with pytest.raises(ValueError, match="single column type"):
        avro_type_ddl(["int", "string"])

    def header(fields):
        out = io.BytesIO()
        schema = {"type": "record", "name": "r", "fields": fields}
        fastavro.writer(out, fastavro.parse_schema(schema), [], codec="deflate")
        return out.getvalue()

    a = header([{"name": "id", "type": "long"}, {"name": "tag", "type": ["null", "string"]}])
    b = header([{"name": "id", "type": "int"}, {"name": "when", "type": {"type": "int", "logicalType": "date"}}])
    assert avro_fields([a, b]) == [("id", "bigint"), ("tag", "string"), ("when", "date")]


def test_declared_values_that_do_not_fit_and_unknown_fields_are_rescued():
    import datetime
    import json

    import pyarrow as pa

    from lakehouse_ops.ingest.rescue import rescued_table

    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("at", pa.timestamp("us", tz="UTC"))])
    moment = datetime.datetime(2024, 5, 13, tzinfo=datetime.timezone.utc)
    records = [
        {"id": 1, "name": "a", "at": moment},
        {"id": "two", "name": "b", "at": moment, "extra": {"k": [1]}},
        {"id": 3, "name": 4, "at": "yesterday"},
        {"id": 2**70, "name": None},
    ]
    table = rescued_table(records, schema, "_rescued_data").to_pylist()
    assert [r["id"] for r in table] == [1, None, 3, None]
    # A STRING column takes a number as its text (a numeric id in a pseudonymized column is never rescued).
    assert [r["name"] for r in table] == ["a", "b", "4", None]
    assert table[0]["_rescued_data"] is None and table[0]["at"] == moment
    assert json.loads(table[1]["_rescued_data"]) == {"id": "two", "extra": {"k": [1]}}
    assert json.loads(table[2]["_rescued_data"]) == {"at": "yesterday"}
    assert json.loads(table[3]["_rescued_data"]) == {"id": 2**70}
