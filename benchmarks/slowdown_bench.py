"""S3 answering 503 SlowDown in bursts or above a request rate (tests/slowdown.py in front of moto's server), under
what the library asks of S3 from Python: the library's S3 client (botocore's adaptive retries: it backs off and
lowers its own request rate when throttled, then raises it again; one client shared by a pool) next to a
fixed-concurrency client with standard retries (the same attempts, no rate adaptation), in the same run.

`--operation claims`: claims of several ingest workers; reports objects claimed per second and whether every object
was claimed by exactly one worker. `--operation moves`: orphan files moved into the trash on a pool of threads, as
orphan removal moves them without a Hadoop filesystem (with its second pass for moves that gave up); reports files
moved per second and whether every file arrived once with nothing lost. `--operation deletes`: orphan files
deleted as orphan removal deletes them on S3 (multi-object deletes of `--batch` keys on a pool of threads, keys not
deleted tried once more); reports files deleted per second and whether exactly the listed files are gone. All: S3
requests sent, SlowDown answers, calls that failed.

    .venv/bin/python benchmarks/slowdown_bench.py [--operation claims|moves|deletes] [--objects 150] [--workers 3]
        [--share 0.2 | --rate 40] [--batch 250]
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


def s3_client(mode, url):
    """The library's client (adaptive retries) or the baseline: standard retries, the same attempts, no adaptation."""
    import boto3
    from botocore.config import Config

    from lakehouse_ops.aws.clients import S3_ATTEMPTS, client

    if mode == "adaptive":
        return client("s3", endpoint=url)
    config = Config(retries={"max_attempts": S3_ATTEMPTS, "mode": "standard"}, max_pool_connections=16)
    return boto3.session.Session().client("s3", endpoint_url=url, config=config)


def traffic(proxy, took):
    """What the run asked of S3, and how S3 (the proxy) answered."""
    return {
        "seconds": round(took, 2),
        "s3_requests": proxy.s3_requests,
        "s3_requests_per_s": round(proxy.s3_requests / took, 1),
        "slowdown_answers": proxy.faults,
    }


def run(endpoint, mode, objects, workers, share, seed, rate):
    from lakehouse_ops.aws.clients import client
    from lakehouse_ops.conditional import S3Store
    from lakehouse_ops.ingest.claims import Claims

    bucket = "bench-%s" % uuid.uuid4().hex[:8]
    client("s3", endpoint=endpoint).create_bucket(Bucket=bucket)
    identities = ["land/in/%05d.json#e%d" % (i, i) for i in range(objects)]
    with SlowDownProxy(endpoint, share=share, burst=3, seed=seed, rate=rate) as proxy:
        claimers = [
            Claims(S3Store("s3://%s/c" % bucket, s3_client(mode, proxy.url)), 3600, owner="w%d" % n)
            for n in range(workers)
        ]
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
        **traffic(proxy, took),
        "objects_claimed_per_s": round(len(owners) / took, 1),
        "failed_workers": len(failures),
        "failures": failures[:3],
        "every_object_claimed_once": sorted(owners) == sorted(identities) and all(len(v) == 1 for v in owners.values()),
    }


def orphans_in_a_bucket(endpoint, objects):
    """(direct client, a new bucket, the uris of `objects` orphan files written in its table's data directory)."""
    from lakehouse_ops.aws.clients import client

    bucket = "bench-%s" % uuid.uuid4().hex[:8]
    direct = client("s3", endpoint=endpoint)
    direct.create_bucket(Bucket=bucket)
    uris = ["s3://%s/t/data/f-%05d.parquet" % (bucket, i) for i in range(objects)]
    for uri in uris:
        direct.put_object(Bucket=bucket, Key=uri.split("/", 3)[3], Body=b"PAR1 orphan")
    return direct, bucket, uris


def run_moves(endpoint, mode, objects, workers, share, seed, rate):
    """Move `objects` files into a trash prefix on `workers` threads, as orphan removal does through boto3."""
    from lakehouse_ops.aws import objects as s3_objects
    from lakehouse_ops.retry import each_then_again

    direct, bucket, sources = orphans_in_a_bucket(endpoint, objects)
    pairs = [(uri, uri.replace("/t/data/", "/t/.trash/b1/data/")) for uri in sources]
    failures = []
    with SlowDownProxy(endpoint, share=share, burst=3, seed=seed, rate=rate) as proxy:
        s3 = s3_client(mode, proxy.url)  # one client for the whole pool, as the library shares it

        def one(pair):
            try:
                return s3_objects.move(s3, pair[0], pair[1])
            except Exception as exc:  # a call that gave up: counted, the file stays where it was
                failures.append(type(exc).__name__)
                return False

        started = time.time()
        moved = each_then_again(one, pairs, workers)
        took = time.time() - started
    keys = {
        o["Key"]
        for page in direct.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }
    arrived = [t for _, t in pairs if t.split("/", 3)[3] in keys]
    stayed = [s for s, _ in pairs if s.split("/", 3)[3] in keys]
    return {
        "mode": mode,
        **traffic(proxy, took),
        "files_moved_per_s": round(sum(moved) / took, 1),
        "failed_calls": len(failures),
        "files_not_moved": len(pairs) - sum(moved),
        "nothing_lost": len(arrived) + len(stayed) == len(pairs) and not set(arrived) & set(stayed),
    }


def run_deletes(endpoint, mode, objects, workers, share, seed, rate, batch):
    """Delete `objects` files with `workers` multi-object delete requests at once, as orphan removal does on S3."""
    from lakehouse_ops.aws import objects as s3_objects

    direct, bucket, uris = orphans_in_a_bucket(endpoint, objects)
    direct.put_object(Bucket=bucket, Key="t/data/live.parquet", Body=b"PAR1 live")
    s3_objects.DELETE_BATCH = batch
    with SlowDownProxy(endpoint, share=share, burst=3, seed=seed, rate=rate) as proxy:
        s3 = s3_client(mode, proxy.url)
        failures = []
        started = time.time()
        try:
            left = s3_objects.delete_keys(s3, uris, workers)
        except Exception as exc:  # a batch that gave up on something else than throttling: counted
            failures.append(type(exc).__name__)
            left = uris
        took = time.time() - started
    keys = {
        o["Key"]
        for page in direct.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }
    return {
        "mode": mode,
        **traffic(proxy, took),
        "files_deleted_per_s": round((len(uris) - len(left)) / took, 1),
        "failed_calls": len(failures),
        "files_not_deleted": len(left),
        "exactly_the_listed_files_gone": keys == {"t/data/live.parquet"} | {u.split("/", 3)[3] for u in left},
    }


FIGURES = {  # operation: (figure, what failed, chart title, output name)
    "claims": ("objects_claimed_per_s", "failed_workers", "Claims", "slowdown_bench"),
    "moves": ("files_moved_per_s", "files_not_moved", "Trash moves", "slowdown_moves_bench"),
    "deletes": ("files_deleted_per_s", "files_not_deleted", "Orphan deletes", "slowdown_deletes_bench"),
}


def chart(results, operation, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [r["mode"] for r in results]
    figure, failed, title, _ = FIGURES[operation]
    ax.bar(labels, [r[figure] for r in results], color=["#4c72b0", "#c44e52"])
    for i, r in enumerate(results):
        ax.text(i, r[figure], "%d failed" % r[failed], ha="center", va="bottom")
    ax.set_ylabel(figure.replace("_", " ").replace(" per s", " per second"))
    ax.set_title("%s under S3 SlowDown" % title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--operation", choices=sorted(FIGURES), default="claims")
    parser.add_argument("--batch", type=int, default=250, help="keys per multi-object delete (deletes)")
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
        measure = {"claims": run, "moves": run_moves, "deletes": run_deletes}[args.operation]
        extra = (args.batch,) if args.operation == "deletes" else ()
        results = [
            measure(endpoint, mode, args.objects, args.workers, args.share, args.seed, args.rate, *extra)
            for mode in ("adaptive", "fixed-concurrency")
        ]
    finally:
        proc.terminate()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    os.makedirs(out, exist_ok=True)
    faults = "above %g S3 requests/s" % args.rate if args.rate else "%g of S3 requests, in bursts of 3" % args.share
    report = {
        "operation": args.operation,
        "objects": args.objects,
        "workers": args.workers,
        "slowdown": faults,
        "results": results,
    }
    adaptive, fixed = results
    figure, _, _, name = FIGURES[args.operation]
    report["ratio_%s_adaptive_to_fixed" % figure] = round(adaptive[figure] / max(fixed[figure], 0.001), 2)
    with open(os.path.join(out, name + ".json"), "w") as handle:
        json.dump(report, handle, indent=2)
    chart(results, args.operation, os.path.join(out, name + ".png"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
