"""Leases: renewed while held, lost when taken over, released only if still ours (a local store here;
tests/integration/test_ship_aws.py runs them on S3's conditional writes and deletes)."""

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
