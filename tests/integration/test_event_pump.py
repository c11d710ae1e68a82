"""The local event source mapping and scheduler, against the embedded moto server.

The stack under test is tests/fixtures/pump/serverless.yml: a bucket notifying a queue
(visibility timeout 1 s, DLQ after 2 receives) consumed by a Powertools batch handler.
"""

import dataclasses
import hashlib
import importlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from factories import recording_handlers

from sunflower.aws.clients import client
from sunflower.local import catalog as catalog_module
from sunflower.local import stack
from sunflower.local.pump import EventPump
from sunflower.local.scheduler import Scheduler

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "pump" / "serverless.yml"
PREFIX = "sunflower-pumptest-local"  # {service}-{stage} of the fixture stack


@dataclasses.dataclass
class PumpStack:
    catalog: catalog_module.Catalog
    handlers: object  # tests/fixtures/pump/handlers.py
    pump: EventPump

    @property
    def bucket(self) -> str:
        return self.catalog.name_of("UploadsBucket")

    def queue_url(self, logical_id: str = "UploadsQueue") -> str:
        return client("sqs").get_queue_url(QueueName=self.catalog.name_of(logical_id))["QueueUrl"]

    def send(self, *bodies: str) -> None:
        client("sqs").send_message_batch(
            QueueUrl=self.queue_url(),
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
        )


@pytest.fixture
def pump_stack(local_cloud, monkeypatch) -> PumpStack:
    # The fixture's handlers are named as the real ones are, by module path from the repository root.
    monkeypatch.syspath_prepend(str(REPO))
    fixture_catalog = catalog_module.load(FIXTURE, stage="local")
    stack.build(fixture_catalog, local_cloud.endpoint)
    handlers = importlib.import_module("tests.fixtures.pump.handlers")
    pump = EventPump(fixture_catalog)
    # Connecting the notification made S3 send its test event, as it does in the cloud.
    pump.drain()
    handlers.clear()
    yield PumpStack(fixture_catalog, handlers, pump)
    pump.stop()
    handlers.clear()


def _records(events: list[dict]) -> list[dict]:
    return [record for event in events for record in event["Records"]]


def _eventually(condition, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return result


def test_given_an_object_uploaded_when_the_pump_drains_then_the_handler_gets_the_s3_event_in_an_sqs_record(
    pump_stack,
):
    # given an upload under the notification's prefix, and one outside it
    key = "incoming/plan 7+8.geojson"
    client("s3").put_object(
        Bucket=pump_stack.bucket, Key=key, Body=b'{"type": "FeatureCollection"}'
    )
    client("s3").put_object(Bucket=pump_stack.bucket, Key="elsewhere/ignored.txt", Body=b"x")

    # when
    pump_stack.pump.drain()

    # then one invocation, with an event shaped like Lambda's SQS event
    assert len(pump_stack.handlers.events) == 1
    event = pump_stack.handlers.events[0]
    SqsModel.model_validate(event)
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == pump_stack.catalog.queue_arn("UploadsQueue")
    assert record["awsRegion"] == pump_stack.catalog.region
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    # and the body is S3's notification for the object, its key URL-encoded (moto also encodes
    # the slashes, which S3 does not: handlers decode with unquote_plus, as AWS advises)
    (s3_record,) = json.loads(record["body"])["Records"]
    assert s3_record["eventSource"] == "aws:s3"
    assert s3_record["eventName"] == "ObjectCreated:Put"
    assert s3_record["s3"]["bucket"]["name"] == pump_stack.bucket
    assert unquote_plus(s3_record["s3"]["object"]["key"]) == key
    assert s3_record["s3"]["object"]["size"] == len(b'{"type": "FeatureCollection"}')
    # and the handler was given a Lambda context and processed the record, which is deleted
    context = pump_stack.handlers.contexts[0]
    assert context.function_name == f"{PREFIX}-ingest"
    assert context.invoked_function_arn.endswith(f":function:{PREFIX}-ingest")
    assert uuid.UUID(context.aws_request_id)
    assert pump_stack.handlers.processed == [record["body"]]
    assert pump_stack.pump.pending() == {pump_stack.catalog.name_of("UploadsQueue"): 0}


def test_given_a_message_with_attributes_when_pumped_then_the_handler_gets_them_in_lambdas_format(
    pump_stack,
):
    # given
    client("sqs").send_message(
        QueueUrl=pump_stack.queue_url(),
        MessageBody="with attributes",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "plan"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )

    # when
    pump_stack.pump.drain()

    # then
    (record,) = _records(pump_stack.handlers.events)
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "plan",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {
            "binaryValue": "AAE=",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert record["md5OfMessageAttributes"]


def test_given_a_batch_with_one_failing_record_when_pumped_then_only_the_good_records_are_deleted(
    pump_stack,
):
    # given
    pump_stack.send("ok-1", "fail-2", "ok-3")
    (source,) = pump_stack.pump.sources

    # when one batch is handled
    delivered = pump_stack.pump.poll(source)

    # then all three were delivered in one invocation, two processed
    assert delivered == 3
    assert len(pump_stack.handlers.events) == 1
    assert sorted(pump_stack.handlers.processed) == ["ok-1", "ok-3"]
    # and only the failed one comes back once its visibility timeout has passed
    again = client("sqs").receive_message(
        QueueUrl=pump_stack.queue_url(),
        MaxNumberOfMessages=10,
        WaitTimeSeconds=5,
        MessageSystemAttributeNames=["All"],
    )["Messages"]
    assert [m["Body"] for m in again] == ["fail-2"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_given_a_record_that_always_fails_when_drained_then_it_is_retried_and_ends_in_the_dead_letter_queue(
    pump_stack,
):
    # given
    pump_stack.send("fail-always")

    # when
    pump_stack.pump.drain(timeout_s=20)

    # then the handler saw it maxReceiveCount (2) times
    seen = [r for r in _records(pump_stack.handlers.events) if r["body"] == "fail-always"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in seen] == ["1", "2"]
    assert len({r["messageId"] for r in seen}) == 1
    # and moto moved it to the dead-letter queue; the queue itself is empty
    dead = client("sqs").receive_message(
        QueueUrl=pump_stack.queue_url("UploadsDeadLetterQueue"), MaxNumberOfMessages=10
    )
    assert [m["Body"] for m in dead["Messages"]] == ["fail-always"]
    assert not any(pump_stack.pump.pending().values())


def test_given_a_handler_that_raises_when_pumped_then_the_whole_batch_is_retried(pump_stack):
    # given a handler that crashes on its first invocation (say, a cold start that cannot reach a service)
    calls: list[dict] = []
    pump = EventPump(pump_stack.catalog, recording_handlers(calls, crash_first=True))
    pump_stack.send("ok-a", "ok-b")

    # when the first batch fails
    (source,) = pump.sources
    assert pump.poll(source) == 2

    # then nothing was deleted: both messages are in flight
    assert pump.pending() == {pump_stack.catalog.name_of("UploadsQueue"): 2}

    # and when pumping goes on, both come back in a batch and are processed
    pump.drain()
    first, second = calls
    assert {r["messageId"] for r in first["Records"]} == {r["messageId"] for r in second["Records"]}
    assert {r["attributes"]["ApproximateReceiveCount"] for r in second["Records"]} == {"2"}
    assert sorted(pump_stack.handlers.processed) == ["ok-a", "ok-b"]


def test_given_an_invalid_batch_item_failures_response_when_pumped_then_the_whole_batch_is_retried(
    pump_stack,
):
    # given a handler naming a message that is not in its batch, which Lambda counts as a failed batch
    def resolve(spec):
        return lambda event, context: {
            "batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]
        }

    pump = EventPump(pump_stack.catalog, resolve)
    pump_stack.send("ok-x", "ok-y")

    # when
    (source,) = pump.sources
    pump.poll(source)

    # then
    assert pump.pending() == {pump_stack.catalog.name_of("UploadsQueue"): 2}


def test_given_the_pump_running_in_its_threads_when_an_object_is_uploaded_then_the_handler_processes_it(
    pump_stack,
):
    # given
    pump_stack.pump.start()

    # when
    client("s3").put_object(Bucket=pump_stack.bucket, Key="incoming/live.bin", Body=b"live")

    # then
    body = _eventually(lambda: pump_stack.handlers.processed)[0]
    assert (
        unquote_plus(json.loads(body)["Records"][0]["s3"]["object"]["key"]) == "incoming/live.bin"
    )
    pump_stack.pump.stop()
    assert not any(t.name.startswith("pump-") for t in threading.enumerate())


def test_given_a_rate_schedule_when_its_period_has_passed_then_the_handler_gets_a_scheduled_event(
    pump_stack,
):
    # given a scheduler started at t0 (tick runs every minute, and every two hours)
    t0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    scheduler = Scheduler(pump_stack.catalog, now=lambda: t0)

    # when
    early = scheduler.run_due(t0 + timedelta(seconds=59))
    due = scheduler.run_due(t0 + timedelta(minutes=1))
    again = scheduler.run_due(t0 + timedelta(minutes=1, seconds=30))

    # then the one-minute schedule fired once, at one minute
    assert early == [] and again == []
    assert [s.expression for s in due] == ["rate(1 minute)"]
    (event,) = pump_stack.handlers.scheduled_events
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["version"] == "0"
    assert event["account"] == catalog_module.ACCOUNT_ID
    assert event["region"] == pump_stack.catalog.region
    assert event["time"] == "2025-03-01T08:01:00Z"
    assert event["detail"] == {}
    (rule,) = event["resources"]
    assert rule.startswith(
        f"arn:aws:events:{pump_stack.catalog.region}:{catalog_module.ACCOUNT_ID}:rule/{PREFIX}-tick"
    )
    assert uuid.UUID(event["id"])
    # and the two-hour schedule fires at two hours, once, however late the check
    fired = scheduler.run_due(t0 + timedelta(hours=5))
    assert sorted(s.expression for s in fired) == ["rate(1 minute)", "rate(2 hours)"]


@pytest.mark.parametrize(
    "expression", ["cron(0 12 * * ? *)", "rate(5 minute)", "rate(1 minutes)", "every 5 minutes"]
)
def test_given_a_schedule_the_local_scheduler_cannot_run_when_built_then_it_says_so(expression):
    # given
    fixture_catalog = catalog_module.load(FIXTURE, stage="local")
    tick = dataclasses.replace(fixture_catalog.functions["tick"], schedules=(expression,))
    fixture_catalog.functions["tick"] = tick

    # when / then
    with pytest.raises(ValueError, match="tick") as error:
        Scheduler(fixture_catalog)
    if expression.startswith("cron"):
        assert "cron expressions are not supported locally yet" in str(error.value)
