"""The pure rules ingest reads by: one rule for names (case-insensitive), CSV headers mapped by name, and each
announced object pinned to its own bytes."""

import decimal

import pytest

from lakehouse_ops.ingest.messages import S3Object
from lakehouse_ops.ingest.names import HeaderError, as_text, by_column, map_header, parse_header, spellings_of, variants
from lakehouse_ops.ingest.pin import MISSING, READ, SUPERSEDED, VERSION, Current, decide, same_bytes

TARGET = ["event_time", "customer_id", "bytes_sent", "rec_id"]


def test_a_header_maps_by_name_in_any_order_and_case():
    header = map_header(["rec_id", "URL", "Customer_ID", "event_time"], TARGET)
    assert header.columns == (
        ("rec_id", "rec_id"),
        ("URL", None),
        ("Customer_ID", "customer_id"),
        ("event_time", "event_time"),
    )
    assert header.unknown == ["URL"]


@pytest.mark.parametrize(
    "names, reason",
    [
        (["customer_id", "CUSTOMER_ID"], "columns 1 and 2 name one column twice"),
        (["customer_id", " "], "header column 2 has no name"),
        (["2024-05-13 10:00:00", "c1", "10"], r"first line \(3 fields\) names none of the target's columns"),
        ([], "no header line"),
    ],
)
def test_a_header_that_cannot_be_mapped_says_why(names, reason):
    with pytest.raises(HeaderError, match=reason):
        map_header(names, TARGET)


def test_header_lines_split_as_the_reader_splits_them():
    assert parse_header('\ufeff"rec_id","a,b",url\r\n', {}) == ["rec_id", "a,b", "url"]
    assert parse_header("rec_id;url", {"sep": ";"}) == ["rec_id", "url"]
    assert parse_header("rec_id\turl", {"sep": "\\t"}) == ["rec_id", "url"]  # as Spark reads the option
    assert parse_header("rec_id||url", {"sep": "||"}) == ["rec_id", "url"]
    assert parse_header("", {}) == []


def test_a_header_error_never_quotes_the_line():
    """A file without a header line has a record where its header should be: its values are never quoted."""
    for names in (["2024-05-13", "secret@example.com", "6"], ["secret", "SECRET"]):
        with pytest.raises(HeaderError) as info:
            map_header(names, TARGET)
        assert "secret" not in str(info.value).lower()


def test_key_spellings():
    assert variants(["customer_id", "Customer_ID", "BYTES_SENT", "other"], TARGET) == {"Customer_ID", "BYTES_SENT"}
    assert spellings_of(TARGET, ["Customer_ID", "other"])["customer_id"] == ["customer_id", "Customer_ID"]
    assert by_column({"Customer_ID": 1, "x": 2}, TARGET, "f") == {"customer_id": 1, "x": 2}
    with pytest.raises(ValueError, match="names column customer_id twice") as info:
        by_column({"customer_id": "c1", "Customer_ID": "c2"}, TARGET, "f")
    assert "c1" not in str(info.value) and "c2" not in str(info.value)


def test_a_string_column_takes_any_value_as_text():
    assert as_text(12345) == "12345" and as_text(True) == "true" and as_text(decimal.Decimal("1.50")) == "1.50"
    assert as_text({"b": 1, "a": [2]}) == '{"a": [2], "b": 1}' and as_text(None) is None and as_text("x") == "x"


def _obj(etag=None, version=None):
    return S3Object("b", "k", etag=etag, version_id=version)


def test_an_object_is_read_only_from_its_own_bytes():
    now = Current("e2", "v2", ("e2",))
    assert same_bytes(_obj("e2", "v1"), now) is True  # same content under another version: the same bytes
    assert same_bytes(_obj("e1", "v2"), now) is False
    assert same_bytes(_obj(version="v2"), now) is True and same_bytes(_obj(), now) is None
    assert decide(_obj("e2"), now, False) == READ
    assert decide(_obj(), now, False) == READ  # nothing to compare: the key as it is
    assert decide(_obj("e1", "v1"), now, True) == VERSION
    assert decide(_obj("e1", "v1"), now, False) == SUPERSEDED
    assert decide(_obj("e1"), now, False) == SUPERSEDED
    assert decide(_obj("e1", "v1"), None, True) == VERSION  # deleted since; the version is still there
    assert decide(_obj("e1"), None, False) == MISSING
