"""Audit entries form a hash chain: each carries the hash of the one before it."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sunflower.common.clock import to_iso

if TYPE_CHECKING:
    from sunflower.auth.principals import Principal

GENESIS = "0" * 64


class AuditAction(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"


@dataclass(frozen=True)
class AuditEvent:
    """What a service asks to be recorded: who did what to which record, and why."""

    actor: str  # "person:u1", "device:01H..", "system:sunflower"
    actor_roles: tuple[str, ...]
    action: AuditAction
    subject_type: str  # "person", "enterprise", "device", "face_template", ...
    subject_id: str
    purpose: str
    detail: dict[str, str] = field(default_factory=dict)  # never personal data itself

    @classmethod
    def by(
        cls, principal: "Principal", action: AuditAction, subject_type: str, subject_id: str, purpose: str,
        **detail: str,
    ) -> "AuditEvent":
        """What `principal` did, naming them and their roles as the log records every actor."""
        return cls(
            actor=principal.audit_name,
            actor_roles=tuple(sorted(r.value for r in principal.roles)),
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            purpose=purpose,
            detail=detail,
        )


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    event: AuditEvent
    prev_hash: str
    hash: str

    def canonical(self) -> dict:
        """The fields the hash covers, in the form sealed batches store."""
        e = self.event
        return {
            "seq": self.seq,
            "at": to_iso(self.at),
            "actor": e.actor,
            "actor_roles": list(e.actor_roles),
            "action": e.action.value,
            "subject_type": e.subject_type,
            "subject_id": e.subject_id,
            "purpose": e.purpose,
            "detail": dict(sorted(e.detail.items())),
            "prev_hash": self.prev_hash,
        }

    def recomputed_hash(self) -> str:
        return entry_hash(self.canonical())


def entry_hash(canonical: dict) -> str:
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def chain(seq: int, at: datetime, event: AuditEvent, prev_hash: str) -> AuditEntry:
    unsigned = AuditEntry(seq, at, event, prev_hash, "")
    return AuditEntry(seq, at, event, prev_hash, unsigned.recomputed_hash())


@dataclass(frozen=True)
class DamagedEntry:
    """An item of the chain that no longer even parses as an entry."""

    seq: int
    hash: str
    reason: str


@dataclass(frozen=True)
class Seal:
    """A sealed batch: entries first..last written to S3, with the object's digest."""

    first_seq: int
    last_seq: int
    last_hash: str
    object_key: str
    object_sha256: str
    sealed_at: datetime


class ProblemKind(StrEnum):
    EDITED = "edited"
    MISSING = "missing"
    BROKEN_LINK = "broken_link"
    SEAL_MISMATCH = "seal_mismatch"
    HEAD_MISMATCH = "head_mismatch"


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: ProblemKind
    message: str


@dataclass(frozen=True)
class Verification:
    entries_checked: int
    seals_checked: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems
