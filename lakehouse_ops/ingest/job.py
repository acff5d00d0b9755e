"""The SQS ingest job: receive a batch, read its objects, append them exactly once, then delete the messages.

Modes: `until_empty` (drain and exit: EMR steps, schedules), `max_batches`, `max_runtime_s`, and continuous
(neither: back off while the queue is empty). Every batch reports its metrics in the log and the run report.
"""

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

from lakehouse_ops.conditional import open_store
from lakehouse_ops.config import Config
from lakehouse_ops.engine.session import LazySession
from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest.batch import Batch, fill_batch
from lakehouse_ops.ingest.claims import Claims, claims_root, new_batch_id
from lakehouse_ops.ingest.metrics import alarm_fields, earliest_event_ms, event_ms, timed, totals
from lakehouse_ops.ingest.protocol import BatchProtocol
from lakehouse_ops.ingest.queue import Heartbeat, Queue, oldest_sent_ms
from lakehouse_ops.ingest.read import data_schema, load_function
from lakehouse_ops.ingest.settle import settle_messages
from lakehouse_ops.ingest.target import TargetSetup
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref
from lakehouse_ops.units import iso_seconds as _iso

log = get_logger("ingest")
# The stages a batch passes, in order; `on_stage(name)` is called as each is reached (metrics, tests).
STAGES = ("after_receive", "after_pending", "after_evolve", "after_seal", "after_commit", "before_delete")


class IngestJob(TargetSetup, BatchProtocol):
    """One ingest worker on one queue and target: start-up (target.py), the loop and a batch's messages and
    claims (here), the protocol over its objects (protocol.py), their writes (write.py), settling its messages
    (settle.py)."""

    def __init__(
        self,
        config: Config,
        spark: Any = None,
        sqs: Any = None,
        session_factory: Optional[Callable[[], Any]] = None,
        on_stage: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.config = config
        self.cfg = config.section("ingest")
        self.catalog = config.catalog.name
        self._session = LazySession(config, spark, session_factory)
        if sqs is None:
            from lakehouse_ops.aws.clients import client

            sqs = client("sqs")
        self.queue = Queue(sqs, self.cfg.queue_url, self.cfg.dlq_url, self.cfg.visibility_timeout_seconds)
        self.enrich = load_function(self.cfg.enrichment) if self.cfg.enrichment else None
        self.target = config.table_name(self.cfg.target_table)
        self.target_ref = table_ref(self.catalog, self.target)
        self.claims = Claims(open_store(claims_root(config, self.target)), self.cfg.claim_seconds)
        self._prepared = False
        self.on_stage = on_stage or (lambda stage: None)

    @property
    def spark(self) -> Any:
        return self._session.get()

    # -- start-up -------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Ledger and quarantine tables exist, the target has the job's columns and the policy's properties,
        and batches interrupted after their commit are finished."""
        if self._prepared:
            return
        spark = self.spark
        try:
            spark.table(self.target_ref).schema
        except Exception:
            raise IngestError(
                "target table %s does not exist: create it first (its schema governs what is read)" % self.target
            ) from None
        self._ensure_columns()
        self._enable_wap()
        self._check_pseudonymized_columns()
        self._check_upsert_columns()
        self._apply_properties()
        self.ledger = ledger_mod.Ledger(
            spark, self.catalog, self.config.table_name(self.cfg.ledger), self.cfg.ledger_lookback_hours
        )
        self.ledger.ensure()
        self.quarantine_ref = self._ensure_quarantine_table()
        self.schema = data_schema(spark, self.target_ref, self._meta_columns())
        self.reconciled = self._reconcile()
        self._prepared = True

    def _reconcile(self) -> int:
        """Finish batches whose target commit happened but whose ledger record did not (an interruption):
        redo their quarantine rows, then mark them committed. Returns how many were finished."""
        finished = 0
        for batch, snapshot, objects in self.ledger.interrupted(self.catalog, self.target):
            self._record_landed(batch, objects, snapshot)
            finished += 1
            log.info(
                "finished a batch committed before an interruption", extra={"batch_id": batch, "snapshot_id": snapshot}
            )
        return finished

    # -- the loop -------------------------------------------------------------------------------------------

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
            "target": self.target,
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
                    if until_empty:
                        report["stopped"] = "queue empty"
                        break
                    time.sleep(backoff)
                    backoff = min(backoff * 2, self.cfg.max_empty_backoff_seconds)
                    continue
                backoff = self.cfg.empty_backoff_seconds
                if max_batches is None or len(report["batches"]) + 1 < max_batches:
                    upcoming = pool.submit(self._receive)
                try:
                    metrics = self.process(batch, heartbeat)
                finally:
                    heartbeat.stop()
                self._committed(report["batches"], metrics)
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
        report.update(totals(report["batches"], time.time() - started))
        report["finished_at"] = _iso(time.time())
        return report

    def _committed(self, batches: List[Dict[str, Any]], metrics: Dict[str, Any]) -> None:
        """Report a batch; every `ledger_upkeep_batches` batches, compact the ledger's recent days and expire its
        snapshots."""
        batches.append(metrics)
        log.info("batch committed", extra=metrics)
        every = self.cfg.ledger_upkeep_batches
        if every and len(batches) % every == 0:
            with timed(metrics, "ledger_upkeep"):
                metrics["ledger_upkeep"] = self.ledger.upkeep()

    def process(self, batch: Batch, heartbeat: Optional[Heartbeat] = None) -> Dict[str, Any]:
        started = time.time()
        metrics: Dict[str, Any] = {
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
        sent = oldest_sent_ms(batch.messages)
        oldest = min([event_ms(o, sent) for o in batch.objects.values()] or [sent])
        self.on_stage("after_receive")
        for message, reason in batch.poison:
            log.warning("poison message", extra={"message_id": message.message_id, "reason": reason})
            if self.cfg.poison_action == "dlq":
                self.queue.dead_letter(message, "poison: " + reason)
                metrics["dlq_messages"] += 1
        for obj in batch.deleted:
            log.info("object deletion seen; nothing to ingest", extra={"object": obj.uri})
        if batch.ignored:
            self.queue.delete([m for m, _ in batch.ignored])

        identities = list(batch.objects)
        batch_id = new_batch_id()
        with timed(metrics, "claims"):
            claimed = self.claims.claim(identities, batch_id)
        for other, seal in claimed.to_finish.items():
            with timed(metrics, "finish_batches"):
                self._finish(other, seal)
            metrics["finished_batches"] = metrics.get("finished_batches", 0) + 1
        with timed(metrics, "ledger_check"):
            done = self.ledger.committed(identities, earliest_event_ms(batch.objects.values()))
        metrics["already_committed"] = len(done)
        metrics["held_elsewhere"] = len(claimed.held)
        mine = {i: e for i, e in claimed.taken.items() if i not in done}
        todo = {i: batch.objects[i] for i in mine}
        failed = {}
        if todo:
            failed = self._write(todo, mine, batch_id, metrics)
        if failed:
            metrics["failed_objects"] = {batch.objects[i].uri: reason for i, reason in failed.items()}
        with timed(metrics, "settle_messages"):
            settle_messages(self.queue, self.cfg, batch, failed, metrics, held=claimed.held, heartbeat=heartbeat)
        # Committed (here or by others) or dead-lettered: the claims have done their work.
        self.claims.release(claimed.taken)
        metrics["lag_s"] = round(time.time() - oldest / 1000.0, 3)
        metrics["batch_s"] = round(time.time() - started, 3)
        metrics.update(alarm_fields(metrics, self.queue, sent, self.target if self.cfg.emf_metrics else None))
        return metrics
