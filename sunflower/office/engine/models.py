"""The workflow engine's records: definitions, instances, open tasks, the timeline, inbox and notifications."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AssigneeKind(StrEnum):
    ROLE = "role"
    DEPARTMENT = "department"
    PERSON = "person"


@dataclass(frozen=True)
class Assignee:
    kind: AssigneeKind
    id: str

    @property
    def key(self) -> str:
        """`role:official`, `department:D1`, `person:P1`: what inboxes are indexed by."""
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def from_key(cls, key: str) -> "Assignee":
        kind, _, ident = key.partition(":")
        return cls(AssigneeKind(kind), ident)


class BoundaryAction(StrEnum):
    REMIND = "remind"
    ESCALATE = "escalate"


class EscalationMode(StrEnum):
    NOTIFY = "notify"
    REASSIGN = "reassign"


class InstanceStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TimelineKind(StrEnum):
    STARTED = "started"
    TASK_OPENED = "task_opened"
    TASK_COMPLETED = "task_completed"
    TASK_CLOSED = "task_closed"  # ended without completion (an interrupting timer, cancellation)
    TIMER_FIRED = "timer_fired"
    REMINDED = "reminded"
    ESCALATED = "escalated"
    REASSIGNED = "reassigned"
    NOTE = "note"  # a domain's own entry, e.g. a supervision progress report
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class FormField:
    name: str
    title: str
    type: str
    required: bool


@dataclass(frozen=True)
class TaskDefinition:
    element_id: str
    name: str
    form_schema: dict | None
    instructions: str


@dataclass(frozen=True)
class Definition:
    key: str
    version: int
    name: str
    deployed_by: str
    deployed_at: datetime
    tasks: tuple[TaskDefinition, ...]
    start_schema: dict | None = None
    starters: tuple[str, ...] = ()
    bpmn_sha256: str = ""

    def task(self, element_id: str) -> TaskDefinition | None:
        return next((t for t in self.tasks if t.element_id == element_id), None)


@dataclass(frozen=True)
class OpenTask:
    id: str  # the engine's task id (a UUID), unique within its instance
    element_id: str  # the BPMN element, e.g. "review"
    name: str
    assignees: tuple[Assignee, ...]
    opened_at: datetime
    escalation_level: int = 0


@dataclass(frozen=True)
class Instance:
    id: str
    definition_key: str
    definition_version: int
    status: InstanceStatus
    business_key: str | None
    data: dict[str, Any]
    open_tasks: tuple[OpenTask, ...]
    started_by: str
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    next_due: datetime | None
    version: int

    def task(self, task_id: str) -> OpenTask | None:
        return next((t for t in self.open_tasks if t.id == task_id), None)


@dataclass(frozen=True)
class TimelineEntry:
    id: str  # a ULID: entries sort by it
    instance_id: str
    at: datetime
    actor: str  # principal audit name, e.g. person:p1 or system:sunflower
    kind: TimelineKind
    task_id: str | None = None
    element_id: str | None = None
    task_name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    comment: str | None = None


@dataclass(frozen=True)
class InboxItem:
    instance_id: str
    task_id: str
    element_id: str
    task_name: str
    definition_key: str
    business_key: str | None
    assignee: Assignee  # which of the viewer's keys it reached them through
    opened_at: datetime


@dataclass(frozen=True)
class InboxFilter:
    definition_key: str | None = None
    business_key: str | None = None
    through: tuple[AssigneeKind, ...] = ()  # only tasks that reach the viewer this way (empty: all)
    opened_before: datetime | None = None
    opened_after: datetime | None = None


@dataclass(frozen=True)
class Notification:
    id: str
    recipient: Assignee
    at: datetime
    kind: TimelineKind
    instance_id: str
    task_id: str | None
    task_name: str | None
    message: str


@dataclass(frozen=True)
class WakeReport:
    woken: int  # instances advanced
    conflicts: int  # changed by someone else meanwhile (they will be picked up next time)
    failed: int  # the engine could not advance them (reported in the timeline, retried next time)
    more: bool  # more were due than `limit`
