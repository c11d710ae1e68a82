from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry import Info, relay

from sunflower.api.relay import connection, page_request
from sunflower.registries.models import (
    Address,
    CreditCategory,
    CreditProfile,
    CreditRecord,
    Entity,
    EntityStatus,
    Household,
    PersonStatus,
    PersonView,
    Relationship,
    Sex,
    StatusChange,
    SubjectType,
)

SexEnum = strawberry.enum(Sex, name="Sex")
PersonStatusEnum = strawberry.enum(PersonStatus, name="PersonStatus")
RelationshipEnum = strawberry.enum(Relationship, name="Relationship")
EntityStatusEnum = strawberry.enum(EntityStatus, name="EntityStatus")
CreditCategoryEnum = strawberry.enum(CreditCategory, name="CreditCategory")
SubjectTypeEnum = strawberry.enum(SubjectType, name="CreditSubjectType")


@strawberry.type(name="Address")
class AddressType:
    district: str
    subdistrict: str
    community_id: str
    community: str
    building: str
    unit: str
    room: str
    detail: str
    line: str = strawberry.field(description="The whole address as one line of text.")

    @classmethod
    def of(cls, address: Address | None) -> "AddressType | None":
        if address is None:
            return None
        return cls(**address.__dict__, line=address.line())


@strawberry.type(name="StatusChange")
class StatusChangeType:
    status: PersonStatusEnum
    at: datetime
    by: str
    reason: str

    @classmethod
    def of(cls, change: StatusChange) -> "StatusChangeType":
        return cls(status=change.status, at=change.at, by=change.by, reason=change.reason)


@strawberry.type(name="CreditFactor")
class CreditFactorType:
    description: str
    points: int


@strawberry.type(name="CreditProfile", description="A grade and the factors that produced it.")
class CreditProfileType:
    grade: str
    score: int
    factors: list[CreditFactorType]
    red_list: bool
    black_list: bool
    computed_on: date

    @classmethod
    def of(cls, profile: CreditProfile | None) -> "CreditProfileType | None":
        if profile is None:
            return None
        return cls(
            grade=profile.grade,
            score=profile.score,
            factors=[CreditFactorType(description=f.description, points=f.points) for f in profile.factors],
            red_list=profile.red_list,
            black_list=profile.black_list,
            computed_on=profile.computed_on,
        )


@strawberry.type(name="CreditRecord")
class CreditRecordType:
    id: strawberry.ID
    subject_type: SubjectTypeEnum
    category: CreditCategoryEnum
    public: bool
    department: str
    decision_number: str
    decided_on: date
    summary: str
    valid_until: date | None
    publicity_until: date | None

    @classmethod
    def of(cls, record: CreditRecord) -> "CreditRecordType":
        return cls(
            id=strawberry.ID(record.id),
            subject_type=record.subject_type,
            category=record.category,
            public=record.public,
            department=record.department,
            decision_number=record.decision_number,
            decided_on=record.decided_on,
            summary=record.summary,
            valid_until=record.valid_until,
            publicity_until=record.publicity_until,
        )


def _credit_records(info: Info, subject_type: SubjectType, subject_id: str, first: int | None, after: str | None):
    ctx = info.context
    request = page_request(info, f"credit:{subject_type.value}:{subject_id}", first, after)
    page = ctx.services.registries.credit_records(
        ctx.require_principal(), subject_type, subject_id, limit=request.limit, start=request.start, purpose=ctx.purpose
    )
    return connection(info, request, page, CreditRecordType.of)


async def _profile(info: Info, subject_type: SubjectType, subject_id: str) -> CreditProfileType | None:
    return CreditProfileType.of(await info.context.loaders.credit_profile.load((subject_type, subject_id)))


@strawberry.type(
    name="Person",
    description="A person of the population registry, as the viewer may see them: `masked` says whether "
    "the id number, phone and birth date are masked and the registered address withheld.",
)
class PersonType(relay.Node):
    id: relay.NodeID[str]
    name: str
    id_number: str
    masked: bool
    sex: SexEnum
    birth_date: date | None
    phone: str | None
    registered_address: AddressType | None
    current_address: AddressType | None
    status: PersonStatusEnum
    status_history: list[StatusChangeType]
    relationship_to_head: RelationshipEnum | None
    merged_into_id: str | None
    watchlisted: bool | None = strawberry.field(
        description="Whether this person is on the police watchlist: shown to the police, null for everyone else."
    )
    updated_at: datetime
    household_id: strawberry.Private[str | None]

    @classmethod
    def of(cls, view: PersonView) -> "PersonType":
        p = view.person
        return cls(
            id=p.id,
            name=p.name,
            id_number=view.id_number,
            masked=view.masked,
            sex=p.sex,
            birth_date=None if view.masked else p.birth_date,
            phone=view.phone,
            registered_address=AddressType.of(view.registered_address),
            current_address=AddressType.of(p.current_address),
            status=p.status,
            status_history=[StatusChangeType.of(h) for h in p.history],
            relationship_to_head=p.relationship,
            merged_into_id=p.merged_into,
            watchlisted=view.watchlisted,
            updated_at=p.updated_at,
            household_id=p.household_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        views = await info.context.loaders.person_by_id.load_many(list(node_ids))
        return [cls.of(v) if v else None for v in views]

    @strawberry.field
    async def household(self, info: Info) -> Annotated["HouseholdType", strawberry.lazy("sunflower.api.registries.types")] | None:
        if not self.household_id:
            return None
        household = await info.context.loaders.household_by_id.load(self.household_id)
        return HouseholdType.of(household) if household else None

    @strawberry.field(description="Legal entities this person represents.")
    def legal_representative_of(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[Annotated["EntityType", strawberry.lazy("sunflower.api.registries.types")]]:
        ctx = info.context
        request = page_request(info, f"legalRepOf:{self.id}", first, after)
        page = ctx.services.registries.entities_of_legal_rep(
            ctx.require_principal(), self.id, limit=request.limit, start=request.start
        )
        return connection(info, request, page, EntityType.of)

    @strawberry.field(description="Credit records the viewer may see, newest first.")
    def credit_records(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[CreditRecordType]:
        return _credit_records(info, SubjectType.PERSON, self.id, first, after)

    @strawberry.field(description="Null unless the viewer may see this person's credit grade.")
    async def credit_profile(self, info: Info) -> CreditProfileType | None:
        return await _profile(info, SubjectType.PERSON, self.id)


@strawberry.type(name="HouseholdMember")
class HouseholdMemberType:
    relationship: RelationshipEnum
    person_id: strawberry.Private[str]

    @strawberry.field(description="Null when the viewer may not see this member.")
    async def person(self, info: Info) -> PersonType | None:
        view = await info.context.loaders.person_by_id.load(self.person_id)
        return PersonType.of(view) if view else None


@strawberry.type(name="Household", description="A household (户) with its members and their relationship to the head.")
class HouseholdType(relay.Node):
    id: relay.NodeID[str]
    address: AddressType | None
    members: list[HouseholdMemberType]
    head_id: strawberry.Private[str]

    @classmethod
    def of(cls, household: Household) -> "HouseholdType":
        return cls(
            id=household.id,
            address=AddressType.of(household.address),
            members=[HouseholdMemberType(relationship=m.relationship, person_id=m.person_id) for m in household.members],
            head_id=household.head_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        found = await info.context.loaders.household_by_id.load_many(list(node_ids))
        return [cls.of(h) if h else None for h in found]

    @strawberry.field
    async def head(self, info: Info) -> PersonType | None:
        view = await info.context.loaders.person_by_id.load(self.head_id)
        return PersonType.of(view) if view else None


@strawberry.type(name="Entity", description="A legal entity of the legal-entity registry (法人库).")
class EntityType(relay.Node):
    id: relay.NodeID[str]
    name: str
    credit_code: str
    entity_type: str
    legal_representative_name: str
    registered_capital: Decimal | None = strawberry.field(description="In 10,000 yuan (万元).")
    industry_code: str | None
    address: AddressType | None
    status: EntityStatusEnum
    established_on: date | None
    status_changed_on: date | None
    updated_at: datetime
    legal_rep_id: strawberry.Private[str]

    @classmethod
    def of(cls, entity: Entity) -> "EntityType":
        return cls(
            id=entity.id,
            name=entity.name,
            credit_code=entity.credit_code,
            entity_type=entity.entity_type,
            legal_representative_name=entity.legal_rep_name,
            registered_capital=entity.registered_capital,
            industry_code=entity.industry_code,
            address=AddressType.of(entity.address),
            status=entity.status,
            established_on=entity.established_on,
            status_changed_on=entity.status_changed_on,
            updated_at=entity.updated_at,
            legal_rep_id=entity.legal_rep_id,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        found = await info.context.loaders.entity_by_id.load_many(list(node_ids))
        return [cls.of(e) if e else None for e in found]

    @strawberry.field(description="The representative as a person of the registry; null unless the viewer may see them.")
    async def legal_representative(self, info: Info) -> PersonType | None:
        view = await info.context.loaders.person_by_id.load(self.legal_rep_id)
        return PersonType.of(view) if view else None

    @strawberry.field
    async def credit_profile(self, info: Info) -> CreditProfileType | None:
        return await _profile(info, SubjectType.ENTITY, self.id)

    @strawberry.field(description="Credit records the viewer may see, newest first.")
    def credit_records(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[CreditRecordType]:
        return _credit_records(info, SubjectType.ENTITY, self.id, first, after)


@strawberry.type(name="QualityIssue")
class QualityIssueType:
    record_id: str
    field: str
    reason: str


@strawberry.type(name="CompletenessRatio")
class CompletenessType:
    field: str
    ratio: float


@strawberry.type(name="RegistryQualityReport")
class QualityReportType:
    registry: str
    total: int
    completeness: list[CompletenessType]
    invalid: list[QualityIssueType]
    likely_duplicates: list[list[str]]
