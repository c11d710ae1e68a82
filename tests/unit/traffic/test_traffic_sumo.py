"""The shipped Hanan 2nd Avenue scenario imported from its SUMO network (needs sumolib, the [sim] extra)."""

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sumolib = pytest.importorskip("sumolib", reason="SUMO import needs the [sim] extra")

from sunflower.traffic import sumo
from sunflower.traffic.export import sumo_phases

SCENARIO = Path(__file__).resolve().parents[3] / "sunflower" / "traffic" / "scenarios" / "hanan2"
NET = SCENARIO / "hanan2.net.xml"


@pytest.fixture(scope="module")
def hanan2():
    return sumo.import_corridor(NET)


def test_the_longest_signalised_chain_is_the_arterial(hanan2):
    assert [i.id for i in hanan2.intersections] == [f"J{k}" for k in range(1, 9)]
    assert (hanan2.forward_label, hanan2.reverse_label, hanan2.design_speed_kmh) == ("EB", "WB", 55.0)
    spacing = [b.position_m - a.position_m for a, b in zip(hanan2.intersections, hanan2.intersections[1:])]
    assert all(300 <= s <= 900 for s in spacing) and len({round(s, -1) for s in spacing}) == len(spacing)
    assert hanan2.intersections[0].name == "哈南第二大道 × 哈南第一路"


def test_links_become_movements_and_phases(hanan2):
    j1 = hanan2.intersection("J1")
    assert j1.arterial_movement("forward").name == "EB_T" and j1.arterial_movement("reverse").name == "WB_T"
    assert {m.name for m in j1.movements} >= {"EB_T", "EB_L", "EB_R", "WB_T", "NB_T", "SB_T"}
    p1, p2, p3 = j1.phases
    assert {"EB_T", "WB_T"} <= set(p1.movements) and {"EB_L", "WB_L"} <= set(p1.permissive)
    assert set(p2.movements) == {"EB_L", "WB_L"} and p2.omittable
    assert {"NB_T", "SB_T"} <= set(p3.movements) and p3.ped_crossing_m > p1.ped_crossing_m > 0
    # right turns on red: the side streets' while the avenue runs, the avenue's while the side streets do,
    # but not into a street a protected left is turning into
    assert set(p1.turn_on_red) == set(p2.turn_on_red) == {"NB_R", "SB_R"} and set(p3.turn_on_red) == {"EB_R", "WB_R"}
    # the T junction's lagging eastbound through
    j3 = hanan2.intersection("J3")
    assert "EB_T" in j3.phases[0].movements and "EB_T" in j3.phases[1].movements


def test_every_signalled_approach_lane_has_a_detector(hanan2):
    lanes = {(i.id, lane.id) for i in hanan2.intersections for lane in i.lanes}
    assert {(d.intersection_id, d.lane_id) for d in hanan2.detectors} == lanes
    root = ET.fromstring(sumo.detectors_xml(hanan2, NET, period_s=60))
    assert len(root.findall("inductionLoop")) == len(hanan2.detectors)


@pytest.fixture(scope="module")
def without_right_on_red(tmp_path_factory) -> Path:
    """The same avenue built with netconvert's plain traffic lights (no right turn on red)."""
    import sumo as eclipse_sumo

    work = tmp_path_factory.mktemp("plain")
    nodes = (SCENARIO / "hanan2.nod.xml").read_text(encoding="utf-8")
    (work / "plain.nod.xml").write_text(nodes.replace("traffic_light_right_on_red", "traffic_light"), encoding="utf-8")
    net = work / "plain.net.xml"
    subprocess.run([str(Path(eclipse_sumo.SUMO_HOME) / "bin" / "netconvert"), "-n", str(work / "plain.nod.xml"),
                    "-e", str(SCENARIO / "hanan2.edg.xml"), "-x", str(SCENARIO / "hanan2.con.xml"),
                    "--no-turnarounds", "true", "-o", str(net)], check=True, capture_output=True)
    return net


@pytest.mark.parametrize("which", ["shipped", "without_right_on_red"])
def test_the_network_program_round_trips_through_plan_v0(request, which):
    path = NET if which == "shipped" else request.getfixturevalue(which)
    corridor = sumo.import_corridor(path)
    plan = sumo.imported_plan(corridor, path)
    assert plan.version == 0 and plan.source == "imported" and plan.cycle_s == 90
    net = sumo.read_net(path)
    states = set()
    for i in corridor.intersections:
        program = list(net.getTLS(i.sumo_tls_id).getPrograms().values())[0]
        original = [(float(p.duration), p.state) for p in program.getPhases()]
        assert sumo_phases(i, plan.timing(i.id)) == original
        states |= {c for _, state in original for c in state}
    assert ("s" in states) == (which == "shipped")


def test_a_named_sub_corridor_and_a_bad_junction(hanan2):
    part = sumo.import_corridor(NET, ["J2", "J3", "J4"])
    assert [i.id for i in part.intersections] == ["J2", "J3", "J4"]
    assert part.intersections[1].position_m == pytest.approx(
        hanan2.intersection("J3").position_m - hanan2.intersection("J2").position_m, abs=1.0)
    from sunflower.traffic.errors import InvalidCorridor

    with pytest.raises(InvalidCorridor):
        sumo.import_corridor(NET, ["J2", "nowhere"])


def test_import_sumo_command(tmp_path):
    from click.testing import CliRunner

    from sunflower.cli import main

    out = tmp_path / "corridor.json"
    result = CliRunner().invoke(main, ["traffic", "import-sumo", str(NET), "--out", str(out),
                                       "--tllogic-out", str(tmp_path / "v0.add.xml")])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["id"] == "hanan2"
    assert json.loads(result.output.strip().splitlines()[-1])["intersections"][0] == "J1"
    assert ET.parse(tmp_path / "v0.add.xml").getroot().tag == "additional"
