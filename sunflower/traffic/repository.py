"""Everything traffic keeps, in the `traffic` table. Key prefixes live here and only here.

    CORRIDOR#c / DEFINITION          the corridor (JSON)                                   gsi1 CORRIDORS / c
    CORRIDOR#c / STATE               the rolling state (zlib JSON: readings in the window, last interval
                                     end per detector, seen batch ids), the latest flows, the highest plan
                                     version and the newest candidate; `revision` orders every change
    CORRIDOR#c / CURRENT             the plan in force (a copy, so controllers read one item), its ETag, pin
    CORRIDOR#c / PLAN#v              plan version v with its inputs and reasons, its ETag, who made it
    CORRIDOR#c / BATCH#b             batch b was ingested: a repeat is a no-op (TTL)
    CORRIDOR#c / FLOWS#end#b         the rolling flows after batch b and the aggregates under the plan in force (TTL)
    CORRIDOR#c / REJECTED#at#b       a batch refused for good, and why (TTL)

A corridor changes only in a transaction conditioned on STATE's revision (optimistic concurrency):
the batch marker, flows, new plan, pointer and state are written together or not at all.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.attributes import (
    BinaryAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from sunflower.aws.dynamo import connection, overloaded_index, page_of, table_meta
from sunflower.common.cursors import Page
from sunflower.common.errors import AlreadyExists, NotFound
from sunflower.traffic.flows import Flows
from sunflower.traffic.models import Corridor, Plan
from sunflower.traffic.records import (
    Head,
    InForce,
    Pin,
    PinMode,
    Rejection,
    RollingState,
    Snapshot,
    StoredPlan,
)
from sunflower.traffic.status import CorridorAggregates

_CORRIDORS = "CORRIDORS"
_DEFINITION, _STATE, _CURRENT = "DEFINITION", "STATE", "CURRENT"


class _TrafficItem(Model):
    Meta = table_meta("traffic")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi1 = overloaded_index("gsi1")
    kind = UnicodeAttribute(null=True)
    corridor_id = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    document = UnicodeAttribute(null=True)  # JSON: the corridor, or a plan
    flows = UnicodeAttribute(null=True)  # JSON: flows.Flows
    aggregates = UnicodeAttribute(null=True)  # JSON: status.CorridorAggregates
    rolling = BinaryAttribute(null=True, legacy_encoding=False)  # zlib JSON: records.RollingState
    revision = NumberAttribute(null=True)
    version = NumberAttribute(null=True)
    latest_version = NumberAttribute(null=True)
    candidate_version = NumberAttribute(null=True)
    etag = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)
    pin_mode = UnicodeAttribute(null=True)
    pinned_by = UnicodeAttribute(null=True)
    pin_reason = UnicodeAttribute(null=True)
    pinned_at = UTCDateTimeAttribute(null=True)
    diagram_key = UnicodeAttribute(null=True)
    batch_id = UnicodeAttribute(null=True)
    last_batch_id = UnicodeAttribute(null=True)
    last_batch_at = UTCDateTimeAttribute(null=True)
    code = UnicodeAttribute(null=True)
    message = UnicodeAttribute(null=True)
    problems = UnicodeAttribute(null=True)  # JSON: [[field, message], ...]
    raw_key = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


# Everything but the rolling readings: what a status read needs, a fraction of the bytes.
_STATUS_ATTRIBUTES = [
    name for name in _TrafficItem.get_attributes() if name not in ("rolling", "aggregates")
]


def _pk(corridor_id: str) -> str:
    return f"CORRIDOR#{corridor_id}"


def _plan_sk(version: int) -> str:
    return f"PLAN#{version:010d}"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _conflict(exc: TransactWriteError) -> bool:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)


# -- conversions ----------------------------------------------------------------------------------


def _pack(rolling: RollingState) -> bytes:
    return zlib.compress(rolling.model_dump_json().encode(), 6)


def _unpack(blob: bytes | None) -> RollingState:
    return RollingState.model_validate_json(zlib.decompress(blob)) if blob else RollingState()


def _in_force(item: _TrafficItem | None) -> InForce | None:
    if item is None or not item.document:
        return None
    pin = None
    if item.pin_mode:
        pin = Pin(PinMode(item.pin_mode), item.pinned_by or "", item.pin_reason or "", item.pinned_at)
    return InForce(Plan.model_validate_json(item.document), item.etag, pin, item.diagram_key,
                   item.created_by or "system:sunflower")


def _stored(item: _TrafficItem, current_version: int | None = None) -> StoredPlan:
    plan = Plan.model_validate_json(item.document)
    return StoredPlan(plan, item.etag, item.created_by or "", item.diagram_key,
                      in_force=current_version is not None and plan.version == current_version)


def _plan_item(corridor_id: str, stored: StoredPlan) -> _TrafficItem:
    plan = stored.plan
    return _TrafficItem(
        _pk(corridor_id), _plan_sk(plan.version), kind="plan", corridor_id=corridor_id, version=plan.version,
        document=plan.model_dump_json(), etag=stored.etag, source=plan.source, created_at=plan.created_at,
        created_by=stored.created_by, diagram_key=stored.diagram_key,
    )


def _current_item(corridor_id: str, current: InForce, at: datetime) -> _TrafficItem:
    pin = current.pin
    return _TrafficItem(
        _pk(corridor_id), _CURRENT, kind="current", corridor_id=corridor_id, version=current.version,
        document=current.plan.model_dump_json(), etag=current.etag, diagram_key=current.diagram_key,
        pin_mode=pin.mode.value if pin else None, pinned_by=pin.by if pin else None,
        pin_reason=pin.reason if pin else None, pinned_at=pin.at if pin else None, created_by=current.created_by,
        updated_at=at,
    )


def _rejection(item: _TrafficItem) -> Rejection:
    return Rejection(item.corridor_id, item.batch_id, item.created_at, item.code, item.message,
                     tuple(tuple(p) for p in json.loads(item.problems or "[]")), item.raw_key)


@dataclass(frozen=True)
class Change:
    """One transactional change of a corridor, conditioned on the revision it was computed from."""

    corridor_id: str
    expected_revision: int
    at: datetime
    latest_version: int
    candidate_version: int | None
    rolling: RollingState | None = None  # with a batch: the new rolling state
    batch_id: str | None = None
    batch_expires_at: datetime | None = None
    flows: Flows | None = None
    aggregates: CorridorAggregates | None = None
    history_expires_at: datetime | None = None
    new_plan: StoredPlan | None = None
    current: InForce | None = None  # a new plan in force (or pin), else the pointer stays


class TrafficRepository:
    # -- corridors -------------------------------------------------------------------------------

    def add_corridor(self, corridor: Corridor, *, created_by: str, at: datetime,
                     initial: StoredPlan | None = None) -> None:
        """The corridor, its empty state and (if given) its first plan in force: all or none."""
        pk = _pk(corridor.id)
        try:
            with TransactWrite(connection=connection()) as tx:
                tx.save(_TrafficItem(pk, _DEFINITION, kind="corridor", corridor_id=corridor.id, name=corridor.name,
                                     document=corridor.model_dump_json(), gsi1pk=_CORRIDORS, gsi1sk=corridor.id,
                                     created_at=at, created_by=created_by),
                        condition=_TrafficItem.pk.does_not_exist())
                tx.save(_TrafficItem(pk, _STATE, kind="state", corridor_id=corridor.id, revision=0,
                                     latest_version=initial.version if initial else 0, rolling=_pack(RollingState()),
                                     updated_at=at),
                        condition=_TrafficItem.pk.does_not_exist())
                if initial is not None:
                    tx.save(_plan_item(corridor.id, initial))
                    tx.save(_current_item(corridor.id, InForce(initial.plan, initial.etag,
                                                               created_by=initial.created_by), at))
        except TransactWriteError as exc:
            if _conflict(exc):
                raise AlreadyExists(f"corridor {corridor.id} already exists") from None
            raise

    def corridor(self, corridor_id: str) -> Corridor:
        try:
            item = _TrafficItem.get(_pk(corridor_id), _DEFINITION)
        except _TrafficItem.DoesNotExist:
            raise NotFound(f"no corridor {corridor_id}") from None
        return Corridor.model_validate_json(item.document)

    def exists(self, corridor_id: str) -> bool:
        try:
            _TrafficItem.get(_pk(corridor_id), _DEFINITION, attributes_to_get=["pk"])
        except _TrafficItem.DoesNotExist:
            return False
        return True

    def corridors(self, *, limit: int, start: dict | None) -> Page[Corridor]:
        result = _TrafficItem.gsi1.query(_CORRIDORS, limit=limit, page_size=limit, last_evaluated_key=start)
        return page_of(result, lambda item: Corridor.model_validate_json(item.document),
                       ("pk", "sk", "gsi1pk", "gsi1sk"))

    # -- reading a corridor's state -------------------------------------------------------------

    def head(self, corridor_id: str, batch_id: str | None = None) -> Head:
        """Definition, state, pointer and (with a batch id) whether that batch was seen: one consistent read."""
        pk = _pk(corridor_id)
        keys = [(pk, _DEFINITION), (pk, _STATE), (pk, _CURRENT)]
        if batch_id is not None:
            keys.append((pk, f"BATCH#{batch_id}"))
        found = {item.sk: item for item in _TrafficItem.batch_get(keys, consistent_read=True)}
        if _DEFINITION not in found or _STATE not in found:
            raise NotFound(f"no corridor {corridor_id}")
        state = found[_STATE]
        return Head(
            corridor=Corridor.model_validate_json(found[_DEFINITION].document),
            revision=int(state.revision),
            rolling=_unpack(state.rolling),
            latest_version=int(state.latest_version or 0),
            candidate_version=int(state.candidate_version) if state.candidate_version is not None else None,
            current=_in_force(found.get(_CURRENT)),
            batch_seen=batch_id is not None and f"BATCH#{batch_id}" in found,
        )

    def snapshots(self, corridor_ids: Iterable[str]) -> dict[str, Snapshot]:
        """Corridors as their status shows them (no readings), in one batch read however many there are."""
        ids = list(dict.fromkeys(corridor_ids))
        keys = [(_pk(c), sk) for c in ids for sk in (_DEFINITION, _STATE, _CURRENT)]
        found: dict[str, dict[str, _TrafficItem]] = {}
        for item in _TrafficItem.batch_get(keys, attributes_to_get=_STATUS_ATTRIBUTES):
            found.setdefault(item.pk, {})[item.sk] = item
        out = {}
        for c in ids:
            items = found.get(_pk(c), {})
            if _DEFINITION not in items or _STATE not in items:
                continue
            state = items[_STATE]
            out[c] = Snapshot(
                corridor=Corridor.model_validate_json(items[_DEFINITION].document),
                current=_in_force(items.get(_CURRENT)),
                latest_version=int(state.latest_version or 0),
                candidate_version=int(state.candidate_version) if state.candidate_version is not None else None,
                flows=Flows.model_validate_json(state.flows) if state.flows else None,
                last_batch_id=state.last_batch_id, last_batch_at=state.last_batch_at,
            )
        return out

    def current(self, corridor_id: str, *, consistent: bool = False) -> InForce | None:
        try:
            return _in_force(_TrafficItem.get(_pk(corridor_id), _CURRENT, consistent_read=consistent))
        except _TrafficItem.DoesNotExist:
            return None

    # -- changing a corridor -------------------------------------------------------------------

    def commit(self, change: Change) -> bool:
        """Write a change if the corridor is still at `expected_revision`; False if someone changed it first
        (or the batch was ingested meanwhile). Nothing is written then."""
        c, pk = change.corridor_id, _pk(change.corridor_id)
        actions = [
            _TrafficItem.revision.set(change.expected_revision + 1),
            _TrafficItem.latest_version.set(change.latest_version),
            _TrafficItem.updated_at.set(change.at),
            (_TrafficItem.candidate_version.set(change.candidate_version) if change.candidate_version is not None
             else _TrafficItem.candidate_version.remove()),
        ]
        if change.rolling is not None:
            actions.append(_TrafficItem.rolling.set(_pack(change.rolling)))
        if change.flows is not None:
            actions.append(_TrafficItem.flows.set(change.flows.model_dump_json()))
        if change.batch_id is not None:
            actions += [_TrafficItem.last_batch_id.set(change.batch_id), _TrafficItem.last_batch_at.set(change.at)]
        try:
            with TransactWrite(connection=connection()) as tx:
                tx.update(_TrafficItem(pk, _STATE), actions=actions,
                          condition=_TrafficItem.revision == change.expected_revision)
                if change.batch_id is not None:
                    tx.save(_TrafficItem(pk, f"BATCH#{change.batch_id}", kind="batch", corridor_id=c,
                                         batch_id=change.batch_id, created_at=change.at,
                                         expires_at=change.batch_expires_at),
                            condition=_TrafficItem.pk.does_not_exist())
                if change.flows is not None and change.batch_id is not None:
                    tx.save(_TrafficItem(
                        pk, f"FLOWS#{_stamp(change.flows.window_end)}#{change.batch_id}", kind="flows",
                        corridor_id=c, batch_id=change.batch_id, flows=change.flows.model_dump_json(),
                        aggregates=change.aggregates.model_dump_json() if change.aggregates else None,
                        created_at=change.at, expires_at=change.history_expires_at,
                    ))
                if change.new_plan is not None:
                    tx.save(_plan_item(c, change.new_plan), condition=_TrafficItem.pk.does_not_exist())
                if change.current is not None:
                    tx.save(_current_item(c, change.current, change.at))
        except TransactWriteError as exc:
            if _conflict(exc):
                return False
            raise
        return True

    def set_diagram(self, corridor_id: str, version: int, key: str) -> None:
        """Note where a plan's diagram is; on the pointer too while that plan is in force."""
        pk = _pk(corridor_id)
        try:
            _TrafficItem(pk, _plan_sk(version)).update(actions=[_TrafficItem.diagram_key.set(key)],
                                                       condition=_TrafficItem.pk.exists())
            _TrafficItem(pk, _CURRENT).update(actions=[_TrafficItem.diagram_key.set(key)],
                                              condition=_TrafficItem.version == version)
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    # -- plans ---------------------------------------------------------------------------------

    def plan(self, corridor_id: str, version: int) -> StoredPlan | None:
        try:
            return _stored(_TrafficItem.get(_pk(corridor_id), _plan_sk(version)))
        except _TrafficItem.DoesNotExist:
            return None

    def plans(self, corridor_id: str, *, limit: int, start: dict | None,
              current_version: int | None = None) -> Page[StoredPlan]:
        """Plan versions, newest first."""
        result = _TrafficItem.query(_pk(corridor_id), _TrafficItem.sk.startswith("PLAN#"), scan_index_forward=False,
                                    limit=limit, page_size=limit, last_evaluated_key=start)
        return page_of(result, lambda item: _stored(item, current_version), ("pk", "sk"))

    # -- history and rejections ------------------------------------------------------------------

    def aggregates(self, corridor_id: str, *, limit: int = 20) -> list[CorridorAggregates]:
        """Per batch window, newest window first: the aggregates stored when the batch came in."""
        result = _TrafficItem.query(_pk(corridor_id), _TrafficItem.sk.startswith("FLOWS#"), scan_index_forward=False,
                                    limit=limit)
        return [CorridorAggregates.model_validate_json(i.aggregates) for i in result if i.aggregates]

    def add_rejection(self, rejection: Rejection, expires_at: datetime) -> None:
        _TrafficItem(
            _pk(rejection.corridor_id), f"REJECTED#{_stamp(rejection.at)}#{rejection.batch_id}", kind="rejected",
            corridor_id=rejection.corridor_id, batch_id=rejection.batch_id, code=rejection.code,
            message=rejection.message[:2000], problems=json.dumps([list(p) for p in rejection.problems[:200]],
                                                                  ensure_ascii=False),
            raw_key=rejection.raw_key, created_at=rejection.at, expires_at=expires_at,
        ).save()

    def rejections(self, corridor_id: str, *, limit: int = 20) -> list[Rejection]:
        """Refused batches, newest first."""
        result = _TrafficItem.query(_pk(corridor_id), _TrafficItem.sk.startswith("REJECTED#"),
                                    scan_index_forward=False, limit=limit)
        return [_rejection(i) for i in result]
