"""Filling one ingest batch from the queue, within a budget; parsing and deduplicating as messages arrive."""

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from lakehouse_ops.ingest.messages import IGNORED, POISON, S3Object, parse_body
from lakehouse_ops.ingest.queue import Message


@dataclass
class Batch:
    messages: List[Message] = field(default_factory=list)
    # Unique objects by identity, in arrival order; and which objects each message announced.
    objects: Dict[str, S3Object] = field(default_factory=dict)
    message_objects: Dict[str, List[str]] = field(default_factory=dict)
    ignored: List[Tuple[Message, str]] = field(default_factory=list)
    poison: List[Tuple[Message, str]] = field(default_factory=list)
    deleted: List[S3Object] = field(default_factory=list)
    duplicates: int = 0
    bytes: int = 0
    receive_calls: int = 0
    fill_seconds: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.messages

    def add(self, message: Message, eventbridge_key_encoding: str = "none") -> None:
        self.messages.append(message)
        parsed = parse_body(message.body, eventbridge_key_encoding)
        self.deleted.extend(parsed.deleted)
        if parsed.kind == POISON:
            self.poison.append((message, parsed.reason))
            return
        if parsed.kind == IGNORED:
            self.ignored.append((message, parsed.reason))
            return
        ids = []
        for obj in parsed.created:
            if obj.identity in self.objects:
                self.duplicates += 1
            else:
                self.objects[obj.identity] = obj
                self.bytes += obj.size or 0
            ids.append(obj.identity)
        self.message_objects[message.message_id] = ids


def fill_batch(
    queue: Any,
    budget: Any,
    eventbridge_key_encoding: str = "none",
    clock: Callable[[], float] = time.monotonic,
    on_receive: Optional[Callable[[List[Message]], None]] = None,
) -> Batch:
    """Receive until the budget (objects, bytes, wait) is reached or the queue answers empty.

    `on_receive` sees every received message list first (the job hands them to the batch's heartbeat).
    """
    batch = Batch()
    started = clock()
    while True:
        room = max(budget.max_objects - len(batch.objects), 1)
        calls = max(1, min(budget.receive_concurrency, math.ceil(room / 10.0)))
        # Ask for no more messages than the budget has room for (a message may still announce several objects).
        received = queue.receive(calls, budget.wait_time_seconds, min(10, room))
        if on_receive is not None and received:
            on_receive(received)
        batch.receive_calls += calls
        for message in received:
            batch.add(message, eventbridge_key_encoding)
        if not received:
            break
        if (
            len(batch.objects) >= budget.max_objects
            or batch.bytes >= budget.max_bytes
            or clock() - started >= budget.max_wait_seconds
        ):
            break
    batch.fill_seconds = clock() - started
    return batch
