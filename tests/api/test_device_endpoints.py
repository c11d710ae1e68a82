"""Signed device calls under /devices/: the signature, the clock and the nonce decide, and refusals write nothing."""

import json
from datetime import timedelta

import pytest

from sunflower.auth import device_signature
from sunflower.common.clock import utc_now

PATH = "/devices/heartbeat"


@pytest.fixture
def device(api):
    admin = api.token("admin")
    issued = api.data(
        "RegisterDevice", {"input": {"kind": "GATE", "name": "东门", "siteId": "pf-youxie-xingfu"}}, token=admin
    )["registerDevice"]
    from strawberry.relay import from_base64

    return {"id": from_base64(issued["device"]["id"])[1], "global_id": issued["device"]["id"], "secret": issued["secret"]}


def _last_seen(api, device) -> tuple:
    node = api.data("Devices", token=api.token("admin"))["devices"]["edges"][0]["node"]
    return node["lastSeenAt"], node["firmware"]


def _call(api, device, body: bytes, *, secret=None, when=None, path=PATH, headers=None):
    signed = device_signature.signed_headers(
        device["id"], secret or device["secret"], "POST", path, body, when or utc_now()
    )
    return api.client.post(PATH, content=body, headers={**signed, **(headers or {}), "content-type": "application/json"})


def test_a_signed_heartbeat_is_accepted_and_recorded(api, device):
    response = _call(api, device, json.dumps({"firmware": "2.4.1"}).encode())

    assert response.status_code == 200, response.text
    assert response.json()["deviceId"] == device["id"]
    seen, firmware = _last_seen(api, device)
    assert seen is not None and firmware == "2.4.1"


def test_an_unsigned_call_is_refused_naming_the_missing_headers_and_writes_nothing(api, device):
    response = api.client.post(PATH, json={"firmware": "9"})

    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert "unsigned" in message and "x-sunflower-signature" in message
    assert _last_seen(api, device) == (None, None)


def test_a_replayed_call_is_refused_and_changes_nothing(api, device):
    body = json.dumps({"firmware": "1.0"}).encode()
    signed = device_signature.signed_headers(device["id"], device["secret"], "POST", PATH, body, utc_now())
    first = api.client.post(PATH, content=body, headers=signed)
    before = _last_seen(api, device)

    replay = api.client.post(PATH, content=body, headers=signed)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert "replayed" in replay.json()["error"]["message"]
    assert _last_seen(api, device) == before


def test_a_call_signed_with_the_wrong_secret_is_refused(api, device):
    response = _call(api, device, b"{}", secret="not-the-secret")

    assert response.status_code == 401
    assert "signature does not match" in response.json()["error"]["message"]
    assert _last_seen(api, device) == (None, None)


def test_a_body_changed_in_transit_is_refused(api, device):
    signed = device_signature.signed_headers(device["id"], device["secret"], "POST", PATH, b'{"firmware": "1"}', utc_now())

    response = api.client.post(PATH, content=b'{"firmware": "666"}', headers=signed)

    assert response.status_code == 401
    assert _last_seen(api, device) == (None, None)


def test_a_call_from_a_clock_more_than_300_s_off_is_refused(api, device):
    response = _call(api, device, b"{}", when=utc_now() - timedelta(seconds=301))

    assert response.status_code == 401
    assert "300 s" in response.json()["error"]["message"]


def test_a_disabled_device_is_refused(api, device):
    api.data("SetDeviceStatus", {"id": device["global_id"], "status": "DISABLED"}, token=api.token("admin"))

    response = _call(api, device, b"{}")

    assert response.status_code == 401
    assert "disabled" in response.json()["error"]["message"]


def test_a_malformed_body_from_a_genuine_device_gets_a_clear_error_and_writes_nothing(api, device):
    response = _call(api, device, b"[1, 2")

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    assert _last_seen(api, device) == (None, None)


def test_after_rotation_the_new_secret_works_and_the_old_one_still_does_during_the_grace_period(api, device):
    rotated = api.data("RotateDeviceSecret", {"id": device["global_id"]}, token=api.token("admin"))["rotateDeviceSecret"]

    assert _call(api, device, b"{}", secret=rotated["secret"]).status_code == 200
    assert _call(api, device, b"{}").status_code == 200


def test_health_check(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
