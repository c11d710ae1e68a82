"""督办 Supervision on the embedded cloud: from an instruction to a reviewed completion, with timers."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import FakeClock

from sunflower.auth.principals import SYSTEM, Principal, Role
from sunflower.common.errors import InvalidState, PermissionDenied, ValidationFailed
from sunflower.office.engine.models import TimelineKind
from sunflower.office.supervision.models import (
    MilestoneDraft,
    SourceKind,
    SupervisionStatus,
    TrafficLight,
)
from sunflower.office.wiring import build_office

pytestmark = pytest.mark.usefixtures("local_cloud")

ADMIN = Principal("admin-1", roles=frozenset({Role.ADMIN}))
CLERK = Principal("clerk-1", roles=frozenset({Role.OFFICIAL}))


def official(ident: str) -> Principal:
    return Principal(ident, roles=frozenset({Role.OFFICIAL}))


def district(y, m, d, h=10) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(district(2026, 9, 21))  # a Monday, ten days before National Day


@pytest.fixture
def office(clock):
    """The chart: district government (mayor) > supervision office, housing bureau (h-head, h-1), water bureau."""
    services = build_office(clock=clock)
    org = services.org
    org.add_department(ADMIN, "区政府", code="gov")
    for code, name in [("supervision-office", "督查室"), ("housing", "住建局"), ("water", "水务局")]:
        org.add_department(ADMIN, name, code=code, parent_id="gov")
    for ident, name, department in [("mayor", "区长", "gov"), ("h-head", "局长", "housing"), ("h-1", "科员", "housing"),
                                    ("s-1", "督查员", "supervision-office"), ("w-1", "科员", "water")]:
        org.add_staff(ADMIN, ident, name, department)
    org.set_leader(ADMIN, "gov", "mayor")
    org.set_leader(ADMIN, "housing", "h-head")
    services.supervision.install(ADMIN)
    return services


def create(office, **overrides):
    values = dict(title="整治老旧小区", source=SourceKind.LEADER_INSTRUCTION, leader_id="mayor",
                  responsible_department="housing", assisting_departments=["water"], deadline=date(2026, 10, 9))
    values.update(overrides)
    return office.supervision.create(CLERK, **values)


def do_task(office, who: Principal, element: str, data: dict, comment: str | None = None):
    item = next(i for i in office.workflows.inbox(who).items if i.element_id == element)
    return office.workflows.complete_task(who, item.instance_id, item.task_id, data, comment)


def test_install_deploys_once_per_diagram(office):
    assert office.supervision.install(ADMIN).version == 1


def test_an_item_goes_from_instruction_through_review_to_completion(office, clock):
    item = create(office, milestones=[MilestoneDraft("方案", date(2026, 9, 25))])
    assert item.status is SupervisionStatus.ASSIGNING
    # the housing bureau accepts it and names h-1
    do_task(office, official("h-head"), "assign", {"handler_id": "h-1"})
    assert office.supervision.get(CLERK, item.id).status is SupervisionStatus.IN_PROGRESS
    # h-1 and the assisting water bureau report progress
    milestone = item.milestones[0].id
    office.supervision.report_progress(official("h-1"), item.id, text="方案已定", percent=40, milestones_done=[milestone])
    office.supervision.report_progress(Principal("w-1"), item.id, text="管网配合")
    # h-1 reports completion; the supervision office sends it back once, then approves
    clock.now = district(2026, 10, 8)
    do_task(office, official("h-1"), "handle", {"summary": "完成 1"})
    assert office.supervision.get(CLERK, item.id).status is SupervisionStatus.IN_REVIEW
    do_task(office, official("s-1"), "review", {"approved": False, "opinion": "补充材料"})
    do_task(office, official("h-1"), "handle", {"summary": "完成 2"})
    do_task(office, official("s-1"), "review", {"approved": True})
    done = office.supervision.get(CLERK, item.id)
    assert (done.status, done.completed_on_time, done.review_rounds, done.progress) == (SupervisionStatus.COMPLETED, True, 1, 40)
    assert done.milestones[0].done_on == date(2026, 9, 21)
    assert office.supervision.light(done).light is TrafficLight.GREEN
    # the timeline has the reports as notes by their authors, and every completion
    timeline = office.workflows.timeline(CLERK, done.instance_id, limit=50, start=None).items
    notes = [(e.actor, e.comment) for e in timeline if e.kind is TimelineKind.NOTE]
    assert notes == [("person:h-1", "方案已定"), ("person:w-1", "管网配合")]
    assert [e.task_name for e in timeline if e.kind is TimelineKind.TASK_COMPLETED][-1] == "审核 Completion review"
    reports = office.supervision.reports(CLERK, item.id).items
    assert [r.text for r in reports] == ["管网配合", "方案已定"]


def test_reminder_when_it_turns_yellow_and_escalation_when_the_deadline_passes(office, clock):
    item = create(office)
    do_task(office, official("h-head"), "assign", {"handler_id": "h-1"})
    # on Monday 28 September there are still four working days: green, no reminder
    clock.now = district(2026, 9, 28, 12)
    assert office.workflows.wake_due(SYSTEM).woken == 0
    assert office.supervision.status(CLERK, item.id).light is TrafficLight.GREEN
    # at 09:00 on Tuesday 29 September (3 working days left, the Golden Week in between) h-1 is reminded
    clock.now = district(2026, 9, 29, 9) + timedelta(minutes=1)
    assert office.workflows.wake_due(SYSTEM).woken == 1
    assert office.supervision.status(CLERK, item.id).light is TrafficLight.YELLOW
    assert [n.kind for n in office.workflows.notifications(Principal("h-1")).items] == [TimelineKind.REMINDED]
    # at midnight after 9 October the bureau head and the mayor are told it is overdue
    clock.now = district(2026, 10, 10, 0) + timedelta(minutes=1)
    assert office.workflows.wake_due(SYSTEM).woken == 1
    for leader in ("h-head", "mayor"):
        assert [n.kind for n in office.workflows.notifications(Principal(leader)).items] == [TimelineKind.ESCALATED]
    late = office.supervision.get(CLERK, item.id)
    assert (office.supervision.light(late).light, late.escalations) == (TrafficLight.RED, 1)
    # a late completion counts against the bureau
    do_task(office, official("h-1"), "handle", {"summary": "迟了"})
    do_task(office, official("s-1"), "review", {"approved": True})
    stats = {s.department_id: s for s in office.supervision.statistics(CLERK)}
    assert (stats["housing"].completed, stats["housing"].completed_on_time, stats["housing"].on_time_rate) == (1, 0, 0.0)


def test_statistics_per_department(office, clock):
    on_time = create(office)
    create(office, responsible_department="water", assisting_departments=[], deadline=date(2026, 9, 25))
    do_task(office, official("h-head"), "assign", {"handler_id": "h-1"})
    do_task(office, official("h-1"), "handle", {"summary": "好了"})
    do_task(office, official("s-1"), "review", {"approved": True})
    clock.now = district(2026, 9, 28)
    stats = {s.department_id: s for s in office.supervision.statistics(CLERK)}
    assert office.supervision.get(CLERK, on_time.id).completed_on_time is True
    assert (stats["housing"].on_time_rate, stats["water"].overdue_open, stats["water"].on_time_rate) == (1.0, 1, 0.0)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"deadline": date(2026, 9, 20)}, "deadline"),
        ({"title": " "}, "title"),
        ({"responsible_department": "nowhere"}, "responsibleDepartment"),
        ({"assisting_departments": ["housing"]}, "assistingDepartments"),
        ({"leader_id": "ghost"}, "leaderId"),
        ({"milestones": [MilestoneDraft("late", date(2026, 10, 30))]}, "milestones.0.due"),
    ],
)
def test_bad_instructions_are_refused_naming_the_field(office, overrides, field):
    with pytest.raises(ValidationFailed) as caught:
        create(office, **overrides)
    assert field in [p.field for p in caught.value.problems]
    assert office.supervision.items(CLERK).items == []


def test_who_may_do_what(office):
    resident = Principal("r-1", roles=frozenset({Role.RESIDENT}))
    with pytest.raises(PermissionDenied):
        office.supervision.create(resident, title="x", source=SourceKind.MEETING_DECISION, leader_id="mayor",
                                  responsible_department="housing", deadline=date(2026, 10, 9))
    item = create(office)
    with pytest.raises(PermissionDenied):
        office.supervision.get(resident, item.id)
    with pytest.raises(PermissionDenied):
        office.supervision.report_progress(resident, item.id, text="hi")
    with pytest.raises(ValidationFailed):
        office.supervision.report_progress(official("h-1"), item.id, text="x", percent=120)


def test_no_progress_reports_after_completion(office):
    item = create(office)
    do_task(office, official("h-head"), "assign", {"handler_id": "h-1"})
    do_task(office, official("h-1"), "handle", {"summary": "好了"})
    do_task(office, official("s-1"), "review", {"approved": True})
    with pytest.raises(InvalidState):
        office.supervision.report_progress(official("h-1"), item.id, text="more")
