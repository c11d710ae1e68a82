"""Gate access through the real schema: enrollment with consent, checks at a signed gate, events, live feeds."""

import base64
import json
from datetime import timedelta

import pytest
from factories import official, person_row, police
from starlette.websockets import WebSocketDisconnect
from strawberry.relay import from_base64, to_base64

from sunflower.auth import device_signature
from sunflower.common.clock import utc_now

COMMUNITY, OTHER = "pf-youxie-xingfu", "pf-xinjiang-hongqi"


# --- given ---------------------------------------------------------------------------------------


@pytest.fixture
def api(api):
    api.client.headers["X-Purpose"] = "gate duty"
    return api


@pytest.fixture
def manager(api) -> str:
    return api.token("property_manager", user="pm-1", community=COMMUNITY)


@pytest.fixture
def resident(local_cloud):
    """Registers a person living in a community; returns their raw id (global id: `gid(...)`)."""
    from sunflower.container import services

    def make(community_id: str = COMMUNITY) -> str:
        view = services().registries.register_person(official(), person_row(current_community_id=community_id), "test")
        return view.person.id

    return make


@pytest.fixture
def gate(api) -> dict:
    """A gate device of COMMUNITY, registered by an admin; its raw id, global id and secret."""
    issued = api.data(
        "RegisterDevice", {"input": {"kind": "GATE", "name": "东门", "siteId": COMMUNITY}}, token=api.token("admin")
    )["registerDevice"]
    return {"id": from_base64(issued["device"]["id"])[1], "global_id": issued["device"]["id"], "secret": issued["secret"]}


@pytest.fixture
def photo(photo_bytes, model_dir):
    """An evaluation photo, base64 as a client sends it (skips without the face models)."""

    def encode(name: str) -> str:
        return base64.b64encode(photo_bytes(name)).decode()

    return encode


@pytest.fixture
def galleries_refresh_at_once(local_cloud):
    """Gates look for a new gallery version on every check (normally every 10 s per warm container)."""
    from sunflower.common.settings import get_settings
    from sunflower.container import services

    with pytest.MonkeyPatch.context() as env:
        env.setenv("SUNFLOWER_GATE_GALLERY_REFRESH_S", "0")
        get_settings.cache_clear()
        services.cache_clear()
        yield
    get_settings.cache_clear()
    services.cache_clear()


def gid(person_id: str) -> str:
    return to_base64("Person", person_id)


def consent(person_id: str, **changes) -> dict:
    values = {"givenBy": gid(person_id), "givenAt": (utc_now() - timedelta(minutes=5)).isoformat(),
              "method": "IN_PERSON", "reference": None}
    return {**values, **changes}


def enroll(api, token, person_id, photos, community_id=COMMUNITY, **consent_changes) -> dict:
    variables = {"input": {"communityId": community_id, "personId": gid(person_id), "photos": photos,
                           "consent": consent(person_id, **consent_changes)}}
    return api.data("EnrollResident", variables, token=token)["enrollResident"]


def check(api, gate, body: bytes | dict, method: str | None = None) -> dict:
    """What the gate device gets back from a signed check (a camera frame, or card/pin/pass JSON)."""
    path = f"/devices/gates/{gate['id']}/check" + (f"/{method}" if method else "")
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = device_signature.signed_headers(gate["id"], gate["secret"], "POST", path, content, utc_now())
    response = api.client.post(path, content=content, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def events(api, token, **filters) -> list[dict]:
    return [e["node"] for e in api.data("AccessEvents", filters, token=token)["accessEvents"]["edges"]]


def issue_card(api, token, person_id, number="A1B2-C3D4") -> dict:
    variables = {"input": {"communityId": COMMUNITY, "personId": gid(person_id), "cardNumber": number}}
    return api.data("IssueGateCard", variables, token=token)["issueGateCard"]


# --- enrollment and face checks ------------------------------------------------------------------


def test_an_enrolled_resident_is_let_in_by_face_and_the_community_sees_the_event(api, manager, resident, gate, photo):
    obama = resident()

    enrolled = enroll(api, manager, obama, [photo("obama.jpg"), photo("obama2.jpg")])
    decision = check(api, gate, base64.b64decode(photo("obama3.jpg")))

    assert enrolled["__typename"] == "GateEnrollment", enrolled
    assert (enrolled["personId"], enrolled["templateCount"]) == (gid(obama), 2)
    assert enrolled["consent"]["givenBy"] == gid(obama) and enrolled["consent"]["method"] == "IN_PERSON"
    assert enrolled["consent"]["recordedBy"] == "person:pm-1"
    listed = api.data("GateEnrollments", {"communityId": COMMUNITY}, token=manager)["gateEnrollments"]["edges"]
    assert [e["node"]["personId"] for e in listed] == [gid(obama)]
    assert (decision["decision"], decision["personId"], decision["reason"]) == ("accept", obama, "MATCH")
    [event] = events(api, manager, communityId=COMMUNITY)
    assert event["id"] == decision["eventId"]
    assert (event["decision"], event["method"], event["reason"]) == ("ACCEPT", "FACE", "MATCH")
    assert (event["personId"], event["gateId"], event["communityId"]) == (gid(obama), gate["global_id"], COMMUNITY)
    assert event["score"] > 0.45 and event["latencyMs"] > 0
    assert events(api, manager, gateId=gate["global_id"]) == [event]


def test_a_property_manager_of_another_community_may_not_enroll_its_residents(api, resident, photo):
    obama = resident()
    outsider = api.token("property_manager", user="pm-9", community=OTHER)

    refused = enroll(api, outsider, obama, [photo("obama.jpg")])

    assert (refused["__typename"], refused["code"]) == ("PermissionDeniedError", "PERMISSION_DENIED")
    admin = api.token("admin")
    assert api.data("GateEnrollment", {"communityId": COMMUNITY, "personId": gid(obama)}, token=admin)[
        "gateEnrollment"] is None


def test_a_written_consent_needs_the_forms_reference(api, manager, resident, photo):
    obama = resident()

    refused = enroll(api, manager, obama, [photo("obama.jpg")], method="WRITTEN")
    accepted = enroll(api, manager, obama, [photo("obama.jpg")], method="WRITTEN", reference="平房-2026-0042")

    assert refused["__typename"] == "ValidationError"
    assert [f["field"] for f in refused["fields"]] == ["consent.reference"]
    assert accepted["consent"]["reference"] == "平房-2026-0042"


def test_a_photo_without_a_face_is_refused_by_its_position_and_nothing_is_enrolled(api, manager, resident, photo):
    obama = resident()

    refused = enroll(api, manager, obama, [photo("obama.jpg"), photo("coffee.png")])

    assert refused["__typename"] == "ValidationError"
    assert [(f["field"], f["message"].split(":")[0]) for f in refused["fields"]] == [("photos[1]", "NO_FACE")]
    assert api.data("GateEnrollments", {"communityId": COMMUNITY}, token=manager)["gateEnrollments"]["edges"] == []


def test_a_photo_that_is_not_base64_is_named_before_any_face_is_looked_for(api, manager, resident):
    obama = resident()

    refused = enroll(api, manager, obama, ["data:image/jpeg;base64,/9j/4AA", "not base64 at all!"])

    assert refused["__typename"] == "ValidationError"
    assert [f["field"] for f in refused["fields"]] == ["photos[0]", "photos[1]"]
    assert "base64" in refused["fields"][1]["message"]


def test_after_a_resident_withdraws_consent_the_next_check_is_rejected(api, manager, resident, gate, photo,
                                                                       galleries_refresh_at_once):
    obama = resident()
    enroll(api, manager, obama, [photo("obama.jpg"), photo("obama2.jpg")])
    frame = base64.b64decode(photo("obama3.jpg"))
    assert check(api, gate, frame)["decision"] == "accept"
    own = api.token("resident", user=obama)

    withdrawn = api.data("WithdrawEnrollment", {"input": {"communityId": COMMUNITY}}, token=own)["withdrawEnrollment"]
    after = check(api, gate, frame)

    assert withdrawn == {"__typename": "EnrollmentWithdrawn", "personId": gid(obama), "communityId": COMMUNITY,
                         "removed": True}
    assert (after["decision"], after.get("personId")) == ("reject", None)
    assert api.data("GateEnrollment", {"communityId": COMMUNITY}, token=own)["gateEnrollment"] is None


def test_a_resident_may_not_withdraw_someone_elses_enrollment(api, manager, resident):
    neighbour = api.token("resident", user=resident())

    refused = api.data("WithdrawEnrollment", {"input": {"communityId": COMMUNITY, "personId": gid(resident())}},
                       token=neighbour)["withdrawEnrollment"]

    assert refused["code"] == "PERMISSION_DENIED"


# --- cards, PINs and visitor passes --------------------------------------------------------------


def test_a_card_and_a_pin_open_the_gate_and_the_pin_is_never_shown(api, manager, resident, gate):
    tenant = resident()

    card = issue_card(api, manager, tenant, "a1b2-c3d4")
    pin = api.run("SetGatePin", {"input": {"communityId": COMMUNITY, "pin": "482913"}},
                  token=api.token("resident", user=tenant))

    assert (card["method"], card["cardNumber"], card["personId"]) == ("CARD", "A1B2-C3D4", gid(tenant))
    assert pin["data"]["setGatePin"]["method"] == "PIN" and "482913" not in json.dumps(pin)
    assert check(api, gate, {"card": "A1B2-C3D4"}, "card")["personId"] == tenant
    assert check(api, gate, {"pin": "482913"}, "pin")["personId"] == tenant
    assert check(api, gate, {"pin": "482914"}, "pin")["reason"] == "WRONG_PIN"


def test_a_weak_pin_is_refused_naming_the_field(api, manager, resident):
    tenant = resident()

    refused = api.data("SetGatePin", {"input": {"communityId": COMMUNITY, "personId": gid(tenant), "pin": "123456"}},
                       token=manager)["setGatePin"]

    assert [f["field"] for f in refused["fields"]] == ["pin"]


def test_a_visitor_pass_opens_the_gate_until_its_uses_are_used_up(api, manager, resident, gate):
    host = resident()
    own = api.token("resident", user=host)
    now = utc_now()
    window = {"validFrom": (now - timedelta(minutes=1)).isoformat(), "validUntil": (now + timedelta(hours=4)).isoformat()}

    issued = api.data("IssueVisitorPass", {"input": {"communityId": COMMUNITY, "visitorName": "王阿姨", "maxUses": 2,
                                                     **window}}, token=own)["issueVisitorPass"]
    reasons = [check(api, gate, {"code": issued["code"]}, "pass")["reason"] for _ in range(3)]

    assert issued["__typename"] == "VisitorPass" and len(issued["code"]) == 10
    assert (issued["hostPersonId"], issued["remainingUses"]) == (gid(host), 2)
    assert reasons == ["MATCH", "MATCH", "PASS_USED_UP"]
    [mine] = [e["node"] for e in api.data("VisitorPasses", token=own)["visitorPasses"]["edges"]]
    assert (mine["code"], mine["uses"], mine["remainingUses"]) == (issued["code"], 2, 0)
    listed = api.data("VisitorPasses", {"communityId": COMMUNITY}, token=manager)["visitorPasses"]["edges"]
    assert [e["node"]["code"] for e in listed] == [issued["code"]]


def test_a_revoked_pass_no_longer_opens_the_gate(api, manager, resident, gate):
    now = utc_now()
    issued = api.data("IssueVisitorPass", {"input": {
        "communityId": COMMUNITY, "hostPersonId": gid(resident()), "visitorName": "快递", "maxUses": 5,
        "validFrom": now.isoformat(), "validUntil": (now + timedelta(hours=1)).isoformat()}},
        token=manager)["issueVisitorPass"]

    revoked = api.data("RevokeVisitorPass", {"input": {"code": issued["code"]}}, token=manager)["revokeVisitorPass"]

    assert revoked["revokedAt"] is not None
    assert check(api, gate, {"code": issued["code"]}, "pass")["reason"] == "PASS_REVOKED"


# --- who sees what -------------------------------------------------------------------------------


def test_the_police_see_watchlist_alerts_and_a_property_manager_is_denied(api, manager, resident, gate):
    from sunflower.container import services

    suspect = resident()
    issue_card(api, manager, suspect)
    services().registries.set_watchlist(police(), suspect, True, "case 2026-17", "investigation")
    decision = check(api, gate, {"card": "A1B2-C3D4"}, "card")
    officer = api.token("police", user="pol-1")

    alerts = api.data("WatchlistAlerts", {"communityId": COMMUNITY}, token=officer)["watchlistAlerts"]["edges"]
    denied = api.run("WatchlistAlerts", {"communityId": COMMUNITY}, token=manager)

    assert [(a["node"]["eventId"], a["node"]["personId"]) for a in alerts] == [(decision["eventId"], gid(suspect))]
    assert denied["data"] is None
    assert denied["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_access_events_are_for_the_community_and_a_person_sees_only_their_own(api, manager, resident, gate):
    tenant = resident()
    issue_card(api, manager, tenant)
    check(api, gate, {"card": "A1B2-C3D4"}, "card")
    outsider = api.token("property_manager", user="pm-9", community=OTHER)

    own = events(api, api.token("resident", user=tenant), personId=gid(tenant))
    foreign = api.run("AccessEvents", {"communityId": COMMUNITY}, token=outsider)
    nosy = api.run("AccessEvents", {"personId": gid(tenant)}, token=manager)

    assert [e["personId"] for e in own] == [gid(tenant)]
    assert foreign["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert nosy["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_reading_access_events_needs_a_stated_purpose(api, manager):
    del api.client.headers["X-Purpose"]

    result = api.run("AccessEvents", {"communityId": COMMUNITY}, token=manager)

    assert result["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "purpose" in result["errors"][0]["message"]


# --- the live feed -------------------------------------------------------------------------------


def _feed(socket, token: str, purpose: str | None = "gate duty") -> None:
    payload = {"Authorization": f"Bearer {token}"} | ({"purpose": purpose} if purpose else {})
    assert socket.init(payload)["type"] == "connection_ack"
    socket.subscribe("GateFeed", {"communityId": COMMUNITY})


def test_a_subscriber_receives_the_event_of_a_check_as_it_happens(api, manager, gate):
    with api.socket() as socket:
        _feed(socket, manager)

        decision = check(api, gate, {"card": "NOPE-0001"}, "card")
        message = socket.next(timeout=2.0)  # polled every 0.2 s

    item = message["payload"]["data"]["accessEvents"]
    assert (message["type"], item["__typename"]) == ("next", "AccessEvent")
    assert (item["id"], item["reason"], item["decision"]) == (decision["eventId"], "UNKNOWN_CARD", "REJECT")


def test_the_police_feed_gets_the_alert_for_a_watchlisted_person_and_the_estate_feed_does_not(api, manager,
                                                                                              resident, gate):
    from sunflower.container import services

    suspect = resident()
    issue_card(api, manager, suspect)
    services().registries.set_watchlist(police(), suspect, True, "case 2026-17", "investigation")

    with api.socket() as estate, api.socket() as patrol:
        _feed(estate, manager)
        _feed(patrol, api.token("police", user="pol-1"))

        decision = check(api, gate, {"card": "A1B2-C3D4"}, "card")
        police_items = [patrol.next()["payload"]["data"]["accessEvents"] for _ in range(2)]
        estate_item = estate.next()["payload"]["data"]["accessEvents"]
        estate_silent = estate.silent_for(1.0)

    assert [i["__typename"] for i in police_items] == ["AccessEvent", "WatchlistAlert"]
    assert police_items[1]["eventId"] == decision["eventId"] and police_items[1]["alertPersonId"] == gid(suspect)
    assert (estate_item["__typename"], estate_item["id"]) == ("AccessEvent", decision["eventId"])
    assert estate_silent, "a property manager's feed never carries a watchlist alert"


def test_a_subscription_without_a_token_is_refused(api):
    with api.socket() as socket:
        assert socket.init({"purpose": "gate duty"})["type"] == "connection_ack"
        socket.subscribe("GateFeed", {"communityId": COMMUNITY})
        message = socket.next()

    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_bad_token_closes_the_connection_as_forbidden(api):
    with api.socket() as socket, pytest.raises(WebSocketDisconnect) as closed:
        socket.init({"Authorization": "Bearer not.a.token"})

    assert closed.value.code == 4403


def test_a_resident_may_not_watch_the_community_feed(api, resident):
    with api.socket() as socket:
        _feed(socket, api.token("resident", user=resident()))
        message = socket.next()

    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_the_feed_needs_a_purpose_in_connection_init(api, manager):
    del api.client.headers["X-Purpose"]  # browsers cannot set headers on a WebSocket anyway

    with api.socket() as socket:
        _feed(socket, manager, purpose=None)
        message = socket.next()

    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "purpose" in message["payload"][0]["message"]
