"""Two-way green bandwidth at the design speed: MAXBAND offsets (a MILP solved by HiGHS) and evaluation.

The splits are fixed before this step, so each intersection i has, for each direction, a green
window [s_i, s_i + g_i) of the arterial through movement in its own cycle time, and travel time
t_i from the first intersection at the design speed. With u_i / ū_i the position of the forward /
reverse band's lower edge inside those windows and Δ the time between the two bands passing the
first intersection, the offsets are consistent iff, for some integers m_i (the loop variables),

    u_i - ū_i + m_i C - Δ = 2 t_i                       (m_1 = 0)
    s_i + τ_i <= u_i <= s_i + g_i - b,   s̄_i + τ̄_i <= ū_i <= s̄_i + ḡ_i - b̄

and then the offset of i is u_1 + t_i - u_i (mod C). MAXBAND maximises b + k b̄ subject to
b̄ >= k b, where k is the minor direction's demand relative to the peak's (Little, 1981); τ is the
time the green spends clearing vehicles queued before the platoon arrives. A small reward for
centring each band in its window settles ties and gives vehicles off the design speed some margin.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sunflower.traffic.models import Corridor, Direction, IntersectionTiming, Plan

CENTRING_WEIGHT = 0.02


@dataclass(frozen=True)
class Window:
    """Green of the arterial through movement in local cycle time: [start_s, start_s + length_s)."""

    start_s: float
    length_s: float


@dataclass(frozen=True)
class BandProblem:
    cycle_s: float
    travel_s: tuple[float, ...]  # design-speed travel time from the first intersection
    forward: tuple[Window | None, ...]  # None: no through green in that direction here
    reverse: tuple[Window | None, ...]
    forward_weight: float = 1.0
    reverse_weight: float = 1.0
    forward_queue_s: tuple[float, ...] | None = None  # τ_i
    reverse_queue_s: tuple[float, ...] | None = None
    minor_share: bool = False  # also require b_minor >= k b_major (k = minor weight / major weight)


@dataclass(frozen=True)
class BandSolution:
    offsets_s: tuple[float, ...]
    forward_s: float
    reverse_s: float


def green_windows(timing: IntersectionTiming, movement: str) -> list[Window]:
    """Every green interval of a movement in the cycle, merged across phase changes and the cycle end."""
    return windows_of([(p.green_s, p.yellow_s + p.all_red_s) for p in timing.phases],
                      [set(p.movements) | set(p.permissive) for p in timing.phases], movement)


def windows_of(durations: Sequence[tuple[float, float]], served: Sequence[set[str]], movement: str) -> list[Window]:
    """Green intervals of a movement given each phase's (green, clearance) and the movements it serves."""
    pieces: list[tuple[float, float]] = []
    t = 0.0
    n = len(durations)
    for k, (green, clearance) in enumerate(durations):
        if movement in served[k]:
            pieces.append((t, t + green))
            if movement in served[(k + 1) % n]:
                pieces.append((t + green, t + green + clearance))
        t += green + clearance
    cycle = t
    merged: list[list[float]] = []
    for start, end in pieces:
        if end <= start:
            continue
        if merged and abs(merged[-1][1] - start) < 1e-9:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    if len(merged) > 1 and merged[0][0] < 1e-9 and abs(merged[-1][1] - cycle) < 1e-9:
        first = merged.pop(0)
        merged[-1][1] = cycle + first[1]
    return [Window(s, e - s) for s, e in merged]


def longest(windows: Sequence[Window]) -> Window | None:
    return max(windows, key=lambda w: (w.length_s, -w.start_s)) if windows else None


def through_window(timing: IntersectionTiming, movement: str | None) -> Window | None:
    if movement is None:
        return None
    return longest(green_windows(timing, movement))


def corridor_windows(corridor: Corridor, timings: Sequence[IntersectionTiming], direction: Direction
                     ) -> tuple[Window | None, ...]:
    out = []
    for intersection, timing in zip(corridor.intersections, timings, strict=True):
        movement = intersection.arterial_movement(direction)
        out.append(through_window(timing, movement.name if movement else None))
    return tuple(out)


def travel_times_s(corridor: Corridor) -> tuple[float, ...]:
    first = corridor.intersections[0].position_m
    return tuple((i.position_m - first) / corridor.design_speed_mps for i in corridor.intersections)


# --- MAXBAND ---------------------------------------------------------------------------------


def two_way_band(problem: BandProblem) -> tuple[float, float]:
    """The MAXBAND optimum (b, b̄) in closed form, for screening many cycles quickly.

    Eliminating u and ū: for fixed b and b̄ a Δ exists iff the interval [Δ - b̄, Δ + b] fits, modulo C,
    inside every arc [lo_i - h̄i_i - 2t_i, hi_i - l̄o_i - 2t_i]. So the largest b + b̄ is the longest
    interval that fits in all of them (found by bisection), each band is at most its narrowest
    window, and the weights share the total out the way the MILP's objective does.
    """
    cycle = problem.cycle_s
    n = len(problem.travel_s)
    tau_f = problem.forward_queue_s or (0.0,) * n
    tau_r = problem.reverse_queue_s or (0.0,) * n
    use_fwd = all(w is not None for w in problem.forward) and problem.forward_weight > 0
    use_rev = all(w is not None for w in problem.reverse) and problem.reverse_weight > 0
    cap_f = min((w.length_s - min(t, 0.5 * w.length_s) for w, t in zip(problem.forward, tau_f, strict=True)),
                default=0.0) if use_fwd else 0.0
    cap_r = min((w.length_s - min(t, 0.5 * w.length_s) for w, t in zip(problem.reverse, tau_r, strict=True)),
                default=0.0) if use_rev else 0.0
    if not (use_fwd and use_rev) or n == 1:
        return cap_f, cap_r
    starts, lengths = [], []
    for i in range(n):
        f, r = problem.forward[i], problem.reverse[i]
        f_lo = f.start_s + min(tau_f[i], 0.5 * f.length_s)
        r_lo = r.start_s + min(tau_r[i], 0.5 * r.length_s)
        starts.append(f_lo - (r.start_s + r.length_s) - 2 * problem.travel_s[i])
        lengths.append((f.start_s + f.length_s - f_lo) + (r.start_s + r.length_s - r_lo))

    def fits(total: float) -> bool:
        """Some J of this length lies in every arc: its start is in every [A_i, B_i - total] (mod C)."""
        arcs = [(0.0, cycle)]
        for a, length in zip(starts, lengths, strict=True):
            room = length - total
            if room < -1e-9:
                return False
            arcs = _intersect_arcs(arcs, (a % cycle, min(room + 1e-9, cycle)), cycle)
            if not arcs:
                return False
        return True

    lo, hi = 0.0, min(lengths)
    if not fits(0.0):  # no two-way band: the peak direction's alone, as maxband falls back to
        return (cap_f, 0.0) if problem.forward_weight >= problem.reverse_weight else (0.0, cap_r)
    for _ in range(24):  # to within min(lengths) / 2^24: far below a second
        mid = (lo + hi) / 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    total = lo
    wf, wr = problem.forward_weight, problem.reverse_weight
    if wf >= wr:
        b, bb = _share(total, cap_f, cap_r, wr / wf, problem.minor_share)
        one_way = (cap_f, 0.0)
    else:
        bb, b = _share(total, cap_r, cap_f, wf / wr, problem.minor_share)
        one_way = (0.0, cap_r)
    if not problem.minor_share and wf * one_way[0] + wr * one_way[1] > wf * b + wr * bb + 1e-9:
        return one_way  # the peak direction alone is worth more than any two-way band
    return b, bb


def _share(total: float, cap_major: float, cap_minor: float, k: float, minor_share: bool) -> tuple[float, float]:
    """max major + k·minor with major + minor <= total, each under its cap, and (minor_share) minor >= k·major."""
    if not minor_share:
        major = min(cap_major, total)
        return major, max(0.0, min(cap_minor, total - major))
    best = (0.0, 0.0, 0.0)
    candidates = [cap_major, total / (1 + k), total - cap_minor, 0.0]
    if k > 0:
        candidates.append(cap_minor / k)
    for major in candidates:
        major = max(0.0, min(major, cap_major))
        minor = max(0.0, min(cap_minor, total - major))
        if minor < k * major - 1e-9 or major + minor > total + 1e-9:
            continue
        value = major + k * minor
        if value > best[0] + 1e-12:
            best = (value, major, minor)
    return best[1], best[2]


def maxband(problem: BandProblem) -> BandSolution:
    """Offsets that maximise the weighted two-way bandwidth (HiGHS branch and bound)."""
    # numpy and scipy only here: the rest of this module (a plan's band) runs in the API function,
    # which has neither.
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    cycle = problem.cycle_s
    n = len(problem.travel_s)
    if n == 1:
        fw, rv = problem.forward[0], problem.reverse[0]
        return BandSolution((0.0,), fw.length_s if fw else 0.0, rv.length_s if rv else 0.0)
    use_fwd = all(w is not None for w in problem.forward) and problem.forward_weight > 0
    use_rev = all(w is not None for w in problem.reverse) and problem.reverse_weight > 0
    if not use_fwd and not use_rev:
        return BandSolution(tuple(0.0 for _ in range(n)), 0.0, 0.0)
    tau_f = problem.forward_queue_s or (0.0,) * n
    tau_r = problem.reverse_queue_s or (0.0,) * n
    # A direction without a band still needs windows for the algebra: give it the whole cycle.
    fwd = [w if (use_fwd and w) else Window(0.0, cycle) for w in problem.forward]
    rev = [w if (use_rev and w) else Window(0.0, cycle) for w in problem.reverse]

    # Variables: b, bb, u[n], ub[n], m[n] (m_0 fixed 0), delta, z[n], zb[n]
    B, BB = 0, 1
    U = 2
    UB = U + n
    M = UB + n
    D = M + n
    Z = D + 1
    ZB = Z + n
    nvar = ZB + n
    lo = np.full(nvar, -np.inf)
    hi = np.full(nvar, np.inf)
    integrality = np.zeros(nvar)
    lo[B], hi[B] = 0.0, (cycle if use_fwd else 0.0)
    lo[BB], hi[BB] = 0.0, (cycle if use_rev else 0.0)
    rows: list[np.ndarray] = []
    rlo: list[float] = []
    rhi: list[float] = []

    def row(coeffs: dict[int, float], low: float, high: float) -> None:
        r = np.zeros(nvar)
        for k, v in coeffs.items():
            r[k] += v
        rows.append(r)
        rlo.append(low)
        rhi.append(high)

    f_lo = [fwd[i].start_s + min(tau_f[i], 0.5 * fwd[i].length_s) for i in range(n)]
    f_hi = [fwd[i].start_s + fwd[i].length_s for i in range(n)]
    r_lo = [rev[i].start_s + min(tau_r[i], 0.5 * rev[i].length_s) for i in range(n)]
    r_hi = [rev[i].start_s + rev[i].length_s for i in range(n)]
    # Δ = u_1 - ū_1, which bounds Δ and through it every loop variable tightly.
    d_lo, d_hi = f_lo[0] - r_hi[0], f_hi[0] - r_lo[0]
    lo[D], hi[D] = d_lo, d_hi
    for i in range(n):
        lo[U + i], hi[U + i] = f_lo[i], f_hi[i]
        lo[UB + i], hi[UB + i] = r_lo[i], r_hi[i]
        row({U + i: 1.0, B: 1.0}, -np.inf, f_hi[i])
        row({UB + i: 1.0, BB: 1.0}, -np.inf, r_hi[i])
        # Centring: z_i <= u_i - lo_i and z_i <= hi_i - b - u_i
        lo[Z + i], hi[Z + i] = 0.0, cycle
        lo[ZB + i], hi[ZB + i] = 0.0, cycle
        row({Z + i: 1.0, U + i: -1.0}, -np.inf, -f_lo[i])
        row({Z + i: 1.0, U + i: 1.0, B: 1.0}, -np.inf, f_hi[i])
        row({ZB + i: 1.0, UB + i: -1.0}, -np.inf, -r_lo[i])
        row({ZB + i: 1.0, UB + i: 1.0, BB: 1.0}, -np.inf, r_hi[i])
        two_t = 2.0 * problem.travel_s[i]
        if i == 0:
            lo[M], hi[M] = 0.0, 0.0
        else:
            lo[M + i] = math.floor((two_t + d_lo - f_hi[i] + r_lo[i]) / cycle - 1e-9)
            hi[M + i] = math.ceil((two_t + d_hi - f_lo[i] + r_hi[i]) / cycle + 1e-9)
        integrality[M + i] = 1
        row({U + i: 1.0, UB + i: -1.0, M + i: cycle, D: -1.0}, two_t, two_t)

    wf = problem.forward_weight if use_fwd else 0.0
    wr = problem.reverse_weight if use_rev else 0.0
    if use_fwd and use_rev and problem.minor_share:  # optional: b_minor >= k * b_major (Little's ratio)
        if wf >= wr:
            row({BB: 1.0, B: -wr / wf}, 0.0, np.inf)
        else:
            row({B: 1.0, BB: -wf / wr}, 0.0, np.inf)
    c = np.zeros(nvar)
    c[B], c[BB] = -wf, -wr
    eps = CENTRING_WEIGHT * max(wf, wr) / n
    c[Z:Z + n] = -eps if use_fwd else 0.0
    c[ZB:ZB + n] = -eps if use_rev else 0.0

    result = milp(c, constraints=LinearConstraint(np.vstack(rows), rlo, rhi), integrality=integrality,
                  bounds=Bounds(lo, hi), options={"time_limit": 5.0})
    if result.x is None:
        if use_fwd and use_rev:  # no two-way band at all: the peak direction's alone
            keep_fwd = problem.forward_weight >= problem.reverse_weight
            return maxband(dataclasses.replace(problem, forward_weight=problem.forward_weight if keep_fwd else 0.0,
                                               reverse_weight=0.0 if keep_fwd else problem.reverse_weight))
        raise RuntimeError(f"MAXBAND found no solution: {result.message}")
    x = result.x
    if use_fwd and use_rev and not problem.minor_share:
        keep_fwd = wf >= wr
        cap = min((w.length_s - min(t, 0.5 * w.length_s)) for w, t in zip(
            problem.forward if keep_fwd else problem.reverse, tau_f if keep_fwd else tau_r, strict=True))
        if max(wf, wr) * cap > wf * x[B] + wr * x[BB] + 1e-6:  # one-way progression is worth more
            return maxband(dataclasses.replace(problem, forward_weight=wf if keep_fwd else 0.0,
                                               reverse_weight=0.0 if keep_fwd else wr))
    u = x[U:U + n]
    offsets = tuple(float((u[0] + problem.travel_s[i] - u[i]) % cycle) for i in range(n))
    return BandSolution(offsets, float(x[B]) if use_fwd else 0.0, float(x[BB]) if use_rev else 0.0)


# --- evaluation of given offsets --------------------------------------------------------------


def _intersect_arcs(arcs: list[tuple[float, float]], arc: tuple[float, float], cycle: float) -> list[tuple[float, float]]:
    """Intersect a set of disjoint arcs [a, a+l) on a circle of length `cycle` with one more arc."""
    b, lb = arc
    if lb >= cycle - 1e-9:
        return arcs
    out = []
    for a, la in arcs:
        for shift in (-cycle, 0.0, cycle):
            s = max(a, b + shift)
            e = min(a + la, b + shift + lb)
            if e - s > 1e-9:
                out.append((s % cycle, e - s))
    return out


def _longest_arc(arcs: list[tuple[float, float]], cycle: float) -> float:
    return _longest_arc_at(arcs, cycle)[1]


def _longest_arc_at(arcs: list[tuple[float, float]], cycle: float) -> tuple[float, float]:
    """(start, length) of the longest arc once touching arcs (across the cycle end too) are merged."""
    if not arcs:
        return 0.0, 0.0
    arcs = sorted(arcs)
    merged: list[list[float]] = []
    for s, length in arcs:
        if merged and s <= merged[-1][0] + merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], s + length - merged[-1][0])
        else:
            merged.append([s, length])
    if len(merged) > 1 and merged[-1][0] + merged[-1][1] >= cycle - 1e-9 and merged[0][0] <= 1e-9:
        merged[-1][1] += merged[0][1]
        merged.pop(0)
    start, length = max(merged, key=lambda a: (a[1], -a[0]))
    return start % cycle, min(length, cycle)


def band_s(cycle_s: float, travel_s: Sequence[float], windows: Sequence[Window | None], offsets_s: Sequence[float],
           direction: Direction) -> float:
    """Width of the green band a vehicle at the design speed can ride through every intersection."""
    return band_start(cycle_s, travel_s, windows, offsets_s, direction)[1]


def band_start(cycle_s: float, travel_s: Sequence[float], windows: Sequence[Window | None],
               offsets_s: Sequence[float], direction: Direction) -> tuple[float, float]:
    """(time the band passes the first intersection, modulo the cycle; width). Width 0: no band."""
    if any(w is None for w in windows):
        return 0.0, 0.0
    arcs = [(0.0, cycle_s)]
    for w, t, theta in zip(windows, travel_s, offsets_s, strict=True):
        # forward: depart the first intersection at T; arrive at i at T + t_i; local time T + t_i - theta
        # reverse: pass the first intersection at T; passed i at T - t_i; local time T - t_i - theta
        start = theta - t + w.start_s if direction == "forward" else theta + t + w.start_s
        arcs = _intersect_arcs(arcs, (start % cycle_s, min(w.length_s, cycle_s)), cycle_s)
        if not arcs:
            return 0.0, 0.0
    return _longest_arc_at(arcs, cycle_s)


def plan_bandwidth(corridor: Corridor, plan: Plan) -> tuple[float, float]:
    """(forward, reverse) bandwidth of a plan; 0 when the intersections do not share one cycle."""
    timings = [plan.timing(i.id) for i in corridor.intersections]
    cycles = {round(t.cycle_s, 6) for t in timings}
    if len(cycles) != 1:
        return 0.0, 0.0
    cycle = timings[0].cycle_s
    travel = travel_times_s(corridor)
    offsets = [t.offset_s for t in timings]
    return (
        band_s(cycle, travel, corridor_windows(corridor, timings, "forward"), offsets, "forward"),
        band_s(cycle, travel, corridor_windows(corridor, timings, "reverse"), offsets, "reverse"),
    )
