"""Gate access: enrollments with their consent, cards, PINs, visitor passes, access events, alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Method(StrEnum):
    FACE = "face"
    CARD = "card"
    PIN = "pin"
    VISITOR_PASS = "visitor_pass"


class Verdict(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


class GateReason(StrEnum):
    """Why a gate opened or not, beyond the face pipeline's own codes (`sunflower.gate.face.Reason`)."""

    MATCH = "MATCH"  # accepted: face, card, PIN or pass
    NO_MATCH = "NO_MATCH"
    AMBIGUOUS = "AMBIGUOUS"
    EMPTY_GALLERY = "EMPTY_GALLERY"
    NOT_RESIDENT = "NOT_RESIDENT"  # matched someone who has moved out, died or been deleted
    UNKNOWN_GATE = "UNKNOWN_GATE"
    NOT_A_GATE = "NOT_A_GATE"
    UNSIGNED = "UNSIGNED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    REPLAYED = "REPLAYED"
    BAD_REQUEST = "BAD_REQUEST"
    UNKNOWN_CARD = "UNKNOWN_CARD"
    WRONG_PIN = "WRONG_PIN"
    PIN_LOCKED = "PIN_LOCKED"
    UNKNOWN_PASS = "UNKNOWN_PASS"
    PASS_NOT_YET_VALID = "PASS_NOT_YET_VALID"
    PASS_EXPIRED = "PASS_EXPIRED"
    PASS_USED_UP = "PASS_USED_UP"
    PASS_REVOKED = "PASS_REVOKED"
    PASS_WRONG_COMMUNITY = "PASS_WRONG_COMMUNITY"


class ConsentMethod(StrEnum):
    """How the resident (or their guardian) consented: the record a regulator asks for."""

    WRITTEN = "written"  # signed paper form, its reference recorded
    APP = "app"  # in the resident's own app, signed in
    IN_PERSON = "in_person"  # at the property office, witnessed by the recording staff


@dataclass(frozen=True)
class Consent:
    given_by: str  # person id of whoever consented: the resident, or a guardian for a minor
    given_at: datetime
    method: ConsentMethod
    recorded_by: str  # audit name of the staff or app session that recorded it
    reference: str | None = None  # form number, app consent id


@dataclass(frozen=True)
class Enrollment:
    community_id: str
    person_id: str
    template_count: int
    consent: Consent
    enrolled_at: datetime
    enrolled_by: str


@dataclass(frozen=True)
class Credential:
    """A resident card or PIN: which resident of which community it opens the gate for."""

    community_id: str
    person_id: str
    method: Method
    issued_at: datetime
    card_number: str | None = None  # cards only: printed/RFID numbers are not secrets


@dataclass(frozen=True)
class VisitorPass:
    code: str
    community_id: str
    host_person_id: str
    visitor_name: str
    valid_from: datetime
    valid_until: datetime
    max_uses: int
    uses: int
    issued_by: str
    issued_at: datetime
    revoked_at: datetime | None = None

    @property
    def remaining_uses(self) -> int:
        return max(0, self.max_uses - self.uses)


@dataclass(frozen=True)
class AccessEvent:
    id: str
    gate_id: str
    community_id: str | None  # None when the gate is unknown
    at: datetime
    method: Method
    decision: Verdict
    reason: str  # GateReason or sunflower.gate.face.Reason
    person_id: str | None = None  # matched resident, or the host of a visitor pass
    score: float | None = None
    latency_ms: float | None = None
    liveness: float | None = None  # reported, not enforced (see sunflower/gate/face/README.md)
    pass_code: str | None = None


@dataclass(frozen=True)
class WatchlistAlert:
    """A watchlisted person passed (or tried) a gate: for the police and nobody else."""

    id: str
    event_id: str
    gate_id: str
    community_id: str
    person_id: str
    at: datetime
    decision: Verdict


@dataclass(frozen=True)
class CheckResult:
    """What the gate gets back: {decision, personId?, score, reason, method, latencyMs}."""

    event: AccessEvent

    def to_json(self) -> dict:
        e = self.event
        body = {
            "decision": e.decision.value,
            "score": round(e.score, 4) if e.score is not None else None,
            "reason": e.reason,
            "method": e.method.value,
            "latencyMs": round(e.latency_ms, 1) if e.latency_ms is not None else None,
            "eventId": e.id,
        }
        if e.person_id and e.decision is Verdict.ACCEPT:
            body["personId"] = e.person_id
        return body
