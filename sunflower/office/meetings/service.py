"""Paperless meetings (无纸化会议): rooms without double booking, agenda items with materials for the
attendees invited to them, sign-in, votes, minutes, and decisions that become supervision items.

No BPMN: nothing in a meeting is routed from one person to the next. It is a booking and a record,
with the organiser running it; the one thing that does go on afterwards, a decision to carry out,
becomes a supervision item (督办) with its own workflow.

Who may do what:
  rooms                 administrators add them; officials read them and their bookings
  schedule              officials on the organisation chart (they organise it)
  agenda, votes,
  minutes, decisions    the organiser (materials also the item's presenter)
  see a meeting         its organiser and attendees; auditors
  see an agenda item    the organiser and the attendees invited to it: its materials and tally too
  sign in               attendees, from 30 minutes before the start to the end
  vote                  attendees invited to the item who have signed in, while voting on it is open
"""

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from sunflower.auth.principals import SYSTEM, Principal, PrincipalKind, Role
from sunflower.common.clock import Clock
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
from sunflower.office.documents.models import (
    DownloadTicket,
    SupervisionRequest,
    UploadTicket,
    check_file,
)
from sunflower.office.documents.storage import OfficeFiles
from sunflower.office.meetings import models
from sunflower.office.meetings.models import (
    MAX_ATTENDEES,
    SIGN_IN_OPENS,
    AgendaItem,
    Booking,
    Decision,
    Material,
    Meeting,
    MeetingPhase,
    MeetingStatus,
    Room,
    SignIn,
    VoteChoice,
    VotingStatus,
)
from sunflower.office.meetings.repository import MeetingRepository, RoomTaken
from sunflower.office.org import OrgService
from sunflower.office.supervision.models import SourceKind
from sunflower.office.supervision.service import SupervisionService

MAX_TITLE, MAX_TEXT, MAX_MINUTES = 200, 2000, 50_000
MAX_ITEMS, MAX_MATERIALS = 50, 200
URL_TTL_S = 900
_ORGANISERS = (Role.OFFICIAL, Role.ADMIN)
_AUDITORS = (Role.AUDITOR,)


class MeetingService:
    def __init__(
        self,
        repository: MeetingRepository,
        org: OrgService,
        supervision: SupervisionService,
        files: OfficeFiles,
        calendar: WorkCalendar,
        clock: Clock,
    ) -> None:
        self._repo = repository
        self._org = org
        self._supervision = supervision
        self._files = files
        self._calendar = calendar
        self._clock = clock

    # --- rooms ---------------------------------------------------------------------------------

    def add_room(self, actor: Principal, *, code: str, name: str, capacity: int, location: str = "") -> Room:
        if not (actor.kind is PrincipalKind.SYSTEM or actor.has_any(Role.ADMIN)):
            raise PermissionDenied("only administrators add meeting rooms")
        problems: list[FieldProblem] = []
        code = (code or "").strip()
        if not code or len(code) > 64 or not all(c.isalnum() or c in "-_." for c in code):
            problems.append(FieldProblem("code", "letters, digits, '-', '_' or '.', at most 64"))
        name = _text(name, "name", MAX_TITLE, problems)
        if not 1 <= capacity <= 2000:
            problems.append(FieldProblem("capacity", "must be between 1 and 2000"))
        _raise(problems)
        room = Room(code, name, capacity, (location or "").strip()[:MAX_TITLE])
        self._repo.add_room(room)
        return room

    def rooms(self, viewer: Principal) -> list[Room]:
        _require_official(viewer)
        return sorted(self._repo.rooms(), key=lambda r: r.id)

    def room_day(self, viewer: Principal, room_id: str, day: date) -> list[Booking]:
        """When the room is taken on a district day (times only: which meeting is not everyone's business)."""
        _require_official(viewer)
        self._repo.room(room_id)
        start = self._calendar.at(day, 0)
        return sorted(self._repo.bookings(room_id, start, start + timedelta(days=1)), key=lambda b: b.starts_at)

    # --- scheduling ----------------------------------------------------------------------------

    def schedule(
        self,
        actor: Principal,
        *,
        title: str,
        room_id: str,
        starts_at: datetime,
        ends_at: datetime,
        attendees: Sequence[str],
    ) -> Meeting:
        """Book the room for the meeting; refused if any quarter hour of it is taken (nothing is written then)."""
        if actor.kind is not PrincipalKind.PERSON or not actor.has_any(*_ORGANISERS):
            raise PermissionDenied("only officials schedule meetings")
        now = self._clock()
        problems: list[FieldProblem] = []
        title = _text(title, "title", MAX_TITLE, problems)
        problems += models.time_problems(starts_at, ends_at, now)
        attendees = tuple(dict.fromkeys(a.strip() for a in attendees if a and a.strip()))
        if not attendees:
            problems.append(FieldProblem("attendees", "invite at least one attendee"))
        elif len(attendees) > MAX_ATTENDEES:
            problems.append(FieldProblem("attendees", f"at most {MAX_ATTENDEES}"))
        try:
            room = self._repo.room(room_id)
        except NotFound:
            room = None
            problems.append(FieldProblem("roomId", f"no meeting room {room_id!r}"))
        staff = self._org.staff_many(SYSTEM, [actor.id, *attendees])
        if actor.id not in staff:
            problems.append(FieldProblem("organiser", f"you ({actor.id}) are not a member of staff in the organisation chart"))
        problems += [FieldProblem("attendees", f"no member of staff {a!r}") for a in attendees if a not in staff]
        people = len(set(attendees) | {actor.id})
        if room is not None and people > room.capacity:
            problems.append(FieldProblem("attendees", f"{people} people do not fit room {room.id} (capacity {room.capacity})"))
        _raise(problems)

        meeting = Meeting(new_id(), title, room_id, starts_at, ends_at, actor.id, attendees, MeetingStatus.SCHEDULED, now)
        try:
            self._repo.book(meeting, models.slots(starts_at, ends_at))
        except RoomTaken as exc:
            when = f" at {exc.slot.astimezone(self._calendar.zone):%Y-%m-%d %H:%M} (district time)" if exc.slot else ""
            raise InvalidState(f"room {room_id} is already booked{when}; choose another room or time") from None
        return meeting

    def cancel(self, actor: Principal, meeting_id: str) -> Meeting:
        """Cancel an upcoming meeting and free its room."""
        meeting = self._repo.get(meeting_id)
        self._require_organiser(actor, meeting)
        if meeting.phase(self._clock()) is not MeetingPhase.UPCOMING:
            raise InvalidState(f"meeting {meeting_id} is {meeting.phase(self._clock()).value}: only an upcoming meeting is cancelled")
        cancelled = replace(meeting, status=MeetingStatus.CANCELLED, cancelled_at=self._clock(), version=meeting.version + 1)
        self._repo.release(cancelled, meeting.version, models.slots(meeting.starts_at, meeting.ends_at))
        return cancelled

    # --- reading -------------------------------------------------------------------------------

    def get(self, viewer: Principal, meeting_id: str) -> Meeting:
        meeting = self._repo.get(meeting_id)
        if not self._may_see(viewer, meeting):
            raise PermissionDenied(f"you are not invited to meeting {meeting_id}")
        return meeting

    def get_many(self, viewer: Principal, meeting_ids: Iterable[str]) -> dict[str, Meeting]:
        return {i: m for i, m in self._repo.get_many(meeting_ids).items() if self._may_see(viewer, m)}

    def meetings(self, viewer: Principal, *, since: datetime | None = None, until: datetime | None = None,
                 limit: int = 20, start: dict | None = None) -> Page[Meeting]:
        """The viewer's meetings (organised or attended), by start time."""
        page = self._repo.meeting_ids_of(viewer.id, since, until, limit=limit, start=start)
        found = self.get_many(viewer, page.items)
        rows = [(found[i], k) for i, k in zip(page.items, page.item_keys, strict=True) if i in found]
        return Page([m for m, _ in rows], page.next_key, [k for _, k in rows])

    def phase(self, meeting: Meeting) -> MeetingPhase:
        return meeting.phase(self._clock())

    # --- agenda and materials ------------------------------------------------------------------

    def add_agenda_item(self, actor: Principal, meeting_id: str, *, title: str, invitees: Sequence[str] | None = None,
                        presenter_id: str | None = None) -> AgendaItem:
        """An agenda item for some of the attendees (all of them when `invitees` is None)."""
        meeting = self._open_meeting(actor, meeting_id)
        problems: list[FieldProblem] = []
        title = _text(title, "title", MAX_TITLE, problems)
        chosen = meeting.attendees if invitees is None else tuple(dict.fromkeys(i.strip() for i in invitees if i.strip()))
        problems += [FieldProblem("invitees", f"{i!r} is not an attendee of the meeting") for i in chosen
                     if i not in meeting.attendees]
        if not chosen:
            problems.append(FieldProblem("invitees", "invite at least one attendee"))
        if presenter_id and not meeting.takes_part(presenter_id):
            problems.append(FieldProblem("presenterId", f"{presenter_id!r} is not an attendee of the meeting"))
        _raise(problems)
        agenda = self._repo.agenda(meeting_id)
        if len(agenda) >= MAX_ITEMS:
            raise InvalidState(f"a meeting has at most {MAX_ITEMS} agenda items")
        item = AgendaItem(new_id(), meeting_id, len(agenda) + 1, title, chosen, presenter_id or None)
        self._repo.add_agenda_item(item)
        return self._repo.agenda_item(meeting_id, item.id)

    def agenda(self, viewer: Principal, meeting_id: str) -> list[AgendaItem]:
        """The agenda items the viewer is invited to (the organiser: all of them)."""
        meeting = self.get(viewer, meeting_id)
        return [i for i in self._repo.agenda(meeting_id) if i.visible_to(viewer.id, meeting)
                or viewer.kind is PrincipalKind.SYSTEM]

    def request_material_upload(self, actor: Principal, meeting_id: str, item_id: str, *, file_name: str,
                                content_type: str, size: int) -> UploadTicket:
        """A presigned PUT for a material of an agenda item (organiser or the item's presenter), 15 minutes."""
        meeting = self.get(actor, meeting_id)
        item = self._repo.agenda_item(meeting_id, item_id)
        if actor.id not in (meeting.organiser_id, item.presenter_id):
            raise PermissionDenied("materials are added by the organiser or the agenda item's presenter")
        if meeting.status is MeetingStatus.CANCELLED:
            raise InvalidState(f"meeting {meeting_id} is cancelled")
        name = check_file(file_name, content_type, size)
        if len(self._repo.materials(meeting_id)) >= MAX_MATERIALS:
            raise InvalidState(f"a meeting has at most {MAX_MATERIALS} materials")
        now = self._clock()
        material_id = new_id()
        key = f"meetings/{meeting_id}/{item_id}/{material_id}/{name}"
        content_type = content_type.strip().lower()
        url, headers = self._files.upload_url(key, content_type=content_type, size=size, expires_s=URL_TTL_S)
        self._repo.add_material(Material(material_id, meeting_id, item_id, name, content_type, size, key,
                                         actor.audit_name, now))
        return UploadTicket(material_id, key, url, "PUT", headers, now + timedelta(seconds=URL_TTL_S))

    def confirm_material(self, actor: Principal, meeting_id: str, material_id: str) -> Material:
        material = self._repo.material(meeting_id, material_id)
        if material.uploaded_by != actor.audit_name:
            raise PermissionDenied("only whoever asked to upload a file confirms it")
        if material.ready:
            return material
        stored = self._files.head(material.key)
        if stored is None:
            raise InvalidState("the file has not been uploaded yet: PUT it to the upload URL first")
        if stored.size != material.size or stored.content_type.split(";")[0].strip().lower() != material.content_type:
            self._files.delete(material.key)
            raise InvalidState(
                f"the uploaded file ({stored.size} bytes, {stored.content_type or 'no type'}) is not the "
                f"{material.size} bytes of {material.content_type} declared; it was deleted, ask for a new upload URL"
            )
        ready = replace(material, ready=True, confirmed_at=self._clock())
        self._repo.save_material(ready)
        return ready

    def materials(self, viewer: Principal, meeting_id: str, item_id: str | None = None) -> list[Material]:
        """Materials of the agenda items the viewer is invited to (of one item, if given)."""
        visible = {i.id for i in self.agenda(viewer, meeting_id)}
        if item_id is not None and item_id not in visible:
            raise PermissionDenied(f"you are not invited to agenda item {item_id}")
        return [m for m in self._repo.materials(meeting_id) if m.item_id in visible and (item_id is None or m.item_id == item_id)]

    def material_download(self, viewer: Principal, meeting_id: str, material_id: str) -> DownloadTicket:
        """A presigned GET, valid 15 minutes, only for the organiser and the attendees invited to its item."""
        meeting = self.get(viewer, meeting_id)
        material = self._repo.material(meeting_id, material_id)
        item = self._repo.agenda_item(meeting_id, material.item_id)
        if not item.visible_to(viewer.id, meeting):
            raise PermissionDenied(f"you are not invited to agenda item '{item.title}'")
        if not material.ready:
            raise InvalidState(f"material {material_id} has not been uploaded and confirmed yet")
        url = self._files.download_url(material.key, file_name=material.file_name, content_type=material.content_type,
                                       expires_s=URL_TTL_S)
        return DownloadTicket(url, material.file_name, self._clock() + timedelta(seconds=URL_TTL_S))

    # --- sign-in and votes ---------------------------------------------------------------------

    def sign_in(self, actor: Principal, meeting_id: str) -> SignIn:
        meeting = self.get(actor, meeting_id)
        if actor.id not in meeting.attendees:
            raise PermissionDenied("only attendees sign in")
        now = self._clock()
        if meeting.status is MeetingStatus.CANCELLED:
            raise InvalidState(f"meeting {meeting_id} is cancelled")
        if now < meeting.starts_at - SIGN_IN_OPENS:
            raise InvalidState(f"sign-in opens 30 minutes before the start ({_local(meeting.starts_at - SIGN_IN_OPENS, self._calendar)})")
        if now >= meeting.ends_at:
            raise InvalidState("the meeting has ended")
        sign_in = SignIn(meeting_id, actor.id, now)
        self._repo.sign_in(sign_in)
        return sign_in

    def attendance(self, viewer: Principal, meeting_id: str) -> list[SignIn]:
        self.get(viewer, meeting_id)
        return self._repo.sign_ins(meeting_id)

    def open_voting(self, actor: Principal, meeting_id: str, item_id: str) -> AgendaItem:
        meeting = self._running_meeting(actor, meeting_id)
        self._repo.agenda_item(meeting.id, item_id)
        self._repo.set_voting(meeting_id, item_id, VotingStatus.OPEN, was=VotingStatus.NOT_OPENED, at=self._clock())
        return self._repo.agenda_item(meeting_id, item_id)

    def close_voting(self, actor: Principal, meeting_id: str, item_id: str) -> AgendaItem:
        meeting = self._repo.get(meeting_id)
        self._require_organiser(actor, meeting)
        self._repo.agenda_item(meeting_id, item_id)
        self._repo.set_voting(meeting_id, item_id, VotingStatus.CLOSED, was=VotingStatus.OPEN, at=self._clock())
        return self._repo.agenda_item(meeting_id, item_id)

    def vote(self, actor: Principal, meeting_id: str, item_id: str, choice: VoteChoice) -> AgendaItem:
        """One vote per invited, signed-in attendee, while voting on the item is open; returns the tally."""
        meeting = self.get(actor, meeting_id)
        item = self._repo.agenda_item(meeting_id, item_id)
        if actor.id not in item.invitees:
            raise PermissionDenied("only the attendees invited to this agenda item vote on it")
        if item.voting is not VotingStatus.OPEN:
            raise InvalidState(f"voting on '{item.title}' is {item.voting.value.replace('_', ' ')}")
        if not self._repo.signed_in(meeting.id, actor.id):
            raise InvalidState("sign in to the meeting before you vote")
        self._repo.vote(meeting_id, item_id, actor.id, VoteChoice(choice), self._clock())
        return self._repo.agenda_item(meeting_id, item_id)

    def my_vote(self, viewer: Principal, meeting_id: str, item_id: str) -> VoteChoice | None:
        return self._repo.vote_of(meeting_id, item_id, viewer.id)

    def my_votes(self, viewer: Principal, meeting_id: str, item_ids: Iterable[str]) -> dict[str, VoteChoice]:
        """The viewer's own votes on several agenda items (one batch read)."""
        return self._repo.votes_of(meeting_id, item_ids, viewer.id)

    # --- minutes and decisions -----------------------------------------------------------------

    def record_minutes(self, actor: Principal, meeting_id: str, text: str) -> Meeting:
        """The minutes (会议纪要), written or rewritten by the organiser once the meeting has begun."""
        meeting = self._running_meeting(actor, meeting_id)
        text = (text or "").strip()
        if not text or len(text) > MAX_MINUTES:
            raise ValidationFailed.on("text", f"is required and at most {MAX_MINUTES} characters")
        changed = replace(meeting, minutes=text, minutes_by=actor.audit_name, minutes_at=self._clock(),
                          version=meeting.version + 1)
        self._repo.save(changed, meeting.version)
        return changed

    def record_decision(
        self,
        actor: Principal,
        meeting_id: str,
        *,
        text: str,
        item_id: str | None = None,
        supervise: SupervisionRequest | None = None,
        leader_id: str | None = None,
    ) -> Decision:
        """A decision (议定事项). With `supervise` it becomes a supervision item in the same step: the
        item is created first (its checks refuse bad input before anything is written), then the
        decision naming it. `leader_id` (default: the organiser) is who escalations go to."""
        meeting = self._running_meeting(actor, meeting_id)
        problems: list[FieldProblem] = []
        text = _text(text, "text", MAX_TEXT, problems)
        if item_id:
            try:
                self._repo.agenda_item(meeting_id, item_id)
            except NotFound:
                problems.append(FieldProblem("itemId", f"no agenda item {item_id} in this meeting"))
        if supervise is not None and not supervise.responsible_department:
            problems.append(FieldProblem("supervision.responsibleDepartment", "is required"))
        _raise(problems)
        supervision_id = None
        if supervise is not None:
            local_day = self._calendar.local_date(meeting.starts_at).isoformat()
            try:
                created = self._supervision.create(
                    actor,
                    title=(supervise.title or text)[:200],
                    source=SourceKind.MEETING_DECISION,
                    source_ref=f"{meeting.title} ({local_day})"[:200],
                    leader_id=leader_id or meeting.organiser_id,
                    responsible_department=supervise.responsible_department,
                    assisting_departments=supervise.assisting_departments,
                    deadline=supervise.deadline,
                    detail=text,
                )
            except ValidationFailed as exc:
                problems = [FieldProblem(f"supervision.{p.field}", p.message) for p in exc.problems]
                raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=tuple(problems)) from None
            supervision_id = created.id
        decision = Decision(new_id(), meeting_id, item_id or None, text, actor.audit_name, self._clock(), supervision_id)
        self._repo.add_decision(decision)
        return decision

    def decisions(self, viewer: Principal, meeting_id: str) -> list[Decision]:
        self.get(viewer, meeting_id)
        return sorted(self._repo.decisions(meeting_id), key=lambda d: d.recorded_at)

    # --- helpers -------------------------------------------------------------------------------

    def _may_see(self, viewer: Principal, meeting: Meeting) -> bool:
        return viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(*_AUDITORS) or meeting.takes_part(viewer.id)

    def _require_organiser(self, actor: Principal, meeting: Meeting) -> None:
        if actor.kind is not PrincipalKind.SYSTEM and actor.id != meeting.organiser_id:
            raise PermissionDenied(f"only the organiser of meeting {meeting.id} does this")

    def _open_meeting(self, actor: Principal, meeting_id: str) -> Meeting:
        meeting = self._repo.get(meeting_id)
        self._require_organiser(actor, meeting)
        if meeting.status is MeetingStatus.CANCELLED:
            raise InvalidState(f"meeting {meeting_id} is cancelled")
        return meeting

    def _running_meeting(self, actor: Principal, meeting_id: str) -> Meeting:
        """A meeting that has begun (votes, minutes and decisions are made in it or after it)."""
        meeting = self._open_meeting(actor, meeting_id)
        if self._clock() < meeting.starts_at:
            raise InvalidState(f"meeting {meeting_id} has not begun (it starts {_local(meeting.starts_at, self._calendar)})")
        return meeting


def _require_official(viewer: Principal) -> None:
    if not (viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(Role.OFFICIAL, Role.ADMIN, Role.AUDITOR)):
        raise PermissionDenied("only officials see meeting rooms")


def _text(value: str | None, field: str, limit: int, problems: list[FieldProblem]) -> str:
    value = (value or "").strip()
    if not value or len(value) > limit:
        problems.append(FieldProblem(field, f"is required and at most {limit} characters"))
    return value


def _raise(problems: list[FieldProblem]) -> None:
    if problems:
        raise ValidationFailed("; ".join(f"{p.field}: {p.message}" for p in problems), problems=tuple(problems))


def _local(moment: datetime, calendar: WorkCalendar) -> str:
    return f"{moment.astimezone(calendar.zone):%Y-%m-%d %H:%M} district time"
