"""Claims: create-if-absent, takeover only after expiry, void-or-finish of the previous batch, seals that lose to
voids; on a local directory with a settable clock (tests/integration/test_claims_s3.py runs the same on S3)."""

import threading

import pytest

from lakehouse_ops.conditional import LocalStore
from lakehouse_ops.ingest.claims import SEALED, VOID, Claims


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def store(tmp_path):
    return LocalStore(str(tmp_path / "claims"))


def workers(store, clock, n=2, ttl=60):
    return [Claims(store, ttl, owner="worker-%d" % i, clock=clock) for i in range(n)]


def test_an_object_is_claimed_by_one_worker_until_its_claim_expires(store):
    clock = Clock()
    a, b = workers(store, clock)
    first = a.claim(["o1", "o2"], "batch-a")
    assert set(first.taken) == {"o1", "o2"}
    second = b.claim(["o2", "o3"], "batch-b")
    assert set(second.taken) == {"o3"} and second.held == {"o2": 1060.0}
    clock.now += 61
    third = b.claim(["o2"], "batch-b2")  # expired, and batch-a was never sealed: voided, then taken
    assert set(third.taken) == {"o2"}
    assert b.batch_state("batch-a")["state"] == VOID
    assert a.seal("batch-a", [{"identity": "o1"}, {"identity": "o2"}], 42) is False


def test_an_expired_claim_of_a_sealed_batch_is_finished_not_taken(store):
    clock = Clock()
    a, b = workers(store, clock)
    a.claim(["o1", "o2"], "batch-a")
    assert a.seal("batch-a", [{"identity": "o1"}], 7) is True  # o2 dropped from the batch before sealing
    clock.now += 61
    result = b.claim(["o1", "o2"], "batch-b")
    assert set(result.to_finish) == {"batch-a"} and result.to_finish["batch-a"]["staged_snapshot"] == 7
    assert result.to_finish["batch-a"]["state"] == SEALED
    assert set(result.taken) == {"o2"}  # not in the seal: free to take
    b.release_batch("batch-a", ["o1"])
    assert set(b.claim(["o1"], "batch-c").taken) == {"o1"}


def test_released_claims_can_be_claimed_again_and_a_moved_claim_is_not_released(store):
    clock = Clock()
    a, b = workers(store, clock)
    taken = a.claim(["o1"], "batch-a").taken
    a.release(taken)
    again = b.claim(["o1"], "batch-b").taken
    assert set(again) == {"o1"}
    a.release(taken)  # a's old etag: b's claim stays
    assert set(a.claim(["o1"], "batch-c").held) == {"o1"}


def test_rebind_moves_our_claims_to_the_new_batch(store):
    clock = Clock()
    (a,) = workers(store, clock, n=1)
    taken = a.claim(["o1", "o2"], "batch-a").taken
    moved = a.rebind(taken, "batch-a2")
    assert set(moved) == {"o1", "o2"} and moved != taken


def test_racing_workers_each_object_goes_to_exactly_one(tmp_path):
    store = LocalStore(str(tmp_path / "race"))
    objects = ["o%d" % i for i in range(60)]
    results = {}

    def run(i):
        results[i] = Claims(store, 60, owner="w%d" % i).claim(objects, "batch-%d" % i).taken

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    owners = {}
    for i, taken in results.items():
        for identity in taken:
            assert identity not in owners, "%s taken by w%d and w%d" % (identity, owners[identity], i)
            owners[identity] = i
    assert set(owners) == set(objects)


def test_a_workers_own_sealed_batch_is_finished_before_the_object_joins_another(store):
    clock = Clock()
    (a,) = workers(store, clock, n=1)
    a.claim(["o1"], "batch-a")
    assert a.seal("batch-a", [{"identity": "o1"}], 9)
    # The publish failed and the worker goes on with the same claims: o1 must not be written in a new batch.
    again = a.claim(["o1"], "batch-b")
    assert not again.taken and set(again.to_finish) == {"batch-a"}
