"""The trash's names and windows (pure): batches named by the instant they were moved, purge and restore by it."""

import pytest
from pydantic import ValidationError

from lakehouse_ops.config.policy import TrashPolicy
from lakehouse_ops.errors import SafetyError
from lakehouse_ops.maintenance import trash

DAY = 24 * 3600 * 1000
NOW = 1_795_000_000_123  # 2026-11-18T...


def test_batch_names_round_trip_to_the_millisecond_and_sort_by_time():
    name = trash.batch_name(NOW)
    assert len(name) == 19 and name.endswith("123Z")
    assert trash.batch_time_ms(name) == NOW
    assert sorted([trash.batch_name(NOW), trash.batch_name(NOW - DAY)]) == [
        trash.batch_name(NOW - DAY),
        trash.batch_name(NOW),
    ]
    for other in ("data", "20261124T054605Z", "20261124T05460512XZ", "2026112xT054605123Z"):
        assert trash.batch_time_ms(other) is None


def test_purge_takes_batches_past_keep_and_restore_those_since():
    names = [trash.batch_name(NOW - d * DAY) for d in (8, 6, 4, 1)] + ["not-a-batch"]
    assert trash.due(names, NOW, 5 * DAY) == sorted(names[:2])
    assert trash.due(names, NOW, 10 * DAY) == []
    assert trash.since(names, NOW - 5 * DAY) == sorted(names[2:4])
    assert trash.since(names, NOW - 4 * DAY) == sorted(names[2:4])  # at the instant counts


def test_relative_paths_stay_inside_the_location_however_spelled():
    assert trash.relative_to("file:/wh/t/data/a.parquet", "/wh/t") == "data/a.parquet"
    assert trash.relative_to("s3a://b/wh/t/data/x=1/a.parquet", "s3://b/wh/t/") == "data/x=1/a.parquet"
    with pytest.raises(SafetyError, match="is not inside"):
        trash.relative_to("/wh/t_backup/a.parquet", "/wh/t")


@pytest.mark.parametrize("prefix", ["trash", "..", "./x", ".a/b", "_trash", ""])
def test_trash_prefix_must_be_one_hidden_directory(prefix):
    with pytest.raises(ValidationError, match="prefix"):
        TrashPolicy(prefix=prefix)
    assert TrashPolicy(prefix=".trash-2").prefix == ".trash-2"
