"""A plan an engineer writes (an override), read and checked against the corridor like a retimed one.

The text is the controller JSON of `export.plan_dict` (what `plan.json` shows, so an engineer edits
an export), or a whole `Plan` as JSON. Every rule a retimed plan keeps holds here too: each phase's
green at least its minimum (pedestrians included) and at most its maximum, yellow and all-red at least
the ITE clearance, one common cycle within the corridor's bounds, and an offset inside the cycle.
Pure, without numpy: the API runs it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from sunflower.common.errors import FieldProblem, ValidationFailed
from sunflower.traffic import timing
from sunflower.traffic.models import (
    Corridor,
    Intersection,
    IntersectionTiming,
    PhaseTiming,
    Plan,
    PlanInputs,
    Reason,
)

TOLERANCE_S = 0.01


def parse_plan(text: str, corridor: Corridor, *, version: int, created_at: datetime, previous_version: int | None,
               reasons: tuple[Reason, ...] = (), strict: bool = True,
               source: Literal["manual", "imported"] = "manual") -> Plan:
    """A plan for the corridor from JSON; ValidationFailed naming every problem, nothing half-read.

    Not `strict`: only the structure is checked (every intersection, its phases in order, cycle = the sum
    of the phases, offset inside the cycle), for a plan the signals already run (e.g. a SUMO network's).
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValidationFailed.on("planJson", f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValidationFailed.on("planJson", "must be a JSON object with the plan's intersections")
    if "timings" in data:  # a whole Plan
        try:
            given = Plan.model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed("the plan is malformed", problems=tuple(
                FieldProblem(".".join(str(p) for p in e["loc"]) or "planJson", e["msg"]) for e in exc.errors()
            )) from None
        data = {"corridor_id": given.corridor_id, "intersections": [
            {"id": t.intersection_id, "cycle_s": t.cycle_s, "offset_s": t.offset_s,
             "phases": [{"name": p.phase, "green_s": p.green_s, "yellow_s": p.yellow_s, "all_red_s": p.all_red_s}
                        for p in t.phases]}
            for t in given.timings
        ]}
    problems: list[FieldProblem] = []
    if data.get("corridor_id") not in (None, corridor.id):
        problems.append(FieldProblem("corridor_id",
                                     f"the plan is for corridor {data['corridor_id']}, not {corridor.id}"))
    entries = data.get("intersections")
    if not isinstance(entries, list) or not entries:
        raise ValidationFailed.on("intersections", "list every intersection of the corridor with its cycle, offset "
                                                   "and phases")
    by_id: dict[str, tuple[int, dict]] = {}
    for k, entry in enumerate(entries):
        iid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(iid, str):
            problems.append(FieldProblem(f"intersections[{k}].id", "each intersection needs its id"))
        elif iid in by_id:
            problems.append(FieldProblem(f"intersections[{k}].id", f"intersection {iid} is given twice"))
        elif iid not in {i.id for i in corridor.intersections}:
            problems.append(FieldProblem(f"intersections[{k}].id", f"corridor {corridor.id} has no intersection {iid}"))
        else:
            by_id[iid] = (k, entry)
    timings: list[IntersectionTiming] = []
    for intersection in corridor.intersections:
        if intersection.id not in by_id:
            problems.append(FieldProblem("intersections", f"intersection {intersection.id} is missing"))
            continue
        k, entry = by_id[intersection.id]
        found = _timing(corridor, intersection, entry, f"intersections[{k}]", problems, strict)
        if found is not None:
            timings.append(found)
    cycles = {round(t.cycle_s, 6) for t in timings}
    if len(cycles) > 1:
        found = ", ".join(f"{c:g}" for c in sorted(cycles))
        problems.append(FieldProblem("intersections", f"every intersection must run one common cycle (the green "
                                                      f"wave needs it); found {found} s"))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ValidationFailed(f"{first.field}: {first.message}{more}", problems=tuple(problems))
    return Plan(
        corridor_id=corridor.id, version=version, created_at=created_at, cycle_s=timings[0].cycle_s,
        timings=tuple(timings), source=source, inputs=PlanInputs(previous_version=previous_version),
        reasons=reasons,
    )


def _number(value: Any, at: str, problems: list[FieldProblem], *, low: float = 0.0) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(FieldProblem(at, "must be a number of seconds"))
        return None
    if value < low:
        problems.append(FieldProblem(at, f"must be at least {low:g}"))
        return None
    return float(value)


def _timing(corridor: Corridor, intersection: Intersection, entry: dict, at: str,
            problems: list[FieldProblem], strict: bool) -> IntersectionTiming | None:
    before = len(problems)
    phases = entry.get("phases")
    if not isinstance(phases, list) or not phases:
        problems.append(FieldProblem(f"{at}.phases", "list the phases in order with green_s, yellow_s and all_red_s"))
        return None
    defined = {p.name: p for p in intersection.phases}
    order = [p.name for p in intersection.phases]
    names = [p.get("name") if isinstance(p, dict) else None for p in phases]
    for j, name in enumerate(names):
        if name not in defined:
            problems.append(FieldProblem(f"{at}.phases[{j}].name", f"intersection {intersection.id} has no phase "
                                                                   f"{name!r} (it has {', '.join(order)})"))
    if len(problems) > before:
        return None
    if len(set(names)) != len(names) or names != [n for n in order if n in names]:
        problems.append(FieldProblem(f"{at}.phases", f"phases run in the intersection's order ({', '.join(order)}), "
                                                     f"each once"))
        return None
    omitted = frozenset(n for n in order if n not in names)
    if not_omittable := [n for n in omitted if not defined[n].omittable]:
        problems.append(FieldProblem(f"{at}.phases", f"phase(s) {', '.join(sorted(not_omittable))} cannot be left out"))
        return None
    model = timing.resolve(intersection, omit=omitted)
    resolved = {p.name: p for p in model.phases}
    out: list[PhaseTiming] = []
    for j, given in enumerate(phases):
        here = f"{at}.phases[{j}]"
        phase, rules = defined[given["name"]], resolved[given["name"]]
        green = _number(given.get("green_s"), f"{here}.green_s", problems)
        yellow = _number(given.get("yellow_s"), f"{here}.yellow_s", problems)
        all_red = _number(given.get("all_red_s"), f"{here}.all_red_s", problems)
        if strict:
            _check_rules(phase.name, rules, here, green, yellow, all_red, problems)
        for key, expected in (("movements", phase.movements), ("permissive_movements", phase.permissive),
                              ("permissive", phase.permissive)):
            if key in given and tuple(given[key] or ()) != tuple(expected):
                problems.append(FieldProblem(f"{here}.{key}", f"phase {phase.name} serves {list(expected)}; a plan "
                                                              f"times phases, it does not reassign movements"))
        if "coordinated" in given and given["coordinated"] != intersection.coordinated(phase):
            problems.append(FieldProblem(f"{here}.coordinated", f"phase {phase.name} is coordinated exactly when it "
                                                                f"serves an arterial through movement"))
        if None not in (green, yellow, all_red):
            out.append(PhaseTiming.of(intersection, phase, green, yellow, all_red))
    if len(problems) > before:
        return None
    total = sum(p.duration_s for p in out)
    cycle = entry.get("cycle_s", total)
    cycle = _number(cycle, f"{at}.cycle_s", problems, low=1.0)
    if cycle is None:
        return None
    if abs(cycle - total) > TOLERANCE_S:
        problems.append(FieldProblem(f"{at}.cycle_s", f"is {cycle:g} s but the phases add up to {total:g} s"))
    low = max(corridor.cycle_min_s, intersection.cycle_min_s or 0.0)
    high = min(corridor.cycle_max_s, intersection.cycle_max_s or corridor.cycle_max_s)
    if strict and not low - TOLERANCE_S <= cycle <= high + TOLERANCE_S:
        problems.append(FieldProblem(f"{at}.cycle_s", f"must be between {low:g} and {high:g} s"))
    offset = _number(entry.get("offset_s", 0.0), f"{at}.offset_s", problems)
    if offset is not None and offset >= cycle:
        problems.append(FieldProblem(f"{at}.offset_s", f"must be less than the cycle ({cycle:g} s)"))
    if len(problems) > before:
        return None
    return IntersectionTiming(intersection_id=intersection.id, cycle_s=cycle, offset_s=offset or 0.0, phases=tuple(out))


def _check_rules(name: str, rules: timing.ResolvedPhase, here: str, green: float | None, yellow: float | None,
                 all_red: float | None, problems: list[FieldProblem]) -> None:
    """Minimum and maximum green, ITE yellow and all-red: what every plan put into force must keep."""
    if green is not None and green < rules.min_green_s - TOLERANCE_S:
        problems.append(FieldProblem(f"{here}.green_s", f"phase {name} needs at least {rules.min_green_s:g} s of "
                                                        f"green (minimum green and pedestrian crossing)"))
    if green is not None and green > rules.max_green_s + TOLERANCE_S:
        problems.append(FieldProblem(f"{here}.green_s", f"phase {name} allows at most {rules.max_green_s:g} s"))
    if yellow is not None and yellow < rules.yellow_s - TOLERANCE_S:
        problems.append(FieldProblem(f"{here}.yellow_s", f"phase {name} needs at least {rules.yellow_s:g} s of yellow"))
    if all_red is not None and all_red < rules.all_red_s - TOLERANCE_S:
        problems.append(FieldProblem(f"{here}.all_red_s", f"phase {name} needs at least {rules.all_red_s:g} s of "
                                                          f"all-red"))


def check_covers(corridor: Corridor, plan: Plan) -> None:
    """An imported plan must time every intersection of its corridor (its phases are the network's own)."""
    problems = []
    if plan.corridor_id != corridor.id:
        problems.append(FieldProblem("corridor_id", f"the plan is for corridor {plan.corridor_id}, not {corridor.id}"))
    timed = {t.intersection_id for t in plan.timings}
    for i in corridor.intersections:
        if i.id not in timed:
            problems.append(FieldProblem("timings", f"intersection {i.id} has no timing"))
    if unknown := timed - {i.id for i in corridor.intersections}:
        problems.append(FieldProblem("timings", f"no intersections {sorted(unknown)} on corridor {corridor.id}"))
    if problems:
        raise ValidationFailed(f"{problems[0].field}: {problems[0].message}", problems=tuple(problems))
