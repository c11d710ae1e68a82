"""What a corridor's signals do with the traffic measured: per intersection its flows, degree of saturation
and expected delay under a plan. Pure and numpy-free, so the API (which has no numpy) computes it on read.

Degree of saturation per lane is x = q / (s g / C) with g the green of the plan's phases that discharge
the lane (as retiming counts it). Expected delay per vehicle is HCM's control delay d1 + d2: uniform
d1 = C (1 - g/C)^2 / 2 (1 - min(1, x) g/C), scaled for the arterial's through lanes by the share of
arrivals the plan's green band carries (a platoon from the upstream signal that meets green does not
wait), plus incremental d2 = 900 T ((x - 1) + sqrt((x - 1)^2 + 4x / (c T))) over T = 0.25 h.
"""

from __future__ import annotations

import math

from pydantic import AwareDatetime

from sunflower.traffic.flows import Flows, lane_key
from sunflower.traffic.models import Corridor, Intersection, IntersectionTiming, Lane, Plan, _Model

ANALYSIS_PERIOD_H = 0.25
SATURATED = 99.0  # x of a lane that has demand and no green: reported finite, JSON has no infinity
MAX_DELAY_S = 3600.0  # per vehicle: beyond this the estimate means nothing but "gridlock"


class IntersectionStatus(_Model):
    intersection_id: str
    name: str = ""
    position_m: float
    flow_vph: float  # every signalled approach lane
    movement_flows_vph: dict[str, float]
    lane_flows_vph: dict[str, float]  # lane id -> veh/h (measured, or carried over from the plan's inputs)
    degree_of_saturation: float  # the highest lane x under the plan
    critical_lane: str | None = None
    expected_delay_s: float  # flow-weighted mean control delay per vehicle


class CorridorAggregates(_Model):
    """A corridor's flows over one rolling window, judged against one plan."""

    corridor_id: str
    plan_version: int | None
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    readings: int = 0
    intersections: tuple[IntersectionStatus, ...] = ()
    expected_delay_s: float | None = None  # flow-weighted over the corridor, seconds per vehicle
    total_delay_veh_h_per_h: float | None = None


def aggregate(corridor: Corridor, flows: Flows | None, plan: Plan | None) -> CorridorAggregates:
    """Flows per movement and lane, degree of saturation and delay per intersection under `plan`."""
    demand = _lane_demand(corridor, flows, plan)
    through = _arterial_through_flows(corridor, demand)
    items: list[IntersectionStatus] = []
    total_flow = total_delay = 0.0
    for k, i in enumerate(corridor.intersections):
        lanes = {lane.id: demand.get(lane_key(i.id, lane.id), 0.0) for lane in i.lanes}
        movements = {m.name: 0.0 for m in i.movements}
        for lane in i.lanes:
            for m in lane.movements:
                movements[m] += lanes[lane.id] / len(lane.movements)
        timing = _timing(plan, i.id)
        x_max, critical, delay_sum = 0.0, None, 0.0
        if timing is not None and timing.cycle_s > 0:
            for lane in i.lanes:
                q = lanes[lane.id]
                x, d = _lane(lane, q, timing, plan, _platoon_share(through, k, lane, i))
                if q > 0 and (critical is None or x > x_max):
                    x_max, critical = x, lane.id
                delay_sum += q * d
        flow = sum(lanes.values())
        total_flow += flow
        total_delay += delay_sum
        items.append(IntersectionStatus(
            intersection_id=i.id, name=i.name, position_m=i.position_m, flow_vph=round(flow, 1),
            movement_flows_vph={m: round(q, 1) for m, q in movements.items()},
            lane_flows_vph={lane: round(q, 1) for lane, q in lanes.items()},
            degree_of_saturation=round(min(x_max, SATURATED), 3), critical_lane=critical,
            expected_delay_s=round(delay_sum / flow, 1) if flow > 0 else 0.0,
        ))
    known = plan is not None and total_flow > 0
    return CorridorAggregates(
        corridor_id=corridor.id, plan_version=plan.version if plan else None,
        window_start=flows.window_start if flows else None, window_end=flows.window_end if flows else None,
        readings=flows.readings if flows else 0, intersections=tuple(items),
        expected_delay_s=round(total_delay / total_flow, 1) if known else None,
        total_delay_veh_h_per_h=round(total_delay / 3600.0, 2) if plan is not None else None,
    )


def _lane_demand(corridor: Corridor, flows: Flows | None, plan: Plan | None) -> dict[str, float]:
    """Measured lane flows; lanes without recent counts keep the flow the plan was computed from."""
    carried = dict(plan.inputs.lane_flows_vph) if plan is not None else {}
    measured = flows.lane_flows_vph if flows is not None else {}
    return {
        key: measured.get(key, carried.get(key, 0.0))
        for i in corridor.intersections for lane in i.lanes if (key := lane_key(i.id, lane.id))
    }


def _timing(plan: Plan | None, intersection_id: str) -> IntersectionTiming | None:
    if plan is None:
        return None
    return next((t for t in plan.timings if t.intersection_id == intersection_id), None)


def _lane_green(lane: Lane, timing: IntersectionTiming) -> float:
    """Green of the phases that discharge the lane: protected if any, else any green, else any overlap."""
    wanted = set(lane.movements)
    for test in (
        lambda p: wanted <= set(p.movements),
        lambda p: wanted <= set(p.movements) | set(p.permissive),
        lambda p: bool(wanted & (set(p.movements) | set(p.permissive))),
    ):
        greens = [p.green_s for p in timing.phases if test(p)]
        if greens:
            return sum(greens)
    return 0.0


def _arterial_through_flows(corridor: Corridor, demand: dict[str, float]) -> list[dict[str, float]]:
    out = []
    for i in corridor.intersections:
        flows = {"forward": 0.0, "reverse": 0.0}
        for d in flows:
            m = i.arterial_movement(d)
            if m is not None:
                flows[d] = sum(demand.get(lane_key(i.id, lane.id), 0.0) for lane in i.lanes if m.name in lane.movements)
        out.append(flows)
    return out


def _platoon_share(through: list[dict[str, float]], k: int, lane: Lane, i: Intersection) -> tuple[str, float] | None:
    """For an arterial through lane: its direction and the share of its arrivals that passed the upstream signal."""
    for d, up in (("forward", k - 1), ("reverse", k + 1)):
        m = i.arterial_movement(d)
        if m is not None and m.name in lane.movements:
            here = through[k][d]
            share = min(1.0, through[up][d] / here) if 0 <= up < len(through) and here > 0 else 0.0
            return d, share
    return None


def _lane(lane: Lane, q: float, timing: IntersectionTiming, plan: Plan | None,
          platoon: tuple[str, float] | None) -> tuple[float, float]:
    """(degree of saturation, control delay per vehicle in seconds) of one lane."""
    cycle = timing.cycle_s
    g = _lane_green(lane, timing)
    if q <= 0:
        return 0.0, 0.0
    if g <= 0:
        return SATURATED, MAX_DELAY_S
    share = g / cycle
    capacity = lane.saturation_flow_vph * share
    x = q / capacity
    d1 = 0.5 * cycle * (1 - share) ** 2 / (1 - min(1.0, x) * share)
    t = ANALYSIS_PERIOD_H
    d2 = 900 * t * ((x - 1) + math.sqrt((x - 1) ** 2 + 4 * x / (capacity * t)))
    if platoon is not None and plan is not None:
        direction, from_upstream = platoon
        band = plan.bandwidth_forward_s if direction == "forward" else plan.bandwidth_reverse_s
        d1 *= 1 - from_upstream * min(1.0, band / g)
    return x, min(d1 + d2, MAX_DELAY_S)
