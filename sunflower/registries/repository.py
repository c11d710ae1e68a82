"""Persons, households, entities and credit in the `registries` table.

Key design (prefixes live here and only here):
  PERSON#{id} / PERSON        a person          gsi1: PNAME#{first char} / {name}#{id}
                                                 gsi2: COMMUNITY#{community} / {name}#{id}
  IDNO#{id number} / IDNO     uniqueness of the id number -> person id
  HOUSEHOLD#{id} / HOUSEHOLD  a household with its members
  ENTITY#{id} / ENTITY        a legal entity    gsi1: ENAME#{first char} / {name}#{id}
                                                 gsi2: LEGALREP#{person id} / {name}#{id}
  USCC#{code} / USCC          uniqueness of the credit code -> entity id
  SUBJECT#{type}#{id} / CREDIT#{date}#{id}   a credit record
  SUBJECT#{type}#{id} / PROFILE              the subject's credit profile
  DECISION#{department}#{number} / DECISION  uniqueness of a decision -> credit record id
"""

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from sunflower.aws.dynamo import connection, overloaded_index, page_of, table_meta
from sunflower.common.cursors import Page
from sunflower.common.errors import AlreadyExists, InvalidState, NotFound
from sunflower.registries.models import (
    Address,
    CreditCategory,
    CreditFactor,
    CreditProfile,
    CreditRecord,
    Entity,
    EntityStatus,
    Household,
    HouseholdMember,
    Person,
    PersonStatus,
    Relationship,
    Sex,
    StatusChange,
    SubjectType,
)

TRANSACTION_ITEMS = 100


class _Item(Model):
    """Every item of the table; each kind uses the attributes it needs."""

    Meta = table_meta("registries")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi1 = overloaded_index("gsi1")
    gsi2 = overloaded_index("gsi2")
    ref = UnicodeAttribute(null=True)  # uniqueness items: the id they point to
    data = JSONAttribute(null=True)  # the record's fields
    version = NumberAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)




# --- (de)serialisation ---------------------------------------------------------------------


def _address(value: dict | None) -> Address | None:
    return Address(**value) if value else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _person_data(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "id_number": p.id_number,
        "sex": p.sex.value,
        "birth_date": p.birth_date.isoformat(),
        "status": p.status.value,
        "created_at": p.created_at.isoformat(),
        "updated_at": p.updated_at.isoformat(),
        "phone": p.phone,
        "registered_address": asdict(p.registered_address) if p.registered_address else None,
        "current_address": asdict(p.current_address) if p.current_address else None,
        "household_id": p.household_id,
        "relationship": p.relationship.value if p.relationship else None,
        "history": [
            {"status": h.status.value, "at": h.at.isoformat(), "by": h.by, "reason": h.reason} for h in p.history
        ],
        "merged_into": p.merged_into,
        "watchlisted": p.watchlisted,
    }


def _person(item: _Item) -> Person:
    d = item.data
    return Person(
        id=d["id"],
        name=d["name"],
        id_number=d["id_number"],
        sex=Sex(d["sex"]),
        birth_date=date.fromisoformat(d["birth_date"]),
        status=PersonStatus(d["status"]),
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        phone=d.get("phone"),
        registered_address=_address(d.get("registered_address")),
        current_address=_address(d.get("current_address")),
        household_id=d.get("household_id"),
        relationship=Relationship(d["relationship"]) if d.get("relationship") else None,
        history=tuple(
            StatusChange(PersonStatus(h["status"]), datetime.fromisoformat(h["at"]), h["by"], h["reason"])
            for h in d.get("history", [])
        ),
        merged_into=d.get("merged_into"),
        watchlisted=bool(d.get("watchlisted", False)),
        version=int(item.version or 1),
    )


def _entity_data(e: Entity) -> dict[str, Any]:
    return {
        "id": e.id,
        "name": e.name,
        "credit_code": e.credit_code,
        "entity_type": e.entity_type,
        "legal_rep_id": e.legal_rep_id,
        "legal_rep_name": e.legal_rep_name,
        "status": e.status.value,
        "created_at": e.created_at.isoformat(),
        "updated_at": e.updated_at.isoformat(),
        "registered_capital": str(e.registered_capital) if e.registered_capital is not None else None,
        "industry_code": e.industry_code,
        "address": asdict(e.address) if e.address else None,
        "established_on": e.established_on.isoformat() if e.established_on else None,
        "status_changed_on": e.status_changed_on.isoformat() if e.status_changed_on else None,
    }


def _entity(item: _Item) -> Entity:
    d = item.data
    return Entity(
        id=d["id"],
        name=d["name"],
        credit_code=d["credit_code"],
        entity_type=d["entity_type"],
        legal_rep_id=d["legal_rep_id"],
        legal_rep_name=d["legal_rep_name"],
        status=EntityStatus(d["status"]),
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        registered_capital=Decimal(d["registered_capital"]) if d.get("registered_capital") is not None else None,
        industry_code=d.get("industry_code"),
        address=_address(d.get("address")),
        established_on=_date(d.get("established_on")),
        status_changed_on=_date(d.get("status_changed_on")),
        version=int(item.version or 1),
    )


def _record_data(r: CreditRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "subject_type": r.subject_type.value,
        "subject_id": r.subject_id,
        "category": r.category.value,
        "department": r.department,
        "decision_number": r.decision_number,
        "decided_on": r.decided_on.isoformat(),
        "created_at": r.created_at.isoformat(),
        "summary": r.summary,
        "valid_until": r.valid_until.isoformat() if r.valid_until else None,
        "publicity_until": r.publicity_until.isoformat() if r.publicity_until else None,
    }


def _record(item: _Item) -> CreditRecord:
    d = item.data
    return CreditRecord(
        id=d["id"],
        subject_type=SubjectType(d["subject_type"]),
        subject_id=d["subject_id"],
        category=CreditCategory(d["category"]),
        department=d["department"],
        decision_number=d["decision_number"],
        decided_on=date.fromisoformat(d["decided_on"]),
        created_at=datetime.fromisoformat(d["created_at"]),
        summary=d.get("summary", ""),
        valid_until=_date(d.get("valid_until")),
        publicity_until=_date(d.get("publicity_until")),
    )


def _profile(item: _Item) -> tuple[CreditProfile, date | None]:
    """The stored profile and the day it next changes (a record expiring or ageing out)."""
    d = item.data
    profile = CreditProfile(
        subject_type=SubjectType(d["subject_type"]),
        subject_id=d["subject_id"],
        grade=d["grade"],
        score=int(d["score"]),
        factors=tuple(
            CreditFactor(f["description"], int(f["points"]), f.get("record_id"), f.get("public", True)) for f in d["factors"]
        ),
        red_list=bool(d["red_list"]),
        black_list=bool(d["black_list"]),
        computed_on=date.fromisoformat(d["computed_on"]),
        record_count=int(d.get("record_count", 0)),
    )
    return profile, _date(d.get("next_change_on"))


# --- keys ------------------------------------------------------------------------------------


def _person_key(person_id: str) -> tuple[str, str]:
    return f"PERSON#{person_id}", "PERSON"


def _id_number_key(id_number: str) -> tuple[str, str]:
    return f"IDNO#{id_number}", "IDNO"


def _entity_key(entity_id: str) -> tuple[str, str]:
    return f"ENTITY#{entity_id}", "ENTITY"


def _code_key(code: str) -> tuple[str, str]:
    return f"USCC#{code}", "USCC"


def _subject_pk(subject_type: SubjectType, subject_id: str) -> str:
    return f"SUBJECT#{subject_type.value}#{subject_id}"


def _decision_key(department: str, number: str) -> tuple[str, str]:
    return f"DECISION#{department}#{number}", "DECISION"


def _record_item(r: CreditRecord) -> _Item:
    return _Item(_subject_pk(r.subject_type, r.subject_id), f"CREDIT#{r.decided_on.isoformat()}#{r.id}", data=_record_data(r))


def _person_item(p: Person) -> _Item:
    pk, sk = _person_key(p.id)
    item = _Item(pk, sk, data=_person_data(p), version=p.version, updated_at=p.updated_at)
    if p.status is not PersonStatus.MERGED:  # a merged duplicate is found only through its id
        item.gsi1pk, item.gsi1sk = f"PNAME#{p.name[0]}", f"{p.name}#{p.id}"
        if p.community_id:
            item.gsi2pk, item.gsi2sk = f"COMMUNITY#{p.community_id}", f"{p.name}#{p.id}"
    return item


def _entity_item(e: Entity) -> _Item:
    pk, sk = _entity_key(e.id)
    item = _Item(pk, sk, data=_entity_data(e), version=e.version, updated_at=e.updated_at)
    item.gsi1pk, item.gsi1sk = f"ENAME#{e.name[0]}", f"{e.name}#{e.id}"
    item.gsi2pk, item.gsi2sk = f"LEGALREP#{e.legal_rep_id}", f"{e.name}#{e.id}"
    return item


_LIST_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")
_LIST_KEYS2 = ("pk", "sk", "gsi2pk", "gsi2sk")


def _conflicts(exc: TransactWriteError) -> list[int]:
    """Positions of the transaction's items whose condition failed."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [i for i, reason in enumerate(reasons) if reason is not None and reason.code == "ConditionalCheckFailed"]


def _add_claimed(records: list, items_of: Callable[[Any], tuple[_Item, ...]]) -> list:
    """Create records, each with the uniqueness claims it needs, in transactions of up to 100 items.

    A record and its claims are written together or not at all; a conflict in one record re-runs its
    neighbours without it. Returns the records whose claim (or record) already existed.
    """
    taken: list = []
    per_record = len(items_of(records[0])) if records else 1
    chunk = TRANSACTION_ITEMS // per_record
    for start in range(0, len(records), chunk):
        pending = records[start : start + chunk]
        while pending:
            try:
                with TransactWrite(connection=connection()) as tx:
                    for record in pending:
                        for item in items_of(record):
                            tx.save(item, condition=_Item.pk.does_not_exist())
                break
            except TransactWriteError as exc:
                failed = {i // per_record for i in _conflicts(exc)}
                if not failed:
                    raise
                taken += [pending[i] for i in sorted(failed)]
                pending = [r for i, r in enumerate(pending) if i not in failed]
    return taken


class PersonRepository:
    def add(self, person: Person) -> None:
        """Create the person and claim the id number, both or neither."""
        try:
            with TransactWrite(connection=connection()) as tx:
                tx.save(_person_item(person), condition=_Item.pk.does_not_exist())
                tx.save(_Item(*_id_number_key(person.id_number), ref=person.id), condition=_Item.pk.does_not_exist())
        except TransactWriteError as exc:
            if _conflicts(exc):
                raise AlreadyExists(f"a person with id number {person.id_number[:6]}… is already registered") from None
            raise

    def add_many(self, persons: list[Person]) -> list[Person]:
        """Create many; returns those whose id number was already taken."""
        return _add_claimed(persons, lambda p: (_person_item(p), _Item(*_id_number_key(p.id_number), ref=p.id)))

    def save(self, person: Person, previous: Person) -> Person:
        """Write a changed person if nobody else changed it since `previous` was read."""
        saved = person.changed(version=previous.version + 1)
        try:
            with TransactWrite(connection=connection()) as tx:
                tx.save(_person_item(saved), condition=_Item.version == previous.version)
                if saved.id_number != previous.id_number:
                    tx.delete(_Item(*_id_number_key(previous.id_number)))
                    tx.save(_Item(*_id_number_key(saved.id_number), ref=saved.id), condition=_Item.pk.does_not_exist())
        except TransactWriteError as exc:
            conflicts = _conflicts(exc)
            if conflicts == [0]:
                raise InvalidState("the person was changed by someone else meanwhile; reload and try again") from None
            if conflicts:
                raise AlreadyExists("another person already has this id number") from None
            raise
        return saved

    def get(self, person_id: str) -> Person:
        try:
            return _person(_Item.get(*_person_key(person_id), consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no person {person_id}") from None

    def get_many(self, person_ids: Iterable[str], *, consistent: bool = False) -> dict[str, Person]:
        """One BatchGetItem per 100 distinct ids (and a retry for any the table left unprocessed)."""
        keys = [_person_key(i) for i in dict.fromkeys(person_ids) if i]
        return {p.id: p for p in map(_person, _Item.batch_get(keys, consistent_read=consistent))}

    def ids_by_id_number(self, id_numbers: Iterable[str]) -> dict[str, str]:
        keys = [_id_number_key(n) for n in dict.fromkeys(id_numbers)]
        return {item.pk.removeprefix("IDNO#"): item.ref for item in _Item.batch_get(keys)}

    def by_name_prefix(self, prefix: str, *, limit: int, start: dict | None) -> Page[Person]:
        result = _Item.gsi1.query(
            f"PNAME#{prefix[0]}", _Item.gsi1sk.startswith(prefix), limit=limit, page_size=limit, last_evaluated_key=start
        )
        return page_of(result, _person, _LIST_KEYS)

    def by_community(self, community_id: str, *, limit: int, start: dict | None) -> Page[Person]:
        result = _Item.gsi2.query(f"COMMUNITY#{community_id}", limit=limit, page_size=limit, last_evaluated_key=start)
        return page_of(result, _person, _LIST_KEYS2)

    def scan(self) -> Iterator[Person]:
        for item in _Item.scan(_Item.pk.startswith("PERSON#"), page_size=1000):
            yield _person(item)


class HouseholdRepository:
    def add_many(self, households: list[Household]) -> list[Household]:
        """Create households, 100 to a transaction; returns those that exist already."""
        return _add_claimed(households, lambda h: (_household_item(h),))

    def add(self, household: Household) -> None:
        try:
            _household_item(household).save(condition=_Item.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise AlreadyExists(f"household {household.id} exists") from None
            raise

    def save(self, household: Household, previous_version: int) -> Household:
        saved = Household(household.id, household.head_id, household.address, household.members,
                          household.created_at, previous_version + 1)
        try:
            _household_item(saved).save(condition=_Item.version == previous_version)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise InvalidState("the household was changed meanwhile; reload and try again") from None
            raise
        return saved

    def get(self, household_id: str) -> Household:
        try:
            item = _Item.get(f"HOUSEHOLD#{household_id}", "HOUSEHOLD", consistent_read=True)
        except _Item.DoesNotExist:
            raise NotFound(f"no household {household_id}") from None
        return _household(item)

    def get_many(self, household_ids: Iterable[str]) -> dict[str, Household]:
        keys = [(f"HOUSEHOLD#{i}", "HOUSEHOLD") for i in dict.fromkeys(household_ids) if i]
        return {h.id: h for h in map(_household, _Item.batch_get(keys))}


def _household_item(h: Household) -> _Item:
    data = {
        "id": h.id,
        "head_id": h.head_id,
        "address": asdict(h.address) if h.address else None,
        "members": [{"person_id": m.person_id, "relationship": m.relationship.value} for m in h.members],
        "created_at": h.created_at.isoformat(),
    }
    return _Item(f"HOUSEHOLD#{h.id}", "HOUSEHOLD", data=data, version=h.version)


def _household(item: _Item) -> Household:
    d = item.data
    return Household(
        id=d["id"],
        head_id=d["head_id"],
        address=_address(d.get("address")),
        members=tuple(HouseholdMember(m["person_id"], Relationship(m["relationship"])) for m in d["members"]),
        created_at=datetime.fromisoformat(d["created_at"]),
        version=int(item.version or 1),
    )


class EntityRepository:
    def add_many(self, entities: list[Entity]) -> list[Entity]:
        """Create entities with their credit-code claims; returns those whose code was taken."""
        return _add_claimed(entities, lambda e: (_entity_item(e), _Item(*_code_key(e.credit_code), ref=e.id)))

    def save(self, entity: Entity, previous: Entity) -> Entity:
        saved = Entity(**{**entity.__dict__, "version": previous.version + 1})
        try:
            with TransactWrite(connection=connection()) as tx:
                tx.save(_entity_item(saved), condition=_Item.version == previous.version)
                if saved.credit_code != previous.credit_code:
                    tx.delete(_Item(*_code_key(previous.credit_code)))
                    tx.save(_Item(*_code_key(saved.credit_code), ref=saved.id), condition=_Item.pk.does_not_exist())
        except TransactWriteError as exc:
            conflicts = _conflicts(exc)
            if conflicts == [0]:
                raise InvalidState("the entity was changed by someone else meanwhile; reload and try again") from None
            if conflicts:
                raise AlreadyExists("another entity already has this credit code") from None
            raise
        return saved

    def get(self, entity_id: str) -> Entity:
        try:
            return _entity(_Item.get(*_entity_key(entity_id), consistent_read=True))
        except _Item.DoesNotExist:
            raise NotFound(f"no legal entity {entity_id}") from None

    def get_many(self, entity_ids: Iterable[str]) -> dict[str, Entity]:
        keys = [_entity_key(i) for i in dict.fromkeys(entity_ids) if i]
        return {e.id: e for e in map(_entity, _Item.batch_get(keys))}

    def ids_by_code(self, codes: Iterable[str]) -> dict[str, str]:
        keys = [_code_key(c) for c in dict.fromkeys(codes)]
        return {item.pk.removeprefix("USCC#"): item.ref for item in _Item.batch_get(keys)}

    def by_name_prefix(self, prefix: str, *, limit: int, start: dict | None) -> Page[Entity]:
        result = _Item.gsi1.query(
            f"ENAME#{prefix[0]}", _Item.gsi1sk.startswith(prefix), limit=limit, page_size=limit, last_evaluated_key=start
        )
        return page_of(result, _entity, _LIST_KEYS)

    def by_legal_rep(self, person_id: str, *, limit: int, start: dict | None) -> Page[Entity]:
        result = _Item.gsi2.query(f"LEGALREP#{person_id}", limit=limit, page_size=limit, last_evaluated_key=start)
        return page_of(result, _entity, _LIST_KEYS2)

    def scan(self) -> Iterator[Entity]:
        for item in _Item.scan(_Item.pk.startswith("ENTITY#"), page_size=1000):
            yield _entity(item)


class CreditRepository:
    def add_many(self, records: list[CreditRecord]) -> list[CreditRecord]:
        """Add records with their decision-number claims; returns those already recorded."""
        return _add_claimed(records, lambda r: (_record_item(r), _Item(*_decision_key(r.department, r.decision_number), ref=r.id)))

    def move(self, records: list[CreditRecord], subject_id: str) -> None:
        """Re-file records under another subject of the same type (merging duplicates), each moved whole."""
        for start in range(0, len(records), TRANSACTION_ITEMS // 2):
            with TransactWrite(connection=connection()) as tx:
                for r in records[start : start + TRANSACTION_ITEMS // 2]:
                    tx.save(_record_item(CreditRecord(**{**r.__dict__, "subject_id": subject_id})))
                    tx.delete(_record_item(r))

    def recorded_decisions(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (department, decision number) pairs are already recorded."""
        found = set()
        for item in _Item.batch_get([_decision_key(d, n) for d, n in dict.fromkeys(keys)]):
            department, _, number = item.pk.removeprefix("DECISION#").partition("#")
            found.add((department, number))
        return found

    def records(self, subject_type: SubjectType, subject_id: str) -> list[CreditRecord]:
        return [_record(i) for i in _Item.query(_subject_pk(subject_type, subject_id), _Item.sk.startswith("CREDIT#"),
                                                 scan_index_forward=False, consistent_read=True)]

    def page(self, subject_type: SubjectType, subject_id: str, *, limit: int, start: dict | None) -> Page[CreditRecord]:
        result = _Item.query(_subject_pk(subject_type, subject_id), _Item.sk.startswith("CREDIT#"),
                             scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start)
        return page_of(result, _record, ("pk", "sk"))

    def save_profile(self, profile: CreditProfile, next_change_on: date | None) -> None:
        data = {
            **{k: v for k, v in asdict(profile).items() if k not in {"subject_type", "computed_on", "factors"}},
            "subject_type": profile.subject_type.value,
            "computed_on": profile.computed_on.isoformat(),
            "factors": [asdict(f) for f in profile.factors],
            "next_change_on": next_change_on.isoformat() if next_change_on else None,
        }
        _Item(_subject_pk(profile.subject_type, profile.subject_id), "PROFILE", data=json.loads(json.dumps(data))).save()

    def profiles(self, subjects: Iterable[tuple[SubjectType, str]]) -> dict[tuple[SubjectType, str], tuple[CreditProfile, date | None]]:
        keys = [(_subject_pk(t, i), "PROFILE") for t, i in dict.fromkeys(subjects)]
        found = {}
        for item in _Item.batch_get(keys):
            profile, next_change_on = _profile(item)
            found[(profile.subject_type, profile.subject_id)] = (profile, next_change_on)
        return found
