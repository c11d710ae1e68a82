"""A plan as JSON for controllers, and as a SUMO tlLogic additional file.

SUMO's `offset` is the time at which the program's first phase starts (position = (t - offset) mod C),
the same convention as `IntersectionTiming.offset_s`, so it is copied as is.
"""

from __future__ import annotations

import json
from xml.sax.saxutils import quoteattr

from sunflower.traffic.models import Corridor, Intersection, IntersectionTiming, Plan

GREEN, PERMISSIVE, YELLOW, RED, STOP_THEN_GO, OFF = "G", "g", "y", "r", "s", "O"


def plan_dict(plan: Plan) -> dict:
    """The controller-facing form: per intersection its cycle, offset and ordered phases (each with its split
    mode: the coordinated phases carry the band, the others are actuated within their green)."""
    return {
        "corridor_id": plan.corridor_id,
        "version": plan.version,
        "created_at": plan.created_at.isoformat(),
        "cycle_s": plan.cycle_s,
        "bandwidth_forward_s": plan.bandwidth_forward_s,
        "bandwidth_reverse_s": plan.bandwidth_reverse_s,
        "intersections": [
            {
                "id": t.intersection_id,
                "cycle_s": t.cycle_s,
                "offset_s": t.offset_s,
                "phases": [
                    {
                        "name": p.phase,
                        "green_s": p.green_s,
                        "yellow_s": p.yellow_s,
                        "all_red_s": p.all_red_s,
                        "movements": list(p.movements),
                        "permissive_movements": list(p.permissive),
                        "coordinated": p.coordinated,
                    }
                    for p in t.phases
                ],
            }
            for t in plan.timings
        ],
        "reasons": [r.model_dump(exclude_none=True) for r in plan.reasons],
    }


def plan_json(plan: Plan, *, indent: int | None = 2) -> str:
    return json.dumps(plan_dict(plan), ensure_ascii=False, indent=indent)


def sumo_phases(intersection: Intersection, timing: IntersectionTiming) -> list[tuple[float, str]]:
    """(duration, state) per SUMO phase: each stage's green, then its yellow and all-red.

    A movement served by a stage and the next keeps its green through the clearance between them; a
    movement the phase lets turn on red shows 's' while red; links of no movement stay signalled off ('O').
    """
    if intersection.sumo_link_count <= 0:
        raise ValueError(f"intersection {intersection.id} has no SUMO signal links")
    links: dict[str, tuple[int, ...]] = {m.name: m.link_indices for m in intersection.movements}
    n = intersection.sumo_link_count
    mapped = {k for idx in links.values() for k in idx}
    on_red = {p.name: {k for m in p.turn_on_red for k in links[m]} for p in intersection.phases}

    def state(chars: dict[int, str], stage) -> str:
        go = on_red.get(stage.phase, set())
        return "".join(chars.get(k, (STOP_THEN_GO if k in go else RED) if k in mapped else OFF) for k in range(n))

    def green_chars(stage) -> dict[int, str]:
        out = {}
        for m in stage.permissive:
            for k in links.get(m, ()):
                out[k] = PERMISSIVE
        for m in stage.movements:
            for k in links.get(m, ()):
                out[k] = GREEN
        return out

    phases = timing.phases
    out: list[tuple[float, str]] = []
    for k, stage in enumerate(phases):
        now = green_chars(stage)
        nxt = green_chars(phases[(k + 1) % len(phases)])
        if stage.green_s > 0:
            out.append((stage.green_s, state(now, stage)))
        keep = {link: char for link, char in now.items() if link in nxt}
        if stage.yellow_s > 0:
            out.append((stage.yellow_s, state({**{link: YELLOW for link in now}, **keep}, stage)))
        if stage.all_red_s > 0:
            out.append((stage.all_red_s, state(keep, stage)))
    return out


def sumo_tllogic_xml(corridor: Corridor, plan: Plan, *, program_id: str | None = None) -> str:
    """An additional file with one static tlLogic per intersection; load it with `sumo -a`."""
    program = program_id or f"sunflower-v{plan.version}"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<!-- Sunflower plan v{plan.version} for corridor {corridor.id}, cycle {plan.cycle_s:g} s -->",
        "<additional>",
    ]
    for intersection in corridor.intersections:
        timing = plan.timing(intersection.id)
        tls = intersection.sumo_tls_id or intersection.id
        lines.append(
            f'    <tlLogic id={quoteattr(tls)} type="static" programID={quoteattr(program)} '
            f'offset="{_num(timing.offset_s)}">'
        )
        for duration, state in sumo_phases(intersection, timing):
            lines.append(f'        <phase duration="{_num(duration)}" state="{state}"/>')
        lines.append("    </tlLogic>")
    lines.append("</additional>")
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
