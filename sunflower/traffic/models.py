"""Corridors, sensor batches and signal plans: what they are, independent of storage, API and SUMO.

Every model is an immutable pydantic model so a corridor, a batch and a plan round-trip through
JSON unchanged (`model_dump_json` / `model_validate_json`); that is how storage keeps them.

Conventions:
- The corridor's *forward* direction runs from its first intersection to its last; *reverse* back.
- Within a cycle, local time 0 is the start of the green of the intersection's first phase.
  A plan's `offset_s` is the time, modulo the cycle, at which that green starts, counted from
  the corridor's common reference (the Unix epoch in the field, time 0 in a simulation).
- Flows are vehicles per hour, times seconds, distances metres, speeds km/h unless a name says m/s.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Turn(StrEnum):
    LEFT = "L"
    THROUGH = "T"
    RIGHT = "R"
    UTURN = "U"


Direction = Literal["forward", "reverse"]


class Movement(_Model):
    """A turn from one approach that is signalled as one (e.g. "EB_T": eastbound through)."""

    name: str
    approach: str
    turn: Turn
    speed_kmh: float = Field(default=55.0, gt=0)  # approach speed, for the ITE yellow
    crossing_m: float = Field(default=20.0, ge=0)  # stop line to clear of the junction, for all-red
    arterial: Direction | None = None  # the corridor's own through movement in that direction
    feeds: Direction | None = None  # the arterial direction this movement turns into, if any
    link_indices: tuple[int, ...] = ()  # SUMO signal link indices (for tlLogic export)


class Lane(_Model):
    """An approach lane; shared lanes list every movement they carry."""

    id: str
    approach: str
    movements: tuple[str, ...]
    saturation_flow_vph: float = Field(default=1800.0, gt=0)
    max_flow_vph: float = Field(default=3000.0, gt=0)  # what a lane can physically carry


class Phase(_Model):
    """A stage: a green serving some movements, then its yellow and all-red.

    A movement served by this phase and the next stays green through this phase's clearance.
    `yellow_s`/`all_red_s` of None mean "from the ITE kinematic formula".
    """

    name: str
    movements: tuple[str, ...]  # protected (SUMO 'G')
    permissive: tuple[str, ...] = ()  # permitted, yielding (SUMO 'g')
    # red, but may turn after stopping while this phase and its clearance run: China's road traffic law lets
    # right turns go on red unless an arrow says otherwise (SUMO 's', netconvert's traffic_light_right_on_red)
    turn_on_red: tuple[str, ...] = ()
    min_green_s: float = Field(default=5.0, ge=0)
    ped_crossing_m: float = Field(default=0.0, ge=0)  # pedestrians cross this far during the green
    max_green_s: float | None = Field(default=None, gt=0)
    yellow_s: float | None = Field(default=None, ge=0)
    all_red_s: float | None = Field(default=None, ge=0)
    omittable: bool = False  # every movement it serves is served by another phase too (e.g. a protected left)

    @property
    def served(self) -> tuple[str, ...]:
        return self.movements + self.permissive


class Intersection(_Model):
    id: str
    name: str = ""
    position_m: float = Field(ge=0)  # distance from the corridor's first stop line, forward direction
    movements: tuple[Movement, ...]
    lanes: tuple[Lane, ...]
    phases: tuple[Phase, ...] = Field(min_length=1)
    cycle_min_s: float | None = Field(default=None, gt=0)
    cycle_max_s: float | None = Field(default=None, gt=0)
    sumo_tls_id: str | None = None
    sumo_link_count: int = 0  # length of the SUMO state string (0: no SUMO mapping)

    @model_validator(mode="after")
    def _consistent(self) -> Intersection:
        names = [m.name for m in self.movements]
        if len(set(names)) != len(names):
            raise ValueError(f"intersection {self.id}: duplicate movement names")
        known = set(names)
        for lane in self.lanes:
            if unknown := set(lane.movements) - known:
                raise ValueError(f"lane {lane.id}: unknown movements {sorted(unknown)}")
        for phase in self.phases:
            if unknown := set(phase.served + phase.turn_on_red) - known:
                raise ValueError(f"phase {phase.name}: unknown movements {sorted(unknown)}")
            if both := set(phase.served) & set(phase.turn_on_red):
                raise ValueError(f"phase {phase.name}: {sorted(both)} cannot be green and turn on red at once")
        phase_names = [p.name for p in self.phases]
        if len(set(phase_names)) != len(phase_names):
            raise ValueError(f"intersection {self.id}: duplicate phase names")
        return self

    def movement(self, name: str) -> Movement:
        return next(m for m in self.movements if m.name == name)

    def arterial_movement(self, direction: Direction) -> Movement | None:
        return next((m for m in self.movements if m.arterial == direction), None)

    def coordinated(self, phase: Phase) -> bool:
        """Does `phase` serve an arterial through movement (the band it carries)?"""
        return any(self.movement(m).arterial for m in phase.served)


class Detector(_Model):
    """A counting detector (induction loop) on one approach lane."""

    id: str
    intersection_id: str
    lane_id: str
    distance_to_stop_line_m: float = Field(default=30.0, ge=0)


class Corridor(_Model):
    id: str
    name: str = ""
    intersections: tuple[Intersection, ...] = Field(min_length=1)  # in forward order
    detectors: tuple[Detector, ...] = ()
    design_speed_kmh: float = Field(default=55.0, gt=0)
    cycle_min_s: float = Field(default=40.0, gt=0)
    cycle_max_s: float = Field(default=150.0, gt=0)
    forward_label: str = "forward"  # e.g. "EB"
    reverse_label: str = "reverse"  # e.g. "WB"

    @model_validator(mode="after")
    def _consistent(self) -> Corridor:
        ids = [i.id for i in self.intersections]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate intersection ids")
        positions = [i.position_m for i in self.intersections]
        if any(b <= a for a, b in itertools.pairwise(positions)):
            raise ValueError("intersections must be in forward order with increasing position_m")
        lanes = {(i.id, lane.id) for i in self.intersections for lane in i.lanes}
        det_ids = [d.id for d in self.detectors]
        if len(set(det_ids)) != len(det_ids):
            raise ValueError("duplicate detector ids")
        for d in self.detectors:
            if (d.intersection_id, d.lane_id) not in lanes:
                raise ValueError(f"detector {d.id}: no lane {d.lane_id} at intersection {d.intersection_id}")
        return self

    @property
    def design_speed_mps(self) -> float:
        return self.design_speed_kmh / 3.6

    def intersection(self, intersection_id: str) -> Intersection:
        return next(i for i in self.intersections if i.id == intersection_id)

    def detector(self, detector_id: str) -> Detector | None:
        return next((d for d in self.detectors if d.id == detector_id), None)


# --- sensor batches: the wire format --------------------------------------------------------


class SensorReading(_Model):
    """What one detector counted over one interval. Business limits are checked by flows.validate_batch."""

    detector_id: str
    interval_start: AwareDatetime
    interval_s: float
    count: int
    occupancy: float = 0.0  # fraction of the interval the detector was occupied, 0..1
    mean_speed_kmh: float | None = None

    @property
    def interval_end(self) -> datetime:
        from datetime import timedelta

        return self.interval_start + timedelta(seconds=self.interval_s)


class SensorBatch(_Model):
    batch_id: str  # unique per sender and batch: the idempotency key
    corridor_id: str
    readings: tuple[SensorReading, ...] = Field(min_length=1)


# --- plans ------------------------------------------------------------------------------


class PhaseTiming(_Model):
    """A phase's times in a plan. A coordinated phase (NTCIP 1202 split mode "coordinated") carries the
    arterial band: it runs to its yield point every cycle and rests in green; the others are actuated within
    their split (skipped without a call, gap out, their unused time returns to the coordinated phase)."""

    phase: str
    green_s: float
    yellow_s: float
    all_red_s: float
    movements: tuple[str, ...]
    permissive: tuple[str, ...] = ()
    coordinated: bool = False

    @classmethod
    def of(cls, intersection: Intersection, phase: Phase, green_s: float, yellow_s: float,
           all_red_s: float) -> PhaseTiming:
        return cls(phase=phase.name, green_s=green_s, yellow_s=yellow_s, all_red_s=all_red_s,
                   movements=phase.movements, permissive=phase.permissive,
                   coordinated=intersection.coordinated(phase))

    @property
    def duration_s(self) -> float:
        return self.green_s + self.yellow_s + self.all_red_s


class IntersectionTiming(_Model):
    intersection_id: str
    cycle_s: float
    offset_s: float
    phases: tuple[PhaseTiming, ...]


class Reason(_Model):
    """Why the plan is what it is; codes are stable, messages are for people."""

    code: str
    message: str
    intersection_id: str | None = None


class IntersectionInputs(_Model):
    intersection_id: str
    movement_flows_vph: dict[str, float]
    critical_ratio_sum: float  # Y
    lost_time_s: float  # L
    webster_cycle_s: float | None  # None when Y >= 1
    degree_of_saturation: float  # the highest lane x under the new plan


class PlanInputs(_Model):
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    batch_ids: tuple[str, ...] = ()
    lane_flows_vph: dict[str, float] = {}  # "intersection/lane" -> demand used
    intersections: tuple[IntersectionInputs, ...] = ()
    previous_version: int | None = None
    limits: dict[str, float] = {}


class Plan(_Model):
    corridor_id: str
    version: int = Field(ge=0)
    created_at: AwareDatetime
    cycle_s: float
    timings: tuple[IntersectionTiming, ...]
    bandwidth_forward_s: float = 0.0
    bandwidth_reverse_s: float = 0.0
    source: Literal["retimed", "imported", "manual"] = "retimed"
    inputs: PlanInputs = PlanInputs()
    reasons: tuple[Reason, ...] = ()

    def timing(self, intersection_id: str) -> IntersectionTiming:
        return next(t for t in self.timings if t.intersection_id == intersection_id)

    @property
    def bandwidth_s(self) -> float:
        """Two-way green bandwidth at the design speed, seconds per cycle (forward + reverse)."""
        return self.bandwidth_forward_s + self.bandwidth_reverse_s
