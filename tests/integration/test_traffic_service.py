"""The traffic service in the embedded cloud: batches in, versioned plans out, pins and overrides, bad input."""

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from factories import admin, audit_log, official, table_items, traffic_engineer

from sunflower.auth.principals import Principal
from sunflower.common.clock import utc_now
from sunflower.common.errors import (
    AlreadyExists,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from sunflower.common.settings import get_settings
from sunflower.traffic.errors import (
    FutureInterval,
    ImpossibleReading,
    MalformedBatch,
    NoFeasibleCycle,
    OverlappingInterval,
    UnknownDetector,
)
from sunflower.traffic.export import plan_dict
from sunflower.traffic.models import SensorBatch, SensorReading
from sunflower.traffic.records import Outcome, PinMode

pytest.importorskip("scipy", reason="retiming needs the [sim] extra (numpy, scipy)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "traffic"))
from traffic_factories import PEAK, batch_for, make_corridor, recent_minutes

pytestmark = pytest.mark.usefixtures("local_cloud")

HEAVIER = {**PEAK, "EB_0": 1300.0, "EB_1": 1300.0, "NB_0": 500.0, "SB_0": 480.0}


@pytest.fixture
def traffic():
    from sunflower.container import services

    return services().traffic


@pytest.fixture
def engineer():
    return traffic_engineer()


@pytest.fixture
def corridor(traffic, engineer):
    corridor = make_corridor()
    traffic.create_corridor(engineer, corridor)
    return corridor


@pytest.fixture
def minutes():
    return recent_minutes()


def _traffic_items() -> list[dict]:
    return sorted(table_items("traffic"), key=lambda i: (i["pk"], i["sk"]))


def _objects(prefix: str = "") -> dict[str, bytes]:
    s3 = boto3.client("s3")
    bucket = get_settings().bucket("traffic")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _state_revision(corridor_id: str) -> int:
    return next(int(i["revision"]) for i in table_items("traffic")
                if i["pk"] == f"CORRIDOR#{corridor_id}" and i["sk"] == "STATE")


# --- ingesting ------------------------------------------------------------------------------------


def test_the_first_batch_puts_a_retimed_plan_in_force_and_keeps_the_raw_batch(traffic, corridor, engineer, minutes):
    # given
    body = batch_for(corridor, "sensor-7/0001", minutes(0)).model_dump_json().encode()

    # when
    result = traffic.ingest(body)

    # then plan v1 is in force, with its inputs and reasons
    assert result.outcome is Outcome.ACCEPTED
    plan, etag = traffic.current_plan(corridor.id)
    assert (plan.version, plan.source, result.new_plan.version) == (1, "retimed", 1)
    assert plan.inputs.batch_ids == ("sensor-7/0001",) and plan.inputs.previous_version is None
    assert {r.code for r in plan.reasons} >= {"flows", "bandwidth"}
    assert etag.startswith('"v1-')
    assert {t.intersection_id for t in plan.timings} == {"J1", "J2", "J3"}
    # and the raw batch is in S3 exactly as sent, partitioned by corridor and date
    day = minutes(0).strftime("%Y-%m-%d")
    assert _objects("raw/") == {f"raw/{corridor.id}/{day}/sensor-7%2F0001.json": body}
    # and the plan's time-space diagram was drawn once
    svg = _objects("diagrams/")[f"diagrams/{corridor.id}/1.svg"]
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert traffic.plan(engineer, corridor.id, 1).diagram_key == f"diagrams/{corridor.id}/1.svg"
    # and the batch window's flows and aggregates are kept
    (window,) = traffic.flow_history(engineer, corridor.id)
    assert (window.plan_version, window.readings, len(window.intersections)) == (1, len(corridor.detectors), 3)


def test_plans_are_versioned_per_corridor_newest_first_and_one_is_in_force(traffic, corridor, engineer, minutes):
    # given
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))

    # when demand rises enough to retime
    result = traffic.ingest(batch_for(corridor, "b2", minutes(1), per_lane=HEAVIER))

    # then
    assert result.new_plan is not None and result.new_plan.version == 2
    history = traffic.plan_history(engineer, corridor.id, limit=10, start=None).items
    assert [(p.version, p.in_force) for p in history] == [(2, True), (1, False)]
    assert history[0].plan.inputs.previous_version == 1
    assert history[0].etag != history[1].etag
    assert traffic.current_plan(corridor.id)[0].version == 2
    assert [p.plan.cycle_s for p in history] == [result.in_force.plan.cycle_s, history[1].plan.cycle_s]


def test_a_batch_that_changes_nothing_material_keeps_the_plan_and_still_counts(traffic, corridor, minutes):
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))

    result = traffic.ingest(batch_for(corridor, "b2", minutes(1)))

    assert (result.outcome, result.new_plan, result.in_force.version) == (Outcome.ACCEPTED, None, 1)
    assert any(i["sk"] == "BATCH#b2" for i in _traffic_items())


def test_a_repeated_batch_id_is_a_no_op_success(traffic, corridor, minutes):
    # given
    batch = batch_for(corridor, "b1", minutes(0))
    traffic.ingest(batch)
    before, objects = _traffic_items(), _objects()

    # when the queue delivers it again
    again = traffic.ingest(batch.model_dump_json())

    # then
    assert again.outcome is Outcome.DUPLICATE and again.in_force.version == 1
    assert _traffic_items() == before
    assert _objects() == objects


def _reading(corridor, start, **changes) -> SensorReading:
    values = {"detector_id": corridor.detectors[0].id, "interval_start": start, "interval_s": 60.0, "count": 10}
    values.update(changes)
    return SensorReading(**values)


@pytest.mark.parametrize("kind, make", [
    (UnknownDetector, lambda c, t: SensorBatch(batch_id="bad", corridor_id=c.id,
                                               readings=(_reading(c, t(5), detector_id="no-such-loop"),))),
    (ImpossibleReading, lambda c, t: SensorBatch(batch_id="bad", corridor_id=c.id,
                                                 readings=(_reading(c, t(5), count=-3),))),
    (ImpossibleReading, lambda c, t: SensorBatch(batch_id="bad", corridor_id=c.id,
                                                 readings=(_reading(c, t(5), count=400),))),
    (OverlappingInterval, lambda c, t: SensorBatch(batch_id="bad", corridor_id=c.id,
                                                   readings=(_reading(c, t(0) + timedelta(seconds=30)),))),
    (FutureInterval, lambda c, t: SensorBatch(batch_id="bad", corridor_id=c.id,
                                              readings=(_reading(c, utc_now() + timedelta(minutes=5)),))),
])
def test_a_bad_batch_is_refused_clearly_and_leaves_plan_state_and_objects_untouched(traffic, corridor, minutes, kind,
                                                                                   make):
    # given a corridor with a plan in force
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))
    before, objects, plan = _traffic_items(), _objects(), traffic.current_plan(corridor.id)
    batch = make(corridor, minutes)

    # when
    with pytest.raises(kind) as caught:
        traffic.ingest(batch.model_dump_json())

    # then the error names the problem, and nothing was written anywhere
    assert caught.value.problems or caught.value.message
    assert _traffic_items() == before
    assert _objects() == objects
    assert traffic.current_plan(corridor.id) == plan


def test_malformed_json_is_refused_naming_the_fields(traffic, corridor):
    with pytest.raises(MalformedBatch) as caught:
        traffic.ingest(b'{"batch_id": "x", "corridor_id": "hanan2-test", "readings": [{"count": "many"}]}')

    assert any(p.field.startswith("readings.0") for p in caught.value.problems)


def test_a_batch_for_an_unknown_corridor_is_not_found(traffic, minutes):
    with pytest.raises(NotFound):
        traffic.ingest(batch_for(make_corridor(), "b1", minutes(0)).model_copy(update={"corridor_id": "nowhere"}))


def test_receiving_a_bad_batch_keeps_it_as_rejected_with_its_raw_body_and_changes_nothing_else(traffic, corridor,
                                                                                              engineer, minutes):
    # given
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))
    revision = _state_revision(corridor.id)
    body = SensorBatch(batch_id="b2", corridor_id=corridor.id,
                       readings=(_reading(corridor, minutes(5), count=-1),)).model_dump_json().encode()

    # when it comes off the queue
    result = traffic.receive(body)

    # then it is acknowledged as rejected, with the reason and the body kept
    assert result.outcome is Outcome.REJECTED
    (rejection,) = traffic.rejections(engineer, corridor.id)
    assert (rejection.batch_id, rejection.code) == ("b2", "IMPOSSIBLE_READING")
    assert rejection.problems[0][0] == "readings[0].count"
    assert _objects("rejected/")[rejection.raw_key] == body
    assert rejection.raw_key.startswith(f"rejected/{corridor.id}/")
    # and the corridor is as it was
    assert _state_revision(corridor.id) == revision
    assert traffic.current_plan(corridor.id)[0].version == 1


def test_receiving_garbage_keeps_it_under_a_name_of_its_own(traffic):
    result = traffic.receive(b"\x00 not json")

    assert result.outcome is Outcome.REJECTED
    assert result.corridor_id == "_unknown" and result.batch_id.startswith("sha256-")
    assert _objects("rejected/_unknown/")


# --- two batches at once --------------------------------------------------------------------------


@pytest.fixture
def serializable_dynamodb(monkeypatch):
    """One DynamoDB request at a time in moto, so its transactions are as isolated as DynamoDB's (see
    tests/integration/test_audit_log.py): the test is then about our optimistic concurrency."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self):
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


@pytest.mark.usefixtures("serializable_dynamodb")
def test_two_batches_ingested_at_once_are_both_kept(traffic, corridor, minutes):
    # given two sensors' batches (each intersection's own loops) read by both workers at the same revision
    traffic.ingest(batch_for(corridor, "b0", minutes(0)))
    first = [d.id for d in corridor.detectors if d.intersection_id == "J1"]
    second = [d.id for d in corridor.detectors if d.intersection_id == "J3"]
    full = batch_for(corridor, "x", minutes(1))
    batches = [
        SensorBatch(batch_id=f"b-{name}", corridor_id=corridor.id,
                    readings=tuple(r for r in full.readings if r.detector_id in ids))
        for name, ids in (("j1", first), ("j3", second))
    ]
    repo = traffic._repo
    both_read = threading.Barrier(2, timeout=30)
    original_head, calls = repo.head, []

    def head(*args, **kwargs):
        found = original_head(*args, **kwargs)
        calls.append(1)
        if len(calls) <= 2:
            both_read.wait()  # neither commits before both have read the same revision
        return found

    repo.head = head
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(traffic.ingest, batches))
    finally:
        del repo.head

    # then one of them had to retry, and neither was lost
    assert sorted(r.attempts for r in results) == [1, 2]
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    head = traffic._repo.head(corridor.id)
    assert {"b0", "b-j1", "b-j3"} <= set(head.rolling.seen_batch_ids)
    kept = {r.detector_id for r in head.rolling.readings if r.interval_start == minutes(1)}
    assert kept == set(first) | set(second)
    assert head.revision == 3


# --- engineers ------------------------------------------------------------------------------------


def _audited(subject_id: str) -> list[tuple[str, str, str]]:
    return [(e["actor"], e["detail"].get("change", ""), e["purpose"]) for e in audit_log()
            if e["subject_type"] == "traffic_corridor" and e["subject_id"] == subject_id]


def test_a_pinned_plan_stays_in_force_while_retiming_goes_on_until_unpinned(traffic, corridor, engineer, minutes):
    # given v1 then v2 in force
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))
    traffic.ingest(batch_for(corridor, "b2", minutes(1), per_lane=HEAVIER))

    # when an engineer pins v1
    pinned = traffic.pin(engineer, corridor.id, 1, "signal works at J2")

    # then v1 is in force, held, and controllers get v1's ETag again
    assert (pinned.version, pinned.pin.mode, pinned.pin.by) == (1, PinMode.PINNED, engineer.audit_name)
    plan, etag = traffic.current_plan(corridor.id)
    assert plan.version == 1 and etag == traffic.plan(engineer, corridor.id, 1).etag

    # when heavier traffic comes in while pinned
    result = traffic.ingest(batch_for(corridor, "b3", minutes(2), per_lane=HEAVIER))

    # then a candidate is stored but the plan in force does not change
    assert result.new_plan is not None and result.new_plan.version == 3
    assert traffic.current_plan(corridor.id)[0].version == 1
    status = traffic.status(engineer, corridor.id)
    assert (status.candidate_version, status.current.pin.reason) == (3, "signal works at J2")

    # when unpinned, the candidate goes into force
    released = traffic.unpin(engineer, corridor.id, "works finished")
    assert (released.version, released.pin) == (3, None)
    assert traffic.current_plan(corridor.id)[0].version == 3
    assert traffic.status(engineer, corridor.id).candidate_version is None
    # and both changes were audited, naming the engineer and why
    assert _audited(corridor.id)[-2:] == [(engineer.audit_name, "pin_plan", "signal works at J2"),
                                          (engineer.audit_name, "unpin_plan", "works finished")]


def _manual(plan, **changes) -> str:
    data = plan_dict(plan)
    for entry in data["intersections"]:
        entry.update(changes)
    return json.dumps(data)


def test_an_override_goes_into_force_as_a_new_version_and_holds_against_batches(traffic, corridor, engineer,
                                                                                 minutes):
    # given
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))
    plan, _ = traffic.current_plan(corridor.id)
    data = plan_dict(plan)
    for entry in data["intersections"]:
        entry["offset_s"] = 0.0  # all in step: what an engineer might try during an incident

    # when
    current = traffic.override(engineer, corridor.id, json.dumps(data), "incident on J3, flush eastbound")

    # then
    assert (current.version, current.plan.source, current.pin.mode) == (2, "manual", PinMode.OVERRIDDEN)
    assert current.plan.reasons[0].code == "override"
    assert all(t.offset_s == 0.0 for t in current.plan.timings)
    assert current.created_by == engineer.audit_name
    # and batches keep coming in without changing it
    traffic.ingest(batch_for(corridor, "b2", minutes(1), per_lane=HEAVIER))
    assert traffic.current_plan(corridor.id)[0].version == 2
    assert _audited(corridor.id)[-1] == (engineer.audit_name, "override_plan", "incident on J3, flush eastbound")


@pytest.mark.parametrize(("phase", "key", "value"), [
    (0, "green_s", 2.0),  # below P1's minimum green
    (2, "coordinated", True),  # the side street's phase does not carry the band
    (0, "coordinated", False),
])
def test_an_override_that_breaks_the_corridor_rules_is_refused_naming_it_and_changes_nothing(
        traffic, corridor, engineer, minutes, phase, key, value):
    # given
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))
    plan, _ = traffic.current_plan(corridor.id)
    data = plan_dict(plan)
    assert data["intersections"][1]["phases"][phase][key] != value
    data["intersections"][1]["phases"][phase][key] = value
    before = _traffic_items()

    # when / then
    with pytest.raises(ValidationFailed) as caught:
        traffic.override(engineer, corridor.id, json.dumps(data), "try it")
    fields = [p.field for p in caught.value.problems]
    assert f"intersections[1].phases[{phase}].{key}" in fields
    assert _traffic_items() == before


@pytest.mark.parametrize("who", [admin, official])
def test_only_traffic_engineers_pin_override_or_unpin(traffic, corridor, minutes, who):
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))
    plan, _ = traffic.current_plan(corridor.id)

    for attempt in (lambda p: traffic.pin(p, corridor.id, 1, "why"),
                    lambda p: traffic.override(p, corridor.id, json.dumps(plan_dict(plan)), "why"),
                    lambda p: traffic.unpin(p, corridor.id, "why")):
        with pytest.raises(PermissionDenied):
            attempt(who())


def test_unpinning_a_corridor_that_is_not_pinned_is_refused(traffic, corridor, engineer, minutes):
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))

    with pytest.raises(InvalidState):
        traffic.unpin(engineer, corridor.id, "why")


def test_pinning_needs_a_reason_and_a_stored_version(traffic, corridor, engineer, minutes):
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))

    with pytest.raises(ValidationFailed):
        traffic.pin(engineer, corridor.id, 1, "  ")
    with pytest.raises(NotFound):
        traffic.pin(engineer, corridor.id, 9, "why")


# --- corridors and status --------------------------------------------------------------------------


def test_creating_a_corridor_is_audited_and_its_id_unique(traffic, engineer):
    corridor = make_corridor()

    traffic.create_corridor(engineer, corridor, purpose="new arterial")

    assert _audited(corridor.id) == [(engineer.audit_name, "", "new arterial")]
    with pytest.raises(AlreadyExists):
        traffic.create_corridor(engineer, corridor)
    with pytest.raises(PermissionDenied):
        traffic.create_corridor(official(), make_corridor().model_copy(update={"id": "x"}))


def test_a_corridor_whose_minimum_greens_fit_no_allowed_cycle_is_refused(traffic, engineer):
    corridor = make_corridor(cycle_max_s=30.0, cycle_min_s=20.0)

    with pytest.raises(NoFeasibleCycle) as caught:
        traffic.create_corridor(engineer, corridor)

    assert "J1" in caught.value.message
    assert _traffic_items() == []


def test_an_initial_plan_is_in_force_from_the_start(traffic, engineer, minutes):
    corridor = make_corridor()
    traffic.create_corridor(engineer, corridor)
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))
    plan, _ = traffic.current_plan(corridor.id)
    other = corridor.model_copy(update={"id": "copy"})

    traffic.create_corridor(engineer, other, initial_plan=plan.model_copy(update={
        "corridor_id": "copy", "version": 0, "source": "imported"}).model_dump_json())

    current = traffic.in_force("copy")
    assert (current.version, current.plan.source) == (0, "imported")
    result = traffic.ingest(batch_for(other, "c1", minutes(0), per_lane=HEAVIER))
    assert result.in_force.version == 1 and result.in_force.plan.inputs.previous_version == 0


def test_status_shows_flows_saturation_bandwidth_and_delay_per_intersection(traffic, corridor, engineer, minutes):
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))

    status = traffic.status(engineer, corridor.id)

    plan = status.current.plan
    assert [i.intersection_id for i in status.aggregates.intersections] == ["J1", "J2", "J3"]
    j1 = status.aggregates.intersections[0]
    assert j1.movement_flows_vph["EB_T"] == pytest.approx(1200.0, rel=0.05)
    assert 0 < j1.degree_of_saturation < 1.2 and j1.critical_lane
    assert j1.expected_delay_s > 0
    assert status.aggregates.expected_delay_s > 0
    assert plan.bandwidth_forward_s > 0
    assert status.last_batch_id == "b1"
    with pytest.raises(PermissionDenied):
        traffic.status(Principal(id="nobody"), corridor.id)


def test_a_plan_and_its_diagram_link(traffic, corridor, engineer, minutes):
    traffic.ingest(batch_for(corridor, "b1", minutes(0)))

    stored = traffic.plan(engineer, corridor.id, 1)
    url = traffic.diagram_url(engineer, stored.diagram_key)

    assert url and "diagrams/" in url and "Signature" in url
    assert traffic.sumo_xml(corridor, stored.plan).count("<tlLogic") == 3


def test_events_announce_a_new_plan_in_force(minutes):
    from sunflower.container import services
    from sunflower.traffic.objects import BatchQueue, TrafficObjects
    from sunflower.traffic.repository import TrafficRepository
    from sunflower.traffic.service import TrafficService

    published = []
    traffic = TrafficService(TrafficRepository(), TrafficObjects(), BatchQueue(), services().audit, utc_now,
                             publish=lambda kind, detail, **_: published.append((kind, detail)))
    corridor = make_corridor()
    traffic.create_corridor(traffic_engineer(), corridor)

    traffic.ingest(batch_for(corridor, "b1", minutes(0)))

    assert [k for k, _ in published] == ["TrafficPlanCreated", "TrafficPlanInForce"]
    assert published[0][1]["version"] == 1 and published[0][1]["inForce"] is True
