"""Batches whose commit landed: publishing a staged batch once, and completing batches an interrupted worker (this
one, before a restart, or another whose claims lapsed) landed or sealed without recording them."""

from typing import Any, Dict, List, Mapping, Tuple

from lakehouse_ops.engine.procedures import call
from lakehouse_ops.errors import IngestError, first_line
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.sourced import SourcedRows
from lakehouse_ops.logs import get_logger

log = get_logger("ingest")


class LandedBatches(SourcedRows):
    """Publishing and completing batches (a mixin of an IngestJob, as its writes are)."""

    def _publish(self, batch: str, staged: int) -> Tuple[int, Dict[str, str]]:
        """Publish a staged batch; (snapshot id, summary) of the commit that landed it, whoever published it."""
        try:
            call(self.spark, self.catalog, "cherrypick_snapshot", {"table": self.target, "snapshot_id": staged})
        except Exception as exc:
            if (
                "DuplicateWAPCommitException" not in str(exc)
                and ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch) is None
            ):
                raise IngestError(
                    "publishing batch %s (staged snapshot %d) to %s failed: %s"
                    % (batch, staged, self.target, first_line(exc))
                ) from exc
            log.info("batch already published by another worker", extra={"batch_id": batch})
        found = ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch)
        if found is None:
            raise IngestError("batch %s is not in the history of %s after its publish" % (batch, self.target))
        return found

    def _record_landed(self, batch: str, objects: List[S3Object], snapshot: int) -> None:
        """Complete a batch whose commit landed without its worker finishing: redo its quarantine rows (replacing
        any written), then record it committed."""
        todo = {o.identity: o for o in objects}
        pinned = self._pin(todo)
        try:
            if pinned.located:
                self._quarantine(batch, pinned, todo, {}, replace=True)
        finally:
            self.pinner.discard(pinned)
        self.ledger.record(batch, [pinned.as_read(o) for o in objects], ledger_mod.COMMITTED, snapshot)

    def _finish(self, batch: str, seal: Mapping[str, Any]) -> None:
        """Land a batch another worker sealed and then left (its claims expired), then record it committed."""
        objects = [S3Object(**{k: v for k, v in doc.items() if k != "identity"}) for doc in seal["objects"]]
        found = ledger_mod.batch_snapshot(self.spark, self.catalog, self.target, batch)
        if found is None:
            staged = seal.get("staged_snapshot")
            if staged is None or ledger_mod.staged_snapshot(self.spark, self.catalog, self.target, batch) != staged:
                raise IngestError(
                    "batch %s was sealed but its staged snapshot %s is gone from %s (expired?): its "
                    "objects stay claimed; publish or re-ingest them by hand" % (batch, staged, self.target)
                )
            found = self._publish(batch, staged)
        self._record_landed(batch, objects, found[0])
        self.claims.release_batch(batch, [o.identity for o in objects])
        log.info("finished a batch another worker sealed and left", extra={"batch_id": batch, "snapshot_id": found[0]})
