from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Info, relay
from strawberry.scalars import JSON

from sunflower.audit.models import AuditAction, AuditEntry

AuditActionEnum = strawberry.enum(AuditAction, name="AuditAction")


@strawberry.type(name="AuditEntry", description="Who read or changed which record, when and why; hash-chained.")
class AuditEntryType(relay.Node):
    id: relay.NodeID[str]
    seq: int
    at: datetime
    actor: str
    actor_roles: list[str]
    action: AuditActionEnum
    subject_type: str
    subject_id: str
    purpose: str
    detail: JSON
    prev_hash: str
    hash: str

    @classmethod
    def from_domain(cls, entry: AuditEntry) -> "AuditEntryType":
        e = entry.event
        return cls(
            id=str(entry.seq),
            seq=entry.seq,
            at=entry.at,
            actor=e.actor,
            actor_roles=list(e.actor_roles),
            action=e.action,
            subject_type=e.subject_type,
            subject_id=e.subject_id,
            purpose=e.purpose,
            detail=dict(e.detail),
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        seqs = [int(i) if i.isdigit() else -1 for i in node_ids]
        entries = await info.context.loaders.audit_entry_by_seq.load_many(seqs)
        return [cls.from_domain(e) if e else None for e in entries]


@strawberry.input(name="AuditEntryFilter")
class AuditEntryFilter:
    subject_type: str | None = None
    subject_id: str | None = None
    actor: str | None = strawberry.field(default=None, description='For example "person:u1" or "device:01J..."')
    since: datetime | None = None
    until: datetime | None = None
