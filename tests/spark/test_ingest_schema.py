"""Schema evolution of the ingest target on the real engine: add_new_columns and rescue."""

import json
import os

import pytest

from lakehouse_ops.ingest.job import IngestJob

from ingest_helpers import Landing, create_target, ingest_config, records

pytestmark = pytest.mark.spark


@pytest.fixture
def landing(aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    return Landing(client("sqs"), tmp_path / "landing", table_name.replace(".", "-"))


def run(spark, config):
    return IngestJob(config, spark=spark).run(until_empty=True)


def with_extra(rows, **extra):
    return [dict(r, **{k: v(r) for k, v in extra.items()}) for r in rows]


def test_add_new_columns_adds_nested_and_top_level_fields_with_the_batch(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    spark.sql("ALTER TABLE %s ADD COLUMN geo STRUCT<country: STRING>" % ref)
    config = ingest_config(warehouse, landing, table_name, schema_evolution="add_new_columns")
    landing.put("a/old.json", records(0, 5))
    landing.put(
        "a/new.json",
        with_extra(
            records(5, 5),
            region=lambda r: "eu-%d" % r["rec_id"],
            geo=lambda r: {"country": "NL", "city": "c%d" % r["rec_id"]},
            sizes=lambda r: [r["rec_id"], 1],
        ),
    )
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 10
    changes = [c for b in report["batches"] for c in b.get("schema_changes", [])]
    assert sorted(changes) == ["add geo.city STRING", "add region STRING", "add sizes ARRAY<BIGINT>"]
    fields = {f.name: f.dataType.simpleString() for f in spark.table(ref).schema.fields}
    assert fields["region"] == "string" and fields["geo"] == "struct<country:string,city:string>"
    assert fields["sizes"] == "array<bigint>"
    rows = {r.rec_id: r for r in spark.table(ref).collect()}
    assert len(rows) == 10
    assert rows[7].region == "eu-7" and rows[7].geo.city == "c7" and list(rows[7].sizes) == [7, 1]
    assert rows[2].region is None and rows[2].geo is None
    # The next batch without the new fields writes them as null; the schema stays.
    landing.put("a/later.json", records(10, 2))
    assert run(spark, config)["totals"]["rows"] == 2
    assert spark.table(ref).filter("rec_id >= 10 AND region IS NULL").count() == 2


def test_add_new_columns_widens_declared_parquet_types(spark, warehouse, landing, table_name, tmp_path):
    ref = "lake.%s" % table_name
    spark.sql("CREATE TABLE %s (rec_id INT, amount DECIMAL(8,2), name STRING) USING iceberg" % ref)
    frame = spark.createDataFrame(
        [(3000000000, "12.345", "x", 1.5)], "rec_id BIGINT, amount STRING, name STRING, ratio DOUBLE"
    ).selectExpr("rec_id", "CAST(amount AS DECIMAL(12,2)) AS amount", "name", "ratio")
    out = os.path.join(landing.root, "p")
    frame.coalesce(1).write.parquet(out)
    name = [f for f in os.listdir(out) if f.endswith(".parquet")][0]
    landing.announce("p/" + name)
    config = ingest_config(warehouse, landing, table_name, fmt="parquet", schema_evolution="add_new_columns")
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 1, report
    fields = {f.name: f.dataType.simpleString() for f in spark.table(ref).schema.fields}
    assert fields["rec_id"] == "bigint" and fields["amount"] == "decimal(12,2)" and fields["ratio"] == "double"
    row = spark.table(ref).collect()[0]
    assert row.rec_id == 3000000000 and str(row.amount) == "12.35" and row.ratio == 1.5


def test_rescue_keeps_every_record_and_puts_what_does_not_fit_aside(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, schema_evolution="rescue")
    good = records(0, 3)
    odd = records(3, 3)
    odd[0]["bytes_sent"] = "lots"  # does not fit BIGINT
    odd[1]["Customer_ID"] = odd[1].pop("customer_id")  # names its column in another case
    odd[2]["extra"] = {"nested": [1, 2]}  # unknown field
    landing.put("r/mixed.json", good + odd, extra_lines=["not json at all", "   "])
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 6 and report["totals"]["quarantined"] == 1, report
    rows = {r.rec_id: r for r in spark.table(ref).collect()}
    assert all(rows[i]._rescued_data is None for i in range(3))
    assert rows[3].bytes_sent is None and json.loads(rows[3]._rescued_data) == {"bytes_sent": "lots"}
    assert rows[3].customer_id == odd[0]["customer_id"]  # the other fields of that record are kept
    assert rows[4].customer_id == odd[1]["Customer_ID"] and rows[4]._rescued_data is None
    assert json.loads(json.loads(rows[5]._rescued_data)["extra"]) == {"nested": [1, 2]}
    quarantined = spark.table(ref + "_quarantine").collect()
    assert [q.raw for q in quarantined] == ["not json at all"]


def test_rescue_without_a_quarantine_table_dead_letters_a_file_with_a_line_that_is_not_json(
    spark, warehouse, landing, table_name
):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, schema_evolution="rescue", quarantine_table=None)
    landing.put("r/good.json", records(0, 2))
    landing.put("r/bad.json", records(2, 2), extra_lines=["{broken"])
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 2
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1]
    dead = landing.dlq_messages()
    assert len(dead) == 1 and "do not fit" in dead[0]["MessageAttributes"]["lakehouse_ops_reason"]["StringValue"]


def test_rescue_csv_keeps_every_record_and_rescues_values_that_do_not_fit(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse, landing, table_name, fmt="csv", read_options={"header": "true"}, schema_evolution="rescue"
    )
    path = os.path.join(landing.root, "c/part.csv")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write(
            "event_time,customer_id,bytes_sent,rec_id\n"
            "2024-05-13 10:00:00,c1,10,1\n"
            "2024-05-13 11:00:00,c2,oops,2\n"
            "yesterday,c3,30,3\n"
            '2024-05-13 12:00:00,"c,4",40,4,surplus\n'
        )
    landing.announce("c/part.csv")
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 4 and report["totals"]["quarantined"] == 0, report
    rows = {r.rec_id: r for r in spark.table(ref).collect()}
    assert rows[1]._rescued_data is None and rows[1].bytes_sent == 10
    assert rows[2].bytes_sent is None and json.loads(rows[2]._rescued_data) == {"bytes_sent": "oops"}
    assert rows[3].event_time is None and json.loads(rows[3]._rescued_data) == {"event_time": "yesterday"}
    assert rows[4].customer_id == "c,4" and json.loads(rows[4]._rescued_data) == {"_extra_1": "surplus"}
