from enum import StrEnum

import strawberry
from strawberry import Info, relay

from sunflower.api.permissions import roles, signed_in
from sunflower.api.registries.types import (
    CompletenessType,
    EntityType,
    PersonType,
    QualityIssueType,
    QualityReportType,
)
from sunflower.api.relay import connection, page_request
from sunflower.auth.principals import Role
from sunflower.common.errors import ValidationFailed
from sunflower.registries.service import ImportKind


@strawberry.enum(name="Registry")
class RegistryEnum(StrEnum):
    PERSON = "person"
    ENTITY = "entity"


@strawberry.type
class RegistryQueries:
    @strawberry.field(extensions=signed_in(), description="The person with this id number, if you may see them.")
    def person_by_id_number(self, info: Info, id_number: str) -> PersonType | None:
        ctx = info.context
        view = ctx.services.registries.person_by_id_number(ctx.require_principal(), id_number, ctx.purpose)
        return PersonType.of(view) if view else None

    @strawberry.field(
        extensions=signed_in(),
        description="Persons by name prefix or by community (give one); only those you may see, masked as your role requires.",
    )
    def persons(
        self,
        info: Info,
        name_prefix: str | None = None,
        community_id: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[PersonType]:
        ctx = info.context
        if (name_prefix is None) == (community_id is None):
            raise ValidationFailed.on("namePrefix", "give either namePrefix or communityId")
        request = page_request(info, f"persons:{name_prefix}:{community_id}", first, after)
        viewer, registries = ctx.require_principal(), ctx.services.registries
        if name_prefix is not None:
            page = registries.persons_by_name(viewer, name_prefix, limit=request.limit, start=request.start, purpose=ctx.purpose)
        else:
            page = registries.persons_in_community(
                viewer, community_id, limit=request.limit, start=request.start, purpose=ctx.purpose
            )
        return connection(info, request, page, PersonType.of)

    @strawberry.field(extensions=signed_in(), description="The legal entity with this unified social credit code.")
    def entity_by_credit_code(self, info: Info, credit_code: str) -> EntityType | None:
        ctx = info.context
        entity = ctx.services.registries.entity_by_code(ctx.require_principal(), credit_code)
        return EntityType.of(entity) if entity else None

    @strawberry.field(extensions=signed_in(), description="Legal entities by name prefix.")
    def entities(
        self, info: Info, name_prefix: str, first: int | None = None, after: str | None = None
    ) -> relay.Connection[EntityType]:
        ctx = info.context
        request = page_request(info, f"entities:{name_prefix}", first, after)
        page = ctx.services.registries.entities_by_name(
            ctx.require_principal(), name_prefix, limit=request.limit, start=request.start
        )
        return connection(info, request, page, EntityType.of)

    @strawberry.field(extensions=roles(Role.OFFICIAL), description="Completeness, invalid values and likely duplicates.")
    def registry_quality(self, info: Info, registry: RegistryEnum) -> QualityReportType:
        ctx = info.context
        report = ctx.services.registries.quality(ctx.require_principal(), ImportKind(registry.value))
        return QualityReportType(
            registry=report.registry,
            total=report.total,
            completeness=[CompletenessType(field=k, ratio=v) for k, v in report.completeness.items()],
            invalid=[QualityIssueType(record_id=r, field=f, reason=why) for r, f, why in report.invalid],
            likely_duplicates=report.duplicates,
        )
