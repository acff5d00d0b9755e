"""Settling a batch's messages: delete, dead-letter, or hide until another worker's claim expires."""

import time
from typing import Any, Dict, List, Mapping, Optional

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.ingest.batch import Batch
from lakehouse_ops.ingest.queue import Heartbeat, Message, Queue
from lakehouse_ops.logs import get_logger

log = get_logger("ingest")

# SQS's longest visibility timeout: a message deferred behind a claim comes back by then at the latest.
MAX_DEFER_SECONDS = 43200


def settle_messages(
    queue: Queue,
    cfg: IngestConfig,
    batch: Batch,
    failed: Mapping[str, str],
    metrics: Dict[str, Any],
    held: Optional[Mapping[str, float]] = None,
    heartbeat: Optional[Heartbeat] = None,
) -> None:
    """Delete messages whose objects are all committed; dead-letter those with failed objects; hide those
    with an object another worker is writing until its claim expires (by then it is committed, and they are
    deleted; waiting once, not polling, keeps their receive count low for the queue's redrive policy)."""
    held = held or {}
    to_delete: List[Message] = []
    deferred: Dict[int, List[Message]] = {}
    for message in batch.messages:
        ids = batch.message_objects.get(message.message_id)
        if ids is None:
            continue  # poison or ignored: already handled
        reasons = [failed[i] for i in ids if i in failed]
        if any(i in held for i in ids) and not reasons:
            until = max(held[i] for i in ids if i in held)
            seconds = int(min(MAX_DEFER_SECONDS, max(1, until - time.time() + 1)))
            deferred.setdefault(seconds, []).append(message)
        elif not reasons:
            to_delete.append(message)
        elif cfg.poison_action == "dlq":
            queue.dead_letter(message, "; ".join(reasons))
            metrics["dlq_messages"] += 1
        else:
            log.warning(
                "message left for the queue's redrive policy",
                extra={"message_id": message.message_id, "reason": "; ".join(reasons)},
            )
    queue.delete(to_delete)
    for seconds, messages in deferred.items():
        if heartbeat is not None:
            heartbeat.discard(messages)
        queue.extend(messages, seconds)
    metrics["deleted_messages"] = len(to_delete) + len(batch.ignored)
    metrics["deferred_messages"] = sum(len(m) for m in deferred.values())
