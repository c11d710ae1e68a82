"""Signal corridors as a service: sensor batches in, versioned plans out, engineers able to hold or override.

`ingest` is all or nothing. The batch is validated and the corridor retimed in memory (sunflower.traffic.engine,
pure); the raw batch goes to S3; then one DynamoDB transaction, conditioned on the corridor's revision,
writes the batch marker, the flows, the new plan and pointer and the new rolling state. Two batches at
once: one transaction wins, the other re-reads and recomputes on top of it, so neither is lost. Any
domain error leaves everything as it was (the plan in force stays); a repeated batch id is a no-op.

A pinned or overridden corridor keeps ingesting and keeps the newest retimed plan as a candidate; the plan
in force changes only when an engineer unpins (then the candidate, if there is one, goes into force).

numpy and scipy (retiming) and matplotlib (diagrams) are imported only where they run: the API function,
which has neither, reads and pins plans with this same service.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from sunflower.audit.models import AuditAction, AuditEvent
from sunflower.audit.service import AuditService
from sunflower.auth.principals import SYSTEM, Principal, Role
from sunflower.common.clock import Clock
from sunflower.common.cursors import Page
from sunflower.common.errors import (
    DomainError,
    FieldProblem,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from sunflower.traffic import manual, timing
from sunflower.traffic import status as corridor_status
from sunflower.traffic.bandwidth import plan_bandwidth
from sunflower.traffic.errors import DuplicateBatch, InvalidCorridor, NoFeasibleCycle
from sunflower.traffic.export import sumo_tllogic_xml
from sunflower.traffic.flows import parse_batch
from sunflower.traffic.models import Corridor, Plan, Reason, SensorBatch
from sunflower.traffic.objects import BatchQueue, TrafficObjects, diagram_key, raw_key, rejected_key
from sunflower.traffic.records import (
    CorridorStatus,
    Head,
    InForce,
    IngestResult,
    Outcome,
    Pin,
    PinMode,
    Rejection,
    RollingState,
    StoredPlan,
    plan_etag,
)
from sunflower.traffic.repository import Change, TrafficRepository
from sunflower.traffic.status import CorridorAggregates

logger = logging.getLogger("sunflower.traffic")

Publish = Callable[..., None]
READERS = (Role.TRAFFIC_ENGINEER, Role.ADMIN, Role.OFFICIAL)
CREATORS = (Role.TRAFFIC_ENGINEER, Role.ADMIN)
ENGINEERS = (Role.TRAFFIC_ENGINEER,)
_CORRIDOR_ID = re.compile(r"^[\w.:-]{1,64}$")
_MAX_REASON = 500


class ConcurrentChange(RuntimeError):
    """The corridor kept changing under us; a transient failure (the batch is retried by its queue)."""


class TrafficService:
    def __init__(
        self,
        repository: TrafficRepository,
        objects: TrafficObjects,
        queue: BatchQueue,
        audit: AuditService,
        clock: Clock,
        *,
        publish: Publish,
        window_s: float = 900.0,
        min_change_s: float = 3.0,
        batch_retention_days: int = 30,
        history_retention_days: int = 35,
        rejection_retention_days: int = 90,
        diagram_url_expires_s: int = 900,
        max_attempts: int = 10,
    ) -> None:
        self._repo = repository
        self._objects = objects
        self._queue = queue
        self._audit = audit
        self._clock = clock
        self._publish = publish
        self._window_s = window_s
        self._min_change_s = min_change_s
        self._batch_ttl = timedelta(days=batch_retention_days)
        self._history_ttl = timedelta(days=history_retention_days)
        self._rejection_ttl = timedelta(days=rejection_retention_days)
        self._url_expires_s = diagram_url_expires_s
        self._max_attempts = max_attempts

    # -- corridors ---------------------------------------------------------------------------------

    def create_corridor(self, actor: Principal, corridor: Corridor | str, *, initial_plan: Plan | str | None = None,
                        purpose: str = "") -> Corridor:
        """A new corridor (e.g. `sunflower traffic import-sumo` output), with the plan its signals run now, if known."""
        _require(actor, CREATORS, "creating a corridor")
        corridor = _parse_corridor(corridor)
        _check_feasible(corridor)
        plan = _parse_initial(corridor, initial_plan, self._clock()) if initial_plan is not None else None
        initial = StoredPlan(plan, plan_etag(plan), actor.audit_name) if plan else None
        self._audit.record(AuditEvent.by(
            actor, AuditAction.CREATE, "traffic_corridor", corridor.id, purpose.strip() or "create signal corridor",
            intersections=str(len(corridor.intersections)),
            initial_plan=str(plan.version) if plan else "none",
        ))
        self._repo.add_corridor(corridor, created_by=actor.audit_name, at=self._clock(), initial=initial)
        if initial is not None:
            self._draw(corridor, initial.plan)
        return corridor

    def corridor(self, viewer: Principal, corridor_id: str) -> Corridor:
        _require(viewer, READERS, "reading corridors")
        return self._repo.corridor(corridor_id)

    def corridors(self, viewer: Principal, *, limit: int, start: dict | None) -> Page[Corridor]:
        _require(viewer, READERS, "reading corridors")
        return self._repo.corridors(limit=limit, start=start)

    # -- sensor batches ------------------------------------------------------------------------------

    def enqueue(self, device_site_id: str, body: bytes) -> SensorBatch:
        """A sensor's batch, checked for shape only, onto the queue the traffic function reads (202 Accepted)."""
        batch = parse_batch(body)
        if batch.corridor_id != device_site_id:
            raise PermissionDenied(f"this sensor belongs to corridor {device_site_id}, not {batch.corridor_id}")
        if not self._repo.exists(batch.corridor_id):
            raise NotFound(f"no corridor {batch.corridor_id}")
        self._queue.send(body, batch_id=batch.batch_id, corridor_id=batch.corridor_id)
        return batch

    def receive(self, body: str | bytes) -> IngestResult:
        """Ingest a batch as it came off a queue or stream. A batch that can never be accepted (malformed,
        impossible, for an unknown corridor...) is recorded as rejected with its raw body and not raised:
        retrying it would fail the same way. Anything else (AWS unavailable, contention) raises."""
        try:
            return self.ingest(body)
        except DuplicateBatch:
            corridor_id, batch_id = _ids_of(body.encode() if isinstance(body, str) else body)
            return IngestResult(corridor_id, batch_id, Outcome.DUPLICATE)
        except DomainError as exc:
            rejection = self.reject(body, exc)
            return IngestResult(rejection.corridor_id, rejection.batch_id, Outcome.REJECTED,
                                raw_key=rejection.raw_key)

    def ingest(self, batch: SensorBatch | str | bytes) -> IngestResult:
        """Validate, keep and retime; raises the domain error of a bad batch, having written nothing."""
        raw = batch.encode() if isinstance(batch, str) else batch if isinstance(batch, bytes) else None
        if raw is not None:
            batch = parse_batch(raw)
        from sunflower.traffic import engine  # numpy and scipy: only where retiming runs

        settings = engine.Settings(window_s=self._window_s, min_change_s=self._min_change_s)
        key = raw_key(batch.corridor_id, min(r.interval_start for r in batch.readings), batch.batch_id)
        written = False
        for attempt in range(1, self._max_attempts + 1):
            head = self._repo.head(batch.corridor_id, batch.batch_id)
            if head.batch_seen or batch.batch_id in head.rolling.seen_batch_ids:
                logger.info("duplicate traffic batch ignored", extra={"corridor_id": batch.corridor_id,
                                                                      "batch_id": batch.batch_id})
                return IngestResult(batch.corridor_id, batch.batch_id, Outcome.DUPLICATE, in_force=head.current,
                                    attempts=attempt)
            now = self._clock()
            state = engine.CorridorState(
                corridor=head.corridor, plan=head.current.plan if head.current else None,
                readings=head.rolling.readings, last_interval_end=head.rolling.last_interval_end,
                seen_batch_ids=head.rolling.seen_batch_ids,
            )
            result = engine.ingest(state, batch, now=now, settings=settings)  # a bad batch raises here
            new_plan, current, candidate = self._proposal(head, result.plan, engine)
            in_force = current or head.current
            aggregates = corridor_status.aggregate(head.corridor, result.flows, in_force.plan if in_force else None)
            if not written:  # before the state changes: a batch in the state always has its raw copy
                self._objects.put_json(key, raw if raw is not None else batch.model_dump_json().encode())
                written = True
            change = Change(
                corridor_id=head.corridor.id, expected_revision=head.revision, at=now,
                latest_version=new_plan.version if new_plan else head.latest_version, candidate_version=candidate,
                rolling=RollingState(readings=result.state.readings, last_interval_end=result.state.last_interval_end,
                                     seen_batch_ids=result.state.seen_batch_ids),
                batch_id=batch.batch_id, batch_expires_at=now + self._batch_ttl, flows=result.flows,
                aggregates=aggregates, history_expires_at=now + self._history_ttl, new_plan=new_plan, current=current,
            )
            if self._repo.commit(change):
                break
            _backoff(attempt)
        else:
            raise ConcurrentChange(f"corridor {batch.corridor_id} changed {self._max_attempts} times while batch "
                                   f"{batch.batch_id} was being ingested; it will be retried")
        logger.info("traffic batch ingested", extra={
            "corridor_id": batch.corridor_id, "batch_id": batch.batch_id, "readings": len(batch.readings),
            "attempts": attempt, "new_plan": new_plan.version if new_plan else None,
            "in_force": in_force.version if in_force else None,
        })
        if new_plan is not None:
            self._announce(head.corridor.id, new_plan, in_force)
            self._draw(head.corridor, new_plan.plan)
        if in_force is not None and in_force.diagram_key is None and (new_plan is None or
                                                                      new_plan.version != in_force.version):
            self._draw(head.corridor, in_force.plan)  # e.g. an override made where matplotlib is not installed
        return IngestResult(batch.corridor_id, batch.batch_id, Outcome.ACCEPTED, in_force=in_force, new_plan=new_plan,
                            raw_key=key, attempts=attempt)

    def _proposal(self, head: Head, retimed: Plan | None, engine: Any
                  ) -> tuple[StoredPlan | None, InForce | None, int | None]:
        """(plan to store, new pointer, candidate version) for what retiming proposed."""
        if retimed is None:
            return None, None, head.candidate_version
        pinned = head.current is not None and head.current.pin is not None
        if pinned and head.candidate_version is not None:
            last = self._repo.plan(head.corridor.id, head.candidate_version)
            if last is not None and not engine.material_change(last.plan, retimed, self._min_change_s):
                return None, None, head.candidate_version  # the same candidate again: not worth a version
        # Versions are the store's: retiming numbers from the plan in force, which a pin holds back.
        plan = retimed.model_copy(update={"version": head.latest_version + 1})
        stored = StoredPlan(plan, plan_etag(plan), SYSTEM.audit_name)
        if pinned:
            return stored, None, plan.version
        return stored, InForce(plan, stored.etag), None

    def reject(self, body: str | bytes, error: DomainError) -> Rejection:
        """Keep a batch that can never be accepted, and why, so that nothing sent is lost."""
        raw = body.encode() if isinstance(body, str) else body
        corridor_id, batch_id = _ids_of(raw)
        now = self._clock()
        key = rejected_key(corridor_id, now, batch_id)
        self._objects.put_json(key, raw)
        rejection = Rejection(corridor_id, batch_id, now, error.code, error.message,
                              tuple((p.field, p.message) for p in error.problems), key)
        self._repo.add_rejection(rejection, now + self._rejection_ttl)
        logger.warning("traffic batch rejected", extra={
            "corridor_id": corridor_id, "batch_id": batch_id, "code": error.code, "error": error.message[:500],
        })
        return rejection

    def flow_history(self, viewer: Principal, corridor_id: str, *, limit: int = 20) -> list[CorridorAggregates]:
        """Per batch window, newest first: the flows and per-intersection aggregates as each batch left them."""
        _require(viewer, READERS, "reading corridors")
        return self._repo.aggregates(corridor_id, limit=limit)

    def rejections(self, viewer: Principal, corridor_id: str, *, limit: int = 20) -> list[Rejection]:
        _require(viewer, READERS, "reading rejected batches")
        return self._repo.rejections(corridor_id, limit=limit)

    # -- plans -----------------------------------------------------------------------------------------

    def current_plan(self, corridor_id: str) -> tuple[Plan, str]:
        """The plan in force and its ETag, for controllers (authenticated by their endpoint) and the system."""
        current = self.in_force(corridor_id)
        return current.plan, current.etag

    def in_force(self, corridor_id: str) -> InForce:
        current = self._repo.current(corridor_id)
        if current is None:
            raise NotFound(f"corridor {corridor_id} has no plan in force" if self._repo.exists(corridor_id)
                           else f"no corridor {corridor_id}")
        return current

    def plan_history(self, viewer: Principal, corridor_id: str, *, limit: int, start: dict | None) -> Page[StoredPlan]:
        """Every plan version of the corridor, newest first, each marked whether it is in force."""
        _require(viewer, READERS, "reading plans")
        current = self._repo.current(corridor_id)
        if current is None and not self._repo.exists(corridor_id):
            raise NotFound(f"no corridor {corridor_id}")
        return self._repo.plans(corridor_id, limit=limit, start=start,
                                current_version=current.version if current else None)

    def plan(self, viewer: Principal, corridor_id: str, version: int) -> StoredPlan:
        _require(viewer, READERS, "reading plans")
        stored = self._repo.plan(corridor_id, version)
        if stored is None:
            raise NotFound(f"corridor {corridor_id} has no plan version {version}")
        current = self._repo.current(corridor_id)
        return StoredPlan(stored.plan, stored.etag, stored.created_by, stored.diagram_key,
                          in_force=current is not None and current.version == version)

    def diagram_url(self, viewer: Principal, diagram: str | None) -> str | None:
        """A presigned link to a plan's time-space diagram (SVG); None until the traffic function drew it."""
        _require(viewer, READERS, "reading plans")
        return self._objects.download_url(diagram, expires_s=self._url_expires_s) if diagram else None

    def sumo_xml(self, corridor: Corridor, plan: Plan) -> str | None:
        """The plan as a SUMO tlLogic additional file; None for a corridor not mapped to SUMO signals."""
        if any(i.sumo_link_count <= 0 for i in corridor.intersections):
            return None
        return sumo_tllogic_xml(corridor, plan)

    # -- status ------------------------------------------------------------------------------------------

    def status(self, viewer: Principal, corridor_id: str) -> CorridorStatus:
        found = self.statuses(viewer, [corridor_id])
        if corridor_id not in found:
            raise NotFound(f"no corridor {corridor_id}")
        return found[corridor_id]

    def statuses(self, viewer: Principal, corridor_ids: list[str]) -> dict[str, CorridorStatus]:
        """Flows, degree of saturation and delay per intersection under the plan in force now (one read for all)."""
        _require(viewer, READERS, "reading corridors")
        out = {}
        for corridor_id, snap in self._repo.snapshots(corridor_ids).items():
            plan = snap.current.plan if snap.current else None
            out[corridor_id] = CorridorStatus(
                corridor=snap.corridor, current=snap.current,
                aggregates=corridor_status.aggregate(snap.corridor, snap.flows, plan),
                latest_version=snap.latest_version, candidate_version=snap.candidate_version,
                last_batch_id=snap.last_batch_id, last_batch_at=snap.last_batch_at,
            )
        return out

    # -- engineers: pin, override, unpin -------------------------------------------------------------

    def pin(self, actor: Principal, corridor_id: str, version: int, reason: str) -> InForce:
        """Hold a stored version in force; retiming goes on as candidates until `unpin`."""
        _require(actor, ENGINEERS, "pinning a plan")
        reason = _reason(reason)
        stored = self._repo.plan(corridor_id, version)
        if stored is None:
            raise NotFound(f"corridor {corridor_id} has no plan version {version}")
        self._audit.record(AuditEvent.by(actor, AuditAction.UPDATE, "traffic_corridor", corridor_id, reason,
                                         change="pin_plan", version=str(version)))

        def change(head: Head, now: datetime) -> tuple[Change, InForce]:
            pinned = InForce(stored.plan, stored.etag, Pin(PinMode.PINNED, actor.audit_name, reason, now),
                             stored.diagram_key, stored.created_by)
            return Change(corridor_id=corridor_id, expected_revision=head.revision, at=now,
                          latest_version=head.latest_version, candidate_version=None, current=pinned), pinned

        current = self._change(corridor_id, change)
        self._announce_in_force(corridor_id, current)
        return current

    def override(self, actor: Principal, corridor_id: str, plan_json: str, reason: str) -> InForce:
        """Put a plan an engineer wrote into force (checked like a retimed one) and hold it there until `unpin`."""
        _require(actor, ENGINEERS, "overriding a plan")
        reason = _reason(reason)
        head = self._repo.head(corridor_id)
        now = self._clock()
        why = (Reason(code="override", message=f"set by {actor.audit_name}: {reason}"),)
        plan = manual.parse_plan(plan_json, head.corridor, version=head.latest_version + 1, created_at=now,
                                 previous_version=head.current.version if head.current else None, reasons=why)
        plan = _with_bandwidth(head.corridor, plan)
        self._audit.record(AuditEvent.by(actor, AuditAction.UPDATE, "traffic_corridor", corridor_id, reason,
                                         change="override_plan", cycle_s=f"{plan.cycle_s:g}"))
        made: list[StoredPlan] = []

        def change(head: Head, now: datetime) -> tuple[Change, InForce]:
            numbered = plan.model_copy(update={"version": head.latest_version + 1, "inputs": plan.inputs.model_copy(
                update={"previous_version": head.current.version if head.current else None})})
            stored = StoredPlan(numbered, plan_etag(numbered), actor.audit_name)
            made[:] = [stored]
            overridden = InForce(numbered, stored.etag, Pin(PinMode.OVERRIDDEN, actor.audit_name, reason, now),
                                 created_by=actor.audit_name)
            return Change(corridor_id=corridor_id, expected_revision=head.revision, at=now,
                          latest_version=numbered.version, candidate_version=None, new_plan=stored,
                          current=overridden), overridden

        current = self._change(corridor_id, change)
        self._announce(corridor_id, made[0], current)
        self._draw(head.corridor, current.plan)
        return current

    def unpin(self, actor: Principal, corridor_id: str, reason: str) -> InForce:
        """Let retiming drive the corridor again: the newest candidate (if any) goes into force at once."""
        _require(actor, ENGINEERS, "unpinning a plan")
        reason = _reason(reason)
        head = self._repo.head(corridor_id)
        if head.current is None or head.current.pin is None:
            raise InvalidState(f"corridor {corridor_id} is not pinned or overridden")
        self._audit.record(AuditEvent.by(actor, AuditAction.UPDATE, "traffic_corridor", corridor_id, reason,
                                         change="unpin_plan", version=str(head.current.version)))

        def change(head: Head, now: datetime) -> tuple[Change, InForce]:
            current = head.current
            if current is None or current.pin is None:
                raise InvalidState(f"corridor {corridor_id} was unpinned meanwhile")
            candidate = self._repo.plan(corridor_id, head.candidate_version) if head.candidate_version else None
            if candidate is not None:
                released = InForce(candidate.plan, candidate.etag, None, candidate.diagram_key, candidate.created_by)
            else:
                released = InForce(current.plan, current.etag, None, current.diagram_key, current.created_by)
            return Change(corridor_id=corridor_id, expected_revision=head.revision, at=now,
                          latest_version=head.latest_version, candidate_version=None, current=released), released

        current = self._change(corridor_id, change)
        self._announce_in_force(corridor_id, current)
        return current

    def _change(self, corridor_id: str, build: Callable[[Head, datetime], tuple[Change, InForce]]) -> InForce:
        for attempt in range(1, self._max_attempts + 1):
            head = self._repo.head(corridor_id)
            change, current = build(head, self._clock())
            if self._repo.commit(change):
                return current
            _backoff(attempt)
        raise ConcurrentChange(f"corridor {corridor_id} kept changing; try again")

    # -- after a change: events and diagrams ---------------------------------------------------------

    def _announce(self, corridor_id: str, stored: StoredPlan, in_force: InForce | None) -> None:
        plan = stored.plan
        now_in_force = in_force is not None and in_force.version == plan.version
        self._emit("TrafficPlanCreated", {
            "corridorId": corridor_id, "version": plan.version, "etag": stored.etag, "source": plan.source,
            "inForce": now_in_force, "cycleS": plan.cycle_s, "bandwidthForwardS": plan.bandwidth_forward_s,
            "bandwidthReverseS": plan.bandwidth_reverse_s, "previousVersion": plan.inputs.previous_version,
            "createdAt": plan.created_at.isoformat(),
        }, corridor_id)
        if now_in_force:
            self._announce_in_force(corridor_id, in_force)

    def _announce_in_force(self, corridor_id: str, current: InForce) -> None:
        self._emit("TrafficPlanInForce", {
            "corridorId": corridor_id, "version": current.version, "etag": current.etag,
            "source": current.plan.source, "cycleS": current.plan.cycle_s,
            "pin": current.pin.mode.value if current.pin else None,
            "pinnedBy": current.pin.by if current.pin else None,
        }, corridor_id)

    def _emit(self, detail_type: str, detail: Mapping[str, Any], corridor_id: str) -> None:
        # After the commit: a failure here must not undo or repeat the change (a retried batch would be a
        # duplicate and never announce). Controllers poll their endpoint anyway; the event is a hint.
        try:
            self._publish(detail_type, detail)
        except Exception:
            logger.exception("could not publish %s for corridor %s", detail_type, corridor_id)

    def _draw(self, corridor: Corridor, plan: Plan) -> None:
        """Render the plan's time-space diagram once, where matplotlib is installed (the traffic function)."""
        try:
            from sunflower.traffic.diagram import time_space_diagram
        except ImportError:
            return  # the API function: the traffic function draws it with the next batch
        key = diagram_key(corridor.id, plan.version)
        try:
            self._objects.put_svg(key, time_space_diagram(corridor, plan, fmt="svg"))
            self._repo.set_diagram(corridor.id, plan.version, key)
        except Exception:
            logger.exception("could not draw the diagram of plan %s of corridor %s", plan.version, corridor.id)


# -- checks ---------------------------------------------------------------------------------------------


def _require(actor: Principal | None, roles: tuple[Role, ...], what: str) -> None:
    if actor is None or not actor.has_any(*roles):
        raise PermissionDenied(f"{what} needs one of the roles: {', '.join(r.value for r in roles)}")


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason or len(reason) > _MAX_REASON:
        raise ValidationFailed.on("reason", f"say why, in 1 to {_MAX_REASON} characters; it is kept in the audit log")
    return reason


def _problems(exc: ValidationError, root: str) -> tuple[FieldProblem, ...]:
    return tuple(FieldProblem(".".join(str(p) for p in e["loc"]) or root, e["msg"]) for e in exc.errors())


def _parse_corridor(corridor: Corridor | str) -> Corridor:
    if isinstance(corridor, str):
        try:
            corridor = Corridor.model_validate_json(corridor)
        except ValidationError as exc:
            problems = _problems(exc, "corridor")
            raise InvalidCorridor(f"the corridor is not valid: {problems[0].field}: {problems[0].message}",
                                  problems=problems) from None
    if not _CORRIDOR_ID.match(corridor.id):
        raise InvalidCorridor.on("id", "1 to 64 letters, digits, '_', '-', '.' or ':'")
    if corridor.cycle_min_s > corridor.cycle_max_s:
        raise InvalidCorridor.on("cycle_min_s", f"is more than cycle_max_s ({corridor.cycle_max_s:g} s)")
    return corridor


def _check_feasible(corridor: Corridor) -> None:
    """Some cycle must fit every intersection's minimum greens and clearances (omittable phases left out)."""
    for i in corridor.intersections:
        model = timing.resolve(i, omit=frozenset(p.name for p in i.phases if p.omittable))
        low = max(corridor.cycle_min_s, i.cycle_min_s or 0.0, model.min_cycle_s)
        high = min(corridor.cycle_max_s, i.cycle_max_s or corridor.cycle_max_s)
        if low > high + 1e-9:
            raise NoFeasibleCycle(
                f"intersection {i.id}: minimum greens and clearances need a cycle of at least {low:g} s, but at most "
                f"{high:g} s is allowed; raise the cycle bounds or shorten the minimum greens"
            )


def _parse_initial(corridor: Corridor, plan: Plan | str, now: datetime) -> Plan:
    """The plan the signals run now: a whole Plan, or controller JSON (`import-sumo --plan-out`), as it is."""
    if isinstance(plan, str):
        try:
            data = json.loads(plan)
        except json.JSONDecodeError as exc:
            raise ValidationFailed.on("initialPlan", f"is not valid JSON ({exc})") from None
        if isinstance(data, dict) and "timings" not in data:
            version = data.get("version", 0)
            return _with_bandwidth(corridor, manual.parse_plan(
                plan, corridor, version=version if isinstance(version, int) and version >= 0 else 0, created_at=now,
                previous_version=None, strict=False, source="imported",
                reasons=(Reason(code="imported", message="the plan the signals ran when the corridor was created"),),
            ))
        try:
            plan = Plan.model_validate(data)
        except ValidationError as exc:
            problems = _problems(exc, "initialPlan")
            raise ValidationFailed(f"the initial plan is not valid: {problems[0].field}: {problems[0].message}",
                                   problems=problems) from None
    manual.check_covers(corridor, plan)
    return _with_bandwidth(corridor, plan) if plan.bandwidth_s == 0 else plan


def _with_bandwidth(corridor: Corridor, plan: Plan) -> Plan:
    forward, reverse = plan_bandwidth(corridor, plan)
    return plan.model_copy(update={"bandwidth_forward_s": round(forward, 2), "bandwidth_reverse_s": round(reverse, 2)})


def _ids_of(raw: bytes) -> tuple[str, str]:
    """(corridor id, batch id) of a batch however broken it is; placeholders where they cannot be read."""
    import hashlib

    corridor_id, batch_id = "_unknown", ""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        value = None
    if isinstance(value, dict):
        if isinstance(value.get("corridor_id"), str) and value["corridor_id"].strip():
            corridor_id = value["corridor_id"][:64]
        if isinstance(value.get("batch_id"), str) and value["batch_id"].strip():
            batch_id = value["batch_id"][:128]
    return corridor_id, batch_id or f"sha256-{hashlib.sha256(raw).hexdigest()[:24]}"


def _backoff(attempt: int) -> None:
    # Full jitter: two functions retrying the same corridor at once would otherwise collide again.
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
