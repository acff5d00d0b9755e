"""Erasure at the edges: tokens written before a key rotation, and a run that fails half-way, which must name the
subject nowhere (receipt, log, Spark's SQL plans)."""

import json
import logging

import pytest

from lakehouse_ops.erasure.job import erase
from lakehouse_ops.pseudo.cipher import Keyring
from lakehouse_ops.pseudo.spark import ServiceSettings, pseudonymize

from conftest import PSEUDO_API_KEY, make_config
from helpers import ref

pytestmark = pytest.mark.spark
SUBJECT = "cust-00042"


def _rows(spark, start, count):
    return spark.range(start, start + count).selectExpr(
        "id", "concat('cust-', lpad(CAST(id % 50 AS STRING), 5, '0')) AS customer_id"
    )


def _sql_plans_since(spark, before):
    """The text Spark keeps of every SQL execution since `before` executions (what its UI and event log show)."""
    store = spark._jsparkSession.sharedState().statusStore()
    executions = store.executionsList()
    out = []
    for index in range(before, executions.size()):
        e = executions.apply(index) if hasattr(executions, "apply") else executions.get(index)
        out.append("%s\n%s\n%s" % (e.description(), e.details(), e.physicalPlanDescription()))
    return out


def _executions(spark):
    return spark._jsparkSession.sharedState().statusStore().executionsList().size()


def test_an_erasure_after_a_key_rotation_finds_the_tokens_of_every_version(
    spark, warehouse, pseudo_service, table_name, monkeypatch
):
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % ref(table_name.rsplit(".", 1)[0]))
    settings = ServiceSettings(url=pseudo_service.url, batch_size=100)
    pseudonymize(_rows(spark, 0, 500), ["customer_id"], settings).writeTo(ref(table_name)).using("iceberg").create()
    original = pseudo_service.cipher.keyring
    pseudo_service.use_keys(original.rotated())  # from now on the service makes version-2 tokens
    try:
        pseudonymize(_rows(spark, 500, 500), ["customer_id"], settings).writeTo(ref(table_name)).append()
        config = make_config(
            warehouse,
            defaults={"orphans": {"older_than_hours": 72}},
            pseudonymization={"service_url": pseudo_service.url, "batch_size": 100},
            erasure={"tables": [{"table": table_name, "columns": ["customer_id"], "holds": "pseudonyms"}]},
        )
        receipt = erase(config, [SUBJECT], spark=spark)
        table = receipt["tables"][0]
        assert receipt["ok"] and receipt["verified"] and table["found"], json.dumps(receipt, indent=1)
        assert table["rows_deleted"] == 20  # 10 written under each key version
        assert table["key_versions"] == {"by_token": [2], "by_reidentifying": [1]}
        spark.sql("REFRESH TABLE %s" % ref(table_name))
        left = {r.customer_id for r in pseudonymize_back(spark, table_name, settings)}
        assert SUBJECT not in left and len(left) == 49

        # The rotation rolled back: the service makes version-1 tokens again, and the table holds tokens of a
        # version newer than the service's current one. They are looked for all the same.
        pseudo_service.use_keys(Keyring(current=1, keys=pseudo_service.cipher.keyring.keys))
        other = erase(config, ["cust-00007"], spark=spark)
        table = other["tables"][0]
        assert other["verified"] and table["rows_deleted"] == 20, json.dumps(other, indent=1)
        assert table["key_versions"] == {"by_token": [1], "by_reidentifying": [2]}
        spark.sql("REFRESH TABLE %s" % ref(table_name))
        left = {r.customer_id for r in pseudonymize_back(spark, table_name, settings)}
        assert "cust-00007" not in left and len(left) == 48
    finally:
        pseudo_service.use_keys(original)


def pseudonymize_back(spark, table_name, settings):
    from lakehouse_ops.pseudo.spark import reidentify

    return reidentify(spark.table(ref(table_name)), ["customer_id"], settings).collect()


def test_a_failing_erasure_names_the_subject_nowhere(spark, warehouse, pseudo_service, table_name, caplog, monkeypatch):
    """A v3 merge-on-read table: the DELETE writes deletion vectors; the rewrite that must follow fails (its
    Parquet codec is bogus). The receipt says it failed; neither it, the log, the run history nor any SQL plan
    Spark kept (its UI, its event log) holds the subject."""
    spark.sql("CREATE NAMESPACE IF NOT EXISTS %s" % ref(table_name.rsplit(".", 1)[0]))
    spark.sql(
        "CREATE TABLE %s (id BIGINT, customer_id STRING) USING iceberg TBLPROPERTIES ('format-version'='3', "
        "'write.delete.mode'='merge-on-read')" % ref(table_name)
    )
    for start in (0, 500):
        _rows(spark, start, 500).writeTo(ref(table_name)).append()
    spark.sql("ALTER TABLE %s SET TBLPROPERTIES ('write.parquet.compression-codec'='bogus')" % ref(table_name))
    config = make_config(
        warehouse,
        defaults={"orphans": {"older_than_hours": 72}},
        erasure={"tables": [{"table": table_name, "columns": ["customer_id"]}]},
        history={"enabled": True, "table": table_name + "_history"},
    )
    caplog.set_level(logging.DEBUG, logger="lakehouse_ops")
    monkeypatch.setattr(logging.getLogger("lakehouse_ops"), "propagate", True)
    before = _executions(spark)
    receipt = erase(config, [SUBJECT, "cust-00007"], spark=spark)
    assert not receipt["ok"] and not receipt["verified"]
    assert receipt["tables"][0]["problems"], json.dumps(receipt, indent=1)
    recorded = [
        json.dumps(r.asDict(recursive=True), default=str) for r in spark.table(ref(table_name + "_history")).collect()
    ]
    assert len(recorded) == 1 and '"erase"' in recorded[0]  # the failed run is in the history, by reference
    said = json.dumps(receipt) + caplog.text + "\n".join(_sql_plans_since(spark, before)) + "\n".join(recorded)
    assert SUBJECT not in said and "cust-00007" not in said
