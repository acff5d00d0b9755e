"""Many files checked from one listing per directory (orphan removal's guards and checks, expiry's check)."""

import os

import pytest

from lakehouse_ops.engine.fs import stat_many


@pytest.mark.fast
def test_local_files_are_found_by_listing_their_directories(tmp_path):
    part = tmp_path / "data" / "day=2024-05-01"
    part.mkdir(parents=True)
    names = ["plain.parquet", "with space.parquet", "ünïcode+=.parquet", ".hidden.parquet"]
    for i, name in enumerate(names):
        (part / name).write_bytes(b"x" * (10 + i))
    asked = ["file:" + str(part / n) for n in names] + [
        str(part / "missing.parquet"),  # absent: left out
        "file://" + str(tmp_path / "nowhere" / "f.parquet"),  # its directory is absent too
        str(part),  # a directory is no file
    ]
    found = stat_many(None, asked)
    assert sorted(found) == sorted(asked[: len(names)])
    for i, name in enumerate(names):
        info = found["file:" + str(part / name)]
        st = os.stat(part / name)
        assert info.size == 10 + i and info.mtime_ms == st.st_mtime_ns // 1_000_000
    assert stat_many(None, []) == {}
