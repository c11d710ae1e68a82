"""Paperless meetings on the embedded cloud: rooms without double booking, agenda items and materials for
their invitees only, sign-in, one vote per attendee, minutes, and decisions that become supervision items."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from factories import FakeClock

from sunflower.auth.principals import SYSTEM, Principal, Role
from sunflower.common.errors import (
    AlreadyExists,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from sunflower.office.documents.models import SupervisionRequest
from sunflower.office.meetings.models import MeetingPhase, MeetingStatus, VoteChoice, VotingStatus
from sunflower.office.supervision.models import SourceKind, SupervisionStatus
from sunflower.office.wiring import build_office

pytestmark = pytest.mark.usefixtures("local_cloud")

ADMIN = Principal("admin-1", roles=frozenset({Role.ADMIN}))
AUDITOR = Principal("audit-1", roles=frozenset({Role.AUDITOR}))


def official(ident: str) -> Principal:
    return Principal(ident, roles=frozenset({Role.OFFICIAL}))


CHAIR, HOUSING, WATER, FINANCE, OUTSIDER = official("mayor"), official("h-1"), official("w-1"), official("f-1"), official("x-1")


def district(y, m, d, h=10, minute=0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(district(2026, 3, 2, 9))  # Monday 09:00


@pytest.fixture
def office(clock):
    services = build_office(clock=clock)
    org = services.org
    org.add_department(ADMIN, "区政府", code="gov")
    for code, name in [("housing", "住建局"), ("water", "水务局"), ("finance", "财政局"), ("supervision-office", "督查室"),
                       ("archives", "档案馆")]:
        org.add_department(ADMIN, name, code=code, parent_id="gov")
    for ident, department in [("mayor", "gov"), ("h-1", "housing"), ("w-1", "water"), ("f-1", "finance"),
                              ("s-1", "supervision-office"), ("x-1", "archives")]:
        org.add_staff(ADMIN, ident, ident, department)
    services.supervision.install(ADMIN)
    services.meetings.add_room(ADMIN, code="r301", name="301 会议室", capacity=4, location="区政府三楼")
    services.meetings.add_room(ADMIN, code="r302", name="302 会议室", capacity=20)
    return services


def schedule(office, start=None, end=None, room="r301", attendees=("h-1", "w-1", "f-1"), title="区长办公会"):
    start = start or district(2026, 3, 2, 14)
    return office.meetings.schedule(CHAIR, title=title, room_id=room, starts_at=start,
                                    ends_at=end or start + timedelta(hours=2), attendees=list(attendees))


def test_a_room_is_never_double_booked(office):
    meeting = schedule(office)
    assert meeting.status is MeetingStatus.SCHEDULED
    # overlapping by one quarter hour, at either end, or inside: refused, and nothing is written
    for start, end in [(district(2026, 3, 2, 15, 45), district(2026, 3, 2, 17)),
                       (district(2026, 3, 2, 13), district(2026, 3, 2, 14, 15)),
                       (district(2026, 3, 2, 14, 30), district(2026, 3, 2, 15))]:
        with pytest.raises(InvalidState) as caught:
            schedule(office, start, end, title="冲突")
        assert "r301 is already booked" in caught.value.message
    # back to back is fine, and so is another room
    schedule(office, district(2026, 3, 2, 16), district(2026, 3, 2, 17))
    schedule(office, district(2026, 3, 2, 14), district(2026, 3, 2, 15), room="r302")
    day = office.meetings.room_day(HOUSING, "r301", date(2026, 3, 2))
    assert [(b.starts_at, b.ends_at) for b in day] == [
        (district(2026, 3, 2, 14), district(2026, 3, 2, 16)), (district(2026, 3, 2, 16), district(2026, 3, 2, 17))]
    assert [m.title for m in office.meetings.meetings(HOUSING).items] == ["区长办公会", "区长办公会", "区长办公会"]


def test_two_bookings_of_the_same_room_at_once_exactly_one_wins(office):
    barrier = threading.Barrier(6)

    def book(n: int):
        barrier.wait()
        try:
            return schedule(office, district(2026, 3, 3, 9) + timedelta(minutes=15 * n), district(2026, 3, 3, 11), title=f"会 {n}")
        except InvalidState:
            return None

    with ThreadPoolExecutor(6) as pool:
        booked = [m for m in pool.map(book, range(6)) if m]
    assert len(booked) == 1
    assert len(office.meetings.room_day(HOUSING, "r301", date(2026, 3, 3))) == 1


def test_cancelling_frees_the_room(office):
    meeting = schedule(office)
    with pytest.raises(PermissionDenied):
        office.meetings.cancel(HOUSING, meeting.id)
    assert office.meetings.cancel(CHAIR, meeting.id).status is MeetingStatus.CANCELLED
    assert schedule(office, title="改期").title == "改期"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"start": district(2026, 3, 2, 14, 10)}, "startsAt"),
        ({"start": district(2026, 3, 2, 8)}, "startsAt"),
        ({"end": district(2026, 3, 2, 13)}, "endsAt"),
        ({"end": district(2026, 3, 3, 14)}, "endsAt"),
        ({"room": "r999"}, "roomId"),
        ({"attendees": ("ghost",)}, "attendees"),
        ({"attendees": ()}, "attendees"),
        ({"attendees": ("h-1", "w-1", "f-1", "s-1", "x-1")}, "attendees"),  # room r301 holds 4
        ({"title": ""}, "title"),
    ],
)
def test_a_bad_booking_is_refused_naming_the_field_and_books_nothing(office, changes, field):
    with pytest.raises(ValidationFailed) as caught:
        schedule(office, **changes)
    assert field in [p.field for p in caught.value.problems]
    assert office.meetings.meetings(CHAIR).items == []
    assert office.meetings.room_day(CHAIR, "r301", date(2026, 3, 2)) == []


def test_attendees_see_only_the_agenda_items_and_materials_they_are_invited_to(office):
    meeting = schedule(office)
    budget = office.meetings.add_agenda_item(CHAIR, meeting.id, title="预算调整", invitees=["f-1", "h-1"], presenter_id="f-1")
    flood = office.meetings.add_agenda_item(CHAIR, meeting.id, title="防汛准备", invitees=["w-1"])
    with pytest.raises(ValidationFailed):
        office.meetings.add_agenda_item(CHAIR, meeting.id, title="外人", invitees=["x-1"])
    with pytest.raises(PermissionDenied):
        office.meetings.add_agenda_item(HOUSING, meeting.id, title="自己加")

    # the presenter uploads the budget's material, the organiser the flood plan's
    materials = {}
    for who, item, name in [(FINANCE, budget, "预算.xlsx"), (CHAIR, flood, "预案.pdf")]:
        body = name.encode() * 50
        content_type = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if name.endswith("xlsx")
                        else "application/pdf")
        ticket = office.meetings.request_material_upload(who, meeting.id, item.id, file_name=name,
                                                         content_type=content_type, size=len(body))
        assert requests.put(ticket.url, data=body, headers=ticket.headers, timeout=10).status_code == 200
        materials[name] = office.meetings.confirm_material(who, meeting.id, ticket.attachment_id)
    with pytest.raises(PermissionDenied):  # h-1 is invited to the budget but does not present it
        office.meetings.request_material_upload(HOUSING, meeting.id, budget.id, file_name="a.pdf",
                                                content_type="application/pdf", size=3)

    assert [i.title for i in office.meetings.agenda(HOUSING, meeting.id)] == ["预算调整"]
    assert [i.title for i in office.meetings.agenda(WATER, meeting.id)] == ["防汛准备"]
    assert [i.title for i in office.meetings.agenda(CHAIR, meeting.id)] == ["预算调整", "防汛准备"]
    assert [m.file_name for m in office.meetings.materials(HOUSING, meeting.id)] == ["预算.xlsx"]
    assert [m.file_name for m in office.meetings.materials(WATER, meeting.id)] == ["预案.pdf"]

    link = office.meetings.material_download(HOUSING, meeting.id, materials["预算.xlsx"].id)
    assert requests.get(link.url, timeout=10).content == "预算.xlsx".encode() * 50
    with pytest.raises(PermissionDenied):
        office.meetings.material_download(HOUSING, meeting.id, materials["预案.pdf"].id)
    with pytest.raises(PermissionDenied):
        office.meetings.materials(WATER, meeting.id, budget.id)
    for stranger in (OUTSIDER, AUDITOR):
        with pytest.raises(PermissionDenied):
            office.meetings.material_download(stranger, meeting.id, materials["预算.xlsx"].id)
    with pytest.raises(PermissionDenied):
        office.meetings.get(OUTSIDER, meeting.id)


def test_votes_are_tallied_once_per_signed_in_invited_attendee_while_voting_is_open(office, clock):
    meeting = schedule(office, attendees=("h-1", "w-1", "f-1"))
    item = office.meetings.add_agenda_item(CHAIR, meeting.id, title="老旧小区改造方案", invitees=["h-1", "w-1", "f-1"])
    other = office.meetings.add_agenda_item(CHAIR, meeting.id, title="人事", invitees=["h-1"])
    with pytest.raises(InvalidState):
        office.meetings.open_voting(CHAIR, meeting.id, item.id)  # not begun
    with pytest.raises(InvalidState):
        office.meetings.sign_in(HOUSING, meeting.id)  # sign-in opens at 13:30

    clock.now = district(2026, 3, 2, 13, 45)
    for who in (HOUSING, WATER, FINANCE):
        office.meetings.sign_in(who, meeting.id)
    with pytest.raises(AlreadyExists):
        office.meetings.sign_in(HOUSING, meeting.id)
    with pytest.raises(PermissionDenied):
        office.meetings.sign_in(OUTSIDER, meeting.id)
    assert sorted(s.staff_id for s in office.meetings.attendance(CHAIR, meeting.id)) == ["f-1", "h-1", "w-1"]

    clock.now = district(2026, 3, 2, 14, 5)
    with pytest.raises(InvalidState):
        office.meetings.vote(HOUSING, meeting.id, item.id, VoteChoice.FOR)  # not open yet
    assert office.meetings.open_voting(CHAIR, meeting.id, item.id).voting is VotingStatus.OPEN
    with pytest.raises(PermissionDenied):
        office.meetings.open_voting(HOUSING, meeting.id, other.id)

    # h-1 tries to vote five times at once: one counts
    barrier = threading.Barrier(5)

    def vote(_):
        barrier.wait()
        try:
            office.meetings.vote(HOUSING, meeting.id, item.id, VoteChoice.FOR)
            return True
        except AlreadyExists:
            return False

    with ThreadPoolExecutor(5) as pool:
        assert sum(pool.map(vote, range(5))) == 1
    office.meetings.vote(WATER, meeting.id, item.id, VoteChoice.AGAINST)
    with pytest.raises(PermissionDenied):
        office.meetings.vote(WATER, meeting.id, other.id, VoteChoice.FOR)  # not invited to it
    with pytest.raises(PermissionDenied):
        office.meetings.vote(OUTSIDER, meeting.id, item.id, VoteChoice.FOR)
    closed = office.meetings.close_voting(CHAIR, meeting.id, item.id)
    with pytest.raises(InvalidState):
        office.meetings.vote(FINANCE, meeting.id, item.id, VoteChoice.FOR)  # closed
    assert (closed.voting, closed.tally, closed.votes_cast) == (
        VotingStatus.CLOSED, {"for": 1, "against": 1, "abstain": 0}, 2)
    assert office.meetings.my_vote(WATER, meeting.id, item.id) is VoteChoice.AGAINST
    assert office.meetings.phase(meeting) is MeetingPhase.IN_PROGRESS


def test_an_attendee_who_has_not_signed_in_cannot_vote(office, clock):
    meeting = schedule(office)
    item = office.meetings.add_agenda_item(CHAIR, meeting.id, title="议题")
    clock.now = district(2026, 3, 2, 14, 15)
    office.meetings.open_voting(CHAIR, meeting.id, item.id)
    with pytest.raises(InvalidState) as caught:
        office.meetings.vote(WATER, meeting.id, item.id, VoteChoice.FOR)
    assert "sign in" in caught.value.message
    assert office.meetings.agenda(CHAIR, meeting.id)[0].votes_cast == 0


def test_minutes_and_a_decision_that_becomes_a_supervision_item(office, clock):
    meeting = schedule(office)
    item = office.meetings.add_agenda_item(CHAIR, meeting.id, title="老旧小区改造")
    with pytest.raises(InvalidState):
        office.meetings.record_minutes(CHAIR, meeting.id, "尚未开会")
    clock.now = district(2026, 3, 2, 15)
    minuted = office.meetings.record_minutes(CHAIR, meeting.id, "会议研究了老旧小区改造。")
    assert (minuted.minutes, minuted.minutes_by) == ("会议研究了老旧小区改造。", "person:mayor")
    with pytest.raises(PermissionDenied):
        office.meetings.record_minutes(HOUSING, meeting.id, "改写")

    decision = office.meetings.record_decision(
        CHAIR, meeting.id, item_id=item.id, text="住建局牵头，4月底前完成改造方案",
        supervise=SupervisionRequest(deadline=date(2026, 4, 30), responsible_department="housing",
                                     assisting_departments=("water",)),
    )
    supervised = office.supervision.get(CHAIR, decision.supervision_item_id)
    assert (supervised.source, supervised.leader_id, supervised.responsible_department, supervised.status) == (
        SourceKind.MEETING_DECISION, "mayor", "housing", SupervisionStatus.ASSIGNING)
    assert supervised.source_ref == "区长办公会 (2026-03-02)"
    # the responsible department has the supervision task in its inbox
    assert [i.element_id for i in office.workflows.inbox(HOUSING).items] == ["assign"]
    plain = office.meetings.record_decision(CHAIR, meeting.id, text="原则同意")
    assert plain.supervision_item_id is None
    assert [d.text for d in office.meetings.decisions(WATER, meeting.id)] == ["住建局牵头，4月底前完成改造方案", "原则同意"]


def test_a_bad_decision_is_refused_and_creates_no_supervision_item(office, clock):
    meeting = schedule(office)
    clock.now = district(2026, 3, 2, 15)
    for supervise, field in [
        (SupervisionRequest(deadline=date(2026, 3, 1), responsible_department="housing"), "supervision.deadline"),
        (SupervisionRequest(deadline=date(2026, 4, 1)), "supervision.responsibleDepartment"),
        (SupervisionRequest(deadline=date(2026, 4, 1), responsible_department="nowhere"), "supervision.responsibleDepartment"),
    ]:
        with pytest.raises(ValidationFailed) as caught:
            office.meetings.record_decision(CHAIR, meeting.id, text="决定", supervise=supervise)
        assert field in [p.field for p in caught.value.problems]
    with pytest.raises(ValidationFailed):
        office.meetings.record_decision(CHAIR, meeting.id, text="决定", item_id="01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert office.meetings.decisions(CHAIR, meeting.id) == []
    assert office.supervision.items(SYSTEM).items == []


def test_rooms_are_kept_by_administrators(office):
    with pytest.raises(PermissionDenied):
        office.meetings.add_room(CHAIR, code="r9", name="x", capacity=3)
    with pytest.raises(AlreadyExists):
        office.meetings.add_room(ADMIN, code="r301", name="again", capacity=3)
    with pytest.raises(ValidationFailed):
        office.meetings.add_room(ADMIN, code="r 9", name="", capacity=0)
    assert [r.id for r in office.meetings.rooms(CHAIR)] == ["r301", "r302"]
    with pytest.raises(NotFound):
        office.meetings.room_day(CHAIR, "r999", date(2026, 3, 2))
