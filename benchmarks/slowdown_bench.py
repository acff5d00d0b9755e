"""Claims of several ingest workers on S3 answering 503 SlowDown in bursts (tests/slowdown.py in front of moto's
server): the library's S3 client (botocore's adaptive retries: it backs off and lowers its own request rate when
throttled, then raises it again) next to a fixed-concurrency client with standard retries (the same attempts, no
rate adaptation), in the same run. Reports objects claimed per second, S3 requests sent, SlowDown answers, calls
that failed, and whether every object was claimed by exactly one worker.

    .venv/bin/python benchmarks/slowdown_bench.py [--objects 150] [--workers 3] [--share 0.2 | --rate 40]
"""

import argparse
import json
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from slowdown import SlowDownProxy  # noqa: E402


def run(endpoint, mode, objects, workers, share, seed, rate):
    import boto3
    from botocore.config import Config

    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.conditional import S3Store
    from lakehouse_ops.ingest.claims import Claims

    bucket = "bench-%s" % uuid.uuid4().hex[:8]
    client("s3", endpoint=endpoint).create_bucket(Bucket=bucket)
    identities = ["land/in/%05d.json#e%d" % (i, i) for i in range(objects)]
    with SlowDownProxy(endpoint, share=share, burst=3, seed=seed, rate=rate) as proxy:

        def s3():
            if mode == "adaptive":
                return client("s3", endpoint=proxy.url)  # what the library uses
            config = Config(retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=16)
            return boto3.session.Session().client("s3", endpoint_url=proxy.url, config=config)

        claimers = [Claims(S3Store("s3://%s/c" % bucket, s3()), 3600, owner="w%d" % n) for n in range(workers)]
        results, failures = {}, []

        def work(claims):
            try:
                results[claims.owner] = claims.claim(identities, "b-" + claims.owner)
            except Exception as exc:  # a call that gave up: counted
                failures.append(type(exc).__name__ + ": " + str(exc)[:120])

        started = time.time()
        threads = [threading.Thread(target=work, args=(c,)) for c in claimers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.time() - started
    owners = {}
    for owner, result in results.items():
        for identity in result.taken:
            owners.setdefault(identity, []).append(owner)
    return {
        "mode": mode,
        "seconds": round(took, 2),
        "objects_claimed_per_s": round(len(owners) / took, 1),
        "s3_requests": proxy.s3_requests,
        "s3_requests_per_s": round(proxy.s3_requests / took, 1),
        "slowdown_answers": proxy.faults,
        "failed_workers": len(failures),
        "failures": failures[:3],
        "every_object_claimed_once": sorted(owners) == sorted(identities) and all(len(v) == 1 for v in owners.values()),
    }


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [r["mode"] for r in results]
    ax.bar(labels, [r["objects_claimed_per_s"] for r in results], color=["#4c72b0", "#c44e52"])
    for i, r in enumerate(results):
        ax.text(i, r["objects_claimed_per_s"], "%d failed" % r["failed_workers"], ha="center", va="bottom")
    ax.set_ylabel("objects claimed per second")
    ax.set_title("Claims under bursts of S3 SlowDown")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=150)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=None, help="refuse S3 requests above this many per second")
    args = parser.parse_args(argv)
    from lakehouse_ops.aws.local import start_moto

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    proc, endpoint = start_moto()
    try:
        results = [
            run(endpoint, mode, args.objects, args.workers, args.share, args.seed, args.rate)
            for mode in ("adaptive", "fixed-concurrency")
        ]
    finally:
        proc.terminate()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    os.makedirs(out, exist_ok=True)
    faults = "above %g S3 requests/s" % args.rate if args.rate else "%g of S3 requests, in bursts of 3" % args.share
    report = {"objects": args.objects, "workers": args.workers, "slowdown": faults, "results": results}
    adaptive, fixed = results
    report["ratio_claimed_per_s_adaptive_to_fixed"] = round(
        adaptive["objects_claimed_per_s"] / max(fixed["objects_claimed_per_s"], 0.001), 2
    )
    with open(os.path.join(out, "slowdown_bench.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    chart(results, os.path.join(out, "slowdown_bench.png"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
