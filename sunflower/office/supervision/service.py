"""督办 Supervision: create items from instructions, report progress, the traffic light, statistics.

The item's workflow is bpmn/supervision.bpmn on the engine (accept and assign, carry out, review).
Its tasks are completed through the engine (`WorkflowService.complete_task`, e.g. from a person's
inbox); this service follows the instance through `on_change` and keeps the item's status.

Who may do what:
  create               officials and administrators
  read, statistics     officials, administrators, auditors
  report progress      the responsible and assisting departments, the handler, the supervision office
"""

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from sunflower.auth.principals import SYSTEM, Principal, PrincipalKind, Role
from sunflower.common.clock import Clock, to_iso
from sunflower.common.cursors import Page
from sunflower.common.errors import (
    FieldProblem,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from sunflower.common.ids import new_id
from sunflower.office.calendar import WorkCalendar
from sunflower.office.engine.models import (
    Assignee,
    AssigneeKind,
    Definition,
    Instance,
    InstanceStatus,
)
from sunflower.office.engine.service import WorkflowService
from sunflower.office.org import OrgService
from sunflower.office.supervision import models
from sunflower.office.supervision.models import (
    DepartmentStats,
    LightStatus,
    Milestone,
    MilestoneDraft,
    ProgressReport,
    SourceKind,
    SupervisionItem,
    SupervisionStatus,
)
from sunflower.office.supervision.repository import SupervisionRepository

logger = logging.getLogger(__name__)

DEFINITION_KEY = "supervision"
BPMN_PATH = Path(__file__).parent / "bpmn" / "supervision.bpmn"
_STATUS_BY_TASK = {
    "assign": SupervisionStatus.ASSIGNING,
    "handle": SupervisionStatus.IN_PROGRESS,
    "review": SupervisionStatus.IN_REVIEW,
}
_CREATORS = (Role.OFFICIAL, Role.ADMIN)
_READERS = (Role.OFFICIAL, Role.ADMIN, Role.AUDITOR)
MAX_TITLE, MAX_TEXT, MAX_MILESTONES = 200, 4000, 50


class SupervisionService:
    def __init__(
        self,
        repository: SupervisionRepository,
        workflows: WorkflowService,
        org: OrgService,
        calendar: WorkCalendar,
        clock: Clock,
        *,
        supervisor_department: str = "supervision-office",
    ) -> None:
        self._repo = repository
        self._workflows = workflows
        self._org = org
        self._calendar = calendar
        self._clock = clock
        self.supervisor_department = supervisor_department
        workflows.on_change(DEFINITION_KEY, self._follow)

    def install(self, actor: Principal) -> Definition:
        """Deploy bpmn/supervision.bpmn unless the latest deployed version is the same diagram."""
        raw = BPMN_PATH.read_bytes()
        try:
            current = self._workflows.definition(SYSTEM, DEFINITION_KEY)
        except NotFound:
            current = None
        if current and current.bpmn_sha256 == hashlib.sha256(raw).hexdigest():
            return current
        return self._workflows.deploy(actor, raw)

    # --- creating ---

    def create(
        self,
        actor: Principal,
        *,
        title: str,
        source: SourceKind,
        leader_id: str,
        responsible_department: str,
        deadline: date,
        assisting_departments: Sequence[str] = (),
        milestones: Sequence[MilestoneDraft] = (),
        detail: str = "",
        source_ref: str | None = None,
    ) -> SupervisionItem:
        """Record an instruction or meeting decision as a supervised item and start its workflow."""
        if not (actor.kind is PrincipalKind.SYSTEM or actor.has_any(*_CREATORS)):
            raise PermissionDenied("only officials create supervision items")
        now = self._clock()
        today = self._calendar.local_date(now)
        problems: list[FieldProblem] = []
        title = (title or "").strip()
        if not title or len(title) > MAX_TITLE:
            problems.append(FieldProblem("title", f"is required and at most {MAX_TITLE} characters"))
        if len(detail or "") > MAX_TEXT:
            problems.append(FieldProblem("detail", f"must be at most {MAX_TEXT} characters"))
        if deadline < today:
            problems.append(FieldProblem("deadline", f"is in the past (today is {today.isoformat()} in the district)"))
        assisting = tuple(dict.fromkeys(d for d in assisting_departments if d))
        if responsible_department in assisting:
            problems.append(FieldProblem("assistingDepartments", "must not include the responsible department"))
        if len(milestones) > MAX_MILESTONES:
            problems.append(FieldProblem("milestones", f"at most {MAX_MILESTONES}"))
        for n, m in enumerate(milestones):
            if not (m.title or "").strip():
                problems.append(FieldProblem(f"milestones.{n}.title", "is required"))
            if m.due < today:
                problems.append(FieldProblem(f"milestones.{n}.due", "is in the past"))
            elif m.due > deadline:
                problems.append(FieldProblem(f"milestones.{n}.due", "is after the deadline"))
        chart = self._org.chart(SYSTEM)
        for field, department in [("responsibleDepartment", responsible_department),
                                  *(("assistingDepartments", d) for d in assisting)]:
            if department not in chart.departments:
                problems.append(FieldProblem(field, f"no department {department!r} in the organisation chart"))
        if self.supervisor_department not in chart.departments:
            problems.append(FieldProblem("supervisorDepartment", f"the supervision office {self.supervisor_department!r} is not in the chart"))
        if leader_id not in self._org.staff_many(SYSTEM, [leader_id]):
            problems.append(FieldProblem("leaderId", f"no member of staff {leader_id!r}"))
        if problems:
            raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=tuple(problems))

        item_id = new_id()
        data = {
            "item_id": item_id,
            "title": title,
            "leader_id": leader_id,
            "responsible_department": responsible_department,
            "assisting_departments": list(assisting),
            "supervisor_department": self.supervisor_department,
            "deadline": deadline.isoformat(),
            "due_at": to_iso(models.due_instant(deadline, self._calendar)),
            "remind_at": to_iso(models.reminder_instant(deadline, now, self._calendar)),
        }
        started = self._workflows.start(actor, DEFINITION_KEY, data, business_key=item_id)
        item = SupervisionItem(
            id=item_id, title=title, detail=(detail or "").strip(), source=source, source_ref=source_ref,
            leader_id=leader_id, responsible_department=responsible_department, assisting_departments=assisting,
            deadline=deadline,
            milestones=tuple(Milestone(new_id(), m.title.strip(), m.due) for m in sorted(milestones, key=lambda m: m.due)),
            status=SupervisionStatus.ASSIGNING, instance_id=started.id, created_by=actor.audit_name, created_at=now,
        )
        self._repo.save(item, None)
        return item

    # --- reading ---

    def get(self, viewer: Principal, item_id: str) -> SupervisionItem:
        _require_reader(viewer)
        return self._repo.get(item_id)

    def get_many(self, viewer: Principal, item_ids: Iterable[str]) -> dict[str, SupervisionItem]:
        _require_reader(viewer)
        return self._repo.get_many(item_ids)

    def items(self, viewer: Principal, *, department: str | None = None, due_from: date | None = None,
              due_until: date | None = None, limit: int = 20, start: dict | None = None) -> Page[SupervisionItem]:
        """By deadline, soonest first; optionally of one responsible department."""
        _require_reader(viewer)
        return self._repo.page(department=department, due_from=due_from, due_until=due_until, limit=limit, start=start)

    def light(self, item: SupervisionItem, now: datetime | None = None) -> LightStatus:
        """The item's traffic light now (the item was already read with permission)."""
        return models.traffic_light(item, now or self._clock(), self._calendar)

    def status(self, viewer: Principal, item_id: str) -> LightStatus:
        return self.light(self.get(viewer, item_id))

    def reports(self, viewer: Principal, item_id: str, *, limit: int = 20, start: dict | None = None) -> Page[ProgressReport]:
        _require_reader(viewer)
        return self._repo.reports(item_id, limit=limit, start=start)

    def statistics(self, viewer: Principal, *, due_from: date | None = None, due_until: date | None = None,
                   department: str | None = None) -> list[DepartmentStats]:
        """On-time statistics per responsible department, over items with deadlines in the window."""
        _require_reader(viewer)
        items = self._repo.all(department=department, due_from=due_from, due_until=due_until)
        return models.statistics(items, self._clock(), self._calendar)

    # --- progress ---

    def report_progress(
        self,
        actor: Principal,
        item_id: str,
        *,
        text: str,
        percent: int | None = None,
        milestones_done: Sequence[str] = (),
    ) -> ProgressReport:
        item = self._repo.get(item_id)
        self._require_participant(actor, item)
        if item.status is SupervisionStatus.COMPLETED:
            raise InvalidState(f"supervision item {item_id} is completed; no more progress reports")
        text = (text or "").strip()
        problems = []
        if not text or len(text) > MAX_TEXT:
            problems.append(FieldProblem("text", f"is required and at most {MAX_TEXT} characters"))
        if percent is not None and not 0 <= percent <= 100:
            problems.append(FieldProblem("percent", "must be between 0 and 100"))
        known = {m.id: m for m in item.milestones}
        for n, milestone_id in enumerate(milestones_done):
            if milestone_id not in known:
                problems.append(FieldProblem(f"milestonesDone.{n}", f"no milestone {milestone_id} in this item"))
        if problems:
            raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=tuple(problems))
        now = self._clock()
        today = self._calendar.local_date(now)
        report = ProgressReport(new_id(), item_id, now, actor.audit_name, text, percent, tuple(dict.fromkeys(milestones_done)))

        def apply(current: SupervisionItem) -> SupervisionItem:
            milestones = tuple(
                replace(m, done_on=today) if m.id in report.milestones_done and m.done_on is None else m
                for m in current.milestones
            )
            return replace(current, milestones=milestones, last_report_at=now,
                           progress=percent if percent is not None else current.progress)

        self._repo.add_report(report)
        self._set(item_id, apply)
        self._workflows.annotate(
            SYSTEM, item.instance_id, comment=text, author=actor.audit_name,
            data={"progress_report": report.id, "percent": percent, "milestones_done": list(report.milestones_done)},
        )
        return report

    # --- following the workflow ---

    def _follow(self, before: Instance | None, after: Instance) -> None:
        """Keep the item's status in step with its workflow instance."""
        if not after.business_key or before is None:
            return  # the start: create() writes the item itself, right after
        was = {t.element_id for t in before.open_tasks} if before else set()
        now_open = {t.element_id for t in after.open_tasks}
        escalated = sum(t.escalation_level for t in after.open_tasks) > sum(
            t.escalation_level for t in (before.open_tasks if before else ()))

        def apply(item: SupervisionItem) -> SupervisionItem:
            changed = replace(item, instance_id=after.id)
            if after.status is InstanceStatus.COMPLETED:
                submitted = item.submitted_at or after.completed_at
                changed = replace(changed, status=SupervisionStatus.COMPLETED, completed_at=after.completed_at,
                                  submitted_at=submitted,
                                  completed_on_time=submitted < models.due_instant(item.deadline, self._calendar))
            else:
                status = next((_STATUS_BY_TASK[e] for e in ("review", "handle", "assign") if e in now_open), item.status)
                changed = replace(changed, status=status)
                if "handle" in was and "review" in now_open:
                    changed = replace(changed, submitted_at=after.updated_at)
                if "review" in was and "handle" in now_open:
                    changed = replace(changed, review_rounds=item.review_rounds + 1, submitted_at=None)
            if escalated:
                changed = replace(changed, escalations=item.escalations + 1)
            return changed

        self._set(after.business_key, apply)

    def _set(self, item_id: str, change) -> SupervisionItem:
        for _ in range(5):
            current = self._repo.get(item_id)
            changed = change(current)
            if changed == current:
                return current
            changed = replace(changed, version=current.version + 1)
            try:
                self._repo.save(changed, current.version)
                return changed
            except InvalidState:
                continue
        raise InvalidState(f"supervision item {item_id} is changing too often right now; try again")

    def _require_participant(self, actor: Principal, item: SupervisionItem) -> None:
        if actor.kind is PrincipalKind.SYSTEM:
            return
        keys = set(self._org.keys_of(actor))
        departments = {item.responsible_department, *item.assisting_departments, self.supervisor_department}
        if any(Assignee(AssigneeKind.DEPARTMENT, d) in keys for d in departments):
            return
        instance = self._workflows.instance(SYSTEM, item.instance_id)
        if any(not keys.isdisjoint(t.assignees) for t in instance.open_tasks):
            return
        raise PermissionDenied("only the responsible and assisting departments, the handler and the supervision office report progress")


def _require_reader(viewer: Principal) -> None:
    if not (viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(*_READERS)):
        raise PermissionDenied("only officials read supervision items")
