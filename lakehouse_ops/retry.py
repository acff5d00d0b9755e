"""One retry policy for everything that talks to something which may be busy: another writer's commit, a
throttling HTTP service.

Attempts are bounded by count and by total time; delays grow exponentially with full jitter, and a server's own
`Retry-After` wins over the computed delay (still within the total time). The caller says which failures are
worth another attempt; everything else is raised at once.
"""

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, TypeVar

T = TypeVar("T")


class RetriesExhausted(Exception):
    """The last failure, after the policy's attempts or time ran out (`attempts` says how many were made)."""

    def __init__(self, message: str, attempts: int, last: BaseException) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last = last


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # first try included
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_total_s: float = 600.0

    def delay(
        self, attempt: int, retry_after_s: Optional[float] = None, rng: Callable[[], float] = random.random
    ) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after_s is not None and retry_after_s >= 0:
            return min(float(retry_after_s), self.max_total_s)
        return float(rng() * min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1))))

    def run(
        self,
        fn: Callable[[], T],
        retryable: Callable[[BaseException], bool],
        retry_after: Callable[[BaseException], Optional[float]] = lambda exc: None,
        on_retry: Callable[[int, BaseException, float], None] = lambda attempt, exc, delay: None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> T:
        """Call `fn` until it succeeds, a failure is not retryable, or the attempts or total time run out."""
        started = clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as exc:
                if not retryable(exc):
                    raise
                delay = self.delay(attempt, retry_after(exc))
                elapsed = clock() - started
                if attempt >= self.max_attempts or elapsed + delay > self.max_total_s:
                    raise RetriesExhausted(
                        "gave up after %d attempt(s) in %.1f s: %s"
                        % (attempt, elapsed, str(exc).splitlines()[0] if str(exc) else type(exc).__name__),
                        attempt,
                        exc,
                    ) from exc
                on_retry(attempt, exc, delay)
                sleep(delay)


def each_then_again(fn: Callable[[T], bool], items: Sequence[T], threads: int) -> List[bool]:
    """`fn(item)` for every item, `threads` at a time; an item whose call returned False is tried once more after
    the others, one at a time: a call that spent its retries while the store was throttling gets a second chance
    at a calmer rate; a first call that raised counts as False, and the second call's exception goes to the caller.
    `fn` must be safe to repeat (a move that finds its target taken returns False again)."""

    def first(item: T) -> bool:
        try:
            return fn(item)
        except Exception:  # noqa: BLE001 - the second call, alone, raises it again if it still fails
            return False

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(first, items))
    return [done or fn(item) for item, done in zip(items, results)]
