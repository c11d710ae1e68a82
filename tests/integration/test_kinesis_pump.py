"""Sensor batches put on the traffic stream reach functions/traffic_batch.py through the local pump.

The real path: a gateway's `put_record` on the stream infra/serverless.yml declares, the pump reading
the shard as Lambda's Kinesis event source mapping does, the real handler, the traffic service and
its table; failures end in the on-failure destination the stream event names.
"""

import base64
import dataclasses
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel
from factories import recording_handlers, table_items, traffic_engineer

from sunflower.aws.clients import client
from sunflower.local.pump import EventPump, KinesisSource

pytest.importorskip("scipy", reason="retiming needs the [sim] extra (numpy, scipy)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "traffic"))
from traffic_factories import batch_for, make_corridor, recent_minutes

EVENTS = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture
def corridor(local_cloud):
    from sunflower.container import services

    corridor = make_corridor()
    services().traffic.create_corridor(traffic_engineer(), corridor)
    return corridor


@pytest.fixture
def minutes():
    return recent_minutes()


@dataclasses.dataclass
class Stream:
    pump: EventPump
    events: list[dict]  # every event the traffic handler was given
    name: str

    def put(self, body: bytes, partition_key: str) -> dict:
        """As a sensor gateway does: one batch a record, keyed by corridor."""
        return client("kinesis").put_record(StreamName=self.name, Data=body, PartitionKey=partition_key)


@pytest.fixture
def stream(local_cloud) -> Stream:
    # Only the traffic function: the other functions' queues (S3's test events) are not under test.
    catalog = dataclasses.replace(
        local_cloud.catalog, functions={"trafficBatch": local_cloud.catalog.functions["trafficBatch"]}
    )
    events: list[dict] = []
    pump = EventPump(catalog, recording_handlers(events))
    yield Stream(pump, events, catalog.name_of("TrafficSensorStream"))
    pump.stop()


def _seen(corridor_id: str) -> set[str]:
    """The batch ids the corridor has taken (accepted or rejected, never to be taken again)."""
    return {i["sk"].removeprefix("BATCH#") for i in table_items("traffic")
            if i["pk"] == f"CORRIDOR#{corridor_id}" and i["sk"].startswith("BATCH#")}


def _dead_letters(local_cloud) -> list[dict]:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=local_cloud.catalog.name_of("TrafficBatchesDeadLetterQueue"))["QueueUrl"]
    return [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]


def _delivered(events: list[dict]) -> list[str]:
    """Batch ids in the order the handler was given them, retries included."""
    return [json.loads(base64.b64decode(r["kinesis"]["data"]))["batch_id"] for e in events for r in e["Records"]]


@pytest.fixture
def commits(monkeypatch):
    """Count the traffic table's commits per batch id; `failing` says how many of a batch's first fail."""
    from sunflower.container import services

    repo = services().traffic._repo
    original, attempts, failing = repo.commit, Counter(), {}

    def commit(change):
        attempts[change.batch_id] += 1
        if attempts[change.batch_id] <= failing.get(change.batch_id, 0):
            raise ConnectionError("DynamoDB endpoint unreachable")
        return original(change)

    monkeypatch.setattr(repo, "commit", commit)
    return attempts, failing


def test_given_a_batch_put_on_the_stream_when_the_pump_drains_then_the_corridor_takes_it(
    local_cloud, corridor, minutes, stream
):
    from sunflower.container import services

    # given a gateway puts one batch, keyed by its corridor
    body = batch_for(corridor, "gw-1/0001", minutes(0)).model_dump_json().encode()
    put = stream.put(body, corridor.id)

    # when
    stream.pump.drain()

    # then the corridor took it and a plan is in force
    assert _seen(corridor.id) == {"gw-1/0001"}
    assert services().traffic.in_force(corridor.id).version == 1
    # and the handler got it once, in Lambda's Kinesis event shape
    (event,) = stream.events
    KinesisDataStreamModel.model_validate(event)
    (record,) = event["Records"]
    (example,) = json.loads((EVENTS / "kinesis_traffic_batch.json").read_text())["Records"][:1]
    assert set(record) == set(example) and set(record["kinesis"]) == set(example["kinesis"])
    assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
    assert record["eventSourceARN"] == local_cloud.catalog.stream_arn("TrafficSensorStream")
    assert record["eventID"] == f"{put['ShardId']}:{put['SequenceNumber']}"
    assert record["kinesis"]["sequenceNumber"] == put["SequenceNumber"]
    assert record["kinesis"]["partitionKey"] == corridor.id
    assert base64.b64decode(record["kinesis"]["data"]) == body
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    # and the shard's checkpoint is past it
    assert stream.pump.pending()[stream.name] == 0
    assert _dead_letters(local_cloud) == []


def test_given_a_transient_and_a_lasting_failure_when_drained_then_one_is_retried_and_the_other_dead_lettered(
    local_cloud, corridor, minutes, stream, commits
):
    # given three batches in a row: the first fails once, the second every time
    attempts, failing = commits
    failing.update({"gw-1/0001": 1, "gw-1/0002": 10**6})
    puts = [stream.put(batch_for(corridor, f"gw-1/000{k + 1}", minutes(k)).model_dump_json().encode(), corridor.id)
            for k in range(3)]

    # when
    stream.pump.drain()

    # then the first was retried and taken, and so was the one after the lasting failure
    assert attempts["gw-1/0001"] == 2
    assert _seen(corridor.id) == {"gw-1/0001", "gw-1/0003"}
    # and the failing one was halved out of its batch and tried 1 + maximumRetryAttempts (3) times alone
    source = next(s for s in stream.pump.sources if isinstance(s, KinesisSource))
    assert (source.spec.bisect, source.spec.max_retries) == (True, 3)
    assert [e["Records"][0]["kinesis"]["sequenceNumber"] for e in stream.events if len(e["Records"]) == 1].count(
        puts[1]["SequenceNumber"]) == 4
    # and its metadata, not its data, is in the on-failure destination
    (dead,) = _dead_letters(local_cloud)
    info = dead["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        puts[1]["ShardId"], puts[1]["SequenceNumber"], puts[1]["SequenceNumber"], 1)
    assert info["streamArn"] == local_cloud.catalog.stream_arn("TrafficSensorStream")
    assert dead["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert dead["requestContext"]["functionArn"].endswith(":function:sunflower-local-trafficBatch")
    assert "gw-1/0002" not in json.dumps(dead)
    # and the shard moved on past everything
    assert stream.pump.pending()[stream.name] == 0
    assert _delivered(stream.events)[-1] == "gw-1/0003"


def test_given_a_malformed_batch_on_the_stream_when_drained_then_it_is_rejected_once_and_the_next_is_taken(
    local_cloud, corridor, minutes, stream
):
    from sunflower.container import services

    # given an impossible batch (more cars than a lane can carry), then a good one
    bad = json.loads(batch_for(corridor, "gw-1/0001", minutes(0)).model_dump_json())
    bad["readings"][0]["count"] = 500
    stream.put(json.dumps(bad).encode(), corridor.id)
    stream.put(batch_for(corridor, "gw-1/0002", minutes(1)).model_dump_json().encode(), corridor.id)

    # when
    stream.pump.drain()

    # then both were delivered once: the bad one is acknowledged, kept as rejected with its reason
    assert _delivered(stream.events) == ["gw-1/0001", "gw-1/0002"]
    (rejection,) = services().traffic.rejections(traffic_engineer(), corridor.id)
    assert (rejection.batch_id, rejection.code) == ("gw-1/0001", "IMPOSSIBLE_READING")
    assert services().traffic.in_force(corridor.id).version == 1
    assert _dead_letters(local_cloud) == []


def test_given_a_handler_that_crashes_when_pumped_then_the_whole_batch_is_read_again(
    local_cloud, corridor, minutes, stream
):
    # given a function that fails its first invocation outright (a cold start that cannot reach a service)
    calls: list[dict] = []
    pump = EventPump(stream.pump.catalog, recording_handlers(calls, crash_first=True))
    for k in range(2):
        stream.put(batch_for(corridor, f"gw-1/000{k + 1}", minutes(k)).model_dump_json().encode(), corridor.id)
    (source,) = [s for s in pump.sources if isinstance(s, KinesisSource)]

    # when the first batch fails
    assert pump.poll(source) == 2

    # then the checkpoint has not moved
    assert pump.pending()[stream.name] == 2
    assert _seen(corridor.id) == set()

    # and when pumping goes on, both are taken (the bisected halves: one record each)
    pump.drain()
    assert [len(e["Records"]) for e in calls] == [2, 1, 1]
    assert _seen(corridor.id) == {"gw-1/0001", "gw-1/0002"}
    assert _dead_letters(local_cloud) == []


def test_given_the_pump_running_in_its_threads_when_a_gateway_puts_a_batch_then_the_corridor_takes_it(
    corridor, minutes, stream
):
    # given
    stream.pump.start()

    # when
    stream.put(batch_for(corridor, "gw-1/0001", minutes(0)).model_dump_json().encode(), corridor.id)

    # then (the thread reads the shard about once a second)
    deadline = time.monotonic() + 30
    while _seen(corridor.id) != {"gw-1/0001"}:
        assert time.monotonic() < deadline, "the pump's thread did not deliver the record"
        time.sleep(0.05)
    stream.pump.stop()
    assert not any(t.name.startswith("pump-") for t in threading.enumerate())
