"""The registries' rules: who sees what, registering and changing records, bulk import, quality."""

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from zoneinfo import ZoneInfo

from sunflower.audit.models import AuditAction, AuditEvent
from sunflower.audit.service import AuditService
from sunflower.auth.principals import Principal
from sunflower.common.clock import Clock
from sunflower.common.cursors import Page
from sunflower.common.errors import (
    AlreadyExists,
    DomainError,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from sunflower.common.ids import new_id
from sunflower.registries import access, credit, drafts
from sunflower.registries.access import Visibility
from sunflower.registries.identifiers import parse_id_number
from sunflower.registries.models import (
    CreditProfile,
    CreditRecord,
    Entity,
    EntityStatus,
    Household,
    HouseholdMember,
    Person,
    PersonStatus,
    PersonView,
    Relationship,
    Residency,
    ResidencyChange,
    StatusChange,
    SubjectType,
)
from sunflower.registries.repository import (
    CreditRepository,
    EntityRepository,
    HouseholdRepository,
    PersonRepository,
)
from sunflower.registries.uscc import parse_credit_code

UNSTATED = "not stated"
WATCHLIST_REASON_MAX = 200

ResidencyListener = Callable[[list[ResidencyChange]], None]


class RowStatus(StrEnum):
    ACCEPTED = "accepted"  # created or changed
    UNCHANGED = "unchanged"  # already registered exactly so
    REJECTED = "rejected"


@dataclass(frozen=True)
class Row:
    line: int
    fields: Mapping[str, str]


@dataclass(frozen=True)
class RowOutcome:
    line: int
    status: RowStatus
    reasons: tuple[str, ...] = ()
    record_id: str | None = None


@dataclass(frozen=True)
class QualityReport:
    registry: str
    total: int
    completeness: dict[str, float]
    invalid: list[tuple[str, str, str]] = field(default_factory=list)  # (record id, field, reason)
    duplicates: list[list[str]] = field(default_factory=list)  # groups of record ids


class ImportKind(StrEnum):
    PERSON = "person"
    ENTITY = "entity"
    CREDIT = "credit"


def _reasons(exc: ValidationFailed) -> tuple[str, ...]:
    return tuple(f"{p.field}: {p.message}" for p in exc.problems) or (exc.message,)


class RegistryService:
    def __init__(
        self,
        persons: PersonRepository,
        households: HouseholdRepository,
        entities: EntityRepository,
        credit_records: CreditRepository,
        audit: AuditService,
        clock: Clock,
        zone: str = "Asia/Shanghai",
    ) -> None:
        self._persons = persons
        self._households = households
        self._entities = entities
        self._credit = credit_records
        self._audit = audit
        self._clock = clock
        self._zone = ZoneInfo(zone)
        self._residency_listeners: list[ResidencyListener] = []

    def today(self) -> date:
        return self._clock().astimezone(self._zone).date()

    # --- reading people ----------------------------------------------------------------------

    def persons(self, viewer: Principal, person_ids: Iterable[str], purpose: str) -> dict[str, PersonView]:
        """The persons this viewer may see, masked as their role requires; every one read is audited."""
        found = self._persons.get_many(person_ids)
        return self._visible(viewer, list(found.values()), purpose)

    def person(self, viewer: Principal, person_id: str, purpose: str) -> PersonView:
        seen = self.persons(viewer, [person_id], purpose)
        if person_id not in seen:
            raise NotFound(f"no person {person_id} that you may see")
        return seen[person_id]

    def person_by_id_number(self, viewer: Principal, id_number: str, purpose: str) -> PersonView | None:
        number = parse_id_number(id_number, today=self.today()).value
        person_id = self._persons.ids_by_id_number([number]).get(number)
        return self.persons(viewer, [person_id], purpose).get(person_id) if person_id else None

    def persons_by_name(self, viewer: Principal, prefix: str, *, limit: int, start: dict | None, purpose: str) -> Page[PersonView]:
        prefix = prefix.strip()
        if not prefix:
            raise ValidationFailed.on("namePrefix", "give at least the first character of the name")
        return self._visible_page(viewer, self._persons.by_name_prefix(prefix, limit=limit, start=start), purpose)

    def persons_in_community(
        self, viewer: Principal, community_id: str, *, limit: int, start: dict | None, purpose: str
    ) -> Page[PersonView]:
        return self._visible_page(viewer, self._persons.by_community(community_id, limit=limit, start=start), purpose)

    def _visible_page(self, viewer: Principal, page: Page[Person], purpose: str) -> Page[PersonView]:
        seen = self._visible(viewer, page.items, purpose)
        kept = [(seen[p.id], key) for p, key in zip(page.items, page.item_keys, strict=True) if p.id in seen]
        return Page([v for v, _ in kept], page.next_key, [k for _, k in kept])

    def _visible(self, viewer: Principal, persons: list[Person], purpose: str) -> dict[str, PersonView]:
        views: dict[str, PersonView] = {}
        for person in persons:
            visibility = access.person_visibility(viewer, person, purpose)
            if visibility is not Visibility.NONE:
                views[person.id] = access.view(person, visibility, viewer)
        if views:
            self._audit.record_many(
                [self._event(viewer, AuditAction.READ, "person", pid, purpose, fields="masked" if v.masked else "full")
                 for pid, v in views.items()]
            )
        return views

    def households(self, viewer: Principal, household_ids: Iterable[str]) -> dict[str, Household]:
        """Households whose members the viewer may see (members are resolved, and audited, as persons)."""
        access.require_signed_in(viewer)
        return self._households.get_many(household_ids)

    # --- changing people ---------------------------------------------------------------------

    def register_person(self, actor: Principal, fields: Mapping[str, str], purpose: str) -> PersonView:
        draft = drafts.person_draft(fields, today=self.today())
        access.require_person_writer(actor, draft.current_address.community_id if draft.current_address else None)
        if self._persons.ids_by_id_number([draft.id_number.value]):
            raise AlreadyExists("a person with this id number is already registered")
        outcome = self._import_persons(actor, [Row(0, fields)], purpose or "register person")[0]
        if outcome.status is not RowStatus.ACCEPTED:
            raise AlreadyExists("; ".join(outcome.reasons) or "registered meanwhile by someone else")
        return access.view(self._persons.get(outcome.record_id), Visibility.FULL, actor)

    def update_person(self, actor: Principal, person_id: str, fields: Mapping[str, str], purpose: str) -> PersonView:
        """Change the given fields (others keep their value); the id number still decides sex and birth date."""
        current = self._persons.get(person_id)
        access.require_person_writer(actor, current.community_id)
        merged = {**_person_fields(current), **{k: v for k, v in fields.items() if v is not None}}
        draft = drafts.person_draft(merged, today=self.today())
        access.require_person_writer(actor, draft.current_address.community_id if draft.current_address else None)
        changed = _apply(current, draft, self._clock())
        if changed == current:
            return access.view(current, Visibility.FULL, actor)
        self._audit.record(self._event(actor, AuditAction.UPDATE, "person", person_id, purpose or "update person"))
        saved = self._persons.save(changed, current)
        if (saved.household_id, saved.relationship) != (current.household_id, current.relationship):
            self._join_households([saved])  # as an import does: the household lists its members
        self._residency_changed([(current, saved)])
        return access.view(saved, Visibility.FULL, actor)

    def change_person_status(
        self, actor: Principal, person_id: str, status: PersonStatus, reason: str, purpose: str
    ) -> PersonView:
        current = self._persons.get(person_id)
        access.require_person_writer(actor, current.community_id)
        if status is PersonStatus.MERGED:
            raise ValidationFailed.on("status", "records become merged only through mergePersons")
        if current.status in (PersonStatus.MERGED, PersonStatus.DECEASED):
            raise InvalidState(f"the record is {current.status.value}; it cannot change status any more")
        if current.status is status:
            return access.view(current, Visibility.FULL, actor)
        if not reason.strip():
            raise ValidationFailed.on("reason", "say why the status changes (e.g. 迁往南岗区)")
        now = self._clock()
        changed = current.changed(
            status=status, updated_at=now, history=(*current.history, StatusChange(status, now, actor.audit_name, reason.strip()))
        )
        self._audit.record(self._event(actor, AuditAction.UPDATE, "person", person_id, purpose or f"status {status.value}"))
        saved = self._persons.save(changed, current)
        self._residency_changed([(current, saved)])
        return access.view(saved, Visibility.FULL, actor)

    def merge_persons(self, actor: Principal, keep_id: str, duplicate_id: str, purpose: str) -> PersonView:
        """Fold a duplicate record into the one to keep: its entities and credit records move over."""
        access.require_official(actor, "merge person records")
        if keep_id == duplicate_id:
            raise ValidationFailed.on("duplicateId", "is the record to keep")
        keep, duplicate = self._persons.get(keep_id), self._persons.get(duplicate_id)
        for person in (keep, duplicate):
            if person.status is PersonStatus.MERGED:
                raise InvalidState(f"{person.id} was already merged into {person.merged_into}")
        self._audit.record_many(
            [self._event(actor, AuditAction.UPDATE, "person", pid, purpose or "merge duplicate records",
                         merged=f"{duplicate_id}->{keep_id}") for pid in (keep_id, duplicate_id)]
        )
        for entity in self._all(lambda start: self._entities.by_legal_rep(duplicate_id, limit=100, start=start)):
            moved = Entity(**{**entity.__dict__, "legal_rep_id": keep_id, "legal_rep_name": keep.name,
                              "updated_at": self._clock()})
            self._entities.save(moved, entity)
        records = self._credit.records(SubjectType.PERSON, duplicate_id)
        if records:
            self._credit.move(records, keep_id)
            self._refresh_profiles([(SubjectType.PERSON, keep_id), (SubjectType.PERSON, duplicate_id)])
        now = self._clock()
        filled = keep.changed(
            phone=keep.phone or duplicate.phone,
            current_address=keep.current_address or duplicate.current_address,
            registered_address=keep.registered_address or duplicate.registered_address,
            household_id=keep.household_id or duplicate.household_id,
            relationship=keep.relationship or duplicate.relationship,
            watchlisted=keep.watchlisted or duplicate.watchlisted,  # one person: a flag on either stays
            updated_at=now,
        )
        kept = self._persons.save(filled, keep) if filled != keep else keep
        gone = self._persons.save(
            duplicate.changed(
                status=PersonStatus.MERGED, merged_into=keep_id, updated_at=now,
                history=(*duplicate.history, StatusChange(PersonStatus.MERGED, now, actor.audit_name, f"merged into {keep_id}")),
            ),
            duplicate,
        )
        self._residency_changed([(keep, kept), (duplicate, gone)])
        return access.view(kept, Visibility.FULL, actor)

    def set_watchlist(self, actor: Principal, person_id: str, watchlisted: bool, reason: str, purpose: str) -> PersonView:
        """Put a person on the police watchlist or take them off it (police only); the same again writes nothing."""
        access.require_police(actor, "put persons on the watchlist or take them off it")
        reason = (reason or "").strip()
        if not reason:
            raise ValidationFailed.on("reason", "say why (e.g. the case number)")
        if len(reason) > WATCHLIST_REASON_MAX:
            raise ValidationFailed.on("reason", f"is longer than {WATCHLIST_REASON_MAX} characters")
        current = self._persons.get(person_id)
        if current.status is PersonStatus.MERGED:
            raise InvalidState(f"the record was merged into {current.merged_into}; flag that record instead")
        visibility = access.person_visibility(actor, current, purpose)  # the police: masked at least
        if current.watchlisted is watchlisted:  # nothing to write; returning the record is still a read
            self._audit.record(self._event(actor, AuditAction.READ, "person", person_id, purpose,
                                           fields="masked" if visibility is Visibility.MASKED else "full",
                                           what="watchlist already so"))
            return access.view(current, visibility, actor)
        self._audit.record(self._event(
            actor, AuditAction.UPDATE, "person", person_id, purpose or ("watchlist" if watchlisted else "off the watchlist"),
            watchlisted=str(watchlisted).lower(), reason=reason,
        ))
        saved = self._persons.save(current.changed(watchlisted=watchlisted, updated_at=self._clock()), current)
        return access.view(saved, visibility, actor)

    # --- residency (for the gate) ----------------------------------------------------------------

    def residency(self, person_ids: Iterable[str]) -> dict[str, Residency]:
        """Community, activity and watchlist flag of each known person; unknown ids are left out.

        A system read made on every gate match: one strongly consistent BatchGetItem per 100 ids.
        Not audited per call, because the gate's own access event records the decision it served.
        """
        return {pid: Residency.of(p) for pid, p in self._persons.get_many(person_ids, consistent=True).items()}

    def on_residency_change(self, listener: ResidencyListener) -> None:
        """Call `listener` after each write that moves persons out of a community or makes them inactive.

        It gets the changes of one write at once: one person for update_person and change_person_status,
        the duplicate for merge_persons, every such row of a chunk for the person import. A listener that
        raises makes the call raise after the write is kept (later listeners are not called); callers retry,
        as writes are idempotent. A retry that finds the write already done changes nothing and calls no
        listener, so a listener that must not miss a change should also reconcile through `residency`.
        """
        self._residency_listeners.append(listener)

    def _residency_changed(self, writes: Iterable[tuple[Person, Person]]) -> None:
        """Tell the listeners about the (before, after) pairs that changed someone's residency."""
        changes = [c for before, after in writes if (c := ResidencyChange.between(before, after)) is not None]
        if not changes:
            return
        for listener in list(self._residency_listeners):
            listener(list(changes))

    # --- legal entities ----------------------------------------------------------------------

    def entities(self, viewer: Principal, entity_ids: Iterable[str]) -> dict[str, Entity]:
        """Business registration is public to anyone signed in; the legal representative as a person is not."""
        access.require_signed_in(viewer)
        return self._entities.get_many(entity_ids)

    def entity_by_code(self, viewer: Principal, code: str) -> Entity | None:
        access.require_signed_in(viewer)
        value = parse_credit_code(code).value
        entity_id = self._entities.ids_by_code([value]).get(value)
        return self._entities.get_many([entity_id]).get(entity_id) if entity_id else None

    def entities_by_name(self, viewer: Principal, prefix: str, *, limit: int, start: dict | None) -> Page[Entity]:
        access.require_signed_in(viewer)
        if not prefix.strip():
            raise ValidationFailed.on("namePrefix", "give at least the first character of the name")
        return self._entities.by_name_prefix(prefix.strip(), limit=limit, start=start)

    def entities_of_legal_rep(self, viewer: Principal, person_id: str, *, limit: int, start: dict | None) -> Page[Entity]:
        access.require_signed_in(viewer)
        return self._entities.by_legal_rep(person_id, limit=limit, start=start)

    def register_entity(self, actor: Principal, fields: Mapping[str, str], purpose: str) -> Entity:
        access.require_official(actor, "register legal entities")
        draft = drafts.entity_draft(fields, today=self.today())
        if self._entities.ids_by_code([draft.credit_code]):
            raise AlreadyExists("a legal entity with this credit code is already registered")
        outcome = self._import_entities(actor, [Row(0, fields)], purpose or "register legal entity")[0]
        if outcome.status is RowStatus.REJECTED:
            raise ValidationFailed("; ".join(outcome.reasons))
        return self._entities.get(outcome.record_id)

    def change_entity_status(
        self, actor: Principal, entity_id: str, status: EntityStatus, on: date | None, purpose: str
    ) -> Entity:
        access.require_official(actor, "change the status of legal entities")
        current = self._entities.get(entity_id)
        if current.status is EntityStatus.CANCELLED:
            raise InvalidState("a cancelled (注销) entity cannot change status")
        if current.status is status:
            return current
        when = on or self.today()
        if when > self.today():
            raise ValidationFailed.on("on", "must not be in the future")
        self._audit.record(self._event(actor, AuditAction.UPDATE, "entity", entity_id, purpose or f"status {status.value}"))
        changed = Entity(**{**current.__dict__, "status": status, "status_changed_on": when, "updated_at": self._clock()})
        return self._entities.save(changed, current)

    # --- credit ------------------------------------------------------------------------------

    def add_credit_record(self, actor: Principal, fields: Mapping[str, str], purpose: str) -> CreditRecord:
        access.require_official(actor, "record credit information")
        outcome = self._import_credit(actor, [Row(0, fields)], purpose or "record credit information")[0]
        if outcome.status is RowStatus.REJECTED:
            raise ValidationFailed("; ".join(outcome.reasons))
        if outcome.status is RowStatus.UNCHANGED:
            raise AlreadyExists("this decision is already recorded")
        draft = drafts.credit_draft(fields, today=self.today())
        subject_id = self._subject_ids([draft])[(draft.subject_type, draft.subject_key)]
        return next(r for r in self._credit.records(draft.subject_type, subject_id) if r.id == outcome.record_id)

    def credit_records(
        self, viewer: Principal, subject_type: SubjectType, subject_id: str, *, limit: int, start: dict | None, purpose: str
    ) -> Page[CreditRecord]:
        access.require_signed_in(viewer)
        page = self._credit.page(subject_type, subject_id, limit=limit, start=start)
        kept = [(r, k) for r, k in zip(page.items, page.item_keys, strict=True) if access.may_see_credit(viewer, r, purpose)]
        if kept and subject_type is SubjectType.PERSON:
            self._audit.record(self._event(viewer, AuditAction.READ, "person", subject_id, purpose, what="credit records"))
        return Page([r for r, _ in kept], page.next_key, [k for _, k in kept])

    def credit_profiles(
        self, viewer: Principal, subjects: Iterable[tuple[SubjectType, str]], purpose: str
    ) -> dict[tuple[SubjectType, str], CreditProfile]:
        """Profiles in one read; a profile some record has since aged out of is computed again."""
        access.require_signed_in(viewer)
        wanted = [
            s for s in dict.fromkeys(subjects)
            if s[0] is SubjectType.ENTITY or access.may_see_person_profile(viewer, s[1], purpose)
        ]
        stored = self._credit.profiles(wanted)
        today = self.today()
        stale = [s for s, (_, change) in stored.items() if change is not None and change <= today]
        profiles = {s: p for s, (p, _) in stored.items()}
        profiles.update(self._refresh_profiles(stale))
        for subject in wanted:
            profiles.setdefault(subject, credit.compute_profile(subject[0], subject[1], [], today))
        people = [i for t, i in wanted if t is SubjectType.PERSON]
        if people:
            self._audit.record_many(
                [self._event(viewer, AuditAction.READ, "person", i, purpose, what="credit profile") for i in people]
            )
        return {s: self._shown(viewer, p, purpose) for s, p in profiles.items()}

    def _shown(self, viewer: Principal, profile: CreditProfile, purpose: str) -> CreditProfile:
        """Unpublished factors (arrears, complaints) stay with those entitled to the records behind them."""
        if access.may_see_unpublished_credit(viewer, profile.subject_type, profile.subject_id, purpose):
            return profile
        return replace(profile, factors=tuple(f for f in profile.factors if f.public))

    def _refresh_profiles(self, subjects: Iterable[tuple[SubjectType, str]]) -> dict[tuple[SubjectType, str], CreditProfile]:
        today, fresh = self.today(), {}
        for subject_type, subject_id in dict.fromkeys(subjects):
            records = self._credit.records(subject_type, subject_id)
            profile = credit.compute_profile(subject_type, subject_id, records, today)
            self._credit.save_profile(profile, credit.next_change(records, today))
            fresh[(subject_type, subject_id)] = profile
        return fresh

    # --- bulk import ---------------------------------------------------------------------------

    def import_rows(self, actor: Principal, kind: ImportKind, rows: list[Row], purpose: str) -> list[RowOutcome]:
        """Validate every row and write the valid ones; each row is written whole or not at all.

        Idempotent: a row already registered exactly so is `unchanged` and writes nothing.
        """
        if kind is ImportKind.PERSON:
            access.require_person_writer(actor, None)
            return self._import_persons(actor, rows, purpose)
        access.require_official(actor, f"import {kind.value} records")
        if kind is ImportKind.ENTITY:
            return self._import_entities(actor, rows, purpose)
        return self._import_credit(actor, rows, purpose)

    def _import_persons(self, actor: Principal, rows: list[Row], purpose: str) -> list[RowOutcome]:
        today, now = self.today(), self._clock()
        outcomes: dict[int, RowOutcome] = {}
        valid: dict[str, tuple[Row, drafts.PersonDraft]] = {}
        first_line: dict[str, int] = {}
        for index, row in enumerate(rows):
            try:
                draft = drafts.person_draft(row.fields, today=today)
            except ValidationFailed as exc:
                outcomes[index] = RowOutcome(row.line, RowStatus.REJECTED, _reasons(exc))
                continue
            number = draft.id_number.value
            if number in first_line:
                outcomes[index] = RowOutcome(
                    row.line, RowStatus.REJECTED, (f"id_number: same person as line {first_line[number]}",)
                )
                continue
            first_line[number] = row.line
            valid[number] = (row, draft)
        index_of = {id(row): i for i, row in enumerate(rows)}
        existing_ids = self._persons.ids_by_id_number(valid)
        existing = self._persons.get_many(existing_ids.values())
        new: list[Person] = []
        changes: list[tuple[Person, Person]] = []
        for number, (row, draft) in valid.items():
            i = index_of[id(row)]
            current = existing.get(existing_ids.get(number, ""))
            if current is None:
                new.append(_new_person(draft, now))
                continue
            changed = _apply(current, draft, now)
            if changed == current:
                outcomes[i] = RowOutcome(row.line, RowStatus.UNCHANGED, record_id=current.id)
            else:
                changes.append((changed, current))
        events = [self._event(actor, AuditAction.CREATE, "person", p.id, purpose) for p in new]
        events += [self._event(actor, AuditAction.UPDATE, "person", c.id, purpose) for c, _ in changes]
        if events:
            self._audit.record_many(events)
        taken = {p.id for p in self._persons.add_many(new)}
        for person in new:
            row = valid[person.id_number][0]
            reasons = ("id_number: registered meanwhile by another import; upload the row again",)
            outcomes[index_of[id(row)]] = (
                RowOutcome(row.line, RowStatus.REJECTED, reasons) if person.id in taken
                else RowOutcome(row.line, RowStatus.ACCEPTED, record_id=person.id)
            )
        saved: list[tuple[Person, Person]] = []
        for changed, current in changes:
            row = valid[current.id_number][0]
            try:
                saved.append((current, self._persons.save(changed, current)))
                outcomes[index_of[id(row)]] = RowOutcome(row.line, RowStatus.ACCEPTED, record_id=current.id)
            except DomainError as exc:
                outcomes[index_of[id(row)]] = RowOutcome(row.line, RowStatus.REJECTED, (exc.message,))
        written = [p for p in new if p.id not in taken] + [after for _, after in saved]
        self._join_households(written)
        self._residency_changed(saved)  # once for the whole chunk
        return [outcomes[i] for i in range(len(rows))]

    def _join_households(self, persons: list[Person]) -> None:
        """Add written persons to their households (户号): new households in batches, others one by one."""
        members: dict[str, list[Person]] = defaultdict(list)
        for person in persons:
            if person.household_id:
                members[person.household_id].append(person)
        if not members:
            return
        found = self._households.get_many(members)
        created: list[Household] = []
        for household_no, people in members.items():
            household = found.get(household_no)
            updated = _with_members(household, household_no, people, self._clock())
            if household is None:
                created.append(updated)
            elif updated != household:
                self._households.save(updated, household.version)
        taken = self._households.add_many(created)
        if taken:  # created meanwhile by a concurrent import: join those as they now are
            self._join_households([p for h in taken for p in members[h.id]])

    def _import_entities(self, actor: Principal, rows: list[Row], purpose: str) -> list[RowOutcome]:
        today, now = self.today(), self._clock()
        outcomes: dict[int, RowOutcome] = {}
        valid: dict[str, tuple[int, Row, drafts.EntityDraft]] = {}
        for index, row in enumerate(rows):
            try:
                draft = drafts.entity_draft(row.fields, today=today)
            except ValidationFailed as exc:
                outcomes[index] = RowOutcome(row.line, RowStatus.REJECTED, _reasons(exc))
                continue
            if draft.credit_code in valid:
                outcomes[index] = RowOutcome(
                    row.line, RowStatus.REJECTED, (f"credit_code: same entity as line {valid[draft.credit_code][1].line}",)
                )
                continue
            valid[draft.credit_code] = (index, row, draft)
        reps = self._persons.ids_by_id_number(d.legal_rep_id_number for _, _, d in valid.values())
        rep_people = self._persons.get_many(reps.values())
        existing_ids = self._entities.ids_by_code(valid)
        existing = self._entities.get_many(existing_ids.values())
        new: list[Entity] = []
        changes: list[tuple[Entity, Entity]] = []
        for code, (index, row, draft) in valid.items():
            rep = rep_people.get(reps.get(draft.legal_rep_id_number, ""))
            if rep is None:
                outcomes[index] = RowOutcome(row.line, RowStatus.REJECTED, (
                    f"legal_rep_id_number: {access.mask_id_number(draft.legal_rep_id_number)} is not in the population registry",
                ))
                continue
            if rep.status in (PersonStatus.DECEASED, PersonStatus.MERGED):
                outcomes[index] = RowOutcome(row.line, RowStatus.REJECTED, (
                    f"legal_rep_id_number: the registered person is {rep.status.value}",))
                continue
            current = existing.get(existing_ids.get(code, ""))
            fresh = _entity_from(draft, rep, current, now)
            if current is None:
                new.append(fresh)
            elif fresh == current:
                outcomes[index] = RowOutcome(row.line, RowStatus.UNCHANGED, record_id=current.id)
            else:
                changes.append((fresh, current))
        events = [self._event(actor, AuditAction.CREATE, "entity", e.id, purpose) for e in new]
        events += [self._event(actor, AuditAction.UPDATE, "entity", c.id, purpose) for c, _ in changes]
        if events:
            self._audit.record_many(events)
        taken = {e.id for e in self._entities.add_many(new)}
        for entity in new:
            index, row, _ = valid[entity.credit_code]
            outcomes[index] = (
                RowOutcome(row.line, RowStatus.REJECTED, ("credit_code: registered meanwhile by another import",))
                if entity.id in taken else RowOutcome(row.line, RowStatus.ACCEPTED, record_id=entity.id)
            )
        for changed, current in changes:
            index, row, _ = valid[current.credit_code]
            try:
                self._entities.save(changed, current)
                outcomes[index] = RowOutcome(row.line, RowStatus.ACCEPTED, record_id=current.id)
            except DomainError as exc:
                outcomes[index] = RowOutcome(row.line, RowStatus.REJECTED, (exc.message,))
        return [outcomes[i] for i in range(len(rows))]

    def _subject_ids(self, items: list[drafts.CreditDraft]) -> dict[tuple[SubjectType, str], str]:
        people = self._persons.ids_by_id_number(d.subject_key for d in items if d.subject_type is SubjectType.PERSON)
        entities = self._entities.ids_by_code(d.subject_key for d in items if d.subject_type is SubjectType.ENTITY)
        return {
            **{(SubjectType.PERSON, k): v for k, v in people.items()},
            **{(SubjectType.ENTITY, k): v for k, v in entities.items()},
        }

    def _import_credit(self, actor: Principal, rows: list[Row], purpose: str) -> list[RowOutcome]:
        today, now = self.today(), self._clock()
        outcomes: dict[int, RowOutcome] = {}
        valid: dict[tuple[str, str], tuple[int, Row, drafts.CreditDraft]] = {}
        for index, row in enumerate(rows):
            try:
                draft = drafts.credit_draft(row.fields, today=today)
            except ValidationFailed as exc:
                outcomes[index] = RowOutcome(row.line, RowStatus.REJECTED, _reasons(exc))
                continue
            key = _decision(draft)
            if key in valid:
                outcomes[index] = RowOutcome(row.line, RowStatus.REJECTED, (f"same decision as line {valid[key][1].line}",))
                continue
            valid[key] = (index, row, draft)
        subject_ids = self._subject_ids([d for _, _, d in valid.values()])
        recorded = self._credit.recorded_decisions(valid)
        new: list[CreditRecord] = []
        for key, (index, row, draft) in valid.items():
            subject_id = subject_ids.get((draft.subject_type, draft.subject_key))
            if subject_id is None:
                registry = "population" if draft.subject_type is SubjectType.PERSON else "legal-entity"
                outcomes[index] = RowOutcome(row.line, RowStatus.REJECTED, (f"subject: not in the {registry} registry",))
            elif key in recorded:
                outcomes[index] = RowOutcome(row.line, RowStatus.UNCHANGED)
            else:
                new.append(CreditRecord(
                    id=new_id(), subject_type=draft.subject_type, subject_id=subject_id, category=draft.category,
                    department=key[0], decision_number=key[1], decided_on=draft.decided_on, created_at=now,
                    summary=draft.summary, valid_until=draft.valid_until, publicity_until=draft.publicity_until,
                ))
        if new:
            self._audit.record_many([self._event(actor, AuditAction.CREATE, r.subject_type.value, r.subject_id, purpose,
                                                 credit_record=r.id) for r in new])
        taken = {r.id for r in self._credit.add_many(new)}
        for record in new:
            index, row, _ = valid[(record.department, record.decision_number)]
            outcomes[index] = (
                RowOutcome(row.line, RowStatus.UNCHANGED) if record.id in taken
                else RowOutcome(row.line, RowStatus.ACCEPTED, record_id=record.id)
            )
        self._refresh_profiles((r.subject_type, r.subject_id) for r in new if r.id not in taken)
        return [outcomes[i] for i in range(len(rows))]

    # --- quality -------------------------------------------------------------------------------

    def quality(self, viewer: Principal, registry: ImportKind) -> QualityReport:
        """Completeness, invalid values and likely duplicates of one registry (a full scan: for officials)."""
        access.require_official(viewer, "see data-quality reports")
        today = self.today()
        if registry is ImportKind.PERSON:
            return _person_quality(list(self._persons.scan()), today)
        if registry is ImportKind.ENTITY:
            entities = list(self._entities.scan())
            reps = self._persons.get_many(e.legal_rep_id for e in entities)
            return _entity_quality(entities, reps)
        raise ValidationFailed.on("registry", "quality reports cover the person and entity registries")

    # --- helpers -----------------------------------------------------------------------------

    def _all(self, fetch: Callable[[dict | None], Page]) -> list:
        items, start = [], None
        while True:
            page = fetch(start)
            items += page.items
            if not page.next_key:
                return items
            start = page.next_key

    def _event(self, actor: Principal, action: AuditAction, subject_type: str, subject_id: str, purpose: str,
               **detail: str) -> AuditEvent:
        return AuditEvent.by(actor, action, subject_type, subject_id, (purpose or "").strip() or UNSTATED, **detail)


def _with_members(household: Household | None, household_no: str, people: list[Person], now) -> Household:
    listed = {m.person_id: m for m in (household.members if household else ())}
    for p in people:
        listed[p.id] = HouseholdMember(p.id, p.relationship or Relationship.OTHER)
    heads = [m.person_id for m in listed.values() if m.relationship is Relationship.HEAD]
    head = heads[0] if heads else (household.head_id if household else people[0].id)
    address = (household.address if household else None) or people[0].registered_address
    return Household(household_no, head, address, tuple(listed.values()),
                     household.created_at if household else now, household.version if household else 1)


def _decision(draft: drafts.CreditDraft) -> tuple[str, str]:
    """(department, decision number); without a number, a stable digest of what the row says."""
    if draft.decision_number:
        return draft.department, draft.decision_number
    digest = hashlib.sha256(
        f"{draft.subject_key}|{draft.category.value}|{draft.decided_on.isoformat()}|{draft.summary}".encode()
    ).hexdigest()[:20]
    return draft.department, f"auto:{digest}"


def _new_person(draft: drafts.PersonDraft, now) -> Person:
    n = draft.id_number
    return Person(
        id=new_id(), name=draft.name, id_number=n.value, sex=n.sex, birth_date=n.birth_date, status=draft.status,
        created_at=now, updated_at=now, phone=draft.phone, registered_address=draft.registered_address,
        current_address=draft.current_address, household_id=draft.household_no, relationship=draft.relationship,
    )


def _apply(current: Person, draft: drafts.PersonDraft, now) -> Person:
    """The current record with the draft's values; `updated_at` moves only if something changed."""
    n = draft.id_number
    changed = current.changed(
        name=draft.name, id_number=n.value, sex=n.sex, birth_date=n.birth_date, phone=draft.phone,
        registered_address=draft.registered_address, current_address=draft.current_address,
        household_id=draft.household_no or current.household_id, relationship=draft.relationship or current.relationship,
    )
    return current if changed == current else changed.changed(updated_at=now)


def _person_fields(p: Person) -> dict[str, str]:
    fields = {"name": p.name, "id_number": p.id_number, "phone": p.phone or "", "household_no": p.household_id or "",
              "relationship": p.relationship.value if p.relationship else ""}
    for prefix, address in (("registered", p.registered_address), ("current", p.current_address)):
        for name in drafts.ADDRESS_FIELDS:
            fields[f"{prefix}_{name}"] = getattr(address, name) if address else ""
    return fields


def _entity_from(draft: drafts.EntityDraft, rep: Person, current: Entity | None, now) -> Entity:
    fresh = Entity(
        id=current.id if current else new_id(), name=draft.name, credit_code=draft.credit_code,
        entity_type=draft.entity_type, legal_rep_id=rep.id, legal_rep_name=rep.name, status=draft.status,
        created_at=current.created_at if current else now, updated_at=current.updated_at if current else now,
        registered_capital=draft.registered_capital, industry_code=draft.industry_code, address=draft.address,
        established_on=draft.established_on,
        status_changed_on=current.status_changed_on if current else None,
        version=current.version if current else 1,
    )
    if current is not None and fresh != current:
        return Entity(**{**fresh.__dict__, "updated_at": now})
    return fresh


def _ratio(count: int, total: int) -> float:
    return round(count / total, 4) if total else 1.0


def _person_quality(persons: list[Person], today: date) -> QualityReport:
    live = [p for p in persons if p.status is not PersonStatus.MERGED]
    total = len(live)
    completeness = {
        "phone": _ratio(sum(1 for p in live if p.phone), total),
        "current_address": _ratio(sum(1 for p in live if p.current_address), total),
        "registered_address": _ratio(sum(1 for p in live if p.registered_address), total),
        "household": _ratio(sum(1 for p in live if p.household_id), total),
    }
    invalid = []
    for p in live:
        try:
            parse_id_number(p.id_number, today=today)
        except ValidationFailed as exc:
            invalid.append((p.id, "id_number", exc.message))
        if p.current_address and not p.current_address.community_id:
            invalid.append((p.id, "current_address", "has no community"))
    same = Counter((p.name, p.birth_date) for p in live)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for p in live:
        if same[(p.name, p.birth_date)] > 1:
            groups[(p.name, p.birth_date)].append(p.id)
    return QualityReport("person", total, completeness, invalid[:1000], list(groups.values())[:1000])


def _entity_quality(entities: list[Entity], reps: dict[str, Person]) -> QualityReport:
    total = len(entities)
    completeness = {
        "industry_code": _ratio(sum(1 for e in entities if e.industry_code), total),
        "registered_capital": _ratio(sum(1 for e in entities if e.registered_capital is not None), total),
        "address": _ratio(sum(1 for e in entities if e.address), total),
        "established_on": _ratio(sum(1 for e in entities if e.established_on), total),
    }
    invalid = []
    for e in entities:
        rep = reps.get(e.legal_rep_id)
        if rep is None:
            invalid.append((e.id, "legal_rep", "the legal representative is not in the population registry"))
        elif rep.status in (PersonStatus.DECEASED, PersonStatus.MERGED) and e.status is EntityStatus.ACTIVE:
            invalid.append((e.id, "legal_rep", f"the legal representative is {rep.status.value}"))
    names = Counter(e.name for e in entities)
    duplicates = [[e.id for e in entities if e.name == name] for name, n in names.items() if n > 1]
    return QualityReport("entity", total, completeness, invalid[:1000], duplicates[:1000])
