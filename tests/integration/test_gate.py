"""The gate end to end in the embedded cloud: enrollment with consent, checks, events, withdrawal."""

import threading
from datetime import timedelta

import pytest
from factories import admin, person_row, police, property_manager, register_device, table_items

from sunflower.common.clock import utc_now
from sunflower.common.errors import PermissionDenied, ValidationFailed
from sunflower.gate.models import ConsentMethod, GateReason, Method, Verdict
from sunflower.gate.service import ConsentInput
from sunflower.registries.models import PersonStatus

COMMUNITY = "pf-youxie-xingfu"
OTHER = "pf-xinjiang-hongqi"


@pytest.fixture
def gate(local_cloud, model_dir):
    from sunflower.container import services

    return services().gate


@pytest.fixture
def registries(local_cloud):
    from sunflower.container import services

    return services().registries


@pytest.fixture
def resident(registries):
    """A person living in COMMUNITY, as the population registry knows them."""
    from factories import official

    def make(community_id: str = COMMUNITY) -> str:
        view = registries.register_person(official(), person_row(current_community_id=community_id), "gate test")
        return view.person.id

    return make


@pytest.fixture
def gate_device(local_cloud):
    from sunflower.container import services

    return register_device(services().devices, site_id=COMMUNITY).device


def consent(person_id: str, **changes) -> ConsentInput:
    values = {"given_by": person_id, "given_at": utc_now() - timedelta(minutes=3), "method": ConsentMethod.IN_PERSON}
    values.update(changes)
    return ConsentInput(**values)


def enroll(gate, person_id, photo_bytes, *names, community_id=COMMUNITY):
    return gate.enroll(property_manager(community_id), community_id=community_id, person_id=person_id,
                       photos=[photo_bytes(n) for n in names], consent=consent(person_id), purpose="resident enrollment")


def test_an_enrolled_resident_is_let_in_by_face_and_the_event_is_kept(gate, resident, gate_device, photo_bytes):
    obama = resident()
    enroll(gate, obama, photo_bytes, "obama.jpg", "obama2.jpg")

    result = gate.check_face(gate_device, photo_bytes("obama3.jpg"))

    assert (result.event.decision, result.event.person_id, result.event.reason) == (Verdict.ACCEPT, obama, "MATCH")
    assert result.event.score > 0.45 and result.event.latency_ms > 0
    by_gate = gate.access_events(police(), gate_id=gate_device.id, limit=10, start=None, purpose="patrol")
    by_person = gate.access_events(police(), person_id=obama, limit=10, start=None, purpose="patrol")
    assert [e.id for e in by_gate.items] == [e.id for e in by_person.items] == [result.event.id]


def test_the_table_holds_sealed_templates_and_consent_never_a_photo(gate, resident, photo_bytes):
    obama = resident()
    photo = photo_bytes("obama.jpg")

    enroll(gate, obama, photo_bytes, "obama.jpg")

    [item] = [i for i in table_items("gate") if i["sk"] == f"ENROLLMENT#{obama}"]
    sealed = bytes(item["templates"])
    assert photo[:2000] not in sealed and len(sealed) < 8000  # one 2 KB template, sealed; not a photo
    assert item["consent_method"] == "in_person" and item["consent_given_by"] == obama


def test_a_stranger_is_refused_and_so_is_a_frame_without_a_face(gate, resident, gate_device, photo_bytes):
    enroll(gate, resident(), photo_bytes, "obama.jpg")

    stranger = gate.check_face(gate_device, photo_bytes("biden.jpg"))
    no_face = gate.check_face(gate_device, photo_bytes("coffee.png"))
    not_an_image = gate.check_face(gate_device, b"GIF89a this is not an image")

    assert (stranger.event.decision, stranger.event.reason) == (Verdict.REJECT, "NO_MATCH")
    assert stranger.event.person_id is None
    assert no_face.event.reason == "NO_FACE"
    assert not_an_image.event.reason == "NOT_AN_IMAGE"
    events = gate.access_events(police(), community_id=COMMUNITY, limit=10, start=None, purpose="patrol").items
    assert {e.reason for e in events} == {"NO_MATCH", "NO_FACE", "NOT_AN_IMAGE"}


def test_withdrawn_consent_deletes_the_templates_and_the_next_check_fails(gate, resident, gate_device, photo_bytes):
    from sunflower.container import services

    obama = resident()
    enroll(gate, obama, photo_bytes, "obama.jpg", "obama2.jpg")
    assert gate.check_face(gate_device, photo_bytes("obama3.jpg")).event.decision is Verdict.ACCEPT

    from factories import person as principal

    from sunflower.auth.principals import Role

    assert gate.withdraw(principal(Role.RESIDENT, id=obama), community_id=COMMUNITY, person_id=obama,
                         purpose="I withdraw my consent")
    services().gate._cache._refresh_s = 0

    after = gate.check_face(gate_device, photo_bytes("obama3.jpg"))
    assert (after.event.decision, after.event.reason) == (Verdict.REJECT, "EMPTY_GALLERY")
    assert gate.enrollment(admin(), COMMUNITY, obama) is None
    objects = local_cloud_objects("galleries")
    assert len(objects) == 1, "the version that held the templates is deleted"


def local_cloud_objects(bucket: str) -> list[str]:
    from sunflower.aws import storage
    from sunflower.aws.clients import client

    listing = client("s3").list_objects_v2(Bucket=storage.bucket(bucket))
    return [o["Key"] for o in listing.get("Contents", [])]


def test_moving_out_removes_the_enrollment_and_the_gate_refuses_at_once(gate, registries, resident,
                                                                             gate_device, photo_bytes):
    from factories import official

    obama = resident()
    enroll(gate, obama, photo_bytes, "obama.jpg", "obama2.jpg")
    assert gate.check_face(gate_device, photo_bytes("obama3.jpg")).event.decision is Verdict.ACCEPT  # gallery warm

    registries.update_person(official(), obama, {"current_community_id": OTHER, "current_community": "红旗社区"},
                             "moved house")

    assert gate.enrollment(admin(), COMMUNITY, obama) is None
    after = gate.check_face(gate_device, photo_bytes("obama3.jpg"))
    assert (after.event.decision, after.event.reason) == (Verdict.REJECT, "EMPTY_GALLERY")


def test_a_missed_move_out_is_caught_at_the_gate_and_the_templates_go(gate, registries, resident, gate_device,
                                                                      photo_bytes):
    from factories import official

    obama = resident()
    enroll(gate, obama, photo_bytes, "obama.jpg")
    registries._residency_listeners.clear()
    registries.update_person(official(), obama, {"current_community_id": OTHER, "current_community": "红旗社区"},
                             "moved house")
    assert gate.enrollment(admin(), COMMUNITY, obama) is not None

    refused = gate.check_face(gate_device, photo_bytes("obama2.jpg"))

    assert refused.event.reason == GateReason.NOT_RESIDENT
    assert gate.enrollment(admin(), COMMUNITY, obama) is None


def test_enrollment_needs_a_resident_a_lawful_consent_and_one_face_per_photo(gate, resident, photo_bytes):
    obama = resident()
    elsewhere = resident(OTHER)
    manager = property_manager(COMMUNITY)

    def attempt(person_id=obama, by=manager, photos=("obama.jpg",), **consent_changes):
        with pytest.raises((ValidationFailed, PermissionDenied)) as caught:
            gate.enroll(by, community_id=COMMUNITY, person_id=person_id, photos=[photo_bytes(p) for p in photos],
                        consent=consent(person_id, **consent_changes), purpose="enrollment")
        return caught.value

    assert "not a current resident" in attempt(person_id=elsewhere).message
    assert isinstance(attempt(by=property_manager(OTHER)), PermissionDenied)
    assert attempt(method=ConsentMethod.WRITTEN).problems[0].field == "consent.reference"
    assert attempt(given_at=utc_now() + timedelta(days=1)).problems[0].field == "consent.givenAt"
    no_face = attempt(photos=("obama.jpg", "coffee.png"))
    assert [(p.field, p.message.split(":")[0]) for p in no_face.problems] == [("photos[1]", "NO_FACE")]
    mixed = attempt(photos=("obama.jpg", "biden.jpg"))
    assert "same person" in mixed.problems[0].message
    assert gate.enrollment(admin(), COMMUNITY, obama) is None


def test_two_enrollments_at_once_both_land_in_the_gallery(gate, resident, photo_bytes):
    from sunflower.container import services

    people = [resident(), resident()]
    photos = {people[0]: "obama.jpg", people[1]: "biden.jpg"}
    errors = []

    def run(person_id):
        try:
            enroll(gate, person_id, photo_bytes, photos[person_id])
        except Exception as exc:  # noqa: BLE001  reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    version, gallery = services().gate._galleries.load(COMMUNITY)
    assert version == 2 and sorted(gallery.persons) == sorted(people)


def test_cards_and_pins_open_for_residents_and_wrong_pins_lock_the_keypad(gate, resident, gate_device):
    manager = property_manager(COMMUNITY)
    tenant = resident()
    gate.issue_card(manager, community_id=COMMUNITY, person_id=tenant, card_number="a1b2-c3d4", purpose="card")
    gate.set_pin(manager, community_id=COMMUNITY, person_id=tenant, pin="482913", purpose="pin")

    assert gate.check_card(gate_device, "A1B2-C3D4").event.person_id == tenant
    assert gate.check_card(gate_device, "FFFF-0000").event.reason == GateReason.UNKNOWN_CARD
    assert gate.check_pin(gate_device, "482913").event.decision is Verdict.ACCEPT
    reasons = [gate.check_pin(gate_device, "000001").event.reason for _ in range(6)]
    assert reasons == [GateReason.WRONG_PIN] * 5 + [GateReason.PIN_LOCKED]
    assert gate.check_pin(gate_device, "482913").event.reason == GateReason.PIN_LOCKED
    with pytest.raises(ValidationFailed):
        gate.set_pin(manager, community_id=COMMUNITY, person_id=tenant, pin="123456", purpose="pin")


def test_a_visitor_pass_opens_for_its_uses_and_window_only(gate, resident, gate_device):
    from factories import person as principal

    from sunflower.auth.principals import Role

    host = resident()
    now = utc_now()
    issued = gate.issue_pass(principal(Role.RESIDENT, id=host), community_id=COMMUNITY, host_person_id=None,
                             visitor_name="王阿姨", valid_from=now - timedelta(minutes=1),
                             valid_until=now + timedelta(hours=4), max_uses=2)
    later = gate.issue_pass(property_manager(COMMUNITY), community_id=COMMUNITY, host_person_id=host,
                            visitor_name="快递", valid_from=now + timedelta(hours=1),
                            valid_until=now + timedelta(hours=2), max_uses=1)

    reasons = [gate.check_pass(gate_device, issued.code).event.reason for _ in range(3)]

    assert reasons == [GateReason.MATCH, GateReason.MATCH, GateReason.PASS_USED_UP]
    assert gate.check_pass(gate_device, later.code).event.reason == GateReason.PASS_NOT_YET_VALID
    assert gate.check_pass(gate_device, "NOSUCHPASS").event.reason == GateReason.UNKNOWN_PASS
    gate.revoke_pass(principal(Role.RESIDENT, id=host), later.code)
    assert gate.check_pass(gate_device, later.code).event.reason == GateReason.PASS_REVOKED
    with pytest.raises(PermissionDenied):
        gate.issue_pass(principal(Role.RESIDENT, id=resident(OTHER)), community_id=COMMUNITY, host_person_id=host,
                        visitor_name="x", valid_from=now, valid_until=now + timedelta(hours=1), max_uses=1)


def test_a_watchlisted_resident_raises_an_alert_for_the_police_only(gate, registries, resident, gate_device,
                                                                    photo_bytes):
    obama = resident()
    enroll(gate, obama, photo_bytes, "obama.jpg")
    registries.set_watchlist(police(), obama, True, "wanted for questioning", "investigation")

    result = gate.check_face(gate_device, photo_bytes("obama2.jpg"))

    alerts = gate.alerts(police(), community_id=COMMUNITY, since=None, limit=10, start=None).items
    assert [(a.event_id, a.person_id) for a in alerts] == [(result.event.id, obama)]
    with pytest.raises(PermissionDenied):
        gate.alerts(property_manager(COMMUNITY), community_id=COMMUNITY, since=None, limit=10, start=None)


def test_events_are_for_the_community_the_police_and_the_person(gate, resident, gate_device):
    from factories import community_staff
    from factories import person as principal

    from sunflower.auth.principals import Role

    tenant = resident()
    gate.check_card(gate_device, "NOPE-0001")
    own = {"limit": 10, "start": None, "purpose": "duty"}

    assert gate.access_events(community_staff(COMMUNITY), community_id=COMMUNITY, **own).items
    assert gate.access_events(property_manager(COMMUNITY), gate_id=gate_device.id, **own).items
    for viewer, kwargs in [(property_manager(OTHER), {"community_id": COMMUNITY}),
                           (community_staff(OTHER), {"gate_id": gate_device.id}),
                           (property_manager(COMMUNITY), {"person_id": tenant})]:
        with pytest.raises(PermissionDenied):
            gate.access_events(viewer, **kwargs, **own)
    assert gate.access_events(principal(Role.RESIDENT, id=tenant), person_id=tenant, **own).items == []


def test_every_event_expires_after_the_retention_and_reaches_the_bus(gate, gate_device):
    import json

    from sunflower.aws.clients import client
    from sunflower.common.settings import get_settings

    sqs, bus = client("sqs"), get_settings().resource("bus")
    queue = sqs.create_queue(QueueName="gate-events-test")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client("events").put_rule(Name="gate-events", EventBusName=bus,
                              EventPattern=json.dumps({"detail-type": ["AccessEvent"]}))
    client("events").put_targets(Rule="gate-events", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    result = gate.check_card(gate_device, "NOPE-0002")

    [item] = [i for i in table_items("gate") if i.get("event_id") == result.event.id]
    kept_days = (int(item["expires_at"]) - result.event.at.timestamp()) / 86400
    assert round(kept_days) == 180
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert (detail["eventId"], detail["reason"], detail["method"]) == (result.event.id, "UNKNOWN_CARD", "card")


def test_a_device_that_is_not_a_gate_gets_a_refusal_not_a_crash(gate, local_cloud):
    from sunflower.container import services
    from sunflower.devices.models import DeviceKind

    camera = register_device(services().devices, kind=DeviceKind.CAMERA, site_id=COMMUNITY).device

    assert gate.check_card(camera, "A1B2-C3D4").event.reason == GateReason.NOT_A_GATE
    assert gate.refused("no-such-gate", Method.FACE, GateReason.UNKNOWN_GATE).event.community_id is None


def test_the_hourly_reconciliation_withdraws_whoever_left_unnoticed(gate, registries, resident, photo_bytes):
    from factories import official

    staying, leaving = resident(), resident()
    enroll(gate, staying, photo_bytes, "obama.jpg")
    enroll(gate, leaving, photo_bytes, "biden.jpg")
    registries._residency_listeners.clear()
    registries.change_person_status(official(), leaving, PersonStatus.DECEASED, "death registered", "registry update")

    assert gate.reconcile() == {COMMUNITY: 1}

    assert gate.enrollment(admin(), COMMUNITY, leaving) is None
    assert gate.enrollment(admin(), COMMUNITY, staying) is not None
    assert gate.reconcile() == {COMMUNITY: 0}
