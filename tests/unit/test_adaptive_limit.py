"""Calls in flight against a throttling service: additive increase, multiplicative decrease, once per round."""

import threading

import pytest

from lakehouse_ops.pseudo.client import AdaptiveLimit


@pytest.mark.fast
def test_throttling_halves_the_limit_once_per_round_and_answers_raise_it_again():
    limit = AdaptiveLimit(8)
    rounds = [limit.acquire() for _ in range(8)]
    assert limit.in_flight == 8
    # A burst: every call in flight was throttled; only the first halves the limit (they all started before it).
    for started in rounds:
        limit.release(started, throttled=True)
    assert limit.limit == 4 and limit.in_flight == 0
    # A call that starts after the cut and is throttled too cuts again.
    limit.release(limit.acquire(), throttled=True)
    assert limit.limit == 2 and limit.lowest == 2
    for _ in range(2):  # `limit` answers without throttling: one more slot
        limit.release(limit.acquire(), throttled=False)
    assert limit.limit == 3
    # Back to the limit that drew throttling (4) only after PROBE_ROUNDS times as many answers.
    for _ in range(3 * AdaptiveLimit.PROBE_ROUNDS - 1):
        limit.release(limit.acquire(), throttled=False)
    assert limit.limit == 3
    limit.release(limit.acquire(), throttled=False)
    assert limit.limit == 4
    for _ in range(1000):
        limit.release(limit.acquire(), throttled=False)
    assert limit.limit == 8  # never over the ceiling
    for _ in range(10):
        limit.release(limit.acquire(), throttled=True)
    assert limit.limit == 1  # never under one


@pytest.mark.fast
def test_a_call_over_the_limit_waits_for_a_slot():
    limit = AdaptiveLimit(1)
    first = limit.acquire()
    entered = threading.Event()

    def second():
        limit.release(limit.acquire(), throttled=False)
        entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not entered.wait(0.2)  # the only slot is taken
    limit.release(first, throttled=False)
    assert entered.wait(5)
    thread.join()
