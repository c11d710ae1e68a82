"""Time-space diagram of a plan's green wave (matplotlib, Agg backend): PNG or SVG bytes.

Distance along the corridor runs up, time to the right. Each intersection shows, for each direction,
when the arterial through movement has green (green), yellow/all-red (amber) or red; the shaded bands
are the forward and reverse green bands at the design speed.
"""

from __future__ import annotations

import io
from typing import Literal

from sunflower.traffic import bandwidth as band
from sunflower.traffic.models import Corridor, IntersectionTiming, Plan

COLOURS = {"green": "#2e9d48", "amber": "#f2b01e", "red": "#c8322d", "forward": "#3d7dd8", "reverse": "#8e5bd0"}


def _states(timing: IntersectionTiming, movement: str | None) -> list[tuple[float, float, str]]:
    """(start, end, colour) over one cycle for a movement, local time."""
    out = []
    t = 0.0
    phases = timing.phases
    for k, p in enumerate(phases):
        served = movement is not None and movement in p.movements + p.permissive
        nxt = phases[(k + 1) % len(phases)]
        continues = served and movement in nxt.movements + nxt.permissive
        out.append((t, t + p.green_s, "green" if served else "red"))
        clearance = "green" if continues else ("amber" if served else "red")
        out.append((t + p.green_s, t + p.duration_s, clearance))
        t += p.duration_s
    return [s for s in out if s[1] > s[0]]


def time_space_diagram(corridor: Corridor, plan: Plan, *, cycles: int = 3,
                       fmt: Literal["png", "svg"] = "svg", dpi: int = 110) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in a server

    timings = [plan.timing(i.id) for i in corridor.intersections]
    cycle = max(t.cycle_s for t in timings)
    horizon = cycles * cycle
    x0 = corridor.intersections[0].position_m
    length = corridor.intersections[-1].position_m - x0
    bar = max(length * 0.012, 6.0)

    fig = Figure(figsize=(11, 6.5))
    ax = fig.add_subplot(1, 1, 1)
    travel = band.travel_times_s(corridor)
    offsets = [t.offset_s for t in timings]
    for direction, sign in (("forward", 1), ("reverse", -1)):
        windows = band.corridor_windows(corridor, timings, direction)
        start, width = band.band_start(cycle, travel, windows, offsets, direction)
        if width <= 0:
            continue
        total = travel[-1]
        for k in range(-2, cycles + 2):
            t1 = start + k * cycle
            if direction == "forward":
                xs = [x0, x0 + length]
                lower, upper = [t1, t1 + total], [t1 + width, t1 + width + total]
            else:  # passes the first intersection at t1, so the far end total seconds earlier
                xs = [x0, x0 + length]
                lower, upper = [t1, t1 - total], [t1 + width, t1 + width - total]
            ax.fill_betweenx(xs, lower, upper, color=COLOURS[direction], alpha=0.18, linewidth=0,
                             label=f"{corridor.forward_label if sign > 0 else corridor.reverse_label} band "
                                   f"{width:.0f} s" if k == 0 else None)
    for intersection, timing in zip(corridor.intersections, timings, strict=True):
        y = intersection.position_m
        for direction, dy in (("forward", bar * 0.6), ("reverse", -bar * 0.6)):
            m = intersection.arterial_movement(direction)
            states = _states(timing, m.name if m else None)
            for k in range(-1, cycles + 1):
                base = timing.offset_s + k * timing.cycle_s
                for s, e, colour in states:
                    a, b = max(base + s, 0.0), min(base + e, horizon)
                    if b > a:
                        ax.broken_barh([(a, b - a)], (y + dy - bar / 2, bar), facecolors=COLOURS[colour],
                                       linewidth=0)
        ax.annotate(intersection.id, (horizon, y), xytext=(6, 0), textcoords="offset points", ha="left",
                    va="center", fontsize=8, annotation_clip=False)
    ax.set_xlim(0, horizon)
    ax.set_ylim(x0 - 3 * bar, x0 + length + 3 * bar)
    ax.set_xlabel("time in the cycle reference (s)")
    ax.set_ylabel(f"distance along the corridor, {corridor.forward_label} up (m)")
    ax.set_title(f"{corridor.name or corridor.id}: plan v{plan.version}, cycle {cycle:g} s, bands at "
                 f"{corridor.design_speed_kmh:g} km/h ({corridor.forward_label} {plan.bandwidth_forward_s:.0f} s, "
                 f"{corridor.reverse_label} {plan.bandwidth_reverse_s:.0f} s)", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()
