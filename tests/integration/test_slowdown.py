"""S3's 503 SlowDown in bursts (a fault-injecting proxy in front of moto's server, tests/slowdown.py): what the
library asks of S3 from Python completes with nothing lost or done twice."""

import threading
import uuid

import pytest
from slowdown import SlowDownProxy

from lakehouse_ops.conditional import S3Store
from lakehouse_ops.ingest.claims import Claims


@pytest.mark.parametrize("faults", [{"share": 0.2, "burst": 3}, {"rate": 15}], ids=["bursts", "over-a-rate"])
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
    # SlowDown was met, often: in bursts by the seed; above the rate however fast this machine sends.
    assert proxy.faults > (5 if "share" in faults else 2), (proxy.faults, proxy.s3_requests)
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


@pytest.mark.parametrize("faults", [{"rate": 6}], ids=["over-a-rate"])  # S3's throttling: per prefix, by rate
def test_orphan_deletes_under_slowdown_delete_each_object_once_and_nothing_else(aws_env, monkeypatch, faults):
    """Orphan removal's deletes on S3 (`delete_files`: multi-object deletes on a pool of threads sharing the
    process's adaptive client), on a versioned bucket: every listed object gets exactly one delete marker (a
    delete sent twice would add a second one), its neighbours none."""
    from lakehouse_ops.aws import objects
    from lakehouse_ops.aws.clients import ENDPOINT_ENV, client
    from lakehouse_ops.engine.tables import delete_files

    monkeypatch.setattr(objects, "DELETE_BATCH", 10)  # 40 requests for 400 keys: enough to meet SlowDown often
    bucket = "deletes-%s" % uuid.uuid4().hex[:8]
    direct = client("s3")
    direct.create_bucket(Bucket=bucket)
    direct.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    orphans = ["s3://%s/t/data/p=%d/f-%04d.parquet" % (bucket, i % 7, i) for i in range(400)]
    kept = ["s3://%s/t/data/p=0/live-%d.parquet" % (bucket, i) for i in range(5)]
    kept.append("s3://%s/t_v2/data/f-0001.parquet" % bucket)  # a sibling table's file, next to a listed key
    for uri in orphans + kept:
        direct.put_object(Bucket=bucket, Key=uri.split("/", 3)[3], Body=b"PAR1")
    with SlowDownProxy(aws_env, seed=11, **faults) as proxy:
        monkeypatch.setenv(ENDPOINT_ENV, proxy.url)
        failed, how = delete_files(None, None, orphans, threads=8)
    assert proxy.faults > 3, proxy.s3_requests  # SlowDown was met, often
    assert (failed, how) == (0, "S3 multi-object deletes (adaptive retries)")
    markers: dict = {}
    for page in direct.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for marker in page.get("DeleteMarkers", []):
            markers[marker["Key"]] = markers.get(marker["Key"], 0) + 1
    assert markers == {uri.split("/", 3)[3]: 1 for uri in orphans}
    current = {
        o["Key"]
        for page in direct.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }
    assert current == {uri.split("/", 3)[3] for uri in kept}


def test_deletes_s3_refuses_are_named_and_nothing_is_reported_deleted(aws_env, monkeypatch):
    """A role without s3:DeleteObject: the whole request is refused; with no table FileIO to fall back on the
    refusal reaches the caller, naming the permission, and the objects stay."""
    from lakehouse_ops.aws.clients import ENDPOINT_ENV, client, describe_failure
    from lakehouse_ops.engine.tables import delete_files

    bucket = "refused-%s" % uuid.uuid4().hex[:8]
    direct = client("s3")
    direct.create_bucket(Bucket=bucket)
    uris = ["s3://%s/t/data/f-%d.parquet" % (bucket, i) for i in range(3)]
    for uri in uris:
        direct.put_object(Bucket=bucket, Key=uri.split("/", 3)[3], Body=b"PAR1")
    with SlowDownProxy(aws_env, seed=1, share=0.0, deny="POST") as proxy:
        monkeypatch.setenv(ENDPOINT_ENV, proxy.url)
        with pytest.raises(Exception) as caught:
            delete_files(None, None, uris, threads=2)
    assert "AccessDenied" in (describe_failure(caught.value) or "")
    assert len(direct.list_objects_v2(Bucket=bucket)["Contents"]) == 3


def _put(s3, bucket, keys):
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"PAR1")


def _current(s3, bucket):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_keys_a_multi_object_delete_answers_slowdown_are_tried_again_and_the_rest_named(aws_env):
    """S3 answers some keys of a DeleteObjects with SlowDown (the request succeeds): those are tried once more
    after the others; what S3 still did not delete is returned, exactly, and nothing else is touched."""
    from lakehouse_ops.aws import objects
    from lakehouse_ops.aws.clients import client

    bucket = "perkey-%s" % uuid.uuid4().hex[:8]
    direct = client("s3")
    direct.create_bucket(Bucket=bucket)
    keys = ["t/data/f-%04d.parquet" % i for i in range(300)]
    _put(direct, bucket, keys + ["t/data/live.parquet"])
    with SlowDownProxy(aws_env, seed=3, share=0.0, key_errors=0.3) as proxy:
        left = objects.delete_keys(client("s3", endpoint=proxy.url), ["s3://%s/%s" % (bucket, k) for k in keys], 4)
    remaining = _current(direct, bucket)
    assert proxy.key_faults > len(left) > 0, (proxy.key_faults, len(left))  # the second pass deleted most
    assert sorted(left) == sorted("s3://%s/%s" % (bucket, k) for k in remaining - {"t/data/live.parquet"})
    assert "t/data/live.parquet" in remaining


def test_a_prefix_delete_tries_again_what_s3_did_not_delete_and_says_whether_all_went(aws_env):
    """Purging a trash batch (`delete_tree`): keys answered SlowDown inside the multi-object delete are deleted on
    the second pass; True only when nothing is left under the prefix, and a sibling prefix is never touched."""
    from lakehouse_ops.aws import objects
    from lakehouse_ops.aws.clients import client

    bucket = "tree-%s" % uuid.uuid4().hex[:8]
    direct = client("s3")
    direct.create_bucket(Bucket=bucket)
    _put(direct, bucket, ["t/.trash/b1/data/f-%03d.parquet" % i for i in range(120)] + ["t/.trash/b10/keep.parquet"])
    with SlowDownProxy(aws_env, seed=5, share=0.0, key_errors=0.2) as proxy:
        s3 = client("s3", endpoint=proxy.url)
        first = objects.delete_tree(s3, "s3://%s/t/.trash/b1" % bucket)
        left_after_first = len([k for k in _current(direct, bucket) if k.startswith("t/.trash/b1/")])
        second = objects.delete_tree(s3, "s3://%s/t/.trash/b1" % bucket)
    assert proxy.key_faults > 0
    assert first == (left_after_first == 0)
    assert second is True and _current(direct, bucket) == {"t/.trash/b10/keep.parquet"}
