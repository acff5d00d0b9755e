"""The SQS ingest job: receive a batch, read its objects, append them exactly once, then delete the messages.

Modes: `until_empty` (drain and exit: EMR steps, schedules), `max_batches`, `max_runtime_s`, and continuous
(neither: back off while the queue is empty). Every batch reports its metrics in the log and the run report.
"""

import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from lakehouse_ops.conditional import open_store
from lakehouse_ops.config import Config
from lakehouse_ops.config.ingest import IngestConfig
from lakehouse_ops.engine.session import LazySession
from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest.batch import Batch
from lakehouse_ops.ingest.claims import Claims, claims_root, new_batch_id
from lakehouse_ops.ingest.loop import QueueLoop, batch_metrics, finish_metrics, handle_messages
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.metrics import alarm_fields, earliest_event_ms, timed
from lakehouse_ops.ingest.pin import Pinner
from lakehouse_ops.ingest.protocol import BatchProtocol
from lakehouse_ops.ingest.queue import Heartbeat, oldest_sent_ms, open_queue
from lakehouse_ops.ingest.read import Reasons, data_schema, load_function
from lakehouse_ops.ingest.settle import settle_messages
from lakehouse_ops.ingest.target import TargetSetup
from lakehouse_ops.logs import get_logger
from lakehouse_ops.sqltext import table_ref

log = get_logger("ingest")
# The stages a batch passes, in order; `on_stage(name)` is called as each is reached (metrics, tests).
STAGES = ("after_receive", "after_pending", "after_evolve", "after_seal", "after_commit", "before_delete")


class IngestJob(QueueLoop, TargetSetup, BatchProtocol):
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
        cfg: Optional[IngestConfig] = None,
    ) -> None:
        """`cfg`: the ingest settings of this worker's target (a route's); default: the config's ingest section."""
        self.config = config
        self.cfg = cfg or config.section("ingest")
        self.catalog = config.catalog.name
        self._session = LazySession(config, spark, session_factory)
        self.queue = open_queue(self.cfg, sqs)
        self.enrich = load_function(self.cfg.enrichment) if self.cfg.enrichment else None
        self.target = config.table_name(self.cfg.target_table)
        self.target_ref = table_ref(self.catalog, self.target)
        self.claims = Claims(open_store(claims_root(config, self.target)), self.cfg.claim_seconds)
        self._pinner: Optional[Pinner] = None
        self.spellings: Set[str] = set()
        self.key_versions: Dict[str, Tuple[int, float]] = {}
        self._prepared = False
        self.on_stage = on_stage or (lambda stage: None)

    @property
    def spark(self) -> Any:
        return self._session.get()

    @property
    def pinner(self) -> Pinner:
        if self._pinner is None:
            staging = claims_root(self.config, self.target)
            self._pinner = Pinner(self.spark, self.cfg.uri_map, self.cfg.format, staging)
        return self._pinner

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
        # Claims live while this worker does, however long a batch takes (claims.py).
        self.claims.start_keepalive()
        self.reconciled = self._reconcile()
        self._prepared = True

    def stop(self) -> None:
        """The worker is done: its claims stop being kept alive."""
        self.claims.stop_keepalive()
        self._prepared = False

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

    @property
    def report_target(self) -> str:
        return self.target

    def after_batch(self, batches: List[Dict[str, Any]], metrics: Dict[str, Any]) -> None:
        """Report a batch; every `ledger_upkeep_batches` batches, compact the ledger's recent days and expire its
        snapshots."""
        batches.append(metrics)
        log.info("batch committed", extra=metrics)
        self.upkeep(len(batches), metrics)

    def upkeep(self, batches: int, metrics: Dict[str, Any]) -> None:
        every = self.cfg.ledger_upkeep_batches
        if every and batches % every == 0:
            with timed(metrics, "ledger_upkeep"):
                metrics["ledger_upkeep"] = self.ledger.upkeep()

    def process(self, batch: Batch, heartbeat: Optional[Heartbeat] = None) -> Dict[str, Any]:
        started = time.time()
        metrics = batch_metrics(batch)
        sent = oldest_sent_ms(batch.messages)
        self.on_stage("after_receive")
        handle_messages(self.queue, self.cfg, batch, metrics)
        failed, held, taken = self.ingest_objects(batch.objects, metrics)
        with timed(metrics, "settle_messages"):
            settle_messages(self.queue, self.cfg, batch, failed, metrics, held=held, heartbeat=heartbeat)
        # Committed (here or by others) or dead-lettered: the claims have done their work.
        self.claims.release(taken)
        finish_metrics(metrics, batch, sent, started)
        metrics.update(alarm_fields(metrics, self.queue, sent, self.target if self.cfg.emf_metrics else None))
        return metrics

    def ingest_objects(
        self, objects: Mapping[str, S3Object], metrics: Dict[str, Any]
    ) -> Tuple[Reasons, Mapping[str, float], Dict[str, str]]:
        """Claim `objects`, finish batches other workers left, skip what the ledger has, write the rest.
        Returns ({identity: reason} of objects that could not be used, objects held by other workers, the claims
        taken: released by the caller once the batch's messages are settled)."""
        identities = list(objects)
        batch_id = new_batch_id()
        with timed(metrics, "claims"):
            claimed = self.claims.claim(identities, batch_id)
        for other, seal in claimed.to_finish.items():
            with timed(metrics, "finish_batches"):
                self._finish(other, seal)
            metrics["finished_batches"] = metrics.get("finished_batches", 0) + 1
        # An announcement without an ETag names no bytes yet: it is looked up once they are pinned (protocol.py).
        named = [i for i in identities if objects[i].content_tag or objects[i].version_id]
        with timed(metrics, "ledger_check"):
            done = self.ledger.committed(named, earliest_event_ms(objects.values()))
        metrics["already_committed"] = len(done)
        metrics["held_elsewhere"] = len(claimed.held)
        mine = {i: e for i, e in claimed.taken.items() if i not in done}
        todo = {i: objects[i] for i in mine}
        failed: Reasons = {}
        if todo:
            failed = self._write(todo, mine, batch_id, metrics)
        if failed:
            metrics["failed_objects"] = {objects[i].uri: reason for i, reason in failed.items()}
        return failed, claimed.held, claimed.taken
