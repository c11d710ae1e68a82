"""GraphQL for the workflow engine: inboxes, tasks and their forms, instances, definitions, and the mutations.

Anyone signed in may have tasks (an applicant's correction, say), so inbox and task fields need only a
sign-in; the engine decides who may see, start and complete what (and re-checks it for every caller).
"""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import Info, relay
from strawberry.scalars import JSON

from sunflower.api.errors import (
    InvalidStateErrorType,
    NotFoundErrorType,
    PermissionDeniedErrorType,
    ValidationErrorType,
    mutate,
)
from sunflower.api.office.types import (
    INSTANCE,
    AssigneeKindEnum,
    WorkflowDefinitionType,
    WorkflowInstanceType,
    WorkflowNotificationType,
    WorkflowTaskType,
    WorkflowTimelineEntryType,
    json_object,
    mutate_raw,
    node_id,
    office,
)
from sunflower.api.permissions import roles, signed_in
from sunflower.api.relay import connection, page_request
from sunflower.auth.principals import Role
from sunflower.common.errors import NotFound, ValidationFailed
from sunflower.office.engine.models import AssigneeKind, InboxFilter

READERS = (Role.OFFICIAL, Role.ADMIN, Role.AUDITOR)

_Errors = ValidationErrorType | NotFoundErrorType | PermissionDeniedErrorType | InvalidStateErrorType
DeployWorkflowPayload = Annotated[WorkflowDefinitionType | _Errors, strawberry.union("DeployWorkflowPayload")]
StartWorkflowPayload = Annotated[WorkflowInstanceType | _Errors, strawberry.union("StartWorkflowPayload")]
CompleteTaskPayload = Annotated[WorkflowInstanceType | _Errors, strawberry.union("CompleteTaskPayload")]
AnnotateTaskPayload = Annotated[WorkflowTimelineEntryType | _Errors, strawberry.union("AnnotateTaskPayload")]


@strawberry.input(name="InboxFilter", description="Every given condition must hold.")
class InboxFilterInput:
    definition_key: str | None = strawberry.field(default=None, description="Only tasks of this process.")
    business_key: str | None = strawberry.field(default=None, description="Only tasks about this record.")
    through: list[AssigneeKindEnum] | None = strawberry.field(
        default=None, description="Only tasks that reach you this way (e.g. [PERSON]: addressed to you by name)."
    )
    opened_after: datetime | None = None
    opened_before: datetime | None = None

    def domain(self) -> InboxFilter:
        return InboxFilter(
            definition_key=self.definition_key,
            business_key=self.business_key,
            through=tuple(AssigneeKind(k) for k in self.through or ()),
            opened_before=self.opened_before,
            opened_after=self.opened_after,
        )

    def scope(self) -> str:
        through = ",".join(sorted(AssigneeKind(k).value for k in self.through or ()))
        stamps = [t.isoformat() if t else "" for t in (self.opened_after, self.opened_before)]
        return f"{self.definition_key or ''}:{self.business_key or ''}:{through}:{stamps[0]}:{stamps[1]}"


@strawberry.input(name="DeployWorkflowInput")
class DeployWorkflowInput:
    bpmn_xml: str = strawberry.field(description="A BPMN 2.0 diagram (e.g. from bpmn.io); at most 1 MB.")
    dmn_xml: list[str] | None = strawberry.field(default=None, description="DMN decision tables it calls.")
    process_id: str | None = strawberry.field(
        default=None, description="Which process to deploy when the diagram has several executable ones."
    )


@strawberry.input(name="StartWorkflowInput")
class StartWorkflowInput:
    definition_key: str = strawberry.field(description="The process id; the latest version starts.")
    variables: JSON | None = strawberry.field(default=None, description="A JSON object; see the definition's startSchema.")
    business_key: str | None = strawberry.field(default=None, description="The record the instance is about.")


@strawberry.input(name="CompleteTaskInput")
class CompleteTaskInput:
    instance_id: relay.GlobalID
    task_id: strawberry.ID
    form_data: JSON | None = strawberry.field(default=None, description="A JSON object satisfying the task's formSchema.")
    comment: str | None = strawberry.field(default=None, description="At most 2000 characters; kept in the timeline.")
    expected_version: int | None = strawberry.field(
        default=None, description="The instance's version when the form was shown: refused if it changed since."
    )


@strawberry.input(name="AnnotateTaskInput")
class AnnotateTaskInput:
    instance_id: relay.GlobalID
    comment: str = strawberry.field(description="1 to 2000 characters.")
    task_id: strawberry.ID | None = strawberry.field(default=None, description="The open task the note is about.")


def _instance_id(global_id: relay.GlobalID) -> str:
    return node_id(global_id, INSTANCE, "instanceId")


@strawberry.type
class WorkflowQueries:
    @strawberry.field(
        extensions=signed_in(),
        description="Your open tasks, newest first: those addressed to you, your department(s) and your roles.",
    )
    def inbox(
        self, info: Info, filter: InboxFilterInput | None = None, first: int | None = None, after: str | None = None
    ) -> relay.Connection[WorkflowTaskType]:
        viewer = info.context.require_principal()
        filter = filter or InboxFilterInput()
        request = page_request(info, f"inbox:{viewer.audit_name}:{filter.scope()}", first, after)
        page = office(info).workflows.inbox(viewer, filter.domain(), limit=request.limit, start=request.start)
        return connection(info, request, page, WorkflowTaskType.of_inbox)

    @strawberry.field(
        extensions=signed_in(),
        description="An open task with its form; null if it is not open (or there is no such instance).",
    )
    def task(self, info: Info, instance_id: relay.GlobalID, task_id: strawberry.ID) -> WorkflowTaskType | None:
        viewer = info.context.require_principal()
        try:
            view = office(info).workflows.task(viewer, _instance_id(instance_id), str(task_id))
        except NotFound:
            return None
        return WorkflowTaskType.of_open(view.instance, view.task, view.definition)

    @strawberry.field(
        extensions=signed_in(),
        description="A workflow instance you take part in (or, as an official, any); null if there is none.",
    )
    def workflow_instance(self, info: Info, id: relay.GlobalID) -> WorkflowInstanceType | None:
        if id.type_name != INSTANCE:
            return None
        try:
            return WorkflowInstanceType.of(office(info).workflows.instance(info.context.require_principal(), id.node_id))
        except NotFound:
            return None

    @strawberry.field(extensions=roles(*READERS), description="Every version of every deployed process, by key then version.")
    def workflow_definitions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[WorkflowDefinitionType]:
        request = page_request(info, "workflowDefinitions", first, after)
        page = office(info).workflows.definitions(info.context.require_principal(), limit=request.limit, start=request.start)
        return connection(info, request, page, WorkflowDefinitionType.of)

    @strawberry.field(
        extensions=roles(*READERS), description="A process's latest version (or the given one); null if there is none."
    )
    def workflow_definition(self, info: Info, key: str, version: int | None = None) -> WorkflowDefinitionType | None:
        try:
            return WorkflowDefinitionType.of(office(info).workflows.definition(info.context.require_principal(), key, version))
        except NotFound:
            return None

    @strawberry.field(extensions=signed_in(), description="Reminders and escalations sent to you, newest first.")
    def workflow_notifications(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[WorkflowNotificationType]:
        viewer = info.context.require_principal()
        request = page_request(info, f"workflowNotifications:{viewer.audit_name}", first, after)
        page = office(info).workflows.notifications(viewer, limit=request.limit, start=request.start)
        return connection(info, request, page, WorkflowNotificationType.of)


@strawberry.type
class WorkflowMutations:
    @strawberry.mutation(
        extensions=roles(Role.ADMIN),
        description="Check a BPMN diagram and deploy it as the next version of its process. A diagram that is not "
        "valid, or uses an element the engine does not run, is refused naming the element (fields bpmnXml.<id>).",
    )
    def deploy_workflow(self, info: Info, input: DeployWorkflowInput) -> DeployWorkflowPayload:
        viewer = info.context.require_principal()
        return mutate_raw(
            lambda: office(info).workflows.deploy(viewer, input.bpmn_xml, dmn=input.dmn_xml or (), process_id=input.process_id),
            WorkflowDefinitionType.of,
            {"bpmn": "bpmnXml", "dmn": "dmnXml", "processId": "processId"},
            other="bpmnXml.{}",
        )

    @strawberry.mutation(extensions=signed_in(), description="Start an instance of a process's latest version.")
    def start_workflow(self, info: Info, input: StartWorkflowInput) -> StartWorkflowPayload:
        viewer = info.context.require_principal()
        return mutate_raw(
            lambda: office(info).workflows.start(
                viewer, input.definition_key, json_object(input.variables, "variables"), business_key=input.business_key
            ),
            WorkflowInstanceType.of,
            {"data": "variables"},
        )

    @strawberry.mutation(
        extensions=signed_in(),
        description="Complete an open task assigned to you with its form; the instance moves on. Exactly one of "
        "two people completing the same task at once succeeds; the other gets an InvalidStateError.",
    )
    def complete_task(self, info: Info, input: CompleteTaskInput) -> CompleteTaskPayload:
        viewer = info.context.require_principal()
        return mutate_raw(
            lambda: office(info).workflows.complete_task(
                viewer, _instance_id(input.instance_id), str(input.task_id), json_object(input.form_data, "formData"),
                input.comment, expected_version=input.expected_version,
            ),
            WorkflowInstanceType.of,
            {"data": "formData"},
        )

    @strawberry.mutation(
        extensions=signed_in(), description="Add a note to an instance's timeline (about one of its open tasks)."
    )
    def annotate_task(self, info: Info, input: AnnotateTaskInput) -> AnnotateTaskPayload:
        viewer = info.context.require_principal()

        def annotate():
            if not input.comment.strip():
                raise ValidationFailed.on("comment", "is required")
            return office(info).workflows.annotate(
                viewer, _instance_id(input.instance_id), comment=input.comment.strip(),
                task_id=str(input.task_id) if input.task_id else None,
            )

        return mutate(annotate, WorkflowTimelineEntryType.of)

