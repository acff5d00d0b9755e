"""Leases on names (a table, a job), so that two runs never work on one at once: records in a conditional store
(S3 conditional writes, or a local directory), `<prefix>/<name>.json` with the holder and the expiry.

- Taking one: create-if-absent; over an expired one, a compare-and-swap on its ETag, so of two runs racing for
  it exactly one wins.
- Holding one: renewed every third of its life from a background thread while the run works, however long that
  takes; a run that dies (or stalls past its lease) stops renewing, and its lease is taken over once it expires.
  A renewal that finds the record changed means the lease was taken over: `held` turns false, and the run stops
  before its next step.
- Releasing one: a conditional delete on the ETag of our last write: a lease taken over meanwhile is left to its
  new holder.
"""

import socket
import threading
import time
import uuid
from typing import Any, Callable, Dict, Optional, Tuple

from lakehouse_ops.conditional import ConditionalStore, open_store
from lakehouse_ops.logs import get_logger

log = get_logger("lease")


class Leases:
    def __init__(
        self,
        prefix: str,
        minutes: float,
        s3: Any = None,
        owner: Optional[str] = None,
        clock: Callable[[], float] = time.time,
        store: Optional[ConditionalStore] = None,
    ) -> None:
        self.store = store or open_store(prefix, s3)
        self.seconds = minutes * 60
        self.owner = owner or "%s/%s" % (socket.gethostname(), uuid.uuid4().hex[:12])
        self.clock = clock
        self._held: Dict[str, str] = {}  # name -> the ETag of our last write
        self._lost: Dict[str, str] = {}  # name -> why it is not ours any more
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one write of a lease record at a time: renewals and releases
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @staticmethod
    def _key(name: str) -> str:
        return "%s.json" % name

    def _doc(self) -> Dict[str, Any]:
        now = self.clock()
        return {"owner": self.owner, "taken_at": int(now), "expires_at": int(now + self.seconds)}

    def acquire(self, name: str) -> Tuple[bool, Optional[Dict[str, Any]]]:
        """(True, None) if the lease is now ours (and kept alive); (False, holder) if another run holds it."""
        key = self._key(name)
        for _ in range(5):
            etag = self.store.create(key, self._doc())
            if etag is None:
                found = self.store.read(key)
                if found is None:
                    continue  # released meanwhile
                holder, current = found
                if holder.get("owner") != self.owner and holder.get("expires_at", 0) > self.clock():
                    return False, holder
                etag = self.store.replace(key, self._doc(), current)
                if etag is None:
                    continue  # someone else just took it: look again
                if holder.get("owner") != self.owner:
                    log.info("took over an expired lease", extra={"lease": name, "previous": holder.get("owner")})
            with self._lock:
                self._held[name] = etag
                self._lost.pop(name, None)
            self._keep_alive()
            return True, None
        return False, (self.store.read(key) or ({}, ""))[0]

    def held(self, name: str) -> bool:
        """Whether the lease is still ours (no renewal has found it taken over)."""
        with self._lock:
            return name in self._held

    def lost(self, name: str) -> Optional[str]:
        with self._lock:
            return self._lost.get(name)

    def renew(self) -> None:
        """Push every held lease's expiry on; a lease whose record changed is lost."""
        with self._lock:
            names = list(self._held)
        for name in names:
            with self._writing:  # a release waits for this write, and deletes what it wrote
                with self._lock:
                    etag = self._held.get(name)
                if etag is None:
                    continue  # released meanwhile
                fresh = self.store.replace(self._key(name), self._doc(), etag)
                if fresh is None:  # our last write may have landed though its answer was lost
                    current = self._still_ours(name)
                    fresh = self.store.replace(self._key(name), self._doc(), current) if current else None
                with self._lock:
                    if fresh is None:
                        self._held.pop(name, None)
                        self._lost[name] = "the lease was taken over by another run"
                        log.error("lease lost: another run took it over", extra={"lease": name})
                    else:
                        self._held[name] = fresh

    def release(self, name: str) -> None:
        """Give the lease back, if it is still ours (a conditional delete on the ETag of our last write: a
        renewal in flight finishes first)."""
        with self._writing:
            with self._lock:
                etag = self._held.pop(name, None)
            if etag is not None and not self.store.delete(self._key(name), etag):
                current = self._still_ours(name)  # our last write landed though its answer was lost
                if current is None or not self.store.delete(self._key(name), current):
                    log.warning("lease not released: another run holds it now", extra={"lease": name})
        with self._lock:
            if not self._held:
                self._stop.set()

    def _still_ours(self, name: str) -> Optional[str]:
        """The record's ETag if it still names this run: a write of ours whose answer was lost (a timeout, or a
        retried conditional write refused because its first attempt landed) changed the ETag, not the owner."""
        found = self.store.read(self._key(name))
        return found[1] if found is not None and found[0].get("owner") == self.owner else None

    def _keep_alive(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
                return
            self._stop = threading.Event()
            stop = self._stop

        def beat() -> None:
            while not stop.wait(self.seconds / 3.0):
                try:
                    self.renew()
                except Exception as exc:  # the next beat tries again; the lease lasts `seconds`
                    log.warning("lease not renewed", extra={"error": str(exc).splitlines()[0][:200]})

        self._thread = threading.Thread(target=beat, name="lease-keepalive", daemon=True)
        self._thread.start()
