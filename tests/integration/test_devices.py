"""Devices: registration by admins, secrets kept only under KMS, signed requests, rotation, listing."""

import dataclasses
from datetime import timedelta

import pytest
from factories import (
    FakeClock,
    admin,
    auditor,
    authenticate,
    device_service,
    person,
    register_device,
    resident,
    signed_request,
)

from sunflower.audit.models import AuditAction
from sunflower.audit.service import AuditFilter
from sunflower.auth import device_signature as ds
from sunflower.auth.principals import Role
from sunflower.aws.clients import client
from sunflower.common.cursors import CursorCodec
from sunflower.common.errors import NotFound, PermissionDenied, Unauthenticated, ValidationFailed
from sunflower.common.settings import get_settings
from sunflower.container import services
from sunflower.devices.models import Device, DeviceKind, DeviceStatus

pytestmark = pytest.mark.usefixtures("local_cloud")


# --- raw table access: what an operator with DynamoDB access would see -------------------------


def _raw_items() -> list[dict]:
    dynamodb = client("dynamodb")
    pages = dynamodb.get_paginator("scan").paginate(TableName=get_settings().resource("devices"), ConsistentRead=True)
    return [item for page in pages for item in page["Items"]]


def _raw_device(device_id: str) -> dict:
    [item] = [i for i in _raw_items() if i.get("device_id", {}).get("S") == device_id]
    return item


def _nonce_items() -> list[dict]:
    return [i for i in _raw_items() if i["sk"]["S"] == "NONCE"]


def _audit_trail(device_id: str):
    page = services().audit.entries(
        auditor(), AuditFilter(subject_type="device", subject_id=device_id), limit=100, start=None
    )
    return page.items


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def devices(clock):
    """A device service on the embedded cloud with a clock the test controls."""
    return device_service(clock, skew_s=300, grace_s=24 * 3600)


# --- registration ------------------------------------------------------------------------------


def test_an_admin_registers_a_device_and_gets_its_secret():
    # given an administrator
    boss = admin()
    # when they register a gate
    issued = services().devices.register(boss, kind=DeviceKind.GATE, name="  North gate 1 ", site_id="community-7")
    # then the device is active, stored, and comes with a strong secret
    assert issued.device.status is DeviceStatus.ACTIVE
    assert issued.device.name == "North gate 1"
    assert issued.device.site_id == "community-7"
    assert len(issued.secret) >= 40
    assert services().devices.get_many(boss, [issued.device.id]) == {issued.device.id: issued.device}


@pytest.mark.parametrize("who", [resident(), auditor(), person(Role.POLICE, Role.OFFICIAL), person()])
def test_only_admins_register_devices_and_a_refusal_writes_nothing(who):
    # when someone who is not an administrator tries to register a device
    with pytest.raises(PermissionDenied, match="administrators"):
        services().devices.register(who, kind=DeviceKind.GATE, name="Gate", site_id="community-7")
    # then neither a device nor an audit entry was written
    assert _raw_items() == []
    assert services().audit.verify().entries_checked == 0


@pytest.mark.parametrize(
    ("name", "site_id", "field"),
    [
        ("", "community-7", "name"),
        ("   ", "community-7", "name"),
        ("x" * 121, "community-7", "name"),
        ("Gate", "", "siteId"),
        ("Gate", "  ", "siteId"),
        ("Gate", "s" * 121, "siteId"),
    ],
)
def test_an_invalid_name_or_site_fails_naming_the_field_and_writes_nothing(name, site_id, field):
    with pytest.raises(ValidationFailed) as caught:
        services().devices.register(admin(), kind=DeviceKind.SENSOR, name=name, site_id=site_id)
    assert [p.field for p in caught.value.problems] == [field]
    assert _raw_items() == []
    assert services().audit.verify().entries_checked == 0


def test_names_of_exactly_120_characters_are_accepted():
    issued = services().devices.register(admin(), kind=DeviceKind.CAMERA, name="n" * 120, site_id="s" * 120)
    assert issued.device.name == "n" * 120


def test_the_secret_is_stored_only_encrypted_under_kms_bound_to_the_device():
    # given a freshly registered device and the secret it was given
    issued = register_device(services().devices)
    # when an operator reads the devices table directly
    items = _raw_items()
    # then the plaintext secret appears nowhere in it
    assert issued.secret not in repr(items)
    assert all(issued.secret.encode() not in value.get("B", b"") for item in items for value in item.values())
    # and the stored blob is KMS ciphertext that opens only with this device's id as context
    blob = _raw_device(issued.device.id)["secret"]["B"]
    kms = client("kms")
    opened = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"device_id": issued.device.id})["Plaintext"]
    assert opened == issued.secret.encode()
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"device_id": "another-device"})


def test_the_secret_cannot_be_read_back_after_it_was_issued():
    # given a registered device
    boss = admin()
    issued = register_device(services().devices, by=boss)
    # then nothing the service returns about devices carries a secret
    assert "secret" not in {f.name for f in dataclasses.fields(Device)}
    listed = services().devices.page(boss, kind=None, limit=10, start=None).items
    assert issued.secret not in repr(listed)
    assert issued.secret not in repr(services().devices.get_many(boss, [issued.device.id]))


# --- signed requests ---------------------------------------------------------------------------


def test_a_correctly_signed_request_is_accepted(devices, clock):
    # given a registered device that signs a request with its secret at the server's time
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock())
    # when the server authenticates it
    device = authenticate(devices, request)
    # then it is that device, and the nonce is now used
    assert device.id == issued.device.id
    assert len(_nonce_items()) == 1


@pytest.mark.parametrize("drift_s", [-300, 300])
def test_a_clock_off_by_exactly_the_allowed_skew_is_accepted(devices, clock, drift_s):
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock.now + timedelta(seconds=drift_s))
    assert authenticate(devices, request).id == issued.device.id


@pytest.mark.parametrize("missing", ds.HEADERS)
def test_a_request_missing_a_header_is_unauthenticated_naming_it(devices, clock, missing):
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock()).without_header(missing)
    with pytest.raises(Unauthenticated, match=f"missing header\\(s\\) {missing}"):
        authenticate(devices, request)
    _assert_no_trace(issued.device.id)


def test_a_request_without_any_signature_headers_names_them_all(devices):
    with pytest.raises(Unauthenticated) as caught:
        devices.authenticate("POST", "/gate/check", {"content-type": "application/json"}, b"{}")
    assert all(h in caught.value.message for h in ds.HEADERS)


@pytest.mark.parametrize("drift_s", [-301, 301, -3600, 86400])
def test_a_request_signed_too_far_from_server_time_is_unauthenticated(devices, clock, drift_s):
    # given a device whose clock is off by more than the 300 s the server allows
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock.now + timedelta(seconds=drift_s))
    # then the request is refused, saying by how much and what the limit is
    with pytest.raises(Unauthenticated) as caught:
        authenticate(devices, request)
    assert f"{abs(drift_s)} s from server time" in caught.value.message
    assert "at most 300 s" in caught.value.message
    _assert_no_trace(issued.device.id)


def test_a_timestamp_that_is_not_unix_seconds_is_unauthenticated(devices, clock):
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock()).with_header(
        ds.TIMESTAMP, "2025-03-01T08:00:00Z"
    )
    with pytest.raises(Unauthenticated, match="must be Unix seconds"):
        authenticate(devices, request)


@pytest.mark.parametrize("nonce", ["short", "n" * 65])
def test_a_nonce_of_the_wrong_length_is_unauthenticated(devices, clock, nonce):
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock()).with_header(ds.NONCE, nonce)
    with pytest.raises(Unauthenticated, match="nonce must be 16 to 64 characters"):
        authenticate(devices, request)
    _assert_no_trace(issued.device.id)


def test_a_request_signed_with_the_wrong_secret_is_unauthenticated(devices, clock):
    issued = register_device(devices)
    request = signed_request(issued.device.id, "a-secret-the-device-never-had", at=clock())
    with pytest.raises(Unauthenticated, match="signature does not match"):
        authenticate(devices, request)
    _assert_no_trace(issued.device.id)


def test_another_devices_secret_does_not_sign_for_this_device(devices, clock):
    mine, theirs = register_device(devices), register_device(devices)
    request = signed_request(mine.device.id, theirs.secret, at=clock())
    with pytest.raises(Unauthenticated, match="signature does not match"):
        authenticate(devices, request)


@pytest.mark.parametrize(
    "tamper",
    [
        {"body": b'{"frame":"f-001","lane":3}'},
        {"body": b""},
        {"path": "/gate/open"},
        {"path": "/gate/check?force=1"},
        {"method": "PUT"},
    ],
    ids=lambda t: f"{next(iter(t))}-{t[next(iter(t))]!r}",
)
def test_a_request_changed_after_signing_is_unauthenticated(devices, clock, tamper):
    # given a correctly signed request that is changed in transit
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock()).but(**tamper)
    # then the server refuses it and keeps no trace of it
    with pytest.raises(Unauthenticated, match=r"signature does not match \(wrong secret, or body/path changed"):
        authenticate(devices, request)
    _assert_no_trace(issued.device.id)


def test_a_rejected_request_leaves_its_nonce_unused(devices, clock):
    # given a request refused because its body was tampered with
    issued = register_device(devices)
    genuine = signed_request(issued.device.id, issued.secret, at=clock())
    with pytest.raises(Unauthenticated):
        authenticate(devices, genuine.but(body=b"tampered"))
    # then the genuine request with the same nonce is still accepted
    assert authenticate(devices, genuine).id == issued.device.id


def test_a_signature_in_non_ascii_garbage_is_unauthenticated_not_a_crash(devices, clock):
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock()).with_header(ds.SIGNATURE, "签名" * 32)
    with pytest.raises(Unauthenticated, match="signature does not match"):
        authenticate(devices, request)


def test_an_unknown_device_is_unauthenticated(devices, clock):
    request = signed_request("01JUNKNOWNDEVICE0000000000", "whatever-secret", at=clock())
    with pytest.raises(Unauthenticated, match="unknown device 01JUNKNOWNDEVICE0000000000"):
        authenticate(devices, request)
    assert _nonce_items() == []


def test_a_disabled_device_is_unauthenticated_even_with_a_valid_signature(devices, clock):
    # given a device an admin has disabled
    boss = admin()
    issued = register_device(devices, by=boss)
    devices.set_status(boss, issued.device.id, DeviceStatus.DISABLED)
    # when it sends a correctly signed request
    request = signed_request(issued.device.id, issued.secret, at=clock())
    # then it is refused because it is disabled
    with pytest.raises(Unauthenticated, match=f"device {issued.device.id} is disabled"):
        authenticate(devices, request)
    _assert_no_trace(issued.device.id)
    # and once enabled again the same request is accepted
    devices.set_status(boss, issued.device.id, DeviceStatus.ACTIVE)
    assert authenticate(devices, request).id == issued.device.id


def test_a_replayed_request_is_unauthenticated(devices, clock):
    # given a request the server has accepted
    issued = register_device(devices)
    request = signed_request(issued.device.id, issued.secret, at=clock())
    authenticate(devices, request)
    # when the very same request arrives again a little later
    clock.advance(seconds=30)
    # then it is refused as a replay
    with pytest.raises(Unauthenticated, match="replayed request: this nonce was already used"):
        authenticate(devices, request)


def test_the_same_nonce_from_two_devices_is_not_a_replay(devices, clock):
    one, two = register_device(devices), register_device(devices)
    first = signed_request(one.device.id, one.secret, at=clock())
    nonce = first.headers[ds.NONCE]
    at = first.headers[ds.TIMESTAMP]
    second_headers = {
        ds.DEVICE_ID: two.device.id,
        ds.TIMESTAMP: at,
        ds.NONCE: nonce,
        ds.SIGNATURE: ds.sign(two.secret, first.method, first.path, at, nonce, first.body),
    }
    authenticate(devices, first)
    assert devices.authenticate(first.method, first.path, second_headers, first.body).id == two.device.id


def test_a_heartbeat_after_authentication_records_last_seen_and_firmware(devices, clock):
    issued = register_device(devices)
    device = authenticate(devices, signed_request(issued.device.id, issued.secret, at=clock()))
    seen = devices.heartbeat(device, "fw-2.4.1")
    stored = devices.get_many(admin(), [issued.device.id])[issued.device.id]
    assert stored.last_seen_at == seen == clock()
    assert stored.firmware == "fw-2.4.1"


def _assert_no_trace(device_id: str) -> None:
    """A refused request claimed no nonce and did not mark the device as seen."""
    assert _nonce_items() == []
    item = _raw_device(device_id)
    assert "last_seen_at" not in item


# --- rotation ----------------------------------------------------------------------------------


def test_after_rotation_the_new_secret_signs_and_the_old_one_works_only_for_the_grace_period(devices, clock):
    # given a device whose secret an admin rotates
    boss = admin()
    issued = register_device(devices, by=boss)
    rotated = devices.rotate_secret(boss, issued.device.id)
    device_id = issued.device.id
    assert rotated.secret != issued.secret
    assert rotated.device.secret_rotated_at == clock()

    # then the new secret works at once
    assert authenticate(devices, signed_request(device_id, rotated.secret, at=clock())).id == device_id
    # and the old one still works towards the end of the 24 h grace period
    clock.advance(hours=23, minutes=59)
    assert authenticate(devices, signed_request(device_id, issued.secret, at=clock())).id == device_id

    # when the grace period is over
    clock.advance(minutes=1)
    # then the old secret is refused and the new one keeps working
    with pytest.raises(Unauthenticated, match="signature does not match"):
        authenticate(devices, signed_request(device_id, issued.secret, at=clock()))
    assert authenticate(devices, signed_request(device_id, rotated.secret, at=clock())).id == device_id


def test_rotating_twice_retires_the_first_secret_at_once(devices, clock):
    boss = admin()
    first = register_device(devices, by=boss)
    second = devices.rotate_secret(boss, first.device.id)
    third = devices.rotate_secret(boss, first.device.id)
    device_id = first.device.id
    with pytest.raises(Unauthenticated, match="signature does not match"):
        authenticate(devices, signed_request(device_id, first.secret, at=clock()))
    assert authenticate(devices, signed_request(device_id, second.secret, at=clock())).id == device_id
    assert authenticate(devices, signed_request(device_id, third.secret, at=clock())).id == device_id


def test_the_rotated_secret_is_stored_only_encrypted_too(devices):
    boss = admin()
    issued = register_device(devices, by=boss)
    rotated = devices.rotate_secret(boss, issued.device.id)
    items = repr(_raw_items())
    assert rotated.secret not in items
    assert issued.secret not in items


def test_only_admins_rotate_secrets_or_change_status(devices):
    issued = register_device(devices)
    before = _raw_device(issued.device.id)
    with pytest.raises(PermissionDenied):
        devices.rotate_secret(resident(), issued.device.id)
    with pytest.raises(PermissionDenied):
        devices.set_status(auditor(), issued.device.id, DeviceStatus.DISABLED)
    assert _raw_device(issued.device.id) == before
    assert [e.event.purpose for e in _audit_trail(issued.device.id)] == ["register device"]


def test_rotating_or_disabling_an_unknown_device_is_not_found(devices):
    with pytest.raises(NotFound):
        devices.rotate_secret(admin(), "01JUNKNOWNDEVICE0000000000")
    with pytest.raises(NotFound):
        devices.set_status(admin(), "01JUNKNOWNDEVICE0000000000", DeviceStatus.DISABLED)
    assert services().audit.verify().entries_checked == 0


# --- listing -----------------------------------------------------------------------------------


def test_devices_are_listed_page_by_page_through_opaque_cursors():
    # given seven devices of several kinds
    boss = admin()
    kinds = [DeviceKind.GATE, DeviceKind.CAMERA, DeviceKind.SENSOR, DeviceKind.GATE, DeviceKind.SIGNAL_CONTROLLER]
    registered = {register_device(services().devices, by=boss, kind=k).device.id for k in kinds * 2}
    codec = CursorCodec(get_settings().cursor_secret)
    # when an admin walks the listing three at a time, passing each cursor back
    seen, pages, cursor = [], 0, None
    while True:
        page = services().devices.page(boss, kind=None, limit=3, start=codec.decode(cursor))
        assert len(page.items) <= 3
        seen += [d.id for d in page.items]
        pages += 1
        cursor = codec.encode(page.next_key)
        if cursor is None:
            break
        assert pages < 10, "the listing does not end"
    # then every device is listed exactly once, across several pages
    assert sorted(seen) == sorted(registered)
    assert pages >= 4


def test_devices_can_be_listed_by_kind():
    boss = admin()
    gates = {register_device(services().devices, by=boss, kind=DeviceKind.GATE).device.id for _ in range(3)}
    register_device(services().devices, by=boss, kind=DeviceKind.CAMERA)
    register_device(services().devices, by=boss, kind=DeviceKind.SENSOR)
    page = services().devices.page(boss, kind=DeviceKind.GATE, limit=20, start=None)
    assert {d.id for d in page.items} == gates
    assert page.next_key is None


def test_only_admins_list_devices():
    register_device(services().devices)
    with pytest.raises(PermissionDenied):
        services().devices.page(resident(), kind=None, limit=20, start=None)
    with pytest.raises(PermissionDenied):
        services().devices.get_many(auditor(), [])


# --- audit -------------------------------------------------------------------------------------


def test_every_admin_change_to_a_device_leaves_an_audit_entry(devices):
    # given an admin who registers, rotates, disables and re-enables a device
    boss = admin(id="ops-lead")
    issued = register_device(devices, by=boss)
    device_id = issued.device.id
    devices.rotate_secret(boss, device_id)
    devices.set_status(boss, device_id, DeviceStatus.DISABLED)
    devices.set_status(boss, device_id, DeviceStatus.ACTIVE)
    # then the audit log names who did what to which device and why, newest first
    trail = _audit_trail(device_id)
    assert [(e.event.action, e.event.purpose) for e in trail] == [
        (AuditAction.UPDATE, "set device active"),
        (AuditAction.UPDATE, "set device disabled"),
        (AuditAction.UPDATE, "rotate device secret"),
        (AuditAction.CREATE, "register device"),
    ]
    assert {e.event.actor for e in trail} == {"person:ops-lead"}
    assert {e.event.actor_roles for e in trail} == {("admin",)}
    assert {(e.event.subject_type, e.event.subject_id) for e in trail} == {("device", device_id)}
    # and nothing secret went into the log
    assert issued.secret not in repr(trail)


def test_authenticating_a_device_is_not_an_admin_change_and_is_not_audited(devices, clock):
    issued = register_device(devices)
    authenticate(devices, signed_request(issued.device.id, issued.secret, at=clock()))
    assert len(_audit_trail(issued.device.id)) == 1
