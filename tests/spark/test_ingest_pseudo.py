"""Ingest with pseudonymization as a configured transform: plaintext never lands, failures commit nothing."""

import re

import pytest

from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest.job import IngestJob
from lakehouse_ops.pseudo.spark import ServiceSettings, reidentify

from conftest import PSEUDO_API_KEY, make_config
from ingest_helpers import BUCKET, Landing, create_target, records

pytestmark = pytest.mark.spark


@pytest.fixture
def landing(aws_env, tmp_path, table_name):
    from lakehouse_ops.aws.clients import client

    return Landing(client("sqs"), tmp_path / "landing", table_name.replace(".", "-"))


def _config(warehouse, landing, target, service_url, **pseudonymize):
    return make_config(
        warehouse,
        ingest={
            "queue_url": landing.queue_url,
            "dlq_url": landing.dlq_url,
            "target_table": target,
            "quarantine_table": target + "_quarantine",
            "uri_map": {"s3://%s/" % BUCKET: landing.root},
            "visibility_timeout_seconds": 30,
            "heartbeat_seconds": 5,
            "batch": {"max_wait_seconds": 2, "wait_time_seconds": 0},
            "pseudonymize": dict({"columns": ["customer_id"]}, **pseudonymize),
        },
        pseudonymization={"service_url": service_url, "batch_size": 20, "max_retries": 1},
    )


def test_ingest_pseudonymizes_before_the_rows_land(spark, warehouse, landing, table_name, pseudo_service, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    ref = create_target(spark, table_name)
    landing.put("a/1.json", records(0, 40))
    landing.put("a/2.json", records(40, 40), extra_lines=['{"customer_id": "c007", "rec_id": "oops"}'])
    calls = pseudo_service.calls["pseudonymization"]
    report = IngestJob(_config(warehouse, landing, table_name, pseudo_service.url), spark=spark).run(until_empty=True)
    assert report["ok"] and report["totals"]["rows"] == 80 and report["totals"]["quarantined"] == 1
    rows = spark.table(ref)
    assert rows.filter(rows.customer_id.rlike("^c[0-9]{3}$")).count() == 0
    # 50 distinct customers, asked in requests of 20: calls follow distinct values, not the 80 rows.
    assert 3 <= pseudo_service.calls["pseudonymization"] - calls <= 6
    plain = reidentify(rows, ["customer_id"], ServiceSettings(url=pseudo_service.url))
    assert {(r.rec_id, r.customer_id) for r in plain.collect()} == {
        (r["rec_id"], r["customer_id"]) for r in records(0, 80)
    }
    # The misfit record's raw text would hold plaintext: it is withheld; its source object is named.
    quarantined = spark.table(ref + "_quarantine").collect()
    assert [q.raw for q in quarantined] == [None]
    assert quarantined[0].source_object == "s3://%s/a/2.json" % BUCKET


def test_service_failure_fails_the_batch_and_commits_nothing(
    spark, warehouse, landing, table_name, pseudo_service, monkeypatch
):
    monkeypatch.setenv("LAKEHOUSE_OPS_PSEUDO_API_KEY", PSEUDO_API_KEY)
    ref = create_target(spark, table_name)
    landing.put("b/1.json", records(0, 10))
    pseudo_service.inject(*(["500"] * 40))
    with pytest.raises(IngestError) as info:
        IngestJob(_config(warehouse, landing, table_name, pseudo_service.url, mode="randomized"), spark=spark).run(
            until_empty=True
        )
    assert "PseudoServiceError: /pseudonymization failed after 2 attempt(s)" in str(info.value)
    # No plaintext customer id in the error (whole words: the batch id is hex and may hold "c040").
    plaintext = {r["customer_id"] for r in records(0, 10)}
    assert "commit of batch" in str(info.value)
    assert not plaintext & set(re.findall(r"\w+", str(info.value)))
    assert spark.table(ref).count() == 0
    assert landing.depth() == 1  # the message comes back after its visibility timeout
