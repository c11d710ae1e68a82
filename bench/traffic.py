"""Signal retiming proven in SUMO: Sunflower against the network's static programs, SUMO actuated control
and SUMO's own tlsCycleAdaptation.py + tlsCoordinator.py, on the same seeds.

Run: sunflower bench traffic [--net NET.net.xml --routes ROUTES.rou.xml] [--corridor J1,J2,...]
                             [--seeds 1,2,3] [--on-batch pure|MODULE:FACTORY] [--cycle LOW,HIGH]
                             [--scale FACTOR]
Without --net/--routes it runs the shipped Hanan 2nd Avenue scenario (8 signals, 55 km/h, eastbound
morning peak). It imports the corridor from the network, places an induction loop on every signalled
approach lane and, for the "sunflower" variant, sends a sensor batch every --batch-s seconds (readings
of --reading-s each) through `on_batch(batch) -> Plan | None` and applies every plan returned to the
running signals the way a coordinated controller does (Signals: the new program from the end of the
running cycle, then a shortway offset transition of at most 12 % shorter or 22 % longer splits per
cycle, minimum greens kept), as coordinated-actuated control: the plan fixes cycle, offsets and maximum
splits; the stages serving the arterial through run to their planned yield point and rest in green past it
until a side stage is called (served that cycle only while its minimum green still fits before its
force-off: its permissive period), the other stages gap out after their (variable initial) minimum green
when their loops see nobody, and return their unused time to the arterial stage. Pedestrian minimum greens apply when
the routes or the network carry pedestrians (the shipped scenario has none). "sunflower_fixed" (not run by
default) applies the same plans as fixed-time programs. By default every batch takes the real handler path
(bench/traffic_handler.py: the traffic queue and functions/traffic_batch.py in the embedded cloud, the plan
in force read back); `--on-batch pure` calls sunflower.traffic.engine.ingest directly (the same plans),
and --on-batch MODULE:FACTORY plugs in anything else, FACTORY(corridor, initial_plan) -> on_batch.
--scale scales the demand of every variant alike (SUMO's own --scale: vehicles dropped or cloned at
random), SUMO's tools included, to see how the plans hold up as traffic grows or falls.

Figures are over vehicles whose planned departure falls in [--warmup-s, last departure]; time loss and
travel time count from the planned departure, so insertion delay is included. Stops are SUMO's
waitingCount (speed below 0.1 m/s). arterial_stops_per_vehicle: vehicles that run the whole corridor
in the peak direction. bandwidth_s: the two-way green band at the design speed that the signals
actually showed: for each direction the share of departure instants from which a vehicle at the design
speed meets green at every signal, times the median cycle, summed over both directions.
Prints a table, where the time is lost per kind of trip (along the whole corridor in the peak and the
other direction, along part of it, from a side street onto it or off it again further on, through one
corridor signal from a side street only), one JSON line per variant, and a last line with the retiming
time of a 10-intersection corridor from one batch (retime_ms_10, p50/p99).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sunflower.traffic import engine, sumo
from sunflower.traffic.export import sumo_phases
from sunflower.traffic.models import Corridor, Plan, SensorBatch, SensorReading

SCENARIO = ROOT / "sunflower" / "traffic" / "scenarios" / "hanan2"
VARIANTS = ("static", "actuated", "sumo_coordinated", "sunflower")  # also: sunflower_fixed (plans as fixed time)
EPOCH = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 07:00 in Harbin: simulation time 0
KEYS = ("variant", "mean_time_loss_s", "mean_travel_time_s", "stops_per_vehicle", "arterial_stops_per_vehicle",
        "bandwidth_s")


def sumo_home() -> Path:
    if os.environ.get("SUMO_HOME"):
        return Path(os.environ["SUMO_HOME"])
    import sumo as sumo_pkg  # the eclipse-sumo wheel

    return Path(sumo_pkg.SUMO_HOME)


# --- on_batch: the seam between the simulation and Sunflower -----------------------------------


def pure_on_batch(corridor: Corridor, initial_plan: Plan):
    """The domain path with state held in memory: validate, rolling flows, retime."""
    state = engine.CorridorState(corridor=corridor, plan=initial_plan)

    def on_batch(batch: SensorBatch) -> Plan | None:
        nonlocal state
        now = max(r.interval_end for r in batch.readings)
        result = engine.ingest(state, batch, now=now)
        state = result.state
        return result.plan

    return on_batch


def load_factory(spec: str):
    if spec == "pure":
        return pure_on_batch
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/traffic_handler.py
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "on_batch_factory")


# --- preparing the variants ------------------------------------------------------------------


@dataclass
class Setup:
    net: str
    routes: str
    work: str
    corridor: Corridor
    plan0: Plan
    detectors_file: str
    additional: dict[str, list[str]]
    begin_measure: float
    end_departures: float
    reading_s: float
    batch_s: float
    on_batch_spec: str
    peak: str = "forward"
    scale: float = 1.0  # demand factor (SUMO's --scale), for every variant and SUMO's tools alike
    pedestrians: bool = False  # the routes or the network carry pedestrians (then their minimum greens apply)
    notes: list[str] = field(default_factory=list)


def last_departure(routes: str) -> float:
    end = 0.0
    for _, elem in ET.iterparse(routes):
        if elem.tag in ("flow", "personFlow"):
            end = max(end, float(elem.get("end", elem.get("begin", 0))))
        elif elem.tag in ("vehicle", "trip"):
            end = max(end, float(elem.get("depart", 0)) if elem.get("depart", "0").replace(".", "").isdigit() else end)
        elem.clear() if elem.tag in ("flow", "vehicle", "trip") else None
    return end


def has_pedestrians(net: str, routes: str) -> bool:
    """Whether anyone walks: persons in the routes or crossings/walking areas in the network."""
    for path, tags in ((routes, {"person", "personFlow", "walk"}), (net, {"crossing", "walkingArea"})):
        for _, elem in ET.iterparse(path):
            if elem.tag in tags or (elem.tag == "edge" and elem.get("function") in ("crossing", "walkingarea")):
                return True
            elem.clear()
    return False


def actuated_additional(net_path: str, out: Path, only: set[str]) -> None:
    """The network's own programs, switched to SUMO's gap-based actuated control (netconvert's defaults)."""
    net = sumo.read_net(net_path)
    lines = ["<additional>"]
    for tls in net.getTrafficLights():
        if tls.getID() not in only:
            continue
        program = sumo._program(tls, None)
        lines.append(f'    <tlLogic id="{tls.getID()}" type="actuated" programID="actuated" offset="0">')
        for phase in program.getPhases():
            state, duration = phase.state, float(phase.duration)
            if any(c in "Gg" for c in state) and "y" not in state.lower() and duration > 5:
                lines.append(f'        <phase duration="{duration:g}" minDur="5" maxDur="50" state="{state}"/>')
            else:
                lines.append(f'        <phase duration="{duration:g}" state="{state}"/>')
        lines.append("    </tlLogic>")
    lines.append("</additional>")
    out.write_text("\n".join(lines) + "\n")


def _keep_only(path: Path, only: set[str]) -> None:
    """Drop tlLogics of signals outside the corridor: every variant changes the corridor's signals only."""
    tree = ET.parse(path)
    root = tree.getroot()
    for logic in list(root.findall("tlLogic")):
        if logic.get("id") not in only:
            root.remove(logic)
    tree.write(path)


def sumo_coordinated_additional(setup_net: str, routes: str, work: Path, begin: float, only: set[str],
                                scale: float) -> list[str]:
    """SUMO's tools: Webster cycles for the peak hour (one cycle for all, -u), then offsets by tlsCoordinator."""
    home = sumo_home()
    env = {**os.environ, "SUMO_HOME": str(home)}
    vehicles = work / "vehicles.rou.xml"  # the tools read <vehicle>s with routes, so expand flows first
    subprocess.run([str(home / "bin" / "duarouter"), "-n", setup_net, "-r", routes, "-o", str(vehicles), "--seed", "42",
                    "--scale", f"{scale:g}", "--no-step-log", "--no-warnings", "--ignore-errors"],
                   check=True, capture_output=True, env=env)
    cycle = work / "sumo_cycle.add.xml"
    subprocess.run([sys.executable, str(home / "tools" / "tlsCycleAdaptation.py"), "-n", setup_net, "-r", str(vehicles),
                    "-b", str(begin), "-u", "-o", str(cycle)], check=True, capture_output=True, env=env)
    coord = work / "sumo_coord.add.xml"
    subprocess.run([sys.executable, str(home / "tools" / "tlsCoordinator.py"), "-n", setup_net, "-r", str(vehicles),
                    "-a", str(cycle), "-o", str(coord)], check=True, capture_output=True, env=env)
    _keep_only(cycle, only)
    _keep_only(coord, only)
    return [str(cycle), str(coord)]


def prepare(args, work: Path) -> Setup:
    junctions = [j for j in args.corridor.split(",") if j] if args.corridor else None
    low, _, high = (args.cycle or "40,150").partition(",")
    corridor = sumo.import_corridor(args.net, junctions, cycle_min_s=float(low), cycle_max_s=float(high or low))
    plan0 = sumo.imported_plan(corridor, args.net)
    detectors = work / "detectors.add.xml"
    detectors.write_text(sumo.detectors_xml(corridor, args.net, period_s=args.reading_s))
    only = {i.sumo_tls_id or i.id for i in corridor.intersections}
    actuated = work / "actuated.add.xml"
    actuated_additional(args.net, actuated, only)
    end = args.end_s or last_departure(args.routes)
    begin = args.warmup_s if args.warmup_s < end else 0.0
    coordinated = sumo_coordinated_additional(args.net, args.routes, work, begin, only, args.scale)
    return Setup(
        net=args.net, routes=args.routes, work=str(work), corridor=corridor, plan0=plan0,
        detectors_file=str(detectors),
        additional={"static": [], "actuated": [str(actuated)], "sumo_coordinated": coordinated, "sunflower": [],
                    "sunflower_fixed": []},
        pedestrians=has_pedestrians(args.net, args.routes),
        begin_measure=begin, end_departures=end, reading_s=args.reading_s, batch_s=args.batch_s,
        on_batch_spec=args.on_batch, scale=args.scale,
    )


# --- applying plans to running signals ---------------------------------------------------------


class Signals:
    """Puts plans into force the way a coordinated controller does (NTCIP 1202 coordCorrectionMode "shortway",
    SHORT/LONG in vendors' manuals): a new plan's program starts at the end of a cycle, then the controller
    walks to the new offset a bounded step per cycle, shortening every split by at most `short_share` or
    lengthening every split by at most `long_share` of itself, whichever gets it in step in fewer cycles. No
    green is ever cut below its minimum (vehicle or pedestrian) and the clearance intervals never change."""

    SHORT_SHARE = 0.12  # e.g. a Trafficware/Naztec pattern's "Short 12 / Long 22" transition
    LONG_SHARE = 0.22

    # A non-coordinated green gaps out after this long without a vehicle over its loops (the loops are set
    # back ~33 m: ~3 s of passage time to the stop line plus a 1 s gap), but never before a variable initial
    # green long enough to clear the vehicles that crossed its loops since it last ended and may stand between
    # the loop and the stop line (STARTUP_S + HEADWAY_S per vehicle, at most one per STORED_M of setback).
    GAP_S = 4.0
    HEADWAY_S, STARTUP_S, STORED_M = 3.0, 4.0, 7.5
    CALL_MEMORY_S = 10.0

    def __init__(self, traci, corridor: Corridor, *, short_share: float = SHORT_SHARE,
                 long_share: float = LONG_SHARE, actuated: bool = False, pedestrians: bool = True,
                 gap_s: float = GAP_S) -> None:
        self.traci = traci
        self.corridor = corridor
        self.short_share, self.long_share = short_share, long_share
        # coordinated-actuated: the plan fixes cycle, offsets and maximum splits; the stages serving the
        # arterial through (coordinated) always run to their yield point and rest in green until a call
        # (no yellow for nobody), the other stages are skipped without a call, end at their minimum when
        # nothing more comes (gap out) and their unused time returns to the coordinated stage (early
        # return; the yield point never moves)
        self.actuated, self.pedestrians, self.gap_s = actuated, pedestrians, gap_s
        self.anchor: dict[str, float] = {}  # the planned start of the running cycle (offset reference)
        self.next_anchor: dict[str, float] = {}
        self.ends: dict[str, list[float]] = {}  # planned end of each stage's green in the running cycle
        self.running: dict[str, tuple[int, float, float]] = {}  # tls -> (stage, green start, minimum)
        self.resting: dict[str, int] = {}  # tls -> its coordinated stage, green until a call yields it
        self.on_loop: dict[str, tuple] = {}  # detector -> vehicles over it at the last step
        self.last_on: dict[str, float] = {}  # detector -> last time a vehicle was over it
        self.crossed: dict[str, list[float]] = {}  # detector -> when vehicles reached it (the last few minutes)
        self.calls_from: dict[str, float] = {}  # detector -> vehicles reaching it from then on call its stage
        self.gapped_out = self.skipped = 0
        self.pending: dict[str, _Program] = {}
        self.active: dict[str, _Program] = {}
        self.greens: dict[str, dict[int, float]] = {}  # this cycle's green per SUMO phase index
        self.applied = 0
        self.transition_cycles = 0  # cycles run off their plan's length to reach an offset

    def submit(self, plan: Plan) -> None:
        from sunflower.traffic import timing as tmg

        for i in self.corridor.intersections:
            t = plan.timing(i.id)
            phases = sumo_phases(i, t)
            mins = {p.name: p.min_green_s for p in tmg.resolve(i).phases}
            stages = []  # per SUMO phase: index of the stage it belongs to if it is that stage's green
            for k, stage in enumerate(t.phases):
                stages += [k] if stage.green_s > 0 else []
                stages += [None] * ((stage.yellow_s > 0) + (stage.all_red_s > 0))
            assert len(stages) == len(phases), (i.id, stages, phases)
            coordinated, dets, vmins, stored, skippable = _actuation(
                i, t, [d for d in self.corridor.detectors if d.intersection_id == i.id], self.pedestrians,
                self.STORED_M)
            self.pending[i.sumo_tls_id or i.id] = _Program(
                name=f"sf{plan.version}", phases=phases, cycle_s=sum(d for d, _ in phases), offset_s=t.offset_s,
                green_of=tuple(stages), greens=tuple(s.green_s for s in t.phases),
                splits=tuple(s.duration_s for s in t.phases),
                mins=tuple(min(mins.get(s.phase, 0.0), s.green_s) for s in t.phases),
                coordinated=coordinated, detectors=dets, vmins=vmins, stored=stored, skippable=skippable,
                clear=tuple(s.yellow_s + s.all_red_s for s in t.phases),
                first=tuple(stages.index(k) if k in stages else None for k in range(len(t.phases))))
        self.applied += 1

    def on_phase(self, tls: str, phase: int, now: float) -> None:
        """Called when `tls` has just entered `phase` (0: a new cycle begins); `now` is the time of the step
        that shows it, which may be a step after the phase began."""
        if self.actuated:
            self._on_phase_actuated(tls, phase, now)
            return
        tl = self.traci.trafficlight
        spent = tl.getSpentDuration(tls)
        started = now - spent
        if phase == 0:
            if tls in self.pending:
                self._switch(tls)
                spent = 0.0  # the new program's first phase starts afresh
                started = now
            if tls in self.active:
                self.greens[tls] = self._cycle_greens(self.active[tls], started)
        program = self.active.get(tls)
        if program is None or phase >= len(program.green_of) or program.green_of[phase] is None:
            return
        stage = program.green_of[phase]
        tl.setPhaseDuration(tls, max(0.0, self.greens[tls].get(stage, program.greens[stage]) - spent))

    def _switch(self, tls: str) -> _Program:
        """Put the pending program into force, at its first phase."""
        tl = self.traci.trafficlight
        program = self.pending.pop(tls)
        logic = tl.Logic(program.name, 0, 0, [tl.Phase(d, s) for d, s in program.phases])
        tl.setProgramLogic(tls, logic)
        tl.setProgram(tls, program.name)
        tl.setPhase(tls, 0)
        self.active[tls] = program
        return program

    def _begin_cycle(self, tls: str, anchor: float) -> None:
        if tls not in self.active:
            return
        p = self.active[tls]
        greens = self._cycle_greens(p, anchor)
        ends, t = [], anchor
        for k, clear in enumerate(p.clear):
            t += greens.get(k, p.greens[k])
            ends.append(t)
            t += clear
        self.anchor[tls], self.next_anchor[tls], self.ends[tls] = anchor, t, ends
        self.greens[tls] = greens

    def _on_phase_actuated(self, tls: str, phase: int, now: float) -> None:
        tl = self.traci.trafficlight
        self.running.pop(tls, None)
        self.resting.pop(tls, None)
        spent = tl.getSpentDuration(tls)
        started = now - spent
        if phase == 0:
            if tls in self.pending:
                self._switch(tls)
                started, anchor = now, now
            else:
                expected = self.next_anchor.get(tls)
                # early return to coordination: the cycle keeps its planned start, so offsets do not drift
                cycle = self.active[tls].cycle_s if tls in self.active else 0.0
                anchor = expected if expected is not None and started < expected < started + cycle else started
            self._begin_cycle(tls, anchor)
        p = self.active.get(tls)
        if p is None or tls not in self.ends or phase >= len(p.green_of) or p.green_of[phase] is None:
            return
        k = p.green_of[phase]
        if p.coordinated[k]:
            tl.setPhaseDuration(tls, 1e6)  # it yields at or after its yield point, on a call (step)
            self.resting[tls] = k
            return
        if not p.detectors[k]:
            tl.setPhaseDuration(tls, max(0.0, self.ends[tls][k] - now))
            return
        # a non-coordinated stage: at most its split (floating force-off), never past its planned end
        split_green = self.greens[tls].get(k, p.greens[k])
        green_max = max(0.0, min(started + split_green, self.ends[tls][k]) - now)
        queued = max((self.calls(d) for d in p.detectors[k]), default=0)
        if queued == 0 and p.skippable[k]:
            nxt = p.first[(k + 1) % len(p.first)]
            self.skipped += 1
            tl.setPhase(tls, nxt if nxt is not None else 0)
            return
        minimum = min(green_max, self._minimum(p, k))
        tl.setPhaseDuration(tls, green_max)
        self.running[tls] = (k, started, minimum)

    def step(self, now: float, on_loop: dict[str, tuple]) -> None:
        """Each simulation step in actuated mode: what the loops see, then gap-outs of non-coordinated greens."""
        for det, ids in on_loop.items():
            before = self.on_loop.get(det, ())
            new = [v for v in ids if v not in before]
            if ids:
                self.last_on[det] = now
            if new:
                times = self.crossed.setdefault(det, [])
                times.extend([now] * len(new))
                if len(times) > 200:
                    del times[:100]
            self.on_loop[det] = tuple(ids)
        tl = self.traci.trafficlight
        for tls, k in list(self.resting.items()):
            self._rest_or_yield(tls, k, now)
        for tls, (k, started, minimum) in list(self.running.items()):
            p = self.active[tls]
            if now - started < minimum - 1e-9:
                continue
            if all(now - self.last_on.get(d, -math.inf) >= self.gap_s - 1e-9 for d in p.detectors[k]):
                del self.running[tls]
                self.gapped_out += 1
                phase = p.green_of.index(k)
                tl.setPhase(tls, (phase + 1) % len(p.green_of))

    def _rest_or_yield(self, tls: str, k: int, now: float) -> None:
        """A coordinated stage past its yield point rests in green until a non-coordinated stage that follows
        it is called, and yields only while that stage can still get the green it needs before its force-off
        (its permissive period); a call that comes later is served after the next cycle's yield point."""
        p = self.active[tls]
        if now < self.ends[tls][k] - 1e-9:
            return
        if now >= self.next_anchor[tls] - 1e-9:  # a whole cycle without a call: the next begins in this green
            self.skipped += 1
            if tls in self.pending:
                self._switch(tls)
                self._on_phase_actuated(tls, 0, now)
            else:
                self._begin_cycle(tls, self.next_anchor[tls])
                self.resting[tls] = k
            return
        n = len(p.coordinated)
        t = now + p.clear[k]
        for j in [(k + m) % n for m in range(1, n)]:
            if p.coordinated[j] or not p.detectors[j] or not p.skippable[j]:
                break  # served every cycle: yield at the yield point
            if any(self.calls(d) for d in p.detectors[j]):
                if t + min(self._minimum(p, j), self.greens[tls].get(j, p.greens[j])) > self.ends[tls][j] + 1e-9:
                    return  # too late for this cycle's permissive period
                break
        else:
            return  # no call: rest in green
        del self.resting[tls]
        self.traci.trafficlight.setPhase(tls, p.green_of.index(k) + 1)

    def green_ended(self, tls: str, phase: int, now: float) -> None:
        """`tls` has left the green SUMO phase `phase`: its stage's loops start counting calls afresh."""
        p = self.active.get(tls)
        if p is None or not self.actuated or phase >= len(p.green_of) or p.green_of[phase] is None:
            return
        for det in p.detectors[p.green_of[phase]]:
            self.calls_from[det] = now - self.CALL_MEMORY_S

    def _minimum(self, p: _Program, k: int) -> float:
        """Stage k's variable initial green: its minimum, or long enough to clear the vehicles stored between
        its loops and the stop line."""
        stored = max((min(self.calls(d), n) for d, n in zip(p.detectors[k], p.stored[k], strict=True)), default=0)
        return max(p.vmins[k], self.STARTUP_S + self.HEADWAY_S * stored)

    def calls(self, det: str) -> int:
        """Vehicles waiting to be served over `det`'s lane: those that reached its loop since the green that
        served it ended (or shortly before: they may not have made it), at least 1 while one stands on it."""
        since = self.calls_from.get(det, -math.inf)
        n = sum(1 for t in self.crossed.get(det, ()) if t >= since)
        return max(n, 1 if self.on_loop.get(det) else 0)

    def _cycle_greens(self, p: _Program, now: float) -> dict[int, float]:
        """The greens of the cycle that starts now: the plan's, or stretched/squeezed towards the offset."""
        late = (now - p.offset_s) % p.cycle_s
        if late < 0.5 or p.cycle_s - late < 0.5:
            return dict(enumerate(p.greens))
        room = [max(0.0, min(self.short_share * s, g - m)) for s, g, m in zip(p.splits, p.greens, p.mins, strict=True)]
        most_short = math.floor(sum(room))
        most_long = math.floor(self.long_share * p.cycle_s)
        short_cycles = math.ceil(late / most_short) if most_short >= 1 else math.inf
        long_cycles = math.ceil((p.cycle_s - late) / most_long) if most_long >= 1 else math.inf
        if short_cycles == math.inf and long_cycles == math.inf:
            return dict(enumerate(p.greens))
        self.transition_cycles += 1
        if short_cycles < long_cycles:
            change, weights = -min(late, most_short), room
        else:
            change, weights = min(p.cycle_s - late, most_long), list(p.splits)
        shares = [abs(change) * w / sum(weights) for w in weights]
        units = [math.floor(x) for x in shares]  # whole seconds, largest remainders first
        for k in sorted(range(len(shares)), key=lambda k: units[k] - shares[k])[:round(abs(change)) - sum(units)]:
            units[k] += 1
        sign = -1 if change < 0 else 1
        return {k: g + sign * u for k, (g, u) in enumerate(zip(p.greens, units, strict=True))}


@dataclass(frozen=True)
class _Program:
    name: str
    phases: list  # (duration, state) per SUMO phase
    cycle_s: float
    offset_s: float
    green_of: tuple  # per SUMO phase: the stage whose green it is, or None (yellow, all-red)
    greens: tuple  # per stage
    splits: tuple  # per stage: green + yellow + all-red
    mins: tuple  # per stage: minimum green
    coordinated: tuple = ()  # per stage: serves an arterial through movement (never actuated)
    detectors: tuple = ()  # per stage: loops that call and extend it (lanes of movements the next stage stops)
    vmins: tuple = ()  # per stage: minimum green when actuated (vehicles; pedestrians' too if any exist)
    clear: tuple = ()  # per stage: yellow + all-red
    first: tuple = ()  # per stage: its green's SUMO phase index (None: no green)
    stored: tuple = ()  # per stage: per loop, vehicles that fit between it and the stop line
    skippable: tuple = ()  # per stage: every lane it alone serves has a loop, so no call means no vehicle


def _actuation(i, t, detectors: list, pedestrians: bool, stored_m: float = 7.5) -> tuple[tuple, ...]:
    """Per stage of a timing: coordinated?, its calling/extending loops, its actuated minimum green, how many
    vehicles fit between each of its loops and the stop line, and whether it may be skipped without a call."""
    from sunflower.traffic import timing as tmg

    resolved = {p.name: p.min_green_s for p in tmg.resolve(i).phases}
    vehicle = {p.name: p.min_green_s for p in i.phases}
    coordinated, dets, vmins, stored, skippable = [], [], [], [], []
    by_lane = {d.lane_id: d for d in detectors}
    for k, stage in enumerate(t.phases):
        served = set(stage.movements) | set(stage.permissive)
        nxt = t.phases[(k + 1) % len(t.phases)]
        stops = served - set(nxt.movements) - set(nxt.permissive)
        lanes = {lane.id for lane in i.lanes if stops & set(lane.movements)}
        coordinated.append(stage.coordinated)
        mine = [by_lane[lane] for lane in sorted(lanes) if lane in by_lane]
        dets.append(tuple(d.id for d in mine))
        stored.append(tuple(math.floor(d.distance_to_stop_line_m / stored_m) for d in mine))
        prev = t.phases[k - 1]
        kept = served & (set(prev.movements) | set(prev.permissive))  # green through the previous clearance
        skippable.append(bool(mine) and len(mine) == len(lanes) and k > 0
                         and kept <= set(nxt.movements) | set(nxt.permissive))
        vmins.append(min(stage.green_s, resolved.get(stage.phase, 0.0) if pedestrians else
                         vehicle.get(stage.phase, 0.0)))
    return tuple(coordinated), tuple(dets), tuple(vmins), tuple(stored), tuple(skippable)


# --- one simulation ---------------------------------------------------------------------------


def run_one(setup: Setup, variant: str, seed: int) -> dict:
    import traci
    import traci.constants as tc

    home = sumo_home()
    os.environ.setdefault("SUMO_HOME", str(home))
    tag = f"{variant}-{seed}"
    tripinfo = Path(setup.work) / f"tripinfo-{tag}.xml"
    adds = [setup.detectors_file, *setup.additional[variant]]
    cmd = [str(home / "bin" / "sumo"), "-n", setup.net, "-r", setup.routes, "-a", ",".join(adds),
           "--seed", str(seed), "--scale", f"{setup.scale:g}", "--tripinfo-output", str(tripinfo),
           "--tripinfo-output.write-unfinished", "--no-step-log", "--no-warnings", "--duration-log.disable",
           "--time-to-teleport", "300"]
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # traci prints its connect retries
        traci.start(cmd, label=tag)
    conn = traci.getConnection(tag)
    corridor = setup.corridor
    tls_ids = [i.sumo_tls_id or i.id for i in corridor.intersections]
    watch = {}  # (intersection index, direction) -> link index of its arterial through movement
    for k, i in enumerate(corridor.intersections):
        for d in ("forward", "reverse"):
            m = i.arterial_movement(d)
            if m is not None and m.link_indices:
                watch[(k, d)] = m.link_indices[0]
    for tls in tls_ids:
        conn.trafficlight.subscribe(tls, [tc.TL_CURRENT_PHASE, tc.TL_RED_YELLOW_GREEN_STATE])
    conn.simulation.subscribe([tc.VAR_DEPARTED_VEHICLES_IDS])
    ours = variant in ("sunflower", "sunflower_fixed")
    actuated = variant == "sunflower"
    signals = Signals(conn, corridor, actuated=actuated, pedestrians=setup.pedestrians)
    loops = sorted(d.id for d in corridor.detectors) if actuated else []
    for d in loops:
        conn.inductionloop.subscribe(d, [tc.LAST_STEP_VEHICLE_ID_LIST])
    on_batch = load_factory(setup.on_batch_spec)(corridor, setup.plan0) if ours else None
    readings: list[SensorReading] = []
    routes: dict[str, tuple[str, ...]] = {}
    green = {key: [] for key in watch}
    phase_starts: dict[str, list[float]] = {tls: [] for tls in tls_ids}
    last_phase = {tls: None for tls in tls_ids}
    errors: list[str] = []
    batch_no = 0
    t = 0.0
    hard_end = setup.end_departures + 3600
    while True:
        conn.simulationStep()
        t = conn.simulation.getTime()
        for vid in conn.simulation.getSubscriptionResults().get(tc.VAR_DEPARTED_VEHICLES_IDS, ()):
            routes[vid] = conn.vehicle.getRoute(vid)
        tl_results = conn.trafficlight.getAllSubscriptionResults()
        for k, tls in enumerate(tls_ids):
            res = tl_results[tls]
            phase = res[tc.TL_CURRENT_PHASE]
            if phase != last_phase[tls]:
                if ours:
                    if last_phase[tls] is not None:
                        signals.green_ended(tls, last_phase[tls], t)
                    signals.on_phase(tls, phase, t)
                if phase == 0:
                    phase_starts[tls].append(t)
            last_phase[tls] = phase
            state = res[tc.TL_RED_YELLOW_GREEN_STATE]
            for d in ("forward", "reverse"):
                if (k, d) in watch:
                    green[(k, d)].append(state[watch[(k, d)]] in "Gg")
        if actuated:
            seen = conn.inductionloop.getAllSubscriptionResults()
            signals.step(t, {d: seen.get(d, {}).get(tc.LAST_STEP_VEHICLE_ID_LIST, ()) for d in loops})
        if on_batch is not None and t > 0 and int(t) % int(setup.reading_s) == 0:
            start = EPOCH + timedelta(seconds=t - setup.reading_s)
            for d in corridor.detectors:
                count = conn.inductionloop.getLastIntervalVehicleNumber(d.id)
                speed = conn.inductionloop.getLastIntervalMeanSpeed(d.id)
                readings.append(SensorReading(
                    detector_id=d.id, interval_start=start, interval_s=setup.reading_s, count=count,
                    occupancy=min(1.0, max(0.0, conn.inductionloop.getLastIntervalOccupancy(d.id) / 100.0)),
                    mean_speed_kmh=round(speed * 3.6, 1) if speed >= 0 else None,
                ))
            if int(t) % int(setup.batch_s) == 0 and readings:
                batch_no += 1
                batch = SensorBatch(batch_id=f"{tag}-{batch_no}", corridor_id=corridor.id, readings=tuple(readings))
                readings = []
                try:
                    plan = on_batch(batch)
                except Exception as exc:  # noqa: BLE001  (any failure: the plan in force stays; reported)
                    errors.append(f"t={t:.0f}: {type(exc).__name__}: {exc}")
                    plan = None
                if plan is not None:
                    signals.submit(plan)
        if t >= hard_end or (t > setup.end_departures and conn.simulation.getMinExpectedNumber() == 0):
            break
    conn.close()
    metrics = summarise(setup, tripinfo, routes, green, phase_starts)
    metrics.update(variant=variant, seed=seed, plans_applied=signals.applied,
                   transition_cycles=signals.transition_cycles, errors=errors[:5],
                   actuation={"gapped_out": signals.gapped_out, "skipped": signals.skipped})
    return metrics


# --- figures ----------------------------------------------------------------------------------


def arterial_edges(corridor: Corridor) -> dict[str, tuple[str, str]]:
    """Per direction, the approach edges at the first and last intersection that direction meets."""
    out = {}
    for d in ("forward", "reverse"):
        edges = []
        for i in corridor.intersections:
            m = i.arterial_movement(d)
            lane = next((lane for lane in i.lanes if m is not None and m.name in lane.movements), None)
            edges.append(lane.id.rsplit("_", 1)[0] if lane else None)
        if d == "reverse":
            edges.reverse()
        if edges and edges[0] and edges[-1]:
            out[d] = (edges[0], edges[-1])
    return out


CLASSES = ("through_peak", "through_offpeak", "arterial_part", "side_onto", "side_cross", "elsewhere")


def approach_edges(corridor: Corridor) -> tuple[set[str], set[str]]:
    """The corridor's signalled approach edges: (those carrying the arterial through, the side streets')."""
    arterial, side = set(), set()
    for i in corridor.intersections:
        through = {m.name for m in i.movements if m.arterial}
        for lane in i.lanes:
            edge = lane.id.rsplit("_", 1)[0]
            (arterial if through & set(lane.movements) else side).add(edge)
    return arterial, side - arterial


def vehicle_class(route: tuple[str, ...], direction: str | None, peak: str, arterial: set[str], side: set[str]) -> str:
    """Where a vehicle meets the corridor: along it end to end (peak or off-peak direction), along part of it,
    onto or off it from a side street, only across it, or not at all."""
    if direction is not None:
        return "through_peak" if direction == peak else "through_offpeak"
    on_arterial = any(e in arterial for e in route)
    on_side = any(e in side for e in route)
    if on_side:
        return "side_onto" if on_arterial or len([e for e in route if e in side]) > 1 else "side_cross"
    return "arterial_part" if on_arterial else "elsewhere"


def summarise(setup: Setup, tripinfo: Path, routes: dict, green: dict, phase_starts: dict) -> dict:
    ends = arterial_edges(setup.corridor)
    through = {}
    for vid, route in routes.items():
        for d, (first, last) in ends.items():
            if first in route and last in route and route.index(first) < route.index(last):
                through[vid] = d
    counts = {d: sum(1 for v in through.values() if v == d) for d in ("forward", "reverse")}
    peak_guess = max(counts, key=lambda d: counts[d])
    arterial, side = approach_edges(setup.corridor)
    by_class: dict[str, list[tuple[float, int, float]]] = {c: [] for c in CLASSES}
    loss, travel, stops, art_stops = [], [], [], {"forward": [], "reverse": []}
    for _, elem in ET.iterparse(str(tripinfo)):
        if elem.tag != "tripinfo":
            continue
        delay = float(elem.get("departDelay", 0))
        planned = float(elem.get("depart")) - delay if float(elem.get("depart", -1)) >= 0 else None
        if planned is None or not setup.begin_measure <= planned <= setup.end_departures:
            elem.clear()
            continue
        loss.append(float(elem.get("timeLoss")) + delay)
        travel.append(float(elem.get("duration")) + delay)
        stops.append(int(elem.get("waitingCount")))
        d = through.get(elem.get("id"))
        if d:
            art_stops[d].append(int(elem.get("waitingCount")))
        kind = vehicle_class(routes.get(elem.get("id"), ()), d, peak_guess, arterial, side)
        by_class[kind].append((loss[-1], stops[-1], float(elem.get("waitingTime"))))
        elem.clear()
    peak = max(art_stops, key=lambda d: len(art_stops[d]))
    total = sum(loss) or 1.0
    breakdown = {
        c: {"vehicles": len(rows), "time_loss_s": statistics.fmean(r[0] for r in rows),
            "waiting_s": statistics.fmean(r[2] for r in rows), "stops": statistics.fmean(r[1] for r in rows),
            "share": sum(r[0] for r in rows) / total}
        for c, rows in by_class.items() if rows
    }
    return {
        "breakdown": breakdown,
        "vehicles": len(loss),
        "mean_time_loss_s": statistics.fmean(loss) if loss else math.nan,
        "mean_travel_time_s": statistics.fmean(travel) if travel else math.nan,
        "stops_per_vehicle": statistics.fmean(stops) if stops else math.nan,
        "arterial_stops_per_vehicle": statistics.fmean(art_stops[peak]) if art_stops[peak] else math.nan,
        "offpeak_arterial_stops_per_vehicle": statistics.fmean(art_stops[other]) if (
            art_stops[other := "reverse" if peak == "forward" else "forward"]) else math.nan,
        "peak": peak,
        "bandwidth_s": realised_bandwidth(setup, green, phase_starts),
    }


def realised_bandwidth(setup: Setup, green: dict, phase_starts: dict) -> float:
    corridor = setup.corridor
    v = corridor.design_speed_mps
    pos = [i.position_m for i in corridor.intersections]
    n = len(pos)
    lo, hi = int(setup.begin_measure), int(setup.end_departures)
    cycles = []
    for starts in phase_starts.values():
        inside = [s for s in starts if lo <= s <= hi]
        cycles.extend(b - a for a, b in itertools.pairwise(inside))
    if not cycles:
        return 0.0
    mean_cycle = statistics.median(cycles)  # a signal resting in green through a cycle shows no new cycle
    total = 0.0
    for d in ("forward", "reverse"):
        if any((k, d) not in green for k in range(n)):
            continue
        offsets = [(p - pos[0]) / v if d == "forward" else (pos[-1] - p) / v for p in pos]
        ok = count = 0
        t0 = lo
        while t0 + max(offsets) < hi:
            count += 1
            if all(_green_at(green[(k, d)], t0 + offsets[k]) for k in range(n)):
                ok += 1
            t0 += 0.25
        if count:
            total += ok / count * mean_cycle
    return total


def _green_at(series: list[bool], t: float) -> bool:
    k = int(t) - 1  # series[0] is the state after the first step (time 1)
    return 0 <= k < len(series) and series[k]


# --- retiming speed on a 10-intersection corridor ---------------------------------------------


def ten_intersection_timing(setup: Setup, runs: int = 60) -> tuple[float, float]:
    base = setup.corridor
    items = list(base.intersections)
    extra, detectors = [], list(base.detectors)
    step = [430.0, 620.0, 380.0, 510.0, 700.0, 350.0, 460.0, 800.0, 540.0]
    last = items[-1].position_m
    k = 0
    while len(items) + len(extra) < 10:
        src = items[k % len(items)]
        last += step[k % len(step)]
        new_id = f"{src.id}x{k}"
        extra.append(src.model_copy(update={"id": new_id, "position_m": last}))
        detectors += [d.model_copy(update={"id": f"{d.id}x{k}", "intersection_id": new_id})
                      for d in base.detectors if d.intersection_id == src.id]
        k += 1
    chain = items[:10] if len(items) >= 10 else items + extra
    corridor = base.model_copy(update={"intersections": tuple(chain), "detectors": tuple(
        d for d in detectors if d.intersection_id in {i.id for i in chain})})
    corridor = Corridor.model_validate(corridor.model_dump())
    state = engine.CorridorState(corridor=corridor, plan=None)
    samples = []
    t = EPOCH
    for r in range(runs + 5):
        readings = []
        for j, d in enumerate(corridor.detectors):
            readings.append(SensorReading(detector_id=d.id, interval_start=t, interval_s=300.0,
                                          count=20 + (j * 7 + r * 3) % 40, occupancy=0.1))
        batch = SensorBatch(batch_id=f"speed-{r}", corridor_id=corridor.id, readings=tuple(readings))
        t += timedelta(seconds=300)
        started = time.perf_counter()
        result = engine.ingest(state, batch, now=t)
        elapsed = (time.perf_counter() - started) * 1000
        state = result.state
        if r >= 5:  # the first few warm imports and caches
            samples.append(elapsed)
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sunflower bench traffic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", default=str(SCENARIO / "hanan2.net.xml"))
    parser.add_argument("--routes", default=str(SCENARIO / "hanan2.rou.xml"))
    parser.add_argument("--corridor", default=None, help="signalised junction ids in order (default: longest chain)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--cycle", default=None, help="LOW,HIGH (or one value) bounds the corridor's cycle, s "
                                                      "(default 40,150)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batch-s", type=float, default=300.0, help="a sensor batch every this many seconds")
    parser.add_argument("--reading-s", type=float, default=60.0, help="each reading covers this many seconds")
    parser.add_argument("--warmup-s", type=float, default=900.0, help="vehicles planned to leave before are not counted")
    parser.add_argument("--end-s", type=float, default=None, help="last planned departure counted (default: routes' end)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--on-batch", default="traffic_handler:factory",
                        help="MODULE:FACTORY, FACTORY(corridor, plan0) -> on_batch(batch); default: every batch "
                             "through the queue and functions/traffic_batch.py in the embedded cloud; "
                             "'pure' calls sunflower.traffic.engine.ingest directly")
    parser.add_argument("--scale", type=_positive, default=1.0,
                        help="demand factor for every variant (SUMO's --scale), e.g. 1.1 for 10 %% growth")
    parser.add_argument("--work-dir", default=None, help="keep the generated files here")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    variants = [v for v in args.variants.split(",") if v]
    started = time.perf_counter()
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="sunflower-bench-traffic-"))
    work.mkdir(parents=True, exist_ok=True)
    setup = prepare(args, work)
    c = setup.corridor
    print(f"corridor {c.id}: {len(c.intersections)} signals "
          f"({', '.join(i.id for i in c.intersections)}), {c.intersections[-1].position_m:.0f} m, "
          f"{c.forward_label}/{c.reverse_label}, design speed {c.design_speed_kmh:g} km/h, {len(c.detectors)} loops")
    jobs = [(v, s) for v in variants for s in seeds]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(_run_job, [(setup, v, s) for v, s in jobs]))
    rows = []
    for v in variants:
        runs = [r for r in results if r["variant"] == v]
        row = {"variant": v}
        for key in KEYS[1:]:
            row[key] = round(statistics.fmean(r[key] for r in runs), 2)
        row["offpeak_arterial_stops"] = round(statistics.fmean(r["offpeak_arterial_stops_per_vehicle"] for r in runs), 2)
        row["vehicles"] = round(statistics.fmean(r["vehicles"] for r in runs))
        row["plans"] = round(statistics.fmean(r["plans_applied"] for r in runs), 1)
        row["errors"] = sum(len(r["errors"]) for r in runs)
        rows.append(row)
        for r in runs:
            for e in r["errors"]:
                print(f"  {v} seed {r['seed']}: {e}", file=sys.stderr)
    baselines = [r for r in rows if not r["variant"].startswith("sunflower")]
    best = min(baselines, key=lambda r: r["mean_time_loss_s"]) if baselines else None
    header = (f"{'variant':<18}{'time loss s':>12}{'travel s':>10}{'stops/veh':>10}{'art. stops':>11}"
              f"{'(off-peak)':>11}{'band s':>8}{'vehicles':>9}{'plans':>7}")
    print(f"peak direction: {results[0]['peak']}; seeds {seeds}; counted departures "
          f"{setup.begin_measure:g}-{setup.end_departures:g} s; demand x{setup.scale:g}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['variant']:<18}{r['mean_time_loss_s']:>12.1f}{r['mean_travel_time_s']:>10.1f}"
              f"{r['stops_per_vehicle']:>10.2f}{r['arterial_stops_per_vehicle']:>11.2f}{r['offpeak_arterial_stops']:>11.2f}"
              f"{r['bandwidth_s']:>8.1f}{r['vehicles']:>9}{r['plans']:>7}")
    print("where the time is lost (mean per vehicle over the seeds; share of all vehicles' time loss):")
    sub = f"{'':<18}" + "".join(f"{c:>17}" for c in CLASSES)
    print(sub)
    for v in variants:
        runs = [r for r in results if r["variant"] == v]
        cells = []
        for c in CLASSES:
            parts = [r["breakdown"][c] for r in runs if c in r["breakdown"]]
            if not parts:
                cells.append(f"{'-':>17}")
                continue
            mean = statistics.fmean(p["time_loss_s"] for p in parts)
            share = statistics.fmean(p["share"] for p in parts)
            cells.append(f"{mean:>8.1f} s {share:>5.0%} ")
        print(f"{v:<18}" + "".join(cells))
    counts = {c: round(statistics.fmean(r["breakdown"][c]["vehicles"] for r in results if c in r["breakdown"]))
              for c in CLASSES if any(c in r["breakdown"] for r in results)}
    print(f"{'(vehicles)':<18}" + "".join(f"{counts.get(c, 0):>17}" for c in CLASSES))
    own = next((r for r in rows if r["variant"] == "sunflower"), None)
    if own and best:
        print(f"sunflower / best baseline ({best['variant']}) time loss: "
              f"{own['mean_time_loss_s'] / best['mean_time_loss_s']:.2f} (target <= 0.80); "
              f"peak-direction arterial stops {own['arterial_stops_per_vehicle']:.2f} (target <= 1)")
    for v in variants:
        runs = [r for r in results if r["variant"] == v and r.get("actuation")]
        if v == "sunflower" and runs:
            print(f"sunflower coordinated-actuated: per run {statistics.fmean(r['actuation']['gapped_out'] for r in runs):.0f}"
                  f" side greens gapped out, {statistics.fmean(r['actuation']['skipped'] for r in runs):.0f} skipped"
                  f" (no call); pedestrians in the scenario: {'yes' if setup.pedestrians else 'none'}")
    p50, p99 = ten_intersection_timing(setup)
    print(f"elapsed {time.perf_counter() - started:.0f} s; work dir {work}")
    for r in rows:
        print(json.dumps({k: (None if isinstance(r[k], float) and math.isnan(r[k]) else r[k]) for k in KEYS}))
    print(json.dumps({"retime_ms_10": {"p50": round(p50, 1), "p99": round(p99, 1)}}))


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _run_job(job):
    setup, variant, seed = job
    return run_one(setup, variant, seed)


if __name__ == "__main__":
    main()
