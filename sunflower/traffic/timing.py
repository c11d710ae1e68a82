"""Signal timing formulas: ITE clearance intervals, pedestrian minimum greens, Webster's cycle, splits.

Lost time per phase is taken as its yellow plus all-red (start-up loss and the end-of-green
extension cancel out, as HCM assumes), so a phase's effective green equals its displayed green.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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


def pedestrian_min_green_s(crossing_m: float, *, walk_s: float = WALK_S, speed_mps: float = PED_SPEED_MPS) -> float:
    """Walk interval plus the time to cross at pedestrian speed; 0 when nobody crosses."""
    return walk_s + crossing_m / speed_mps if crossing_m > 0 else 0.0


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


def resolve(intersection: Intersection, *, resolution_s: float = 1.0) -> IntersectionModel:
    phases = intersection.phases
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
        min_green = max(phase.min_green_s, pedestrian_min_green_s(phase.ped_crossing_m))
        resolved.append(
            ResolvedPhase(
                name=phase.name, phase=phase,
                min_green_s=ceil_to(min_green, resolution_s),
                max_green_s=phase.max_green_s if phase.max_green_s is not None else math.inf,
                yellow_s=ceil_to(yellow, resolution_s), all_red_s=ceil_to(all_red, resolution_s),
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
        for lane, served in model.lane_phases.items() if served
    }


def critical_ratio_sum(model: IntersectionModel, ratios: dict[str, float]) -> float:
    """Y: the least total green fraction that gives every lane its flow ratio (see `critical_ratios`)."""
    return critical_ratios(model, ratios)[0]


def critical_ratios(model: IntersectionModel, ratios: dict[str, float]) -> tuple[float, tuple[float, ...]]:
    """Y and its share per phase.

    With one phase per lane, a phase's critical ratio is its largest lane ratio and Y their sum
    (Webster). Lanes that several phases discharge make it a small covering LP:
    minimise sum z_p subject to sum over the lane's phases of z_p >= y_lane.
    """
    n = len(model.phases)
    demands = [(model.lane_phases[lane], y) for lane, y in sorted(ratios.items()) if y > 0]
    if not demands:
        return 0.0, (0.0,) * n
    if all(len(served) == 1 for served, _ in demands):
        per_phase = [0.0] * n
        for served, y in demands:
            per_phase[served[0]] = max(per_phase[served[0]], y)
        return sum(per_phase), tuple(per_phase)
    from scipy.optimize import linprog

    a_ub = np.zeros((len(demands), n))
    b_ub = np.zeros(len(demands))
    for row, (served, y) in enumerate(demands):
        a_ub[row, list(served)] = -1.0
        b_ub[row] = -y
    result = linprog(np.ones(n), A_ub=a_ub, b_ub=b_ub, bounds=[(0, None)] * n, method="highs")
    z = tuple(float(v) for v in result.x)
    return sum(z), z


def capacity_cycle_s(model: IntersectionModel, phase_ratios: Sequence[float], max_degree_of_saturation: float,
                     low_s: float, high_s: float) -> float:
    """Shortest cycle in [low, high] whose greens keep every phase's ratio at or under the given x.

    Needs sum_p max(min_p, z_p C / x) <= C - L; the slack grows with C while Y < x. inf if none.
    """
    x = max_degree_of_saturation
    if sum(phase_ratios) >= x:
        return math.inf

    def slack(c: float) -> float:
        need = sum(max(p.min_green_s, z * c / x) for p, z in zip(model.phases, phase_ratios, strict=True))
        return c - model.lost_time_s - need

    if slack(high_s) < -1e-9:
        return math.inf
    if slack(low_s) >= 0:
        return low_s
    lo, hi = low_s, high_s
    for _ in range(40):
        mid = (lo + hi) / 2
        if slack(mid) >= 0:
            hi = mid
        else:
            lo = mid
    return hi


# --- splits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    greens_s: tuple[float, ...]  # displayed (= effective) green per phase
    max_degree_of_saturation: float
    balanced: bool  # True when no spare green was left to hand out (critical or oversaturated)


def lane_degrees_of_saturation(model: IntersectionModel, ratios: dict[str, float], greens: Sequence[float],
                               cycle_s: float) -> dict[str, float]:
    out = {}
    for lane, y in ratios.items():
        green = sum(greens[k] for k in model.lane_phases[lane])
        out[lane] = (y * cycle_s / green) if green > 0 else (math.inf if y > 0 else 0.0)
    return out


def splits(model: IntersectionModel, ratios: dict[str, float], cycle_s: float, *,
           design_degree_of_saturation: float | None = None,
           spare_weights: Sequence[float] | None = None) -> Splits:
    """Greens for one cycle: proportional to the critical flow ratios, never below a minimum green.

    First the greens that equalise (and so minimise) the highest lane degree of saturation; when
    `design_degree_of_saturation` is given and there is spare green beyond it, every lane keeps at
    least that much capacity and the rest goes to phases by `spare_weights` (the coordinated ones).
    """
    balanced = balanced_splits(model, ratios, cycle_s)
    if design_degree_of_saturation is None or spare_weights is None:
        return balanced
    return coordinated_splits(model, ratios, cycle_s, design_degree_of_saturation, spare_weights, balanced)


def _bounds(model: IntersectionModel) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float | None]]]:
    mins = np.array([p.min_green_s for p in model.phases], dtype=float)
    maxs = np.array([p.max_green_s for p in model.phases], dtype=float)
    return mins, maxs, [(lo, hi if math.isfinite(hi) else None) for lo, hi in zip(mins, maxs, strict=True)]


def balanced_splits(model: IntersectionModel, ratios: dict[str, float], cycle_s: float) -> Splits:
    """Greens with every critical lane at the same, least possible, degree of saturation (Webster's rule).

    Maximise lambda subject to sum over a lane's phases of g_p >= lambda * y * C, min <= g <= max,
    sum g = C - L; the highest degree of saturation is then 1 / lambda. With one phase per lane and
    no minimum binding this is exactly g_p proportional to the phase's critical ratio.
    """
    n = len(model.phases)
    available = cycle_s - model.lost_time_s
    mins, maxs, bounds = _bounds(model)
    if available < mins.sum() - 1e-9:
        raise ValueError(f"cycle {cycle_s} s cannot hold the minimum greens")
    demands = [(model.lane_phases[lane], y) for lane, y in sorted(ratios.items()) if y > 0]
    if not demands:
        return Splits(tuple(_spread(mins, maxs, available, None)), 0.0, balanced=False)
    if all(len(served) == 1 for served, _ in demands) and not np.isfinite(maxs).any():
        per_phase = np.zeros(n)
        for served, y in demands:
            per_phase[served[0]] = max(per_phase[served[0]], y)
        greens = _proportional(per_phase, mins, available)
        x = max(y * cycle_s / greens[served[0]] for served, y in demands)
        return Splits(tuple(float(g) for g in greens), float(x), balanced=True)
    from scipy.optimize import linprog

    a_ub = np.zeros((len(demands), n + 1))
    for row, (served, y) in enumerate(demands):
        a_ub[row, list(served)] = -1.0
        a_ub[row, n] = y * cycle_s
    a_eq = np.zeros((1, n + 1))
    a_eq[0, :n] = 1.0
    c = np.zeros(n + 1)
    c[n] = -1.0
    result = linprog(c, A_ub=a_ub, b_ub=np.zeros(len(demands)), A_eq=a_eq, b_eq=[available],
                     bounds=[*bounds, (0, None)], method="highs")
    if result.status != 0:
        raise ValueError(f"split problem infeasible: {result.message}")
    lam = float(result.x[n])
    return Splits(tuple(float(g) for g in result.x[:n]), 1.0 / lam if lam > 0 else math.inf, balanced=True)


def _proportional(critical: np.ndarray, mins: np.ndarray, available: float) -> np.ndarray:
    """g_p = share of the available green proportional to y_p, phases below their minimum pinned to it."""
    pinned = np.zeros(len(critical), dtype=bool)
    for _ in range(len(critical) + 1):
        free = ~pinned
        rest = available - mins[pinned].sum()
        total = critical[free].sum()
        greens = np.where(pinned, mins, 0.0)
        if total <= 0:
            greens[free] = mins[free] + (rest - mins[free].sum()) / max(free.sum(), 1)
            return greens
        greens[free] = rest * critical[free] / total
        low = free & (greens < mins - 1e-12)
        if not low.any():
            return greens
        pinned |= low
    return np.maximum(greens, mins)


def coordinated_splits(model: IntersectionModel, ratios: dict[str, float], cycle_s: float,
                       design_degree_of_saturation: float, spare_weights: Sequence[float],
                       balanced: Splits | None = None) -> Splits:
    """Every lane at or under the design degree of saturation; the spare green goes to phases by weight."""
    balanced = balanced or balanced_splits(model, ratios, cycle_s)
    target = design_degree_of_saturation
    if balanced.max_degree_of_saturation >= target - 1e-9 or not any(spare_weights) or target <= 0:
        return balanced
    from scipy.optimize import linprog

    n = len(model.phases)
    available = cycle_s - model.lost_time_s
    _, _, bounds = _bounds(model)
    demands = [(model.lane_phases[lane], y) for lane, y in sorted(ratios.items()) if y > 0]
    a_ub = np.zeros((len(demands), n))
    b_ub = np.zeros(len(demands))
    for row, (served, y) in enumerate(demands):
        a_ub[row, list(served)] = -1.0
        b_ub[row] = -y * cycle_s / target
    greens = np.asarray(balanced.greens_s)
    weights = np.asarray(spare_weights, dtype=float)
    # A tiny pull towards the balanced greens makes the optimum unique.
    result = linprog(-(weights + 1e-6 * greens / max(greens.max(), 1e-9)), A_ub=a_ub if demands else None,
                     b_ub=b_ub if demands else None, A_eq=np.ones((1, n)), b_eq=[available], bounds=bounds,
                     method="highs")
    if result.status != 0:
        return balanced
    x = max(lane_degrees_of_saturation(model, ratios, result.x, cycle_s).values(), default=0.0)
    return Splits(tuple(float(g) for g in result.x), x, balanced=False)


def _spread(mins: np.ndarray, maxs: np.ndarray, available: float, weights: Sequence[float] | None) -> list[float]:
    """No demand at all: minimum greens, and the rest by weight (or evenly)."""
    greens = mins.astype(float).copy()
    spare = available - greens.sum()
    w = np.asarray(weights if weights is not None and any(weights) else [1.0] * len(mins), dtype=float)
    for _ in range(len(mins)):
        if spare <= 1e-9:
            break
        room = np.where(greens < maxs, w, 0.0)
        if room.sum() <= 0:
            break
        add = np.minimum(spare * room / room.sum(), maxs - greens)
        greens += add
        spare -= add.sum()
    if spare > 1e-9:  # every phase at its maximum: the first phase takes the rest
        greens[0] += spare
    return [float(g) for g in greens]


def round_greens(greens: Sequence[float], total_s: float, mins: Sequence[float], resolution_s: float) -> list[float]:
    """Round to the controller's resolution keeping the exact total (largest remainder), never below a minimum."""
    units_total = int(round(total_s / resolution_s))
    exact = [g / resolution_s for g in greens]
    floors = [max(math.floor(e + 1e-9), int(round(m / resolution_s))) for e, m in zip(exact, mins, strict=True)]
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
