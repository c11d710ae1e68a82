"""Device administration through GraphQL: admins register, list, rotate and disable devices."""

import boto3

from sunflower.common.settings import get_settings


def _device_items() -> list[dict]:
    table = get_settings().resource("devices")
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return [i for i in items if i["pk"]["S"].startswith("DEVICE#")]


def _register(api, token, name="东门闸机", kind="GATE", site="pf-youxie-xingfu"):
    return api.data("RegisterDevice", {"input": {"kind": kind, "name": name, "siteId": site}}, token=token)[
        "registerDevice"
    ]


def test_given_an_admin_when_registering_a_device_then_it_is_listed_and_its_secret_shown_once(api):
    admin = api.token("admin")

    issued = _register(api, admin)

    assert issued["__typename"] == "DeviceSecretIssued"
    assert len(issued["secret"]) >= 40
    listed = api.data("Devices", token=admin)["devices"]["edges"]
    assert [e["node"]["name"] for e in listed] == ["东门闸机"]
    assert "secret" not in listed[0]["node"]
    node = api.data("Node", {"id": issued["device"]["id"]}, token=admin)["node"]
    assert node == {"__typename": "Device", "id": issued["device"]["id"], "name": "东门闸机", "kind": "GATE"}


def test_given_a_non_admin_when_registering_then_refused_and_nothing_written(api):
    police = api.token("police", user="officer")

    result = api.run("RegisterDevice", {"input": {"kind": "GATE", "name": "x", "siteId": "s"}}, token=police)

    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert _device_items() == []


def test_given_no_token_when_listing_devices_then_told_to_sign_in(api):
    result = api.run("Devices")

    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_given_an_invalid_name_when_registering_then_a_validation_error_names_the_field_and_nothing_is_written(api):
    issued = _register(api, api.token("admin"), name="   ")

    assert issued["__typename"] == "ValidationError"
    assert issued["fields"] == [{"field": "name", "message": "must be 1 to 120 characters"}]
    assert _device_items() == []


def test_given_many_devices_when_paging_then_cursors_walk_every_device_once(api):
    admin = api.token("admin")
    names = {f"gate {i}" for i in range(5)}
    for name in names:
        _register(api, admin, name=name)

    seen, after = [], None
    while True:
        page = api.data("Devices", {"first": 2, "after": after}, token=admin)["devices"]
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert sorted(seen) == sorted(names)


def test_given_devices_of_several_kinds_when_filtering_by_kind_then_only_that_kind(api):
    admin = api.token("admin")
    _register(api, admin, name="gate", kind="GATE")
    _register(api, admin, name="camera", kind="CAMERA")

    edges = api.data("Devices", {"kind": "CAMERA"}, token=admin)["devices"]["edges"]

    assert [e["node"]["name"] for e in edges] == ["camera"]


def test_given_a_tampered_cursor_when_paging_then_a_clear_error(api):
    admin = api.token("admin")
    _register(api, admin)
    cursor = api.data("Devices", {"first": 1}, token=admin)["devices"]["edges"][0]["cursor"]
    forged = cursor[:-4] + ("AAAA" if not cursor.endswith("AAAA") else "BBBB")

    result = api.run("Devices", {"after": forged}, token=admin)

    assert result["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "cursor" in result["errors"][0]["message"]


def test_given_a_device_when_rotating_its_secret_then_a_new_secret_and_an_audit_entry(api):
    admin = api.token("admin", user="root")
    issued = _register(api, admin)

    rotated = api.data("RotateDeviceSecret", {"id": issued["device"]["id"]}, token=admin)["rotateDeviceSecret"]

    assert rotated["__typename"] == "DeviceSecretIssued"
    assert rotated["secret"] != issued["secret"]
    auditor = api.token("auditor", user="aud")
    entries = api.data("AuditEntries", {"filter": {"actor": "person:root"}}, token=auditor)["auditEntries"]["edges"]
    assert [e["node"]["purpose"] for e in entries] == ["rotate device secret", "register device"]


def test_given_an_unknown_or_foreign_id_when_rotating_then_not_found(api):
    from strawberry.relay import to_base64

    admin = api.token("admin")

    for id_ in (to_base64("Device", "01J00000000000000000000000"), to_base64("AuditEntry", "1")):
        result = api.data("RotateDeviceSecret", {"id": id_}, token=admin)["rotateDeviceSecret"]
        assert result["__typename"] == "NotFoundError", result


def test_given_a_malformed_global_id_then_a_clear_error(api):
    result = api.run("Node", {"id": "not-an-id"}, token=api.token("admin"))

    assert result["errors"][0]["message"] == "not an id this API issued"


def test_given_a_device_when_disabled_then_its_status_shows_it(api):
    admin = api.token("admin")
    issued = _register(api, admin)

    result = api.data("SetDeviceStatus", {"id": issued["device"]["id"], "status": "DISABLED"}, token=admin)

    assert result["setDeviceStatus"]["status"] == "DISABLED"
