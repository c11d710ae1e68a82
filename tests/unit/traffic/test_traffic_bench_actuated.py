"""The SUMO bench's coordinated-actuated execution of a plan (no SUMO needed): the side stage ends early when its
loops see nobody (gap out) or is skipped without a call, its unused time returns to the coordinated arterial
stage, whose yield point (and so the offset) never moves; pedestrian minimums hold wherever pedestrians exist."""

import math

from test_traffic_bench_transition import _bench, _Traci
from traffic_factories import PEAK, flows_for

from sunflower.traffic.retiming import retime


def _signals(corridor, *, pedestrians=False, per_lane=None):
    plan = retime(corridor, flows_for(corridor, per_lane), None)
    traci = _Traci()
    signals = _bench().Signals(traci, corridor, actuated=True, pedestrians=pedestrians)
    signals.submit(plan)
    return plan, signals, traci.trafficlight


def _side(program, timing):
    k = next(k for k, p in enumerate(timing.phases) if p.phase == "P3")
    return k, program.green_of.index(k)


def test_side_stage_gaps_out_and_its_time_returns_to_the_arterial_up_to_the_same_yield_point(corridor):
    plan, signals, tl = _signals(corridor)
    t = plan.timing("J2")
    start = t.offset_s + 10 * t.cycle_s  # in step: no offset transition
    signals.on_phase("J2", 0, start)
    program = signals.active["J2"]
    k, green = _side(program, t)
    assert program.coordinated[0] and not program.coordinated[k]
    loops = program.detectors[k]
    assert loops and all(("NB_0" in d or "SB_0" in d) for d in loops)
    # two vehicles reach the NB loop during the red: a call, so the side stage runs
    signals.step(start + 5, {loops[0]: ("a",)})
    signals.step(start + 6, {loops[0]: ()})
    signals.step(start + 8, {loops[0]: ("b",)})
    signals.step(start + 9, {loops[0]: ()})
    side_start = start + sum(program.greens[:k]) + sum(program.clear[:k])
    signals.on_phase("J2", green, side_start)
    green_max = tl.durations[-1][1]
    assert green_max == program.greens[k]  # at most its split
    _, _, minimum = signals.running["J2"]
    assert minimum == max(program.vmins[k], signals.STARTUP_S + 2 * signals.HEADWAY_S)
    # nobody more: it ends after its minimum plus the gap, not at its maximum
    now = side_start
    while "J2" in signals.running:
        now += 1
        signals.step(now, {d: () for d in loops})
    assert tl.phases[-1] == ("J2", green + 1)  # its yellow
    assert now - side_start < green_max
    assert now - side_start >= minimum
    assert signals.gapped_out == 1
    # the next cycle's arterial green starts early (early return) and ends where the plan puts it
    early = now + program.clear[k]
    next_start = start + t.cycle_s
    assert early < next_start
    signals.on_phase("J2", 0, early)
    assert signals.anchor["J2"] == next_start
    assert signals.resting["J2"] == 0
    assert math.isclose(signals.ends["J2"][0], next_start + program.greens[0])


def _at_yield_point(corridor):
    plan, signals, tl = _signals(corridor, per_lane={**PEAK, "EB_2": 20.0})  # few left turns: no P2
    t = plan.timing("J2")
    assert [p.phase for p in t.phases] == ["P1", "P3"]
    start = t.offset_s + 10 * t.cycle_s
    signals.on_phase("J2", 0, start)
    program = signals.active["J2"]
    k, _ = _side(program, t)
    tl.phases.clear()  # the program switch
    return signals, tl, program, k, start + program.greens[0]


def test_arterial_rests_in_green_past_its_yield_point_until_a_side_call(corridor):
    signals, tl, program, k, yield_at = _at_yield_point(corridor)
    loops = program.detectors[k]
    for now in range(int(yield_at) - 2, int(yield_at) + 4):  # nobody on the side street: no yellow
        signals.step(float(now), {d: () for d in loops})
    assert tl.phases == [] and signals.resting["J2"] == 0
    signals.step(yield_at + 4, {loops[0]: ("a",)})  # a call while the side stage can still get its minimum
    assert tl.phases == [("J2", 1)]  # the arterial's yellow
    assert "J2" not in signals.resting


def test_a_call_too_late_for_the_permissive_period_waits_for_the_next_cycle(corridor):
    signals, tl, program, k, _ = _at_yield_point(corridor)
    loops = program.detectors[k]
    force_off = signals.ends["J2"][k]
    late = force_off - program.clear[0] - 1  # the side's minimum green no longer fits before its force-off
    signals.step(late, {loops[0]: ("a",)})
    assert tl.phases == []
    next_start = signals.next_anchor["J2"]
    signals.step(next_start, {loops[0]: ()})  # the next cycle begins in the same green
    assert signals.anchor["J2"] == next_start and tl.phases == []
    signals.step(next_start + program.greens[0], {loops[0]: ()})  # its yield point: the call is served
    assert tl.phases == [("J2", 1)]


def test_side_stage_without_a_call_is_skipped_but_not_when_the_previous_stage_kept_a_green(corridor):
    plan, signals, tl = _signals(corridor)
    t = plan.timing("J2")
    start = t.offset_s + 10 * t.cycle_s
    signals.on_phase("J2", 0, start)
    program = signals.active["J2"]
    k, green = _side(program, t)
    assert program.skippable[k]
    signals.on_phase("J2", green, start + sum(program.greens[:k]) + sum(program.clear[:k]))
    assert tl.phases[-1] == ("J2", 0) and signals.skipped == 1
    names = [p.phase for p in t.phases]
    if "P2" in names:  # the protected left: its movement was green (permissive) through P1's clearance
        assert not program.skippable[names.index("P2")]


def test_pedestrian_minimums_hold_where_pedestrians_exist(corridor):
    plan, walking, _ = _signals(corridor, pedestrians=True)
    _, driving, _ = _signals(corridor, pedestrians=False)
    walking.on_phase("J2", 0, 0.0)
    driving.on_phase("J2", 0, 0.0)
    k, _ = _side(walking.active["J2"], plan.timing("J2"))
    assert walking.active["J2"].vmins[k] > driving.active["J2"].vmins[k] == 5.0


def test_arterial_yields_at_its_yield_point_when_a_stage_that_follows_is_served_every_cycle(corridor):
    plan, signals, tl = _signals(corridor)  # busy left turns: P2 follows P1 and keeps its green, never skipped
    t = plan.timing("J2")
    start = t.offset_s + 10 * t.cycle_s
    signals.on_phase("J2", 0, start)
    program = signals.active["J2"]
    assert [p.phase for p in t.phases][1] == "P2" and not program.skippable[1]
    tl.phases.clear()
    signals.step(start + program.greens[0] - 1, {})
    assert tl.phases == []
    signals.step(start + program.greens[0], {})
    assert tl.phases == [("J2", 1)]
