"""Office workflows and 督办 supervision through the real schema: inboxes, forms, refusals, statistics."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sunflower.auth.principals import SYSTEM

FORM = {"type": "object", "required": ["approved"], "additionalProperties": False,
        "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}}}


def _props(**values: str) -> str:
    inner = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in values.items())
    return f"<bpmn:extensionElements><spiffworkflow:properties>{inner}</spiffworkflow:properties></bpmn:extensionElements>"


def leave_request(extra: str = "") -> str:
    """start -> approve (the applicant's department, a form) -> file (officials) -> end."""
    form = json.dumps(FORM).replace('"', "&quot;")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="urn:test">
  <bpmn:process id="leave" name="Leave request" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve"/>
    <bpmn:userTask id="approve" name="Approve">{_props(department="${department}", formSchema=form)}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="file"/>
    <bpmn:userTask id="file" name="File it">{_props(role="official")}<bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="file" targetRef="done"/>
    <bpmn:endEvent id="done"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    {extra}
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def staff(api):
    """Tokens of the chart's staff: government (mayor) > supervision office (s-1), housing (h-head, h-1), permits (p-1, p-2)."""
    from sunflower.container import services

    org = services().office.org
    org.add_department(SYSTEM, "区政府", code="gov")
    for code, name in [("supervision-office", "督查室"), ("housing", "住建局"), ("permits", "审批科")]:
        org.add_department(SYSTEM, name, code=code, parent_id="gov")
    for ident, name, department in [("mayor", "区长", "gov"), ("s-1", "督查员", "supervision-office"),
                                    ("h-head", "局长", "housing"), ("h-1", "科员", "housing"), ("p-1", "科员", "permits"),
                                    ("p-2", "科员", "permits")]:
        org.add_staff(SYSTEM, ident, name, department)
    org.set_leader(SYSTEM, "gov", "mayor")
    org.set_leader(SYSTEM, "housing", "h-head")
    return {who: api.token("official", user=who) for who in ("mayor", "s-1", "h-head", "h-1", "p-1", "p-2", "clerk")} | {
        "admin": api.token("admin", user="admin-1")}


@pytest.fixture
def started(api, staff):
    """A leave request of the permits section, waiting for its approval."""
    deployed = api.data("DeployWorkflow", {"input": {"bpmnXml": leave_request()}}, token=staff["admin"])["deployWorkflow"]
    assert (deployed["key"], deployed["version"]) == ("leave", 1), deployed
    instance = api.data("StartWorkflow", {"input": {"definitionKey": "leave", "variables": {"department": "permits"}}},
                        token=staff["clerk"])["startWorkflow"]
    assert instance["status"] == "RUNNING", instance
    return instance


def _complete(api, token, instance, form, **extra):
    task = instance["openTasks"][0]
    variables = {"input": {"instanceId": instance["id"], "taskId": task["taskId"], "formData": form, **extra}}
    return api.data("CompleteTask", variables, token=token)["completeTask"]


def _instance(api, token, instance_id):
    return api.data("WorkflowInstance", {"id": instance_id, "first": 50}, token=token)["workflowInstance"]


# --- the engine -----------------------------------------------------------------------------------


def test_the_inbox_shows_the_tasks_that_reach_you_with_their_form(api, staff, started):
    # when the permits clerk and someone of another department open their inboxes
    mine = api.data("OfficeInbox", {"filter": {"definitionKey": "leave"}}, token=staff["p-1"])["inbox"]["edges"]
    theirs = api.data("OfficeInbox", {}, token=staff["h-1"])["inbox"]["edges"]

    # then the approval is in the clerk's, through their department, with its form; not in the other's
    assert [e["node"]["name"] for e in mine] == ["Approve"]
    node = mine[0]["node"]
    assert node["reachedYouThrough"] == {"kind": "DEPARTMENT", "id": "permits"}
    assert node["instanceId"] == started["id"] and node["isOpen"] is True
    assert node["formSchema"] == FORM
    assert theirs == []
    task = api.data("WorkflowTask", {"instanceId": started["id"], "taskId": node["taskId"]}, token=staff["p-1"])["task"]
    assert task["assignees"] == [{"kind": "DEPARTMENT", "id": "permits"}] and task["instance"]["version"] == started["version"]


def test_completing_moves_the_instance_on_and_the_timeline_records_who_what_and_why(api, staff, started):
    done = _complete(api, staff["p-1"], started, {"approved": True, "note": "ok"}, comment="同意")
    assert [t["name"] for t in done["openTasks"]] == ["File it"]
    api.data("AnnotateTask", {"input": {"instanceId": done["id"], "taskId": done["openTasks"][0]["taskId"],
                                        "comment": "请尽快归档"}}, token=staff["p-1"])

    timeline = _instance(api, staff["clerk"], started["id"])["timeline"]["edges"]
    kinds = [e["node"]["kind"] for e in timeline]
    assert kinds == ["STARTED", "TASK_OPENED", "TASK_COMPLETED", "TASK_OPENED", "NOTE"]
    completed = timeline[2]["node"]
    assert (completed["actor"], completed["data"], completed["comment"]) == ("person:p-1", {"approved": True, "note": "ok"}, "同意")
    assert timeline[4]["node"]["taskName"] == "File it" and timeline[4]["node"]["comment"] == "请尽快归档"


def test_completing_a_task_assigned_to_someone_else_is_refused_and_changes_nothing(api, staff, started):
    refused = _complete(api, staff["h-1"], started, {"approved": True})

    assert refused["__typename"] == "PermissionDeniedError"
    assert "department:permits" in refused["message"]
    assert _instance(api, staff["clerk"], started["id"])["version"] == started["version"]


def test_completing_a_task_twice_is_refused_the_second_time(api, staff, started):
    first = _complete(api, staff["p-1"], started, {"approved": False})
    second = _complete(api, staff["p-1"], started, {"approved": False})

    assert first["__typename"] == "WorkflowInstance"
    assert second["__typename"] == "InvalidStateError" and "not open" in second["message"]
    assert _instance(api, staff["clerk"], started["id"])["version"] == first["version"]


def test_a_form_that_violates_the_tasks_schema_is_refused_naming_the_field(api, staff, started):
    refused = _complete(api, staff["p-1"], started, {"approved": "yes"})
    not_an_object = _complete(api, staff["p-1"], started, [1, 2])

    assert refused["__typename"] == "ValidationError"
    assert [f["field"] for f in refused["fields"]] == ["formData.approved"]
    assert not_an_object["__typename"] == "ValidationError" and not_an_object["fields"][0]["field"] == "formData"
    assert _instance(api, staff["clerk"], started["id"])["version"] == started["version"]


@pytest.fixture
def serializable_dynamodb(monkeypatch):
    """moto's server runs requests on threads without DynamoDB's isolation: serialise them."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self):
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


@pytest.mark.usefixtures("serializable_dynamodb")
def test_two_people_completing_the_same_task_at_once_exactly_one_wins(api, staff, started):
    barrier = threading.Barrier(2)

    def complete(who):
        barrier.wait()
        return _complete(api, staff[who], started, {"approved": True}, comment=f"by {who}")

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(complete, ["p-1", "p-2"]))

    assert sorted(o["__typename"] for o in outcomes) == ["InvalidStateError", "WorkflowInstance"], outcomes
    loser = next(o for o in outcomes if o["__typename"] == "InvalidStateError")
    assert "completed" in loser["message"]
    timeline = _instance(api, staff["clerk"], started["id"])["timeline"]["edges"]
    assert [e["node"]["kind"] for e in timeline].count("TASK_COMPLETED") == 1


def test_a_form_shown_at_an_older_version_is_refused(api, staff, started):
    stale = _complete(api, staff["p-1"], started, {"approved": True}, expectedVersion=started["version"] - 1)
    current = _complete(api, staff["p-1"], started, {"approved": True}, expectedVersion=started["version"])

    assert stale["__typename"] == "InvalidStateError" and "changed since you read it" in stale["message"]
    assert current["__typename"] == "WorkflowInstance"


def test_a_diagram_that_is_invalid_or_uses_an_unsupported_element_is_refused_naming_it(api, staff):
    script = leave_request('<bpmn:scriptTask id="calc_fee" name="Fee"/>')

    unsupported = api.data("DeployWorkflow", {"input": {"bpmnXml": script}}, token=staff["admin"])["deployWorkflow"]
    broken = api.data("DeployWorkflow", {"input": {"bpmnXml": "<bpmn:definitions"}}, token=staff["admin"])["deployWorkflow"]
    by_an_official = api.run("DeployWorkflow", {"input": {"bpmnXml": leave_request()}}, token=staff["clerk"])

    assert unsupported["__typename"] == "ValidationError"
    assert "scriptTask 'Fee' (calc_fee) is not supported" in unsupported["message"]
    assert "bpmnXml.calc_fee" in [f["field"] for f in unsupported["fields"]]
    assert broken["__typename"] == "ValidationError" and broken["fields"][0]["field"] == "bpmnXml"
    assert by_an_official["data"] is None and by_an_official["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    keys = [e["node"]["key"] for e in api.data("WorkflowDefinitions", {}, token=staff["clerk"])["workflowDefinitions"]["edges"]]
    assert "leave" not in keys and "supervision" in keys  # the built-in diagram is there on a fresh stack


# --- supervision ------------------------------------------------------------------------------------


def _today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _create(api, staff, **overrides):
    values = {"title": "整治老旧小区", "source": "LEADER_INSTRUCTION", "leaderId": "mayor", "responsibleDepartment": "housing",
              "deadline": (_today() + timedelta(days=60)).isoformat(), "assistingDepartments": ["permits"]}
    return api.data("CreateSupervisionItem", {"input": values | overrides}, token=staff["clerk"])["createSupervisionItem"]


def _do(api, token, task, form):
    variables = {"input": {"instanceId": task["instanceId"], "taskId": task["taskId"], "formData": form}}
    result = api.data("CompleteTask", variables, token=token)["completeTask"]
    assert result["__typename"] == "WorkflowInstance", result
    return result


def _inbox_task(api, token, element_id):
    edges = api.data("OfficeInbox", {"filter": {"definitionKey": "supervision"}}, token=token)["inbox"]["edges"]
    return next(e["node"] for e in edges if e["node"]["elementId"] == element_id)


def test_supervision_from_instruction_through_progress_and_review_to_on_time_statistics(api, staff):
    # given an instruction for the housing bureau
    item = _create(api, staff)
    assert (item["status"], item["light"]["color"]) == ("ASSIGNING", "GREEN"), item
    assert item["workflow"]["openTasks"][0]["assignees"] == [{"kind": "DEPARTMENT", "id": "housing"}]

    # when the bureau accepts it and names h-1, who reports progress and then completion
    _do(api, staff["h-head"], _inbox_task(api, staff["h-head"], "assign"), {"handler_id": "h-1"})
    report = api.data("ReportSupervisionProgress", {"input": {"itemId": item["id"], "text": "已完成摸底", "percent": 40}},
                      token=staff["h-1"])["reportSupervisionProgress"]
    _do(api, staff["h-1"], _inbox_task(api, staff["h-1"], "handle"), {"summary": "改造完成"})
    # and the supervision office approves it
    reviewed = api.data("ReviewSupervisionCompletion", {"input": {"itemId": item["id"], "approved": True, "opinion": "属实"}},
                        token=staff["s-1"])["reviewSupervisionCompletion"]

    # then the report is on the item, the item is completed on time, and the statistics say so
    assert report["__typename"] == "SupervisionReport" and report["item"]["progress"] == 40
    assert (reviewed["status"], reviewed["completedOnTime"], reviewed["light"]["color"]) == ("COMPLETED", True, "GREEN")
    shown = api.data("SupervisionItem", {"id": item["id"]}, token=staff["clerk"])["supervisionItem"]
    assert [r["node"]["text"] for r in shown["reports"]["edges"]] == ["已完成摸底"]
    assert shown["workflow"]["openTasks"] == []
    stats = api.data("SupervisionStatistics", {}, token=staff["clerk"])["supervisionStatistics"]
    assert stats == [{"departmentId": "housing", "total": 1, "completed": 1, "completedOnTime": 1, "open": 0,
                      "overdueOpen": 0, "due": 1, "onTimeRate": 1.0}]
    listed = api.data("SupervisionItems", {"filter": {"department": "housing"}}, token=staff["clerk"])["supervisionItems"]
    assert [e["node"]["id"] for e in listed["edges"]] == [item["id"]]


def test_a_review_with_nothing_to_review_and_progress_from_outsiders_are_refused(api, staff):
    item = _create(api, staff)

    early = api.data("ReviewSupervisionCompletion", {"input": {"itemId": item["id"], "approved": True}},
                     token=staff["s-1"])["reviewSupervisionCompletion"]
    outsider = api.data("ReportSupervisionProgress", {"input": {"itemId": item["id"], "text": "x"}},
                        token=api.token("official", user="stranger"))["reportSupervisionProgress"]

    assert early["__typename"] == "InvalidStateError" and "no completion waiting for review" in early["message"]
    assert outsider["__typename"] == "PermissionDeniedError"


def test_a_deadline_in_the_past_is_refused_naming_the_field(api, staff):
    refused = _create(api, staff, deadline=(_today() - timedelta(days=1)).isoformat())

    assert refused["__typename"] == "ValidationError"
    assert [f["field"] for f in refused["fields"]] == ["deadline"]
    assert "in the past" in refused["message"]
    assert api.data("SupervisionItems", {}, token=staff["clerk"])["supervisionItems"]["edges"] == []
