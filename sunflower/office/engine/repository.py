"""Workflow definitions, instances, timelines, inboxes, notifications and timers in the `office` table.

Key design (prefixes live here and only here):
  DEF#{key} / V#{version:06d}          a definition version (compressed BPMN + DMN)
                                        gsi1: DEFS / {key}#{version:06d}
  DEF#{key} / LATEST                   the latest version's number
  INST#{id} / INST                     an instance: SpiffWorkflow state (gzip), open tasks, data,
                                        `version` for optimistic locking, the last change's outbox
                                        gsi1: PROC#{key} / {started_at}#{id}
  INST#{id} / TL#{at}#{version}#{n}…   an append-only timeline entry
  INST#{id} / TASK#{task}#{assignee}   one open (or closed) task for one assignee key
                                        gsi1: INBOX#{assignee key} / {opened_at}#{id}#{task}  (only while open)
  NOTE#{recipient key} / {at}#{id}…    a notification (reminder, escalation)
  DUE#{shard} / {due}#{id}             a timer hint: the instance may have something due then

Writes without transactions. An instance is written with one conditional put (`version` must be
the one read: two people completing the same task, exactly one wins). What follows from the change
(timeline entries, inbox items, notifications) is its outbox, stored in the instance item and
applied right after; every derived write is idempotent and inbox items only ever move forward
(`src_version`), so applying an outbox late or twice is harmless.

Timers are found through hints: tiny items in DUE_SHARDS partitions sorted by due time, so one
query page holds thousands and `due` reads the instances with batch gets. A hint is written before
the change that needs it is committed and removed after; the instance item is the truth, so a hint
left by a writer that lost a race or died is dropped when it comes due. A change with inbox
changes also leaves a repair hint a minute ahead, removed once its outbox is applied: if the writer
dies in between, `wake_due` applies the outbox. (One transaction per change would also do, at
twice the write cost.) `wake_due` writes the instances it advances in transactions of up to a
hundred conditional puts, retried without the ones whose condition failed: one request per hundred
timers. (Against moto this relies on sunflower.local.moto_patches; unpatched moto copies the whole
table for every item of a transaction.)
"""

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from sunflower.aws.dynamo import connection, overloaded_index, table_meta
from sunflower.common.clock import from_iso, to_iso
from sunflower.common.cursors import Page
from sunflower.common.errors import NotFound
from sunflower.office.engine.models import (
    Assignee,
    Definition,
    InboxItem,
    Instance,
    InstanceStatus,
    Notification,
    OpenTask,
    TaskDefinition,
    TimelineEntry,
    TimelineKind,
)

DUE_SHARDS = 4
_TRANSACTION_ITEMS = 100
_INBOX_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")


class _Item(Model):
    """Every engine item of the table; each kind uses the attributes it needs."""

    Meta = table_meta("office")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi1 = overloaded_index("gsi1")
    data = JSONAttribute(null=True)  # the record's fields
    blob = BinaryAttribute(null=True, legacy_encoding=False)  # gzipped workflow state or diagram
    version = NumberAttribute(null=True)
    outbox = JSONAttribute(null=True)
    src_version = NumberAttribute(null=True)  # inbox items: the instance version that wrote them
    is_open = BooleanAttribute(null=True)
    definition_key = UnicodeAttribute(null=True)  # inbox items: for filters
    business_key = UnicodeAttribute(null=True)




# --- keys ------------------------------------------------------------------------------------


def _def_key(key: str, version: int) -> tuple[str, str]:
    return f"DEF#{key}", f"V#{version:06d}"


def _inst_key(instance_id: str) -> tuple[str, str]:
    return f"INST#{instance_id}", "INST"


def _timeline_sk(entry_id: str) -> str:
    return f"TL#{entry_id}"


def _task_sk(task_id: str, assignee: Assignee) -> str:
    return f"TASK#{task_id}#{assignee.key}"


def _inbox_pk(assignee: Assignee) -> str:
    return f"INBOX#{assignee.key}"


def _note_pk(recipient: Assignee) -> str:
    return f"NOTE#{recipient.key}"


def _hint_key(due: datetime, instance_id: str) -> tuple[str, str]:
    return f"DUE#{zlib.crc32(instance_id.encode()) % DUE_SHARDS}", f"{to_iso(due)}#{instance_id}"


# --- (de)serialisation ------------------------------------------------------------------------


def _definition(item: _Item) -> Definition:
    d = item.data
    return Definition(
        key=d["key"],
        version=int(item.version),
        name=d["name"],
        deployed_by=d["deployed_by"],
        deployed_at=from_iso(d["deployed_at"]),
        tasks=tuple(TaskDefinition(t["element_id"], t["name"], t.get("form_schema"), t.get("instructions", "")) for t in d["tasks"]),
        start_schema=d.get("start_schema"),
        starters=tuple(d.get("starters", ())),
        bpmn_sha256=d.get("bpmn_sha256", ""),
    )


def _definition_data(definition: Definition) -> dict[str, Any]:
    return {
        "key": definition.key,
        "name": definition.name,
        "deployed_by": definition.deployed_by,
        "deployed_at": to_iso(definition.deployed_at),
        "tasks": [
            {"element_id": t.element_id, "name": t.name, "form_schema": t.form_schema, "instructions": t.instructions}
            for t in definition.tasks
        ],
        "start_schema": definition.start_schema,
        "starters": list(definition.starters),
        "bpmn_sha256": definition.bpmn_sha256,
    }


def _task_data(task: OpenTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "element_id": task.element_id,
        "name": task.name,
        "assignees": [a.key for a in task.assignees],
        "opened_at": to_iso(task.opened_at),
        "escalation_level": task.escalation_level,
    }


def _open_task(d: dict[str, Any]) -> OpenTask:
    return OpenTask(
        d["id"],
        d["element_id"],
        d["name"],
        tuple(Assignee.from_key(k) for k in d["assignees"]),
        from_iso(d["opened_at"]),
        int(d.get("escalation_level", 0)),
    )


def _instance_data(i: Instance) -> dict[str, Any]:
    return {
        "id": i.id,
        "definition_key": i.definition_key,
        "definition_version": i.definition_version,
        "status": i.status.value,
        "business_key": i.business_key,
        "data": i.data,
        "open_tasks": [_task_data(t) for t in i.open_tasks],
        "started_by": i.started_by,
        "started_at": to_iso(i.started_at),
        "updated_at": to_iso(i.updated_at),
        "completed_at": to_iso(i.completed_at) if i.completed_at else None,
        "next_due": to_iso(i.next_due) if i.next_due else None,
    }


def _instance(item: _Item) -> Instance:
    d = item.data
    return Instance(
        id=d["id"],
        definition_key=d["definition_key"],
        definition_version=int(d["definition_version"]),
        status=InstanceStatus(d["status"]),
        business_key=d.get("business_key"),
        data=d.get("data") or {},
        open_tasks=tuple(_open_task(t) for t in d.get("open_tasks", [])),
        started_by=d["started_by"],
        started_at=from_iso(d["started_at"]),
        updated_at=from_iso(d["updated_at"]),
        completed_at=from_iso(d["completed_at"]) if d.get("completed_at") else None,
        next_due=from_iso(d["next_due"]) if d.get("next_due") else None,
        version=int(item.version),
    )


def entry_data(e: TimelineEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "instance_id": e.instance_id,
        "at": to_iso(e.at),
        "actor": e.actor,
        "kind": e.kind.value,
        "task_id": e.task_id,
        "element_id": e.element_id,
        "task_name": e.task_name,
        "data": e.data,
        "comment": e.comment,
    }


def _entry(d: dict[str, Any]) -> TimelineEntry:
    return TimelineEntry(
        id=d["id"],
        instance_id=d["instance_id"],
        at=from_iso(d["at"]),
        actor=d["actor"],
        kind=TimelineKind(d["kind"]),
        task_id=d.get("task_id"),
        element_id=d.get("element_id"),
        task_name=d.get("task_name"),
        data=d.get("data") or {},
        comment=d.get("comment"),
    )


def _note_data(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "recipient": n.recipient.key,
        "at": to_iso(n.at),
        "kind": n.kind.value,
        "instance_id": n.instance_id,
        "task_id": n.task_id,
        "task_name": n.task_name,
        "message": n.message,
    }


def _note(d: dict[str, Any]) -> Notification:
    return Notification(
        d["id"], Assignee.from_key(d["recipient"]), from_iso(d["at"]), TimelineKind(d["kind"]), d["instance_id"],
        d.get("task_id"), d.get("task_name"), d["message"],
    )


# --- the outbox -------------------------------------------------------------------------------


@dataclass
class Outbox:
    """What an instance change implies beyond the instance item; applied after it is written."""

    timeline: list[TimelineEntry] = field(default_factory=list)
    opened: list[tuple[OpenTask, Assignee]] = field(default_factory=list)
    closed: list[tuple[OpenTask, Assignee]] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "timeline": [entry_data(e) for e in self.timeline],
            "opened": [[_task_data(t), a.key] for t, a in self.opened],
            "closed": [[_task_data(t), a.key] for t, a in self.closed],
            "notifications": [_note_data(n) for n in self.notifications],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> "Outbox":
        if not d:
            return cls()
        return cls(
            [_entry(e) for e in d.get("timeline", [])],
            [(_open_task(t), Assignee.from_key(a)) for t, a in d.get("opened", [])],
            [(_open_task(t), Assignee.from_key(a)) for t, a in d.get("closed", [])],
            [_note(n) for n in d.get("notifications", [])],
        )


@dataclass(frozen=True)
class StoredInstance:
    instance: Instance
    state: bytes
    outbox: Outbox


@dataclass(frozen=True)
class Hint:
    """A timer hint that came due: the instance it names may have something to do."""

    instance_id: str
    due: datetime


@dataclass
class Change:
    """One committed change: the instance as written, its outbox, and the hints to clean up after."""

    instance: Instance
    outbox: Outbox
    drop_hints: list[datetime] = field(default_factory=list)


class InstanceConflict(Exception):
    """Someone else changed the instance since it was read."""


class EngineRepository:
    def __init__(self, *, repair_after_s: int = 60) -> None:
        self._repair_after_s = repair_after_s

    # --- definitions ---

    def latest_version(self, key: str) -> int:
        try:
            return int(_Item.get(f"DEF#{key}", "LATEST", consistent_read=True).version)
        except _Item.DoesNotExist:
            return 0

    def add_definition(self, definition: Definition, bpmn: bytes, dmn: list[bytes]) -> bool:
        """Store a new version and make it the latest; False if that version number was taken meanwhile."""
        pk, sk = _def_key(definition.key, definition.version)
        item = _Item(pk, sk, data=_definition_data(definition), version=definition.version)
        item.gsi1pk, item.gsi1sk = "DEFS", f"{definition.key}#{definition.version:06d}"
        item.blob = zlib.compress(json.dumps({"bpmn": bpmn.decode(), "dmn": [d.decode() for d in dmn]}).encode())
        try:
            item.save(condition=_Item.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        # The pointer only moves forward; a deployer that died here leaves it one behind, and the next
        # deploy skips the taken number.
        try:
            _Item(pk, "LATEST").update(
                actions=[_Item.version.set(definition.version)],
                condition=_Item.pk.does_not_exist() | (_Item.version < definition.version),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
        return True

    def definition(self, key: str, version: int) -> tuple[Definition, bytes, list[bytes]]:
        try:
            item = _Item.get(*_def_key(key, version))
        except _Item.DoesNotExist:
            raise NotFound(f"no workflow definition {key} version {version}") from None
        sources = json.loads(zlib.decompress(item.blob))
        return _definition(item), sources["bpmn"].encode(), [d.encode() for d in sources["dmn"]]

    def definitions(self, *, limit: int, start: dict | None) -> Page[Definition]:
        result = _Item.gsi1.query("DEFS", limit=limit, page_size=limit, last_evaluated_key=start,
                                  attributes_to_get=["pk", "sk", "gsi1pk", "gsi1sk", "data", "version"])
        items, keys = [], []
        for record in result:
            items.append(_definition(record))
            raw = record.serialize()
            keys.append({name: raw[name] for name in _INBOX_KEYS})
        nxt = result.last_evaluated_key
        return Page(items, dict(nxt) if nxt else None, keys)

    # --- instances ---

    def get(self, instance_id: str) -> StoredInstance:
        try:
            item = _Item.get(*_inst_key(instance_id), consistent_read=True)
        except _Item.DoesNotExist:
            raise NotFound(f"no workflow instance {instance_id}") from None
        return self._stored(item)

    def get_many(self, instance_ids: Iterable[str]) -> dict[str, Instance]:
        keys = [_inst_key(i) for i in dict.fromkeys(instance_ids) if i]
        return {i.id: i for i in (_instance(item) for item in _Item.batch_get(keys, attributes_to_get=["pk", "sk", "data", "version"]))}

    def raw(self, instance_id: str) -> dict[str, Any] | None:
        """The stored instance item as DynamoDB holds it (tests compare it before and after)."""
        try:
            return _Item.get(*_inst_key(instance_id), consistent_read=True).serialize()
        except _Item.DoesNotExist:
            return None

    @staticmethod
    def _stored(item: _Item) -> StoredInstance:
        return StoredInstance(_instance(item), bytes(item.blob), Outbox.from_json(item.outbox))

    def get_stored_many(self, instance_ids: Iterable[str]) -> dict[str, StoredInstance]:
        keys = [_inst_key(i) for i in dict.fromkeys(instance_ids)]
        return {s.instance.id: s for s in map(self._stored, _Item.batch_get(keys, consistent_read=True))}

    def create(self, created: list[tuple[Instance, bytes, Outbox]]) -> None:
        """Write new instances with everything that follows from their start, in batches.

        Nothing can have touched an instance that does not exist yet, so no condition is needed: the
        derived items and hints go first and the instance item last.
        """
        with _Item.batch_write() as batch:
            for instance, _, outbox in created:
                for item in self._derived_items(outbox):
                    batch.save(item)
                for task, assignee in outbox.opened:
                    batch.save(self._task_item(instance, task, assignee, is_open=True))
                if instance.next_due:
                    batch.save(_Item(*_hint_key(instance.next_due, instance.id)))
            for instance, state, outbox in created:
                batch.save(self._instance_item(instance, state, outbox))

    def repair_at(self, now: datetime) -> datetime:
        return datetime.fromtimestamp(now.timestamp() + self._repair_after_s, now.tzinfo)

    def prepare(self, changes: list[tuple[Instance, Instance, Outbox]], now: datetime) -> list[datetime | None]:
        """Before committing (previous, next, outbox) changes: write the hints they will need.

        Returns each change's repair time (None when it changes no inbox and needs no repair).
        """
        repairs: list[datetime | None] = []
        hints: list[tuple[datetime, str]] = []
        for before, after, outbox in changes:
            repair = self.repair_at(now) if outbox.opened or outbox.closed else None
            repairs.append(repair)
            if repair:
                hints.append((repair, after.id))
            if after.next_due and after.next_due != before.next_due:
                hints.append((after.next_due, after.id))
        if hints:
            with _Item.batch_write() as batch:
                for due, instance_id in hints:
                    batch.save(_Item(*_hint_key(due, instance_id)))
        return repairs

    def save(self, instance: Instance, state: bytes, outbox: Outbox, *, previous_version: int) -> None:
        """Write the instance if nobody changed it since `previous_version`; its outbox goes with it."""
        try:
            self._instance_item(instance, state, outbox).save(condition=_Item.version == previous_version)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise InstanceConflict(instance.id) from None
            raise

    def save_many(self, changes: list[tuple[Instance, bytes, Outbox, int]]) -> list[bool]:
        """Conditionally write many instances, up to 100 per transaction; False where someone else won.

        A transaction is all or nothing: when some conditions fail, it is cancelled and run again
        without them. (Per-instance conditions, but one request per hundred instances.)
        """
        saved = [False] * len(changes)
        for start in range(0, len(changes), _TRANSACTION_ITEMS):
            pending = list(range(start, min(start + _TRANSACTION_ITEMS, len(changes))))
            while pending:
                try:
                    with TransactWrite(connection=connection()) as tx:
                        for i in pending:
                            instance, state, outbox, previous_version = changes[i]
                            tx.save(self._instance_item(instance, state, outbox), condition=_Item.version == previous_version)
                except TransactWriteError as exc:
                    reasons = getattr(exc, "cancellation_reasons", None) or []
                    failed = {pending[n] for n, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"}
                    if not failed:
                        raise
                    pending = [i for i in pending if i not in failed]
                    continue
                for i in pending:
                    saved[i] = True
                break
        return saved

    @staticmethod
    def _instance_item(instance: Instance, state: bytes, outbox: Outbox) -> _Item:
        pk, sk = _inst_key(instance.id)
        item = _Item(pk, sk, data=_instance_data(instance), blob=state, version=instance.version)
        if outbox.opened or outbox.closed:
            item.outbox = outbox.to_json()  # only a change with a repair hint is ever applied again
        item.gsi1pk, item.gsi1sk = f"PROC#{instance.definition_key}", f"{to_iso(instance.started_at)}#{instance.id}"
        return item

    @staticmethod
    def _derived_items(outbox: Outbox) -> Iterator[_Item]:
        for entry in outbox.timeline:
            yield _Item(f"INST#{entry.instance_id}", _timeline_sk(entry.id), data=entry_data(entry))
        for note in outbox.notifications:
            yield _Item(_note_pk(note.recipient), note.id, data=_note_data(note))

    def apply(self, changes: list[Change]) -> None:
        """Write what committed changes imply: inbox items first, then one batch of the rest.

        The batch also removes the hints the changes no longer need (their repair hints last of all:
        while one is there, the change may not be fully applied).
        """
        for change in changes:
            for task, assignee in change.outbox.closed:
                self._put_task(change.instance, task, assignee, is_open=False)
            for task, assignee in change.outbox.opened:
                self._put_task(change.instance, task, assignee, is_open=True)
        with _Item.batch_write() as batch:
            for change in changes:
                for item in self._derived_items(change.outbox):
                    batch.save(item)
            for change in changes:
                for due in dict.fromkeys(change.drop_hints):
                    if due != change.instance.next_due:
                        batch.delete(_Item(*_hint_key(due, change.instance.id)))

    def ensure_hint(self, instances: list[Instance]) -> None:
        with _Item.batch_write() as batch:
            for instance in instances:
                if instance.next_due:
                    batch.save(_Item(*_hint_key(instance.next_due, instance.id)))

    def _put_task(self, instance: Instance, task: OpenTask, assignee: Assignee, *, is_open: bool) -> None:
        item = self._task_item(instance, task, assignee, is_open=is_open)
        # Only forward: a late re-application of an older change must not reopen a closed task.
        condition = _Item.pk.does_not_exist() | (_Item.src_version <= instance.version)
        try:
            item.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    @staticmethod
    def _task_item(instance: Instance, task: OpenTask, assignee: Assignee, *, is_open: bool) -> _Item:
        item = _Item(
            f"INST#{instance.id}",
            _task_sk(task.id, assignee),
            data={**_task_data(task), "assignee": assignee.key, "instance_id": instance.id},
            src_version=instance.version,
            is_open=is_open,
            definition_key=instance.definition_key,
            business_key=instance.business_key,
        )
        if is_open:
            item.gsi1pk, item.gsi1sk = _inbox_pk(assignee), f"{to_iso(task.opened_at)}#{instance.id}#{task.id}"
        return item

    def due(self, now: datetime, limit: int, shards: Iterable[int] | None = None) -> list[Hint]:
        """Hints due at `now`, oldest first within each shard, at most `limit`."""
        high = f"{to_iso(now)}#~"
        hints: list[Hint] = []
        for shard in range(DUE_SHARDS) if shards is None else shards:
            if len(hints) >= limit:
                break
            for item in _Item.query(f"DUE#{shard}", _Item.sk <= high, limit=limit - len(hints), page_size=limit):
                due, _, instance_id = item.sk.partition("#")
                hints.append(Hint(instance_id, from_iso(due)))
        return hints

    def drop_hints(self, hints: list[Hint]) -> None:
        with _Item.batch_write() as batch:
            for hint in hints:
                batch.delete(_Item(*_hint_key(hint.due, hint.instance_id)))

    # --- timeline ---

    def timeline(self, instance_id: str, *, limit: int, start: dict | None, newest_first: bool = False) -> Page[TimelineEntry]:
        result = _Item.query(
            f"INST#{instance_id}", _Item.sk.startswith("TL#"), scan_index_forward=not newest_first,
            limit=limit, page_size=limit, last_evaluated_key=start, consistent_read=True,
        )
        items, keys = [], []
        for record in result:
            items.append(_entry(record.data))
            keys.append({"pk": {"S": record.pk}, "sk": {"S": record.sk}})
        nxt = result.last_evaluated_key
        return Page(items, dict(nxt) if nxt else None, keys)

    def append_timeline(self, entries: list[TimelineEntry]) -> None:
        with _Item.batch_write() as batch:
            for item in self._derived_items(Outbox(timeline=entries)):
                batch.save(item)

    # --- inboxes and notifications ---

    def inbox_partition(
        self, assignee: Assignee, *, limit: int, start: dict | None, low: str, high: str,
        definition_key: str | None, business_key: str | None,
    ) -> tuple[list[tuple[InboxItem, str, dict]], dict | None]:
        """One assignee key's open tasks, newest first: (item, sort key, its resume key) and the next page's key."""
        condition = None
        if definition_key:
            condition = _Item.definition_key == definition_key
        if business_key:
            condition = (_Item.business_key == business_key) if condition is None else condition & (_Item.business_key == business_key)
        result = _Item.gsi1.query(
            _inbox_pk(assignee), _Item.gsi1sk.between(low, high), filter_condition=condition,
            scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start,
        )
        out = []
        for record in result:
            d = record.data
            item = InboxItem(
                d["instance_id"], d["id"], d["element_id"], d["name"], record.definition_key, record.business_key,
                Assignee.from_key(d["assignee"]), from_iso(d["opened_at"]),
            )
            raw = record.serialize()
            out.append((item, record.gsi1sk, {name: raw[name] for name in _INBOX_KEYS}))
        nxt = result.last_evaluated_key
        return out, dict(nxt) if nxt else None

    def notifications(self, recipient: Assignee, *, limit: int, start: dict | None) -> tuple[list[tuple[Notification, str, dict]], dict | None]:
        result = _Item.query(_note_pk(recipient), scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start)
        out = []
        for record in result:
            out.append((_note(record.data), record.sk, {"pk": {"S": record.pk}, "sk": {"S": record.sk}}))
        nxt = result.last_evaluated_key
        return out, dict(nxt) if nxt else None
