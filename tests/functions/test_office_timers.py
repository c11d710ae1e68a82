"""functions/office_timers.py on its EventBridge schedule: wakes every due workflow once, leaves the rest."""

from datetime import UTC, datetime, timedelta

import pytest

from sunflower.auth.principals import SYSTEM, Principal, Role
from sunflower.local.lambda_context import LambdaContext

REMINDED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="urn:test">
  <bpmn:process id="reminded" name="Reminded" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sign"/>
    <bpmn:userTask id="sign" name="Sign">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="role" value="official"/></spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="nudge" attachedToRef="sign" cancelActivity="false">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="action" value="remind"/></spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>wait</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="nudge" targetRef="nudged"/>
    <bpmn:endEvent id="nudged"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="sign" targetRef="done"/>
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
OFFICIAL = Principal("o-1", roles=frozenset({Role.OFFICIAL}))


@pytest.fixture
def instances(local_cloud):
    """Started two hours ago: 23 reminders due an hour ago, 4 due in two days."""
    from sunflower.office.wiring import build_office

    past = datetime.now(UTC) - timedelta(hours=2)
    office = build_office(clock=lambda: past)
    office.workflows.deploy(SYSTEM, REMINDED)
    due = office.workflows.start_many(SYSTEM, "reminded", [({"wait": "PT1H"}, f"due-{i}") for i in range(23)])
    later = office.workflows.start_many(SYSTEM, "reminded", [({"wait": "P2D"}, f"later-{i}") for i in range(4)])
    return due, later


def test_the_scheduled_run_wakes_every_due_instance_once_in_batches(instances, lambda_context, events, monkeypatch):
    from functions import office_timers
    from sunflower.container import services

    # given more due timers than one call of the engine takes
    monkeypatch.setattr(office_timers, "BATCH", 5)
    event = events("eventbridge_scheduled.json")

    # when the schedule fires twice
    first = office_timers.handler(event, lambda_context)
    second = office_timers.handler(event, lambda_context)

    # then the first run reminded each due instance once, over several calls, and the second had nothing to do
    assert (first["woken"], first["conflicts"], first["failed"], first["more"]) == (23, 0, 0, False)
    assert first["calls"] > 23 // 5
    assert (second["woken"], second["more"]) == (0, False)
    workflows = services().office.workflows
    reminders = workflows.notifications(OFFICIAL, limit=100).items
    due, later = instances
    assert sorted(n.instance_id for n in reminders) == sorted(i.id for i in due)
    assert all(workflows.instance(SYSTEM, i.id).next_due is None for i in due)
    assert all(workflows.instance(SYSTEM, i.id).next_due > datetime.now(UTC) + timedelta(days=1) for i in later)


def test_a_run_without_enough_time_left_leaves_the_timers_to_the_next(instances, events):
    from functions import office_timers

    short = LambdaContext.for_invocation("officeTimers", region="ap-east-1", timeout_s=5)

    result = office_timers.handler(events("eventbridge_scheduled.json"), short)

    assert (result["woken"], result["calls"], result["more"]) == (0, 0, True)
