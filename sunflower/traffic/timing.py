"""Signal timing formulas: ITE clearance intervals, pedestrian minimum greens, Webster's cycle, splits.

Lost time per phase is taken as its yellow plus all-red (start-up loss and the end-of-green
extension cancel out, as HCM assumes), so a phase's effective green equals its displayed green.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sunflower.traffic.models import Intersection, Phase

GRAVITY = 9.81
ITE_REACTION_S = 1.0
ITE_DECEL_MPS2 = 3.05  # 10 ft/s^2
VEHICLE_LENGTH_M = 6.1  # 20 ft
YELLOW_MIN_S, YELLOW_MAX_S = 3.0, 6.0
WALK_S = 7.0
PED_SPEED_MPS = 1.2


def ite_yellow_s(speed_kmh: float, *, reaction_s: float = ITE_REACTION_S, decel_mps2: float = ITE_DECEL_MPS2,
                 grade: float = 0.0) -> float:
    """ITE kinematic yellow: t + v / (2a + 2Gg), v in m/s, grade g as a fraction (uphill positive)."""
    v = speed_kmh / 3.6
    return reaction_s + v / (2 * decel_mps2 + 2 * GRAVITY * grade)


def ite_all_red_s(speed_kmh: float, crossing_m: float, *, vehicle_length_m: float = VEHICLE_LENGTH_M) -> float:
    """ITE red clearance: (W + L) / v."""
    return (crossing_m + vehicle_length_m) / (speed_kmh / 3.6)


def pedestrian_min_green_s(crossing_m: float, *, walk_s: float = WALK_S, speed_mps: float = PED_SPEED_MPS,
                           clearance_s: float = 0.0) -> float:
    """Walk, then the pedestrian clearance (crossing / walking speed), of which the part that fits in the
    phase's yellow and all-red (`clearance_s`) runs there; 0 when nobody crosses."""
    if crossing_m <= 0:
        return 0.0
    return walk_s + max(0.0, crossing_m / speed_mps - clearance_s)


def webster_cycle_s(lost_time_s: float, critical_ratio_sum: float) -> float:
    """Webster's optimum C0 = (1.5 L + 5) / (1 - Y); infinite when Y >= 1 (no cycle serves the demand)."""
    if critical_ratio_sum >= 1.0:
        return math.inf
    return (1.5 * lost_time_s + 5.0) / (1.0 - critical_ratio_sum)


def bounded(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def ceil_to(value: float, resolution: float) -> float:
    return math.ceil(round(value / resolution, 6)) * resolution


# --- an intersection's phases, resolved -------------------------------------------------------


@dataclass(frozen=True)
class ResolvedPhase:
    name: str
    phase: Phase
    min_green_s: float
    max_green_s: float
    yellow_s: float
    all_red_s: float

    @property
    def clearance_s(self) -> float:
        return self.yellow_s + self.all_red_s


@dataclass(frozen=True)
class IntersectionModel:
    """Everything the splits need: phases with clearances and minimums, and which phases serve each lane."""

    intersection: Intersection
    phases: tuple[ResolvedPhase, ...]
    lane_phases: dict[str, tuple[int, ...]]  # lane id -> indices of the phases that discharge it
    lane_saturation_vph: dict[str, float]

    @property
    def lost_time_s(self) -> float:
        return sum(p.clearance_s for p in self.phases)

    @property
    def min_cycle_s(self) -> float:
        return sum(p.min_green_s for p in self.phases) + self.lost_time_s


def ending_movements(phases: Sequence[Phase], index: int) -> tuple[str, ...]:
    """Movements that lose their green when phase `index` ends (they are not served by the next)."""
    nxt = set(phases[(index + 1) % len(phases)].served)
    return tuple(m for m in phases[index].served if m not in nxt)


def resolve(intersection: Intersection, *, resolution_s: float = 1.0, omit: frozenset[str] = frozenset()
            ) -> IntersectionModel:
    """Clearances and minimum greens of the phases that run (all but `omit`), and which discharge each lane."""
    phases = tuple(p for p in intersection.phases if p.name not in omit) or intersection.phases
    resolved = []
    for k, phase in enumerate(phases):
        ending = [intersection.movement(m) for m in ending_movements(phases, k)]
        if phase.yellow_s is not None:
            yellow = phase.yellow_s
        elif ending:
            yellow = bounded(max(ite_yellow_s(m.speed_kmh) for m in ending), YELLOW_MIN_S, YELLOW_MAX_S)
        else:
            yellow = 0.0
        if phase.all_red_s is not None:
            all_red = phase.all_red_s
        elif ending:
            all_red = max(ite_all_red_s(m.speed_kmh, m.crossing_m) for m in ending)
        else:
            all_red = 0.0
        yellow, all_red = ceil_to(yellow, resolution_s), ceil_to(all_red, resolution_s)
        min_green = max(phase.min_green_s, pedestrian_min_green_s(phase.ped_crossing_m, clearance_s=yellow + all_red))
        resolved.append(
            ResolvedPhase(
                name=phase.name, phase=phase,
                min_green_s=ceil_to(min_green, resolution_s),
                max_green_s=phase.max_green_s if phase.max_green_s is not None else math.inf,
                yellow_s=yellow, all_red_s=all_red,
            )
        )
    lane_phases = {lane.id: _discharging_phases(phases, lane.movements) for lane in intersection.lanes}
    return IntersectionModel(
        intersection=intersection, phases=tuple(resolved), lane_phases=lane_phases,
        lane_saturation_vph={lane.id: lane.saturation_flow_vph for lane in intersection.lanes},
    )


def _discharging_phases(phases: Sequence[Phase], movements: Sequence[str]) -> tuple[int, ...]:
    """Phases in which a lane's vehicles get protected green; failing that, any green; failing that, some."""
    wanted = set(movements)
    for test in (
        lambda p: wanted <= set(p.movements),
        lambda p: wanted <= set(p.served),
        lambda p: bool(wanted & set(p.served)),
    ):
        found = tuple(k for k, p in enumerate(phases) if test(p))
        if found:
            return found
    return ()


# --- critical ratios and Webster --------------------------------------------------------------


def lane_ratios(model: IntersectionModel, lane_flows_vph: dict[str, float]) -> dict[str, float]:
    """Flow ratio y = q / s of every lane the phases discharge."""
    return {
        lane: lane_flows_vph.get(lane, 0.0) / model.lane_saturation_vph[lane]
        for lane, served in sorted(model.lane_phases.items()) if served
    }


@dataclass(frozen=True)
class _Demand:
    """Lane needs grouped for speed: per phase the largest need of lanes only it discharges; the rest."""

    single: tuple[float, ...]
    multi: tuple[tuple[tuple[int, ...], float], ...]


def _demand(model: IntersectionModel, needs: dict[str, float]) -> _Demand:
    single = [0.0] * len(model.phases)
    multi = []
    for lane, need in needs.items():
        served = model.lane_phases[lane]
        if len(served) == 1:
            single[served[0]] = max(single[served[0]], need)
        elif need > 0:
            multi.append((served, need))
    return _Demand(tuple(single), tuple(sorted(multi, key=lambda sn: (-sn[1], sn[0]))))


def _cover(demand: _Demand, scale: float, floors: Sequence[float], weights: Sequence[float] | None = None
           ) -> list[float]:
    """Least greens with each lane's phases adding up to scale x its need, no phase below its floor.

    A lane one phase discharges sets that phase's green; a lane several phases discharge (a lagging
    through, say) tops up whichever of them weighs most (the coordinated one), the first on a tie.
    Exact when every lane has one phase, and for the lead/lag patterns netconvert builds.
    """
    greens = [max(f, scale * need) for f, need in zip(floors, demand.single, strict=True)]
    for served, need in demand.multi:
        short = scale * need - sum(greens[k] for k in served)
        if short > 0:
            k = max(served, key=lambda k: ((weights[k] if weights else 0.0), -k))
            greens[k] += short
    return greens


def critical_ratio_sum(model: IntersectionModel, ratios: dict[str, float]) -> float:
    """Y, Webster's sum of critical flow ratios (see `critical_ratios`)."""
    return critical_ratios(model, ratios)[0]


def critical_ratios(model: IntersectionModel, ratios: dict[str, float]) -> tuple[float, tuple[float, ...]]:
    """Y and each phase's critical ratio: the largest lane ratio it discharges (Webster).

    A lane that several phases discharge counts only for what its phases' own critical ratios
    do not already give it.
    """
    z = _cover(_demand(model, ratios), 1.0, [0.0] * len(model.phases))
    return sum(z), tuple(z)


def capacity_cycle_s(model: IntersectionModel, phase_ratios: Sequence[float], max_degree_of_saturation: float,
                     low_s: float, high_s: float) -> float:
    """Shortest cycle in [low, high] whose greens keep every phase's ratio at or under the given x; inf if none.

    Needs C - L - sum_p max(min_p, z_p C / x) >= 0; the left side is concave and, while Y < x,
    increasing in C, so the root is found between the breakpoints C = min_p x / z_p.
    """
    x = max_degree_of_saturation
    if sum(phase_ratios) >= x:
        return math.inf
    mins = [p.min_green_s for p in model.phases]
    rates = [z / x for z in phase_ratios]

    def slack(c: float) -> float:
        return c - model.lost_time_s - sum(max(m, r * c) for m, r in zip(mins, rates, strict=True))

    if slack(high_s) < -1e-9:
        return math.inf
    if slack(low_s) >= -1e-9:
        return low_s
    points = sorted({low_s, high_s, *(m / r for m, r in zip(mins, rates, strict=True) if r > 0 and low_s < m / r < high_s)})
    for a, b in itertools.pairwise(points):
        sa, sb = slack(a), slack(b)
        if sb >= -1e-9:
            return a + (b - a) * (-sa) / (sb - sa) if sb != sa else b
    return math.inf


# --- splits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    greens_s: tuple[float, ...]  # displayed (= effective) green per phase
    max_degree_of_saturation: float
    balanced: bool  # True when no spare green was left to hand out (critical or oversaturated)


def lane_greens(model: IntersectionModel, greens: Sequence[float]) -> dict[str, float]:
    return {lane: sum(greens[k] for k in served) for lane, served in model.lane_phases.items() if served}


def lane_degrees_of_saturation(model: IntersectionModel, ratios: dict[str, float], greens: Sequence[float],
                               cycle_s: float) -> dict[str, float]:
    out = {}
    for lane, y in ratios.items():
        green = sum(greens[k] for k in model.lane_phases[lane])
        out[lane] = (y * cycle_s / green) if green > 0 else (math.inf if y > 0 else 0.0)
    return out


def balanced_splits(model: IntersectionModel, ratios: dict[str, float], cycle_s: float,
                    weights: Sequence[float] | None = None) -> Splits:
    """Greens proportional to the critical flow ratios, phases below their minimum green pinned to it.

    That is the greens with every critical lane at one, least possible, degree of saturation x:
    the x whose needs (max(min_p, y_p C / x) per phase) just fill the cycle's green time. The
    total need is convex, piecewise linear and increasing in u = 1/x, so Newton's method from above
    lands on it exactly after at most one step per breakpoint.
    """
    available = cycle_s - model.lost_time_s
    mins = [p.min_green_s for p in model.phases]
    maxs = [p.max_green_s for p in model.phases]
    if available < sum(mins) - 1e-9:
        raise ValueError(f"cycle {cycle_s} s cannot hold the minimum greens")
    live = {lane: y * cycle_s for lane, y in ratios.items() if y > 0}
    if not live:
        return Splits(tuple(_spread(mins, maxs, available, weights)), 0.0, balanced=False)
    demand = _demand(model, live)

    def excess(u: float) -> float:
        return sum(_cover(demand, u, mins, weights)) - available

    u = available / min(live.values())  # one lane alone would take all the green: too much
    for _ in range(4 * len(mins) + 8):
        f = excess(u)
        if f <= 1e-9:
            break
        h = u * 1e-6
        slope = (f - excess(u - h)) / h
        if slope <= 1e-12:
            break
        u = max(u - f / slope, 0.0)
    greens = _spread(_cover(demand, u, mins, weights), maxs, available, weights)
    x = max(lane_degrees_of_saturation(model, ratios, greens, cycle_s).values())
    return Splits(tuple(greens), x, balanced=True)


def coordinated_splits(model: IntersectionModel, ratios: dict[str, float], cycle_s: float,
                       design_degree_of_saturation: float, spare_weights: Sequence[float],
                       balanced: Splits | None = None) -> Splits:
    """Every lane at or under the design degree of saturation; the spare green goes to phases by weight."""
    balanced = balanced or balanced_splits(model, ratios, cycle_s, spare_weights)
    if balanced.max_degree_of_saturation >= design_degree_of_saturation - 1e-9 or not any(spare_weights) \
            or design_degree_of_saturation <= 0:
        return balanced
    live = {lane: y * cycle_s for lane, y in ratios.items() if y > 0}
    greens = _cover(_demand(model, live), 1.0 / design_degree_of_saturation,
                    [p.min_green_s for p in model.phases], spare_weights)
    available = cycle_s - model.lost_time_s
    if sum(greens) > available + 1e-9:
        return balanced
    greens = _spread(greens, [p.max_green_s for p in model.phases], available, spare_weights)
    x = max(lane_degrees_of_saturation(model, ratios, greens, cycle_s).values(), default=0.0)
    return Splits(tuple(greens), x, balanced=False)


def splits(model: IntersectionModel, ratios: dict[str, float], cycle_s: float, *,
           design_degree_of_saturation: float | None = None,
           spare_weights: Sequence[float] | None = None) -> Splits:
    """Balanced (Webster) greens; with a design x and weights, the spare beyond that x goes by weight."""
    balanced = balanced_splits(model, ratios, cycle_s, spare_weights)
    if design_degree_of_saturation is None or spare_weights is None:
        return balanced
    return coordinated_splits(model, ratios, cycle_s, design_degree_of_saturation, spare_weights, balanced)


def _spread(mins: Sequence[float], maxs: Sequence[float], available: float, weights: Sequence[float] | None
            ) -> list[float]:
    """The greens given (at least the minimums), and the rest by weight (or evenly), none past its maximum."""
    greens = [float(m) for m in mins]
    w = list(weights) if weights is not None and any(weights) else [1.0] * len(mins)
    spare = available - sum(greens)
    for _ in range(len(mins)):
        if spare <= 1e-9:
            break
        room = [wk if g < mx else 0.0 for wk, g, mx in zip(w, greens, maxs, strict=True)]
        if sum(room) <= 0:
            break
        add = [min(spare * r / sum(room), mx - g) for r, g, mx in zip(room, greens, maxs, strict=True)]
        greens = [g + a for g, a in zip(greens, add, strict=True)]
        spare -= sum(add)
    if spare > 1e-9:  # every phase at its maximum: the first phase takes the rest
        greens[0] += spare
    return greens


def round_greens(greens: Sequence[float], total_s: float, mins: Sequence[float], resolution_s: float) -> list[float]:
    """Round to the controller's resolution keeping the exact total (largest remainder), never below a minimum."""
    units_total = round(total_s / resolution_s)
    exact = [g / resolution_s for g in greens]
    floors = [max(math.floor(e + 1e-9), round(m / resolution_s)) for e, m in zip(exact, mins, strict=True)]
    spare = units_total - sum(floors)
    order = sorted(range(len(exact)), key=lambda k: (-(exact[k] - math.floor(exact[k] + 1e-9)), k))
    i = 0
    while spare > 0:
        floors[order[i % len(order)]] += 1
        spare -= 1
        i += 1
    while spare < 0:  # minimums pushed us over: take back from the largest greens above their minimum
        k = max((k for k in range(len(floors)) if floors[k] > round(mins[k] / resolution_s)),
                key=lambda k: (floors[k] - exact[k], floors[k]))
        floors[k] -= 1
        spare += 1
    return [u * resolution_s for u in floors]
