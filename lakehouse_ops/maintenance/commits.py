"""Every action that commits to a table retries when another writer's commit wins the race.

Iceberg retries a commit on stale metadata by itself, but a conflict its validation finds (a rewrite whose
inputs another commit removed, a manifest rewrite whose manifests an append merged away) fails the whole
procedure. Nothing of the failed attempt is committed, so the action runs again on fresh metadata, with backoff,
within the policy's attempts and time (`commits` in the table policy).
"""

from typing import Callable, Tuple, TypeVar

from lakehouse_ops.config.policy import CommitPolicy
from lakehouse_ops.engine.procedures import is_commit_conflict
from lakehouse_ops.errors import MaintenanceError, first_line
from lakehouse_ops.logs import get_logger
from lakehouse_ops.retry import RetriesExhausted, RetryPolicy

log = get_logger("commits")
T = TypeVar("T")


def retry_policy(commits: CommitPolicy) -> RetryPolicy:
    """The RetryPolicy for a table policy's `commits` section."""
    return RetryPolicy(
        max_attempts=commits.retries + 1,
        base_delay_s=commits.backoff_seconds,
        max_delay_s=commits.max_backoff_seconds,
        max_total_s=commits.max_seconds,
    )


def with_commit_retries(policy: RetryPolicy, fn: Callable[[], T], table: str, action: str) -> Tuple[T, int]:
    """(fn's result, attempts made): `fn` is called again after each commit conflict, within `policy`."""
    attempts = [0]

    def attempt() -> T:
        attempts[0] += 1
        return fn()

    def on_retry(number: int, exc: BaseException, delay: float) -> None:
        log.warning(
            "commit conflict with a concurrent writer; retrying",
            extra={
                "table": table,
                "action": action,
                "attempt": number,
                "sleep_s": round(delay, 2),
                "conflict": first_line(exc),
            },
        )

    try:
        return policy.run(attempt, is_commit_conflict, on_retry=on_retry), attempts[0]
    except RetriesExhausted as exc:
        raise MaintenanceError(
            "%s on %s: commit conflicts with concurrent writers; %s" % (action, table, exc)
        ) from exc.last
