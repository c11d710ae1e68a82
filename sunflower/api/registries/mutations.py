from datetime import date
from typing import Annotated

import strawberry
from strawberry import Info, relay

from sunflower.api.errors import (
    AlreadyExistsErrorType,
    InvalidStateErrorType,
    NotFoundErrorType,
    PermissionDeniedErrorType,
    ValidationErrorType,
    mutate,
)
from sunflower.api.permissions import roles
from sunflower.api.registries.types import (
    CreditCategoryEnum,
    CreditRecordType,
    EntityStatusEnum,
    EntityType,
    PersonStatusEnum,
    PersonType,
    RelationshipEnum,
    SexEnum,
)
from sunflower.auth.principals import Role
from sunflower.common.errors import NotFound
from sunflower.registries.drafts import ADDRESS_FIELDS

_Errors = ValidationErrorType | NotFoundErrorType | PermissionDeniedErrorType | InvalidStateErrorType | AlreadyExistsErrorType
PersonPayload = Annotated[PersonType | _Errors, strawberry.union("PersonPayload")]
EntityPayload = Annotated[EntityType | _Errors, strawberry.union("EntityPayload")]
CreditRecordPayload = Annotated[CreditRecordType | _Errors, strawberry.union("CreditRecordPayload")]
WRITERS = (Role.OFFICIAL, Role.COMMUNITY_STAFF)


@strawberry.input(name="AddressInput")
class AddressInput:
    district: str = ""
    subdistrict: str = ""
    community_id: str = ""
    community: str = ""
    building: str = ""
    unit: str = ""
    room: str = ""
    detail: str = ""


@strawberry.input(name="PersonInput", description="Sex and birth date, when given, must agree with the id number.")
class PersonInput:
    name: str | None = None
    id_number: str | None = None
    sex: SexEnum | None = None
    birth_date: date | None = None
    phone: str | None = None
    registered_address: AddressInput | None = None
    current_address: AddressInput | None = None
    household_no: str | None = None
    relationship_to_head: RelationshipEnum | None = None


@strawberry.input(name="EntityInput")
class EntityInput:
    name: str
    credit_code: str
    legal_rep_id_number: str
    entity_type: str = ""
    registered_capital: str | None = strawberry.field(default=None, description="In 10,000 yuan (万元).")
    industry_code: str | None = None
    address: AddressInput | None = None
    established_on: date | None = None


@strawberry.input(name="CreditRecordInput")
class CreditRecordInput:
    subject: str = strawberry.field(description="The subject's id number or unified social credit code.")
    category: CreditCategoryEnum
    decided_on: date
    department: str
    decision_number: str
    summary: str = ""
    valid_until: date | None = None
    publicity_until: date | None = None


@strawberry.input(name="SetWatchlistInput")
class SetWatchlistInput:
    person_id: relay.GlobalID
    watchlisted: bool
    reason: str = strawberry.field(description="Why, e.g. the case number (1 to 200 characters); kept in the audit log.")


def _fields(value: object, *, address_prefixes: dict[str, str] | None = None) -> dict[str, str]:
    """An input as the canonical text fields the registry validates (drafts.py): one path for every rule."""
    fields: dict[str, str] = {}
    renames = {"relationship_to_head": "relationship"}
    for name, raw in vars(value).items():
        if raw is None:
            continue
        if isinstance(raw, AddressInput):
            prefix = (address_prefixes or {}).get(name, name)
            fields.update({f"{prefix}_{part}": getattr(raw, part) for part in ADDRESS_FIELDS})
        else:
            fields[renames.get(name, name)] = raw.isoformat() if isinstance(raw, date) else str(getattr(raw, "value", raw))
    return fields


_PERSON_ADDRESSES = {"registered_address": "registered", "current_address": "current"}


def _id(global_id: relay.GlobalID, type_name: str) -> str:
    if global_id.type_name != type_name:
        raise NotFound(f"{global_id} is not a {type_name} id")
    return global_id.node_id


@strawberry.type
class RegistryMutations:
    @strawberry.mutation(extensions=roles(*WRITERS), description="Register a person in the population registry.")
    def register_person(self, info: Info, input: PersonInput) -> PersonPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.registries.register_person(
                ctx.require_principal(), _fields(input, address_prefixes=_PERSON_ADDRESSES), ctx.purpose
            ),
            PersonType.of,
        )

    @strawberry.mutation(extensions=roles(*WRITERS), description="Change the given fields; the others keep their value.")
    def update_person(self, info: Info, id: relay.GlobalID, input: PersonInput) -> PersonPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.registries.update_person(
                ctx.require_principal(), _id(id, "Person"), _fields(input, address_prefixes=_PERSON_ADDRESSES), ctx.purpose
            ),
            PersonType.of,
        )

    @strawberry.mutation(extensions=roles(*WRITERS), description="Record a move out or a death, with the reason.")
    def change_person_status(self, info: Info, id: relay.GlobalID, status: PersonStatusEnum, reason: str) -> PersonPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.registries.change_person_status(
                ctx.require_principal(), _id(id, "Person"), status, reason, ctx.purpose
            ),
            PersonType.of,
        )

    @strawberry.mutation(
        extensions=roles(Role.OFFICIAL),
        description="Fold a duplicate record into the one to keep; its entities and credit records move over.",
    )
    def merge_persons(self, info: Info, keep_id: relay.GlobalID, duplicate_id: relay.GlobalID) -> PersonPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.registries.merge_persons(
                ctx.require_principal(), _id(keep_id, "Person"), _id(duplicate_id, "Person"), ctx.purpose
            ),
            PersonType.of,
        )

    @strawberry.mutation(
        extensions=roles(Role.POLICE), description="Put a person on the police watchlist or take them off it."
    )
    def set_watchlist(self, info: Info, input: SetWatchlistInput) -> PersonPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.registries.set_watchlist(
                ctx.require_principal(), _id(input.person_id, "Person"), input.watchlisted, input.reason, ctx.purpose
            ),
            PersonType.of,
        )

    @strawberry.mutation(extensions=roles(Role.OFFICIAL), description="Register a legal entity.")
    def register_entity(self, info: Info, input: EntityInput) -> EntityPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.registries.register_entity(ctx.require_principal(), _fields(input), ctx.purpose),
            EntityType.of,
        )

    @strawberry.mutation(extensions=roles(Role.OFFICIAL), description="Revoke (吊销), cancel (注销) or reactivate.")
    def change_entity_status(
        self, info: Info, id: relay.GlobalID, status: EntityStatusEnum, on: date | None = None
    ) -> EntityPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.registries.change_entity_status(
                ctx.require_principal(), _id(id, "Entity"), status, on, ctx.purpose
            ),
            EntityType.of,
        )

    @strawberry.mutation(extensions=roles(Role.OFFICIAL), description="Record a credit decision about a person or entity.")
    def add_credit_record(self, info: Info, input: CreditRecordInput) -> CreditRecordPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.registries.add_credit_record(ctx.require_principal(), _fields(input), ctx.purpose),
            CreditRecordType.of,
        )
