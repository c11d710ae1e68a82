"""Why a visitor pass does not open the gate, in the order a visitor would want to hear it."""

from datetime import UTC, datetime, timedelta

from sunflower.gate.models import GateReason, VisitorPass
from sunflower.gate.service import _pass_refusal

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def a_pass(**changes) -> VisitorPass:
    values = dict(code="K7M2P9QX4R", community_id="c1", host_person_id="p1", visitor_name="王阿姨",
                  valid_from=NOW - timedelta(hours=1), valid_until=NOW + timedelta(hours=1), max_uses=2, uses=0,
                  issued_by="person:p1", issued_at=NOW - timedelta(hours=2))
    values.update(changes)
    return VisitorPass(**values)


def test_a_pass_in_its_window_with_uses_left_opens():
    assert _pass_refusal(a_pass(uses=1), "c1", NOW) is None


def test_each_way_a_pass_can_be_no_good_has_its_own_reason():
    assert _pass_refusal(None, "c1", NOW) is GateReason.UNKNOWN_PASS
    assert _pass_refusal(a_pass(), "c2", NOW) is GateReason.PASS_WRONG_COMMUNITY
    assert _pass_refusal(a_pass(revoked_at=NOW), "c1", NOW) is GateReason.PASS_REVOKED
    assert _pass_refusal(a_pass(valid_from=NOW + timedelta(minutes=1)), "c1", NOW) is GateReason.PASS_NOT_YET_VALID
    assert _pass_refusal(a_pass(valid_until=NOW), "c1", NOW) is GateReason.PASS_EXPIRED
    assert _pass_refusal(a_pass(uses=2), "c1", NOW) is GateReason.PASS_USED_UP
