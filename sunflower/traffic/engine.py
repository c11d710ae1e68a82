"""One corridor's traffic state and what a sensor batch does to it — pure, for the service to persist.

`ingest(state, batch, now=...)` validates the batch against the state (all or nothing), adds its
readings, recomputes the rolling flows and retimes. It returns a new state and, when the signals
should change, the new plan; it never mutates its input, so on any error the caller still holds
the old state and the plan in force stays in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import AwareDatetime, Field

from sunflower.traffic.flows import Flows, rolling_flows, validate_batch
from sunflower.traffic.models import Corridor, Plan, SensorBatch, SensorReading, _Model
from sunflower.traffic.retiming import Limits, retime

SEEN_BATCHES_KEPT = 1000


class CorridorState(_Model):
    corridor: Corridor
    plan: Plan | None = None  # in force
    readings: tuple[SensorReading, ...] = ()  # those still inside the rolling window
    last_interval_end: dict[str, AwareDatetime] = Field(default_factory=dict)  # per detector: its latest reported end
    seen_batch_ids: tuple[str, ...] = ()  # most recent last


class Settings(_Model):
    window_s: float = 900.0  # rolling flows over this long
    min_change_s: float = 3.0  # a plan this close to the one in force is not worth a switch
    limits: Limits = Limits()


@dataclass(frozen=True)
class Ingested:
    state: CorridorState
    flows: Flows
    plan: Plan | None  # a new plan to put in force, or None to keep the current one


def ingest(state: CorridorState, batch: SensorBatch, *, now: datetime, settings: Settings | None = None) -> Ingested:
    settings = settings or Settings()
    reported: dict[str, list[tuple[datetime, datetime]]] = {}
    for r in state.readings:
        reported.setdefault(r.detector_id, []).append((r.interval_start, r.interval_end))
    kept_since = (max(r.interval_end for r in state.readings) - timedelta(seconds=settings.window_s)
                  if state.readings else None)  # readings ending after this are all kept
    validate_batch(state.corridor, batch, now=now, last_interval_end=state.last_interval_end,
                   reported=reported, reported_since=kept_since, seen_batch_ids=set(state.seen_batch_ids))
    window_end = max(r.interval_end for r in batch.readings)
    if state.readings:
        window_end = max(window_end, max(r.interval_end for r in state.readings))
    keep_from = window_end - timedelta(seconds=settings.window_s)
    readings = tuple(r for r in (*state.readings, *batch.readings) if r.interval_end > keep_from)
    last_end = dict(state.last_interval_end)
    for r in batch.readings:
        if r.detector_id not in last_end or r.interval_end > last_end[r.detector_id]:
            last_end[r.detector_id] = r.interval_end
    seen = (*state.seen_batch_ids, batch.batch_id)[-SEEN_BATCHES_KEPT:]
    batch_ids = tuple(dict.fromkeys(b for b in seen[-20:]))
    flows = rolling_flows(state.corridor, readings, window_end=window_end, window_s=settings.window_s,
                          batch_ids=batch_ids)
    candidate = retime(state.corridor, flows, state.plan, settings.limits)
    new_plan = candidate if material_change(state.plan, candidate, settings.min_change_s) else None
    new_state = state.model_copy(update={
        "plan": new_plan or state.plan, "readings": readings, "last_interval_end": last_end,
        "seen_batch_ids": seen,
    })
    return Ingested(state=new_state, flows=flows, plan=new_plan)


def material_change(current: Plan | None, candidate: Plan, tolerance_s: float) -> bool:
    """Whether switching to the candidate is worth it: a different cycle, or a green or offset moved enough."""
    if current is None:
        return True
    if abs(current.cycle_s - candidate.cycle_s) > 1e-9:
        return True
    for new in candidate.timings:
        old = next((t for t in current.timings if t.intersection_id == new.intersection_id), None)
        if old is None or len(old.phases) != len(new.phases):
            return True
        shift = abs((new.offset_s - old.offset_s + new.cycle_s / 2) % new.cycle_s - new.cycle_s / 2)
        if shift >= tolerance_s:
            return True
        if any(abs(a.green_s - b.green_s) >= tolerance_s or a.yellow_s != b.yellow_s or a.all_red_s != b.all_red_s
               for a, b in zip(old.phases, new.phases, strict=True)):
            return True
    return False
