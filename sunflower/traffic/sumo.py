"""A corridor from a SUMO network (netconvert-generated signals), and the files a simulation needs.

`import_corridor` finds the arterial through the given junctions (or the longest chain of signalised
junctions joined by straight-through movements), maps each signal's links to movements (approach
and turn) and its program's phases to Sunflower phases, and places one induction loop per
signalled approach lane. `imported_plan` is the network's own program as plan version 0.
Needs sumolib (the `sim` extra); nothing here talks to a running simulation.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sunflower.traffic.errors import InvalidCorridor
from sunflower.traffic.export import STOP_THEN_GO
from sunflower.traffic.models import (
    Corridor,
    Detector,
    Intersection,
    IntersectionTiming,
    Lane,
    Movement,
    Phase,
    PhaseTiming,
    Plan,
    Turn,
)

DETECTOR_SETBACK_M = 40.0
VEHICLE_MIN_GREEN_S = 5.0
SATURATION_THROUGH_VPH = 1800.0
SATURATION_TURN_VPH = 1650.0
GREEN_CHARS = "Gg"
YELLOW_CHARS = "yY"
_TURNS = {"s": Turn.THROUGH, "l": Turn.LEFT, "L": Turn.LEFT, "r": Turn.RIGHT, "R": Turn.RIGHT, "t": Turn.UTURN,
          "T": Turn.UTURN}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_net(path: str | Path):
    import sumolib

    return sumolib.net.readNet(str(path), withPrograms=True)


# --- geometry helpers -------------------------------------------------------------------------


def _heading(shape) -> float:
    """Direction of travel at the end of a shape, degrees counter-clockwise from east."""
    (x0, y0), (x1, y1) = shape[-2][:2], shape[-1][:2]
    return math.degrees(math.atan2(y1 - y0, x1 - x0)) % 360


def _bound(heading: float) -> str:
    return ("EB", "NB", "WB", "SB")[int(((heading + 45) % 360) // 90)]


def _angle_between(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def _dist(p, q) -> float:
    return math.hypot(p[0] - q[0], p[1] - q[1])


# --- finding the arterial ---------------------------------------------------------------------


def _tls_nodes(net) -> dict[str, str]:
    """node id -> id of the signal that controls it."""
    out = {}
    for tls in net.getTrafficLights():
        for in_lane, _, _ in tls.getConnections():
            out.setdefault(in_lane.getEdge().getToNode().getID(), tls.getID())
    return out


def _straight_out(edge):
    """The edge a vehicle on `edge` continues straight onto (or the least-turning one)."""
    best = None
    for to_edge, conns in sorted(edge.getOutgoing().items(), key=lambda kv: kv[0].getID()):
        if to_edge.getFunction() == "internal" or to_edge.getToNode() == edge.getFromNode():
            continue
        dirs = {c.getDirection() for c in conns}
        angle = _angle_between(_heading(edge.getShape()), _heading(to_edge.getShape()[:2]))
        rank = (0 if "s" in dirs else 1, angle)
        if best is None or rank < best[0]:
            best = (rank, to_edge)
    if best is None or best[0][1] > 60:
        return None
    return best[1]


def _follow(edge, signalised: dict[str, str], limit: int = 200) -> list | None:
    """From an edge leaving a junction, straight on through unsignalised nodes to the next signal."""
    path = [edge]
    while edge.getToNode().getID() not in signalised:
        edge = _straight_out(edge)
        if edge is None or edge in path or len(path) > limit:
            return None
        path.append(edge)
    return path


def _path_between(net, a: str, b: str, signalised: dict[str, str]) -> list | None:
    """Shortest edge path from node a to node b that passes no other signal (Dijkstra over connections)."""
    import heapq

    start = net.getNode(a)
    heap = [(e.getLength(), e.getID(), [e]) for e in start.getOutgoing()]
    heapq.heapify(heap)
    seen = set()
    while heap:
        cost, _, path = heapq.heappop(heap)
        edge = path[-1]
        node = edge.getToNode().getID()
        if node == b:
            return path
        if edge.getID() in seen or node in signalised or len(path) > 200:
            continue
        seen.add(edge.getID())
        for to_edge in edge.getOutgoing():
            if to_edge.getToNode().getID() == edge.getFromNode().getID():
                continue  # no U-turns
            heapq.heappush(heap, (cost + to_edge.getLength(), to_edge.getID(), [*path, to_edge]))
    return None


def _longest_chain(net, signalised: dict[str, str]) -> list[str]:
    best: tuple | None = None
    for node_id in sorted(signalised):
        node = net.getNode(node_id)
        for out in sorted(node.getOutgoing(), key=lambda e: e.getID()):
            chain, length, edge = [node_id], 0.0, out
            while True:
                path = _follow(edge, signalised)
                if path is None:
                    break
                nxt = path[-1].getToNode().getID()
                if nxt in chain:
                    break
                chain.append(nxt)
                length += sum(e.getLength() for e in path)
                edge = _straight_out(path[-1])
                if edge is None:
                    break
            if len(chain) < 2:
                continue
            two_way = all(_path_between(net, y, x, signalised) for x, y in itertools.pairwise(chain))
            key = (len(chain), two_way, length, tuple(reversed(chain)) < tuple(chain))
            if best is None or key > best[0]:
                best = (key, chain)
    if best is None:
        raise InvalidCorridor("the network has no two signalised junctions joined by a road")
    return best[1]


# --- import -----------------------------------------------------------------------------------


@dataclass
class _Arterial:
    forward_in: dict[str, object] = field(default_factory=dict)  # node -> incoming edge (forward)
    forward_out: dict[str, object] = field(default_factory=dict)
    reverse_in: dict[str, object] = field(default_factory=dict)
    reverse_out: dict[str, object] = field(default_factory=dict)
    positions: list[float] = field(default_factory=list)
    two_way: bool = True


def _arterial(net, nodes: list[str], signalised: dict[str, str]) -> _Arterial:
    art = _Arterial()
    fwd_paths = []
    for a, b in itertools.pairwise(nodes):
        path = _path_between(net, a, b, signalised)
        if path is None:
            raise InvalidCorridor.on("corridor", f"no road from {a} to {b} without passing another signal")
        fwd_paths.append(path)
    rev_paths = []
    for a, b in itertools.pairwise(nodes):
        rev_paths.append(_path_between(net, b, a, signalised))
    art.two_way = all(p is not None for p in rev_paths)
    for k, path in enumerate(fwd_paths):
        art.forward_out[nodes[k]] = path[0]
        art.forward_in[nodes[k + 1]] = path[-1]
    if art.two_way:
        for k, path in enumerate(rev_paths):
            art.reverse_out[nodes[k + 1]] = path[0]
            art.reverse_in[nodes[k]] = path[-1]
    # The ends: the approach that continues straight into the corridor, and straight out of it.
    first, last = nodes[0], nodes[-1]
    for edge in net.getNode(first).getIncoming():
        if _straight_out(edge) == art.forward_out[first]:
            art.forward_in[first] = edge
    if (edge := art.forward_in.get(last)) is not None and (out := _straight_out(edge)) is not None:
        art.forward_out[last] = out
    if art.two_way:
        for edge in net.getNode(last).getIncoming():
            if _straight_out(edge) == art.reverse_out[last]:
                art.reverse_in[last] = edge
        if (edge := art.reverse_in.get(first)) is not None and (out := _straight_out(edge)) is not None:
            art.reverse_out[first] = out
    # Stop line to stop line along the forward direction.
    art.positions = [0.0]
    for k, path in enumerate(fwd_paths):
        node = nodes[k]
        into = art.forward_in.get(node)
        gap = _dist(into.getShape()[-1], path[0].getShape()[0]) if into is not None else 0.0
        length = gap + sum(e.getLength() for e in path)
        length += sum(_dist(x.getShape()[-1], y.getShape()[0]) for x, y in itertools.pairwise(path))
        art.positions.append(art.positions[-1] + length)
    return art


def _junction_names(path: str | Path) -> dict[str, str]:
    names = {}
    for _, elem in ET.iterparse(str(path)):
        if elem.tag == "junction" and elem.get("name"):
            names[elem.get("id")] = elem.get("name")
        elem.clear()
    return names


def _program(tls, program_id: str | None):
    programs = tls.getPrograms()
    if not programs:
        raise InvalidCorridor.on("corridor", f"signal {tls.getID()} has no program")
    if program_id is not None and program_id in programs:
        return programs[program_id]
    return programs[min(programs)]


@dataclass
class _Stage:
    state: str
    green: float
    yellow: float = 0.0
    all_red: float = 0.0


def _is_all_red(prev: str, cur: str) -> bool:
    """cur only ends what prev was ending: greens that stay green, everything else red."""
    for p, c in zip(prev, cur, strict=True):
        if p in GREEN_CHARS:
            if c != p:
                return False
        elif c in GREEN_CHARS or c in YELLOW_CHARS:
            return False
    return True


def stages_of(phases: list[tuple[float, str]]) -> tuple[list[_Stage], float]:
    """Group SUMO phases into green stages with their yellow and all-red; also the time until the first
    stage's green starts (the program is rotated so that it begins with a green)."""
    starts = []
    for k, (_, state) in enumerate(phases):
        prev = phases[k - 1][1]
        if any(c in YELLOW_CHARS for c in state) or not any(c in GREEN_CHARS for c in state):
            continue
        if prev == state or (any(c in YELLOW_CHARS for c in prev) and _is_all_red(prev, state)):
            continue
        starts.append(k)
    if not starts:
        raise InvalidCorridor.on("corridor", "a signal program has no green phase")
    first = starts[0]
    lead = sum(d for d, _ in phases[:first])
    rotated = phases[first:] + phases[:first]
    stages: list[_Stage] = []
    prev_state = rotated[-1][1]
    for duration, state in rotated:
        if stages and any(c in YELLOW_CHARS for c in state):
            stages[-1].yellow += duration
        elif stages and (stages[-1].yellow > 0 or stages[-1].all_red > 0) and _is_all_red(prev_state, state):
            stages[-1].all_red += duration
        elif stages and state == stages[-1].state and stages[-1].yellow == 0 and stages[-1].all_red == 0:
            stages[-1].green += duration
        elif stages and not any(c in GREEN_CHARS for c in state):
            stages[-1].all_red += duration
        else:
            stages.append(_Stage(state=state, green=duration))
        prev_state = state
    return stages, lead


def import_corridor(net_path: str | Path, junctions: list[str] | None = None, *, corridor_id: str | None = None,
                    name: str | None = None, design_speed_kmh: float | None = None, program_id: str | None = None,
                    pedestrians: bool = True, detector_setback_m: float = DETECTOR_SETBACK_M,
                    cycle_min_s: float = 40.0, cycle_max_s: float = 150.0) -> Corridor:
    """A corridor from a SUMO network. `junctions`: node or signal ids in order; default: the longest chain."""
    net = read_net(net_path)
    signalised = _tls_nodes(net)
    if not signalised:
        raise InvalidCorridor.on("net", "the network has no traffic lights")
    tls_to_node = {}
    for node, tls in signalised.items():
        tls_to_node.setdefault(tls, node)
    if junctions:
        nodes = []
        for j in junctions:
            if j in signalised:
                nodes.append(j)
            elif j in tls_to_node:
                nodes.append(tls_to_node[j])
            else:
                raise InvalidCorridor.on("corridor", f"{j} is not a signalised junction of the network")
        if len(nodes) < 1:
            raise InvalidCorridor.on("corridor", "give at least one junction")
    else:
        nodes = _longest_chain(net, signalised)
    art = _arterial(net, nodes, signalised) if len(nodes) > 1 else _Arterial(positions=[0.0], two_way=False)
    while not junctions and len(nodes) > 2 and (nodes[0] not in art.forward_in or nodes[-1] not in art.forward_out):
        # a signalised dead end (a fringe node) carries no through traffic along the arterial: trim it
        nodes = nodes[1:] if nodes[0] not in art.forward_in else nodes[:-1]
        art = _arterial(net, nodes, signalised)
    heading = math.degrees(math.atan2(net.getNode(nodes[-1]).getCoord()[1] - net.getNode(nodes[0]).getCoord()[1],
                                      net.getNode(nodes[-1]).getCoord()[0] - net.getNode(nodes[0]).getCoord()[0]))
    fwd_label, rev_label = _bound(heading % 360), _bound((heading + 180) % 360)
    if design_speed_kmh is None:
        edges = list(art.forward_in.values())
        design_speed_kmh = round(sum(e.getSpeed() for e in edges) / len(edges) * 3.6) if edges else 50.0
    names = _junction_names(net_path)
    intersections, detectors = [], []
    for k, node_id in enumerate(nodes):
        tls = net.getTLS(signalised[node_id])
        inter, dets = _intersection(net, tls, node_id, art, fwd_label, rev_label, art.positions[k],
                                    names.get(node_id, ""), program_id, pedestrians, detector_setback_m)
        intersections.append(inter)
        detectors.extend(dets)
    stem = Path(net_path).name.split(".")[0]
    return Corridor(
        id=corridor_id or stem, name=name or stem, intersections=tuple(intersections), detectors=tuple(detectors),
        design_speed_kmh=float(design_speed_kmh), cycle_min_s=cycle_min_s, cycle_max_s=cycle_max_s,
        forward_label=fwd_label, reverse_label=rev_label,
    )


def _leg_widths(node) -> list[tuple[float, float]]:
    """(bearing away from the junction, total width) of each leg."""
    legs: list[list[float]] = []
    for edge in list(node.getIncoming()) + list(node.getOutgoing()):
        if edge.getFunction() == "internal":
            continue
        shape = edge.getShape()
        if edge.getToNode() == node:
            (x0, y0), (x1, y1) = shape[-1][:2], shape[-2][:2]
        else:
            (x0, y0), (x1, y1) = shape[0][:2], shape[1][:2]
        bearing = math.degrees(math.atan2(y1 - y0, x1 - x0)) % 360
        width = sum(lane.getWidth() for lane in edge.getLanes())
        for leg in legs:
            if _angle_between(leg[0], bearing) < 30:
                leg[1] += width
                break
        else:
            legs.append([bearing, width])
    return [(b, w) for b, w in legs]


def _intersection(net, tls, node_id, art: _Arterial, fwd_label, rev_label, position, name, program_id,
                  pedestrians, setback):
    node = net.getNode(node_id)
    program = _program(tls, program_id)
    phases = [(float(p.duration), p.state) for p in program.getPhases()]
    n_links = len(phases[0][1])
    fwd_in, rev_in = art.forward_in.get(node_id), art.reverse_in.get(node_id)
    fwd_out, rev_out = art.forward_out.get(node_id), art.reverse_out.get(node_id)

    # Links -> movements (approach + turn), split further if their signals differ.
    groups: dict[tuple, list] = defaultdict(list)
    link_info = {}
    for in_lane, out_lane, index in tls.getConnections():
        from_edge, to_edge = in_lane.getEdge(), out_lane.getEdge()
        conn = next((c for c in from_edge.getConnections(to_edge)
                     if c.getFromLane() == in_lane and c.getToLane() == out_lane), None)
        turn = _TURNS.get(conn.getDirection() if conn else "s", Turn.THROUGH)
        signature = "".join(state[index] for _, state in phases)
        groups[(from_edge.getID(), turn, signature)].append(index)
        link_info[index] = (in_lane, out_lane, from_edge, to_edge, turn)
    labels: dict[str, str] = {}
    for from_id in sorted({k[0] for k in groups}):
        edge = net.getEdge(from_id)
        if edge is fwd_in:
            labels[from_id] = fwd_label
        elif edge is rev_in:
            labels[from_id] = rev_label
        else:
            labels[from_id] = _bound(_heading(edge.getShape()))
    movements: list[Movement] = []
    by_link: dict[int, str] = {}
    used: dict[str, int] = defaultdict(int)
    move_edge: dict[str, object] = {}
    art_labels = {fwd_label: fwd_in, rev_label: rev_in}
    for (from_id, turn, _sig), indices in sorted(groups.items(), key=lambda kv: (min(kv[1]))):
        label = labels[from_id]
        if label in art_labels and art_labels[label] is not None and net.getEdge(from_id) is not art_labels[label]:
            label = f"{label}:{from_id}"  # a side road that happens to run the arterial's way
        base = f"{label}_{turn.value}"
        used[base] += 1
        mname = base if used[base] == 1 else f"{base}{used[base]}"
        in_lane, out_lane, from_edge, to_edge, _ = link_info[indices[0]]
        arterial = None
        if turn == Turn.THROUGH and from_edge is fwd_in and (fwd_out is None or to_edge is fwd_out):
            arterial = "forward"
        elif turn == Turn.THROUGH and from_edge is rev_in and (rev_out is None or to_edge is rev_out):
            arterial = "reverse"
        feeds = "forward" if to_edge is fwd_out else "reverse" if to_edge is rev_out else None
        crossing = max(_dist(link_info[i][0].getShape()[-1], link_info[i][1].getShape()[0]) for i in indices)
        movements.append(Movement(
            name=mname, approach=label, turn=turn, speed_kmh=round(in_lane.getSpeed() * 3.6, 1),
            crossing_m=round(crossing, 1), arterial=arterial, feeds=feeds, link_indices=tuple(sorted(indices)),
        ))
        move_edge[mname] = from_edge
        for i in indices:
            by_link[i] = mname
    # An arterial through split over several movements (differing signals): keep the flag on the first only.
    for direction in ("forward", "reverse"):
        flagged = [m for m in movements if m.arterial == direction]
        for extra in flagged[1:]:
            movements[movements.index(extra)] = extra.model_copy(update={"arterial": None})

    # Lanes and detectors.
    lanes, detectors = [], []
    lane_moves: dict[str, list[str]] = defaultdict(list)
    lane_obj = {}
    for index, (in_lane, *_rest) in sorted(link_info.items()):
        if by_link[index] not in lane_moves[in_lane.getID()]:
            lane_moves[in_lane.getID()].append(by_link[index])
        lane_obj[in_lane.getID()] = in_lane
    move_by_name = {m.name: m for m in movements}
    for lane_id in sorted(lane_moves):
        moves = tuple(lane_moves[lane_id])
        through = any(move_by_name[m].turn == Turn.THROUGH for m in moves)
        lanes.append(Lane(
            id=lane_id, approach=move_by_name[moves[0]].approach, movements=moves,
            saturation_flow_vph=SATURATION_THROUGH_VPH if through else SATURATION_TURN_VPH,
        ))
        length = lane_obj[lane_id].getLength()
        detectors.append(Detector(
            id=f"e1_{lane_id}", intersection_id=node_id, lane_id=lane_id,
            distance_to_stop_line_m=round(min(setback, 0.5 * length), 1),
        ))

    # Phases.
    stages, _lead = stages_of(phases)
    legs = _leg_widths(node) if pedestrians else []
    our_phases = []
    previous_green: set[str] = set()
    last_state = stages[-1].state
    previous_green = {by_link[i] for i, c in enumerate(last_state) if c in GREEN_CHARS and i in by_link}
    for s, stage in enumerate(stages):
        protected, permissive, on_red = [], [], []
        for m in movements:
            chars = {stage.state[i] for i in m.link_indices}
            if chars <= {"G"}:
                protected.append(m.name)
            elif chars <= set(GREEN_CHARS):
                permissive.append(m.name)
            elif chars == {STOP_THEN_GO}:
                on_red.append(m.name)
        crossing = 0.0
        for mname in protected:
            m = move_by_name[mname]
            if m.turn != Turn.THROUGH or mname in previous_green:
                continue
            h = _heading(move_edge[mname].getShape())
            for bearing, width in legs:
                if 50 <= _angle_between(bearing, h) <= 130:
                    crossing = max(crossing, width)
        our_phases.append(Phase(
            name=f"P{s + 1}", movements=tuple(protected), permissive=tuple(permissive), turn_on_red=tuple(on_red),
            min_green_s=VEHICLE_MIN_GREEN_S, ped_crossing_m=round(crossing, 1),
        ))
        previous_green = set(protected) | set(permissive)
    # A phase all of whose movements another phase also serves (a protected left that is permitted in
    # the through phase, a lagging through) may be left out when its own demand is light.
    for k, phase in enumerate(our_phases):
        elsewhere = {m for j, other in enumerate(our_phases) if j != k for m in other.served}
        if k > 0 and phase.served and set(phase.served) <= elsewhere:
            our_phases[k] = phase.model_copy(update={"omittable": True})
    return Intersection(
        id=node_id, name=name, position_m=round(position, 1), movements=tuple(movements), lanes=tuple(lanes),
        phases=tuple(our_phases), sumo_tls_id=tls.getID(), sumo_link_count=n_links,
    ), detectors


def timing_from_program(intersection: Intersection, phases: list[tuple[float, str]], offset_s: float
                        ) -> IntersectionTiming:
    """A SUMO program as Sunflower timing (stages matched to the intersection's phases in order)."""
    stages, lead = stages_of(phases)
    if len(stages) != len(intersection.phases):
        raise InvalidCorridor.on("program", f"{intersection.id}: program has {len(stages)} stages, "
                                            f"the corridor {len(intersection.phases)}")
    cycle = sum(d for d, _ in phases)
    return IntersectionTiming(
        intersection_id=intersection.id, cycle_s=cycle, offset_s=(offset_s + lead) % cycle,
        phases=tuple(
            PhaseTiming.of(intersection, p, s.green, s.yellow, s.all_red)
            for p, s in zip(intersection.phases, stages, strict=True)
        ),
    )


def imported_plan(corridor: Corridor, net_path: str | Path, *, program_id: str | None = None,
                  created_at: datetime = EPOCH) -> Plan:
    """The network's own signal programs as plan version 0."""
    from sunflower.traffic.bandwidth import plan_bandwidth

    net = read_net(net_path)
    timings = []
    for i in corridor.intersections:
        program = _program(net.getTLS(i.sumo_tls_id or i.id), program_id)
        timings.append(timing_from_program(
            i, [(float(p.duration), p.state) for p in program.getPhases()], float(program.getOffset() or 0)))
    plan = Plan(corridor_id=corridor.id, version=0, created_at=created_at, cycle_s=max(t.cycle_s for t in timings),
                timings=tuple(timings), source="imported")
    fwd, rev = plan_bandwidth(corridor, plan)
    return plan.model_copy(update={"bandwidth_forward_s": round(fwd, 2), "bandwidth_reverse_s": round(rev, 2)})


def detectors_xml(corridor: Corridor, net_path: str | Path, *, period_s: float = 60.0, output: str = "/dev/null") -> str:
    """An additional file with the corridor's induction loops (E1), aggregating every `period_s`."""
    net = read_net(net_path)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<additional>"]
    for d in corridor.detectors:
        lane = net.getLane(d.lane_id)
        pos = max(0.1, lane.getLength() - d.distance_to_stop_line_m)
        lines.append(f'    <inductionLoop id="{d.id}" lane="{d.lane_id}" pos="{pos:.2f}" period="{period_s:g}" '
                     f'file="{output}"/>')
    lines.append("</additional>")
    return "\n".join(lines) + "\n"
