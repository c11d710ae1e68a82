"""functions/traffic_batch.py fed real-shaped SQS and Kinesis events (tests/events/) in the embedded cloud."""

import base64
import copy
import json
import sys
from pathlib import Path

import pytest
from factories import table_items, traffic_engineer

pytest.importorskip("scipy", reason="retiming needs the [sim] extra (numpy, scipy)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "traffic"))
from traffic_factories import make_corridor

BATCHES = ["hanan2-test/20261123T2330", "hanan2-test/20261123T2331"]  # what the event files carry


@pytest.fixture
def corridor(local_cloud):
    from sunflower.container import services

    corridor = make_corridor()
    services().traffic.create_corridor(traffic_engineer(), corridor)
    return corridor


def _items() -> list[dict]:
    return sorted(table_items("traffic"), key=lambda i: (i["pk"], i["sk"]))


def _seen(corridor_id: str) -> set[str]:
    return {i["sk"].removeprefix("BATCH#") for i in table_items("traffic")
            if i["pk"] == f"CORRIDOR#{corridor_id}" and i["sk"].startswith("BATCH#")}


def _plan_version(corridor_id: str) -> int | None:
    from sunflower.container import services

    return services().traffic.in_force(corridor_id).version


def test_an_sqs_event_of_two_batches_is_ingested_and_retimes_the_corridor(corridor, events, lambda_context):
    from functions import traffic_batch

    response = traffic_batch.handler(events("sqs_traffic_batch.json"), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _seen(corridor.id) == set(BATCHES)
    assert _plan_version(corridor.id) == 1


def test_the_same_sqs_event_delivered_twice_takes_effect_once(corridor, events, lambda_context):
    from functions import traffic_batch

    # given
    traffic_batch.handler(events("sqs_traffic_batch.json"), lambda_context)
    before = _items()

    # when the queue delivers it again
    response = traffic_batch.handler(events("sqs_traffic_batch.json"), lambda_context)

    # then it succeeds and changes nothing
    assert response == {"batchItemFailures": []}
    assert _items() == before


def test_a_kinesis_event_is_ingested_too(corridor, events, lambda_context):
    from functions import traffic_batch

    response = traffic_batch.handler(events("kinesis_traffic_batch.json"), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _seen(corridor.id) == set(BATCHES)
    assert _plan_version(corridor.id) == 1


def _with_body(event: dict, index: int, body: str) -> dict:
    event = copy.deepcopy(event)
    record = event["Records"][index]
    if "kinesis" in record:
        record["kinesis"]["data"] = base64.b64encode(body.encode()).decode()
    else:
        record["body"] = body
    return event


def test_an_impossible_batch_is_kept_as_rejected_and_not_retried(corridor, events, lambda_context):
    from functions import traffic_batch
    from sunflower.container import services

    # given the second batch counts more cars than a lane can carry
    event = events("sqs_traffic_batch.json")
    bad = json.loads(event["Records"][1]["body"])
    bad["readings"][0]["count"] = 500
    event = _with_body(event, 1, json.dumps(bad))

    # when
    response = traffic_batch.handler(event, lambda_context)

    # then no record is failed (retrying could never help), the good batch counted, the bad one is kept
    assert response == {"batchItemFailures": []}
    assert _seen(corridor.id) == {BATCHES[0]}
    (rejection,) = services().traffic.rejections(traffic_engineer(), corridor.id)
    assert (rejection.batch_id, rejection.code) == (BATCHES[1], "IMPOSSIBLE_READING")


def test_a_body_that_is_not_a_batch_at_all_is_rejected_not_retried(corridor, events, lambda_context):
    from functions import traffic_batch

    response = traffic_batch.handler(_with_body(events("kinesis_traffic_batch.json"), 0, "<xml/>"), lambda_context)

    assert response == {"batchItemFailures": []}
    assert _seen(corridor.id) == {BATCHES[1]}


@pytest.fixture
def failing_once(monkeypatch):
    """The traffic table is unavailable the first time the second batch is committed.

    (The second, not the first: a batch retried after a later one was ingested for the same loops is
    refused by the domain as overlapping, since each loop's readings may only move forward.)"""
    from sunflower.container import services

    repo = services().traffic._repo
    original, failed = repo.commit, []

    def commit(change):
        if change.batch_id == BATCHES[1] and not failed:
            failed.append(change.batch_id)
            raise ConnectionError("DynamoDB endpoint unreachable")
        return original(change)

    monkeypatch.setattr(repo, "commit", commit)
    return failed


@pytest.mark.parametrize("event_file, identifier", [
    ("sqs_traffic_batch.json", lambda r: r["messageId"]),
    ("kinesis_traffic_batch.json", lambda r: r["kinesis"]["sequenceNumber"]),
])
def test_a_transient_failure_fails_only_its_record_and_the_retry_succeeds(corridor, events, lambda_context,
                                                                          failing_once, event_file, identifier):
    from functions import traffic_batch

    # given
    event = events(event_file)

    # when
    response = traffic_batch.handler(event, lambda_context)

    # then only that record is reported for retry, and nothing of it was kept but its raw copy
    assert response == {"batchItemFailures": [{"itemIdentifier": identifier(event["Records"][1])}]}
    assert _seen(corridor.id) == {BATCHES[0]}

    # when the trigger retries it
    retry = {"Records": [event["Records"][1]]}
    assert traffic_batch.handler(retry, lambda_context) == {"batchItemFailures": []}
    assert _seen(corridor.id) == set(BATCHES)
