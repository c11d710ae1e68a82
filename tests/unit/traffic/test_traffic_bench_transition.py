"""How the SUMO bench puts a new plan into force: a controller's shortway offset transition (no SUMO needed)."""

import importlib.util
import sys
from pathlib import Path

from traffic_factories import flows_for

from sunflower.traffic import timing
from sunflower.traffic.retiming import retime

BENCH = Path(__file__).resolve().parents[3] / "bench" / "traffic.py"


def _bench():
    name = "bench_traffic_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look themselves up there
        spec.loader.exec_module(module)
    return sys.modules[name]


class _TrafficLight:
    """Enough of traci.trafficlight for Signals: it records the programs, phases and durations it is told."""

    def __init__(self) -> None:
        self.durations: list[tuple[str, float]] = []
        self.programs: list[str] = []
        self.phases: list[tuple[str, int]] = []

    def Logic(self, program, kind, phase, phases):
        return (program, phases)

    def Phase(self, duration, state):
        return (duration, state)

    def setProgramLogic(self, tls, logic):
        self.programs.append(logic[0])

    def setProgram(self, tls, program):
        pass

    def setPhase(self, tls, index):
        self.phases.append((tls, index))

    def getSpentDuration(self, tls):
        return 0.0

    def setPhaseDuration(self, tls, duration):
        self.durations.append((tls, duration))


class _Traci:
    def __init__(self) -> None:
        self.trafficlight = _TrafficLight()


def _setup(corridor):
    bench = _bench()
    plan = retime(corridor, flows_for(corridor), None)
    traci = _Traci()
    signals = bench.Signals(traci, corridor)
    signals.submit(plan)
    return plan, signals, traci.trafficlight


def _run_cycle(signals, tl, tls, start):
    """Start a cycle at `start`; returns the greens the controller ran and when the next cycle starts."""
    program = signals.pending.get(tls) or signals.active[tls]
    before = len(tl.durations)
    signals.on_phase(tls, 0, start)
    greens = [tl.durations[before][1]]
    t = start + greens[0]
    for index in range(1, len(program.phases)):
        if program.green_of[index] is not None:
            signals.on_phase(tls, index, t)
            greens.append(tl.durations[-1][1])
            t += greens[-1]
        else:
            t += program.phases[index][0]
    return greens, t


def test_a_plan_in_step_runs_its_own_greens(corridor):
    plan, signals, tl = _setup(corridor)
    t = plan.timing("J2")
    greens, end = _run_cycle(signals, tl, "J2", t.offset_s + 10 * t.cycle_s)
    assert greens == [p.green_s for p in t.phases]
    assert end == t.offset_s + 11 * t.cycle_s
    assert signals.transition_cycles == 0


def test_offsets_are_reached_a_bounded_step_per_cycle_never_below_a_minimum(corridor):
    plan, signals, tl = _setup(corridor)
    t = plan.timing("J2")
    mins = {p.name: p.min_green_s for p in timing.resolve(corridor.intersection("J2")).phases}
    start = t.offset_s + 20 * t.cycle_s + 0.3 * t.cycle_s  # 30 % of a cycle late
    cycles = 0
    while True:
        greens, end = _run_cycle(signals, tl, "J2", start)
        late = (start - t.offset_s) % t.cycle_s
        if late < 0.5 or t.cycle_s - late < 0.5:
            assert greens == [p.green_s for p in t.phases]
            break
        cycles += 1
        assert cycles < 10
        for g, p in zip(greens, t.phases, strict=True):
            split = p.duration_s
            assert g >= min(mins[p.phase], p.green_s) - 1e-9
            assert p.green_s - 0.12 * split - 1 <= g <= p.green_s + 0.22 * split + 1  # whole seconds
        start = end
    assert 2 <= cycles <= 5  # neither one jump nor an endless drift
    assert signals.transition_cycles == cycles


def test_a_new_plan_starts_with_a_new_cycle(corridor):
    plan, signals, tl = _setup(corridor)
    assert "J1" in signals.pending and not tl.programs
    signals.on_phase("J1", 2, 100.0)  # mid-cycle: nothing changes yet
    assert not tl.programs
    signals.on_phase("J1", 0, 101.0)
    assert tl.programs == [f"sf{plan.version}"] and "J1" not in signals.pending
