"""Gate access as the API shows it: enrollments (consent, never templates), credentials, passes, events."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from sunflower.common.errors import ValidationFailed
from sunflower.gate.models import (
    AccessEvent,
    ConsentMethod,
    Credential,
    Enrollment,
    Method,
    Verdict,
    VisitorPass,
    WatchlistAlert,
)

GateMethodEnum = strawberry.enum(Method, name="GateMethod", description="How someone asked the gate to open.")
GateDecisionEnum = strawberry.enum(Verdict, name="GateDecision")
ConsentMethodEnum = strawberry.enum(
    ConsentMethod, name="ConsentMethod", description="How the resident (or their guardian) consented to enrollment."
)


def person_gid(person_id: str | None) -> strawberry.ID | None:
    """Persons are Relay nodes of the registry: the API names them by their global id."""
    return strawberry.ID(relay.to_base64("Person", person_id)) if person_id else None


def gate_gid(gate_id: str) -> strawberry.ID:
    return strawberry.ID(relay.to_base64("Device", gate_id))


@strawberry.type(name="GateConsent", description="The consent that allows a resident's face templates to be kept.")
class ConsentType:
    given_by: strawberry.ID = strawberry.field(description="The person who consented: the resident or a guardian.")
    given_at: datetime
    method: ConsentMethodEnum
    reference: str | None = strawberry.field(description="The signed form's number, or the app consent id.")
    recorded_by: str = strawberry.field(description="The staff member or app session that recorded it.")


@strawberry.type(
    name="GateEnrollment",
    description="A resident enrolled for the face gates of a community: how many templates, and the consent. "
    "Templates themselves never leave the service.",
)
class EnrollmentType:
    person_id: strawberry.ID
    community_id: strawberry.ID
    template_count: int
    enrolled_at: datetime
    consent: ConsentType

    @classmethod
    def from_domain(cls, enrollment: Enrollment) -> "EnrollmentType":
        c = enrollment.consent
        return cls(
            person_id=person_gid(enrollment.person_id),
            community_id=strawberry.ID(enrollment.community_id),
            template_count=enrollment.template_count,
            enrolled_at=enrollment.enrolled_at,
            consent=ConsentType(
                given_by=person_gid(c.given_by),
                given_at=c.given_at,
                method=c.method,
                reference=c.reference,
                recorded_by=c.recorded_by,
            ),
        )


@strawberry.type(name="EnrollmentWithdrawn", description="The templates are deleted and the resident left the gallery.")
class EnrollmentWithdrawnType:
    person_id: strawberry.ID
    community_id: strawberry.ID
    removed: bool = strawberry.field(description="False if there was no enrollment to remove.")


@strawberry.type(name="GateCredential", description="A resident card or PIN. A PIN is never shown, only that it is set.")
class CredentialType:
    person_id: strawberry.ID
    community_id: strawberry.ID
    method: GateMethodEnum
    issued_at: datetime
    card_number: str | None = strawberry.field(description="Cards only: the printed number.")

    @classmethod
    def from_domain(cls, credential: Credential) -> "CredentialType":
        return cls(
            person_id=person_gid(credential.person_id),
            community_id=strawberry.ID(credential.community_id),
            method=credential.method,
            issued_at=credential.issued_at,
            card_number=credential.card_number,
        )


@strawberry.type(name="VisitorPass", description="A code a visitor types at the gate, for a time window and a number of uses.")
class VisitorPassType:
    code: str
    community_id: strawberry.ID
    host_person_id: strawberry.ID
    visitor_name: str
    valid_from: datetime
    valid_until: datetime
    max_uses: int
    uses: int
    remaining_uses: int
    issued_by: str
    issued_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_domain(cls, p: VisitorPass) -> "VisitorPassType":
        return cls(
            code=p.code,
            community_id=strawberry.ID(p.community_id),
            host_person_id=person_gid(p.host_person_id),
            visitor_name=p.visitor_name,
            valid_from=p.valid_from,
            valid_until=p.valid_until,
            max_uses=p.max_uses,
            uses=p.uses,
            remaining_uses=p.remaining_uses,
            issued_by=p.issued_by,
            issued_at=p.issued_at,
            revoked_at=p.revoked_at,
        )


@strawberry.type(name="AccessEvent", description="One attempt at a gate and what the gate decided.")
class AccessEventType:
    id: strawberry.ID = strawberry.field(description="The event id the gate got back with its decision.")
    gate_id: strawberry.ID
    community_id: strawberry.ID | None = strawberry.field(description="Null when the gate is unknown.")
    at: datetime
    method: GateMethodEnum
    decision: GateDecisionEnum
    reason: str = strawberry.field(description="MATCH when accepted; otherwise why not, e.g. NO_MATCH, PASS_USED_UP.")
    person_id: strawberry.ID | None = strawberry.field(
        description="The matched resident, or the host of a visitor pass."
    )
    score: float | None = strawberry.field(description="Face similarity of the best match.")
    latency_ms: float | None
    liveness: float | None = strawberry.field(description="Reported, not enforced.")

    @classmethod
    def from_domain(cls, e: AccessEvent) -> "AccessEventType":
        return cls(
            id=strawberry.ID(e.id),
            gate_id=gate_gid(e.gate_id),
            community_id=strawberry.ID(e.community_id) if e.community_id else None,
            at=e.at,
            method=e.method,
            decision=e.decision,
            reason=e.reason,
            person_id=person_gid(e.person_id),
            score=e.score,
            latency_ms=e.latency_ms,
            liveness=e.liveness,
        )


@strawberry.type(name="WatchlistAlert", description="A watchlisted person passed or tried a gate. For the police only.")
class WatchlistAlertType:
    id: strawberry.ID
    event_id: strawberry.ID = strawberry.field(description="The access event that raised it.")
    gate_id: strawberry.ID
    community_id: strawberry.ID
    person_id: strawberry.ID
    at: datetime
    decision: GateDecisionEnum

    @classmethod
    def from_domain(cls, a: WatchlistAlert) -> "WatchlistAlertType":
        return cls(
            id=strawberry.ID(a.id),
            event_id=strawberry.ID(a.event_id),
            gate_id=gate_gid(a.gate_id),
            community_id=strawberry.ID(a.community_id),
            person_id=person_gid(a.person_id),
            at=a.at,
            decision=a.decision,
        )


GateFeedItem = Annotated[
    AccessEventType | WatchlistAlertType,
    strawberry.union("GateFeedItem", description="What a live gate feed delivers; alerts reach the police only."),
]


def node_id(global_id: relay.GlobalID, type_name: str, field: str) -> str:
    """The domain id inside a global id, refused (naming the input field) if it is another type's."""
    if global_id.type_name != type_name:
        raise ValidationFailed.on(field, f"is not a {type_name} id")
    return global_id.node_id
