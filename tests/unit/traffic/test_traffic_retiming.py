"""Retiming: bounded Webster cycle, splits, offsets, change limits, oversaturation, infeasible corridors."""

import math

import pytest
from traffic_factories import PEAK, flows_for, make_corridor

from sunflower.traffic import timing
from sunflower.traffic.errors import NoFeasibleCycle
from sunflower.traffic.models import IntersectionTiming, PhaseTiming, Plan
from sunflower.traffic.retiming import Limits, retime


def _codes(plan: Plan) -> set[str]:
    return {r.code for r in plan.reasons}


def _fixed_plan(corridor, cycle: float, version: int = 3) -> Plan:
    """A plan in force: every intersection at `cycle` with offsets 0 and all phases running."""
    timings = []
    for i in corridor.intersections:
        model = timing.resolve(i)
        green = (cycle - model.lost_time_s - sum(p.min_green_s for p in model.phases))
        greens = [p.min_green_s + (green if k == 0 else 0) for k, p in enumerate(model.phases)]
        timings.append(IntersectionTiming(intersection_id=i.id, cycle_s=cycle, offset_s=0.0, phases=tuple(
            PhaseTiming.of(i, p.phase, g, p.yellow_s, p.all_red_s)
            for p, g in zip(model.phases, greens, strict=True))))
    return Plan(corridor_id=corridor.id, version=version, created_at=flows_for(corridor).window_end, cycle_s=cycle,
                timings=tuple(timings))


def test_a_plan_respects_bounds_minimum_greens_and_clearances_and_says_why(corridor):
    plan = retime(corridor, flows_for(corridor), None)
    assert plan.version == 1 and plan.source == "retimed"
    assert corridor.cycle_min_s <= plan.cycle_s <= corridor.cycle_max_s
    for i in corridor.intersections:
        t = plan.timing(i.id)
        model = timing.resolve(i)
        resolved = {p.name: p for p in model.phases}
        assert sum(p.duration_s for p in t.phases) == pytest.approx(plan.cycle_s)
        for p in t.phases:
            assert p.green_s >= resolved[p.phase].min_green_s
            assert (p.yellow_s, p.all_red_s) == (resolved[p.phase].yellow_s, resolved[p.phase].all_red_s)
            assert p.green_s == int(p.green_s)
        assert 0 <= t.offset_s < plan.cycle_s
    assert {"flows", "webster", "bandwidth"} <= _codes(plan)
    assert plan.bandwidth_forward_s > 0
    assert plan.inputs.lane_flows_vph and len(plan.inputs.intersections) == 3


def test_retiming_is_deterministic(corridor):
    assert retime(corridor, flows_for(corridor), None) == retime(corridor, flows_for(corridor), None)


def test_every_lane_stays_under_the_hard_degree_of_saturation_when_the_demand_allows(corridor):
    plan = retime(corridor, flows_for(corridor), None)
    assert all(i.degree_of_saturation <= Limits().max_degree_of_saturation for i in plan.inputs.intersections)


def test_the_peak_direction_gets_the_band(corridor):
    plan = retime(corridor, flows_for(corridor), None)
    assert plan.bandwidth_forward_s >= plan.bandwidth_reverse_s


def test_a_light_protected_left_phase_is_omitted_and_a_busy_one_kept(corridor):
    light = retime(corridor, flows_for(corridor, {**PEAK, "EB_2": 30.0}), None)
    assert [p.phase for p in light.timings[0].phases] == ["P1", "P3"]
    assert "phase_omitted" in _codes(light)
    busy = retime(corridor, flows_for(corridor), None)
    assert [p.phase for p in busy.timings[0].phases] == ["P1", "P2", "P3"]


def test_one_update_moves_the_cycle_and_offsets_at_most_by_the_limits(corridor):
    current = _fixed_plan(corridor, 140.0)
    limits = Limits(max_cycle_step_s=10.0, max_offset_step_s=5.0)
    plan = retime(corridor, flows_for(corridor), current, limits)
    assert plan.cycle_s == pytest.approx(130.0)
    assert plan.version == current.version + 1 and plan.inputs.previous_version == current.version
    assert "cycle_step_limited" in _codes(plan)
    for t in plan.timings:
        moved = (t.offset_s - current.timing(t.intersection_id).offset_s + plan.cycle_s / 2) % plan.cycle_s
        assert abs(moved - plan.cycle_s / 2) <= 5.0 + 1e-9


def test_the_cycle_step_gives_way_when_queues_would_otherwise_grow(corridor):
    current = _fixed_plan(corridor, 60.0)
    heavy = {**PEAK, "EB_0": 1000.0, "EB_1": 1000.0}  # y = 0.56 on the arterial: 65 s is not enough
    plan = retime(corridor, flows_for(corridor, heavy), current, Limits(max_cycle_step_s=5.0))
    assert plan.cycle_s > 65.0
    assert "cycle_step_exceeded" in _codes(plan)
    assert all(i.degree_of_saturation <= Limits().max_degree_of_saturation + 1e-9 for i in plan.inputs.intersections)


def test_oversaturation_runs_the_longest_cycle_with_equal_degrees_of_saturation(corridor):
    jam = {**PEAK, "EB_0": 1700.0, "EB_1": 1700.0, "NB_0": 700.0, "SB_0": 700.0}
    plan = retime(corridor, flows_for(corridor, jam), None)
    assert plan.cycle_s == corridor.cycle_max_s
    assert "oversaturated" in _codes(plan)
    t = plan.timing("J1")
    greens = {p.phase: p.green_s for p in t.phases}
    # balanced: arterial and cross street see (almost) the same degree of saturation
    x_art = (1700 / 1800) * plan.cycle_s / greens["P1"]
    x_side = (700 / 1800) * plan.cycle_s / greens["P3"]
    assert x_art == pytest.approx(x_side, rel=0.1)


def test_no_demand_still_gives_a_valid_plan(corridor):
    plan = retime(corridor, flows_for(corridor, dict.fromkeys(PEAK, 0.0)), None)
    assert corridor.cycle_min_s <= plan.cycle_s <= corridor.cycle_max_s


def test_a_corridor_whose_minimums_cannot_fit_its_longest_cycle_is_refused():
    tight = make_corridor(cycle_min_s=30.0, cycle_max_s=42.0)  # 7 + 5 + 16 s greens and 17 s clearances: 45 s
    with pytest.raises(NoFeasibleCycle) as raised:
        retime(tight, flows_for(tight), None)
    assert raised.value.code == "NO_FEASIBLE_CYCLE"
    assert "current plan stays in force" in raised.value.message


def test_missing_lanes_keep_the_last_known_flows(corridor):
    first = retime(corridor, flows_for(corridor), None)
    partial = flows_for(corridor)
    partial = partial.model_copy(update={"lane_flows_vph": {k: v for k, v in partial.lane_flows_vph.items()
                                                            if not k.startswith("J2/")}})
    plan = retime(corridor, partial, first)
    assert "missing_data" in _codes(plan)
    assert plan.inputs.lane_flows_vph["J2/EB_0"] == first.inputs.lane_flows_vph["J2/EB_0"]


def test_webster_reason_names_the_critical_intersection(corridor):
    plan = retime(corridor, flows_for(corridor), None)
    webster = next(r for r in plan.reasons if r.code == "webster")
    assert "Y=" in webster.message and "C0=" in webster.message
    assert all(math.isfinite(i.webster_cycle_s) for i in plan.inputs.intersections)
