"""GraphQL for paperless meetings: rooms and their bookings, meetings, agenda items with materials for the
attendees invited to them, sign-in, votes, minutes, and decisions that become supervision items.

Materials go through presigned URLs like documents' attachments: requestMeetingMaterialUpload, an HTTP
PUT, confirmMeetingMaterial; requestMeetingMaterialDownload for the attendees invited to the item.
"""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry import Info, relay
from strawberry.dataloader import DataLoader

from sunflower.api.errors import (
    AlreadyExistsErrorType,
    InvalidStateErrorType,
    NotFoundErrorType,
    PermissionDeniedErrorType,
    ValidationErrorType,
    mutate,
)
from sunflower.api.office.documents import (
    FileDownloadPayload,
    FileDownloadType,
    FileUploadPayload,
    FileUploadType,
    SupervisionRequestInput,
    supervision_item_loader,
)
from sunflower.api.office.supervision import SupervisionItemType
from sunflower.api.office.types import node_id, office
from sunflower.api.permissions import roles, signed_in
from sunflower.api.relay import connection, page_request
from sunflower.auth.principals import Role
from sunflower.common.errors import NotFound
from sunflower.office.meetings.models import (
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

MEETING = "Meeting"

MeetingStatusEnum = strawberry.enum(MeetingStatus, name="MeetingStatus")
MeetingPhaseEnum = strawberry.enum(MeetingPhase, name="MeetingPhase", description="Where the meeting is in time now.")
VotingStatusEnum = strawberry.enum(VotingStatus, name="VotingStatus")
VoteChoiceEnum = strawberry.enum(VoteChoice, name="VoteChoice", description="赞成, 反对, 弃权.")


def meeting_gid(meeting_id: str) -> strawberry.ID:
    return strawberry.ID(relay.to_base64(MEETING, meeting_id))


def _meeting_id(global_id: relay.GlobalID) -> str:
    return node_id(global_id, MEETING, "meetingId")


# --- dataloaders: an agenda's votes and materials cost one read each, however long the agenda -------


def _vote_loader(info: Info) -> DataLoader[tuple[str, str], VoteChoice | None]:
    """The viewer's vote by (meeting id, item id)."""
    services = info.context.services

    def fetch(viewer, keys: list[tuple[str, str]]) -> dict:
        found = {}
        for meeting_id in dict.fromkeys(m for m, _ in keys):
            items = [i for m, i in keys if m == meeting_id]
            votes = services.office.meetings.my_votes(viewer, meeting_id, items)
            found.update({(meeting_id, i): v for i, v in votes.items()})
        return found

    return info.context.loaders.loader("office.meeting_vote", fetch)


def _material_loader(info: Info) -> DataLoader[str, list[Material]]:
    """The materials the viewer may see, by meeting id."""
    services = info.context.services
    return info.context.loaders.loader(
        "office.meeting_materials", lambda viewer, ids: {i: services.office.meetings.materials(viewer, i) for i in ids}
    )


@strawberry.type(name="MeetingRoom")
class RoomType:
    id: strawberry.ID = strawberry.field(description="The room's code, e.g. r301.")
    name: str
    capacity: int
    location: str

    @classmethod
    def of(cls, r: Room) -> "RoomType":
        return cls(id=strawberry.ID(r.id), name=r.name, capacity=r.capacity, location=r.location)


@strawberry.type(name="RoomBooking", description="When a room is taken (which meeting is for its attendees to know).")
class BookingType:
    room_id: strawberry.ID
    starts_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, b: Booking) -> "BookingType":
        return cls(room_id=strawberry.ID(b.room_id), starts_at=b.starts_at, ends_at=b.ends_at)


@strawberry.type(name="VoteTally")
class TallyType:
    in_favour: int
    against: int
    abstain: int
    total: int


@strawberry.type(name="MeetingMaterial")
class MaterialType:
    id: strawberry.ID
    item_id: strawberry.ID = strawberry.field(description="The agenda item it belongs to.")
    file_name: str
    content_type: str
    size: int
    ready: bool = strawberry.field(description="False until the upload is confirmed.")
    uploaded_by: str
    requested_at: datetime

    @classmethod
    def of(cls, m: Material) -> "MaterialType":
        return cls(id=strawberry.ID(m.id), item_id=strawberry.ID(m.item_id), file_name=m.file_name,
                   content_type=m.content_type, size=m.size, ready=m.ready, uploaded_by=m.uploaded_by,
                   requested_at=m.requested_at)


@strawberry.type(name="AgendaItem", description="An agenda item: only the organiser and the attendees invited to it see it.")
class AgendaItemType:
    id: strawberry.ID
    position: int
    title: str
    invitees: list[str] = strawberry.field(description="Staff ids of the attendees invited to it.")
    presenter_id: str | None
    voting: VotingStatusEnum
    tally: TallyType
    voting_opened_at: datetime | None
    voting_closed_at: datetime | None
    meeting_id: strawberry.Private[str]

    @classmethod
    def of(cls, i: AgendaItem) -> "AgendaItemType":
        t = i.tally
        return cls(
            id=strawberry.ID(i.id), position=i.position, title=i.title, invitees=list(i.invitees),
            presenter_id=i.presenter_id, voting=i.voting,
            tally=TallyType(in_favour=t.get("for", 0), against=t.get("against", 0), abstain=t.get("abstain", 0),
                            total=i.votes_cast),
            voting_opened_at=i.voting_opened_at, voting_closed_at=i.voting_closed_at, meeting_id=i.meeting_id,
        )

    @strawberry.field(description="Your vote on it; null if you have not voted.")
    async def my_vote(self, info: Info) -> VoteChoiceEnum | None:
        return await _vote_loader(info).load((self.meeting_id, str(self.id)))

    @strawberry.field(description="Its materials (you see the item, so you may download them).")
    async def materials(self, info: Info) -> list[MaterialType]:
        found = await _material_loader(info).load(self.meeting_id)
        return [MaterialType.of(m) for m in found or () if m.item_id == str(self.id)]


@strawberry.type(name="MeetingSignIn")
class SignInType:
    staff_id: str
    at: datetime

    @classmethod
    def of(cls, s: SignIn) -> "SignInType":
        return cls(staff_id=s.staff_id, at=s.at)


@strawberry.type(name="MeetingDecision", description="A decision (议定事项), possibly followed up as a supervision item.")
class DecisionType:
    id: strawberry.ID
    item_id: strawberry.ID | None
    text: str
    recorded_by: str
    recorded_at: datetime
    supervision_item_id: strawberry.Private[str | None]

    @classmethod
    def of(cls, d: Decision) -> "DecisionType":
        return cls(id=strawberry.ID(d.id), item_id=strawberry.ID(d.item_id) if d.item_id else None, text=d.text,
                   recorded_by=d.recorded_by, recorded_at=d.recorded_at, supervision_item_id=d.supervision_item_id)

    @strawberry.field(description="The supervision item it became; null if none or not yours to read.")
    async def supervision_item(self, info: Info) -> SupervisionItemType | None:
        if not self.supervision_item_id:
            return None
        item = await supervision_item_loader(info).load(self.supervision_item_id)
        return SupervisionItemType.of(item) if item else None


@strawberry.type(name="Meeting", description="A paperless meeting: its room and time, attendees, agenda, votes and record.")
class MeetingType(relay.Node):
    id: relay.NodeID[str]
    title: str
    room_id: strawberry.ID
    starts_at: datetime
    ends_at: datetime
    organiser_id: str
    attendees: list[str]
    status: MeetingStatusEnum
    created_at: datetime
    minutes: str | None = strawberry.field(description="会议纪要, written by the organiser.")
    minutes_by: str | None
    minutes_at: datetime | None
    meeting: strawberry.Private[Meeting]

    @classmethod
    def of(cls, m: Meeting) -> "MeetingType":
        return cls(id=m.id, title=m.title, room_id=strawberry.ID(m.room_id), starts_at=m.starts_at, ends_at=m.ends_at,
                   organiser_id=m.organiser_id, attendees=list(m.attendees), status=m.status, created_at=m.created_at,
                   minutes=m.minutes, minutes_by=m.minutes_by, minutes_at=m.minutes_at, meeting=m)

    @classmethod
    def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        ids = list(node_ids)
        found = office(info).meetings.get_many(info.context.require_principal(), ids)  # one batch read
        return [cls.of(found[i]) if i in found else None for i in ids]

    @strawberry.field
    def phase(self, info: Info) -> MeetingPhaseEnum:
        return office(info).meetings.phase(self.meeting)

    @strawberry.field(description="The agenda items you are invited to (the organiser: all), in order.")
    def agenda(self, info: Info) -> list[AgendaItemType]:
        return [AgendaItemType.of(i) for i in office(info).meetings.agenda(info.context.require_principal(), self.id)]

    @strawberry.field(description="Who has signed in, and when.")
    def attendance(self, info: Info) -> list[SignInType]:
        return [SignInType.of(s) for s in office(info).meetings.attendance(info.context.require_principal(), self.id)]

    @strawberry.field
    def decisions(self, info: Info) -> list[DecisionType]:
        return [DecisionType.of(d) for d in office(info).meetings.decisions(info.context.require_principal(), self.id)]


_Errors = ValidationErrorType | NotFoundErrorType | PermissionDeniedErrorType | InvalidStateErrorType
MeetingPayload = Annotated[MeetingType | _Errors, strawberry.union("MeetingPayload")]
MeetingRoomPayload = Annotated[RoomType | _Errors | AlreadyExistsErrorType, strawberry.union("MeetingRoomPayload")]
AgendaItemPayload = Annotated[AgendaItemType | _Errors | AlreadyExistsErrorType, strawberry.union("AgendaItemPayload")]
MeetingMaterialPayload = Annotated[MaterialType | _Errors, strawberry.union("MeetingMaterialPayload")]
MeetingSignInPayload = Annotated[SignInType | _Errors | AlreadyExistsErrorType, strawberry.union("MeetingSignInPayload")]
MeetingDecisionPayload = Annotated[DecisionType | _Errors, strawberry.union("MeetingDecisionPayload")]


@strawberry.input(name="AddMeetingRoomInput")
class AddRoomInput:
    code: str
    name: str
    capacity: int
    location: str = ""


@strawberry.input(name="ScheduleMeetingInput")
class ScheduleInput:
    title: str
    room_id: strawberry.ID
    starts_at: datetime = strawberry.field(description="On a quarter hour, in the future.")
    ends_at: datetime = strawberry.field(description="On a quarter hour; at most 12 hours after the start.")
    attendees: list[str] = strawberry.field(description="Staff ids; with you, as many as the room holds.")


@strawberry.input(name="AddAgendaItemInput")
class AgendaInput:
    meeting_id: relay.GlobalID
    title: str
    invitees: list[str] | None = strawberry.field(default=None, description="Attendees invited to it; all when left out.")
    presenter_id: str | None = strawberry.field(default=None, description="May upload its materials.")


@strawberry.input(name="AgendaItemRefInput")
class AgendaRefInput:
    meeting_id: relay.GlobalID
    item_id: strawberry.ID


@strawberry.input(name="CastVoteInput")
class VoteInput:
    meeting_id: relay.GlobalID
    item_id: strawberry.ID
    choice: VoteChoiceEnum


@strawberry.input(name="RequestMeetingMaterialUploadInput")
class MaterialUploadInput:
    meeting_id: relay.GlobalID
    item_id: strawberry.ID
    file_name: str
    content_type: str = strawberry.field(description="PDF, OFD, Word, WPS, Excel, PowerPoint, JPEG, PNG or plain text.")
    size: int = strawberry.field(description="Bytes, at most 50 MB: the upload must be exactly this long.")


@strawberry.input(name="MeetingMaterialInput")
class MaterialInput:
    meeting_id: relay.GlobalID
    material_id: strawberry.ID


@strawberry.input(name="RecordMeetingMinutesInput")
class MinutesInput:
    meeting_id: relay.GlobalID
    text: str = strawberry.field(description="The whole minutes (replacing earlier ones), at most 50,000 characters.")


@strawberry.input(name="RecordMeetingDecisionInput")
class DecisionInput:
    meeting_id: relay.GlobalID
    text: str = strawberry.field(description="1 to 2000 characters.")
    item_id: strawberry.ID | None = strawberry.field(default=None, description="The agenda item it settles.")
    supervision: SupervisionRequestInput | None = strawberry.field(
        default=None, description="Also make it a supervision item (responsibleDepartment required), in the same step."
    )
    leader_id: str | None = strawberry.field(default=None, description="Who escalations go to; the organiser when left out.")


def _stamp(at: datetime | None) -> str:
    return at.isoformat() if at else ""


@strawberry.type
class MeetingQueries:
    @strawberry.field(extensions=signed_in(), description="A meeting you organise or attend; null if there is none.")
    def meeting(self, info: Info, id: relay.GlobalID) -> MeetingType | None:
        if id.type_name != MEETING:
            return None
        try:
            return MeetingType.of(office(info).meetings.get(info.context.require_principal(), id.node_id))
        except NotFound:
            return None

    @strawberry.field(extensions=signed_in(), description="Meetings you organise or attend, by start, in [since, until].")
    def my_meetings(
        self, info: Info, since: datetime | None = None, until: datetime | None = None, first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[MeetingType]:
        request = page_request(info, f"myMeetings:{_stamp(since)}:{_stamp(until)}", first, after)
        page = office(info).meetings.meetings(
            info.context.require_principal(), since=since, until=until, limit=request.limit, start=request.start
        )
        return connection(info, request, page, MeetingType.of)

    @strawberry.field(extensions=roles(Role.OFFICIAL, Role.ADMIN, Role.AUDITOR))
    def meeting_rooms(self, info: Info) -> list[RoomType]:
        return [RoomType.of(r) for r in office(info).meetings.rooms(info.context.require_principal())]

    @strawberry.field(
        extensions=roles(Role.OFFICIAL, Role.ADMIN, Role.AUDITOR),
        description="When a room is taken on a day (district date).",
    )
    def meeting_room_bookings(self, info: Info, room_id: strawberry.ID, day: date) -> list[BookingType]:
        found = office(info).meetings.room_day(info.context.require_principal(), str(room_id), day)
        return [BookingType.of(b) for b in found]


@strawberry.type
class MeetingMutations:
    @strawberry.mutation(extensions=roles(Role.ADMIN), description="Add a meeting room.")
    def add_meeting_room(self, info: Info, input: AddRoomInput) -> MeetingRoomPayload:
        return mutate(
            lambda: office(info).meetings.add_room(info.context.require_principal(), code=input.code, name=input.name,
                                                   capacity=input.capacity, location=input.location),
            RoomType.of,
        )

    @strawberry.mutation(
        extensions=roles(Role.OFFICIAL),
        description="Schedule a meeting you organise; refused if any quarter hour of it is taken in the room.",
    )
    def schedule_meeting(self, info: Info, input: ScheduleInput) -> MeetingPayload:
        return mutate(
            lambda: office(info).meetings.schedule(
                info.context.require_principal(), title=input.title, room_id=str(input.room_id),
                starts_at=input.starts_at, ends_at=input.ends_at, attendees=input.attendees,
            ),
            MeetingType.of,
        )

    @strawberry.mutation(extensions=signed_in(), description="Cancel an upcoming meeting (the organiser); the room is freed.")
    def cancel_meeting(self, info: Info, meeting_id: relay.GlobalID) -> MeetingPayload:
        return mutate(lambda: office(info).meetings.cancel(info.context.require_principal(), _meeting_id(meeting_id)),
                      MeetingType.of)

    @strawberry.mutation(extensions=signed_in(), description="Add an agenda item (the organiser).")
    def add_agenda_item(self, info: Info, input: AgendaInput) -> AgendaItemPayload:
        return mutate(
            lambda: office(info).meetings.add_agenda_item(
                info.context.require_principal(), _meeting_id(input.meeting_id), title=input.title,
                invitees=input.invitees, presenter_id=input.presenter_id,
            ),
            AgendaItemType.of,
        )

    @strawberry.mutation(
        extensions=signed_in(),
        description="A presigned PUT for a material of an agenda item (the organiser or its presenter); then "
        "confirmMeetingMaterial.",
    )
    def request_meeting_material_upload(self, info: Info, input: MaterialUploadInput) -> FileUploadPayload:
        return mutate(
            lambda: office(info).meetings.request_material_upload(
                info.context.require_principal(), _meeting_id(input.meeting_id), str(input.item_id),
                file_name=input.file_name, content_type=input.content_type, size=input.size,
            ),
            FileUploadType.of,
        )

    @strawberry.mutation(extensions=signed_in(), description="Confirm an upload (checked against the declared size and type).")
    def confirm_meeting_material(self, info: Info, input: MaterialInput) -> MeetingMaterialPayload:
        return mutate(
            lambda: office(info).meetings.confirm_material(
                info.context.require_principal(), _meeting_id(input.meeting_id), str(input.material_id)),
            MaterialType.of,
        )

    @strawberry.mutation(
        extensions=signed_in(), description="A download link for a material: the attendees invited to its item only."
    )
    def request_meeting_material_download(self, info: Info, input: MaterialInput) -> FileDownloadPayload:
        return mutate(
            lambda: office(info).meetings.material_download(
                info.context.require_principal(), _meeting_id(input.meeting_id), str(input.material_id)),
            FileDownloadType.of,
        )

    @strawberry.mutation(extensions=signed_in(), description="Sign in (attendees), from 30 minutes before the start to the end.")
    def sign_in_to_meeting(self, info: Info, meeting_id: relay.GlobalID) -> MeetingSignInPayload:
        return mutate(lambda: office(info).meetings.sign_in(info.context.require_principal(), _meeting_id(meeting_id)),
                      SignInType.of)

    @strawberry.mutation(extensions=signed_in(), description="Open voting on an agenda item (the organiser, once it has begun).")
    def open_voting(self, info: Info, input: AgendaRefInput) -> AgendaItemPayload:
        return mutate(lambda: office(info).meetings.open_voting(
            info.context.require_principal(), _meeting_id(input.meeting_id), str(input.item_id)), AgendaItemType.of)

    @strawberry.mutation(extensions=signed_in(), description="Close voting on an agenda item (the organiser): the tally is final.")
    def close_voting(self, info: Info, input: AgendaRefInput) -> AgendaItemPayload:
        return mutate(lambda: office(info).meetings.close_voting(
            info.context.require_principal(), _meeting_id(input.meeting_id), str(input.item_id)), AgendaItemType.of)

    @strawberry.mutation(
        extensions=signed_in(),
        description="Vote on an agenda item: once, if you are invited to it and signed in, while voting is open.",
    )
    def cast_vote(self, info: Info, input: VoteInput) -> AgendaItemPayload:
        return mutate(lambda: office(info).meetings.vote(
            info.context.require_principal(), _meeting_id(input.meeting_id), str(input.item_id), VoteChoice(input.choice)),
            AgendaItemType.of)

    @strawberry.mutation(extensions=signed_in(), description="Write the minutes (the organiser, once it has begun).")
    def record_meeting_minutes(self, info: Info, input: MinutesInput) -> MeetingPayload:
        return mutate(lambda: office(info).meetings.record_minutes(
            info.context.require_principal(), _meeting_id(input.meeting_id), input.text), MeetingType.of)

    @strawberry.mutation(
        extensions=signed_in(),
        description="Record a decision (the organiser); with `supervision` it becomes a supervision item (督办) in the "
        "same step, and bad supervision input refuses the whole decision (fields named supervision.*).",
    )
    def record_meeting_decision(self, info: Info, input: DecisionInput) -> MeetingDecisionPayload:
        return mutate(
            lambda: office(info).meetings.record_decision(
                info.context.require_principal(), _meeting_id(input.meeting_id), text=input.text,
                item_id=str(input.item_id) if input.item_id else None,
                supervise=input.supervision.domain() if input.supervision else None, leader_id=input.leader_id,
            ),
            DecisionType.of,
        )
