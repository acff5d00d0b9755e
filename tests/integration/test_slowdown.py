"""S3's 503 SlowDown in bursts (a fault-injecting proxy in front of moto's server, tests/slowdown.py): what the
library asks of S3 from Python completes with nothing lost or done twice."""

import threading
import uuid

import pytest
from slowdown import SlowDownProxy

from lakehouse_ops.conditional import S3Store
from lakehouse_ops.ingest.claims import Claims


@pytest.mark.parametrize("faults", [{"share": 0.2, "burst": 3}, {"rate": 40}], ids=["bursts", "over-a-rate"])
def test_claims_of_several_workers_under_slowdown_take_each_object_once(aws_env, faults):
    from lakehouse_ops.aws.clients import client

    bucket = "claims-%s" % uuid.uuid4().hex[:8]
    client("s3").create_bucket(Bucket=bucket)
    identities = ["land/in/%04d.json#e%d" % (i, i) for i in range(20)]
    with SlowDownProxy(aws_env, seed=7, **faults) as proxy:
        workers = [
            Claims(
                S3Store("s3://%s/claims" % bucket, client("s3", endpoint=proxy.url)), 600, owner="w%d" % n, workers=8
            )
            for n in range(3)
        ]
        results, errors = {}, []

        def work(claims):
            try:
                results[claims.owner] = claims.claim(identities, "b-" + claims.owner)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(repr(exc))

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert errors == []
    assert proxy.faults > 5, (proxy.faults, proxy.s3_requests)  # SlowDown was met, often
    owners = {}
    for owner, result in results.items():
        for identity in result.taken:
            owners.setdefault(identity, []).append(owner)
    assert sorted(owners) == sorted(identities)  # every object claimed ...
    assert all(len(taken) == 1 for taken in owners.values())  # ... by exactly one worker


def test_an_upload_under_slowdown_arrives_whole(aws_env, tmp_path):
    """`package --upload` / submit's uploads: a multipart wheel-sized file and a small config, each part retried
    through the bursts; every byte arrives."""
    import hashlib
    import os

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.ship.submit import upload

    bucket = "uploads-%s" % uuid.uuid4().hex[:8]
    client("s3").create_bucket(Bucket=bucket)
    big, small = tmp_path / "lakehouse_ops-1.0-py3-none-any.whl", tmp_path / "job.yaml"
    big.write_bytes(os.urandom(20 * 1024 * 1024))  # multipart: 8 MB parts
    small.write_text("catalog: {name: glue_catalog, type: glue}\n")
    files = [(str(big), "s3://%s/artifacts/%s" % (bucket, big.name)), (str(small), "s3://%s/conf/job.yaml" % bucket)]
    with SlowDownProxy(aws_env, seed=5, share=0.3, burst=3) as proxy:
        upload(files, s3=client("s3", endpoint=proxy.url))
    assert proxy.faults > 0, proxy.s3_requests
    for path, uri in files:
        body = client("s3").get_object(Bucket=bucket, Key=uri.split("/", 3)[3])["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(open(path, "rb").read()).digest()


def test_a_health_scan_under_slowdown_reads_every_manifest(aws_env, monkeypatch):
    """Health from metadata alone (pyiceberg's Glue catalog and S3 FileIO) while S3 answers SlowDown in bursts:
    the figures are those of a scan without throttling."""
    import pyarrow as pa

    from lakehouse_ops.aws.clients import ENDPOINT_ENV, client
    from lakehouse_ops.config import config_from_dict
    from lakehouse_ops.health import open_tables, table_health

    bucket = "scan-%s" % uuid.uuid4().hex[:8]
    client("s3").create_bucket(Bucket=bucket)
    config = config_from_dict({"catalog": {"name": "glue_catalog", "type": "glue", "warehouse": "s3://%s/wh" % bucket}})
    tables = open_tables(config.catalog)
    namespace = "scan_%s" % bucket[5:]
    tables.catalog.create_namespace(namespace)
    table = tables.catalog.create_table("%s.events" % namespace, schema=pa.schema([("id", pa.int64())]))
    for start in range(0, 120, 10):  # twelve commits: twelve manifests, twelve files
        table.append(pa.table({"id": list(range(start, start + 10))}))
    calm = table_health(config, "%s.events" % namespace)
    with SlowDownProxy(aws_env, seed=9, share=0.3, burst=4) as proxy:
        monkeypatch.setenv(ENDPOINT_ENV, proxy.url)
        busy = table_health(config, "%s.events" % namespace, tables=open_tables(config.catalog))
    assert proxy.faults > 0, proxy.s3_requests
    assert (
        (busy.data_files, busy.records, busy.manifests)
        == (calm.data_files, calm.records, calm.manifests)
        == (12, 120, 12)
    )
