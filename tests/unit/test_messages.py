"""Every message shape the ingest job accepts, and the ones it must refuse (pure parsing)."""

import json
import os

import pytest

from lakehouse_ops.ingest.messages import IGNORED, OBJECTS, POISON, S3Object, decode_key, parse_body

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "s3-events")


def body(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def test_put_notification_decodes_the_key():
    parsed = parse_body(body("s3-notification-put.json"))
    assert parsed.kind == OBJECTS
    [obj] = parsed.created
    assert obj.uri == "s3://landing-bucket/cdn-logs/provider=edge-a/2024/05/13/requests 10-15.json.gz"
    assert obj.size == 1048576 and obj.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    # The identity names the bytes (the ETag); the version id is kept to read them once the key holds others.
    assert obj.identity.endswith("#0d7e4b8b1c2f6a6e1b3f0b6f5a9c4d21")
    quoted = S3Object(obj.bucket, obj.key, etag='"0d7e4b8b1c2f6a6e1b3f0b6f5a9c4d21"')
    assert quoted.identity == obj.identity  # HEAD and listings quote the ETag; notifications do not


def test_every_record_of_a_multi_record_message():
    parsed = parse_body(body("s3-notification-multi.json"))
    assert [o.key for o in parsed.created] == [
        "cdn-logs/provider=edge-b/2024/05/13/part-0001.parquet",
        "cdn-logs/provider=edge-b/2024/05/13/café (1).csv",
    ]
    assert parsed.created[0].etag.endswith("-16")  # multipart ETag; identity falls back to it
    assert parsed.created[0].identity.endswith("#9b2cf535f27731c974343645a3985328-16")


def test_removed_is_recorded_not_ingested():
    parsed = parse_body(body("s3-notification-removed.json"))
    assert parsed.kind == IGNORED and parsed.created == []
    assert parsed.deleted[0].key == "cdn-logs/provider=edge-a/2024/05/13/requests 10-15.json.gz"


def test_test_event_is_ignored():
    assert parse_body(body("s3-test-event.json")).kind == IGNORED


def test_sns_wrapped_notification_is_unwrapped():
    parsed = parse_body(body("sns-wrapped-s3-notification.json"))
    assert parsed.kind == OBJECTS
    assert parsed.created[0].key == "cdn-logs/provider=edge-a/2024/05/13/requests 10-15.json.gz"


def test_eventbridge_created_and_deleted():
    parsed = parse_body(body("eventbridge-object-created.json"))
    assert parsed.kind == OBJECTS
    [obj] = parsed.created
    assert obj == S3Object(
        bucket="landing-bucket",
        key="cdn-logs/provider=edge-c/2024/05/13/part-0007.json",
        size=5242880,
        etag="b1946ac92492d2347c6235b4d2611184",
        version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        sequencer="00617F08299329D189",
        event_time="2024-05-13T10:17:02Z",
    )
    deleted = parse_body(body("eventbridge-object-deleted.json"))
    assert deleted.kind == IGNORED and deleted.deleted[0].key.endswith("part-0007.json")


@pytest.mark.parametrize(
    "raw,form,url",
    [
        ("a+b%2Bc.json", "a b+c.json", "a+b+c.json"),
        ("k%3Dv/x%3Ay.csv", "k=v/x:y.csv", "k=v/x:y.csv"),
        ("caf%C3%A9+%281%29.csv", "café (1).csv", "café+(1).csv"),
    ],
)
def test_key_decoding_modes(raw, form, url):
    assert decode_key(raw, "form") == form
    assert decode_key(raw, "url") == url
    assert decode_key(raw, "none") == raw


def test_eventbridge_key_decoding_is_a_setting():
    event = json.loads(body("eventbridge-object-created.json"))
    event["detail"]["object"]["key"] = "dir/a%20b%3Dc.json"
    assert parse_body(json.dumps(event)).created[0].key == "dir/a%20b%3Dc.json"
    assert parse_body(json.dumps(event), eventbridge_key_encoding="url").created[0].key == "dir/a b=c.json"


@pytest.mark.parametrize(
    "text,reason",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"hello": "world"}', "not an S3 event notification"),
        ('{"Records": []}', "Records is empty"),
        ('{"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}', "Records[0] has no s3.bucket.name"),
        (
            '{"Records": [{"eventName": "ObjectRestore:Post", '
            '"s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}',
            "eventName 'ObjectRestore:Post'",
        ),
        ('{"Type": "Notification", "Message": "garbage"}', "SNS Message: message body is not JSON"),
        (
            '{"source": "aws.s3", "detail-type": "Object Restore Completed", "detail": {"bucket": {"name": "b"}, '
            '"object": {"key": "k"}}}',
            "'Object Restore Completed'",
        ),
        (
            '{"Records": [{"eventName": "ObjectCreated:Put", '
            '"s3": {"bucket": {"name": "b"}, "object": {"key": "%FF"}}}]}',
            "utf-8",
        ),
    ],
)
def test_poison_messages_name_what_was_wrong(text, reason):
    parsed = parse_body(text)
    assert parsed.kind == POISON and reason in parsed.reason, parsed.reason


def test_oversized_body_is_poison():
    assert "256 KiB" in parse_body("x" * (256 * 1024 + 1)).reason
