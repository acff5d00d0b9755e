"""SQS access for ingest: parallel receives, visibility heartbeats, batched deletes, dead-lettering.

Messages are deleted only by the job, and only after the data they announce is durably committed.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from lakehouse_ops.errors import IngestError
from lakehouse_ops.logs import get_logger

log = get_logger("ingest.queue")


@dataclass
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_timestamp_ms: int


def _chunks(items: Sequence[Message], size: int = 10) -> Iterator[Sequence[Message]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Queue:
    """One ingest queue (and its dead-letter queue) through an SQS client."""

    def __init__(self, sqs: Any, queue_url: str, dlq_url: Optional[str] = None, visibility_timeout: int = 300) -> None:
        self.sqs = sqs
        self.url = queue_url
        self.dlq_url = dlq_url
        self.visibility_timeout = visibility_timeout

    def receive(self, calls: int, wait_time_seconds: int = 1, max_messages: int = 10) -> List[Message]:
        """Issue `calls` ReceiveMessage requests (`max_messages`, at most 10, each) in parallel."""

        def one(_: int) -> List[Dict[str, Any]]:
            response = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_time_seconds,
                VisibilityTimeout=self.visibility_timeout,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
            received: List[Dict[str, Any]] = response.get("Messages", [])
            return received

        with ThreadPoolExecutor(max_workers=calls) as pool:
            batches = list(pool.map(one, range(calls)))
        out = []
        for raw in (m for batch in batches for m in batch):
            attrs = raw.get("Attributes", {})
            out.append(
                Message(
                    raw["MessageId"],
                    raw["ReceiptHandle"],
                    raw.get("Body") or "",
                    int(attrs.get("ApproximateReceiveCount", "1")),
                    int(attrs.get("SentTimestamp", "0")),
                )
            )
        return out

    def extend(self, messages: Sequence[Message], seconds: Optional[int] = None) -> None:
        seconds = self.visibility_timeout if seconds is None else seconds
        failed: List[Dict[str, Any]] = []
        for chunk in _chunks(messages):
            response = self.sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                    for i, m in enumerate(chunk)
                ],
            )
            failed.extend(response.get("Failed", []))
        if failed:
            log.warning("could not extend visibility of some messages", extra={"failed": len(failed)})

    def delete(self, messages: Sequence[Message]) -> None:
        """Delete messages; raise if SQS refuses any (they would be redelivered and skipped by the ledger)."""
        failed: List[Dict[str, Any]] = []
        for chunk in _chunks(messages):
            response = self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)],
            )
            failed.extend(response.get("Failed", []))
        if failed:
            raise IngestError("SQS did not delete %d message(s): %s" % (len(failed), failed[0].get("Message")))

    def release(self, messages: Sequence[Message]) -> None:
        """Make messages visible again at once (received, but this run will not process them)."""
        if messages:
            self.extend(messages, seconds=0)

    def dead_letter(self, message: Message, reason: str) -> None:
        """Move a message to the DLQ with the reason as a message attribute, then delete it here."""
        if not self.dlq_url:
            raise IngestError("no dlq_url configured")
        self.sqs.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=message.body or "",
            MessageAttributes={
                "lakehouse_ops_reason": {"DataType": "String", "StringValue": reason[:1000]},
                "lakehouse_ops_source_message_id": {"DataType": "String", "StringValue": message.message_id},
            },
        )
        self.delete([message])

    def depth(self) -> Tuple[int, int]:
        """(visible, in flight) messages, as SQS approximates them."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def open_queue(cfg: Any, sqs: Any = None) -> Queue:
    """The queue of an ingest section (`cfg`), with its DLQ and visibility timeout, on `sqs` or a new client."""
    if sqs is None:
        from lakehouse_ops.aws.clients import client

        sqs = client("sqs")
    return Queue(sqs, cfg.queue_url, cfg.dlq_url, cfg.visibility_timeout_seconds)


class Heartbeat:
    """Keeps a batch's messages invisible to other workers from receipt until the batch is settled."""

    def __init__(self, queue: Queue, every_seconds: float) -> None:
        self.queue = queue
        self.every = every_seconds
        self._messages: List[Message] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqs-heartbeat", daemon=True)
        self.beats = 0

    def add(self, messages: Sequence[Message]) -> None:
        with self._lock:
            self._messages.extend(messages)

    def discard(self, messages: Sequence[Message]) -> None:
        """Stop extending these (settled: deleted, or hidden for a time of their own)."""
        gone = {m.message_id for m in messages}
        with self._lock:
            self._messages = [m for m in self._messages if m.message_id not in gone]

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                messages = list(self._messages)
            try:
                self.queue.extend(messages)
                self.beats += 1
            except Exception as exc:  # a missed beat is retried; the timeout leaves room for several
                log.warning("visibility heartbeat failed", extra={"error": str(exc).splitlines()[0]})

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


def oldest_sent_ms(messages: List[Message]) -> int:
    return min((m.sent_timestamp_ms for m in messages if m.sent_timestamp_ms), default=int(time.time() * 1000))


def by_id(messages: Sequence[Message]) -> Dict[str, Message]:
    return {m.message_id: m for m in messages}
