import base64
import binascii
from datetime import datetime
from typing import Annotated

import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry import Info, relay

from sunflower.api.errors import (
    InvalidStateErrorType,
    NotFoundErrorType,
    PermissionDeniedErrorType,
    ValidationErrorType,
    mutate,
)
from sunflower.api.gate.types import (
    ConsentMethodEnum,
    CredentialType,
    EnrollmentType,
    EnrollmentWithdrawnType,
    VisitorPassType,
    node_id,
    person_gid,
)
from sunflower.api.permissions import roles
from sunflower.auth.principals import Role
from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.gate.service import ConsentInput as DomainConsent

_Errors = ValidationErrorType | NotFoundErrorType | PermissionDeniedErrorType | InvalidStateErrorType
EnrollResidentPayload = Annotated[EnrollmentType | _Errors, strawberry.union("EnrollResidentPayload")]
WithdrawEnrollmentPayload = Annotated[EnrollmentWithdrawnType | _Errors, strawberry.union("WithdrawEnrollmentPayload")]
GateCredentialPayload = Annotated[CredentialType | _Errors, strawberry.union("GateCredentialPayload")]
VisitorPassPayload = Annotated[VisitorPassType | _Errors, strawberry.union("VisitorPassPayload")]

ESTATE = (Role.PROPERTY_MANAGER, Role.ADMIN)
# Residents act for themselves (their own withdrawal, PIN and visitors); the service checks whose.
ESTATE_OR_RESIDENT = (*ESTATE, Role.RESIDENT)


@strawberry.input(name="GateConsentInput")
class ConsentInput:
    given_by: relay.GlobalID = strawberry.field(description="The person who consented: the resident, or a guardian.")
    given_at: datetime = strawberry.field(description="When, with a time zone; at most 90 days ago.")
    method: ConsentMethodEnum
    reference: str | None = strawberry.field(
        default=None, description="The signed form's number (required for WRITTEN), or the app consent id."
    )


@strawberry.input(name="EnrollResidentInput")
class EnrollResidentInput:
    community_id: strawberry.ID
    person_id: relay.GlobalID
    photos: list[str] = strawberry.field(
        description="1 to 5 photos of the resident's face, each a base64-encoded JPEG or PNG (a data: URL is fine). "
        "They are turned into templates and never stored."
    )
    consent: ConsentInput


@strawberry.input(name="WithdrawEnrollmentInput")
class WithdrawEnrollmentInput:
    community_id: strawberry.ID
    person_id: relay.GlobalID | None = strawberry.field(default=None, description="Yourself when left out.")


@strawberry.input(name="IssueGateCardInput")
class IssueGateCardInput:
    community_id: strawberry.ID
    person_id: relay.GlobalID
    card_number: str = strawberry.field(description="4 to 32 letters, digits or dashes, as printed on the card.")


@strawberry.input(name="SetGatePinInput")
class SetGatePinInput:
    community_id: strawberry.ID
    pin: str = strawberry.field(description="6 digits, not all the same and not a run like 123456.")
    person_id: relay.GlobalID | None = strawberry.field(default=None, description="Yourself when left out.")


@strawberry.input(name="IssueVisitorPassInput")
class IssueVisitorPassInput:
    community_id: strawberry.ID
    visitor_name: str
    valid_from: datetime
    valid_until: datetime = strawberry.field(description="At most 31 days after validFrom.")
    max_uses: int = strawberry.field(default=1, description="1 to 100 entries.")
    host_person_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The resident the visitor comes to see; yourself when left out."
    )


@strawberry.input(name="RevokeVisitorPassInput")
class RevokeVisitorPassInput:
    code: str


def decode_photos(encoded: list[str]) -> list[bytes]:
    """Base64 photos as bytes; every undecodable one is named (photos[i]) in one error."""
    photos: list[bytes] = []
    problems: list[FieldProblem] = []
    for i, text in enumerate(encoded):
        data = text.strip()
        if data.startswith("data:"):
            header, _, data = data.partition(",")
            if not header.endswith(";base64"):
                problems.append(FieldProblem(f"photos[{i}]", "a data: URL must be base64 (data:image/jpeg;base64,...)"))
                continue
        try:
            photo = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            problems.append(FieldProblem(f"photos[{i}]", "is not valid base64; send the JPEG or PNG file base64-encoded"))
            continue
        if not photo:
            problems.append(FieldProblem(f"photos[{i}]", "is empty"))
            continue
        photos.append(photo)
    if problems:
        raise ValidationFailed("a photo could not be read; nothing was enrolled", problems=tuple(problems))
    return photos


def _self_or(info: Info, person_id: relay.GlobalID | None, field: str) -> str:
    return node_id(person_id, "Person", field) if person_id else info.context.require_principal().id


@strawberry.type
class GateMutations:
    @strawberry.mutation(
        extensions=roles(*ESTATE),
        description="Enroll (or re-enroll) a resident for the face gates from 1 to 5 photos, with their consent. "
        "Only templates are kept; the photos are discarded.",
    )
    async def enroll_resident(self, info: Info, input: EnrollResidentInput) -> EnrollResidentPayload:
        ctx = info.context

        def enroll():
            consent = input.consent
            return ctx.services.gate.enroll(
                ctx.require_principal(),
                community_id=str(input.community_id),
                person_id=node_id(input.person_id, "Person", "personId"),
                photos=decode_photos(input.photos),
                consent=DomainConsent(
                    given_by=node_id(consent.given_by, "Person", "consent.givenBy"),
                    given_at=consent.given_at,
                    method=consent.method,
                    reference=consent.reference,
                ),
                purpose=ctx.purpose,
            )

        # The face pipeline takes up to a second: off the event loop, so live feeds keep flowing.
        return await run_in_threadpool(mutate, enroll, EnrollmentType.from_domain)

    @strawberry.mutation(
        extensions=roles(*ESTATE_OR_RESIDENT),
        description="Consent withdrawn: delete the resident's templates and take them out of the gallery.",
    )
    def withdraw_enrollment(self, info: Info, input: WithdrawEnrollmentInput) -> WithdrawEnrollmentPayload:
        ctx = info.context

        def withdraw():
            person_id = _self_or(info, input.person_id, "personId")
            removed = ctx.services.gate.withdraw(
                ctx.require_principal(), community_id=str(input.community_id), person_id=person_id, purpose=ctx.purpose
            )
            return EnrollmentWithdrawnType(
                person_id=person_gid(person_id), community_id=input.community_id, removed=removed
            )

        return mutate(withdraw, lambda withdrawn: withdrawn)

    @strawberry.mutation(extensions=roles(*ESTATE), description="Issue a resident card for a community's gates.")
    def issue_gate_card(self, info: Info, input: IssueGateCardInput) -> GateCredentialPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.gate.issue_card(
                ctx.require_principal(),
                community_id=str(input.community_id),
                person_id=node_id(input.person_id, "Person", "personId"),
                card_number=input.card_number,
                purpose=ctx.purpose,
            ),
            CredentialType.from_domain,
        )

    @strawberry.mutation(
        extensions=roles(*ESTATE_OR_RESIDENT),
        description="Set a resident's gate PIN (it replaces the old one). The PIN is never shown again.",
    )
    def set_gate_pin(self, info: Info, input: SetGatePinInput) -> GateCredentialPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.gate.set_pin(
                ctx.require_principal(),
                community_id=str(input.community_id),
                person_id=_self_or(info, input.person_id, "personId"),
                pin=input.pin,
                purpose=ctx.purpose,
            ),
            CredentialType.from_domain,
        )

    @strawberry.mutation(
        extensions=roles(*ESTATE_OR_RESIDENT),
        description="A visitor pass: residents for their own visitors, property managers for their community. "
        "The payload carries the code to give the visitor.",
    )
    def issue_visitor_pass(self, info: Info, input: IssueVisitorPassInput) -> VisitorPassPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.gate.issue_pass(
                ctx.require_principal(),
                community_id=str(input.community_id),
                host_person_id=node_id(input.host_person_id, "Person", "hostPersonId") if input.host_person_id else None,
                visitor_name=input.visitor_name,
                valid_from=input.valid_from,
                valid_until=input.valid_until,
                max_uses=input.max_uses,
            ),
            VisitorPassType.from_domain,
        )

    @strawberry.mutation(
        extensions=roles(*ESTATE_OR_RESIDENT), description="Revoke a visitor pass: its host or the property office."
    )
    def revoke_visitor_pass(self, info: Info, input: RevokeVisitorPassInput) -> VisitorPassPayload:
        ctx = info.context
        return mutate(
            lambda: ctx.services.gate.revoke_pass(ctx.require_principal(), input.code.strip().upper()),
            VisitorPassType.from_domain,
        )
