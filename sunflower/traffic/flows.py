"""Sensor batches in, rolling flows out: validation of every bad-input case, then flows per lane and movement."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import AwareDatetime, ValidationError

from sunflower.common.errors import FieldProblem
from sunflower.traffic.errors import (
    DuplicateBatch,
    FutureInterval,
    ImpossibleReading,
    MalformedBatch,
    OverlappingInterval,
    TrafficInputError,
    UnknownDetector,
    WrongCorridor,
)
from sunflower.traffic.models import Corridor, SensorBatch, SensorReading, _Model

MAX_INTERVAL_S = 3600.0
MAX_SPEED_KMH = 250.0
CLOCK_SKEW_S = 5.0


def lane_key(intersection_id: str, lane_id: str) -> str:
    return f"{intersection_id}/{lane_id}"


def parse_batch(body: str | bytes) -> SensorBatch:
    """The wire format, with pydantic's complaints turned into a domain error naming each field."""
    try:
        return SensorBatch.model_validate_json(body)
    except ValidationError as exc:
        problems = tuple(
            FieldProblem(".".join(str(p) for p in err["loc"]) or "body", err["msg"]) for err in exc.errors()
        )
        raise MalformedBatch("the sensor batch is malformed", problems=problems) from None


def validate_batch(corridor: Corridor, batch: SensorBatch, *, now: datetime,
                   last_interval_end: Mapping[str, datetime] | None = None,
                   reported: Mapping[str, Sequence[tuple[datetime, datetime]]] | None = None,
                   reported_since: datetime | None = None,
                   seen_batch_ids: Container[str] = ()) -> None:
    """Raise the domain error for the first kind of problem found, listing every problem of the batch.

    A detector's readings come in order, but a batch may arrive late: a reading that starts before its
    detector's last reported end is taken if it overlaps none of that detector's `reported` intervals,
    which hold everything reported from `reported_since` on (older readings are no longer kept, so a
    reading that starts before it can be neither checked nor used)."""
    if batch.batch_id in seen_batch_ids:
        raise DuplicateBatch(f"batch {batch.batch_id} was already ingested; the current plan stays in force")
    if batch.corridor_id != corridor.id:
        raise WrongCorridor.at("corridor_id", f"batch is for corridor {batch.corridor_id}, not {corridor.id}")
    last_interval_end = last_interval_end or {}
    found: list[tuple[type[TrafficInputError], FieldProblem]] = []

    def problem(kind: type[TrafficInputError], field: str, message: str) -> None:
        found.append((kind, FieldProblem(field, message)))

    lanes = {lane_key(i.id, lane.id): lane for i in corridor.intersections for lane in i.lanes}
    by_detector: dict[str, list[tuple[int, SensorReading]]] = defaultdict(list)
    for k, r in enumerate(batch.readings):
        at = f"readings[{k}]"
        detector = corridor.detector(r.detector_id)
        if detector is None:
            problem(UnknownDetector, f"{at}.detector_id", f"unknown detector {r.detector_id!r} on corridor {corridor.id}")
            continue
        if not 0 < r.interval_s <= MAX_INTERVAL_S:
            problem(ImpossibleReading, f"{at}.interval_s", f"must be more than 0 and at most {MAX_INTERVAL_S:g} s")
            continue
        lane = lanes[lane_key(detector.intersection_id, detector.lane_id)]
        most = int(lane.max_flow_vph * r.interval_s / 3600.0) + 1  # +1: a vehicle on the loop at each end
        if r.count < 0:
            problem(ImpossibleReading, f"{at}.count", f"negative count {r.count}")
        elif r.count > most:
            problem(ImpossibleReading, f"{at}.count",
                    f"{r.count} vehicles in {r.interval_s:g} s is more than lane {detector.lane_id} can carry "
                    f"(at most {most} at {lane.max_flow_vph:g} veh/h)")
        if not 0.0 <= r.occupancy <= 1.0:
            problem(ImpossibleReading, f"{at}.occupancy", f"occupancy {r.occupancy} is not a fraction between 0 and 1")
        if r.mean_speed_kmh is not None and not 0.0 <= r.mean_speed_kmh <= MAX_SPEED_KMH:
            problem(ImpossibleReading, f"{at}.mean_speed_kmh", f"mean speed {r.mean_speed_kmh} km/h is impossible")
        if r.interval_end > now + timedelta(seconds=CLOCK_SKEW_S):
            problem(FutureInterval, f"{at}.interval_start",
                    f"interval ends at {r.interval_end.isoformat()}, after now ({now.isoformat()})")
        last = last_interval_end.get(r.detector_id)
        if last is not None and r.interval_start < last:
            clash = next((iv for iv in (reported or {}).get(r.detector_id, ())
                          if r.interval_start < iv[1] and iv[0] < r.interval_end), None)
            if clash is not None:
                problem(OverlappingInterval, f"{at}.interval_start",
                        f"detector {r.detector_id} already reported {clash[0].isoformat()} to {clash[1].isoformat()}")
            elif reported_since is None or r.interval_start < reported_since:
                problem(OverlappingInterval, f"{at}.interval_start",
                        f"detector {r.detector_id} already reported up to {last.isoformat()}; a late reading must "
                        f"start within the rolling window"
                        + (f" (from {reported_since.isoformat()})" if reported_since is not None else ""))
        by_detector[r.detector_id].append((k, r))
    for detector_id, items in by_detector.items():
        items.sort(key=lambda kr: (kr[1].interval_start, kr[0]))
        for (_, a), (k, b) in itertools.pairwise(items):
            if b.interval_start < a.interval_end:
                problem(OverlappingInterval, f"readings[{k}].interval_start",
                        f"detector {detector_id} has overlapping intervals in this batch")
    if found:
        kind = found[0][0]
        problems = tuple(p for _, p in found)
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise kind(f"{first.field}: {first.message}{more}", problems=problems)


class Flows(_Model):
    """Demand per lane over a rolling window, in vehicles per hour, with mean detector occupancy."""

    window_start: AwareDatetime
    window_end: AwareDatetime
    lane_flows_vph: dict[str, float]  # lane_key -> veh/h
    lane_occupancy: dict[str, float]  # lane_key -> fraction
    batch_ids: tuple[str, ...] = ()
    readings: int = 0

    def movement_flows(self, corridor: Corridor) -> dict[str, dict[str, float]]:
        """Lane flows shared evenly among the movements a lane carries, per intersection."""
        out: dict[str, dict[str, float]] = {}
        for i in corridor.intersections:
            flows = {m.name: 0.0 for m in i.movements}
            for lane in i.lanes:
                q = self.lane_flows_vph.get(lane_key(i.id, lane.id))
                if q and lane.movements:
                    for m in lane.movements:
                        flows[m] += q / len(lane.movements)
            out[i.id] = flows
        return out


def rolling_flows(corridor: Corridor, readings: Iterable[SensorReading], *, window_end: datetime,
                  window_s: float = 900.0, batch_ids: tuple[str, ...] = ()) -> Flows:
    """Counts over the last `window_s` seconds, as hourly rates per lane (lanes with no data are absent)."""
    start = window_end - timedelta(seconds=window_s)
    counts: dict[str, float] = defaultdict(float)
    seconds: dict[str, float] = defaultdict(float)
    occupied: dict[str, float] = defaultdict(float)
    used = 0
    detectors = {d.id: d for d in corridor.detectors}
    for r in readings:
        d = detectors.get(r.detector_id)
        if d is None:
            continue
        s = max(r.interval_start, start)
        e = min(r.interval_end, window_end)
        overlap = (e - s).total_seconds()
        if overlap <= 0:
            continue
        share = overlap / r.interval_s
        key = lane_key(d.intersection_id, d.lane_id)
        counts[key] += r.count * share
        seconds[key] += overlap
        occupied[key] += r.occupancy * overlap
        used += 1
    # Several detectors on one lane: their hours add up, so the rate is still per lane.
    return Flows(
        window_start=start, window_end=window_end,
        lane_flows_vph={k: counts[k] * 3600.0 / seconds[k] for k in sorted(seconds) if seconds[k] > 0},
        lane_occupancy={k: occupied[k] / seconds[k] for k in sorted(seconds) if seconds[k] > 0},
        batch_ids=batch_ids, readings=used,
    )
