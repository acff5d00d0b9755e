"""Erasure's pure parts: subjects and their values per table, and which files can hold them."""

import pytest

from lakehouse_ops.config import config_from_dict
from lakehouse_ops.config.sections import ErasureTable
from lakehouse_ops.erasure.files import DATA, EQUALITY_DELETES, POSITION_DELETES, FileMeta, may_contain
from lakehouse_ops.erasure.subjects import (
    all_version_tokens,
    found_in,
    read_subject_lines,
    resolve_subjects,
    table_values,
)
from lakehouse_ops.errors import ConfigError
from lakehouse_ops.pseudo.cipher import Cipher, Keyring
from lakehouse_ops.pseudo.spark import LocalCipherClient


def meta(lower=b"c00010", upper=b"c00090", count=100, nulls=0, content=DATA):
    return FileMeta(
        "/w/f.parquet",
        content,
        "parquet",
        {2: lower} if lower is not None else {},
        {2: upper} if upper is not None else {},
        {2: count} if count is not None else {},
        {2: nulls} if nulls is not None else {},
    )


def test_bounds_decide_which_files_can_hold_a_value():
    assert may_contain(meta(), [2], ["c00042"])
    assert may_contain(meta(), [2], ["c00010"]) and may_contain(meta(), [2], ["c00090"])  # inclusive
    assert not may_contain(meta(), [2], ["c00009", "c00091", "d"])
    # Truncated bounds (a prefix below, an incremented prefix above) still admit every value the file holds.
    assert may_contain(meta(lower=b"c000", upper=b"c001"), [2], ["c00042"])
    assert may_contain(meta(lower="é".encode(), upper="ü".encode()), [2], ["ö"])  # UTF-8 byte order
    assert not may_contain(meta(count=100, nulls=100), [2], ["c00042"])  # only nulls
    assert may_contain(meta(lower=None, upper=None), [2], ["anything"])  # no bounds: must be read
    assert may_contain(meta(lower=None, upper=None, count=None, nulls=None), [2], ["x"])  # no stats at all
    assert not may_contain(meta(content=POSITION_DELETES, lower=None, upper=None), [2], ["x"])
    assert may_contain(meta(content=EQUALITY_DELETES), [2], ["c00042"])
    assert may_contain(meta(), [7, 2], ["c00042"])  # any of the columns


def test_subjects_are_referenced_by_token_never_by_value():
    client = LocalCipherClient(Keyring.generate())
    token = client.pseudonymize(["bob"])[0]
    subjects = resolve_subjects(["alice", "alice"], [token], client)
    assert [s.identifier for s in subjects] == ["alice", "bob"]
    assert [s.ref for s in subjects] == client.pseudonymize(["alice", "bob"])
    plain = resolve_subjects(["alice"], [], None)
    assert plain[0].ref == "subject-1"
    with pytest.raises(ConfigError, match="at least one subject"):
        resolve_subjects([], [], client)
    with pytest.raises(ConfigError, match="pseudonymization"):
        resolve_subjects([], [token], None)
    assert found_in(subjects, {"a.t": {0}, "b.t": {0, 1}, "c.t": set()}) == [
        {"ref": subjects[0].ref, "found_in": ["a.t", "b.t"]},
        {"ref": subjects[1].ref, "found_in": ["b.t"]},
    ]


def test_values_per_table_and_after_rotation():
    old = Keyring.generate()
    rotated = old.rotated()
    client = LocalCipherClient(rotated)
    subjects = resolve_subjects(["alice"], [], client)
    plain = ErasureTable(table="a.t", columns=["c"])
    assert table_values(plain, subjects, client) == {"alice": 0}
    tokens = ErasureTable(table="a.t", columns=["c"], holds="pseudonyms")
    assert table_values(tokens, subjects, client) == {Cipher(rotated).pseudonymize("alice"): 0}
    every = all_version_tokens(rotated, subjects)
    assert set(every) == {Cipher(old).pseudonymize("alice"), Cipher(rotated).pseudonymize("alice")}
    with pytest.raises(ConfigError, match="pseudonymization"):
        table_values(tokens, subjects, None)


def test_subject_files_and_config_errors():
    assert read_subject_lines("# ticket 7\nalice\n\n  bob  \n", "s.txt") == ["alice", "bob"]
    with pytest.raises(ConfigError, match="s.txt names no subject"):
        read_subject_lines("# only a comment\n", "s.txt")
    base = {"catalog": {"name": "c", "type": "hadoop", "warehouse": "/w"}}
    with pytest.raises(ConfigError) as info:
        config_from_dict(
            dict(
                base,
                erasure={"tables": [{"table": "a.t", "columns": ["c"], "holds": "pseudonyms"}]},
                ingest={
                    "queue_url": "q",
                    "poison_action": "leave",
                    "target_table": "a.t",
                    "pseudonymize": {"columns": ["c"]},
                },
            ),
            source="x.yaml",
        )
    message = str(info.value)
    assert "erasure.tables[0] (a.t) holds pseudonyms" in message
    assert "ingest.pseudonymize needs a 'pseudonymization' section" in message
    with pytest.raises(ConfigError, match="tables"):
        config_from_dict(dict(base, erasure={"tables": []}), source="x.yaml")
    ok = config_from_dict(
        dict(base, erasure={"tables": [{"table": "a.t", "columns": ["c"]}], "receipts": "s3://b/receipts"})
    )
    assert ok.erasure.tables[0].holds == "identifiers" and ok.erasure.receipts == "s3://b/receipts"


def test_partition_directories_naming_a_subject_are_found():
    from lakehouse_ops.erasure.raw import names_value, spark_key

    values = {"cust 42", "a/b"}
    assert names_value("s3://b/t/data/customer_id=cust+42/00000-1.parquet", values)  # as Iceberg writes it
    assert names_value("file:/w/t/data/customer_id=cust%2042/00000-1.parquet", values)
    assert names_value("s3://b/t/data/customer_id=cust%2B42/00000-1.parquet", {"cust+42"})  # a "+" in the value
    assert names_value("file:/w/t/data/ref=a%252Fb/00000-1.parquet", values)  # Iceberg's path as a Hadoop URI
    assert names_value("s3://b/t/data/ref=a%2Fb/f.parquet", values)
    assert not names_value("file:/w/t/data/day=2024-05-01/cust42-00000.parquet", values)
    assert not names_value("file:/w/t/data/x=cust%2043/f.parquet", values)
    assert spark_key("file:/w/odd%20dir%2541/f.parquet") == "/w/odd dir%41/f.parquet"
