"""Deploy-time checks of BPMN/DMN, safe expressions, and the engine run with an injected clock (no AWS)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sunflower.common.errors import ValidationFailed
from sunflower.office.engine import expressions
from sunflower.office.engine.bpmn import compile_definition, form_problems, resolve_assignees
from sunflower.office.engine.models import Assignee, AssigneeKind, BoundaryAction

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="urn:test">
"""


def props(**values: str) -> str:
    inner = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in values.items())
    return f"<bpmn:extensionElements><spiffworkflow:properties>{inner}</spiffworkflow:properties></bpmn:extensionElements>"


def diagram(body: str, *, process_id: str = "p", lanes: str = "") -> str:
    return f'{HEAD}<bpmn:process id="{process_id}" name="Test" isExecutable="true">{lanes}{body}</bpmn:process></bpmn:definitions>'


def approval(task_extras: str = "", *, boundary: str = "", condition: str = "approved == True") -> str:
    """start -> approve (user task) -> gateway: approved -> end, otherwise back to approve."""
    return diagram(f"""
      <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve"/>
      <bpmn:userTask id="approve" name="Approve">{task_extras}<bpmn:incoming>f1</bpmn:incoming><bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
      {boundary}
      <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="gw"/>
      <bpmn:exclusiveGateway id="gw" default="f4"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing></bpmn:exclusiveGateway>
      <bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="end"><bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>
      <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="approve"/>
      <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    """)


def timer_boundary(value: str, *, action: str | None = "remind", kind: str = "timeDuration", interrupting: bool = False) -> str:
    extras = props(action=action) if action else ""
    return f"""
      <bpmn:boundaryEvent id="timer" attachedToRef="approve" cancelActivity="{str(interrupting).lower()}">{extras}
        <bpmn:outgoing>t1</bpmn:outgoing>
        <bpmn:timerEventDefinition><bpmn:{kind}>{value}</bpmn:{kind}></bpmn:timerEventDefinition>
      </bpmn:boundaryEvent>
      <bpmn:sequenceFlow id="t1" sourceRef="timer" targetRef="timer_end"/>
      <bpmn:endEvent id="timer_end"><bpmn:incoming>t1</bpmn:incoming></bpmn:endEvent>"""


T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


# --- what deploys --------------------------------------------------------------------------------


def test_a_valid_diagram_compiles_with_its_tasks_assignments_and_forms():
    schema = {"type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}}}
    compiled = compile_definition(approval(props(role="official", formSchema=json.dumps(schema).replace('"', "&quot;"))))
    task = compiled.user_tasks["approve"]
    assert (compiled.process_id, task.name, task.assignees, task.form_schema) == ("p", "Approve", ("role:official",), schema)


def test_the_supervision_diagram_deploys():
    path = Path(__file__).parents[3] / "sunflower/office/supervision/bpmn/supervision.bpmn"
    compiled = compile_definition(path.read_bytes())
    assert set(compiled.user_tasks) == {"assign", "handle", "review"}
    assert compiled.boundaries["handle_overdue"].action is BoundaryAction.ESCALATE


def test_camunda_properties_and_lanes_assign_tasks_too():
    camunda = '<bpmn:extensionElements><camunda:properties><camunda:property name="department" value="D1"/></camunda:properties></bpmn:extensionElements>'
    assert compile_definition(approval(camunda)).user_tasks["approve"].assignees == ("department:D1",)
    lanes = '<bpmn:laneSet id="ls"><bpmn:lane id="l1" name="person:p-7"><bpmn:flowNodeRef>approve</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>'
    body = approval().split('isExecutable="true">', 1)[1].rsplit("</bpmn:process>", 1)[0]
    assert compile_definition(diagram(body, lanes=lanes)).user_tasks["approve"].assignees == ("person:p-7",)


@pytest.mark.parametrize(
    "xml, field, words",
    [
        ("not xml at all", "bpmn", "not well-formed"),
        ('<?xml version="1.0"?><foo/>', "bpmn", "not a BPMN 2.0 document"),
        (approval(), "approve", "assigned to nobody"),
        (approval(props(role="official"), condition="__import__('os').system('id')"), "f3", "allowed functions"),
        (approval(props(role="official"), condition="approved.__class__"), "f3", "Attribute"),
        (approval(props(role="official", formSchema="{not json")), "approve", "formSchema that is not JSON"),
        (approval(props(role="official", formSchema="{&quot;type&quot;: 7}")), "approve", "not a valid JSON Schema"),
        (approval(props(role="official"), boundary=timer_boundary('"PT1H"', action="explode")), "timer", "action 'explode'"),
    ],
)
def test_invalid_diagrams_are_refused_naming_the_element(xml, field, words):
    with pytest.raises(ValidationFailed) as caught:
        compile_definition(xml)
    assert field in [p.field for p in caught.value.problems], caught.value.problems
    assert words in caught.value.message


@pytest.mark.parametrize(
    "element, tag",
    [
        ('<bpmn:scriptTask id="calc" name="Compute fee"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>', "scriptTask 'Compute fee' (calc)"),
        ('<bpmn:serviceTask id="call" name="Call bank"/>', "serviceTask 'Call bank' (call)"),
        ('<bpmn:callActivity id="sub" calledElement="other"/>', "callActivity (sub)"),
        ('<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition id="msg"/></bpmn:intermediateCatchEvent>', "messageEventDefinition (msg)"),
    ],
)
def test_unsupported_elements_are_refused_by_name(element, tag):
    xml = approval(props(role="official")).replace("</bpmn:process>", element + "</bpmn:process>")
    with pytest.raises(ValidationFailed) as caught:
        compile_definition(xml)
    assert f"{tag} is not supported" in caught.value.message


def test_a_loop_marker_is_named_with_the_task_it_is_on():
    task = props(role="official") + "<bpmn:multiInstanceLoopCharacteristics/>"
    with pytest.raises(ValidationFailed) as caught:
        compile_definition(approval(task))
    assert "multiInstanceLoopCharacteristics in userTask 'Approve' (approve) is not supported" in caught.value.message
    assert caught.value.problems[0].field == "approve"


def test_every_problem_is_reported_at_once():
    xml = approval().replace("</bpmn:process>", '<bpmn:scriptTask id="calc"/></bpmn:process>')
    with pytest.raises(ValidationFailed) as caught:
        compile_definition(xml)
    assert {p.field for p in caught.value.problems} == {"approve", "calc"}


def test_a_dmn_with_an_unsafe_entry_is_refused():
    dmn = """<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="x">
      <decision id="fee" name="Fee"><decisionTable id="t"><input id="i" label="n"><inputExpression id="ie" typeRef="integer"><text>n</text></inputExpression></input>
      <output id="o" name="fee" typeRef="integer"/>
      <rule id="r1"><inputEntry id="e1"><text>open('x')</text></inputEntry><outputEntry id="oe1"><text>1</text></outputEntry></rule>
      </decisionTable></decision></definitions>"""
    with pytest.raises(ValidationFailed) as caught:
        compile_definition(approval(props(role="official")), [dmn])
    assert caught.value.problems[0].field == "e1"


# --- expressions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["().__class__", "__import__('os')", "open('/etc/passwd')", "[x for x in y]", "lambda: 1"])
def test_expressions_outside_the_safe_subset_are_refused(text):
    with pytest.raises(expressions.UnsafeExpression):
        expressions.check(text)


def test_safe_expressions_evaluate_over_data_and_data_cannot_shadow_functions():
    assert expressions.evaluate("len(items) > 1 and amount >= 100", {"items": [1, 2], "amount": 100}) is True
    assert expressions.evaluate("len(x)", {"x": [1], "len": "evil", "__builtins__": {"open": open}}) == 1


def test_assignees_resolve_from_data():
    assert resolve_assignees(["department:${dept}", "person:p1"], {"dept": "D9"}) == (
        Assignee(AssigneeKind.DEPARTMENT, "D9"),
        Assignee(AssigneeKind.PERSON, "p1"),
    )
    assert resolve_assignees(["person:${people}"], {"people": ["a", "b"]}) == (
        Assignee(AssigneeKind.PERSON, "a"),
        Assignee(AssigneeKind.PERSON, "b"),
    )


def test_form_problems_name_the_field():
    schema = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer", "minimum": 1}}}
    assert [p.field for p in form_problems(schema, {})] == ["data.amount"]
    assert [p.field for p in form_problems(schema, {"amount": 0})] == ["data.amount"]
    assert form_problems(schema, {"amount": 3}) == ()


# --- running with an injected clock ------------------------------------------------------------------


def test_a_boundary_timer_fires_by_the_injected_clock_and_survives_serialisation():
    compiled = compile_definition(approval(props(role="official"), boundary=timer_boundary("PT1H")))
    # given an instance started at T0 (the bare ISO duration reads as if quoted)
    step = compiled.start({}, T0)
    assert step.next_due == T0 + timedelta(hours=1)
    state = compiled.dump(step.workflow)
    # when woken 59 minutes later nothing fires; at 61 minutes the reminder does
    assert compiled.wake(compiled.load(state), T0 + timedelta(minutes=59)).fired == []
    fired = compiled.wake(compiled.load(state), T0 + timedelta(minutes=61)).fired
    assert [(f.element_id, f.boundary.action) for f in fired] == [("timer", BoundaryAction.REMIND)]


def test_a_naive_timer_date_is_district_time():
    compiled = compile_definition(approval(props(role="official"), boundary=timer_boundary("2026-03-02T12:00:00", kind="timeDate")))
    assert compiled.start({}, T0).next_due == datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def test_completing_runs_the_gateway_on_the_form_data():
    compiled = compile_definition(approval(props(role="official")))
    step = compiled.start({}, T0)
    again = compiled.complete(step.workflow, step.ready[0].id, {"approved": False}, T0)
    assert [r.element_id for r in again.ready] == ["approve"] and not again.completed
    done = compiled.complete(again.workflow, again.ready[0].id, {"approved": True}, T0)
    assert done.completed and done.data["approved"] is True


def test_an_embedded_sub_process_runs_and_survives_serialisation():
    inner = f"""
      <bpmn:startEvent id="s"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>
      <bpmn:sequenceFlow id="a" sourceRef="s" targetRef="sub"/>
      <bpmn:subProcess id="sub"><bpmn:incoming>a</bpmn:incoming><bpmn:outgoing>b</bpmn:outgoing>
        <bpmn:startEvent id="ss"><bpmn:outgoing>sa</bpmn:outgoing></bpmn:startEvent>
        <bpmn:sequenceFlow id="sa" sourceRef="ss" targetRef="inner"/>
        <bpmn:userTask id="inner" name="Inner">{props(role="official")}<bpmn:incoming>sa</bpmn:incoming><bpmn:outgoing>sb</bpmn:outgoing></bpmn:userTask>
        <bpmn:sequenceFlow id="sb" sourceRef="inner" targetRef="se"/>
        <bpmn:endEvent id="se"><bpmn:incoming>sb</bpmn:incoming></bpmn:endEvent>
      </bpmn:subProcess>
      <bpmn:sequenceFlow id="b" sourceRef="sub" targetRef="e"/>
      <bpmn:endEvent id="e"><bpmn:incoming>b</bpmn:incoming></bpmn:endEvent>"""
    compiled = compile_definition(diagram(inner))
    step = compiled.start({}, T0)
    assert [r.element_id for r in step.ready] == ["inner"]
    done = compiled.complete(compiled.load(compiled.dump(step.workflow)), step.ready[0].id, {"x": 1}, T0)
    assert done.completed and done.data == {"x": 1}


FEE_DMN = """<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="fees" name="Fees" namespace="urn:test">
  <decision id="fee" name="Fee"><decisionTable id="table" hitPolicy="UNIQUE">
    <input id="in" label="Area"><inputExpression id="ie" typeRef="number"><text>area</text></inputExpression></input>
    <output id="out" name="fee" typeRef="number"/>
    <rule id="small"><inputEntry id="e1"><text>&lt; 100</text></inputEntry><outputEntry id="o1"><text>50</text></outputEntry></rule>
    <rule id="large"><inputEntry id="e2"><text>&gt;= 100</text></inputEntry><outputEntry id="o2"><text>area * 2</text></outputEntry></rule>
  </decisionTable></decision></definitions>"""


def test_a_dmn_decision_table_sets_data_through_the_safe_evaluator():
    rule = '<bpmn:extensionElements><spiffworkflow:calledDecisionId>fee</spiffworkflow:calledDecisionId></bpmn:extensionElements>'
    body = f"""
      <bpmn:startEvent id="s"><bpmn:outgoing>a</bpmn:outgoing></bpmn:startEvent>
      <bpmn:sequenceFlow id="a" sourceRef="s" targetRef="decide"/>
      <bpmn:businessRuleTask id="decide" name="Work out the fee">{rule}<bpmn:incoming>a</bpmn:incoming><bpmn:outgoing>b</bpmn:outgoing></bpmn:businessRuleTask>
      <bpmn:sequenceFlow id="b" sourceRef="decide" targetRef="pay"/>
      <bpmn:userTask id="pay" name="Pay">{props(role="official")}<bpmn:incoming>b</bpmn:incoming><bpmn:outgoing>c</bpmn:outgoing></bpmn:userTask>
      <bpmn:sequenceFlow id="c" sourceRef="pay" targetRef="e"/>
      <bpmn:endEvent id="e"><bpmn:incoming>c</bpmn:incoming></bpmn:endEvent>"""
    compiled = compile_definition(diagram(body), [FEE_DMN])
    assert compiled.start({"area": 40}, T0).ready[0].data["fee"] == 50
    assert compiled.start({"area": 120}, T0).ready[0].data["fee"] == 240
