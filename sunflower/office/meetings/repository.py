"""Meeting rooms, meetings and everything in them, in the `office` table.

Key design (prefixes live here and only here):
  ROOM#{code} / ROOM                    a room                 gsi1: ROOMS / {code}
  ROOMSLOT#{room} / {slot start}        a booked quarter hour: `owner` is the meeting
  MEET#{id} / MEET                      a meeting              gsi1: MEETROOM#{room} / {starts_at}#{id}
  MEET#{id} / WHO#{staff}               the organiser and each attendee
                                         gsi1: MEETWHO#{staff} / {starts_at}#{id}
  MEET#{id} / ITEM#{id}                 an agenda item; its voting state and tally are top-level
                                         attributes, changed only by conditional updates
  MEET#{id} / MAT#{id}                  a material (the file is in the office bucket)
  MEET#{id} / SIGNIN#{staff}            a sign-in
  MEET#{id} / VOTE#{item}#{staff}       a vote
  MEET#{id} / DECISION#{id}             a decision

A booking is one transaction: the meeting and a conditional put of every quarter hour it takes, so
two meetings cannot hold the same room at the same time however close together they are booked.
A vote is one transaction too: the vote (only if that attendee has none on that item), the tally's
increment, and the condition that voting on the item is open.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from sunflower.aws.dynamo import connection, overloaded_index, page_of, table_meta
from sunflower.common.clock import from_iso, to_iso
from sunflower.common.cursors import Page
from sunflower.common.errors import AlreadyExists, InvalidState, NotFound
from sunflower.office.meetings.models import (
    MAX_LENGTH,
    AgendaItem,
    Booking,
    Decision,
    Material,
    Meeting,
    MeetingStatus,
    Room,
    SignIn,
    VoteChoice,
    VotingStatus,
)


class _Item(Model):
    Meta = table_meta("office")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi1 = overloaded_index("gsi1")
    data = JSONAttribute(null=True)
    version = NumberAttribute(null=True)
    owner = UnicodeAttribute(null=True)  # room slots: the meeting holding it
    voting = UnicodeAttribute(null=True)  # agenda items
    n_for = NumberAttribute(null=True)
    n_against = NumberAttribute(null=True)
    n_abstain = NumberAttribute(null=True)
    opened_at = UnicodeAttribute(null=True)  # agenda items: when voting opened and closed
    closed_at = UnicodeAttribute(null=True)


_COUNTERS = {VoteChoice.FOR: _Item.n_for, VoteChoice.AGAINST: _Item.n_against, VoteChoice.ABSTAIN: _Item.n_abstain}


class RoomTaken(Exception):
    def __init__(self, slot: datetime | None) -> None:
        super().__init__(slot)
        self.slot = slot


def _meeting_pk(meeting_id: str) -> str:
    return f"MEET#{meeting_id}"


def _slot_key(room_id: str, slot: datetime) -> tuple[str, str]:
    return f"ROOMSLOT#{room_id}", to_iso(slot)


def _opt_iso(value: datetime | None) -> str | None:
    return to_iso(value) if value else None


def _opt_dt(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


def _meeting_data(m: Meeting) -> dict[str, Any]:
    return {
        "id": m.id, "title": m.title, "room_id": m.room_id, "starts_at": to_iso(m.starts_at), "ends_at": to_iso(m.ends_at),
        "organiser_id": m.organiser_id, "attendees": list(m.attendees), "status": m.status.value,
        "created_at": to_iso(m.created_at), "minutes": m.minutes, "minutes_by": m.minutes_by,
        "minutes_at": _opt_iso(m.minutes_at), "cancelled_at": _opt_iso(m.cancelled_at),
    }


def _meeting(item: _Item) -> Meeting:
    d = item.data
    return Meeting(
        id=d["id"], title=d["title"], room_id=d["room_id"], starts_at=from_iso(d["starts_at"]),
        ends_at=from_iso(d["ends_at"]), organiser_id=d["organiser_id"], attendees=tuple(d["attendees"]),
        status=MeetingStatus(d["status"]), created_at=from_iso(d["created_at"]), minutes=d.get("minutes"),
        minutes_by=d.get("minutes_by"), minutes_at=_opt_dt(d.get("minutes_at")),
        cancelled_at=_opt_dt(d.get("cancelled_at")), version=int(item.version or 1),
    )


def _meeting_item(m: Meeting) -> _Item:
    item = _Item(_meeting_pk(m.id), "MEET", data=_meeting_data(m), version=m.version)
    item.gsi1pk, item.gsi1sk = f"MEETROOM#{m.room_id}", f"{to_iso(m.starts_at)}#{m.id}"
    return item


def _agenda_item(item: _Item) -> AgendaItem:
    d = item.data
    tally = {c.value: int(getattr(item, attr.attr_name) or 0) for c, attr in _COUNTERS.items()}
    return AgendaItem(
        id=d["id"], meeting_id=d["meeting_id"], position=int(d["position"]), title=d["title"],
        invitees=tuple(d["invitees"]), presenter_id=d.get("presenter_id"),
        voting=VotingStatus(item.voting or VotingStatus.NOT_OPENED.value), tally=tally,
        voting_opened_at=_opt_dt(item.opened_at), voting_closed_at=_opt_dt(item.closed_at),
    )


def _material_data(m: Material) -> dict[str, Any]:
    return {
        "id": m.id, "meeting_id": m.meeting_id, "item_id": m.item_id, "file_name": m.file_name,
        "content_type": m.content_type, "size": m.size, "key": m.key, "uploaded_by": m.uploaded_by,
        "requested_at": to_iso(m.requested_at), "ready": m.ready, "confirmed_at": _opt_iso(m.confirmed_at),
    }


def _material(item: _Item) -> Material:
    d = item.data
    return Material(d["id"], d["meeting_id"], d["item_id"], d["file_name"], d["content_type"], int(d["size"]), d["key"],
                    d["uploaded_by"], from_iso(d["requested_at"]), bool(d.get("ready")), _opt_dt(d.get("confirmed_at")))


def _decision(item: _Item) -> Decision:
    d = item.data
    return Decision(d["id"], d["meeting_id"], d.get("item_id"), d["text"], d["recorded_by"], from_iso(d["recorded_at"]),
                    d.get("supervision_item_id"))


def _failed(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


class MeetingRepository:
    # --- rooms -----------------------------------------------------------------------------------

    def add_room(self, room: Room) -> None:
        item = _Item(f"ROOM#{room.id}", "ROOM", data={"id": room.id, "name": room.name, "capacity": room.capacity,
                                                      "location": room.location})
        item.gsi1pk, item.gsi1sk = "ROOMS", room.id
        try:
            item.save(condition=_Item.pk.does_not_exist())
        except PutError as exc:
            if _failed(exc):
                raise AlreadyExists(f"there is a room {room.id} already") from None
            raise

    def room(self, room_id: str) -> Room:
        try:
            d = _Item.get(f"ROOM#{room_id}", "ROOM").data
        except _Item.DoesNotExist:
            raise NotFound(f"no meeting room {room_id}") from None
        return Room(d["id"], d["name"], int(d["capacity"]), d.get("location", ""))

    def rooms(self) -> list[Room]:
        return [Room(i.data["id"], i.data["name"], int(i.data["capacity"]), i.data.get("location", ""))
                for i in _Item.gsi1.query("ROOMS")]

    def bookings(self, room_id: str, since: datetime, until: datetime) -> list[Booking]:
        """Meetings holding the room at some time in [since, until), by start."""
        low = to_iso(since - MAX_LENGTH)  # a meeting that started before `since` may still hold it
        rows = _Item.gsi1.query(f"MEETROOM#{room_id}", _Item.gsi1sk.between(low, f"{to_iso(until)}#~"))
        out = []
        for row in rows:
            meeting = _meeting(row)
            if meeting.status is MeetingStatus.SCHEDULED and meeting.ends_at > since and meeting.starts_at < until:
                out.append(Booking(room_id, meeting.id, meeting.starts_at, meeting.ends_at))
        return out

    # --- meetings --------------------------------------------------------------------------------

    def book(self, meeting: Meeting, slots: Sequence[datetime]) -> None:
        """Write the meeting with every quarter hour it takes, or nothing (RoomTaken names a taken slot)."""
        with _Item.batch_write() as batch:  # the index first: entries of a booking that fails are dropped on read
            for staff_id in dict.fromkeys((meeting.organiser_id, *meeting.attendees)):
                who = _Item(_meeting_pk(meeting.id), f"WHO#{staff_id}")
                who.gsi1pk, who.gsi1sk = f"MEETWHO#{staff_id}", f"{to_iso(meeting.starts_at)}#{meeting.id}"
                batch.save(who)
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.save(_meeting_item(meeting), condition=_Item.pk.does_not_exist())
                for slot in slots:
                    transaction.save(_Item(*_slot_key(meeting.room_id, slot), owner=meeting.id),
                                     condition=_Item.pk.does_not_exist())
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
            taken = [slots[i - 1] for i, code in enumerate(reasons) if i and code == "ConditionalCheckFailed"]
            if taken or "TransactionConflict" in reasons:
                raise RoomTaken(taken[0] if taken else None) from None
            raise

    def release(self, meeting: Meeting, previous_version: int, slots: Sequence[datetime]) -> None:
        """Save the (cancelled) meeting and free its quarter hours, if nobody changed it meanwhile."""
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.save(_meeting_item(meeting), condition=_Item.version == previous_version)
                for slot in slots:
                    transaction.delete(_Item(*_slot_key(meeting.room_id, slot)), condition=_Item.owner == meeting.id)
        except TransactWriteError as exc:
            if any(r and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons or []):
                raise InvalidState(f"meeting {meeting.id} was changed by someone else meanwhile") from None
            raise

    def save(self, meeting: Meeting, previous_version: int) -> None:
        try:
            _meeting_item(meeting).save(condition=_Item.version == previous_version)
        except PutError as exc:
            if _failed(exc):
                raise InvalidState(f"meeting {meeting.id} was changed by someone else meanwhile") from None
            raise

    def get(self, meeting_id: str) -> Meeting:
        try:
            return _meeting(_Item.get(_meeting_pk(meeting_id), "MEET", consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no meeting {meeting_id}") from None

    def get_many(self, meeting_ids: Iterable[str]) -> dict[str, Meeting]:
        keys = [(_meeting_pk(i), "MEET") for i in dict.fromkeys(meeting_ids) if i]
        return {m.id: m for m in map(_meeting, _Item.batch_get(keys))}

    def meeting_ids_of(self, staff_id: str, since: datetime | None, until: datetime | None, *,
                       limit: int, start: dict | None) -> Page[str]:
        """Ids of the meetings a member of staff organises or attends, by start."""
        low = to_iso(since) if since else "0"
        high = f"{to_iso(until)}#~" if until else "~"
        result = _Item.gsi1.query(f"MEETWHO#{staff_id}", _Item.gsi1sk.between(low, high), limit=limit, page_size=limit,
                                  last_evaluated_key=start)
        return page_of(result, lambda r: r.pk.removeprefix("MEET#"), ("pk", "sk", "gsi1pk", "gsi1sk"))

    # --- agenda ----------------------------------------------------------------------------------

    def add_agenda_item(self, item: AgendaItem) -> None:
        record = _Item(_meeting_pk(item.meeting_id), f"ITEM#{item.id}", voting=item.voting.value, n_for=0, n_against=0,
                       n_abstain=0, data={"id": item.id, "meeting_id": item.meeting_id, "position": item.position,
                                          "title": item.title, "invitees": list(item.invitees),
                                          "presenter_id": item.presenter_id})
        record.save(condition=_Item.pk.does_not_exist())

    def agenda(self, meeting_id: str) -> list[AgendaItem]:
        items = [_agenda_item(i) for i in _Item.query(_meeting_pk(meeting_id), _Item.sk.startswith("ITEM#"),
                                                      consistent_read=True)]
        return sorted(items, key=lambda i: i.position)

    def agenda_item(self, meeting_id: str, item_id: str) -> AgendaItem:
        try:
            return _agenda_item(_Item.get(_meeting_pk(meeting_id), f"ITEM#{item_id}", consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no agenda item {item_id} in meeting {meeting_id}") from None

    def set_voting(self, meeting_id: str, item_id: str, status: VotingStatus, *, was: VotingStatus, at: datetime) -> None:
        """Open or close voting, only from the state `was` (InvalidState otherwise)."""
        stamp = (_Item.opened_at if status is VotingStatus.OPEN else _Item.closed_at).set(to_iso(at))
        try:
            _Item(_meeting_pk(meeting_id), f"ITEM#{item_id}").update(
                actions=[_Item.voting.set(status.value), stamp], condition=_Item.voting == was.value)
        except UpdateError as exc:
            if _failed(exc):
                raise InvalidState(f"voting on agenda item {item_id} is not {was.value.replace('_', ' ')}") from None
            raise

    def vote(self, meeting_id: str, item_id: str, staff_id: str, choice: VoteChoice, at: datetime) -> None:
        """One vote: AlreadyExists if this attendee voted on the item; InvalidState if voting is not open."""
        vote = _Item(_meeting_pk(meeting_id), f"VOTE#{item_id}#{staff_id}",
                     data={"item_id": item_id, "staff_id": staff_id, "choice": choice.value, "at": to_iso(at)})
        item = _Item(_meeting_pk(meeting_id), f"ITEM#{item_id}")
        try:
            with TransactWrite(connection=connection()) as transaction:
                transaction.save(vote, condition=_Item.pk.does_not_exist())
                transaction.update(item, actions=[_COUNTERS[choice].add(1)],
                                   condition=_Item.voting == VotingStatus.OPEN.value)
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise AlreadyExists("you have voted on this agenda item already: one vote per attendee") from None
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise InvalidState("voting on this agenda item is not open") from None
            if "TransactionConflict" in reasons:
                raise InvalidState("the vote could not be counted right now; try again") from None
            raise

    def vote_of(self, meeting_id: str, item_id: str, staff_id: str) -> VoteChoice | None:
        try:
            return VoteChoice(_Item.get(_meeting_pk(meeting_id), f"VOTE#{item_id}#{staff_id}", consistent_read=True).data["choice"])
        except _Item.DoesNotExist:
            return None

    def votes_of(self, meeting_id: str, item_ids: Iterable[str], staff_id: str) -> dict[str, VoteChoice]:
        """One member of staff's votes on several items of a meeting (one batch read)."""
        keys = [(_meeting_pk(meeting_id), f"VOTE#{i}#{staff_id}") for i in dict.fromkeys(item_ids)]
        return {r.data["item_id"]: VoteChoice(r.data["choice"]) for r in _Item.batch_get(keys)}

    # --- materials, sign-ins, decisions ----------------------------------------------------------

    def add_material(self, material: Material) -> None:
        _Item(_meeting_pk(material.meeting_id), f"MAT#{material.id}", data=_material_data(material)).save(
            condition=_Item.pk.does_not_exist())

    def material(self, meeting_id: str, material_id: str) -> Material:
        try:
            return _material(_Item.get(_meeting_pk(meeting_id), f"MAT#{material_id}", consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no material {material_id} in meeting {meeting_id}") from None

    def save_material(self, material: Material) -> None:
        _Item(_meeting_pk(material.meeting_id), f"MAT#{material.id}", data=_material_data(material)).save()

    def materials(self, meeting_id: str) -> list[Material]:
        return [_material(i) for i in _Item.query(_meeting_pk(meeting_id), _Item.sk.startswith("MAT#"))]

    def sign_in(self, sign_in: SignIn) -> None:
        try:
            _Item(_meeting_pk(sign_in.meeting_id), f"SIGNIN#{sign_in.staff_id}",
                  data={"staff_id": sign_in.staff_id, "at": to_iso(sign_in.at)}).save(condition=_Item.pk.does_not_exist())
        except PutError as exc:
            if _failed(exc):
                raise AlreadyExists(f"{sign_in.staff_id} has signed in already") from None
            raise

    def sign_ins(self, meeting_id: str) -> list[SignIn]:
        rows = _Item.query(_meeting_pk(meeting_id), _Item.sk.startswith("SIGNIN#"), consistent_read=True)
        return sorted((SignIn(meeting_id, r.data["staff_id"], from_iso(r.data["at"])) for r in rows), key=lambda s: s.at)

    def signed_in(self, meeting_id: str, staff_id: str) -> bool:
        try:
            _Item.get(_meeting_pk(meeting_id), f"SIGNIN#{staff_id}", consistent_read=True)
        except _Item.DoesNotExist:
            return False
        return True

    def add_decision(self, decision: Decision) -> None:
        _Item(_meeting_pk(decision.meeting_id), f"DECISION#{decision.id}", data={
            "id": decision.id, "meeting_id": decision.meeting_id, "item_id": decision.item_id, "text": decision.text,
            "recorded_by": decision.recorded_by, "recorded_at": to_iso(decision.recorded_at),
            "supervision_item_id": decision.supervision_item_id,
        }).save(condition=_Item.pk.does_not_exist())

    def decisions(self, meeting_id: str) -> list[Decision]:
        rows = _Item.query(_meeting_pk(meeting_id), _Item.sk.startswith("DECISION#"), consistent_read=True)
        return [_decision(r) for r in rows]

