"""Right-to-be-forgotten erasure end to end: rows gone, bytes gone, time travel closed, receipt written.

Every check of "the bytes are gone" here reads the files itself with pyarrow (every Parquet file left under the
table location, every column), independently of the erasure's own verification.
"""

import glob
import json
import logging
import os
import shutil

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lakehouse_ops.cli import cli
from lakehouse_ops.erasure.job import erase, run_request
from lakehouse_ops.pseudo.spark import ServiceSettings, pseudonymize

from conftest import PSEUDO_API_KEY, make_config
from helpers import ref
from table_factory import plant_orphan

pytestmark = pytest.mark.spark

SUBJECT = "cust-00042"
OTHER = "cust-00007"


def _config(warehouse, pseudo_service, tables, history=None, **erasure):
    return make_config(
        warehouse,
        defaults={"orphans": {"older_than_hours": 72}},
        pseudonymization={"service_url": pseudo_service.url, "batch_size": 100},
        erasure=dict({"tables": tables}, **erasure),
        history=history or {"enabled": False},
    )


def _config_file(warehouse, pseudo_service, config):
    path = os.path.join(str(warehouse), "erasure-%d.yaml" % id(config))
    with open(path, "w") as handle:
        json.dump(dict(config.raw), handle)
    return path


def _rows(spark, start, count, customers=50):
    return spark.range(start, start + count).selectExpr(
        "id",
        "concat('cust-', lpad(CAST(id %% %d AS STRING), 5, '0')) AS customer_id" % customers,
        # Every tenth row was referred by someone: cust-00042 refers ids 400, 900 and 1400.
        "CASE WHEN id % 10 = 0 THEN concat('cust-', lpad(CAST((id div 10 + 2) % 50 AS STRING), 5, '0')) END "
        "AS referrer",
        "concat('/p/', CAST(id % 13 AS STRING)) AS url",
    )


def _create(spark, table, commits=3, props="'format-version'='2', 'write.delete.mode'='merge-on-read'"):
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % ref(table.rsplit(".", 1)[0]))
    spark.sql(
        "CREATE TABLE %s (id BIGINT, customer_id STRING, referrer STRING, url STRING) USING iceberg "
        "TBLPROPERTIES (%s)" % (ref(table), props)
    )
    for i in range(commits):
        _rows(spark, i * 500, 500).repartition(2).writeTo(ref(table)).append()


def _values_in_files(location, values):
    """Paths of Parquet files under `location` holding any of `values` in any column (read with pyarrow)."""
    hits = []
    for path in glob.glob(os.path.join(location, "**", "*.parquet"), recursive=True):
        table = pq.read_table(path)
        for column in table.column_names:
            if set(v for v in table.column(column).to_pylist() if isinstance(v, str)) & set(values):
                hits.append(path)
                break
    return hits


def _location(spark, table):
    return (
        spark.sql("DESCRIBE TABLE EXTENDED %s" % ref(table))
        .where("col_name = 'Location'")
        .collect()[0]
        .data_type.replace("file:", "")
    )


def _snapshots(spark, table):
    return [
        (r.snapshot_id, r.committed_at)
        for r in spark.sql(
            "SELECT snapshot_id, committed_at FROM %s.snapshots ORDER BY committed_at" % ref(table)
        ).collect()
    ]


def test_erasure_removes_rows_bytes_and_history(spark, warehouse, pseudo_service, table_name, caplog, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    plain, tokens, clean = table_name, table_name + "_tok", table_name + "_clean"
    _create(spark, plain)
    # An earlier merge-on-read delete of the subject's referrals left their bytes behind position deletes.
    spark.sql("DELETE FROM %s WHERE referrer = '%s'" % (ref(plain), SUBJECT))
    settings = ServiceSettings(url=pseudo_service.url, batch_size=100)
    pseudonymize(spark.table(ref(plain)), ["customer_id", "referrer"], settings).writeTo(ref(tokens)).using(
        "iceberg"
    ).tableProperty("format-version", "2").create()
    _rows(spark, 10000, 300).selectExpr("id", "'cust-99999' AS customer_id", "referrer", "url").where(
        "referrer IS NULL OR referrer <> '%s'" % SUBJECT
    ).writeTo(ref(clean)).using("iceberg").create()
    location = _location(spark, plain)
    orphan = plant_orphan(location, "failed-job-output.parquet", age_hours=0)
    _rows(spark, 0, 100).toPandas().to_parquet(orphan)  # a failed write's leftover holding the subject
    old = os.path.getmtime(orphan) - 120 * 3600
    os.utime(orphan, (old, old))
    expected = spark.table(ref(plain)).where("customer_id = '%s' OR referrer = '%s'" % (SUBJECT, SUBJECT)).count()
    history = _snapshots(spark, plain)
    assert expected > 0 and _values_in_files(location, [SUBJECT])

    config = _config(
        warehouse,
        pseudo_service,
        [
            {"table": plain, "columns": ["customer_id", "referrer"]},
            {"table": tokens, "columns": ["customer_id", "referrer"], "holds": "pseudonyms"},
            {"table": clean, "columns": ["customer_id"]},
        ],
        history={"table": table_name.split(".")[0] + "_ops.history"},
    )
    dry = erase(config, [SUBJECT], dry_run=True, spark=spark)
    assert "history" not in dry
    assert dry["ok"] and dry["found"] and dry["verified"] is False
    assert spark.table(ref(plain)).where("customer_id = '%s'" % SUBJECT).count() > 0  # dry run changed nothing

    caplog.set_level(logging.DEBUG, logger="lakehouse_ops")
    monkeypatch.setattr(logging.getLogger("lakehouse_ops"), "propagate", True)
    receipt_path = os.path.join(str(warehouse), "receipts", "%s.json" % table_name)
    receipt = run_request(config, [SUBJECT], request_id="REQ-1", receipt_path=receipt_path, spark=spark)
    by_table = {t["table"]: t for t in receipt["tables"]}
    assert receipt["ok"] and receipt["verified"], json.dumps(receipt, indent=1)
    assert receipt["history"] == {"table": table_name.split(".")[0] + "_ops.history", "rows": 3}
    assert by_table[plain]["rows_deleted"] == expected
    assert by_table[tokens]["rows_deleted"] > 0 and by_table[clean]["found"] is False
    assert by_table[plain]["snapshots_expired"] and by_table[plain]["files_removed"]["data_files"] > 0
    assert by_table[plain]["orphans"]["deleted_files"] == 1
    assert receipt["subjects"][0]["found_in"] == sorted([plain, tokens])

    # Rows, bytes and history: gone.
    for table in (plain, tokens):
        spark.sql("REFRESH TABLE %s" % ref(table))
    assert spark.table(ref(plain)).where("customer_id = '%s' OR referrer = '%s'" % (SUBJECT, SUBJECT)).count() == 0
    assert spark.table(ref(plain)).count() == 1500 - 3 - expected  # the others stay (3 were deleted earlier)
    assert _values_in_files(location, [SUBJECT]) == []
    assert not os.path.exists(orphan)
    token = receipt["subjects"][0]["ref"]
    assert _values_in_files(_location(spark, tokens), [token]) == []
    remaining = {s for s, _ in _snapshots(spark, plain)}
    for snapshot_id, committed_at in history:
        if snapshot_id in remaining:
            old_rows = spark.sql("SELECT * FROM %s VERSION AS OF %d" % (ref(plain), snapshot_id))
            assert old_rows.where("customer_id = '%s' OR referrer = '%s'" % (SUBJECT, SUBJECT)).count() == 0
        else:
            with pytest.raises(Exception, match="(?i)snapshot"):
                spark.sql("SELECT * FROM %s VERSION AS OF %d" % (ref(plain), snapshot_id)).count()
        try:
            as_of = spark.sql("SELECT * FROM %s TIMESTAMP AS OF '%s'" % (ref(plain), committed_at)).collect()
        except Exception as exc:  # only "no remaining snapshot that old" may stop time travel
            assert "snapshot" in str(exc).lower() and "older than" in str(exc).lower(), exc
            as_of = []
        assert not [r for r in as_of if SUBJECT in (r.customer_id, r.referrer)]
    # The other subjects are untouched, the delete mode was never changed, and nothing named the subject.
    assert spark.table(ref(plain)).where("customer_id = '%s'" % OTHER).count() > 0
    props = dict(spark.sql("SHOW TBLPROPERTIES %s" % ref(plain)).collect())
    assert props["write.delete.mode"] == "merge-on-read"
    with open(receipt_path) as handle:
        written = handle.read()
    assert json.loads(written)["request_id"] == "REQ-1" and SUBJECT not in written
    assert "erasure verified" in caplog.text and "rows deleted" in caplog.text
    assert SUBJECT not in caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)

    # Asked again (through the CLI, subjects from a file): the subject is nowhere, and the receipt says so.
    subjects = os.path.join(str(warehouse), "%s-subjects.txt" % table_name)
    with open(subjects, "w") as handle:
        handle.write("# erasure request REQ-2\n%s\n\n" % SUBJECT)
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            _config_file(warehouse, pseudo_service, config),
            "erase",
            "--subjects-file",
            subjects,
            "--request-id",
            "REQ-2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["ok"] and again["verified"] and not again["found"] and again["request_id"] == "REQ-2"
    assert "appear in none" in again["summary"] and again["subjects"][0]["found_in"] == []
    assert SUBJECT not in result.output


def test_pseudonym_subjects_young_leftovers_and_rotation(
    spark, warehouse, pseudo_service, table_name, monkeypatch, tmp_path
):
    """A subject given by pseudonym; a young unreferenced file fails the verification (and says why); tokens
    written under an older key version are found with match: reidentify."""
    from lakehouse_ops.pseudo import keys
    from lakehouse_ops.pseudo.cipher import Cipher

    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    old_keyring = pseudo_service.cipher.keyring
    rotated = old_keyring.rotated()
    old_token = Cipher(old_keyring).pseudonymize(SUBJECT)
    new_token = Cipher(rotated).pseudonymize(SUBJECT)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % ref(table_name.rsplit(".", 1)[0]))
    spark.createDataFrame(
        [(1, old_token), (2, new_token), (3, Cipher(rotated).pseudonymize(OTHER))], "id BIGINT, owner STRING"
    ).writeTo(ref(table_name)).using("iceberg").create()
    location = _location(spark, table_name)
    # The output of a write still in flight (or failed an hour ago): an Iceberg data file nothing references.
    young = os.path.join(location, "data", "in-flight.parquet")
    shutil.copy(_values_in_files(location, [old_token])[0], young)

    key_file = tmp_path / "keys.json"
    key_file.write_text(rotated.to_json())
    keys.forget()
    config = make_config(
        warehouse,
        pseudonymization={"mode": "in_executor", "key_file": str(key_file)},
        erasure={"tables": [{"table": table_name, "columns": ["owner"], "holds": "pseudonyms", "match": "reidentify"}]},
    )
    receipt = erase(config, pseudonyms=[new_token], spark=spark)
    entry = receipt["tables"][0]
    assert entry["rows_deleted"] == 2  # both key versions' tokens
    assert not receipt["ok"] and not receipt["verified"]
    assert any("unreferenced file(s) in the table location still hold the subject" in p for p in entry["problems"])
    assert "NOT complete" in receipt["summary"]
    spark.sql("REFRESH TABLE %s" % ref(table_name))
    assert [r.id for r in spark.table(ref(table_name)).collect()] == [3]
    # Once the leftover is old enough for orphan removal, erasing again completes and verifies.
    stamp = os.path.getmtime(young) - 100 * 3600
    os.utime(young, (stamp, stamp))
    again = erase(config, pseudonyms=[new_token], spark=spark)
    assert again["ok"] and again["verified"], json.dumps(again, indent=1)
    assert not os.path.exists(young)


def test_bytes_hidden_by_an_earlier_merge_on_read_delete_are_rewritten(
    spark, warehouse, pseudo_service, table_name, caplog, monkeypatch
):
    """The subject's row was deleted before, with a delete file: no visible row, but the data file still holds
    its bytes. Erasure rewrites that file and expires the snapshots that reference it."""
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    _create(spark, table_name, commits=0)
    # Customers only (no referrals): the subject is in customer_id alone.
    _rows(spark, 0, 500).selectExpr("id", "customer_id", "CAST(NULL AS STRING) AS referrer", "url").repartition(
        2
    ).writeTo(ref(table_name)).append()
    spark.sql("DELETE FROM %s WHERE customer_id = '%s'" % (ref(table_name), SUBJECT))
    location = _location(spark, table_name)
    assert spark.table(ref(table_name)).where("customer_id = '%s'" % SUBJECT).count() == 0
    assert _values_in_files(location, [SUBJECT])  # the bytes are still there
    caplog.set_level(logging.INFO, logger="lakehouse_ops")
    monkeypatch.setattr(logging.getLogger("lakehouse_ops"), "propagate", True)
    config = _config(warehouse, pseudo_service, [{"table": table_name, "columns": ["customer_id"]}])
    receipt = erase(config, [SUBJECT], spark=spark)
    entry = receipt["tables"][0]
    assert receipt["ok"] and receipt["verified"], json.dumps(receipt, indent=1)
    assert entry["found"] and entry["rows_deleted"] == 0 and entry["files_rewritten"] >= 1
    assert "files holding deleted rows rewritten" in caplog.text
    assert _values_in_files(location, [SUBJECT]) == []
    spark.sql("REFRESH TABLE %s" % ref(table_name))
    assert spark.table(ref(table_name)).count() == 500 - 10  # the other rows are all still there


def test_a_tagged_snapshot_holding_the_subject_is_named_not_expired(
    spark, warehouse, pseudo_service, table_name, monkeypatch
):
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    _create(spark, table_name, commits=1)
    spark.sql("ALTER TABLE %s CREATE TAG `audit-2024`" % ref(table_name))
    config = _config(warehouse, pseudo_service, [{"table": table_name, "columns": ["customer_id", "referrer"]}])
    receipt = erase(config, [SUBJECT], spark=spark)
    entry = receipt["tables"][0]
    assert not receipt["ok"] and not receipt["verified"] and entry["rows_deleted"] > 0
    assert any("head of branch or tag 'audit-2024'" in p for p in entry["problems"])
    assert any("remaining snapshots still hold the subject" in p for p in entry["problems"])
    # The tag still answers, as the user asked; the receipt says what to do about it.
    spark.sql("REFRESH TABLE %s" % ref(table_name))
    tagged = (
        spark.sql(
            "SELECT count(*) n FROM %s VERSION AS OF 'audit-2024' WHERE customer_id = '%s'" % (ref(table_name), SUBJECT)
        )
        .collect()[0]
        .n
    )
    assert tagged > 0
