"""Compile BPMN 2.0 (and DMN) into SpiffWorkflow specs, check them, and run and serialise workflows.

What a diagram may use is a whitelist (SUPPORTED): anything else is refused at deploy with the
element named, so a diagram that deploys runs. Sunflower's own settings live in the extension
properties that both common modellers edit (`spiffworkflow:properties` in SpiffArena's bpmn.io
modeller, `camunda:properties` in the Camunda Modeler):

  user task     role | department | person   who it goes to; comma-separated; `${name}` takes the
                                             value from the instance's data. Or: put the task in a
                                             lane named `role:official`, `department:D1`, `person:P1`.
                formSchema                   a JSON Schema the completion's form data must satisfy
                                             (or the text of a <sunflower:formSchema> element)
  boundary      action = remind | escalate   what Sunflower does when the timer fires
  timer         escalation = notify|reassign escalate by notifying the next leader up the chart
                                             (default) or by moving the task to them
                notify                       further recipients, as for `person` (e.g. ${leader_id})
  process       starters                     roles that may start it (default: official, admin)
                formSchema                   JSON Schema of the data an instance starts with

Timer values are expressions: a quoted ISO 8601 text, a name of instance data (e.g. `deadline`),
or a bare ISO 8601 text such as P3D, which is read as if quoted. Naive date-times are district time.
"""

import gzip
import json
import re
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import jsonschema
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.office.engine import expressions
from sunflower.office.engine.models import Assignee, AssigneeKind, BoundaryAction, EscalationMode

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
)
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SUNFLOWER_NS = "urn:sunflower:bpmn"
MAX_DEFINITION_BYTES = 1_000_000

SUPPORTED = frozenset(
    {
        # structure
        "definitions", "process", "collaboration", "participant", "laneSet", "lane", "childLaneSet",
        "flowNodeRef", "sequenceFlow", "conditionExpression", "incoming", "outgoing", "subProcess",
        # activities
        "userTask", "task", "businessRuleTask",
        # gateways
        "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
        # events
        "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
        "timerEventDefinition", "timeDate", "timeDuration", "timeCycle", "terminateEventDefinition",
        # notes and extensions
        "documentation", "extensionElements", "textAnnotation", "text", "association", "group",
        "category", "categoryValue",
    }
)
_WHY_NOT = {
    "scriptTask": "scripts would run code on the server; compute values in a DMN decision table instead",
    "serviceTask": "Sunflower calls other systems from its own services, not from diagrams",
    "callActivity": "deploy the called process into this diagram as an embedded sub-process",
    "multiInstanceLoopCharacteristics": "give each participant a task of their own",
    "standardLoopCharacteristics": "draw the loop with a gateway",
}
_UNSUPPORTED_EXTENSIONS = {"preScript", "postScript", "serviceTaskOperator"}
_ISO_LITERAL = re.compile(
    r"^(R\d*/.+|P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?|\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?)$"
)
_VAR = re.compile(r"^\$\{(.+)\}$")
_ALLOWED_STARTERS_DEFAULT = ("official", "admin")

# --- clock -----------------------------------------------------------------------------------
# SpiffWorkflow's timers read the wall clock (datetime.now) inside its timer module. The module is
# given a datetime whose now() is the engine's injected clock while an engine call runs, so timers
# fire by the clock Sunflower was given (and tests can move time by hand).

_engine_now: ContextVar[datetime | None] = ContextVar("sunflower_engine_now", default=None)


class _EngineDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        moment = _engine_now.get()
        if moment is None:
            return super().now(tz)
        moment = cls.fromtimestamp(moment.timestamp(), UTC)
        return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)


_timer.datetime = _EngineDatetime
_timer.LOCALTZ = ZoneInfo("Asia/Shanghai")  # the district's; WorkflowService sets it from settings


def set_district_zone(zone: str) -> None:
    """Read naive date-times in timer expressions as district time rather than the server's zone."""
    _timer.LOCALTZ = ZoneInfo(zone)


@contextmanager
def engine_clock(now: datetime):
    token = _engine_now.set(now)
    try:
        yield
    finally:
        _engine_now.reset(token)


# --- expressions -----------------------------------------------------------------------------


class _SafeEnvironment(BasePythonScriptEngineEnvironment):
    def evaluate(self, expression, context, external_context=None):
        return expressions.evaluate(expression, context, external_context)

    def execute(self, script, context, external_context=None):
        raise SpiffWorkflowException("scripts are not supported")

    def call_service(self, context, **kwargs):
        raise SpiffWorkflowException("service tasks are not supported")


class SafeScriptEngine(PythonScriptEngine):
    def __init__(self) -> None:
        super().__init__(environment=_SafeEnvironment())


SCRIPT_ENGINE = SafeScriptEngine()

# --- serialisation ---------------------------------------------------------------------------
# The spec is the definition's, stored once with it: an instance stores only its state.


class _StateConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True, script_engine=SCRIPT_ENGINE)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_config = dict(SPIFF_CONFIG)
_config[BpmnWorkflow] = _StateConverter
_SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_config))
STATE_FORMAT = f"spiff-{_SERIALIZER.VERSION}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- the compiled definition -----------------------------------------------------------------


@dataclass(frozen=True)
class UserTaskInfo:
    element_id: str
    name: str
    assignees: tuple[str, ...]  # "kind:value" where value may be ${expr}
    form_schema: dict | None
    instructions: str


@dataclass(frozen=True)
class BoundaryInfo:
    element_id: str
    attached_to: str
    action: BoundaryAction | None
    escalation: EscalationMode
    notify: tuple[str, ...]
    interrupting: bool


@dataclass(frozen=True)
class FiredTimer:
    element_id: str
    boundary: BoundaryInfo | None
    attached_task_id: str | None  # the open user task the boundary event is attached to


@dataclass(frozen=True)
class ReadyTask:
    id: str
    element_id: str
    data: dict


@dataclass
class Step:
    """What one engine call did."""

    workflow: BpmnWorkflow
    ready: list[ReadyTask]
    fired: list[FiredTimer]
    next_due: datetime | None
    completed: bool
    data: dict


@dataclass(frozen=True)
class CompiledDefinition:
    process_id: str
    name: str
    spec: Any
    subprocess_specs: dict
    user_tasks: dict[str, UserTaskInfo]
    boundaries: dict[str, BoundaryInfo]
    start_schema: dict | None
    starters: tuple[str, ...]
    timer_elements: frozenset[str] = field(default_factory=frozenset)

    # --- running ---

    def start(self, data: Mapping[str, Any], now: datetime) -> Step:
        with engine_clock(now):
            workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=SCRIPT_ENGINE)
            workflow.task_tree.data.update(data)
            fired: list[FiredTimer] = []
            _run(workflow, self, fired)
            return self._step(workflow, fired)

    def complete(self, workflow: BpmnWorkflow, task_id: str, data: Mapping[str, Any], now: datetime) -> Step:
        with engine_clock(now):
            task = workflow.get_task_from_id(UUID(task_id))
            task.data.update(data)
            task.run()
            fired: list[FiredTimer] = []
            _run(workflow, self, fired)
            return self._step(workflow, fired)

    def wake(self, workflow: BpmnWorkflow, now: datetime) -> Step:
        with engine_clock(now):
            fired: list[FiredTimer] = []
            workflow.refresh_timers()
            _run(workflow, self, fired)
            return self._step(workflow, fired)

    def _step(self, workflow: BpmnWorkflow, fired: list[FiredTimer]) -> Step:
        ready = [
            ReadyTask(str(t.id), t.task_spec.bpmn_id, t.data)
            for t in workflow.get_tasks(state=TaskState.READY, manual=True)
        ]
        last = workflow.last_task
        data = dict(last.data) if last is not None else {}
        return Step(workflow, ready, fired, _next_due(workflow), workflow.completed, data)

    # --- state ---

    def dump(self, workflow: BpmnWorkflow) -> bytes:
        state = _SERIALIZER.to_dict(workflow)
        return gzip.compress(json.dumps(state, separators=(",", ":"), default=_json_default).encode(), 1)

    def load(self, state: bytes) -> BpmnWorkflow:
        dct = json.loads(gzip.decompress(state))
        return _SERIALIZER.registry.restore(dct, spec=self.spec, subprocess_specs=self.subprocess_specs)


def _run(workflow: BpmnWorkflow, definition: CompiledDefinition, fired: list[FiredTimer]) -> None:
    def did_complete(task: Task) -> None:
        timer = _timer_that_fired(task, definition)
        if timer is None:
            return
        spec = timer.task_spec
        boundary = definition.boundaries.get(spec.bpmn_id)
        attached = None
        if boundary is not None and isinstance(spec, BoundaryEvent) and timer.parent is not None:
            main = [c for c in timer.parent.children if not isinstance(c.task_spec, BoundaryEvent)]
            attached = str(main[0].id) if main else None
        fired.append(FiredTimer(spec.bpmn_id, boundary, attached))

    try:
        workflow.do_engine_steps(did_complete_task=did_complete)
        # a timer that came due while the steps ran is caught now, not at the next wake
        workflow.refresh_timers()
        workflow.do_engine_steps(did_complete_task=did_complete)
    except SpiffWorkflowException as exc:
        raise WorkflowError(_describe(exc)) from exc


def _is_cycle(spec) -> bool:
    return isinstance(getattr(spec, "event_definition", None), CycleTimerEventDefinition)


def _timer_that_fired(task: Task, definition: CompiledDefinition) -> Task | None:
    spec = task.task_spec
    if spec.bpmn_id in definition.timer_elements:
        return None if _is_cycle(spec) else task  # a cycle completes only after its last repetition
    parent = task.parent
    if parent is not None and parent.task_spec.bpmn_id in definition.timer_elements and _is_cycle(parent.task_spec):
        return parent  # each repetition of a cycle timer starts a branch: its first task tells
    return None


class WorkflowError(Exception):
    """The diagram could not go on with this instance's data (e.g. no gateway condition held)."""


def _describe(exc: SpiffWorkflowException) -> str:
    where = getattr(getattr(exc, "task_spec", None), "bpmn_id", None) or getattr(exc, "task_name", None)
    text = str(exc).split("\n")[0]
    return f"{where}: {text}" if where else text


def _next_due(workflow: BpmnWorkflow) -> datetime | None:
    due: list[datetime] = []
    for task in workflow.event_manager.tasks.values():
        definition = task.task_spec.event_definition
        if isinstance(definition, TimerEventDefinition):
            value = definition.details(task).value
            if isinstance(value, str):
                try:
                    moment = TimerEventDefinition.get_datetime(value)
                except ValueError:
                    continue
                due.append(datetime.fromtimestamp(moment.timestamp(), UTC))
    return min(due) if due else None


# --- compiling -------------------------------------------------------------------------------


def _local(element) -> str:
    return etree.QName(element).localname


def _describe_element(element) -> str:
    name = element.get("name")
    ident = element.get("id")
    label = _local(element)
    if name:
        label += f" '{name}'"
    if ident:
        label += f" ({ident})"
    return label


def _problem_field(element) -> str:
    """The id of the element a problem is about (what a modeller highlights), or its tag."""
    node = element
    while node is not None and not node.get("id"):
        node = node.getparent()
    return node.get("id") if node is not None else _local(element)


def _properties(element) -> dict[str, str]:
    props: dict[str, str] = {}
    for ns in (SPIFF_NS, CAMUNDA_NS):
        for prop in element.iterfind(f"{{{BPMN_NS}}}extensionElements/{{{ns}}}properties/{{{ns}}}property"):
            if prop.get("name"):
                props[prop.get("name")] = prop.get("value", "")
    return props


def _parse_xml(text: str | bytes, what: str):
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_DEFINITION_BYTES:
        raise ValidationFailed.on(what, f"is larger than {MAX_DEFINITION_BYTES // 1000} kB")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        return etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise ValidationFailed.on(what, f"is not well-formed XML: {exc}") from None


class _Problems:
    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, element, message: str) -> None:
        self.items.append(FieldProblem(_problem_field(element), f"{_describe_element(element)} {message}"))

    def raise_if_any(self) -> None:
        if self.items:
            summary = "; ".join(p.message for p in self.items[:5])
            more = f" (and {len(self.items) - 5} more)" if len(self.items) > 5 else ""
            raise ValidationFailed(f"bpmn: {summary}{more}", problems=tuple(self.items))


def _check_expression(problems: _Problems, element, text: str | None, what: str) -> None:
    if text is None or not text.strip():
        problems.add(element, f"has an empty {what}")
        return
    try:
        expressions.check(text)
    except expressions.UnsafeExpression as exc:
        problems.add(element, f"has a {what} that {exc}: {text.strip()!r}")


def _check_value(problems: _Problems, element, value: str, what: str) -> None:
    match = _VAR.match(value.strip())
    if match:
        _check_expression(problems, element, match.group(1), what)


def _assignee_specs(element, lanes: dict[str, str], problems: _Problems) -> tuple[str, ...]:
    props = _properties(element)
    specs: list[str] = []
    for kind in AssigneeKind:
        for value in filter(None, (v.strip() for v in props.get(kind.value, "").split(","))):
            _check_value(problems, element, value, f"{kind.value} value")
            specs.append(f"{kind.value}:{value}")
    if not specs:
        lane = lanes.get(element.get("id", ""))
        if lane:
            kind, _, value = lane.partition(":")
            if kind.strip() in {k.value for k in AssigneeKind} and value.strip():
                specs.append(f"{kind.strip()}:{value.strip()}")
    return tuple(specs)


def _form_schema(element, problems: _Problems) -> dict | None:
    text = _properties(element).get("formSchema")
    if text is None:
        node = element.find(f"{{{BPMN_NS}}}extensionElements/{{{SUNFLOWER_NS}}}formSchema")
        text = node.text if node is not None else None
    if text is None or not text.strip():
        return None
    try:
        schema = json.loads(text)
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except json.JSONDecodeError as exc:
        problems.add(element, f"has a formSchema that is not JSON: {exc.msg} at line {exc.lineno}")
        return None
    except jsonschema.SchemaError as exc:
        problems.add(element, f"has a formSchema that is not a valid JSON Schema: {exc.message}")
        return None
    if not isinstance(schema, dict):
        problems.add(element, "has a formSchema that is not a JSON object")
        return None
    return schema


def _instructions(element) -> str:
    doc = element.find(f"{{{BPMN_NS}}}documentation")
    if doc is not None and doc.text:
        return doc.text.strip()
    node = element.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}instructionsForEndUser")
    return node.text.strip() if node is not None and node.text else ""


def _lanes(process) -> dict[str, str]:
    """Element id -> the name of the innermost lane holding it."""
    owner: dict[str, str] = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.iterfind(f"{{{BPMN_NS}}}flowNodeRef"):
            if ref.text:
                owner[ref.text.strip()] = lane.get("name", "")  # inner lanes come later and win
    return owner


def _where(element) -> str:
    """`scriptTask 'Compute' (Activity_1)`, or `loopCharacteristics in userTask 'Sign' (Task_2)`."""
    if element.get("id"):
        return _describe_element(element)
    owner = element.getparent()
    while owner is not None and not owner.get("id"):
        owner = owner.getparent()
    return f"{_local(element)} in {_describe_element(owner)}" if owner is not None else _local(element)


def _check_elements(root, problems: _Problems) -> None:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        ns, local = etree.QName(element).namespace, _local(element)
        why = None
        if ns == BPMN_NS and local not in SUPPORTED:
            why = _WHY_NOT.get(local, "Sunflower's engine does not run it")
        elif ns in (SPIFF_NS, CAMUNDA_NS) and local in _UNSUPPORTED_EXTENSIONS:
            why = "scripts would run code on the server"
        elif ns == CAMUNDA_NS and local not in {"properties", "property"}:
            # listeners, connectors, forms, in/out mappings: silently ignoring them would mislead
            why = "Sunflower's engine would ignore it"
        if why:
            problems.items.append(FieldProblem(_problem_field(element), f"{_where(element)} is not supported: {why}"))


def _check_events(process, problems: _Problems) -> None:
    timer_children = {"timerEventDefinition"}
    for start in process.iter(f"{{{BPMN_NS}}}startEvent"):
        definitions = [c for c in start if _local(c).endswith("EventDefinition")]
        if definitions and start.getparent() is process:
            problems.add(start, "has an event definition: a process starts through Sunflower's service (use a none start event)")
    for tag in ("intermediateCatchEvent", "boundaryEvent"):
        for event in process.iter(f"{{{BPMN_NS}}}{tag}"):
            kinds = {_local(c) for c in event if _local(c).endswith("EventDefinition")}
            if not kinds <= timer_children or not kinds:
                problems.add(event, "must be a timer event (message, signal and other triggers are not supported)")
    for event in process.iter(f"{{{BPMN_NS}}}intermediateThrowEvent"):
        if any(_local(c).endswith("EventDefinition") for c in event):
            problems.add(event, "may only be a none event (throwing messages or signals is not supported)")
    for task in process.iter(f"{{{BPMN_NS}}}businessRuleTask"):
        node = task.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}calledDecisionId")
        if node is None or not (node.text or "").strip():
            problems.add(task, "names no decision (spiffworkflow:calledDecisionId)")


def _prepare_timers(process, problems: _Problems) -> set[str]:
    """Quote bare ISO 8601 timer values, check the rest as expressions; returns the timer event ids."""
    ids: set[str] = set()
    for definition in process.iter(f"{{{BPMN_NS}}}timerEventDefinition"):
        event = definition.getparent()
        ids.add(event.get("id", ""))
        values = [c for c in definition if _local(c) in {"timeDate", "timeDuration", "timeCycle"}]
        if len(values) != 1:
            problems.add(event, "needs exactly one of timeDate, timeDuration or timeCycle")
            continue
        value = values[0]
        text = (value.text or "").strip()
        if _ISO_LITERAL.match(text):
            value.text = json.dumps(text)
        else:
            _check_expression(problems, event, text, _local(value))
    return ids


def _check_flows(process, problems: _Problems) -> None:
    for condition in process.iter(f"{{{BPMN_NS}}}conditionExpression"):
        _check_expression(problems, condition.getparent(), condition.text, "condition")


def _check_dmn(root, problems: _Problems) -> None:
    ns = etree.QName(root).namespace
    for tag in ("inputExpression", "outputEntry", "inputEntry"):
        for node in root.iter(f"{{{ns}}}{tag}"):
            text_node = node.find(f"{{{ns}}}text") if tag == "inputExpression" else node.find(f"{{{ns}}}text")
            text = (text_node.text if text_node is not None else node.findtext(f"{{{ns}}}text")) or ""
            text = text.strip()
            if not text or text == "-":
                continue
            candidate = text.replace("?", "dmninputexpr")
            try:
                expressions.check(candidate)
            except expressions.UnsafeExpression as first:
                if tag != "inputEntry":
                    problems.add(node, f"has an expression that {first}: {text!r}")
                    continue
                try:
                    expressions.check(f"dmninputexpr {candidate}")
                except expressions.UnsafeExpression:
                    problems.add(node, f"has an entry that {first}: {text!r}")


def compile_definition(
    bpmn: str | bytes, dmn: Iterable[str | bytes] = (), *, process_id: str | None = None
) -> CompiledDefinition:
    """Check and compile a diagram; raises ValidationFailed naming every offending element."""
    root = _parse_xml(bpmn, "bpmn")
    if _local(root) != "definitions" or etree.QName(root).namespace != BPMN_NS:
        raise ValidationFailed.on("bpmn", "is not a BPMN 2.0 document (bpmn:definitions)")
    dmn_roots = [_parse_xml(d, "dmn") for d in dmn]
    problems = _Problems()
    for d in dmn_roots:
        if etree.QName(d).namespace not in DMN_NAMESPACES or _local(d) != "definitions":
            raise ValidationFailed.on("dmn", "is not a DMN 1.x document (dmn:definitions)")
        _check_dmn(d, problems)
    _check_elements(root, problems)

    processes = [p for p in root.iterfind(f"{{{BPMN_NS}}}process")]
    if process_id:
        chosen = [p for p in processes if p.get("id") == process_id]
        if not chosen:
            raise ValidationFailed.on("processId", f"the diagram has no process {process_id!r}")
    else:
        chosen = [p for p in processes if p.get("isExecutable", "false") == "true"] or processes
        if len(chosen) != 1:
            raise ValidationFailed.on(
                "processId", "the diagram has several processes: say which one to deploy" if chosen else "the diagram has no process"
            )
    process = chosen[0]
    lanes = _lanes(process)
    _check_events(process, problems)
    timers = _prepare_timers(process, problems)
    _check_flows(process, problems)

    user_tasks: dict[str, UserTaskInfo] = {}
    for task in process.iter(f"{{{BPMN_NS}}}userTask"):
        assignees = _assignee_specs(task, lanes, problems)
        if not assignees:
            problems.add(
                task,
                "is assigned to nobody: give it a role, department or person property, "
                "or put it in a lane named role:…, department:… or person:…",
            )
        user_tasks[task.get("id")] = UserTaskInfo(
            task.get("id"), task.get("name") or task.get("id"), assignees, _form_schema(task, problems), _instructions(task)
        )

    boundaries: dict[str, BoundaryInfo] = {}
    for event in process.iter(f"{{{BPMN_NS}}}boundaryEvent"):
        props = _properties(event)
        action_text = props.get("action", "").strip()
        action = None
        if action_text:
            try:
                action = BoundaryAction(action_text)
            except ValueError:
                problems.add(event, f"has action {action_text!r}: use {' or '.join(a.value for a in BoundaryAction)}")
        escalation_text = props.get("escalation", EscalationMode.NOTIFY.value).strip()
        try:
            escalation = EscalationMode(escalation_text)
        except ValueError:
            problems.add(event, f"has escalation {escalation_text!r}: use {' or '.join(m.value for m in EscalationMode)}")
            escalation = EscalationMode.NOTIFY
        notify = tuple(filter(None, (v.strip() for v in props.get("notify", "").split(","))))
        for value in notify:
            _check_value(problems, event, value, "notify value")
        attached = event.get("attachedToRef", "")
        if action is not None and attached not in user_tasks:
            problems.add(event, "has an action but is not attached to a user task")
        boundaries[event.get("id")] = BoundaryInfo(
            event.get("id"), attached, action, escalation, notify, event.get("cancelActivity", "true") != "false"
        )

    start_schema = _form_schema(process, problems)
    starters = tuple(filter(None, (v.strip() for v in _properties(process).get("starters", "").split(","))))
    problems.raise_if_any()

    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        for d in dmn_roots:
            parser.add_dmn_xml(d)
        parser.add_bpmn_xml(root, filename="bpmn")
        spec = parser.get_spec(process.get("id"))
        subprocess_specs = parser.get_subprocess_specs(process.get("id"))
    except ValidationException as exc:
        where = exc.id or exc.tag or "bpmn"
        label = f"{exc.tag} '{exc.name}' ({exc.id})" if exc.name else f"{exc.tag} ({exc.id})" if exc.id else "the diagram"
        line = f" at line {exc.line_number}" if exc.line_number else ""
        message = str(exc).split("\n")[0]
        raise ValidationFailed(
            f"bpmn: {label}{line}: {message}", problems=(FieldProblem(where, f"{label}{line}: {message}"),)
        ) from None
    except SpiffWorkflowException as exc:
        raise ValidationFailed.on("bpmn", str(exc).split("\n")[0]) from None

    return CompiledDefinition(
        process_id=process.get("id"),
        name=process.get("name") or process.get("id"),
        spec=spec,
        subprocess_specs=subprocess_specs,
        user_tasks=user_tasks,
        boundaries=boundaries,
        start_schema=start_schema,
        starters=starters or _ALLOWED_STARTERS_DEFAULT,
        timer_elements=frozenset(timers),
    )


# --- assignment and forms --------------------------------------------------------------------


def resolve(value: str, data: Mapping[str, Any]) -> list[str]:
    """A property value: literal, or ${expr} evaluated on the data (a list gives several)."""
    match = _VAR.match(value.strip())
    if not match:
        return [value.strip()]
    result = expressions.evaluate(match.group(1), data)
    if result is None or result == "":
        return []
    if isinstance(result, list | tuple | set):
        return [str(r) for r in result if r not in (None, "")]
    return [str(result)]


def resolve_assignees(specs: Iterable[str], data: Mapping[str, Any]) -> tuple[Assignee, ...]:
    out: list[Assignee] = []
    for spec in specs:
        kind, _, value = spec.partition(":")
        for resolved in resolve(value, data):
            assignee = Assignee(AssigneeKind(kind), resolved)
            if assignee not in out:
                out.append(assignee)
    return tuple(out)


def form_problems(schema: Mapping[str, Any] | None, data: Mapping[str, Any], root: str = "data") -> tuple[FieldProblem, ...]:
    if not schema:
        return ()
    validator_cls = jsonschema.validators.validator_for(schema)
    problems = []
    for error in sorted(validator_cls(schema).iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [name for name in error.validator_value if name not in error.instance]
            path += missing[:1]
        problems.append(FieldProblem(".".join([root, *path]), error.message))
    return tuple(problems)

