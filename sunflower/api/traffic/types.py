"""Signal corridors as the API shows them: status per intersection, plans with their inputs, reasons and exports.

A corridor's status fields (and the corridor behind a plan's SUMO export) come through one dataloader,
so a list of corridors or plans costs one batch read however long it is.
"""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import Info, relay

from sunflower.api.relay import connection, page_request
from sunflower.common.errors import NotFound
from sunflower.traffic.export import plan_json
from sunflower.traffic.models import Corridor, Plan
from sunflower.traffic.records import CorridorStatus, InForce, PinMode, Rejection, StoredPlan
from sunflower.traffic.status import IntersectionStatus


@strawberry.enum(name="TrafficPlanSource", description="Where a plan came from.")
class PlanSourceEnum(Enum):
    RETIMED = "retimed"
    IMPORTED = "imported"
    MANUAL = "manual"


TrafficPinModeEnum = strawberry.enum(
    PinMode, name="TrafficPinMode",
    description="PINNED: an earlier version held in force; OVERRIDDEN: a plan an engineer wrote, in force.",
)


def status_loader(info: Info):
    """Corridor statuses (corridor, plan in force, flows) by corridor id, batched per request."""
    ctx = info.context
    return ctx.loaders.loader("traffic_status", ctx.services.traffic.statuses)


def plan_node_id(corridor_id: str, version: int) -> str:
    return f"{corridor_id}:{version}"


@strawberry.type(name="TrafficFlow", description="A flow in vehicles per hour, of a movement or a lane.")
class FlowType:
    name: str
    flow_vph: float


def _flows(values: dict[str, float]) -> list[FlowType]:
    return [FlowType(name=k, flow_vph=v) for k, v in values.items()]


@strawberry.type(name="TrafficPhaseTiming")
class PhaseTimingType:
    name: str
    green_s: float
    yellow_s: float
    all_red_s: float
    movements: list[str] = strawberry.field(description="Movements with protected green (SUMO 'G').")
    permissive_movements: list[str] = strawberry.field(description="Movements with permitted green (SUMO 'g').")
    coordinated: bool = strawberry.field(description="Carries the arterial band: runs to its yield point every "
                                                     "cycle; the other phases are actuated within their green.")


@strawberry.type(name="TrafficIntersectionTiming")
class IntersectionTimingType:
    intersection_id: str
    cycle_s: float
    offset_s: float = strawberry.field(description="When the first phase's green starts, modulo the cycle, from the "
                                                   "corridor's common reference (the Unix epoch).")
    phases: list[PhaseTimingType]


@strawberry.type(name="TrafficPlanReason", description="Why the plan is what it is; codes are stable.")
class ReasonType:
    code: str
    message: str
    intersection_id: str | None


@strawberry.type(name="TrafficIntersectionInputs", description="What retiming saw at one intersection.")
class IntersectionInputsType:
    intersection_id: str
    movement_flows: list[FlowType]
    critical_ratio_sum: float = strawberry.field(description="Webster's Y.")
    lost_time_s: float
    webster_cycle_s: float | None = strawberry.field(description="Null when Y >= 1 (oversaturated).")
    degree_of_saturation: float = strawberry.field(description="The highest lane x under this plan.")


@strawberry.type(name="TrafficPlanInputs", description="The flows and limits a plan was computed from.")
class PlanInputsType:
    window_start: datetime | None
    window_end: datetime | None
    batch_ids: list[str]
    previous_version: int | None
    lane_flows: list[FlowType] = strawberry.field(description="Demand used per lane ('intersection/lane').")
    intersections: list[IntersectionInputsType]


@strawberry.type(name="TrafficPlan", description="One version of a corridor's signal plan.")
class PlanType(relay.Node):
    id: relay.NodeID[str]
    corridor_id: strawberry.ID
    version: int
    created_at: datetime
    created_by: str = strawberry.field(description="system:sunflower for retimed plans, the engineer otherwise.")
    source: PlanSourceEnum
    cycle_s: float
    bandwidth_forward_s: float = strawberry.field(description="Green band at the design speed, forward direction.")
    bandwidth_reverse_s: float
    etag: str = strawberry.field(description="What controllers get as ETag with this plan.")
    in_force: bool
    intersections: list[IntersectionTimingType]
    reasons: list[ReasonType]
    inputs: PlanInputsType
    plan: strawberry.Private[Plan]
    diagram: strawberry.Private[str | None]

    @classmethod
    def of(cls, plan: Plan, *, etag: str, created_by: str, in_force: bool, diagram: str | None) -> "PlanType":
        i = plan.inputs
        return cls(
            id=plan_node_id(plan.corridor_id, plan.version), corridor_id=strawberry.ID(plan.corridor_id),
            version=plan.version, created_at=plan.created_at, created_by=created_by,
            source=PlanSourceEnum(plan.source), cycle_s=plan.cycle_s, bandwidth_forward_s=plan.bandwidth_forward_s,
            bandwidth_reverse_s=plan.bandwidth_reverse_s, etag=etag, in_force=in_force,
            intersections=[
                IntersectionTimingType(
                    intersection_id=t.intersection_id, cycle_s=t.cycle_s, offset_s=t.offset_s,
                    phases=[PhaseTimingType(name=p.phase, green_s=p.green_s, yellow_s=p.yellow_s, all_red_s=p.all_red_s,
                                            movements=list(p.movements), permissive_movements=list(p.permissive),
                                            coordinated=p.coordinated)
                            for p in t.phases],
                )
                for t in plan.timings
            ],
            reasons=[ReasonType(code=r.code, message=r.message, intersection_id=r.intersection_id)
                     for r in plan.reasons],
            inputs=PlanInputsType(
                window_start=i.window_start, window_end=i.window_end, batch_ids=list(i.batch_ids),
                previous_version=i.previous_version, lane_flows=_flows(i.lane_flows_vph),
                intersections=[
                    IntersectionInputsType(
                        intersection_id=x.intersection_id, movement_flows=_flows(x.movement_flows_vph),
                        critical_ratio_sum=x.critical_ratio_sum, lost_time_s=x.lost_time_s,
                        webster_cycle_s=x.webster_cycle_s, degree_of_saturation=x.degree_of_saturation,
                    )
                    for x in i.intersections
                ],
            ),
            plan=plan, diagram=diagram,
        )

    @classmethod
    def stored(cls, stored: StoredPlan) -> "PlanType":
        return cls.of(stored.plan, etag=stored.etag, created_by=stored.created_by, in_force=stored.in_force,
                      diagram=stored.diagram_key)

    @classmethod
    def current(cls, current: InForce) -> "PlanType":
        return cls.of(current.plan, etag=current.etag, created_by=current.created_by, in_force=True,
                      diagram=current.diagram_key)

    @strawberry.field(description="The plan as controllers receive it: per intersection id, cycle_s, offset_s and "
                                  "the ordered phases with green_s, yellow_s, all_red_s and movement names.")
    def json(self) -> str:
        return plan_json(self.plan)

    @strawberry.field(description="The plan as a SUMO tlLogic additional file (sumo -a); null for a corridor "
                                  "not mapped to SUMO signals.")
    async def sumo_xml(self, info: Info) -> str | None:
        status = await status_loader(info).load(self.plan.corridor_id)
        return info.context.services.traffic.sumo_xml(status.corridor, self.plan) if status else None

    @strawberry.field(description="A link (valid 15 minutes) to the plan's time-space diagram, an SVG of the green "
                                  "waves at the design speed; null until the traffic function has drawn it.")
    def diagram_url(self, info: Info) -> str | None:
        ctx = info.context
        return ctx.services.traffic.diagram_url(ctx.require_principal(), self.diagram)

    @classmethod
    def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        ctx = info.context
        out = []
        for node_id in node_ids:
            corridor_id, _, version = node_id.rpartition(":")
            try:
                out.append(cls.stored(ctx.services.traffic.plan(ctx.require_principal(), corridor_id, int(version))))
            except (NotFound, ValueError):
                out.append(None)
        return out


@strawberry.type(name="TrafficPin", description="Why the plan in force does not follow retiming.")
class PinType:
    mode: TrafficPinModeEnum
    by: str
    reason: str
    at: datetime


@strawberry.type(name="TrafficIntersection",
                 description="A signalised intersection of the corridor, with what its signals do with the traffic "
                             "measured in the latest rolling window, under the plan in force.")
class IntersectionType:
    id: str
    name: str
    position_m: float = strawberry.field(description="Distance from the first stop line, forward direction.")
    flow_vph: float
    movement_flows: list[FlowType]
    lane_flows: list[FlowType]
    degree_of_saturation: float = strawberry.field(description="The highest lane x = q / (s g / C).")
    critical_lane: str | None
    expected_delay_s: float = strawberry.field(description="Mean control delay per vehicle (HCM, with progression).")

    @classmethod
    def of(cls, s: IntersectionStatus) -> "IntersectionType":
        return cls(id=s.intersection_id, name=s.name, position_m=s.position_m, flow_vph=s.flow_vph,
                   movement_flows=_flows(s.movement_flows_vph), lane_flows=_flows(s.lane_flows_vph),
                   degree_of_saturation=s.degree_of_saturation, critical_lane=s.critical_lane,
                   expected_delay_s=s.expected_delay_s)


@strawberry.type(name="TrafficRejectedBatch", description="A sensor batch refused for good; its raw body is kept.")
class RejectionType:
    batch_id: str
    at: datetime
    code: str
    message: str
    fields: list[str] = strawberry.field(description="'field: problem' for every problem found.")

    @classmethod
    def of(cls, r: Rejection) -> "RejectionType":
        return cls(batch_id=r.batch_id, at=r.at, code=r.code, message=r.message,
                   fields=[f"{f}: {m}" for f, m in r.problems])


@strawberry.type(name="TrafficCorridor", description="An arterial whose signals are retimed from sensor counts into "
                                                     "a green wave at its design speed.")
class CorridorType(relay.Node):
    id: relay.NodeID[str]
    corridor_id: strawberry.ID = strawberry.field(description="The corridor's own id (sensors' and controllers' "
                                                              "siteId).")
    name: str
    design_speed_kmh: float
    cycle_min_s: float
    cycle_max_s: float
    forward_label: str
    reverse_label: str
    length_m: float
    detectors: int

    @classmethod
    def of(cls, corridor: Corridor) -> "CorridorType":
        return cls(id=corridor.id, corridor_id=strawberry.ID(corridor.id), name=corridor.name,
                   design_speed_kmh=corridor.design_speed_kmh, cycle_min_s=corridor.cycle_min_s,
                   cycle_max_s=corridor.cycle_max_s, forward_label=corridor.forward_label,
                   reverse_label=corridor.reverse_label,
                   length_m=corridor.intersections[-1].position_m - corridor.intersections[0].position_m,
                   detectors=len(corridor.detectors))

    async def _status(self, info: Info) -> CorridorStatus:
        status = await status_loader(info).load(self.id)
        if status is None:
            raise NotFound(f"no corridor {self.id}")
        return status

    @strawberry.field(description="Per intersection, in forward order: flows, degree of saturation and delay.")
    async def intersections(self, info: Info) -> list[IntersectionType]:
        return [IntersectionType.of(s) for s in (await self._status(info)).aggregates.intersections]

    @strawberry.field(description="The plan controllers run now; null before the first one.")
    async def current_plan(self, info: Info) -> PlanType | None:
        current = (await self._status(info)).current
        return PlanType.current(current) if current else None

    @strawberry.field(description="Set while an engineer holds the plan in force (pinned or overridden).")
    async def pin(self, info: Info) -> PinType | None:
        current = (await self._status(info)).current
        pin = current.pin if current else None
        return PinType(mode=pin.mode, by=pin.by, reason=pin.reason, at=pin.at) if pin else None

    @strawberry.field(description="The newest retimed plan kept back by a pin; it goes into force on unpin.")
    async def candidate_plan_version(self, info: Info) -> int | None:
        return (await self._status(info)).candidate_version

    @strawberry.field(description="Green band of the plan in force at the design speed, forward direction, seconds.")
    async def bandwidth_forward_s(self, info: Info) -> float | None:
        current = (await self._status(info)).current
        return current.plan.bandwidth_forward_s if current else None

    @strawberry.field(description="Green band of the plan in force at the design speed, reverse direction, seconds.")
    async def bandwidth_reverse_s(self, info: Info) -> float | None:
        current = (await self._status(info)).current
        return current.plan.bandwidth_reverse_s if current else None

    @strawberry.field(description="Mean control delay per vehicle over the corridor's signalised lanes, under the "
                                  "plan in force and the latest flows; null without either.")
    async def expected_delay_s(self, info: Info) -> float | None:
        return (await self._status(info)).aggregates.expected_delay_s

    @strawberry.field(description="Total delay, vehicle-hours per hour.")
    async def total_delay_veh_h_per_h(self, info: Info) -> float | None:
        return (await self._status(info)).aggregates.total_delay_veh_h_per_h

    @strawberry.field(description="Start of the rolling window the flows cover.")
    async def flows_window_start(self, info: Info) -> datetime | None:
        return (await self._status(info)).aggregates.window_start

    @strawberry.field(description="End of the rolling window the flows cover.")
    async def flows_window_end(self, info: Info) -> datetime | None:
        return (await self._status(info)).aggregates.window_end

    @strawberry.field
    async def last_batch_id(self, info: Info) -> str | None:
        return (await self._status(info)).last_batch_id

    @strawberry.field
    async def last_batch_at(self, info: Info) -> datetime | None:
        return (await self._status(info)).last_batch_at

    @strawberry.field(description="Plan versions, newest first.")
    def plan_history(self, info: Info, first: int | None = None, after: str | None = None
                     ) -> relay.Connection[PlanType]:
        return plan_history(info, self.id, first, after)

    @strawberry.field(description="Sensor batches refused for good, newest first (at most 100).")
    def rejected_batches(self, info: Info, first: int = 20) -> list[RejectionType]:
        ctx = info.context
        found = ctx.services.traffic.rejections(ctx.require_principal(), self.id, limit=max(1, min(first, 100)))
        return [RejectionType.of(r) for r in found]

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        found = await status_loader(info).load_many(list(node_ids))
        return [cls.of(s.corridor) if s else None for s in found]


def plan_history(info: Info, corridor_id: str, first: int | None, after: str | None) -> relay.Connection[PlanType]:
    ctx = info.context
    request = page_request(info, f"planHistory:{corridor_id}", first, after)
    page = ctx.services.traffic.plan_history(ctx.require_principal(), corridor_id, limit=request.limit,
                                             start=request.start)
    return connection(info, request, page, PlanType.stored)
