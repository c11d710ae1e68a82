"""Office workflows as the API shows them: definitions, instances, tasks with their forms, timelines, inboxes.

Tasks are named by their instance (a WorkflowInstance global id) and the engine's task id within it.
Lists resolve instances and definitions through this request's dataloaders: one batch read per list.
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from sunflower.api.errors import FieldErrorType, ValidationErrorType, error_of
from sunflower.api.relay import connection, page_request
from sunflower.common import errors
from sunflower.common.errors import ValidationFailed
from sunflower.office.engine.models import (
    Assignee,
    AssigneeKind,
    Definition,
    InboxItem,
    Instance,
    InstanceStatus,
    Notification,
    OpenTask,
    TaskDefinition,
    TimelineEntry,
    TimelineKind,
)

AssigneeKindEnum = strawberry.enum(AssigneeKind, name="AssigneeKind", description="How a task reaches people.")
WorkflowInstanceStatusEnum = strawberry.enum(InstanceStatus, name="WorkflowInstanceStatus")
WorkflowTimelineKindEnum = strawberry.enum(TimelineKind, name="WorkflowTimelineKind")

INSTANCE = "WorkflowInstance"


def office(info: Info):
    """The office services (built on first use: see sunflower.container)."""
    return info.context.services.office


def instance_gid(instance_id: str) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(INSTANCE, instance_id))


def node_id(global_id: relay.GlobalID, type_name: str, field: str) -> str:
    """The domain id inside a global id, refused (naming the input field) if it is another type's."""
    if global_id.type_name != type_name:
        raise ValidationFailed.on(field, f"is not a {type_name} id")
    return global_id.node_id


def json_object(value: Any, field: str) -> dict[str, Any]:
    """A JSON input that must be an object (form data, start variables); null is an empty one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed.on(field, "must be a JSON object")
    return value


# --- dataloaders (per request, like sunflower.api.loaders) ----------------------------------------


def _loader(info: Info, name: str, fetch: Callable[[Any, list], dict]) -> DataLoader:
    return info.context.loaders.loader(f"office.{name}", fetch)


def instance_loader(info: Info) -> DataLoader[str, Instance | None]:
    """Instances the viewer may see, by id (one batch read for every id a list asks for)."""
    services = info.context.services
    return _loader(info, "instance", lambda viewer, ids: services.office.workflows.instances(viewer, ids))


def definition_loader(info: Info) -> DataLoader[tuple[str, int], Definition | None]:
    """Definitions by (key, version); the engine keeps them in memory once read."""
    services = info.context.services

    def fetch(viewer, keys: list[tuple[str, int]]) -> dict:
        found = {}
        for key, version in keys:
            try:
                found[(key, version)] = services.office.workflows.definition(viewer, key, version)
            except (errors.NotFound, errors.PermissionDenied):
                continue
        return found

    return _loader(info, "definition", fetch)


# --- mutations whose field errors name form fields, element ids: kept as they are -----------------


def mutate_raw(
    operation: Callable[[], Any], success: Callable[[Any], Any], renames: dict[str, str], other: str = "{}"
):
    """Like sunflower.api.errors.mutate, but field names are not camel-cased: form fields (`handler_id`)
    and BPMN element ids (`assign_reminder`) are the diagram's names. A problem's field whose first part
    is in `renames` gets the input's name for it (data.approved -> formData.approved); any other is
    formatted into `other` (e.g. "bpmnXml.{}" for element ids).
    """
    try:
        result = operation()
    except ValidationFailed as exc:
        fields = [FieldErrorType(field=_renamed(p.field, renames, other), message=p.message) for p in exc.problems]
        message = "; ".join(f"{f.field}: {f.message}" for f in fields[:5]) if fields else exc.message
        return ValidationErrorType(code=exc.code, message=message, fields=fields)
    except errors.DomainError as exc:
        return error_of(exc)
    return success(result)


def _renamed(field: str, renames: dict[str, str], other: str) -> str:
    head, dot, rest = field.partition(".")
    if head not in renames:
        return other.format(field)
    if not renames[head]:  # the input's fields are the form's own: data.opinion -> opinion
        return rest or field
    return renames[head] + dot + rest


# --- types --------------------------------------------------------------------------------------


@strawberry.type(name="Assignee", description="Who a task goes to: a role, a department (code) or a person (staff id).")
class AssigneeType:
    kind: AssigneeKindEnum
    id: str

    @classmethod
    def of(cls, assignee: Assignee) -> "AssigneeType":
        return cls(kind=assignee.kind, id=assignee.id)


@strawberry.type(name="WorkflowTaskDefinition", description="A user task of a diagram and the form it asks for.")
class WorkflowTaskDefinitionType:
    element_id: str = strawberry.field(description="The BPMN element id.")
    name: str
    form_schema: JSON | None = strawberry.field(description="JSON Schema the completion's formData must satisfy.")
    instructions: str

    @classmethod
    def of(cls, t: TaskDefinition) -> "WorkflowTaskDefinitionType":
        return cls(element_id=t.element_id, name=t.name, form_schema=t.form_schema, instructions=t.instructions)


@strawberry.type(
    name="WorkflowDefinition",
    description="One deployed version of a BPMN process; instances finish on the version they started with.",
)
class WorkflowDefinitionType:
    key: str = strawberry.field(description="The BPMN process id: what startWorkflow names.")
    version: int
    name: str
    deployed_by: str
    deployed_at: datetime
    tasks: list[WorkflowTaskDefinitionType]
    start_schema: JSON | None = strawberry.field(description="JSON Schema of startWorkflow's variables.")
    starters: list[str] = strawberry.field(description="Roles that may start it.")
    bpmn_sha256: str

    @classmethod
    def of(cls, d: Definition) -> "WorkflowDefinitionType":
        return cls(
            key=d.key, version=d.version, name=d.name, deployed_by=d.deployed_by, deployed_at=d.deployed_at,
            tasks=[WorkflowTaskDefinitionType.of(t) for t in d.tasks], start_schema=d.start_schema,
            starters=list(d.starters), bpmn_sha256=d.bpmn_sha256,
        )


@strawberry.type(name="WorkflowTimelineEntry", description="One append-only entry of an instance's history.")
class WorkflowTimelineEntryType:
    id: strawberry.ID
    at: datetime
    actor: str = strawberry.field(description="Who: person:<id>, or system:sunflower for the engine itself.")
    kind: WorkflowTimelineKindEnum
    task_id: strawberry.ID | None
    element_id: str | None
    task_name: str | None
    data: JSON = strawberry.field(description="The form data of a completion, a timer's details, a note's data.")
    comment: str | None

    @classmethod
    def of(cls, e: TimelineEntry) -> "WorkflowTimelineEntryType":
        return cls(
            id=strawberry.ID(e.id), at=e.at, actor=e.actor, kind=e.kind,
            task_id=strawberry.ID(e.task_id) if e.task_id else None, element_id=e.element_id,
            task_name=e.task_name, data=e.data, comment=e.comment,
        )


@strawberry.type(name="WorkflowTask", description="An open user task: who it goes to and the form that completes it.")
class WorkflowTaskType:
    task_id: strawberry.ID = strawberry.field(description="The task's id within its instance (completeTask's taskId).")
    instance_id: strawberry.ID = strawberry.field(description="The WorkflowInstance's global id.")
    element_id: str = strawberry.field(description="The BPMN element id, e.g. review.")
    name: str
    definition_key: str
    business_key: str | None
    opened_at: datetime
    reached_you_through: AssigneeType | None = strawberry.field(
        description="Inbox only: which of your assignments (you, your department, a role) it reached you through."
    )
    raw_instance_id: strawberry.Private[str]
    known_instance: strawberry.Private[Instance | None]
    known_definition: strawberry.Private[TaskDefinition | None]

    @classmethod
    def of_inbox(cls, item: InboxItem) -> "WorkflowTaskType":
        return cls(
            task_id=strawberry.ID(item.task_id), instance_id=instance_gid(item.instance_id), element_id=item.element_id,
            name=item.task_name, definition_key=item.definition_key, business_key=item.business_key,
            opened_at=item.opened_at, reached_you_through=AssigneeType.of(item.assignee),
            raw_instance_id=item.instance_id, known_instance=None, known_definition=None,
        )

    @classmethod
    def of_open(cls, instance: Instance, task: OpenTask, definition: TaskDefinition | None = None) -> "WorkflowTaskType":
        return cls(
            task_id=strawberry.ID(task.id), instance_id=instance_gid(instance.id), element_id=task.element_id,
            name=task.name, definition_key=instance.definition_key, business_key=instance.business_key,
            opened_at=task.opened_at, reached_you_through=None, raw_instance_id=instance.id,
            known_instance=instance, known_definition=definition,
        )

    async def _instance(self, info: Info) -> Instance | None:
        if self.known_instance is None:
            self.known_instance = await instance_loader(info).load(self.raw_instance_id)
        return self.known_instance

    async def _open(self, info: Info) -> OpenTask | None:
        instance = await self._instance(info)
        return instance.task(str(self.task_id)) if instance else None

    async def _definition(self, info: Info) -> TaskDefinition | None:
        if self.known_definition is None:
            instance = await self._instance(info)
            if instance is None:
                return None
            definition = await definition_loader(info).load((instance.definition_key, instance.definition_version))
            self.known_definition = definition.task(self.element_id) if definition else None
        return self.known_definition

    @strawberry.field(description="False once it was completed or closed (e.g. by someone else meanwhile).")
    async def is_open(self, info: Info) -> bool:
        return await self._open(info) is not None

    @strawberry.field(description="Everyone it goes to; empty once it is no longer open.")
    async def assignees(self, info: Info) -> list[AssigneeType]:
        task = await self._open(info)
        return [AssigneeType.of(a) for a in task.assignees] if task else []

    @strawberry.field(description="How many times an overdue timer escalated it.")
    async def escalation_level(self, info: Info) -> int:
        task = await self._open(info)
        return task.escalation_level if task else 0

    @strawberry.field(description="JSON Schema the completion's formData must satisfy; null if it asks for none.")
    async def form_schema(self, info: Info) -> JSON | None:
        definition = await self._definition(info)
        return definition.form_schema if definition else None

    @strawberry.field
    async def instructions(self, info: Info) -> str:
        definition = await self._definition(info)
        return definition.instructions if definition else ""

    @strawberry.field(description="Its instance; null if you may not see it.")
    async def instance(self, info: Info) -> "WorkflowInstanceType | None":
        instance = await self._instance(info)
        return WorkflowInstanceType.of(instance) if instance else None


@strawberry.type(name="WorkflowInstance", description="A running (or finished) workflow: its data, open tasks and timeline.")
class WorkflowInstanceType(relay.Node):
    id: relay.NodeID[str]
    definition_key: str
    definition_version: int
    status: WorkflowInstanceStatusEnum
    business_key: str | None = strawberry.field(description="The domain record it is about, e.g. a supervision item.")
    data: JSON = strawberry.field(description="The instance's variables: start variables and completed forms.")
    started_by: str
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    next_due_at: datetime | None = strawberry.field(description="When its next timer is due.")
    version: int = strawberry.field(description="Changes with every step: completeTask's expectedVersion.")
    instance: strawberry.Private[Instance]

    @classmethod
    def of(cls, i: Instance) -> "WorkflowInstanceType":
        return cls(
            id=i.id, definition_key=i.definition_key, definition_version=i.definition_version, status=i.status,
            business_key=i.business_key, data=i.data, started_by=i.started_by, started_at=i.started_at,
            updated_at=i.updated_at, completed_at=i.completed_at, next_due_at=i.next_due, version=i.version,
            instance=i,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        found = await instance_loader(info).load_many(list(node_ids))
        return [cls.of(i) if i else None for i in found]

    @strawberry.field
    def open_tasks(self) -> list[WorkflowTaskType]:
        return [WorkflowTaskType.of_open(self.instance, t) for t in self.instance.open_tasks]

    @strawberry.field(description="The version of the definition it runs on.")
    async def definition(self, info: Info) -> WorkflowDefinitionType | None:
        found = await definition_loader(info).load((self.definition_key, self.definition_version))
        return WorkflowDefinitionType.of(found) if found else None

    @strawberry.field(description="Who did what and when, oldest first (newestFirst: true for the latest first).")
    def timeline(
        self, info: Info, first: int | None = None, after: str | None = None, newest_first: bool = False
    ) -> relay.Connection[WorkflowTimelineEntryType]:
        ctx = info.context
        request = page_request(info, f"workflowTimeline:{self.id}:{int(newest_first)}", first, after)
        page = office(info).workflows.timeline(
            ctx.require_principal(), self.id, limit=request.limit, start=request.start, newest_first=newest_first
        )
        return connection(info, request, page, WorkflowTimelineEntryType.of)


@strawberry.type(name="WorkflowNotification", description="A reminder or an escalation sent to you (or your department, role).")
class WorkflowNotificationType:
    id: strawberry.ID
    at: datetime
    kind: WorkflowTimelineKindEnum
    recipient: AssigneeType
    instance_id: strawberry.ID
    task_id: strawberry.ID | None
    task_name: str | None
    message: str

    @classmethod
    def of(cls, n: Notification) -> "WorkflowNotificationType":
        return cls(
            id=strawberry.ID(n.id), at=n.at, kind=n.kind, recipient=AssigneeType.of(n.recipient),
            instance_id=instance_gid(n.instance_id), task_id=strawberry.ID(n.task_id) if n.task_id else None,
            task_name=n.task_name, message=n.message,
        )
