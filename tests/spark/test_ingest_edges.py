"""Ingest at the edges producers reach: keys overwritten before they are read, headers in another order, case
variants, protected values of the wrong type, malformed records without a quarantine table."""

import json
import os

import fastavro
import pytest

from lakehouse_ops.ingest.job import IngestJob

from ingest_helpers import Landing, create_target, ingest_config, records

pytestmark = pytest.mark.spark


@pytest.fixture
def landing(aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    return Landing(client("sqs"), tmp_path / "landing", table_name.replace(".", "-"))


def run(spark, config, **kw):
    kw.setdefault("until_empty", True)
    return IngestJob(config, spark=spark).run(**kw)


def ledger_states(spark, table_name):
    rows = spark.table("lake.%s_ingest_ledger" % table_name).collect()
    return sorted((r.object_id.rsplit("#", 1)[1], r.status) for r in rows)


@pytest.mark.parametrize("max_objects", [1000, 1], ids=["one batch", "a batch each"])
def test_a_key_overwritten_before_it_is_read_lands_only_the_bytes_it_holds(
    spark, warehouse, landing, table_name, max_objects
):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, batch={"max_objects": max_objects, "max_wait_seconds": 2})
    landing.put("k/file.json", records(0, 5))
    first = json.loads(landing.notification("k/file.json"))["Records"][0]["s3"]["object"]["eTag"]
    landing.put("k/file.json", records(100, 3))  # written again before any worker read the first
    second = json.loads(landing.notification("k/file.json"))["Records"][0]["s3"]["object"]["eTag"]

    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 3 and report["totals"]["superseded"] == 1, report
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [100, 101, 102]
    named = {k: v for b in report["batches"] for k, v in b.get("superseded_objects", {}).items()}
    assert list(named) == ["landing-bucket/k/file.json#" + first] and "holds other bytes now" in named[list(named)[0]]
    states = ledger_states(spark, table_name)
    assert (first, "superseded") in states and (second, "committed") in states
    assert (first, "committed") not in states
    from lakehouse_ops.ingest.status import ingest_status

    status = ingest_status(config)
    assert status["superseded_count"] == 1 and status["superseded_objects"] == list(named)

    # The first announcement delivered again later: still superseded, never read as the second bytes.
    landing.send(landing.notification("k/file.json").replace(second, first))
    again = run(spark, config)
    assert again["totals"]["rows"] == 0 and again["totals"]["superseded"] == 1
    assert spark.table(ref).count() == 3 and landing.depth() == 0 and landing.dlq_messages() == []


def test_a_versioned_bucket_is_read_at_each_announced_version(spark, warehouse, landing, table_name):
    """On S3 (moto's server, read through S3A): a key written twice before it is read gives each version's own
    rows once, the older one read from a copy of its version."""
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.ingest import events

    s3 = client("s3")
    bucket = "versioned-" + table_name.replace(".", "-").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)
    for rows in (records(0, 5), records(100, 3)):
        body = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
        put = s3.put_object(Bucket=bucket, Key="v/file.json", Body=body)
        notification = json.loads(events.s3_notification(bucket, "v/file.json", len(body), put["ETag"].strip('"')))
        notification["Records"][0]["s3"]["object"]["versionId"] = put["VersionId"]
        landing.send(json.dumps(notification))
    landing.send(json.dumps(notification))  # the second announced twice

    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 8 and report["totals"]["superseded"] == 0, report
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 2, 3, 4, 100, 101, 102]
    sources = {r._source_object for r in spark.table(ref).collect()}
    assert sources == {"s3://%s/v/file.json" % bucket}
    assert len([s for s in ledger_states(spark, table_name) if s[1] == "committed"]) == 2
    assert landing.depth() == 0 and landing.dlq_messages() == []
    copies = os.path.join(str(warehouse), "_lakehouse_ops", "ingest-claims", table_name, "versions")
    assert [f for _, _, files in os.walk(copies) for f in files] == []  # the copy of the version is gone


def test_reconcile_from_an_inventory_and_a_versioned_notification_commit_an_object_once(
    spark, warehouse, landing, table_name, tmp_path
):
    """An S3 Inventory "current versions" report names no version id; the object's notification does. Both name
    the same bytes, so the object reconciled first is found committed when its notification arrives."""
    import gzip
    import time

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.ingest import events
    from lakehouse_ops.ingest.reconcile import reconcile

    s3 = client("s3")
    bucket = "inv-src-" + table_name.replace(".", "-").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ref = create_target(spark, table_name)
    body = ("\n".join(json.dumps(r) for r in records(0, 4)) + "\n").encode()
    put = s3.put_object(Bucket=bucket, Key="in/a.json", Body=body)
    etag = put["ETag"].strip('"')
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    (tmp_path / "inv" / "data").mkdir(parents=True)
    line = '"%s","in/a.json","%d","%s","%s"\n' % (bucket, len(body), now, etag)
    (tmp_path / "inv" / "data" / "part.csv.gz").write_bytes(gzip.compress(line.encode()))
    manifest = {
        "sourceBucket": bucket,
        "destinationBucket": "arn:aws:s3:::inventory-bucket",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [{"key": "data/part.csv.gz"}],
    }
    (tmp_path / "inv" / "manifest.json").write_text(json.dumps(manifest))
    uri_map = {"s3://landing-bucket/": landing.root, "s3://inventory-bucket/": str(tmp_path / "inv")}
    config = ingest_config(warehouse, landing, table_name, uri_map=uri_map)
    job = IngestJob(config, spark=spark)
    window = (time.time() * 1000 - 3600 * 1000, time.time() * 1000 + 1000)
    done = reconcile(
        job, "s3://%s/in/" % bucket, *window, 100, 1 << 30, inventory="s3://inventory-bucket/manifest.json"
    )
    assert done["ok"] and done["rows"] == 4, done

    notification = json.loads(events.s3_notification(bucket, "in/a.json", len(body), etag))
    notification["Records"][0]["s3"]["object"]["versionId"] = put["VersionId"]
    landing.send(json.dumps(notification))
    report = run(spark, config)
    assert report["totals"]["rows"] == 0 and report["totals"]["already_committed"] == 1, report
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 2, 3]


def write_file(landing, key, text):
    path = os.path.join(landing.root, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    landing.announce(key)


def pseudonymized(pseudo_service, monkeypatch):
    """The sections that pseudonymize customer_id through the reference service (ingest's and the service's)."""
    from conftest import PSEUDO_API_KEY

    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    settings = {"service_url": pseudo_service.url, "batch_size": 50, "max_retries": 1}
    return {"pseudonymize": {"columns": ["customer_id"]}}, {"pseudonymization": settings}


def plaintext_in(rows, plaintext):
    """Every string value of `rows` (Spark Rows, nested values as their text) that holds a plaintext value."""
    found = []
    for row in rows:
        for name, value in row.asDict(recursive=True).items():
            if name == "_ingest_batch":  # a random batch id: its hex digits may spell an id by chance
                continue
            text = json.dumps(value, default=str)
            found += [(name, p) for p in plaintext if p in text]
    return found


def tokens_back(spark, pseudo_service, ref):
    from lakehouse_ops.pseudo.spark import ServiceSettings, reidentify

    plain = reidentify(spark.table(ref), ["customer_id"], ServiceSettings(url=pseudo_service.url))
    return {r.rec_id: r.customer_id for r in plain.collect()}


def test_csv_columns_are_read_by_the_header_in_any_order(
    spark, warehouse, landing, table_name, pseudo_service, monkeypatch
):
    """A header naming the columns in another order (and one column the target lacks) lands each value in its
    own column; the protected one is pseudonymized, and no plaintext id reaches another column."""
    ingest, sections = pseudonymized(pseudo_service, monkeypatch)
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse, landing, table_name, fmt="csv", read_options={"header": "true"}, sections=sections, **ingest
    )
    write_file(
        landing,
        "c/reordered.csv",
        "event_time,url,customer_id,rec_id,bytes_sent\n"
        "2024-05-13 10:00:00,https://a.example/x,c101,1,10\n"
        "2024-05-13 11:00:00,https://a.example/y,c102,2,20\n",
    )
    write_file(landing, "c/plain.csv.gz".replace(".gz", ""), "REC_ID,Customer_Id,BYTES_SENT\n3,c103,30\n")
    write_file(landing, "c/twice.csv", "rec_id,customer_id,CUSTOMER_ID\n4,c104,c105\n")
    write_file(landing, "c/headless.csv", "2024-05-13 12:00:00,c106,60,6\n")
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 3, report
    rows = {r.rec_id: r for r in spark.table(ref).collect()}
    assert sorted(rows) == [1, 2, 3]
    assert (rows[1].bytes_sent, rows[2].bytes_sent, rows[3].bytes_sent) == (10, 20, 30)
    assert str(rows[1].event_time) == "2024-05-13 10:00:00" and rows[3].event_time is None
    assert tokens_back(spark, pseudo_service, ref) == {1: "c101", 2: "c102", 3: "c103"}
    assert plaintext_in(spark.table(ref).collect(), ["c101", "c102", "c103", "https://"]) == []
    reasons = sorted(m["MessageAttributes"]["lakehouse_ops_reason"]["StringValue"] for m in landing.dlq_messages())
    assert len(reasons) == 2
    assert any("columns 2 and 3 name one column twice" in r for r in reasons)
    assert any("names none of the target's columns" in r for r in reasons)
    assert not [r for r in reasons for p in ("c104", "c105", "c106") if p in r]  # the lines are never quoted


def test_csv_rescue_sets_aside_a_record_whose_protected_value_may_have_moved(
    spark, warehouse, landing, table_name, pseudo_service, monkeypatch
):
    """CSV with `rescue` on a target with a pseudonymized column: an unquoted separator inside a protected value
    shifts the rest of its line (values past the header, a value that does not fit): which value is whose is
    unknown, so the record is quarantined without its text; the other records land, and no plaintext id lands in
    `_rescued_data` or anywhere else."""
    ingest, sections = pseudonymized(pseudo_service, monkeypatch)
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse,
        landing,
        table_name,
        fmt="csv",
        read_options={"header": "true"},
        schema_evolution="rescue",
        sections=sections,
        **ingest,
    )
    write_file(
        landing,
        "c/shifted.csv",
        "rec_id,customer_id,bytes_sent\n"
        "1,c201,10\n"
        "2,Smith, c202,20\n"  # the separator inside the value: "c202" lands under bytes_sent, "20" past the header
        "3,c203,lots\n",  # a value that does not fit, next to a protected one
    )
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 1, report
    assert tokens_back(spark, pseudo_service, ref) == {1: "c201"}
    quarantined = spark.table(ref + "_quarantine").collect()
    assert len(quarantined) == 2 and all(q.raw is None for q in quarantined), quarantined
    said = plaintext_in(spark.table(ref).collect() + quarantined, ["c201", "c202", "c203", "Smith"])
    assert said == [] and "c202" not in json.dumps(report, default=str)


def test_add_new_columns_adds_a_csv_column_from_the_middle_of_the_header(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse, landing, table_name, fmt="csv", read_options={"header": "true"}, schema_evolution="add_new_columns"
    )
    write_file(
        landing, "n/new.csv", "event_time,region,customer_id,bytes_sent,rec_id\n2024-05-13 10:00:00,eu-west,c1,10,1\n"
    )
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 1, report
    row = spark.table(ref).collect()[0]
    assert (row.region, row.customer_id, row.bytes_sent, row.rec_id) == ("eu-west", "c1", 10, 1)


def test_json_keys_match_columns_regardless_of_case(spark, warehouse, landing, table_name):
    """add_new_columns: `Bytes_Sent` fills bytes_sent (no new column); a record naming one column twice is a
    misfit, quarantined."""
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, schema_evolution="add_new_columns")
    rows = records(0, 3)
    for r in rows:
        r["Bytes_Sent"] = r.pop("bytes_sent")
    rows[2]["region"] = "eu"
    twice = dict(records(3, 1)[0], Customer_ID="other")
    landing.put("j/case.json", rows + [twice])
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 3 and report["totals"]["quarantined"] == 1, report
    got = {r.rec_id: r for r in spark.table(ref).collect()}
    assert [got[i].bytes_sent for i in range(3)] == [0, 10, 20] and got[2].region == "eu"
    assert "Bytes_Sent" not in spark.table(ref).columns
    assert [json.loads(q.raw)["rec_id"] for q in spark.table(ref + "_quarantine").collect()] == [3]


def test_rescue_never_rescues_a_protected_value(
    spark, warehouse, landing, table_name, pseudo_service, monkeypatch, tmp_path
):
    """A numeric customer_id in a Parquet or Avro file, a `Customer_ID` key in JSON: pseudonymized in their column,
    never kept as plaintext in `_rescued_data`."""
    ingest, sections = pseudonymized(pseudo_service, monkeypatch)
    ref = create_target(spark, table_name)
    frame = spark.createDataFrame(
        [(1, 9001, 10, "x")], "rec_id BIGINT, customer_id BIGINT, bytes_sent BIGINT, note STRING"
    )
    out = os.path.join(landing.root, "p")
    frame.coalesce(1).write.parquet(out)
    name = [f for f in os.listdir(out) if f.endswith(".parquet")][0]
    landing.announce("p/" + name)
    pq_config = ingest_config(
        warehouse, landing, table_name, fmt="parquet", schema_evolution="rescue", sections=sections, **ingest
    )
    assert run(spark, pq_config)["totals"]["rows"] == 1
    json_config = ingest_config(warehouse, landing, table_name, schema_evolution="rescue", sections=sections, **ingest)
    landing.put(
        "j/ids.json", [dict(rec_id=2, Customer_ID=9002, bytes_sent="lots"), dict(rec_id=3, customer_id="c9003")]
    )
    report = run(spark, json_config)
    assert report["ok"] and report["totals"]["rows"] == 2, report
    # Avro: a long customer_id, as a producer's schema types it.
    schema = {
        "type": "record",
        "name": "Event",
        "fields": [
            {"name": "rec_id", "type": "long"},
            {"name": "customer_id", "type": "long"},
            {"name": "note", "type": "string"},
        ],
    }
    os.makedirs(os.path.join(landing.root, "a"))
    with open(os.path.join(landing.root, "a", "ids.avro"), "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), [dict(rec_id=4, customer_id=9004, note="y")])
    landing.announce("a/ids.avro")
    avro_config = ingest_config(
        warehouse, landing, table_name, fmt="avro", schema_evolution="rescue", sections=sections, **ingest
    )
    report = run(spark, avro_config)
    assert report["ok"] and report["totals"]["rows"] == 1, report
    assert tokens_back(spark, pseudo_service, ref) == {1: "9001", 2: "9002", 3: "c9003", 4: "9004"}
    rows = {r.rec_id: r for r in spark.table(ref).collect()}
    assert json.loads(rows[1]._rescued_data) == {"note": "x"}
    assert json.loads(rows[2]._rescued_data) == {"bytes_sent": "lots"}
    assert json.loads(rows[4]._rescued_data) == {"note": "y"}
    assert plaintext_in(spark.table(ref).collect(), ["9001", "9002", "9003", "9004"]) == []


def test_a_malformed_record_without_a_quarantine_table_dead_letters_its_file_and_quotes_nothing(
    spark, warehouse, landing, table_name, pseudo_service, monkeypatch, caplog
):
    ingest, sections = pseudonymized(pseudo_service, monkeypatch)
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, quarantine_table=None, sections=sections, **ingest)
    landing.put("m/good.json", records(0, 3))
    landing.put("m/bad.json", records(3, 2), extra_lines=['{"customer_id": "c-secret-77", "rec_id": "not a number"}'])
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 3, report
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 2]
    dead = landing.dlq_messages()
    assert len(dead) == 1 and "m/bad.json holds records that do not fit" in json.dumps(dead[0]["MessageAttributes"])
    said = json.dumps(report, default=str) + json.dumps(dead, default=str) + caplog.text
    assert "c-secret-77" not in said and "c003" not in said and "c004" not in said
    assert run(spark, config)["totals"]["messages"] == 0  # nothing left to fail again
    assert landing.depth() == 0


def test_quarantined_records_of_one_version_of_a_key_stay_when_another_version_is_quarantined(
    spark, warehouse, landing, table_name
):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, upsert={"keys": ["rec_id"], "order_by": "event_time"})
    landing.put("q/k.json", records(0, 2), extra_lines=['{"rec_id": "first version"}'])
    assert run(spark, config)["totals"]["quarantined"] == 1
    landing.put("q/k.json", records(2, 2), extra_lines=['{"rec_id": "second version"}'])
    assert run(spark, config)["totals"]["quarantined"] == 1
    kept = sorted(json.loads(q.raw)["rec_id"] for q in spark.table(ref + "_quarantine").collect())
    assert kept == ["first version", "second version"]
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 2, 3]


class Killed(Exception):
    """A worker stopped at a stage of the batch protocol (as kill -9 would leave it)."""


def stop_at(name):
    def on_stage(stage):
        if stage == name:
            raise Killed(stage)

    return on_stage


def head(spark, table_name):
    return spark.sql(
        "SELECT snapshot_id FROM lake.%s.history WHERE is_current_ancestor ORDER BY made_current_at DESC LIMIT 1"
        % table_name
    ).collect()[0][0]


def test_a_batch_a_rollback_reapplies_is_never_published_again(spark, warehouse, landing, table_name):
    from lakehouse_ops.errors import VerificationError
    from lakehouse_ops.ingest.ledger import PUBLISHED_WAP_ID, batch_snapshot
    from lakehouse_ops.maintenance.verify import verify_rewrites

    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)
    landing.put("r/0.json", records(0, 2))
    run(spark, config)
    start = head(spark, table_name)
    spark.sql("DELETE FROM %s WHERE rec_id = 0" % ref)  # a rewrite that lost a row, as a faulty compaction would
    bad = head(spark, table_name)
    landing.put("r/1.json", records(10, 3))

    def writer_then_killed(stage):
        if stage == "after_seal":  # another writer commits between the staging and the publish: a cherry-pick
            spark.sql("INSERT INTO %s SELECT * FROM %s WHERE rec_id = 1" % (ref, ref))
        if stage == "after_commit":  # published, then killed before the ledger says committed
            raise Killed(stage)

    with pytest.raises(Killed):
        IngestJob(config, spark=spark, on_stage=writer_then_killed).run(until_empty=True)
    published = spark.sql("SELECT summary FROM %s.snapshots WHERE snapshot_id = %d" % (ref, head(spark, table_name)))
    summary = published.collect()[0].summary
    batch = summary[PUBLISHED_WAP_ID]  # published by cherry-pick: a copy of the staged snapshot

    with pytest.raises(VerificationError, match="re-applied 2"):
        verify_rewrites(spark, "lake", table_name, start, is_rewrite=lambda s: s.snapshot_id == bad)
    assert spark.table(ref).count() == 2 + 1 + 3
    assert batch_snapshot(spark, "lake", table_name, batch) is not None  # still known as landed
    worker = IngestJob(config, spark=spark)
    worker.prepare()
    assert worker.reconciled == 1  # the interrupted batch is recorded committed, not read again
    worker._finish(batch, worker.claims.batch_state(batch))  # a worker finishing the sealed batch publishes nothing
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 1, 10, 11, 12]


def test_a_rollback_that_cannot_reapply_a_snapshot_names_and_keeps_it(spark, warehouse, table_name):
    from lakehouse_ops.errors import VerificationError
    from lakehouse_ops.maintenance.verify import verify_rewrites

    ref = "lake.%s" % table_name
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.%s" % table_name.split(".")[0])
    spark.sql("CREATE TABLE %s (id BIGINT, v STRING) USING iceberg" % ref)
    spark.sql("INSERT INTO %s VALUES (1, 'a'), (2, 'b')" % ref)
    start = head(spark, table_name)
    spark.sql("DELETE FROM %s WHERE id = 1" % ref)
    bad = head(spark, table_name)
    spark.sql("INSERT INTO %s VALUES (3, 'c')" % ref)
    spark.sql("DELETE FROM %s WHERE id = 2" % ref)  # another writer's delete: not re-applied by guess
    foreign = head(spark, table_name)
    spark.sql("INSERT INTO %s VALUES (4, 'd')" % ref)
    with pytest.raises(VerificationError) as info:
        verify_rewrites(spark, "lake", table_name, start, is_rewrite=lambda s: s.snapshot_id in (bad,))
    assert "not rolled back automatically" in str(info.value)  # a non-append since: nothing is guessed
    from lakehouse_ops.maintenance.verify import rollback_and_reapply

    with pytest.raises(VerificationError) as info:
        rollback_and_reapply(spark, "lake", table_name, start, is_rewrite=lambda s: s.snapshot_id == bad)
    text = str(info.value)
    assert "%d (delete)" % foreign in text and "lakehouse-ops-detached-%d" % foreign in text
    assert sorted(r.id for r in spark.table(ref).collect()) == [1, 2, 3, 4]  # every append after it re-applied
    tags = {r.name: r.snapshot_id for r in spark.sql("SELECT * FROM %s.refs" % ref).collect()}
    assert tags["lakehouse-ops-detached-%d" % foreign] == foreign
    spark.sql(
        "CALL lake.system.expire_snapshots(table => '%s', older_than => TIMESTAMP '2999-01-01 00:00:00', "
        "retain_last => 1)" % table_name
    )
    # Expiry kept the tagged snapshot: it can still be read (and re-applied by hand).
    assert [r.id for r in spark.sql("SELECT id FROM %s VERSION AS OF %d" % (ref, foreign)).collect()] == [3]


def test_a_target_that_stops_staging_mid_run_lands_each_batch_once(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)
    landing.put("w/1.json", records(0, 3))

    def staging_off(stage):
        if stage == "after_pending":
            spark.sql("ALTER TABLE %s SET TBLPROPERTIES ('write.wap.enabled'='false')" % ref)

    report = IngestJob(config, spark=spark, on_stage=staging_off).run(until_empty=True)
    assert report["ok"] and report["totals"]["rows"] == 3, report
    props = {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES %s" % ref).collect()}
    assert props["write.wap.enabled"] == "true"  # turned back on for the next batch
    landing.announce("w/1.json")  # delivered again
    again = run(spark, config)
    assert again["totals"]["rows"] == 0 and again["totals"]["already_committed"] == 1
    assert spark.table(ref).count() == 3


def _rotation_rows():
    """Ten customers, then the same ten with later records."""
    return records(0, 10), records(50, 10)


def _assert_one_row_per_key(spark, ref, settings, version):
    from lakehouse_ops.pseudo.spark import reidentify, token_version

    table = spark.table(ref)
    assert table.count() == 10
    assert {r[0] for r in table.select(token_version(table.customer_id)).collect()} == {version}
    plain = {r.customer_id: r.rec_id for r in reidentify(table, ["customer_id"], settings).collect()}
    assert plain == {"c%03d" % i: 50 + i for i in range(10)}


def test_an_upsert_keyed_by_a_pseudonymized_column_survives_a_key_rotation_of_the_service(
    spark, warehouse, landing, table_name, pseudo_service, monkeypatch
):
    from lakehouse_ops.pseudo.spark import ServiceSettings

    ingest, sections = pseudonymized(pseudo_service, monkeypatch)
    ref = create_target(spark, table_name)
    upsert = {"keys": ["customer_id"], "order_by": "event_time"}
    config = ingest_config(warehouse, landing, table_name, upsert=upsert, sections=sections, **ingest)
    before, after = _rotation_rows()
    landing.put("u/1.json", before)
    assert run(spark, config)["totals"]["rows"] == 10
    original = pseudo_service.cipher.keyring
    pseudo_service.use_keys(original.rotated())
    try:
        landing.put("u/2.json", after)
        report = run(spark, config)
        assert report["ok"], report
        assert report["batches"][0]["rekeyed"]["customer_id"] == {"key_version": 2, "rekeyed_tokens": 10}
        _assert_one_row_per_key(spark, ref, ServiceSettings(url=pseudo_service.url), 2)
    finally:
        pseudo_service.use_keys(original)


def test_an_upsert_keyed_by_a_pseudonymized_column_survives_a_key_rotation_in_the_executors(
    spark, warehouse, landing, table_name, tmp_path
):
    from lakehouse_ops.pseudo import keys
    from lakehouse_ops.pseudo.cipher import Keyring
    from lakehouse_ops.pseudo.spark import InExecutorSettings

    key_file = tmp_path / "keys.json"
    keyring = Keyring.generate()
    key_file.write_text(keyring.to_json())
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse,
        landing,
        table_name,
        upsert={"keys": ["customer_id"], "order_by": "event_time"},
        pseudonymize={"columns": ["customer_id"]},
        sections={"pseudonymization": {"mode": "in_executor", "key_file": str(key_file)}},
    )
    before, after = _rotation_rows()
    landing.put("u/1.json", before)
    assert run(spark, config)["totals"]["rows"] == 10
    key_file.write_text(keyring.rotated().to_json())
    keys.forget()  # as the keyring's time in the cache runs out; the executors still hold the old one
    landing.put("u/2.json", after)
    report = run(spark, config)
    assert report["ok"] and report["batches"][0]["rekeyed"]["customer_id"]["rekeyed_tokens"] == 10, report
    _assert_one_row_per_key(spark, ref, InExecutorSettings(key_file=str(key_file)), 2)


def test_ingest_json_with_emf_metrics_is_one_json_document_on_stdout(spark, warehouse, landing, table_name, tmp_path):
    from click.testing import CliRunner

    from lakehouse_ops.cli import cli

    from conftest import write_config

    create_target(spark, table_name)
    landing.put("e/1.json", records(0, 2))
    section = {
        "queue_url": landing.queue_url,
        "dlq_url": landing.dlq_url,
        "target_table": table_name,
        "uri_map": {"s3://landing-bucket/": landing.root},
        "emf_metrics": True,
        "batch": {"max_wait_seconds": 1, "wait_time_seconds": 0},
    }
    path = write_config(tmp_path / "emf.yaml", warehouse, ingest=section)
    result = CliRunner().invoke(cli, ["--config", path, "ingest", "--until-empty", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["rows"] == 2  # the report alone
    emf = [json.loads(line) for line in result.stderr.splitlines() if '"_aws"' in line]
    assert emf and emf[0]["Target"] == table_name


def test_announcements_without_an_etag_are_known_by_the_bytes_they_read(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name)

    def without_etag(key):
        note = json.loads(landing.notification(key))
        del note["Records"][0]["s3"]["object"]["eTag"]
        return json.dumps(note)

    landing.put("n/1.json", records(0, 3))
    assert run(spark, config)["totals"]["rows"] == 3
    landing.send(without_etag("n/1.json"))  # the same bytes again, announced without an ETag
    again = run(spark, config)
    assert again["totals"]["rows"] == 0 and again["totals"]["already_committed"] == 1, again
    landing.put("n/1.json", records(100, 2), send=False)  # other bytes under the key, announced without one
    landing.send(without_etag("n/1.json"))
    assert run(spark, config)["totals"]["rows"] == 2
    assert sorted(r.rec_id for r in spark.table(ref).collect()) == [0, 1, 2, 100, 101]


def test_a_batch_landed_without_staging_and_read_again_is_withdrawn_first(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, quarantine_table=None)
    rows = records(0, 3)
    rows[1]["Customer_ID"] = rows[1].pop("customer_id")  # a spelling first met in this batch: read again
    landing.put("w/1.json", rows)
    landing.put("w/2.json", records(10, 2), extra_lines=["{broken"])  # dead-lettered whole

    def staging_off(stage):
        if stage == "after_pending":
            spark.sql("ALTER TABLE %s SET TBLPROPERTIES ('write.wap.enabled'='false')" % ref)

    report = IngestJob(config, spark=spark, on_stage=staging_off).run(until_empty=True)
    assert report["ok"], report
    got = sorted((r.rec_id, r.customer_id) for r in spark.table(ref).collect())
    assert got == [(0, "c000"), (1, "c001"), (2, "c002")]  # each once, the new spelling read, nothing of w/2
    assert len(landing.dlq_messages()) == 1


def test_a_nested_field_in_another_case_is_set_aside_not_nulled(spark, warehouse, landing, table_name):
    ref = create_target(spark, table_name)
    spark.sql("ALTER TABLE %s ADD COLUMN geo STRUCT<city: STRING>" % ref)
    config = ingest_config(warehouse, landing, table_name)
    landing.put(
        "g/1.json", [dict(records(0, 1)[0], geo={"City": "Paris"}), dict(records(1, 1)[0], geo={"city": "Oslo"})]
    )
    report = run(spark, config)
    assert report["totals"]["rows"] == 1 and report["totals"]["quarantined"] == 1, report
    assert [(r.rec_id, r.geo.city) for r in spark.table(ref).collect()] == [(1, "Oslo")]
    assert "Paris" in spark.table(ref + "_quarantine").collect()[0].raw


def test_add_new_columns_takes_dotted_names_whole_and_never_adds_the_jobs_columns(
    spark, warehouse, landing, table_name
):
    ref = create_target(spark, table_name)
    config = ingest_config(warehouse, landing, table_name, schema_evolution="add_new_columns")
    landing.put("d/1.json", [dict(r, **{"http.method": "GET", "_ingest_batch": "forged"}) for r in records(0, 2)])
    report = run(spark, config)
    assert report["ok"] and report["totals"]["rows"] == 2, report
    rows = spark.table(ref).collect()
    assert [r["http.method"] for r in rows] == ["GET", "GET"]
    assert all(r._ingest_batch.startswith("b-") for r in rows)  # the job's batch id, not the file's
    landing.put("d/2.json", records(2, 1))
    assert run(spark, config)["totals"]["rows"] == 1  # the target stays usable


def test_a_worker_with_out_of_date_keys_reads_them_again_before_merging(
    spark, warehouse, landing, table_name, tmp_path
):
    import time

    from lakehouse_ops.pseudo import keys
    from lakehouse_ops.pseudo.cipher import Keyring
    from lakehouse_ops.pseudo.spark import InExecutorSettings

    key_file = tmp_path / "keys.json"
    old = Keyring.generate()
    key_file.write_text(old.to_json())
    ref = create_target(spark, table_name)
    config = ingest_config(
        warehouse,
        landing,
        table_name,
        upsert={"keys": ["customer_id"], "order_by": "event_time"},
        pseudonymize={"columns": ["customer_id"]},
        sections={"pseudonymization": {"mode": "in_executor", "key_file": str(key_file)}},
    )
    before, after = _rotation_rows()
    landing.put("u/1.json", before)
    assert run(spark, config)["totals"]["rows"] == 10
    key_file.write_text(old.rotated().to_json())
    keys.forget()
    landing.put("u/2.json", before[:5])
    assert run(spark, config)["ok"]  # a worker with the new keys: the table is at key version 2
    keys._cache[("keyfile", str(key_file))] = (old, time.time())  # another worker, its keyring read before
    landing.put("u/3.json", after)
    report = run(spark, config)
    assert report["ok"], report
    _assert_one_row_per_key(spark, ref, InExecutorSettings(key_file=str(key_file)), 2)
