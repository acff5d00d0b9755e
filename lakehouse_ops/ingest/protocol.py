"""One batch's protocol over the objects an IngestJob claimed: pin each to its announced bytes, record them
pending, read and write them, then (appends) seal and publish the staged snapshot, quarantine the misfits and
record them committed. Objects that cannot be read are set aside and the rest goes on as a new batch; so do
objects whose key changed while they were read (they are pinned again)."""

from typing import Any, Dict, List, Optional

from lakehouse_ops.errors import IngestError
from lakehouse_ops.ingest import ledger as ledger_mod
from lakehouse_ops.ingest.claims import new_batch_id
from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.metrics import earliest_event_ms, seal_entry, timed
from lakehouse_ops.ingest.pin import Pinned
from lakehouse_ops.ingest.read import Reasons, find_unreadable
from lakehouse_ops.ingest.write import BatchWrites, ReadFailed, Written
from lakehouse_ops.logs import get_logger

log = get_logger("ingest")
# A key rewritten under every read of its batch this many times is given up on (its message is dead-lettered).
MAX_REPINS = 3
MAX_ROUNDS = 12  # reads of one batch (objects dropped, spellings learnt, keys re-pinned) before it is given up
MISFIT_FILE = (
    "%s holds records that do not fit the target's schema (unparseable, of wrong types, or naming a column twice); "
    "with no quarantine table the whole object is dead-lettered and none of its rows are written"
)


class BatchProtocol(BatchWrites):
    """The protocol of an IngestJob's batch (a mixin, as its writes are)."""

    def _write(self, todo: Dict[str, S3Object], mine: Dict[str, str], batch: str, metrics: Dict[str, Any]) -> Reasons:
        """Pin, read, transform, stage, seal and publish `todo`; return {identity: reason} for objects that could
        not be used."""
        with timed(metrics, "exists"):
            pinned = self._pin(todo)
        try:
            return self._write_pinned(todo, mine, batch, metrics, pinned)
        finally:
            self.pinner.discard(pinned)

    def _write_pinned(
        self, todo: Dict[str, S3Object], mine: Dict[str, str], batch: str, metrics: Dict[str, Any], pinned: Pinned
    ) -> Reasons:
        failed: Reasons = dict(pinned.failed)
        self._supersede(batch, todo, pinned.superseded, metrics)
        self._known_bytes(todo, pinned, metrics)
        repins = rounds = 0
        while pinned.located:
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise IngestError("batch %s of %s was read %d times without settling" % (batch, self.target, rounds))
            usable = self._usable(todo, pinned)
            metrics["batch_id"] = batch
            with timed(metrics, "ledger_write"):
                self.ledger.record(batch, [pinned.as_read(o) for o in usable], ledger_mod.PENDING)
            self.on_stage("after_pending")
            try:
                with timed(metrics, "read_write"):
                    seen = self._commit(pinned, todo, batch, metrics)
            except ReadFailed as exc:
                with timed(metrics, "isolate"):
                    files = self._files(pinned.located, pinned.headers)
                    unreadable = find_unreadable(self.spark, self.cfg, self.schema, pinned.located, files)
                if not unreadable:
                    raise exc.error
                log.warning(
                    "objects could not be read; the rest of the batch goes on", extra={"unreadable": len(unreadable)}
                )
                failed.update(unreadable)
                batch = self._rebatch(pinned, mine, set(unreadable))
                continue
            again = self._read_again(seen, pinned, mine, todo, failed)
            changed = [] if again is not None or seen.written is False else self.pinner.changed(todo, pinned)
            if seen.landed is not None and (again is not None or changed):
                self._withdraw(batch, seen.landed, [pinned.as_read(o) for o in usable])
            if again is not None:
                batch = again
                continue
            if changed:
                # The staged rows may hold bytes of the key's new content: they are never published.
                repins += 1
                batch = self._repin(todo, mine, pinned, changed, repins, failed, metrics)
                continue
            self._land(batch, usable, seen, pinned, todo, metrics)
            break
        return failed

    def _read_again(
        self, seen: Written, pinned: Pinned, mine: Dict[str, str], todo: Dict[str, S3Object], failed: Reasons
    ) -> Optional[str]:
        """A new batch id when the batch must be read again (what it staged is never published), else None: JSON
        keys in a spelling not read yet (read as their column from now on), or, without a quarantine table, objects
        holding misfit records (dead-lettered whole: none of their rows land)."""
        if seen.variants:
            log.info(
                "JSON keys name columns in another case; reading the batch again", extra={"keys": len(seen.variants)}
            )
            self.spellings |= seen.variants
            return self._rebatch(pinned, mine, set())
        if seen.mixed_versions:
            return self._rebatch(pinned, mine, set())
        if seen.misfits and not self._quarantining:
            for identity in seen.misfits:
                failed[identity] = MISFIT_FILE % todo[identity].uri
            return self._rebatch(pinned, mine, seen.misfits)
        return None

    def _land(
        self,
        batch: str,
        usable: List[S3Object],
        seen: Written,
        pinned: Pinned,
        todo: Dict[str, S3Object],
        metrics: Dict[str, Any],
    ) -> None:
        if seen.landed is not None:
            snapshot = seen.landed  # staging was off: the append is the batch's one commit already
            metrics["rows"] = seen.rows
        elif seen.staged is None:
            # A merge by key committed itself; merging it again changes nothing, so it needs no seal.
            snapshot = metrics["snapshot_id"]
        else:
            snapshot = self._seal_and_publish(batch, usable, seen.staged, metrics)
        self.on_stage("after_commit")
        with timed(metrics, "quarantine"):
            # A merged batch may be merged again after a kill: its misfits replace any written before.
            merged = seen.staged is None and seen.landed is None
            if not merged or metrics.get("misfits"):
                self._quarantine(batch, pinned, todo, metrics, replace=merged, only=seen.misfits)
        with timed(metrics, "ledger_write"):
            self.ledger.record(batch, [pinned.as_read(o) for o in usable], ledger_mod.COMMITTED, snapshot)
        self.on_stage("before_delete")
        metrics["snapshot_id"] = snapshot

    def _withdraw(self, batch: str, snapshot: int, usable: List[S3Object]) -> None:
        """A batch that landed at once (staging was off) but must be read again: its rows (all carry its batch id)
        are deleted, and the ledger says so, so that nothing takes the batch for a landed one."""
        from lakehouse_ops.sqltext import quote_ident, quote_string

        log.warning(
            "withdrawing a batch that landed without staging", extra={"batch_id": batch, "snapshot_id": snapshot}
        )
        self.spark.sql(
            "DELETE FROM %s WHERE %s = %s" % (self.target_ref, quote_ident(self.cfg.batch_column), quote_string(batch))
        )
        self.ledger.record(batch, usable, ledger_mod.WITHDRAWN, snapshot)

    def _known_bytes(self, todo: Dict[str, S3Object], pinned: Pinned, metrics: Dict[str, Any]) -> None:
        """Announcements without an ETag whose bytes (now known) an earlier batch committed: not read again."""
        if not pinned.resolved:
            return
        read = {pinned.as_read(todo[i]).identity: i for i in pinned.resolved if i in pinned.located}
        done = self.ledger.committed(list(read), earliest_event_ms(todo[i] for i in read.values()))
        for content in done:
            pinned.located.pop(read[content], None)
            pinned.signatures.pop(read[content], None)
        metrics["already_committed"] = metrics.get("already_committed", 0) + len(done)

    @staticmethod
    def _usable(todo: Dict[str, S3Object], pinned: Pinned) -> List[S3Object]:
        """The objects a batch lands: those read, and the aliases of those (the same bytes announced again)."""
        aliases = [a for a, read in pinned.aliases.items() if read in pinned.located]
        return [todo[i] for i in pinned.located] + [todo[a] for a in aliases]

    def _rebatch(self, pinned: Pinned, mine: Dict[str, str], dropped: Any) -> str:
        """The rest of a batch goes on as a new batch without `dropped`; claims follow it (the old batch is never
        sealed), and an object whose claim changed hands meanwhile leaves it."""
        batch = new_batch_id()
        keep = [i for i in pinned.located if i not in dropped]
        keep += [a for a, read in pinned.aliases.items() if read in keep]
        rebound = self.claims.rebind({i: mine[i] for i in keep if i in mine}, batch)
        for identity in keep:
            mine.pop(identity, None)
        mine.update(rebound)
        pinned.located = {i: v for i, v in pinned.located.items() if i in rebound}
        pinned.aliases = {a: read for a, read in pinned.aliases.items() if a in rebound and read in rebound}
        return batch

    def _repin(
        self,
        todo: Dict[str, S3Object],
        mine: Dict[str, str],
        pinned: Pinned,
        changed: List[str],
        repins: int,
        failed: Reasons,
        metrics: Dict[str, Any],
    ) -> str:
        """Keys written again while their batch read them: pin them again (their announced bytes are now a
        version, or gone) and read the batch again; after MAX_REPINS, give them up."""
        log.warning("objects changed while they were read; reading the batch again", extra={"objects": len(changed)})
        metrics["repinned"] = metrics.get("repinned", 0) + len(changed)
        batch = self._rebatch(pinned, mine, set())
        again = [i for i in changed if i in mine]
        again += [a for a, read in pinned.aliases.items() if read in again]
        for identity in again:
            pinned.located.pop(identity, None)
            pinned.signatures.pop(identity, None)
            pinned.aliases.pop(identity, None)
        if repins > MAX_REPINS:
            failed.update({i: "%s kept changing while it was read" % todo[i].uri for i in again})
            return batch
        fresh = self.pinner.pin({i: todo[i] for i in again}, reading=pinned.reading())
        pinned.staged += fresh.staged
        failed.update(fresh.failed)
        self._supersede(batch, todo, fresh.superseded, metrics)
        pinned.located.update(fresh.located)
        pinned.signatures.update(fresh.signatures)
        pinned.aliases.update(fresh.aliases)
        return batch

    def _supersede(self, batch: str, todo: Dict[str, S3Object], superseded: Reasons, metrics: Dict[str, Any]) -> None:
        """Objects whose announced bytes are gone: recorded so in the ledger, counted and named, not read."""
        if not superseded:
            return
        for identity, reason in superseded.items():
            log.warning("announced object superseded", extra={"object": identity, "reason": reason})
        self.ledger.record(batch, [todo[i] for i in superseded], ledger_mod.SUPERSEDED)
        metrics["superseded"] = metrics.get("superseded", 0) + len(superseded)
        named = metrics.setdefault("superseded_objects", {})
        named.update({identity: reason for identity, reason in superseded.items()})

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
