"""GraphQL for 督办 supervision: items with their traffic light and reports, statistics, and the mutations.

An item's steps (accept and name a handler, carry out, review) are tasks of its workflow: they reach
people's inboxes and are completed with completeTask; reviewSupervisionCompletion is the review step
by the item's id. Reading is for officials, administrators and auditors (the service re-checks).
"""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry import Info, relay

from sunflower.api.errors import (
    InvalidStateErrorType,
    NotFoundErrorType,
    PermissionDeniedErrorType,
    ValidationErrorType,
    mutate,
)
from sunflower.api.office.types import (
    WorkflowInstanceType,
    instance_loader,
    mutate_raw,
    node_id,
    office,
)
from sunflower.api.permissions import roles, signed_in
from sunflower.api.relay import connection, page_request
from sunflower.auth.principals import Role
from sunflower.common.errors import InvalidState, NotFound, PermissionDenied
from sunflower.office.supervision.models import (
    DepartmentStats,
    LightStatus,
    Milestone,
    MilestoneDraft,
    ProgressReport,
    SourceKind,
    SupervisionItem,
    SupervisionStatus,
    TrafficLight,
)

ITEM = "SupervisionItem"
REVIEW_TASK = "review"  # the completion review's element id in office/supervision/bpmn/supervision.bpmn
READERS = (Role.OFFICIAL, Role.ADMIN, Role.AUDITOR)
CREATORS = (Role.OFFICIAL, Role.ADMIN)

SupervisionSourceEnum = strawberry.enum(SourceKind, name="SupervisionSource", description="What the item comes from.")
SupervisionStatusEnum = strawberry.enum(SupervisionStatus, name="SupervisionStatus")
TrafficLightEnum = strawberry.enum(
    TrafficLight, name="TrafficLight",
    description="GREEN on track; YELLOW within 3 working days of a deadline; RED overdue (or completed late).",
)


@strawberry.type(name="SupervisionMilestone")
class MilestoneType:
    id: strawberry.ID
    title: str
    due: date
    done_on: date | None

    @classmethod
    def of(cls, m: Milestone) -> "MilestoneType":
        return cls(id=strawberry.ID(m.id), title=m.title, due=m.due, done_on=m.done_on)


@strawberry.type(
    name="SupervisionLight",
    description="The traffic light now, in the district's time zone, counting weekends and public holidays.",
)
class LightType:
    color: TrafficLightEnum
    due: date = strawberry.field(description="The deadline it is about: the nearest open milestone, or the item's.")
    working_days_left: int = strawberry.field(description="Working days after today up to and including `due`.")
    overdue: bool
    reason: str

    @classmethod
    def of(cls, light: LightStatus) -> "LightType":
        return cls(color=light.light, due=light.due, working_days_left=light.working_days_left,
                   overdue=light.overdue, reason=light.reason)


@strawberry.type(name="SupervisionReport", description="A progress report; it is also a note in the item's timeline.")
class ReportType:
    id: strawberry.ID
    at: datetime
    by: str
    text: str
    percent: int | None
    milestones_done: list[strawberry.ID]
    item_id: strawberry.Private[str]

    @classmethod
    def of(cls, r: ProgressReport) -> "ReportType":
        return cls(id=strawberry.ID(r.id), at=r.at, by=r.by, text=r.text, percent=r.percent,
                   milestones_done=[strawberry.ID(m) for m in r.milestones_done], item_id=r.item_id)

    @strawberry.field(description="The item as it is now; null if you may not read supervision items.")
    def item(self, info: Info) -> Annotated["SupervisionItemType", strawberry.lazy("sunflower.api.office.supervision")] | None:
        try:
            return SupervisionItemType.of(office(info).supervision.get(info.context.require_principal(), self.item_id))
        except (NotFound, PermissionDenied):
            return None


@strawberry.type(name="SupervisionItem", description="督办: a leader's instruction or a meeting decision being followed up.")
class SupervisionItemType(relay.Node):
    id: relay.NodeID[str]
    title: str
    detail: str
    source: SupervisionSourceEnum
    source_ref: str | None = strawberry.field(description="E.g. the instruction's document number or the minutes'.")
    leader_id: str = strawberry.field(description="The instructing leader (a staff id).")
    responsible_department: str
    assisting_departments: list[str]
    deadline: date = strawberry.field(description="District date; it passes at midnight after it.")
    milestones: list[MilestoneType]
    status: SupervisionStatusEnum
    progress: int = strawberry.field(description="Percent, from the latest report.")
    last_report_at: datetime | None
    submitted_at: datetime | None = strawberry.field(description="When the completion under review was reported.")
    completed_at: datetime | None
    completed_on_time: bool | None
    review_rounds: int = strawberry.field(description="Completions sent back for rework.")
    escalations: int
    created_by: str
    created_at: datetime
    item: strawberry.Private[SupervisionItem]

    @classmethod
    def of(cls, i: SupervisionItem) -> "SupervisionItemType":
        return cls(
            id=i.id, title=i.title, detail=i.detail, source=i.source, source_ref=i.source_ref, leader_id=i.leader_id,
            responsible_department=i.responsible_department, assisting_departments=list(i.assisting_departments),
            deadline=i.deadline, milestones=[MilestoneType.of(m) for m in i.milestones], status=i.status,
            progress=i.progress, last_report_at=i.last_report_at, submitted_at=i.submitted_at,
            completed_at=i.completed_at, completed_on_time=i.completed_on_time, review_rounds=i.review_rounds,
            escalations=i.escalations, created_by=i.created_by, created_at=i.created_at, item=i,
        )

    @classmethod
    def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        ids = list(node_ids)
        try:
            found = office(info).supervision.get_many(info.context.require_principal(), ids)  # one batch read
        except PermissionDenied:
            found = {}
        return [cls.of(found[i]) if i in found else None for i in ids]

    @strawberry.field
    def light(self, info: Info) -> LightType:
        return LightType.of(office(info).supervision.light(self.item))

    @strawberry.field(description="Progress reports, newest first.")
    def reports(self, info: Info, first: int | None = None, after: str | None = None) -> relay.Connection[ReportType]:
        request = page_request(info, f"supervisionReports:{self.id}", first, after)
        page = office(info).supervision.reports(
            info.context.require_principal(), self.id, limit=request.limit, start=request.start
        )
        return connection(info, request, page, ReportType.of)

    @strawberry.field(description="Its workflow: open tasks (who holds it now) and the timeline.")
    async def workflow(self, info: Info) -> WorkflowInstanceType | None:
        instance = await instance_loader(info).load(self.item.instance_id)
        return WorkflowInstanceType.of(instance) if instance else None


@strawberry.type(name="SupervisionDepartmentStats", description="On-time figures of one responsible department.")
class DepartmentStatsType:
    department_id: str
    total: int
    completed: int
    completed_on_time: int
    open: int
    overdue_open: int
    due: int = strawberry.field(description="Completed, or open past the deadline: what the rate is over.")
    on_time_rate: float | None = strawberry.field(description="completedOnTime / due; null when nothing is due.")

    @classmethod
    def of(cls, s: DepartmentStats) -> "DepartmentStatsType":
        return cls(department_id=s.department_id, total=s.total, completed=s.completed,
                   completed_on_time=s.completed_on_time, open=s.open, overdue_open=s.overdue_open, due=s.due,
                   on_time_rate=s.on_time_rate)


_Errors = ValidationErrorType | NotFoundErrorType | PermissionDeniedErrorType | InvalidStateErrorType
SupervisionItemPayload = Annotated[SupervisionItemType | _Errors, strawberry.union("SupervisionItemPayload")]
SupervisionReportPayload = Annotated[ReportType | _Errors, strawberry.union("SupervisionReportPayload")]


@strawberry.input(name="SupervisionItemFilter")
class ItemFilterInput:
    department: str | None = strawberry.field(default=None, description="Only this responsible department's.")
    due_from: date | None = None
    due_until: date | None = None


@strawberry.input(name="SupervisionMilestoneInput")
class MilestoneInput:
    title: str
    due: date = strawberry.field(description="Not in the past, not after the deadline.")


@strawberry.input(name="CreateSupervisionItemInput")
class CreateSupervisionItemInput:
    title: str = strawberry.field(description="1 to 200 characters.")
    source: SupervisionSourceEnum
    leader_id: str = strawberry.field(description="The instructing leader: a staff id of the organisation chart.")
    responsible_department: str = strawberry.field(description="A department code of the organisation chart.")
    deadline: date = strawberry.field(description="A district date, today or later.")
    assisting_departments: list[str] = strawberry.field(default_factory=list)
    milestones: list[MilestoneInput] = strawberry.field(default_factory=list)
    detail: str = ""
    source_ref: str | None = None


@strawberry.input(name="ReportSupervisionProgressInput")
class ReportProgressInput:
    item_id: relay.GlobalID
    text: str = strawberry.field(description="1 to 4000 characters.")
    percent: int | None = strawberry.field(default=None, description="0 to 100.")
    milestones_done: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input(name="ReviewSupervisionCompletionInput")
class ReviewCompletionInput:
    item_id: relay.GlobalID
    approved: bool = strawberry.field(description="True completes the item; false sends it back to its handler.")
    opinion: str | None = strawberry.field(default=None, description="At most 2000 characters.")
    expected_version: int | None = strawberry.field(
        default=None, description="Its workflow's version when the completion was shown: refused if it changed since."
    )


def _item_id(global_id: relay.GlobalID) -> str:
    return node_id(global_id, ITEM, "itemId")


@strawberry.type
class SupervisionQueries:
    @strawberry.field(extensions=roles(*READERS), description="Supervision items by deadline, soonest first.")
    def supervision_items(
        self, info: Info, filter: ItemFilterInput | None = None, first: int | None = None, after: str | None = None
    ) -> relay.Connection[SupervisionItemType]:
        filter = filter or ItemFilterInput()
        scope = f"supervisionItems:{filter.department or ''}:{filter.due_from or ''}:{filter.due_until or ''}"
        request = page_request(info, scope, first, after)
        page = office(info).supervision.items(
            info.context.require_principal(), department=filter.department, due_from=filter.due_from,
            due_until=filter.due_until, limit=request.limit, start=request.start,
        )
        return connection(info, request, page, SupervisionItemType.of)

    @strawberry.field(extensions=roles(*READERS), description="A supervision item; null if there is none.")
    def supervision_item(self, info: Info, id: relay.GlobalID) -> SupervisionItemType | None:
        if id.type_name != ITEM:
            return None
        try:
            return SupervisionItemType.of(office(info).supervision.get(info.context.require_principal(), id.node_id))
        except NotFound:
            return None

    @strawberry.field(
        extensions=roles(*READERS),
        description="On-time statistics per responsible department, over items with deadlines in [dueFrom, dueUntil].",
    )
    def supervision_statistics(
        self, info: Info, due_from: date | None = None, due_until: date | None = None, department: str | None = None
    ) -> list[DepartmentStatsType]:
        stats = office(info).supervision.statistics(
            info.context.require_principal(), due_from=due_from, due_until=due_until, department=department
        )
        return [DepartmentStatsType.of(s) for s in stats]


@strawberry.type
class SupervisionMutations:
    @strawberry.mutation(
        extensions=roles(*CREATORS),
        description="Record an instruction or a meeting decision as a supervised item; its workflow starts with the "
        "responsible department accepting it. A deadline in the past is refused.",
    )
    def create_supervision_item(self, info: Info, input: CreateSupervisionItemInput) -> SupervisionItemPayload:
        return mutate(
            lambda: office(info).supervision.create(
                info.context.require_principal(), title=input.title, source=SourceKind(input.source),
                leader_id=input.leader_id, responsible_department=input.responsible_department,
                deadline=input.deadline, assisting_departments=input.assisting_departments,
                milestones=[MilestoneDraft(m.title, m.due) for m in input.milestones], detail=input.detail,
                source_ref=input.source_ref,
            ),
            SupervisionItemType.of,
        )

    @strawberry.mutation(
        extensions=signed_in(),
        description="Report progress: the responsible and assisting departments, the handler, the supervision office.",
    )
    def report_supervision_progress(self, info: Info, input: ReportProgressInput) -> SupervisionReportPayload:
        return mutate(
            lambda: office(info).supervision.report_progress(
                info.context.require_principal(), _item_id(input.item_id), text=input.text, percent=input.percent,
                milestones_done=[str(m) for m in input.milestones_done],
            ),
            ReportType.of,
        )

    @strawberry.mutation(
        extensions=signed_in(),
        description="The supervision office's review of a reported completion: approve it (the item is completed, "
        "on time or late) or send it back with an opinion. The same as completing the item's review task.",
    )
    def review_supervision_completion(self, info: Info, input: ReviewCompletionInput) -> SupervisionItemPayload:
        viewer = info.context.require_principal()
        services = office(info)

        def review() -> SupervisionItem:
            item_id = _item_id(input.item_id)
            item = services.supervision.get(viewer, item_id)
            instance = services.workflows.instance(viewer, item.instance_id)
            task = next((t for t in instance.open_tasks if t.element_id == REVIEW_TASK), None)
            if task is None:
                raise InvalidState(f"supervision item {item_id} has no completion waiting for review ({item.status.value})")
            form = {"approved": input.approved, **({"opinion": input.opinion} if input.opinion else {})}
            services.workflows.complete_task(
                viewer, instance.id, task.id, form, input.opinion, expected_version=input.expected_version
            )
            return services.supervision.get(viewer, item_id)

        return mutate_raw(review, SupervisionItemType.of, {"data": "", "itemId": "itemId", "comment": "opinion"})
