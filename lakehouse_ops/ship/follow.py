"""Following a submitted run until it ends (pure: the AWS calls are passed in)."""

import time
from typing import Callable, Mapping, Tuple

from lakehouse_ops.aws.clients import describe_failure
from lakehouse_ops.errors import first_line

SERVERLESS_STATES = (
    "SUBMITTED",
    "PENDING",
    "SCHEDULED",
    "QUEUED",
    "RUNNING",
    "SUCCESS",
    "FAILED",
    "CANCELLING",
    "CANCELLED",
)
SERVERLESS_DONE = {"SUCCESS": True, "FAILED": False, "CANCELLED": False}
STEP_STATES = ("PENDING", "CANCEL_PENDING", "RUNNING", "COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")
CANCEL_REQUESTED = "CANCEL_REQUESTED"  # what `report` hears when Ctrl-C asks the run to be cancelled
STEP_DONE = {"COMPLETED": True, "CANCELLED": False, "FAILED": False, "INTERRUPTED": False}


def follow(
    get_state: Callable[[], Tuple[str, str]],
    done: Mapping[str, bool],
    cancel: Callable[[], None],
    report: Callable[[str, str, float], None],
    poll_seconds: float = 10.0,
    max_poll_seconds: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Tuple[str, bool]:
    """Poll `get_state() -> (state, details)` until a state in `done` ({state: success}); `report(state, details,
    seconds)` hears every state change. Ctrl-C cancels the run (`cancel()`) and keeps following until it ends; a
    second Ctrl-C stops following (the run goes on being cancelled); a cancel that fails is reported
    (`CANCEL_FAILED`, why) and following stops. Returns (final state, success)."""
    started = clock()
    last = None
    delay = poll_seconds
    cancelled = False
    while True:
        try:
            state, details = get_state()
            if state != last:
                report(state, details, clock() - started)
                last = state
                delay = poll_seconds
            else:
                delay = min(max_poll_seconds, delay * 1.5)  # long runs are polled less often
            if state in done:
                return state, done[state]
            sleep(delay)
        except KeyboardInterrupt:
            if cancelled:
                report("STOPPED_FOLLOWING", "the run is being cancelled; not following it any more", clock() - started)
                return last or "UNKNOWN", False
            cancelled = True
            report(CANCEL_REQUESTED, "Ctrl-C: cancelling the run", clock() - started)
            try:
                cancel()
            except Exception as exc:  # the run goes on: say so, in one line, and stop following
                why = describe_failure(exc) or first_line(exc)
                report(
                    "CANCEL_FAILED", "the run was not cancelled and may still be running: %s" % why, clock() - started
                )
                return last or "UNKNOWN", False
