"""One queue feeding several targets (`ingest.routes`): each object goes to the first route whose prefix or pattern
matches its s3:// URI (else to the ingest section's own target). Every target is a full ingest worker of its own
(claims, ledger, quarantine, schema, format, upsert): a batch's objects are split by target, each target commits
its share once, and only then are the batch's messages settled, together, so a message announcing objects of two
targets is deleted only when both have them.
"""

import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.config.ingest import IngestRoute
from lakehouse_ops.engine.session import LazySession
from lakehouse_ops.ingest.batch import Batch
from lakehouse_ops.ingest.job import IngestJob
from lakehouse_ops.ingest.loop import QueueLoop, batch_metrics, finish_metrics, handle_messages
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.metrics import alarm_fields, timed
from lakehouse_ops.ingest.queue import Heartbeat, oldest_sent_ms, open_queue
from lakehouse_ops.ingest.settle import settle_messages
from lakehouse_ops.logs import get_logger

log = get_logger("ingest")
# What a routed batch adds up over its targets.
SUMMED = ("rows", "quarantined", "already_committed", "held_elsewhere", "commit_s", "finished_batches")


def split(
    objects: Mapping[str, S3Object], routes: List[Tuple[Optional[IngestRoute], Any]]
) -> List[Dict[str, S3Object]]:
    """{identity: object} per route, in the routes' order (the last: objects no route matches)."""
    out: List[Dict[str, S3Object]] = [{} for _ in routes]
    for identity, obj in objects.items():
        for index, (route, _) in enumerate(routes):
            if route is None or route.matches(obj.uri):
                out[index][identity] = obj
                break
    return out


class RoutedIngest(QueueLoop):
    """An ingest worker for a queue with routes: the loop over the queue, one IngestJob per target."""

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
        session = self._session = LazySession(config, spark, session_factory)
        self.queue = open_queue(self.cfg, sqs)
        self.routes = self.cfg.route_configs()
        self.jobs = [
            IngestJob(config, sqs=self.queue.sqs, session_factory=session.get, on_stage=on_stage, cfg=cfg)
            for _, cfg in self.routes
        ]
        self.on_stage = on_stage or (lambda stage: None)
        self.reconciled = 0

    @property
    def spark(self) -> Any:
        return self._session.get()

    @property
    def report_target(self) -> str:
        return ", ".join(job.target for job in self.jobs)

    def prepare(self) -> None:
        for job in self.jobs:
            job.prepare()
        self.reconciled = sum(job.reconciled for job in self.jobs)

    def stop(self) -> None:
        for job in self.jobs:
            job.stop()

    def after_batch(self, batches: List[Dict[str, Any]], metrics: Dict[str, Any]) -> None:
        batches.append(metrics)
        log.info("batch committed", extra=metrics)
        for job in self.jobs:
            job.upkeep(len(batches), metrics)

    def process(self, batch: Batch, heartbeat: Optional[Heartbeat] = None) -> Dict[str, Any]:
        started = time.time()
        metrics = batch_metrics(batch)
        sent = oldest_sent_ms(batch.messages)
        self.on_stage("after_receive")
        handle_messages(self.queue, self.cfg, batch, metrics)
        failed: Dict[str, str] = {}
        held: Dict[str, float] = {}
        taken: List[Tuple[IngestJob, Dict[str, str]]] = []
        metrics["targets"] = {}
        for job, objects in zip(self.jobs, split(batch.objects, self.routes)):
            if not objects:
                continue
            part = {"objects": len(objects), "dlq_messages": 0}
            job_failed, job_held, job_taken = job.ingest_objects(objects, part)
            failed.update(job_failed)
            held.update(job_held)
            taken.append((job, job_taken))
            metrics["targets"][job.target] = part
            for key in SUMMED:
                metrics[key] = metrics.get(key, 0) + part.get(key, 0)
            if part.get("failed_objects"):
                metrics.setdefault("failed_objects", {}).update(part["failed_objects"])
        with timed(metrics, "settle_messages"):
            settle_messages(self.queue, self.cfg, batch, failed, metrics, held=held, heartbeat=heartbeat)
        for job, claims in taken:
            job.claims.release(claims)
        finish_metrics(metrics, batch, sent, started)
        metrics.update(alarm_fields(metrics, self.queue, sent, self.report_target if self.cfg.emf_metrics else None))
        return metrics


def ingest_worker(
    config: Config,
    spark: Any = None,
    sqs: Any = None,
    session_factory: Optional[Callable[[], Any]] = None,
    on_stage: Optional[Callable[[str], None]] = None,
) -> QueueLoop:
    """The worker for the config's ingest section: one target, or several when it has routes."""
    if config.section("ingest").routes:
        return RoutedIngest(config, spark, sqs, session_factory, on_stage)
    return IngestJob(config, spark, sqs, session_factory, on_stage)
