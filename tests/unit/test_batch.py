"""Batch filling: budgets, dedup and classification (a scripted queue stands in for SQS here; the real SQS
path is covered over moto's server in tests/spark/test_ingest.py)."""

from lakehouse_ops.config.ingest import BatchBudget
from lakehouse_ops.ingest.batch import fill_batch
from lakehouse_ops.ingest.events import s3_notification
from lakehouse_ops.ingest.queue import Message


class ScriptedQueue:
    def __init__(self, bodies):
        self.bodies = list(bodies)
        self.calls = []

    def receive(self, calls, wait_time_seconds, max_messages=10):
        self.calls.append(calls)
        out = []
        for _ in range(calls * max_messages):
            if not self.bodies:
                break
            body = self.bodies.pop(0)
            out.append(Message("m%d" % len(self.bodies), "r", body, 1, 1000))
        return out


def notes(n, size=100, prefix="k"):
    return [s3_notification("b", "%s%d.json" % (prefix, i), size, etag="e%d" % i) for i in range(n)]


def test_object_budget_closes_the_batch_after_the_round_that_reached_it():
    queue = ScriptedQueue(notes(100))
    batch = fill_batch(queue, BatchBudget(max_objects=25, receive_concurrency=8))
    assert queue.calls == [3]  # ceil(25 / 10) receives for the room left
    assert len(batch.objects) == 30 and len(queue.bodies) == 70
    small = fill_batch(queue, BatchBudget(max_objects=3))
    assert len(small.objects) == 3 and len(queue.bodies) == 67  # asks for no more than the room left


def test_byte_budget_and_empty_queue():
    queue = ScriptedQueue(notes(50, size=1000))
    batch = fill_batch(queue, BatchBudget(max_objects=1000, max_bytes=5000, receive_concurrency=1))
    assert len(batch.objects) == 10 and batch.bytes == 10000
    empty = fill_batch(ScriptedQueue([]), BatchBudget())
    assert empty.empty


def test_duplicates_poison_and_ignored_are_sorted_out():
    bodies = notes(3) + notes(2) + ["garbage", '{"Event": "s3:TestEvent"}']
    batch = fill_batch(ScriptedQueue(bodies), BatchBudget())
    assert len(batch.objects) == 3 and batch.duplicates == 2
    assert [reason for _, reason in batch.poison][0].startswith("message body is not JSON")
    assert len(batch.ignored) == 1 and len(batch.messages) == 7
