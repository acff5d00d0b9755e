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
