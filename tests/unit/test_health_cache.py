"""The health cache's packs: every partition value type round-trips, and what cannot be kept is left out."""

import datetime
import decimal
import uuid

from pyiceberg.typedef import Record

from lakehouse_ops.health.aggregate import Counts
from lakehouse_ops.health.cache import AggregateCache, decode, encode


def _counts(values, files):
    counts = Counts(Record(*values))
    counts.data_files, counts.data_bytes, counts.last_updated_ms = files, files * 1000, 1700000000000 + files
    return counts


def test_partition_values_of_every_kind_round_trip():
    values = (19000, "edge-b", None, True, 1.5, b"\x00\xff", decimal.Decimal("12.30"), uuid.UUID(int=7))
    aggregates = {(0, values): _counts(values, 3), (1, (None,) * 8): _counts((None,) * 8, 1)}
    back = decode(encode(aggregates))
    assert set(back) == set(aggregates)
    for key, counts in aggregates.items():
        assert tuple(back[key].record) == key[1]
        assert {n: getattr(back[key], n) for n in Counts.SUMMED} == {n: getattr(counts, n) for n in Counts.SUMMED}
        assert back[key].last_updated_ms == counts.last_updated_ms


def test_packs_are_per_table_and_limit_and_skip_what_cannot_be_kept(tmp_path):
    cache = AggregateCache(str(tmp_path))
    good = {(0, (1,)): _counts((1,), 2)}
    odd = {(0, (datetime.time(1, 2),)): _counts((None,), 1)}  # a value type the pack does not hold
    cache.save("s3://lake/db/t", 1000, {"m1.avro": good, "m2.avro": odd, "m3.avro": None})
    loaded = cache.load("s3://lake/db/t", 1000)
    assert list(loaded) == ["m1.avro"] and loaded["m1.avro"][(0, (1,))].data_files == 2
    assert cache.load("s3://lake/db/t", 2000) == {}  # another small-file limit: other figures
    assert cache.load("s3://lake/db/other", 1000) == {}
