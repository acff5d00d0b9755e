"""The queue loop every ingest worker runs (one target, or several by routing): receive a batch while the last one
is written, hand it to `process`, stop at the first stop condition; and the batch's messages that announce no
object (poison, ignored), handled before its objects."""

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.config.rules import Config
from lakehouse_ops.engine.history import record_run
from lakehouse_ops.ingest.batch import Batch, fill_batch
from lakehouse_ops.ingest.metrics import totals
from lakehouse_ops.ingest.queue import Heartbeat, Queue
from lakehouse_ops.logs import get_logger
from lakehouse_ops.units import iso_seconds as _iso

log = get_logger("ingest")
UNTIL_EMPTY_POLL_S = 5  # --until-empty: how often the queue is asked again while messages are in flight


def batch_metrics(batch: Batch) -> Dict[str, Any]:
    """A batch's metrics before anything is written."""
    return {
        "messages": len(batch.messages),
        "objects": len(batch.objects),
        "duplicates": batch.duplicates,
        "bytes": batch.bytes,
        "receive_calls": batch.receive_calls,
        "receive_s": round(batch.fill_seconds, 3),
        "ignored": len(batch.ignored),
        "deletions_seen": len(batch.deleted),
        "poison": len(batch.poison),
        "rows": 0,
        "quarantined": 0,
        "dlq_messages": 0,
        "already_committed": 0,
        "batch_id": None,
        "snapshot_id": None,
        "commit_s": 0.0,
    }


def handle_messages(queue: Queue, cfg: IngestConfig, batch: Batch, metrics: Dict[str, Any]) -> None:
    """Poison messages to the DLQ (or left for the redrive policy), ignored ones deleted, deletions logged."""
    for message, reason in batch.poison:
        log.warning("poison message", extra={"message_id": message.message_id, "reason": reason})
        if cfg.poison_action == "dlq":
            queue.dead_letter(message, "poison: " + reason)
            metrics["dlq_messages"] += 1
    for obj in batch.deleted:
        log.info("object deletion seen; nothing to ingest", extra={"object": obj.uri})
    if batch.ignored:
        queue.delete([m for m, _ in batch.ignored])


class QueueLoop:
    """The loop over one queue (a mixin: the worker gives `cfg`, `queue`, `prepare`, `process`, `reconciled`,
    `report_target` and `after_batch`)."""

    config: Config
    cfg: IngestConfig
    queue: Queue
    reconciled: int

    @property
    def spark(self) -> Any:
        raise NotImplementedError

    @property
    def report_target(self) -> str:
        raise NotImplementedError

    def prepare(self) -> None:
        raise NotImplementedError

    def process(self, batch: Batch, heartbeat: Optional[Heartbeat] = None) -> Dict[str, Any]:
        raise NotImplementedError

    def after_batch(self, batches: List[Dict[str, Any]], metrics: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _receive(self) -> Tuple[Batch, Heartbeat]:
        """Fill one batch; its heartbeat runs from the first receipt, so a prefetched batch stays hidden too."""
        heartbeat = Heartbeat(self.queue, self.cfg.heartbeat_seconds).start()
        try:
            batch = fill_batch(self.queue, self.cfg.batch, self.cfg.eventbridge_key_encoding, on_receive=heartbeat.add)
        except Exception:
            heartbeat.stop()
            raise
        return batch, heartbeat

    def run(
        self, until_empty: bool = False, max_batches: Optional[int] = None, max_runtime_s: Optional[float] = None
    ) -> Dict[str, Any]:
        """Process batches until a stop condition; the next batch is received while the current one is written."""
        started = time.time()
        report: Dict[str, Any] = {
            "ok": True,
            "target": self.report_target,
            "queue": self.cfg.queue_url,
            "batches": [],
            "started_at": _iso(started),
            "receive_wait_s": 0.0,
        }
        self.prepare()
        report["reconciled_batches"] = self.reconciled
        backoff = self.cfg.empty_backoff_seconds
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqs-prefetch")
        upcoming: Optional["Future[Tuple[Batch, Heartbeat]]"] = None
        empty_since: Optional[float] = None
        try:
            while True:
                if max_batches is not None and len(report["batches"]) >= max_batches:
                    report["stopped"] = "max_batches"
                    break
                if max_runtime_s is not None and time.time() - started >= max_runtime_s:
                    report["stopped"] = "max_runtime"
                    break
                waited = time.time()
                batch, heartbeat = upcoming.result() if upcoming is not None else self._receive()
                report["receive_wait_s"] = round(report["receive_wait_s"] + time.time() - waited, 3)
                upcoming = None
                if batch.empty:
                    heartbeat.stop()
                    empty_since = empty_since or time.time()
                    if until_empty and self._drained(report, empty_since):
                        break
                    time.sleep(min(backoff, UNTIL_EMPTY_POLL_S) if until_empty else backoff)
                    backoff = min(backoff * 2, self.cfg.max_empty_backoff_seconds)
                    continue
                backoff, empty_since = self.cfg.empty_backoff_seconds, None
                if max_batches is None or len(report["batches"]) + 1 < max_batches:
                    upcoming = pool.submit(self._receive)
                try:
                    metrics = self.process(batch, heartbeat)
                finally:
                    heartbeat.stop()
                self.after_batch(report["batches"], metrics)
        finally:
            if upcoming is not None:
                # Received but not processed: hand the messages back instead of waiting out their timeout.
                try:
                    leftover, heartbeat = upcoming.result()
                    heartbeat.stop()
                    self.queue.release(leftover.messages)
                except Exception as exc:  # they come back after the visibility timeout all the same
                    log.warning("could not release prefetched messages", extra={"error": str(exc)[:200]})
            pool.shutdown()
            self.stop()
        return self._finish_run(report, started)

    def stop(self) -> None:
        """The run is over (the worker's claims stop being kept alive)."""
        raise NotImplementedError

    def _drained(self, report: Dict[str, Any], empty_since: float) -> bool:
        """`--until-empty` after a receive came back empty: True to stop. The queue is drained when SQS counts no
        message at all, visible or in flight (in flight: being written by another worker, deferred behind a claim,
        or hidden by a worker that stopped: they come back). Waiting for them ends after `until_empty_wait_s`,
        with what is left and why in the report, which is then not ok."""
        visible, in_flight = self.queue.depth()
        if visible == 0 and in_flight == 0:
            report["stopped"] = "queue empty"
            return True
        if time.time() - empty_since < self.cfg.until_empty_wait_s:
            return False
        report.update(
            ok=False,
            stopped="in flight",
            left={
                "visible": visible,
                "in_flight": in_flight,
                "reason": "messages still hidden %.0f s after the queue last gave one: held by other workers' "
                "batches or claims, or by a worker that stopped (they come back after visibility_timeout_seconds "
                "and claim_seconds); run again to take them" % (time.time() - empty_since),
            },
        )
        log.warning("queue not drained; messages left in flight", extra=report["left"])
        return True

    def _finish_run(self, report: Dict[str, Any], started: float) -> Dict[str, Any]:
        report.update(totals(report["batches"], time.time() - started))
        report["finished_at"] = _iso(time.time())
        if report["batches"]:  # an empty poll is not history
            record_run(lambda: self.spark, self.config, "ingest", report)
        return report


def finish_metrics(metrics: Dict[str, Any], batch: Batch, sent_ms: int, started: float) -> None:
    """Lag (now less the batch's oldest event) and the batch's wall time."""
    from lakehouse_ops.ingest.metrics import event_ms

    oldest = min([event_ms(o, sent_ms) for o in batch.objects.values()] or [sent_ms])
    metrics["lag_s"] = round(time.time() - oldest / 1000.0, 3)
    metrics["batch_s"] = round(time.time() - started, 3)
