"""Claims: which ingest worker may write an object, so that any number of workers commit it exactly once.

An object is announced by several messages (S3 and EventBridge notifications, overwrites with the same content,
SQS redelivery), and those messages reach different workers at the same moment. Each worker claims the objects of
its batch before reading them:

- A claim is a record per object (`objects/<hash>`): owner, batch id, expiry. It is created only if absent, and
  changes hands only by a compare-and-swap after it expired (S3 conditional writes, or a file lock locally).
- A batch is sealed (`batches/<id>`, created only if absent) after its rows are staged and before they are
  published; the seal lists its objects and the staged snapshot. Whoever takes over an expired claim first either
  makes its batch void (created only if absent: that batch can then never be sealed, so never published) or, if
  the batch was sealed already, finishes that batch instead of writing the object again.
- Publishing a sealed batch is a cherry-pick of a write-audit-publish snapshot whose `wap.id` is the batch id:
  Iceberg refuses to publish one wap id twice, so a worker that stalled past its claims and a worker finishing its
  batch cannot both land it.

So an object is published only inside a sealed batch that lists it, at most one sealed batch lists it while its
claim lives, and a sealed batch lands at most once. Claims live as long as their worker does: each worker keeps a
liveness record (`workers/<owner>`) that a background thread renews every third of `ingest.claim_seconds`, and a
claim is held while its owner's record is fresh, however long the batch takes. A killed or stalled worker stops
renewing it, and its claims are taken over within `claim_seconds` without losing the object: its messages come
back, and its sealed batch is finished by the next worker that meets one of its objects (a stalled worker that
wakes up finds its batch void and publishes nothing). Claims are released once the ledger says committed; the
ledger check that follows every claim then sees the commit. A claim whose owner keeps no liveness record (an
earlier release) lives until its own expiry.
"""

import hashlib
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from lakehouse_ops.conditional import ConditionalStore
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.logs import get_logger

log = get_logger("ingest.claims")

SEALED, VOID = "sealed", "void"


def new_owner() -> str:
    return "%s/%d/%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])


def new_batch_id() -> str:
    return "b-" + uuid.uuid4().hex


def _object_key(identity: str) -> str:
    return "objects/" + hashlib.sha256(identity.encode("utf-8")).hexdigest()


def _batch_key(batch: str) -> str:
    return "batches/" + batch


def _worker_key(owner: str) -> str:
    return "workers/" + hashlib.sha256(owner.encode("utf-8")).hexdigest()


@dataclass
class ClaimResult:
    taken: Dict[str, str] = field(default_factory=dict)  # identity -> etag of our claim
    held: Dict[str, float] = field(default_factory=dict)  # identity -> when the live claim expires
    to_finish: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # sealed batch id -> its seal


class Claims:
    def __init__(
        self,
        store: ConditionalStore,
        ttl_seconds: float,
        owner: Optional[str] = None,
        clock: Callable[[], float] = time.time,
        workers: int = 16,
    ) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self.owner = owner or new_owner()
        self.clock = clock
        self.workers = workers
        self._alive_etag: Optional[str] = None
        self._keepalive: Optional[threading.Thread] = None
        self._stop = threading.Event()

    # -- liveness -----------------------------------------------------------------------------------------

    def keep_alive(self) -> None:
        """Say this worker is alive for another `ttl` seconds (its claims stay held meanwhile)."""
        doc = {"owner": self.owner, "alive_until": self.clock() + self.ttl}
        key = _worker_key(self.owner)
        etag = self.store.replace(key, doc, self._alive_etag) if self._alive_etag else None
        if etag is None:
            etag = self.store.create(key, doc)
        if etag is None:  # a record left by a process of the same owner name: ours now
            found = self.store.read(key)
            etag = self.store.replace(key, doc, found[1]) if found else self.store.create(key, doc)
        self._alive_etag = etag

    def start_keepalive(self) -> None:
        """Renew liveness every third of `ttl` from a daemon thread, until `stop_keepalive`."""
        if self._keepalive is not None:
            return
        self.keep_alive()
        self._stop.clear()

        def renew() -> None:
            while not self._stop.wait(self.ttl / 3.0):
                try:
                    self.keep_alive()
                except Exception as exc:  # the next beat tries again; claims lapse only after ttl
                    log.warning("claims liveness not renewed", extra={"error": str(exc).splitlines()[0][:200]})

        self._keepalive = threading.Thread(target=renew, name="claims-keepalive", daemon=True)
        self._keepalive.start()

    def stop_keepalive(self) -> None:
        """Stop renewing and say so (this worker's claims are released or left to take over at once)."""
        if self._keepalive is None:
            return
        self._stop.set()
        self._keepalive.join(timeout=30)
        self._keepalive = None
        self.store.delete(_worker_key(self.owner), self._alive_etag)
        self._alive_etag = None

    def _live_until(self, claim: Dict[str, Any], seen: Dict[str, float]) -> float:
        """Until when a claim holds: its owner's liveness, or (an owner keeping none) the claim's own expiry."""
        owner = str(claim.get("owner"))
        if owner not in seen:
            found = self.store.read(_worker_key(owner))
            seen[owner] = float(found[0]["alive_until"]) if found else float(claim.get("expires_at", 0))
        return seen[owner]

    def _come_back(self, claim: Dict[str, Any], live_until: float) -> float:
        """When a message of an object another worker holds should be looked at again: once its claim could lapse,
        and no sooner than the claim has lived so far (a long batch is waited for in ever longer steps, so the
        message's receive count grows slowly)."""
        now = self.clock()
        return max(live_until, now + (now - float(claim.get("taken_at", now))))

    def _doc(self, identity: str, batch: str) -> Dict[str, Any]:
        now = self.clock()
        return {"owner": self.owner, "batch": batch, "object": identity, "taken_at": now, "expires_at": now + self.ttl}

    def _map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> List[Any]:
        items = list(items)
        if len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            return list(pool.map(fn, items))

    # -- batches ------------------------------------------------------------------------------------------

    def batch_state(self, batch: str) -> Optional[Dict[str, Any]]:
        found = self.store.read(_batch_key(batch))
        return found[0] if found else None

    def void_or_sealed(self, batch: str) -> Dict[str, Any]:
        """Make `batch` void unless it is sealed already; the batch's record either way."""
        doc = {"state": VOID, "by": self.owner, "at": self.clock()}
        if self.store.create(_batch_key(batch), doc) is not None:
            log.info("voided the batch of an expired claim", extra={"batch_id": batch})
            return doc
        state = self.batch_state(batch)
        return state if state is not None else self.void_or_sealed(batch)

    def seal(self, batch: str, objects: List[Dict[str, Any]], staged_snapshot: int) -> bool:
        """Seal `batch` before publishing it; False if another worker made it void first (do not publish)."""
        doc = {
            "state": SEALED,
            "owner": self.owner,
            "objects": objects,
            "staged_snapshot": staged_snapshot,
            "at": self.clock(),
        }
        if self.store.create(_batch_key(batch), doc) is not None:
            return True
        state = self.batch_state(batch) or {}
        return state.get("state") == SEALED and state.get("owner") == self.owner

    def forget_batch(self, batch: str) -> None:
        self.store.delete(_batch_key(batch))

    # -- objects ------------------------------------------------------------------------------------------

    def claim(self, identities: List[str], batch: str) -> ClaimResult:
        """Claim each object for `batch`: taken, held by a live worker, or in a sealed batch to finish first."""
        result = ClaimResult()
        seen: Dict[str, float] = {}
        outcomes = self._map(lambda i: self._claim_one(i, batch, seen), identities)
        for identity, outcome in zip(identities, outcomes):
            kind, value = outcome
            if kind == "taken":
                result.taken[identity] = value
            elif kind == "held":
                result.held[identity] = value
            else:
                result.to_finish[value[0]] = value[1]
        return result

    def _claim_one(self, identity: str, batch: str, seen: Dict[str, float]) -> Tuple[str, Any]:
        key = _object_key(identity)
        for _ in range(5):
            etag = self.store.create(key, self._doc(identity, batch))
            if etag is not None:
                return "taken", etag
            found = self.store.read(key)
            if found is None:
                continue  # released meanwhile
            current, current_etag = found
            if current.get("owner") not in (self.owner, None):
                live_until = self._live_until(current, seen)
                if live_until > self.clock():
                    return "held", self._come_back(current, live_until)
            previous = current.get("batch")
            # Our own earlier batch too: one that failed after its seal must be finished, not bypassed.
            if previous and previous != batch:
                state = self.void_or_sealed(previous)
                if state.get("state") == SEALED and identity in {o["identity"] for o in state.get("objects", [])}:
                    return "finish", (previous, state)
            etag = self.store.replace(key, self._doc(identity, batch), current_etag)
            if etag is not None:
                if current.get("owner") not in (self.owner, None):
                    log.info(
                        "took over an expired claim", extra={"object": identity, "previous_owner": current.get("owner")}
                    )
                return "taken", etag
        return "held", self.clock() + self.ttl  # other workers keep taking it: come back later

    def rebind(self, taken: Dict[str, str], batch: str) -> Dict[str, str]:
        """Point our claims at `batch` (the batch's objects changed); those still ours, with their new etags."""

        def one(item: Tuple[str, str]) -> Tuple[str, Optional[str]]:
            identity, etag = item
            return identity, self.store.replace(_object_key(identity), self._doc(identity, batch), etag)

        return {i: e for i, e in self._map(one, taken.items()) if e is not None}

    def release(self, taken: Dict[str, str]) -> None:
        """Give up our claims (committed, or never to be written): each still ours becomes an expired record.

        Conditional, so a claim that changed hands meanwhile is left to its new owner. The records stay (a few
        hundred bytes each); on S3 a lifecycle rule of a week or more on the claims prefix removes them.
        """

        def one(item: Tuple[str, str]) -> None:
            identity, etag = item
            self.store.replace(
                _object_key(identity),
                {"owner": None, "batch": None, "object": identity, "expires_at": 0, "released_at": self.clock()},
                etag,
            )

        self._map(one, taken.items())

    def release_batch(self, batch: str, identities: List[str]) -> None:
        """Release the claims that still name `batch` (a batch another worker sealed and this one finished)."""

        def one(identity: str) -> None:
            found = self.store.read(_object_key(identity))
            if found is not None and found[0].get("batch") == batch:
                self.release({identity: found[1]})

        self._map(one, identities)


def claims_root(config: Any, target: str) -> str:
    """Where the target's claims live: `ingest.claims`, or under the catalog's warehouse."""
    root = config.ingest.claims or (
        config.catalog.warehouse.rstrip("/") + "/_lakehouse_ops/ingest-claims" if config.catalog.warehouse else None
    )
    if root is None:
        raise ConfigError(
            "%s: ingest.claims is needed (an s3:// prefix where ingest workers claim objects) when "
            "the catalog has no warehouse" % config.source
        )
    return str(root).rstrip("/") + "/" + target
