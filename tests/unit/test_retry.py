"""The one retry policy: bounded by attempts and by total time, Retry-After honoured, only retryable failures."""

import pytest

from lakehouse_ops.config import TablePolicy
from lakehouse_ops.engine.session import merge_conf
from lakehouse_ops.maintenance.commits import retry_policy
from lakehouse_ops.retry import RetriesExhausted, RetryPolicy


class Busy(Exception):
    pass


class FakeTime:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def failing(times, exc=Busy("busy")):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "ok after %d" % len(calls)

    return fn, calls


def test_retries_until_success_with_growing_bounded_delays():
    t = FakeTime()
    fn, calls = failing(3)
    policy = RetryPolicy(max_attempts=5, base_delay_s=1, max_delay_s=3, max_total_s=100)
    assert policy.run(fn, lambda e: isinstance(e, Busy), sleep=t.sleep, clock=t.clock) == "ok after 4"
    assert len(t.slept) == 3 and all(0 <= d <= cap for d, cap in zip(t.slept, (1, 2, 3)))


def test_gives_up_after_max_attempts_naming_the_last_failure():
    t = FakeTime()
    fn, calls = failing(10)
    with pytest.raises(RetriesExhausted, match="gave up after 3 attempt") as info:
        RetryPolicy(max_attempts=3).run(fn, lambda e: True, sleep=t.sleep, clock=t.clock)
    assert len(calls) == 3 and isinstance(info.value.last, Busy)


def test_total_time_bounds_the_attempts():
    t = FakeTime()
    fn, calls = failing(100)
    with pytest.raises(RetriesExhausted):
        RetryPolicy(max_attempts=100, base_delay_s=10, max_delay_s=10, max_total_s=25).run(
            fn, lambda e: True, retry_after=lambda e: 10, sleep=t.sleep, clock=t.clock
        )
    assert t.now <= 25 and len(calls) == 3


def test_retry_after_wins_over_the_computed_delay():
    t = FakeTime()
    fn, _ = failing(2)
    RetryPolicy(base_delay_s=0.001).run(fn, lambda e: True, retry_after=lambda e: 7.5, sleep=t.sleep, clock=t.clock)
    assert t.slept == [7.5, 7.5]


def test_a_failure_that_is_not_retryable_is_raised_at_once():
    fn, calls = failing(1, ValueError("bad argument"))
    with pytest.raises(ValueError, match="bad argument"):
        RetryPolicy().run(fn, lambda e: isinstance(e, Busy), sleep=lambda s: None)
    assert len(calls) == 1


def test_commit_policy_from_config_and_the_old_compaction_key():
    policy = TablePolicy.model_validate({"commits": {"retries": 5, "backoff_seconds": 0.5, "max_seconds": 60}})
    retry = retry_policy(policy.commits)
    assert (retry.max_attempts, retry.base_delay_s, retry.max_total_s) == (6, 0.5, 60)
    assert TablePolicy.model_validate({"compaction": {"commit_retries": 7}}).commits.retries == 7
    assert (
        TablePolicy.model_validate({"compaction": {"commit_retries": 7}, "commits": {"retries": 2}}).commits.retries
        == 2
    )


def test_list_valued_spark_settings_are_merged_not_replaced():
    base = {"spark.jars": "iceberg.jar", "spark.sql.extensions": "Iceberg", "spark.driver.memory": "2g"}
    merged = merge_conf(
        base, {"spark.jars": "mine.jar,iceberg.jar", "spark.sql.extensions": "Other", "spark.driver.memory": "4g"}
    )
    assert merged == {
        "spark.jars": "iceberg.jar,mine.jar",
        "spark.sql.extensions": "Iceberg,Other",
        "spark.driver.memory": "4g",
    }


def test_each_then_again_gives_a_failed_item_one_more_call_after_the_others():
    import threading

    from lakehouse_ops.retry import each_then_again

    calls, lock = [], threading.Lock()

    def move(item):
        with lock:
            calls.append(item)
            first = calls.count(item) == 1
        return item != "taken" and not (first and item in ("busy-1", "busy-2"))

    items = ["a", "busy-1", "b", "taken", "busy-2"]
    assert each_then_again(move, items, 3) == [True, True, True, False, True]
    assert sorted(calls) == sorted(items + ["busy-1", "busy-2", "taken"])  # each failure tried once more only


def test_each_then_again_takes_a_raising_first_call_as_a_failure_and_lets_the_second_raise():
    import pytest

    from lakehouse_ops.retry import each_then_again

    seen = []

    def flaky(item):
        seen.append(item)
        if item == "always" or seen.count(item) == 1 and item == "once":
            raise OSError("SlowDown")
        return True

    assert each_then_again(flaky, ["a", "once", "b"], 2) == [True, True, True]
    with pytest.raises(OSError):
        each_then_again(flaky, ["a", "always"], 2)
