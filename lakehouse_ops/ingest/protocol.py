"""One batch's protocol over the objects an IngestJob claimed: check they exist, record them pending, read and
write them, then (appends) seal and publish the staged snapshot, quarantine the misfits and record them
committed. Objects that cannot be read are set aside and the rest goes on as a new batch."""

from typing import Any, Dict, List

from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest.claims import new_batch_id
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.metrics import seal_entry, timed
from lakehouse_ops.ingest.read import Reasons, existing, find_unreadable
from lakehouse_ops.ingest.write import BatchWrites, ReadFailed
from lakehouse_ops.logs import get_logger

log = get_logger("ingest")


class BatchProtocol(BatchWrites):
    """The protocol of an IngestJob's batch (a mixin, as its writes are)."""

    def _write(self, todo: Dict[str, S3Object], mine: Dict[str, str], batch: str, metrics: Dict[str, Any]) -> Reasons:
        """Read, transform, stage, seal and publish `todo`; return {identity: reason} for objects that could not
        be used."""
        spark = self.spark
        with timed(metrics, "exists"):
            located, failed = existing(spark, todo, self.cfg.uri_map, self.cfg.format)
        while located:
            usable = [todo[i] for i in located]
            metrics["batch_id"] = batch
            with timed(metrics, "ledger_write"):
                self.ledger.record(batch, usable, ledger_mod.PENDING)
            self.on_stage("after_pending")
            try:
                with timed(metrics, "read_write"):
                    staged, misfit_sources = self._commit(located, todo, batch, metrics)
            except ReadFailed as exc:
                with timed(metrics, "isolate"):
                    unreadable = find_unreadable(spark, self.cfg, self.schema, located, self._quarantining)
                if not unreadable:
                    raise exc.error
                log.warning(
                    "objects could not be read; the rest of the batch goes on", extra={"unreadable": len(unreadable)}
                )
                failed.update(unreadable)
                # The rest goes on as a new batch; claims follow it (the old one is never sealed).
                batch = new_batch_id()
                mine.update(self.claims.rebind({i: mine[i] for i in located if i not in unreadable}, batch))
                located = {i: v for i, v in located.items() if i not in unreadable and i in mine}
                continue
            if staged is None:
                # A merge by key committed itself; merging it again changes nothing, so it needs no seal.
                snapshot = metrics["snapshot_id"]
            else:
                snapshot = self._seal_and_publish(batch, usable, staged, metrics)
            self.on_stage("after_commit")
            with timed(metrics, "quarantine"):
                # A merged batch may be merged again after a kill: its misfits replace any written before.
                if staged is not None or metrics.get("misfits"):
                    self._quarantine(batch, located, todo, metrics, replace=staged is None, only_sources=misfit_sources)
            with timed(metrics, "ledger_write"):
                self.ledger.record(batch, usable, ledger_mod.COMMITTED, snapshot)
            self.on_stage("before_delete")
            metrics["snapshot_id"] = snapshot
            break
        return failed

    def _seal_and_publish(self, batch: str, usable: List[S3Object], staged: int, metrics: Dict[str, Any]) -> int:
        """Seal the batch (refused when another worker made it void), then publish its staged snapshot."""
        if not self.claims.seal(batch, [seal_entry(o) for o in usable], staged):
            raise IngestError(
                "batch %s of %s was made void by another worker while it was written: its claims "
                "expired (raise ingest.claim_seconds above the time a batch takes); its messages "
                "come back and are retried" % (batch, self.target)
            )
        self.on_stage("after_seal")
        with timed(metrics, "publish"):
            snapshot, summary = self._publish(batch, staged)
        metrics["rows"] = int(summary.get("added-records", 0))
        return snapshot
