"""Append to, seal, read and verify the tamper-evident audit log."""

import hashlib
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime

from sunflower.audit.models import (
    GENESIS,
    AuditEntry,
    AuditEvent,
    DamagedEntry,
    Problem,
    ProblemKind,
    Seal,
    Verification,
    chain,
    entry_hash,
)
from sunflower.audit.repository import AuditRepository
from sunflower.auth.principals import Principal, Role
from sunflower.aws import storage
from sunflower.common.clock import Clock
from sunflower.common.cursors import Page
from sunflower.common.errors import NotFound, PermissionDenied, ValidationFailed

BUCKET = "audit"
_MAX_APPEND_ATTEMPTS = 20
_BACKOFF_BASE_S = 0.005
_BACKOFF_CAP_S = 0.25
_MAX_SEAL_BATCH = 5000
_BATCH = 99  # DynamoDB transactions hold 100 items: the entries and the head


@dataclass(frozen=True)
class AuditFilter:
    subject_type: str | None = None
    subject_id: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditService:
    def __init__(self, repository: AuditRepository, clock: Clock) -> None:
        self._repo = repository
        self._clock = clock

    def record(self, event: AuditEvent) -> AuditEntry:
        """Append one entry to the chain."""
        return self.record_many([event])[0]

    def record_many(self, events: list[AuditEvent]) -> list[AuditEntry]:
        """Append entries in order, up to 99 per transaction (a page of reads costs two round trips).

        Concurrent writers retry on the new head; if the log cannot be appended to, this raises
        and the caller's read or change must not proceed.
        """
        if any(not e.purpose.strip() for e in events):
            raise ValidationFailed.on("purpose", "every audited access needs a stated purpose")
        written: list[AuditEntry] = []
        for start in range(0, len(events), _BATCH):
            written += self._append(events[start : start + _BATCH])
        return written

    def _append(self, events: list[AuditEvent]) -> list[AuditEntry]:
        for attempt in range(_MAX_APPEND_ATTEMPTS):
            seq, prev_hash = self._repo.head()
            at, entries = self._clock(), []
            for event in events:
                seq += 1
                entries.append(chain(seq, at, event, prev_hash))
                prev_hash = entries[-1].hash
            if self._repo.append(entries):
                return entries
            # Full jitter: losers retrying at once would collide again and starve each other.
            time.sleep(random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt)))
        raise RuntimeError("audit log is too contended to append; the caller's change must not proceed")

    def entries(self, viewer: Principal, filter: AuditFilter, *, limit: int, start: dict | None) -> Page[AuditEntry]:
        _require_auditor(viewer)
        if (filter.subject_type is None) != (filter.subject_id is None):
            raise ValidationFailed.on("subject", "give both subjectType and subjectId, or neither")
        if filter.since and filter.until and filter.since > filter.until:
            raise ValidationFailed.on("since", "must not be after until")
        subject = (filter.subject_type, filter.subject_id) if filter.subject_type else None
        return self._repo.page(
            subject=subject, actor=filter.actor, since=filter.since, until=filter.until, limit=limit, start=start
        )

    def get_many(self, viewer: Principal, seqs: list[int]) -> dict[int, AuditEntry]:
        _require_auditor(viewer)
        return self._repo.get_many(seqs)

    def seal(self) -> Seal | None:
        """Write the entries since the last seal to S3 as one JSON Lines object; None if nothing is new."""
        last = self._repo.last_seal()
        first_seq = last.last_seq + 1 if last else 1
        head_seq, _ = self._repo.head()
        if head_seq < first_seq:
            return None
        last_seq = min(head_seq, first_seq + _MAX_SEAL_BATCH - 1)
        entries = list(self._repo.entries(first_seq, last_seq))
        damaged = [e.seq for e in entries if isinstance(e, DamagedEntry)]
        if damaged:
            raise RuntimeError(f"audit entries {damaged} are damaged: not sealing; run `sunflower audit verify`")
        body = "".join(_sealed_line(e) for e in entries).encode()
        key = f"batches/{first_seq:012d}-{last_seq:012d}.jsonl"
        digest = storage.put(BUCKET, key, body, "application/x-ndjson")
        seal = Seal(first_seq, last_seq, entries[-1].hash, key, digest, self._clock())
        self._repo.add_seal(seal)  # a concurrent sealer wrote the same batch: equally good
        return seal

    def verify(self) -> Verification:
        problems: list[Problem] = []
        hashes: dict[int, str] = {}
        expected_seq, prev_hash, count = 1, GENESIS, 0
        for entry in self._repo.entries():
            count += 1
            if entry.seq != expected_seq:
                problems.append(
                    Problem(expected_seq, ProblemKind.MISSING, f"entries {expected_seq}..{entry.seq - 1} are missing")
                )
            if isinstance(entry, DamagedEntry):
                problems.append(Problem(entry.seq, ProblemKind.EDITED, f"no longer a readable entry ({entry.reason})"))
            elif entry.recomputed_hash() != entry.hash:
                problems.append(Problem(entry.seq, ProblemKind.EDITED, "content does not match its hash"))
            elif entry.prev_hash != prev_hash and entry.seq == expected_seq:
                problems.append(
                    Problem(entry.seq, ProblemKind.BROKEN_LINK, "does not follow the entry before it (reordered?)")
                )
            hashes[entry.seq] = entry.hash
            expected_seq, prev_hash = entry.seq + 1, entry.hash
        head_seq, head_hash = self._repo.head()
        if head_seq != expected_seq - 1 or head_hash != prev_hash:
            problems.append(
                Problem(head_seq, ProblemKind.HEAD_MISMATCH, f"head says {head_seq}, the chain ends at {expected_seq - 1}")
            )
        seals = 0
        for seal in self._repo.seals():
            seals += 1
            problems.extend(_check_seal(seal, hashes))
        return Verification(count, seals, sorted(problems, key=lambda p: p.seq))


def _require_auditor(viewer: Principal) -> None:
    if not viewer.has_any(Role.AUDITOR):
        raise PermissionDenied("only auditors may read the audit log")


def _sealed_line(entry: AuditEntry) -> str:
    return json.dumps({**entry.canonical(), "hash": entry.hash}, sort_keys=True, ensure_ascii=False) + "\n"


def _check_seal(seal: Seal, hashes: dict[int, str]) -> list[Problem]:
    try:
        body = storage.get(BUCKET, seal.object_key)
    except NotFound:
        return [Problem(seal.first_seq, ProblemKind.SEAL_MISMATCH, f"sealed batch {seal.object_key} is gone")]
    if hashlib.sha256(body).hexdigest() != seal.object_sha256:
        return [Problem(seal.first_seq, ProblemKind.SEAL_MISMATCH, f"sealed batch {seal.object_key} was altered")]
    problems = []
    for line in body.decode().splitlines():
        sealed = json.loads(line)
        stored_hash = sealed.pop("hash")
        seq = sealed["seq"]
        if entry_hash(sealed) != stored_hash or hashes.get(seq) != stored_hash:
            problems.append(Problem(seq, ProblemKind.SEAL_MISMATCH, f"differs from sealed batch {seal.object_key}"))
    return problems
