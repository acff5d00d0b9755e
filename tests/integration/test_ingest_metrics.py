"""What an ingest batch reports for alarms: backlog from SQS (moto's server), the oldest message's age, throughput,
and the same as a CloudWatch Embedded Metric Format line."""

import json
import time

from lakehouse_ops.ingest.metrics import EMF_NAMESPACE, alarm_fields
from lakehouse_ops.ingest.queue import Queue


def test_backlog_age_and_throughput_as_json_and_as_an_emf_line(aws_env, capsys):
    from lakehouse_ops.aws.clients import client

    sqs = client("sqs")
    url = sqs.create_queue(QueueName="metrics-backlog")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="m%d" % i)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)  # one in flight
    sent = int(time.time() * 1000) - 90_000  # the batch's oldest message was sent 90 s ago
    metrics = {"rows": 5000, "bytes": 2_000_000, "batch_s": 2.0, "lag_s": 95.5, "batch_id": "b-1", "dlq_messages": 0}
    fields = alarm_fields(metrics, Queue(sqs, url), sent, "db.events")
    assert (fields["queue_visible"], fields["queue_in_flight"]) == (2, 1)
    assert 90 <= fields["oldest_message_age_s"] < 100
    assert fields["rows_per_s"] == 2500.0 and fields["bytes_per_s"] == 1_000_000.0
    printed = capsys.readouterr()
    assert printed.out == ""  # stdout is the report's alone
    line = json.loads(printed.err.strip())
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == EMF_NAMESPACE and directive["Dimensions"] == [["Target"]]
    names = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert names["queue_visible"] == "Count" and names["lag_s"] == "Seconds" and names["rows_per_s"] == "Count/Second"
    assert all(isinstance(line[name], (int, float)) for name in names)  # every named metric has its value
    assert line["Target"] == "db.events" and line["queue_visible"] == 2 and line["lag_s"] == 95.5


def test_a_queue_that_does_not_answer_leaves_the_backlog_unknown_and_prints_nothing_without_emf(capsys):
    class Unreachable:
        def depth(self):
            raise ConnectionError("SQS did not answer")

    fields = alarm_fields({"rows": 0, "batch_s": 0.0}, Unreachable(), int(time.time() * 1000), None)
    assert fields["queue_visible"] is None and fields["queue_in_flight"] is None and fields["rows_per_s"] == 0.0
    printed = capsys.readouterr()
    assert printed.out == "" and '"_aws"' not in printed.err
