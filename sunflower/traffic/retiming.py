"""Flows in, a new signal plan out: common cycle (Webster, bounded), splits, MAXBAND offsets, change limits.

`retime` is pure and deterministic: the same corridor, flows, current plan and limits give the
same plan, field for field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sunflower.traffic import bandwidth as band
from sunflower.traffic import timing
from sunflower.traffic.errors import NoFeasibleCycle
from sunflower.traffic.flows import Flows, lane_key
from sunflower.traffic.models import (
    Corridor,
    Intersection,
    IntersectionInputs,
    IntersectionTiming,
    PhaseTiming,
    Plan,
    PlanInputs,
    Reason,
    _Model,
)

QUEUE_DEMAND_FACTOR = 1.15  # a lane counted at capacity with its detector in a queue wants at least this much more
MIN_MINOR_WEIGHT = 0.1


class Limits(_Model):
    """How far one update may go, and the operating targets."""

    max_cycle_step_s: float = 15.0  # per update, unless queues would otherwise grow
    max_offset_step_s: float = 20.0  # per update and intersection
    practical_degree_of_saturation: float = 0.90  # the cycle aims to keep every lane at or under this
    max_degree_of_saturation: float = 0.95  # above this queues grow: worth breaking the cycle step
    resolution_s: float = 1.0  # controller time step: every interval is a multiple of it
    queue_occupancy: float = 0.30  # a detector this occupied and counting at capacity sits in a queue
    omit_phase_below_vph: float = 60.0  # an omittable phase whose own lanes carry less is left out
    queue_headway_s: float = 2.0  # discharge headway of vehicles queued before the platoon (MAXBAND tau)
    cycle_hysteresis: float = 0.03  # keep the cycle in force unless another saves more of the estimated delay
    offset_hysteresis_s: float = 3.0  # keep the offsets in force unless the (weighted) band gains more
    speed_tolerance: float = 0.05  # the band also carries drivers this much slower than the design speed


@dataclass
class _Node:
    intersection: Intersection
    model: timing.IntersectionModel
    ratios: dict[str, float]
    omitted: frozenset[str]
    y_sum: float
    phase_ratios: tuple[float, ...]
    webster_s: float
    capacity_s: float  # shortest cycle with every lane at or under the hard degree of saturation
    practical_s: float
    low_s: float
    high_s: float


def retime(corridor: Corridor, flows: Flows, current_plan: Plan | None, limits: Limits | None = None) -> Plan:
    """A new plan for the corridor from its rolling flows; the current plan bounds how far it moves.

    Raises NoFeasibleCycle when the corridor's minimum greens and clearances fit no allowed cycle.
    """
    limits = limits or Limits()
    res = limits.resolution_s
    reasons: list[Reason] = []

    def why(code: str, message: str, intersection_id: str | None = None) -> None:
        reasons.append(Reason(code=code, message=message, intersection_id=intersection_id))

    # 1. Demand per lane: measured, or carried over from the plan in force, raised where queued.
    lane_demand, missing, queued = _lane_demand(corridor, flows, current_plan, limits)
    why("flows", f"demand from {flows.readings} readings between {flows.window_start.isoformat()} and "
                 f"{flows.window_end.isoformat()}")
    if missing:
        why("missing_data", f"no recent counts for {len(missing)} lanes ({', '.join(missing[:6])}"
                            f"{'...' if len(missing) > 6 else ''}); their last known flows were kept")
    for key in queued:
        why("queue_detected", f"lane {key} counts at capacity with its detector in a queue: demand raised to "
                              f"{lane_demand[key]:.0f} veh/h", key.split("/", 1)[0])

    # 2. Per intersection: critical ratios, Webster, the cycle capacity needs, and bounds.
    nodes = [_node(corridor, i, lane_demand, limits) for i in corridor.intersections]
    for n in nodes:
        if n.omitted:
            why("phase_omitted", f"phases {', '.join(sorted(n.omitted))} left out: their own lanes carry under "
                                 f"{limits.omit_phase_below_vph:g} veh/h, served permitted in other phases",
                n.intersection.id)
    low = max(n.low_s for n in nodes)
    high = min(n.high_s for n in nodes)
    if low > high + 1e-9:
        tight = max(nodes, key=lambda n: n.low_s)
        raise NoFeasibleCycle(
            f"no common cycle: intersection {tight.intersection.id} needs at least {tight.low_s:g} s for its "
            f"minimum greens and clearances, but the corridor allows at most {high:g} s; the current plan stays in force"
        )

    # 3. Common cycle: no shorter than capacity needs, then the one with the least estimated delay,
    #    progression included, within the bounds and the change limit.
    travel = band.travel_times_s(corridor)
    fwd_flow, rev_flow = _direction_flows(corridor, lane_demand)
    w_fwd, w_rev = _direction_weights(fwd_flow, rev_flow)
    screen = _Screen(corridor, nodes, lane_demand, travel, w_fwd, w_rev, limits)
    oversaturated = [n for n in nodes if not math.isfinite(n.capacity_s)]
    critical = max(nodes, key=lambda n: (max(n.webster_s, n.practical_s), n.y_sum))
    webster = timing.bounded(max(n.webster_s for n in nodes), low, high)
    floor = timing.bounded(max(n.practical_s for n in nodes), low, high)
    needed = min(max(n.capacity_s for n in nodes) + res, high)  # + one step: greens are rounded
    if oversaturated:
        for n in oversaturated:
            why("oversaturated",
                f"demand (Y={n.y_sum:.2f}) exceeds what any cycle up to {high:g} s can serve at x<="
                f"{limits.max_degree_of_saturation}: cycle at its maximum, greens balanced to equal degrees of "
                f"saturation", n.intersection.id)
        span = (high, high)
    else:
        why("webster", f"critical intersection {critical.intersection.id}: Y={critical.y_sum:.3f}, "
                       f"L={critical.model.lost_time_s:g} s, Webster C0={_fmt(critical.webster_s)} s "
                       f"(bounded {webster:.0f} s); x<={limits.practical_degree_of_saturation} needs "
                       f"{_fmt(max(n.practical_s for n in nodes))} s")
        span = (max(floor, low), high)
    previous_cycle = _common_cycle(current_plan, corridor)
    if previous_cycle is not None:
        step = limits.max_cycle_step_s
        lo, hi = max(span[0], previous_cycle - step), min(span[1], previous_cycle + step)
        if lo > hi:  # the plan in force is too far away to reach in one step
            if previous_cycle + step < span[0]:
                target = previous_cycle + step
                if target < needed - 1e-9:
                    target = needed
                    why("cycle_step_exceeded",
                        f"cycle raised to {target:.0f} s, more than {step:g} s from {previous_cycle:g} s, "
                        + ("the most capacity the bounds allow" if oversaturated else
                           f"so that no lane is left above x={limits.max_degree_of_saturation}"))
                else:
                    why("cycle_step_limited", f"cycle moves from {previous_cycle:g} s towards {span[0]:.0f} s by at "
                                              f"most {step:g} s")
            else:
                target = previous_cycle - step
                why("cycle_step_limited", f"cycle moves from {previous_cycle:g} s towards {span[1]:.0f} s by at "
                                          f"most {step:g} s")
            lo = hi = timing.bounded(target, low, high)
        elif (lo, hi) != span:
            why("cycle_step_limited", f"cycle kept within {step:g} s of the {previous_cycle:g} s in force")
        span = (lo, hi)
    candidates = _cycle_candidates(span[0], span[1], res)
    scored = _search(screen, candidates)
    best_delay, cycle = min(scored)
    if previous_cycle is not None and cycle != previous_cycle and candidates[0] <= previous_cycle <= candidates[-1]:
        kept = {c: d for d, c in scored}.get(previous_cycle)
        kept = screen.delay(previous_cycle) if kept is None else kept
        if kept <= best_delay * (1 + limits.cycle_hysteresis):  # not worth a transition
            why("cycle_kept", f"cycle {previous_cycle:g} s kept: {cycle:g} s would save under "
                              f"{limits.cycle_hysteresis:.0%} of the estimated delay")
            best_delay, cycle = kept, previous_cycle
    if len(candidates) > 1:
        at_floor = min(scored, key=lambda sc: sc[1])
        why("cycle_search", f"cycle {cycle:g} s of {candidates[0]:g}-{candidates[-1]:g} s: estimated delay "
                            f"{best_delay / 3600:.1f} veh-h/h (shortest candidate: {at_floor[0] / 3600:.1f})")
    if abs(cycle - webster) > res and not oversaturated:
        why("cycle_bounded" if cycle in (low, high) else "cycle_for_progression",
            f"cycle {cycle:g} s rather than Webster's {webster:.0f} s")

    # 4. Splits: equal degree of saturation where critical; elsewhere the spare green goes to the arterial.
    screened = screen.splits(cycle)
    timings: list[IntersectionTiming] = []
    diagnostics: list[IntersectionInputs] = []
    movement_flows = _movement_flows(corridor, lane_demand)
    for n, chosen in zip(nodes, screened, strict=True):
        mins = [p.min_green_s for p in n.model.phases]
        greens = timing.round_greens(chosen.greens_s, cycle - n.model.lost_time_s, mins, res)
        x = max(timing.lane_degrees_of_saturation(n.model, n.ratios, greens, cycle).values(), default=0.0)
        at_min = [p.name for p, g in zip(n.model.phases, greens, strict=True) if g <= p.min_green_s + 1e-9]
        if any(n.phase_ratios[k] > 0 and p.name in at_min for k, p in enumerate(n.model.phases)):
            why("min_green", f"phases {', '.join(at_min)} held at their minimum green", n.intersection.id)
        timings.append(IntersectionTiming(
            intersection_id=n.intersection.id, cycle_s=cycle, offset_s=0.0,
            phases=tuple(
                PhaseTiming.of(n.intersection, p.phase, g, p.yellow_s, p.all_red_s)
                for p, g in zip(n.model.phases, greens, strict=True)
            ),
        ))
        diagnostics.append(IntersectionInputs(
            intersection_id=n.intersection.id, movement_flows_vph=movement_flows[n.intersection.id],
            critical_ratio_sum=round(n.y_sum, 4), lost_time_s=n.model.lost_time_s,
            webster_cycle_s=round(n.webster_s, 1) if math.isfinite(n.webster_s) else None,
            degree_of_saturation=round(x, 3) if math.isfinite(x) else 99.0,
        ))

    # 5. Offsets: MAXBAND at the design speed, then as close to the plan in force as the band allows.
    fwd_windows = band.corridor_windows(corridor, timings, "forward")
    rev_windows = band.corridor_windows(corridor, timings, "reverse")
    problem = band.BandProblem(
        cycle_s=cycle, travel_s=travel, forward=screen.tolerant(fwd_windows, "forward"),
        reverse=screen.tolerant(rev_windows, "reverse"),
        forward_weight=w_fwd, reverse_weight=w_rev,
        forward_queue_s=screen.queue_times("forward", cycle, fwd_windows),
        reverse_queue_s=screen.queue_times("reverse", cycle, rev_windows),
    )
    solution = band.maxband(problem)
    offsets = list(solution.offsets_s)
    kept_offsets = False
    if current_plan is not None and all(_has(current_plan, i.id) for i in corridor.intersections) \
            and all(current_plan.timing(i.id).cycle_s == cycle for i in corridor.intersections):
        # The plan in force's offsets with the new splits: keep them unless the band gains enough.
        old = [current_plan.timing(i.id).offset_s for i in corridor.intersections]
        value = w_fwd * band.band_s(cycle, travel, problem.forward, old, "forward") + \
            w_rev * band.band_s(cycle, travel, problem.reverse, old, "reverse")
        best = w_fwd * solution.forward_s + w_rev * solution.reverse_s
        if value >= best - limits.offset_hysteresis_s:
            offsets, kept_offsets = old, True
            why("offsets_kept", f"offsets kept: the optimum band is under {limits.offset_hysteresis_s:g} s wider")
    if not kept_offsets and current_plan is not None and all(_has(current_plan, i.id) for i in corridor.intersections):
        old = [current_plan.timing(i.id).offset_s % cycle for i in corridor.intersections]
        offsets = _closest_shift(offsets, old, cycle)
        step = limits.max_offset_step_s
        limited = []
        for i, (new, was) in enumerate(zip(offsets, old, strict=True)):
            delta = _circular(new - was, cycle)
            if abs(delta) > step + 1e-9:
                limited.append(corridor.intersections[i].id)
                delta = math.copysign(step, delta)
            offsets[i] = (was + delta) % cycle
        if limited:
            why("offset_step_limited", f"offsets of {', '.join(limited)} move at most {step:g} s this update")
    offsets = [(round(o / res) * res) % cycle for o in offsets]
    timings = [t.model_copy(update={"offset_s": float(o)}) for t, o in zip(timings, offsets, strict=True)]
    b_fwd = band.band_s(cycle, travel, fwd_windows, offsets, "forward")
    b_rev = band.band_s(cycle, travel, rev_windows, offsets, "reverse")
    why("bandwidth", f"green band at {corridor.design_speed_kmh:g} km/h: {corridor.forward_label} {b_fwd:.1f} s, "
                     f"{corridor.reverse_label} {b_rev:.1f} s of {cycle:g} s (MAXBAND optimum "
                     f"{solution.forward_s:.1f} s / {solution.reverse_s:.1f} s, weights {w_fwd:.2f}/{w_rev:.2f})")

    return Plan(
        corridor_id=corridor.id,
        version=(current_plan.version + 1) if current_plan is not None else 1,
        created_at=flows.window_end,
        cycle_s=cycle,
        timings=tuple(timings),
        bandwidth_forward_s=round(b_fwd, 2),
        bandwidth_reverse_s=round(b_rev, 2),
        source="retimed",
        inputs=PlanInputs(
            window_start=flows.window_start, window_end=flows.window_end, batch_ids=flows.batch_ids,
            lane_flows_vph={k: round(v, 1) for k, v in sorted(lane_demand.items())},
            intersections=tuple(diagnostics),
            previous_version=current_plan.version if current_plan is not None else None,
            limits=limits.model_dump(),
        ),
        reasons=tuple(reasons),
    )


def _fmt(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "inf"


def _has(plan: Plan, intersection_id: str) -> bool:
    return any(t.intersection_id == intersection_id for t in plan.timings)


def _common_cycle(plan: Plan | None, corridor: Corridor) -> float | None:
    if plan is None:
        return None
    cycles = {t.cycle_s for t in plan.timings if t.intersection_id in {i.id for i in corridor.intersections}}
    return plan.cycle_s if len(cycles) == 1 else (max(cycles) if cycles else None)


def _lane_demand(corridor: Corridor, flows: Flows, current: Plan | None, limits: Limits
                 ) -> tuple[dict[str, float], list[str], list[str]]:
    detected = {lane_key(d.intersection_id, d.lane_id) for d in corridor.detectors}
    demand: dict[str, float] = {}
    missing: list[str] = []
    queued: list[str] = []
    for i in corridor.intersections:
        model = None
        for lane in i.lanes:
            key = lane_key(i.id, lane.id)
            q = flows.lane_flows_vph.get(key)
            if q is None:
                q = current.inputs.lane_flows_vph.get(key, 0.0) if current is not None else 0.0
                if key in detected:
                    missing.append(key)
            occupancy = flows.lane_occupancy.get(key, 0.0)
            if occupancy >= limits.queue_occupancy and current is not None and _has(current, i.id):
                running = {p.phase for p in current.timing(i.id).phases}
                model = model or timing.resolve(i, resolution_s=limits.resolution_s,
                                                omit=frozenset(p.name for p in i.phases if p.name not in running))
                capacity = _lane_capacity(model, lane.id, current.timing(i.id))
                if capacity > 0 and q >= 0.92 * capacity:
                    q = max(q, capacity * QUEUE_DEMAND_FACTOR)
                    queued.append(key)
            demand[key] = q
    return demand, missing, queued


def _lane_capacity(model: timing.IntersectionModel, lane_id: str, current: IntersectionTiming) -> float:
    by_name = {p.phase: p for p in current.phases}
    green = 0.0
    for k in model.lane_phases.get(lane_id, ()):
        name = model.phases[k].name
        if name in by_name:
            green += by_name[name].green_s
    return model.lane_saturation_vph[lane_id] * green / current.cycle_s if current.cycle_s > 0 else 0.0


def omitted_phases(i: Intersection, lane_demand: dict[str, float], limits: Limits) -> frozenset[str]:
    """Omittable phases whose own lanes (those no other phase discharges) carry light demand."""
    full = timing.resolve(i, resolution_s=limits.resolution_s)
    out = set()
    for k, phase in enumerate(i.phases):
        if not phase.omittable:
            continue
        own = [lane for lane, served in full.lane_phases.items() if served == (k,)]
        if all(lane_demand.get(lane_key(i.id, lane), 0.0) < limits.omit_phase_below_vph for lane in own):
            out.add(phase.name)
    return frozenset(out)


def _node(corridor: Corridor, i: Intersection, lane_demand: dict[str, float], limits: Limits) -> _Node:
    omit = omitted_phases(i, lane_demand, limits)
    model = timing.resolve(i, resolution_s=limits.resolution_s, omit=omit)
    ratios = timing.lane_ratios(model, {lane.id: lane_demand[lane_key(i.id, lane.id)] for lane in i.lanes})
    y_sum, phase_ratios = timing.critical_ratios(model, ratios)
    low = max(corridor.cycle_min_s, i.cycle_min_s or 0.0, model.min_cycle_s)
    high = min(corridor.cycle_max_s, i.cycle_max_s or math.inf)
    if model.min_cycle_s > high + 1e-9:
        raise NoFeasibleCycle(
            f"intersection {i.id}: minimum greens ({sum(p.min_green_s for p in model.phases):g} s) and clearances "
            f"({model.lost_time_s:g} s) need a {model.min_cycle_s:g} s cycle, more than the {high:g} s allowed; "
            f"the current plan stays in force"
        )
    return _Node(
        intersection=i, model=model, omitted=omit, ratios=ratios, y_sum=y_sum, phase_ratios=phase_ratios,
        webster_s=timing.webster_cycle_s(model.lost_time_s, y_sum),
        capacity_s=timing.capacity_cycle_s(model, phase_ratios, limits.max_degree_of_saturation, low, max(low, high)),
        practical_s=min(
            timing.capacity_cycle_s(model, phase_ratios, limits.practical_degree_of_saturation, low, max(low, high)),
            high),
        low_s=low, high_s=high,
    )


def _movement_flows(corridor: Corridor, lane_demand: dict[str, float]) -> dict[str, dict[str, float]]:
    out = {}
    for i in corridor.intersections:
        flows = {m.name: 0.0 for m in i.movements}
        for lane in i.lanes:
            q = lane_demand.get(lane_key(i.id, lane.id), 0.0)
            for m in lane.movements:
                flows[m] += q / len(lane.movements)
        out[i.id] = {k: round(v, 1) for k, v in flows.items()}
    return out


def _direction_flows(corridor: Corridor, lane_demand: dict[str, float]) -> tuple[float, float]:
    """Mean flow on the arterial's through lanes in each direction."""
    sums = {"forward": [], "reverse": []}
    for i in corridor.intersections:
        for direction in ("forward", "reverse"):
            m = i.arterial_movement(direction)
            if m is None:
                continue
            q = sum(lane_demand.get(lane_key(i.id, lane.id), 0.0) for lane in i.lanes if m.name in lane.movements)
            sums[direction].append(q)
    f = sum(sums["forward"]) / len(sums["forward"]) if sums["forward"] else 0.0
    r = sum(sums["reverse"]) / len(sums["reverse"]) if sums["reverse"] else 0.0
    return f, r


def _direction_weights(fwd: float, rev: float) -> tuple[float, float]:
    """The peak direction weighs 1, the other its demand relative to the peak (MAXBAND's k)."""
    if fwd <= 0 and rev <= 0:
        return 1.0, 1.0
    if fwd >= rev:
        return 1.0, max(rev / fwd, MIN_MINOR_WEIGHT)
    return max(fwd / rev, MIN_MINOR_WEIGHT), 1.0


def _spare_weights(i: Intersection, phases, w_fwd: float, w_rev: float) -> list[float]:
    out = []
    for p in phases:
        w = 0.0
        for direction, weight in (("forward", w_fwd), ("reverse", w_rev)):
            m = i.arterial_movement(direction)
            if m is not None and m.name in p.served:
                w += weight
        out.append(w)
    return out


ANALYSIS_PERIOD_H = 0.25  # HCM's T for the incremental delay
ACCEL_MPS2, DECEL_MPS2 = 2.6, 4.5  # a passenger car's comfortable acceleration and braking


def _cycle_candidates(low: float, high: float, res: float) -> list[float]:
    first = timing.ceil_to(low, res)
    last = max(first, math.floor(round(high / res, 6)) * res)
    count = round((last - first) / res) + 1
    return [round(first + k * res, 6) for k in range(count)]


def _search(screen: _Screen, candidates: list[float], coarse: int = 3, keep: int = 3) -> list[tuple[float, float]]:
    """Every `coarse`-th cycle, then every cycle around the best few: (delay, cycle) of those evaluated."""
    scored = {c: screen.delay(c) for c in candidates[::coarse]}
    scored.setdefault(candidates[-1], screen.delay(candidates[-1]))
    for c in sorted(scored, key=lambda c: (scored[c], c))[:keep]:
        k = candidates.index(c)
        for j in range(max(0, k - coarse + 1), min(len(candidates), k + coarse)):
            if candidates[j] not in scored:
                scored[candidates[j]] = screen.delay(candidates[j])
    return [(d, c) for c, d in scored.items()]


class _Screen:
    """Splits, two-way band and estimated delay of a candidate common cycle.

    Delay per lane is HCM's: uniform d1 = C(1-g/C)^2 / 2(1 - min(1,x) g/C) times the progression
    factor, plus incremental d2. For the arterial's through lanes the progression factor is
    1 - f·b/g: the share f of arrivals that came through the upstream signal and, of those, the
    share the green band carries arrive on green (PF = 0 with a perfect band, 1 with none).
    """

    def __init__(self, corridor: Corridor, nodes: list[_Node], lane_demand: dict[str, float],
                 travel: tuple[float, ...], w_fwd: float, w_rev: float, limits: Limits) -> None:
        self.corridor = corridor
        self.nodes = nodes
        self.travel = travel
        self.w_fwd, self.w_rev = w_fwd, w_rev
        self.limits = limits
        self.weights = [_spare_weights(n.intersection, [p.phase for p in n.model.phases], w_fwd, w_rev)
                        for n in nodes]
        self.served = [[set(p.phase.served) for p in n.model.phases] for n in nodes]
        self.clearances = [[p.clearance_s for p in n.model.phases] for n in nodes]
        self.arterial = [{d: (m.name if (m := n.intersection.arterial_movement(d)) else None)
                          for d in ("forward", "reverse")} for n in nodes]
        self.lanes = []  # per node: (lane id, q, s, direction of the arterial through it carries or None)
        through_flow: list[dict[str, float]] = []
        for n, art in zip(nodes, self.arterial, strict=True):
            rows, flows = [], {"forward": 0.0, "reverse": 0.0}
            for lane in n.intersection.lanes:
                q = lane_demand.get(lane_key(n.intersection.id, lane.id), 0.0)
                direction = next((d for d in ("forward", "reverse") if art[d] and art[d] in lane.movements), None)
                if direction:
                    flows[direction] += q
                if n.model.lane_phases.get(lane.id):
                    rows.append((lane.id, q, lane.saturation_flow_vph, direction))
            self.lanes.append(rows)
            through_flow.append(flows)
        self.platoon = []  # per node and direction: share of through arrivals that came through upstream
        for k in range(len(nodes)):
            shares = {}
            for d, up in (("forward", k - 1), ("reverse", k + 1)):
                here = through_flow[k][d]
                shares[d] = min(1.0, through_flow[up][d] / here) if 0 <= up < len(nodes) and here > 0 else 0.0
            self.platoon.append(shares)
        self.movement_flows = _movement_flows(corridor, lane_demand)
        # Braking to a stop and pulling away again costs v/2a + v/2d beyond the time stood still.
        self.stop_cost = [
            {lane.id: (max(n.intersection.movement(m).speed_kmh for m in lane.movements) / 3.6)
             * (1 / (2 * ACCEL_MPS2) + 1 / (2 * DECEL_MPS2)) for lane in n.intersection.lanes}
            for n in nodes
        ]

    def splits(self, cycle: float) -> list[timing.Splits]:
        balanced = [timing.balanced_splits(n.model, n.ratios, cycle, w) for n, w in zip(self.nodes, self.weights,
                                                                                         strict=True)]
        design_x = max(b.max_degree_of_saturation for b in balanced)
        return [timing.coordinated_splits(n.model, n.ratios, cycle, design_x, w, b)
                for n, w, b in zip(self.nodes, self.weights, balanced, strict=True)]

    def windows(self, k: int, greens, direction: str) -> band.Window | None:
        movement = self.arterial[k][direction]
        if movement is None:
            return None
        durations = list(zip(greens, self.clearances[k], strict=True))
        return band.longest(band.windows_of(durations, self.served[k], movement))

    def tolerant(self, windows, direction: str) -> tuple:
        """Windows shortened by how much later than the design-speed band a driver up to the speed
        tolerance slower arrives, so the band still carries them (drift grows along the corridor)."""
        tol = self.limits.speed_tolerance
        if tol <= 0:
            return tuple(windows)
        t = self.travel
        out = []
        for k, w in enumerate(windows):
            since = t[k] - t[0] if direction == "forward" else t[-1] - t[k]
            late = since * (1 / (1 - tol) - 1)
            out.append(None if w is None else band.Window(w.start_s, max(w.length_s - late, min(w.length_s, 1.0))))
        return tuple(out)

    def queue_times(self, direction: str, cycle: float, windows) -> tuple[float, ...]:
        """MAXBAND's tau: green spent on vehicles that turned into the arterial upstream and wait at the stop line."""
        out = []
        items = self.corridor.intersections
        for k, i in enumerate(items):
            upstream = k - 1 if direction == "forward" else k + 1
            through = i.arterial_movement(direction)
            if through is None or not 0 <= upstream < len(items) or windows[k] is None:
                out.append(0.0)
                continue
            up = items[upstream]
            q_in = sum(self.movement_flows[up.id].get(m.name, 0.0) for m in up.movements
                       if m.feeds == direction and m.arterial != direction)
            lanes = sum(1 for lane in i.lanes if through.name in lane.movements) or 1
            queued = q_in * cycle / 3600.0 / lanes
            out.append(min(queued * self.limits.queue_headway_s, 0.5 * windows[k].length_s))
        return tuple(out)

    def delay(self, cycle: float) -> float:
        """Estimated total delay, vehicle-seconds per hour, of the corridor's signalised lanes."""
        chosen = self.splits(cycle)
        fwd = tuple(self.windows(k, s.greens_s, "forward") for k, s in enumerate(chosen))
        rev = tuple(self.windows(k, s.greens_s, "reverse") for k, s in enumerate(chosen))
        b_fwd, b_rev = band.two_way_band(band.BandProblem(
            cycle_s=cycle, travel_s=self.travel, forward=self.tolerant(fwd, "forward"),
            reverse=self.tolerant(rev, "reverse"), forward_weight=self.w_fwd,
            reverse_weight=self.w_rev, forward_queue_s=self.queue_times("forward", cycle, fwd),
            reverse_queue_s=self.queue_times("reverse", cycle, rev)))
        bands = {"forward": b_fwd, "reverse": b_rev}
        wins = {"forward": fwd, "reverse": rev}
        total = 0.0
        t = ANALYSIS_PERIOD_H
        for k, (n, s) in enumerate(zip(self.nodes, chosen, strict=True)):
            greens = s.greens_s
            for lane_id, q, sat, direction in self.lanes[k]:
                if q <= 0:
                    continue
                stop_cost = self.stop_cost[k][lane_id]
                g = sum(greens[p] for p in n.model.lane_phases[lane_id])
                share = g / cycle
                capacity = sat * share
                if capacity <= 0:
                    total += q * 3600.0
                    continue
                x = q / capacity
                d1 = 0.5 * cycle * (1 - share) ** 2 / (1 - min(1.0, x) * share)
                d2 = 900 * t * ((x - 1) + math.sqrt((x - 1) ** 2 + 4 * x / (capacity * t)))
                stopped = min(1.0, (1 - share) / (1 - min(1.0, x) * share))  # share of arrivals that stop
                if direction is not None and (w := wins[direction][k]) is not None and w.length_s > 0:
                    carried = 1 - self.platoon[k][direction] * min(1.0, bands[direction] / w.length_s)
                    d1 *= carried
                    stopped *= carried
                total += q * (d1 + d2 + stopped * stop_cost)
        return total


def _circular(delta: float, cycle: float) -> float:
    """delta folded into [-C/2, C/2)."""
    return (delta + cycle / 2) % cycle - cycle / 2


def _closest_shift(new: list[float], old: list[float], cycle: float) -> list[float]:
    """The band only fixes relative offsets: shift them all to move as little as possible from the old ones."""
    best = None
    for s in sorted({round((o - n) % cycle, 6) for n, o in zip(new, old, strict=True)}):
        moves = [abs(_circular(n + s - o, cycle)) for n, o in zip(new, old, strict=True)]
        key = (round(sum(moves), 6), round(max(moves), 6), s)
        if best is None or key < best[0]:
            best = (key, s)
    s = best[1] if best else 0.0
    return [(n + s) % cycle for n in new]
