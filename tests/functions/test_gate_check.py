"""functions/gate_check.py: a gate's camera frame through API Gateway, and the API's encode invocation."""

import base64
import json
from datetime import timedelta

import pytest
from factories import official, person_row, property_manager, register_device

from sunflower.auth import device_signature
from sunflower.common.clock import utc_now

COMMUNITY = "pf-youxie-xingfu"


@pytest.fixture
def gate_check(model_dir):
    from functions import gate_check

    return gate_check


def _frame_event(events, gate_id: str, secret: str, body: bytes, *, path_suffix: str = "") -> dict:
    path = f"/devices/gates/{gate_id}/check{path_suffix}"
    event = json.loads(json.dumps(events("apigw_http_v2_gate_check.json")).replace("GATE_ID", gate_id))
    event.update(rawPath=path, body=base64.b64encode(body).decode())
    event["requestContext"]["http"]["path"] = path
    event["headers"].update(device_signature.signed_headers(gate_id, secret, "POST", path, body, utc_now()),
                            **{"content-length": str(len(body))})
    return event


def test_a_resident_at_the_gate_gets_a_decision_through_api_gateway(local_cloud, gate_check, lambda_context, events,
                                                                    photo_bytes):
    from sunflower.container import services
    from sunflower.gate.models import ConsentMethod
    from sunflower.gate.service import ConsentInput

    resident = services().registries.register_person(official(), person_row(current_community_id=COMMUNITY), "t")
    person_id = resident.person.id
    services().gate.enroll(property_manager(COMMUNITY), community_id=COMMUNITY, person_id=person_id,
                           photos=[photo_bytes("obama.jpg"), photo_bytes("obama2.jpg")],
                           consent=ConsentInput(person_id, utc_now() - timedelta(minutes=1), ConsentMethod.APP),
                           purpose="enrollment")
    issued = register_device(services().devices, site_id=COMMUNITY)
    event = _frame_event(events, issued.device.id, issued.secret, photo_bytes("obama3.jpg"))

    response = gate_check.handler(event, lambda_context)

    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert (body["decision"], body["personId"], body["reason"], body["method"]) == ("accept", person_id, "MATCH", "face")
    assert body["score"] > 0.45 and body["latencyMs"] > 0


def test_a_replayed_frame_is_refused_and_still_recorded(local_cloud, gate_check, lambda_context, events, photo_bytes):
    from factories import police

    from sunflower.container import services

    issued = register_device(services().devices, site_id=COMMUNITY)
    event = _frame_event(events, issued.device.id, issued.secret, photo_bytes("biden.jpg"))
    first = gate_check.handler(event, lambda_context)

    replay = gate_check.handler(event, lambda_context)

    assert json.loads(first["body"])["reason"] == "EMPTY_GALLERY"
    assert replay["statusCode"] == 401
    assert json.loads(replay["body"])["reason"] == "REPLAYED"
    reasons = [e.reason for e in services().gate.access_events(
        police(), gate_id=issued.device.id, limit=10, start=None, purpose="t").items]
    assert reasons == ["REPLAYED", "EMPTY_GALLERY"]


def test_a_card_through_api_gateway_and_an_unknown_gate(local_cloud, gate_check, lambda_context, events):
    from sunflower.container import services

    issued = register_device(services().devices, site_id=COMMUNITY)
    card = _frame_event(events, issued.device.id, issued.secret, b'{"card": "0000-1111"}', path_suffix="/card")
    stranger = _frame_event(events, "01JUNKNOWNGATE0000000000000", "secret", b'{"card": "0000-1111"}',
                            path_suffix="/card")

    assert json.loads(gate_check.handler(card, lambda_context)["body"])["reason"] == "UNKNOWN_CARD"
    refused = gate_check.handler(stranger, lambda_context)
    assert refused["statusCode"] == 401 and json.loads(refused["body"])["reason"] == "UNKNOWN_GATE"


def test_the_api_asks_the_gate_function_for_templates_and_never_sends_it_anything_else(gate_check, lambda_context,
                                                                                      photo_bytes):
    from sunflower.gate.encoder import results_from_wire

    photos = [photo_bytes("obama.jpg"), photo_bytes("coffee.png")]
    event = {"action": "encode", "photos": [base64.b64encode(p).decode() for p in photos]}

    results = results_from_wire(gate_check.handler(event, lambda_context))

    assert len(results[0].template) == 512 * 4 and results[0].reason is None
    assert results[1].template is None and results[1].reason == "NO_FACE"
