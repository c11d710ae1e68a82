"""What the traffic service keeps about a corridor besides its definition: the rolling state, the plan in
force with its pin, stored plan versions, batch outcomes. Plain values: the repository maps them to items."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, Field

from sunflower.traffic.flows import Flows
from sunflower.traffic.models import Corridor, Plan, SensorReading, _Model
from sunflower.traffic.status import CorridorAggregates


class RollingState(_Model):
    """engine.CorridorState without the corridor and the plan (they are kept once, elsewhere)."""

    readings: tuple[SensorReading, ...] = ()
    last_interval_end: dict[str, AwareDatetime] = Field(default_factory=dict)
    seen_batch_ids: tuple[str, ...] = ()


class PinMode(StrEnum):
    PINNED = "pinned"  # an earlier version held in force
    OVERRIDDEN = "overridden"  # a plan an engineer wrote, in force


@dataclass(frozen=True)
class Pin:
    """Why the plan in force does not follow retiming: who held it, when, and why."""

    mode: PinMode
    by: str  # the audit name of the engineer
    reason: str
    at: datetime


@dataclass(frozen=True)
class InForce:
    """The CURRENT pointer: the plan controllers run, its ETag, and the pin holding it, if any."""

    plan: Plan
    etag: str
    pin: Pin | None = None
    diagram_key: str | None = None
    created_by: str = "system:sunflower"  # who made the plan (not who pinned it)

    @property
    def version(self) -> int:
        return self.plan.version


@dataclass(frozen=True)
class StoredPlan:
    plan: Plan
    etag: str
    created_by: str  # "system:sunflower" for retimed plans, the engineer for manual ones
    diagram_key: str | None = None
    in_force: bool = False  # set on reads that know the pointer

    @property
    def version(self) -> int:
        return self.plan.version


@dataclass(frozen=True)
class Head:
    """Everything ingesting a batch needs, read in one round trip; `revision` guards the write."""

    corridor: Corridor
    revision: int
    rolling: RollingState
    latest_version: int  # the highest plan version stored (0: none, or only an imported v0)
    candidate_version: int | None  # the newest retimed plan not put in force because of a pin
    current: InForce | None
    batch_seen: bool = False


@dataclass(frozen=True)
class Snapshot:
    """A corridor as its status shows it, without the rolling readings."""

    corridor: Corridor
    current: InForce | None
    latest_version: int
    candidate_version: int | None
    flows: Flows | None
    last_batch_id: str | None
    last_batch_at: datetime | None


@dataclass(frozen=True)
class CorridorStatus:
    corridor: Corridor
    current: InForce | None
    aggregates: CorridorAggregates  # under the plan in force now
    latest_version: int
    candidate_version: int | None
    last_batch_id: str | None
    last_batch_at: datetime | None


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class IngestResult:
    """What one batch did: a new plan in force, a candidate kept while pinned, or nothing new."""

    corridor_id: str
    batch_id: str
    outcome: Outcome
    in_force: InForce | None = None  # the plan in force after the batch
    new_plan: StoredPlan | None = None  # stored by this batch (in force unless pinned)
    raw_key: str | None = None
    attempts: int = 1


@dataclass(frozen=True)
class Rejection:
    """A batch refused for good (it would fail the same way on every retry), kept with its raw body."""

    corridor_id: str
    batch_id: str
    at: datetime
    code: str
    message: str
    problems: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (field, message)
    raw_key: str | None = None


def plan_etag(plan: Plan) -> str:
    """A strong ETag of what controllers receive (export.plan_dict), distinct per version."""
    from sunflower.traffic.export import plan_json

    digest = hashlib.sha256(plan_json(plan, indent=None).encode()).hexdigest()
    return f'"v{plan.version}-{digest[:20]}"'
