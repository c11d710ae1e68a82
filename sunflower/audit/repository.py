"""The audit chain in the `audit` table: entries, the head, and the seals of batches in S3."""

from collections.abc import Iterator
from datetime import datetime

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from sunflower.audit.models import GENESIS, AuditAction, AuditEntry, AuditEvent, DamagedEntry, Seal
from sunflower.aws.dynamo import connection, page_of, table_meta
from sunflower.common.clock import to_iso
from sunflower.common.cursors import Page

_LOG, _HEAD, _SEAL = "LOG", "HEAD", "SEAL"


def _index(name: str, hash_attr: str) -> type[GlobalSecondaryIndex]:
    attrs = {
        "Meta": type("Meta", (), {"index_name": name, "projection": AllProjection()}),
        hash_attr: UnicodeAttribute(hash_key=True),
        "at_seq": UnicodeAttribute(range_key=True),
    }
    return type(f"_{name}", (GlobalSecondaryIndex,), attrs)


class _AuditItem(Model):
    Meta = table_meta("audit")

    pk = UnicodeAttribute(hash_key=True)
    sk = NumberAttribute(range_key=True)
    # entries
    at = UTCDateTimeAttribute(null=True)
    at_seq = UnicodeAttribute(null=True)
    stream = UnicodeAttribute(null=True)
    actor = UnicodeAttribute(null=True)
    actor_roles = ListAttribute(of=UnicodeAttribute, null=True)
    action = UnicodeAttribute(null=True)
    subject_key = UnicodeAttribute(null=True)
    subject_type = UnicodeAttribute(null=True)
    subject_id = UnicodeAttribute(null=True)
    purpose = UnicodeAttribute(null=True)
    detail = JSONAttribute(null=True)
    prev_hash = UnicodeAttribute(null=True)
    hash = UnicodeAttribute(null=True)
    # head and seals
    head_seq = NumberAttribute(null=True)
    first_seq = NumberAttribute(null=True)
    object_key = UnicodeAttribute(null=True)
    object_sha256 = UnicodeAttribute(null=True)
    sealed_at = UTCDateTimeAttribute(null=True)

    by_time = _index("by_time", "stream")()
    by_subject = _index("by_subject", "subject_key")()
    by_actor = _index("by_actor", "actor")()




def _at_seq(at: datetime, seq: int) -> str:
    return f"{to_iso(at)}#{seq:012d}"


def _subject_key(subject_type: str, subject_id: str) -> str:
    return f"{subject_type}#{subject_id}"


def _entry(item: _AuditItem) -> AuditEntry:
    event = AuditEvent(
        actor=item.actor,
        actor_roles=tuple(item.actor_roles or ()),
        action=AuditAction(item.action),
        subject_type=item.subject_type,
        subject_id=item.subject_id,
        purpose=item.purpose or "",
        detail=dict(item.detail or {}),
    )
    return AuditEntry(int(item.sk), item.at, event, item.prev_hash, item.hash)


def _entry_item(entry: AuditEntry) -> _AuditItem:
    e = entry.event
    return _AuditItem(
        _LOG,
        entry.seq,
        at=entry.at,
        at_seq=_at_seq(entry.at, entry.seq),
        stream=_LOG,
        actor=e.actor,
        actor_roles=list(e.actor_roles),
        action=e.action.value,
        subject_key=_subject_key(e.subject_type, e.subject_id),
        subject_type=e.subject_type,
        subject_id=e.subject_id,
        purpose=e.purpose,
        detail=dict(e.detail),
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )


def _seal(item: _AuditItem) -> Seal:
    return Seal(int(item.first_seq), int(item.sk), item.hash, item.object_key, item.object_sha256, item.sealed_at)


class AuditRepository:
    def head(self) -> tuple[int, str]:
        try:
            item = _AuditItem.get(_HEAD, 0, consistent_read=True)
        except _AuditItem.DoesNotExist:
            return 0, GENESIS
        return int(item.head_seq), item.hash

    def append(self, entries: list[AuditEntry]) -> bool:
        """Write consecutive entries and move the head in one transaction; False if another writer got there first."""
        first, last = entries[0], entries[-1]
        head = _AuditItem(_HEAD, 0, head_seq=last.seq, hash=last.hash)
        head_condition = _AuditItem.pk.does_not_exist() if first.seq == 1 else _AuditItem.head_seq == first.seq - 1
        try:
            with TransactWrite(connection=connection()) as tx:
                for entry in entries:
                    tx.save(_entry_item(entry), condition=_AuditItem.pk.does_not_exist())
                tx.save(head, condition=head_condition)
        except TransactWriteError as exc:
            if exc.cause_response_code == "TransactionCanceledException":
                return False
            raise
        return True

    def entries(self, first_seq: int = 1, last_seq: int | None = None) -> Iterator[AuditEntry | DamagedEntry]:
        condition = _AuditItem.sk >= first_seq if last_seq is None else _AuditItem.sk.between(first_seq, last_seq)
        for item in _AuditItem.query(_LOG, condition, consistent_read=True, page_size=500):
            try:
                yield _entry(item)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                yield DamagedEntry(int(item.sk), item.hash or "", f"{type(exc).__name__}: {exc}")

    def page(
        self,
        *,
        subject: tuple[str, str] | None,
        actor: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        start: dict | None,
    ) -> Page[AuditEntry]:
        """Newest first, through whichever index the filter names."""
        if subject:
            index, key, attribute = _AuditItem.by_subject, _subject_key(*subject), "subject_key"
        elif actor:
            index, key, attribute = _AuditItem.by_actor, actor, "actor"
        else:
            index, key, attribute = _AuditItem.by_time, _LOG, "stream"
        # DynamoDB rejects an empty string in a key condition: "0" sorts before every ISO timestamp.
        low, high = to_iso(since) if since else "0", f"{to_iso(until)}#~" if until else "~"
        result = index.query(
            key,
            _AuditItem.at_seq.between(low, high),
            # An index serves one of subject and actor; the other, when given too, must still narrow the result.
            filter_condition=_AuditItem.actor == actor if subject and actor else None,
            scan_index_forward=False,
            limit=limit,
            page_size=limit,
            last_evaluated_key=start,
        )
        return page_of(result, _entry, ("pk", "sk", attribute, "at_seq"))

    def get_many(self, seqs: list[int]) -> dict[int, AuditEntry]:
        keys = [(_LOG, seq) for seq in dict.fromkeys(seqs)]
        return {int(item.sk): _entry(item) for item in _AuditItem.batch_get(keys)}

    def seals(self) -> Iterator[Seal]:
        for item in _AuditItem.query(_SEAL, consistent_read=True):
            yield _seal(item)

    def last_seal(self) -> Seal | None:
        for item in _AuditItem.query(_SEAL, scan_index_forward=False, limit=1, consistent_read=True):
            return _seal(item)
        return None

    def add_seal(self, seal: Seal) -> bool:
        item = _AuditItem(
            _SEAL,
            seal.last_seq,
            first_seq=seal.first_seq,
            hash=seal.last_hash,
            object_key=seal.object_key,
            object_sha256=seal.object_sha256,
            sealed_at=seal.sealed_at,
        )
        try:
            item.save(condition=_AuditItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True
