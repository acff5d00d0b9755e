"""The per-partition conversion without Spark: Arrow batches in, converted batches out, through a client that
records every call (standing in for the HTTP service, which the Spark tests use for real)."""

import threading

import pyarrow as pa
import pytest

from lakehouse_ops.pseudo import pipeline
from lakehouse_ops.pseudo.spark import ServiceSettings, convert_batches


class RecordingClient:
    """Answers 'p:<value>' and records each call's values."""

    vector = None

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def pseudonymize(self, values, deterministic=True):
        with self.lock:
            self.calls.append(list(values))
        return ["p:%s" % v for v in values]

    def reidentify(self, tokens):
        with self.lock:
            self.calls.append(list(tokens))
        return [t[2:] for t in tokens]


def batches(*columns):
    return [
        pa.RecordBatch.from_arrays([pa.array([1] * len(c)), pa.array(c, pa.string())], names=["id", "vin"])
        for c in columns
    ]


def run(parts, settings, client, deterministic=True, direction="pseudonymize"):
    return list(convert_batches(iter(parts), ["vin"], settings, direction, deterministic, client=client))


def test_distinct_values_in_chunks_of_batch_size_and_nulls_stay_null():
    client = RecordingClient()
    out = run(batches(["a", "b", "a", None, "c", "d", "e"]), ServiceSettings(url="http://x", batch_size=2), client)
    assert out[0].column(1).to_pylist() == ["p:a", "p:b", "p:a", None, "p:c", "p:d", "p:e"]
    assert out[0].column(0).to_pylist() == [1] * 7  # other columns untouched
    assert sorted(len(c) for c in client.calls) == [1, 2, 2]  # 5 distinct values, chunks of at most 2
    assert sorted(v for c in client.calls for v in c) == ["a", "b", "c", "d", "e"]


def test_deterministic_answers_are_remembered_across_the_partitions_batches():
    client = RecordingClient()
    out = run(batches(["a", "b"], ["b", "c"], ["a", "c"]), ServiceSettings(url="http://x"), client)
    assert [b.column(1).to_pylist() for b in out] == [["p:a", "p:b"], ["p:b", "p:c"], ["p:a", "p:c"]]
    assert sorted(v for c in client.calls for v in c) == ["a", "b", "c"]  # each value asked once


def test_randomized_values_are_asked_every_time():
    client = RecordingClient()
    run(batches(["a", "b"], ["a"]), ServiceSettings(url="http://x"), client, deterministic=False)
    assert sorted(v for c in client.calls for v in c) == ["a", "a", "b"]


def test_reidentification_is_remembered_too():
    client = RecordingClient()
    out = run(batches(["p:a"], ["p:a", "p:b"]), ServiceSettings(url="http://x"), client, direction="reidentify")
    assert [b.column(1).to_pylist() for b in out] == [["a"], ["a", "b"]]
    assert sorted(v for c in client.calls for v in c) == ["p:a", "p:b"]


def test_the_memory_of_a_partition_is_bounded(monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_REMEMBERED", 4)
    client = RecordingClient()
    values = ["v%d" % i for i in range(10)]
    run(batches(values, values[:2]), ServiceSettings(url="http://x"), client)
    # After the first batch the oldest half was forgotten: v0 and v1 are asked again.
    asked = [v for c in client.calls for v in c]
    assert asked.count("v0") == 2 and asked.count("v1") == 2 and len(asked) == 12


def test_a_short_answer_fails_the_partition():
    class Short(RecordingClient):
        def pseudonymize(self, values, deterministic=True):
            return super().pseudonymize(values, deterministic)[:-1]

    from lakehouse_ops.pseudo.client import PseudoServiceError

    with pytest.raises(PseudoServiceError, match="answered 1 values for 2 sent"):
        run(batches(["a", "b"]), ServiceSettings(url="http://x"), Short())


class HeldClient(RecordingClient):
    """Holds the call for the first batch's value until the calls of the two batches after it have arrived."""

    def __init__(self):
        super().__init__()
        self.later_arrived = threading.Event()

    def pseudonymize(self, values, deterministic=True):
        answer = super().pseudonymize(values, deterministic)
        with self.lock:
            seen = {v for c in self.calls for v in c}
        if {"b", "c"} <= seen:
            self.later_arrived.set()
        if "a" in values:
            self.later_arrived.wait(timeout=10)
        return answer


def test_the_next_batches_calls_are_in_flight_while_a_batch_waits_for_its_answers():
    client = HeldClient()
    parts = batches(["a"], ["b", "a"], ["c"], ["d"])
    out = run(parts, ServiceSettings(url="http://x", max_concurrent_requests=3), client)
    assert client.later_arrived.is_set()  # b and c were asked while a's answer was held
    # In order, each value asked once although "a" was still in flight when the second batch started.
    assert [b.column(1).to_pylist() for b in out] == [["p:a"], ["p:b", "p:a"], ["p:c"], ["p:d"]]
    assert sorted(v for c in client.calls for v in c) == ["a", "b", "c", "d"]


def test_a_wrong_answer_length_fails_the_partition():
    from lakehouse_ops.pseudo.client import PseudoServiceError

    class Short(RecordingClient):
        def pseudonymize(self, values, deterministic=True):
            return super().pseudonymize(values, deterministic)[:-1]

    with pytest.raises(PseudoServiceError, match="answered 1 values for 2 sent"):
        run(batches(["a", "b"]), ServiceSettings(url="http://x"), Short())
