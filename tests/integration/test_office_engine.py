"""The workflow engine on the embedded cloud: definitions, instances, tasks, inboxes, timers, escalation."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from factories import FakeClock

from sunflower.auth.principals import SYSTEM, Principal, Role
from sunflower.common.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from sunflower.office.engine.models import AssigneeKind, InboxFilter, InstanceStatus, TimelineKind
from sunflower.office.engine.repository import EngineRepository
from sunflower.office.engine.service import WorkflowService
from sunflower.office.org import OrgService
from sunflower.office.org_repository import OrgRepository

pytestmark = pytest.mark.usefixtures("local_cloud")

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="urn:test">"""
FORM = {"type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
        "additionalProperties": False}


def props(**values: str) -> str:
    inner = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in values.items())
    return f"<bpmn:extensionElements><spiffworkflow:properties>{inner}</spiffworkflow:properties></bpmn:extensionElements>"


def leave_request(*, name: str = "Approve", assignee: str = 'department" value="${department}', boundaries: str = "",
                  then: str = "") -> str:
    """start -> approve -> (approved?) review by role official -> end; rejected -> end."""
    form = json.dumps(FORM).replace('"', "&quot;")
    key, _, value = assignee.partition('" value="')
    return f"""{HEAD}<bpmn:process id="leave" name="Leave request" isExecutable="true">
      <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve"/>
      <bpmn:userTask id="approve" name="{name}">{props(**{key: value, "formSchema": form})}
        <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
      {boundaries}
      <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="gw"/>
      <bpmn:exclusiveGateway id="gw" default="no"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>yes</bpmn:outgoing><bpmn:outgoing>no</bpmn:outgoing></bpmn:exclusiveGateway>
      <bpmn:sequenceFlow id="yes" sourceRef="gw" targetRef="file"><bpmn:conditionExpression>approved == True</bpmn:conditionExpression></bpmn:sequenceFlow>
      <bpmn:sequenceFlow id="no" sourceRef="gw" targetRef="rejected"/>
      <bpmn:userTask id="file" name="File it">{props(role="official")}<bpmn:incoming>yes</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
      <bpmn:sequenceFlow id="f3" sourceRef="file" targetRef="done"/>
      <bpmn:endEvent id="done"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
      <bpmn:endEvent id="rejected"><bpmn:incoming>no</bpmn:incoming></bpmn:endEvent>
      {then}
    </bpmn:process></bpmn:definitions>"""


def boundary(ident: str, when: str, action: str, *, kind: str = "timeDuration", **extra: str) -> str:
    return f"""<bpmn:boundaryEvent id="{ident}" attachedToRef="approve" cancelActivity="false">{props(action=action, **extra)}
        <bpmn:outgoing>{ident}_f</bpmn:outgoing>
        <bpmn:timerEventDefinition><bpmn:{kind}>{when}</bpmn:{kind}></bpmn:timerEventDefinition></bpmn:boundaryEvent>
      <bpmn:sequenceFlow id="{ident}_f" sourceRef="{ident}" targetRef="{ident}_end"/>
      <bpmn:endEvent id="{ident}_end"><bpmn:incoming>{ident}_f</bpmn:incoming></bpmn:endEvent>"""


ADMIN = Principal("admin-1", roles=frozenset({Role.ADMIN}))
CLERK = Principal("clerk-1", roles=frozenset({Role.OFFICIAL}))


def staff(ident: str, department: str | None = None) -> Principal:
    return Principal(ident, roles=frozenset({Role.OFFICIAL}), department=department)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))


@pytest.fixture
def org() -> OrgService:
    """District government > housing bureau (leader h-head) > permits section (leader p-head)."""
    service = OrgService(OrgRepository())
    service.add_department(ADMIN, "District government", code="gov")
    service.add_department(ADMIN, "Housing bureau", code="housing", parent_id="gov")
    service.add_department(ADMIN, "Permits section", code="permits", parent_id="housing")
    for ident, name, department in [("mayor", "Mayor", "gov"), ("h-head", "Bureau head", "housing"),
                                    ("p-head", "Section head", "permits"), ("p-1", "Clerk", "permits")]:
        service.add_staff(ADMIN, ident, name, department)
    service.set_leader(ADMIN, "gov", "mayor")
    service.set_leader(ADMIN, "housing", "h-head")
    service.set_leader(ADMIN, "permits", "p-head")
    return service


@pytest.fixture
def engine(org, clock) -> WorkflowService:
    return WorkflowService(EngineRepository(), org, clock)


def _raw(instance_id: str) -> dict:
    return EngineRepository().raw(instance_id)


def _start(engine, **data):
    return engine.start(CLERK, "leave", {"department": "permits", **data})


# --- definitions ----------------------------------------------------------------------------------


def test_deploy_stores_numbered_versions_and_only_admins_deploy(engine):
    first = engine.deploy(ADMIN, leave_request())
    second = engine.deploy(ADMIN, leave_request(name="Approve (v2)"))
    assert (first.key, first.version, second.version) == ("leave", 1, 2)
    assert engine.definition(CLERK, "leave").version == 2
    assert [d.version for d in engine.definitions(CLERK, limit=20, start=None).items] == [1, 2]
    with pytest.raises(PermissionDenied):
        engine.deploy(CLERK, leave_request())


def test_a_refused_diagram_stores_nothing(engine):
    with pytest.raises(ValidationFailed) as caught:
        engine.deploy(ADMIN, leave_request().replace("</bpmn:process>", '<bpmn:scriptTask id="calc" name="Fee"/></bpmn:process>'))
    assert "scriptTask 'Fee' (calc) is not supported" in caught.value.message
    with pytest.raises(NotFound):
        engine.definition(CLERK, "leave")


def test_running_instances_finish_on_the_version_they_started_with(engine):
    # given an instance started on version 1
    engine.deploy(ADMIN, leave_request(name="Approve v1"))
    old = _start(engine)
    # when version 2 is deployed and a new instance starts
    engine.deploy(ADMIN, leave_request(name="Approve v2"))
    new = _start(engine)
    assert (old.definition_version, old.open_tasks[0].name) == (1, "Approve v1")
    assert (new.definition_version, new.open_tasks[0].name) == (2, "Approve v2")
    # then the old one still runs on version 1 (even in a fresh process with an empty cache)
    fresh = WorkflowService(EngineRepository(), OrgService(OrgRepository()), engine._clock)
    p1 = staff("p-1", "permits")
    done = fresh.complete_task(p1, old.id, old.open_tasks[0].id, {"approved": False})
    assert (done.definition_version, done.status) == (1, InstanceStatus.COMPLETED)


# --- starting and completing ----------------------------------------------------------------------


def test_start_and_complete_through_the_inbox_with_a_timeline(engine, clock):
    engine.deploy(ADMIN, leave_request())
    instance = _start(engine, days=3)
    # the clerk of the permits section finds the task through their department (from the org chart)
    p1 = Principal("p-1", roles=frozenset({Role.OFFICIAL}))
    inbox = engine.inbox(p1)
    assert [(i.instance_id, i.task_name, i.assignee.key) for i in inbox.items] == [(instance.id, "Approve", "department:permits")]
    clock.advance(minutes=5)
    after = engine.complete_task(p1, instance.id, inbox.items[0].task_id, {"approved": True, "note": "ok"}, "fine by me")
    # then the instance moves on to "File it" for every official, and the permits inbox is empty
    assert [t.element_id for t in after.open_tasks] == ["file"]
    assert engine.inbox(p1, InboxFilter(through=(AssigneeKind.DEPARTMENT,))).items == []
    assert [i.task_name for i in engine.inbox(CLERK).items] == ["File it"]
    done = engine.complete_task(CLERK, instance.id, after.open_tasks[0].id, {})
    assert done.status is InstanceStatus.COMPLETED and done.data["note"] == "ok"
    # and the timeline says who did what, when, with which data and comment
    timeline = engine.timeline(CLERK, instance.id, limit=50, start=None).items
    assert [e.kind for e in timeline] == [
        TimelineKind.STARTED, TimelineKind.TASK_OPENED, TimelineKind.TASK_COMPLETED, TimelineKind.TASK_OPENED,
        TimelineKind.TASK_COMPLETED, TimelineKind.COMPLETED,
    ]
    completed = timeline[2]
    assert (completed.actor, completed.at, completed.data, completed.comment) == (
        "person:p-1", clock.now, {"approved": True, "note": "ok"}, "fine by me")


def test_inbox_pages_and_filters(engine):
    engine.deploy(ADMIN, leave_request())
    started = [_start(engine, n=i) for i in range(5)]
    p1 = Principal("p-1", roles=frozenset({Role.OFFICIAL}))
    first = engine.inbox(p1, limit=2)
    second = engine.inbox(p1, limit=2, start=first.next_key)
    third = engine.inbox(p1, limit=2, start=second.next_key)
    seen = [i.instance_id for i in first.items + second.items + third.items]
    assert sorted(seen) == sorted(s.id for s in started) and third.next_key is None
    only = engine.inbox(p1, InboxFilter(definition_key="other"))
    assert only.items == []


@pytest.fixture
def started(engine):
    engine.deploy(ADMIN, leave_request())
    return _start(engine)


def test_completing_a_task_one_is_not_assigned_is_refused_and_changes_nothing(engine, started):
    before = _raw(started.id)
    with pytest.raises(PermissionDenied, match="assigned to department:permits"):
        engine.complete_task(staff("h-head"), started.id, started.open_tasks[0].id, {"approved": True})
    assert _raw(started.id) == before


def test_a_form_that_violates_the_schema_is_refused_and_changes_nothing(engine, started):
    before = _raw(started.id)
    with pytest.raises(ValidationFailed) as caught:
        engine.complete_task(staff("p-1"), started.id, started.open_tasks[0].id, {"approved": "yes", "extra": 1})
    assert {p.field for p in caught.value.problems} == {"data.approved", "data"}
    assert _raw(started.id) == before


def test_completing_twice_is_refused_the_second_time(engine, started):
    task_id = started.open_tasks[0].id
    engine.complete_task(staff("p-1"), started.id, task_id, {"approved": False})
    before = _raw(started.id)
    with pytest.raises(InvalidState, match="completed"):
        engine.complete_task(staff("p-1"), started.id, task_id, {"approved": False})
    assert _raw(started.id) == before


def test_unknown_instance_and_start_data_that_leaves_a_task_unassigned(engine, started):
    with pytest.raises(NotFound):
        engine.complete_task(staff("p-1"), "nope", "x", {})
    with pytest.raises(InvalidState, match="assigned to nobody"):
        engine.start(CLERK, "leave", {"department": ""})


@pytest.fixture
def serializable_dynamodb(monkeypatch):
    """moto's server runs requests on threads without DynamoDB's isolation: serialise them (see test_audit_log)."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self):
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


@pytest.mark.usefixtures("serializable_dynamodb")
def test_two_people_completing_the_same_task_at_once_exactly_one_wins(engine, started):
    task_id = started.open_tasks[0].id
    people = [staff("p-1"), staff("p-head")]
    barrier = threading.Barrier(len(people))

    def complete(person):
        barrier.wait()
        try:
            return engine.complete_task(person, started.id, task_id, {"approved": True}, f"by {person.id}")
        except InvalidState as exc:
            return exc

    for _ in range(5):  # a few rounds, each on a fresh instance, to give the race a chance
        with ThreadPoolExecutor(len(people)) as pool:
            outcomes = list(pool.map(complete, people))
        winners = [o for o in outcomes if not isinstance(o, Exception)]
        losers = [o for o in outcomes if isinstance(o, InvalidState)]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert "completed" in losers[0].message
        timeline = engine.timeline(CLERK, started.id, limit=50, start=None).items
        assert sum(e.kind is TimelineKind.TASK_COMPLETED for e in timeline) == 1
        started = _start(engine)
        task_id = started.open_tasks[0].id


# --- timers and escalation ------------------------------------------------------------------------


def test_timers_wake_at_the_right_time_with_a_reminder_to_the_assignees(engine, clock):
    engine.deploy(ADMIN, leave_request(boundaries=boundary("remind", "PT2H", "remind")))
    instance = _start(engine)
    assert instance.next_due == clock.now + timedelta(hours=2)
    clock.advance(minutes=119)
    assert engine.wake_due(SYSTEM).woken == 0
    clock.advance(minutes=2)
    report = engine.wake_due(SYSTEM)
    assert (report.woken, report.more) == (1, False)
    notes = engine.notifications(staff("p-1")).items
    assert [(n.kind, n.recipient.key, n.task_name) for n in notes] == [(TimelineKind.REMINDED, "department:permits", "Approve")]
    # the reminder fired once: waking again does nothing, and the task is still open
    assert engine.wake_due(SYSTEM).woken == 0
    assert [t.element_id for t in engine.instance(CLERK, instance.id).open_tasks] == ["approve"]


def test_escalation_reassigns_up_the_organisation_chart_level_by_level(engine, clock):
    # given a task for the permits section with an escalation every day (cycle), by reassignment
    cycle = boundary("escalate", '"R2/" + start_at + "/P1D"', "escalate", kind="timeCycle", escalation="reassign")
    engine.deploy(ADMIN, leave_request(boundaries=cycle))
    instance = _start(engine, start_at=(clock.now + timedelta(days=1)).isoformat())
    task_id = instance.open_tasks[0].id
    # when the first escalation comes due the task moves to the section's leader
    clock.advance(days=1, minutes=1)
    engine.wake_due(SYSTEM)
    escalated = engine.instance(CLERK, instance.id).task(task_id)
    assert ([a.key for a in escalated.assignees], escalated.escalation_level) == (["person:p-head"], 1)
    assert [i.task_id for i in engine.inbox(staff("p-head")).items] == [task_id]
    assert engine.inbox(staff("p-1", "permits"), InboxFilter(through=(AssigneeKind.DEPARTMENT,))).items == []
    # and at the second, to the bureau head above
    clock.advance(days=1)
    engine.wake_due(SYSTEM)
    escalated = engine.instance(CLERK, instance.id).task(task_id)
    assert ([a.key for a in escalated.assignees], escalated.escalation_level) == (["person:h-head"], 2)
    kinds = [e.kind for e in engine.timeline(CLERK, instance.id, limit=50, start=None).items]
    assert kinds.count(TimelineKind.REASSIGNED) == 2
    # and the new assignee can complete it
    done = engine.complete_task(staff("h-head"), instance.id, task_id, {"approved": False})
    assert done.status is InstanceStatus.COMPLETED


def test_escalation_by_notification_tells_the_leader_and_extra_recipients(engine, clock):
    engine.deploy(ADMIN, leave_request(boundaries=boundary("late", "due_at", "escalate", kind="timeDate", notify="${boss}")))
    _start(engine, due_at=(clock.now + timedelta(hours=1)).isoformat(), boss="mayor")
    clock.advance(hours=2)
    engine.wake_due(SYSTEM)
    for leader in ("p-head", "mayor"):
        assert [n.kind for n in engine.notifications(staff(leader)).items] == [TimelineKind.ESCALATED]


def test_a_change_whose_writer_died_before_its_inbox_was_written_is_repaired(engine, clock, monkeypatch):
    engine.deploy(ADMIN, leave_request())
    instance = _start(engine)
    # given the process dies right after the instance is committed (nothing derived gets written)
    monkeypatch.setattr(EngineRepository, "apply", lambda self, changes: (_ for _ in ()).throw(SystemExit("died")))
    with pytest.raises(SystemExit):
        engine.complete_task(staff("p-1"), instance.id, instance.open_tasks[0].id, {"approved": True})
    monkeypatch.undo()
    assert engine.inbox(CLERK).items == []  # the next task is in the instance, not yet in any inbox
    # when wake_due runs a minute later
    clock.advance(minutes=2)
    engine.wake_due(SYSTEM)
    # then the outbox is applied: the new task is in the inbox, the old one gone, the timeline complete
    assert [i.task_name for i in engine.inbox(CLERK).items] == ["File it"]
    assert engine.inbox(Principal("p-1")).items == []  # nothing left for the permits section
    kinds = [e.kind for e in engine.timeline(CLERK, instance.id, limit=50, start=None).items]
    assert kinds.count(TimelineKind.TASK_COMPLETED) == 1


def test_only_the_scheduler_wakes_timers(engine):
    with pytest.raises(PermissionDenied):
        engine.wake_due(CLERK)


def test_people_without_part_in_an_instance_cannot_read_it(engine, started):
    outsider = Principal("r-1", roles=frozenset({Role.RESIDENT}))
    with pytest.raises(PermissionDenied):
        engine.instance(outsider, started.id)
    assert engine.instances(outsider, [started.id]) == {}
    assert engine.instance(staff("p-1"), started.id).id == started.id


def test_a_timer_that_loses_to_a_concurrent_completion_leaves_the_others_woken(engine, clock, monkeypatch):
    # given three instances whose reminders are due
    engine.deploy(ADMIN, leave_request(boundaries=boundary("remind", "PT1H", "remind")))
    instances = [_start(engine, n=i) for i in range(3)]
    clock.advance(hours=2)
    # when someone completes the middle one's task after wake_due read it but before it writes
    original = EngineRepository.save_many

    def racing_save_many(self, changes):
        victim = instances[1]
        engine.complete_task(staff("p-1"), victim.id, victim.open_tasks[0].id, {"approved": False})
        return original(self, changes)

    monkeypatch.setattr(EngineRepository, "save_many", racing_save_many)
    report = engine.wake_due(SYSTEM)
    monkeypatch.undo()
    # then the other two are woken, the completion stands, and nothing was written over it
    assert (report.woken, report.conflicts) == (2, 1)
    assert engine.instance(CLERK, instances[1].id).status is InstanceStatus.COMPLETED
    reminded = {n.instance_id for n in engine.notifications(Principal("p-1", department="permits")).items}
    assert instances[0].id in reminded and instances[2].id in reminded
