import pytest

from lakehouse_ops.processes import WorkerFailed, in_processes


@pytest.mark.fast
def test_jobs_run_in_worker_processes_and_answer_in_order():
    assert in_processes("json", "loads", ["[1, 2]", '"two"', "3"]) == [[1, 2], "two", 3]
    assert in_processes("json", "loads", []) == []


@pytest.mark.fast
def test_a_failing_job_is_reported_not_returned():
    with pytest.raises(WorkerFailed, match="json.loads exited with code 1"):
        in_processes("json", "loads", ["[1]", "{not json"])
