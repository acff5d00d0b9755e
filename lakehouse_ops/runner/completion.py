"""Finishing what a rewrite planned. Iceberg's partial progress commits file groups separately and, when one of
those commits fails, logs it and goes on: the procedure succeeds with partitions left behind. After a rewrite, an
action that can tell (`remaining`) is asked what is left; that much is rewritten again, within the policy's
commit attempts and time; what is still left makes the action `partial` (and the run not ok)."""

import time
from typing import Any, Callable, Dict, Optional, Tuple

from lakehouse_ops.logs import get_logger
from lakehouse_ops.maintenance.base import DONE, PARTIAL, Plan
from lakehouse_ops.maintenance.commits import retry_policy

log = get_logger("runner")


def cause(outputs: Dict[str, Any]) -> str:
    failed = int(outputs.get("failed_data_files_count") or 0)
    if failed:
        return "%d file(s) failed to rewrite (see the Spark log)" % failed
    return "their file groups' commits did not land (partial progress skips a failed commit; see the Spark log)"


def complete(
    module: Any,
    policy: Any,
    plan: Plan,
    before_id: int,
    outputs: Dict[str, Any],
    load_table: Callable[[], Any],
    execute: Callable[[Plan], Tuple[Dict[str, Any], Optional[int]]],
) -> Tuple[str, Optional[str]]:
    """(status, note): DONE when nothing planned is left (after rounds of `execute` on what is), else PARTIAL
    with a note naming the partitions and files left and the cause. `outputs` gains the rounds."""
    retries = retry_policy(policy.commits)
    started = time.time()
    rest = module.remaining(plan, policy, load_table(), before_id)
    rounds = 0
    while rest is not None and rounds + 1 < retries.max_attempts:
        delay = retries.delay(rounds + 1)
        if time.time() + delay - started > retries.max_total_s:
            break
        rounds += 1
        log.warning(
            "rewrite left planned partitions behind; rewriting them again",
            extra={
                "action": module.NAME,
                "round": rounds,
                "partitions": len(rest.partitions),
                "reason": rest.reason,
                "sleep_s": round(delay, 2),
            },
        )
        time.sleep(delay)
        more, round_before = execute(rest)
        for key, value in more.items():  # the procedure's counts, summed over the rounds
            if key.endswith("_count") and isinstance(value, int):
                outputs[key] = int(outputs.get(key) or 0) + value
        outputs.setdefault("completion_rounds", []).append({"partitions": list(rest.partitions), "outputs": more})
        rest = module.remaining(rest, policy, load_table(), before_id if round_before is None else round_before)
    if rest is None:
        return DONE, None
    outputs["left_behind"] = {"partitions": list(rest.partitions), "reason": rest.reason, "cause": cause(outputs)}
    return PARTIAL, "plan not achieved after %d completion round(s): %s; %s" % (rounds, rest.reason, cause(outputs))
