"""Leases: renewed while held, lost when taken over, released only if still ours (a local store here;
tests/integration/test_ship_aws.py runs them on S3's conditional writes and deletes)."""

import threading
import time

import pytest

from lakehouse_ops.conditional import LocalStore
from lakehouse_ops.lease import Leases


def test_a_held_lease_is_renewed_and_a_lost_one_is_never_released(tmp_path):
    store = LocalStore(str(tmp_path / "leases"))
    now = [1000.0]
    a = Leases("unused", minutes=1, store=store, owner="a", clock=lambda: now[0])
    b = Leases("unused", minutes=1, store=store, owner="b", clock=lambda: now[0])
    assert a.acquire("t") == (True, None)
    now[0] += 50
    a.renew()  # a long run: its lease now lasts until 1110
    now[0] += 30
    taken, holder = b.acquire("t")
    assert not taken and holder["owner"] == "a" and holder["expires_at"] == 1110
    now[0] += 61  # a stalls: no renewal, and its lease runs out
    assert b.acquire("t") == (True, None)
    a.renew()
    assert not a.held("t") and "taken over" in a.lost("t")
    a.release("t")  # not a's any more: b's lease stays
    assert store.read("t.json")[0]["owner"] == "b" and b.held("t")
    b.release("t")
    assert store.read("t.json") is None


class SlowRenewal(LocalStore):
    """A store whose renewal write takes its time: a release arrives while it is in flight."""

    def __init__(self, root):
        super().__init__(root)
        self.renewing = threading.Event()

    def replace(self, key, doc, etag):
        self.renewing.set()
        time.sleep(0.5)
        return super().replace(key, doc, etag)


def test_a_release_during_a_renewal_gives_the_lease_back(tmp_path):
    store = SlowRenewal(str(tmp_path / "leases"))
    now = [1000.0]
    a = Leases("unused", minutes=30, store=store, owner="a", clock=lambda: now[0])
    assert a.acquire("job") == (True, None)
    now[0] += 600
    renewal = threading.Thread(target=a.renew)  # what the keep-alive beat does
    renewal.start()
    assert store.renewing.wait(5)
    a.release("job")  # the run finished while its lease was being renewed
    renewal.join(5)
    assert store.read("job.json") is None and not a.held("job") and a.lost("job") is None
    b = Leases("unused", minutes=30, store=store, owner="b", clock=lambda: now[0])
    assert b.acquire("job") == (True, None)  # the next run is not refused


class LostAnswer(LocalStore):
    """A store whose next renewal write lands but whose answer is lost (a timeout after the PUT)."""

    lose_next = False

    def replace(self, key, doc, etag):
        written = super().replace(key, doc, etag)
        if self.lose_next:
            self.lose_next = False
            raise ConnectionError("read timeout")
        return written


def test_a_renewal_whose_answer_was_lost_keeps_the_lease(tmp_path):
    store = LostAnswer(str(tmp_path / "leases"))
    now = [1000.0]
    a = Leases("unused", minutes=10, store=store, owner="a", clock=lambda: now[0])
    assert a.acquire("job") == (True, None)
    now[0] += 200
    store.lose_next = True
    with pytest.raises(ConnectionError):
        a.renew()  # the keep-alive beat logs this and tries again at the next one
    now[0] += 200
    a.renew()
    assert a.held("job") and a.lost("job") is None
    assert store.read("job.json")[0]["expires_at"] == 1400 + 600
    store.lose_next = True
    with pytest.raises(ConnectionError):
        a.renew()
    a.release("job")  # the ETag it holds is stale; the record is still its own: released
    assert store.read("job.json") is None
