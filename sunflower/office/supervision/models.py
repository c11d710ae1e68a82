"""督办 Supervision items, their progress, the traffic light and on-time statistics (pure rules)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the API imports these types without the holiday calendar (sunflower.container builds it lazily)
    from sunflower.office.calendar import WorkCalendar

YELLOW_WORKING_DAYS = 3


class SourceKind(StrEnum):
    LEADER_INSTRUCTION = "leader_instruction"  # 领导批示
    MEETING_DECISION = "meeting_decision"  # 会议决定


class SupervisionStatus(StrEnum):
    ASSIGNING = "assigning"  # waiting for the responsible department to accept and name a handler
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    COMPLETED = "completed"


class TrafficLight(StrEnum):
    GREEN = "green"  # on track
    YELLOW = "yellow"  # within 3 working days of a deadline
    RED = "red"  # a deadline has passed (or it was completed late)


@dataclass(frozen=True)
class Milestone:
    id: str
    title: str
    due: date
    done_on: date | None = None


@dataclass(frozen=True)
class MilestoneDraft:
    title: str
    due: date


@dataclass(frozen=True)
class SupervisionItem:
    id: str
    title: str
    detail: str
    source: SourceKind
    source_ref: str | None  # e.g. the instruction's document number or the meeting minutes' number
    leader_id: str  # who gave the instruction (a member of staff)
    responsible_department: str
    assisting_departments: tuple[str, ...]
    deadline: date  # district date; the deadline passes at midnight after it
    milestones: tuple[Milestone, ...]
    status: SupervisionStatus
    instance_id: str
    created_by: str
    created_at: datetime
    progress: int = 0  # percent, from the latest report
    last_report_at: datetime | None = None
    submitted_at: datetime | None = None  # when the completion that was finally approved was reported
    completed_at: datetime | None = None
    completed_on_time: bool | None = None
    review_rounds: int = 0  # completions sent back
    escalations: int = 0
    version: int = 1


@dataclass(frozen=True)
class ProgressReport:
    id: str
    item_id: str
    at: datetime
    by: str
    text: str
    percent: int | None
    milestones_done: tuple[str, ...] = ()


@dataclass(frozen=True)
class LightStatus:
    light: TrafficLight
    due: date  # the deadline the light is about: the nearest open milestone or the final deadline
    working_days_left: int  # working days after today up to and including `due` (0 when due today or past)
    overdue: bool
    reason: str


@dataclass(frozen=True)
class DepartmentStats:
    department_id: str
    total: int
    completed: int
    completed_on_time: int
    open: int
    overdue_open: int
    due: int  # completed, or open with the deadline passed: what the rate is over
    on_time_rate: float | None  # completed_on_time / due


@dataclass(frozen=True)
class StatsWindow:
    since: date | None = None  # by deadline
    until: date | None = None
    departments: tuple[str, ...] = field(default_factory=tuple)


def traffic_light(item: SupervisionItem, now: datetime, calendar: WorkCalendar) -> LightStatus:
    """Green on track, yellow within 3 working days of the nearest deadline, red overdue; district time."""
    if item.status is SupervisionStatus.COMPLETED:
        late = item.completed_on_time is False
        return LightStatus(
            TrafficLight.RED if late else TrafficLight.GREEN, item.deadline, 0, late,
            "completed late" if late else "completed on time",
        )
    today = calendar.local_date(now)
    pending = [(m.due, f"milestone '{m.title}'") for m in item.milestones if m.done_on is None]
    due, what = min(pending + [(item.deadline, "the deadline")], key=lambda p: p[0])
    if now >= calendar.end_of_day(due):
        return LightStatus(TrafficLight.RED, due, 0, True, f"{what} ({due.isoformat()}) has passed")
    left = calendar.working_days_between(today, due)
    if left <= YELLOW_WORKING_DAYS:
        return LightStatus(TrafficLight.YELLOW, due, left, False,
                           f"{what} ({due.isoformat()}) is {left} working day(s) away")
    return LightStatus(TrafficLight.GREEN, due, left, False, f"{what} ({due.isoformat()}) is {left} working days away")


def statistics(items: Iterable[SupervisionItem], now: datetime, calendar: WorkCalendar) -> list[DepartmentStats]:
    """On-time statistics per responsible department."""
    rows: dict[str, dict[str, int]] = {}
    for item in items:
        row = rows.setdefault(item.responsible_department, dict(total=0, completed=0, on_time=0, open=0, overdue=0))
        row["total"] += 1
        if item.status is SupervisionStatus.COMPLETED:
            row["completed"] += 1
            row["on_time"] += bool(item.completed_on_time)
        else:
            row["open"] += 1
            row["overdue"] += now >= calendar.end_of_day(item.deadline)
    out = []
    for department, r in sorted(rows.items()):
        due = r["completed"] + r["overdue"]
        out.append(DepartmentStats(
            department, r["total"], r["completed"], r["on_time"], r["open"], r["overdue"], due,
            round(r["on_time"] / due, 4) if due else None,
        ))
    return out


def due_instant(deadline: date, calendar: WorkCalendar) -> datetime:
    return calendar.end_of_day(deadline)


def reminder_instant(deadline: date, now: datetime, calendar: WorkCalendar) -> datetime:
    """09:00 district time on the working day the item turns yellow (never before now)."""
    day = calendar.add_working_days(deadline, -YELLOW_WORKING_DAYS)
    return max(calendar.at(day, 9), now)
