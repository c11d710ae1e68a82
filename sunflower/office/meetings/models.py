"""Paperless meetings (无纸化会议): rooms, bookings, agenda items, materials, sign-in, votes, minutes, decisions."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sunflower.common.errors import FieldProblem

SLOT = timedelta(minutes=15)  # rooms are booked in quarter hours
MAX_LENGTH = timedelta(hours=12)
MAX_ATTENDEES = 300
SIGN_IN_OPENS = timedelta(minutes=30)  # before the start


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class MeetingPhase(StrEnum):
    """Where a scheduled meeting is in time (from its status and the clock)."""

    UPCOMING = "upcoming"
    IN_PROGRESS = "in_progress"
    ENDED = "ended"
    CANCELLED = "cancelled"


class VotingStatus(StrEnum):
    NOT_OPENED = "not_opened"
    OPEN = "open"
    CLOSED = "closed"


class VoteChoice(StrEnum):
    FOR = "for"  # 赞成
    AGAINST = "against"  # 反对
    ABSTAIN = "abstain"  # 弃权


@dataclass(frozen=True)
class Room:
    id: str  # a short code, e.g. "r301"
    name: str
    capacity: int
    location: str = ""


@dataclass(frozen=True)
class Booking:
    """A room taken from `starts_at` to `ends_at` by a meeting (what anyone may see of a room's day)."""

    room_id: str
    meeting_id: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Meeting:
    id: str
    title: str
    room_id: str
    starts_at: datetime
    ends_at: datetime
    organiser_id: str  # a staff id: schedules it, sets the agenda, runs the votes, writes minutes and decisions
    attendees: tuple[str, ...]  # staff ids
    status: MeetingStatus
    created_at: datetime
    minutes: str | None = None
    minutes_by: str | None = None
    minutes_at: datetime | None = None
    cancelled_at: datetime | None = None
    version: int = 1

    def takes_part(self, staff_id: str) -> bool:
        return staff_id == self.organiser_id or staff_id in self.attendees

    def phase(self, now: datetime) -> MeetingPhase:
        if self.status is MeetingStatus.CANCELLED:
            return MeetingPhase.CANCELLED
        if now < self.starts_at:
            return MeetingPhase.UPCOMING
        return MeetingPhase.IN_PROGRESS if now < self.ends_at else MeetingPhase.ENDED


@dataclass(frozen=True)
class AgendaItem:
    id: str
    meeting_id: str
    position: int  # 1, 2, … in the order added
    title: str
    invitees: tuple[str, ...]  # the attendees who may see it, its materials and vote on it
    presenter_id: str | None = None  # may upload its materials
    voting: VotingStatus = VotingStatus.NOT_OPENED
    tally: dict[str, int] = field(default_factory=dict)  # choice -> votes
    voting_opened_at: datetime | None = None
    voting_closed_at: datetime | None = None

    def visible_to(self, staff_id: str, meeting: Meeting) -> bool:
        return staff_id == meeting.organiser_id or staff_id in self.invitees

    @property
    def votes_cast(self) -> int:
        return sum(self.tally.values())


@dataclass(frozen=True)
class Material:
    id: str
    meeting_id: str
    item_id: str
    file_name: str
    content_type: str
    size: int
    key: str
    uploaded_by: str
    requested_at: datetime
    ready: bool = False
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class SignIn:
    meeting_id: str
    staff_id: str
    at: datetime


@dataclass(frozen=True)
class Decision:
    id: str
    meeting_id: str
    item_id: str | None
    text: str
    recorded_by: str
    recorded_at: datetime
    supervision_item_id: str | None = None


def slots(starts_at: datetime, ends_at: datetime) -> list[datetime]:
    """The quarter hours a booking takes, by their start."""
    out, at = [], starts_at
    while at < ends_at:
        out.append(at)
        at += SLOT
    return out


def time_problems(starts_at: datetime, ends_at: datetime, now: datetime) -> list[FieldProblem]:
    problems = []
    for name, value in (("startsAt", starts_at), ("endsAt", ends_at)):
        if value.tzinfo is None:
            problems.append(FieldProblem(name, "needs a time zone"))
        elif value.second or value.microsecond or value.minute % 15:
            problems.append(FieldProblem(name, "must be on a quarter hour (rooms are booked in 15-minute slots)"))
    if problems:
        return problems
    if starts_at <= now:
        problems.append(FieldProblem("startsAt", "is in the past"))
    if ends_at <= starts_at:
        problems.append(FieldProblem("endsAt", "must be after the start"))
    elif ends_at - starts_at > MAX_LENGTH:
        problems.append(FieldProblem("endsAt", f"a meeting lasts at most {MAX_LENGTH.seconds // 3600} hours"))
    return problems
