"""Plan exports: controller JSON and a SUMO tlLogic additional file that parses back."""

import json
import xml.etree.ElementTree as ET

import pytest
from traffic_factories import PEAK, flows_for

from sunflower.traffic.export import plan_dict, plan_json, sumo_phases, sumo_tllogic_xml
from sunflower.traffic.retiming import retime


@pytest.fixture
def plan(corridor):
    return retime(corridor, flows_for(corridor), None)


def test_plan_json_has_per_intersection_cycle_offset_and_ordered_phases(corridor, plan):
    data = json.loads(plan_json(plan))
    assert data["version"] == plan.version and data["cycle_s"] == plan.cycle_s
    assert [i["id"] for i in data["intersections"]] == ["J1", "J2", "J3"]
    for item in data["intersections"]:
        assert set(item) == {"id", "cycle_s", "offset_s", "phases"}
        assert [p["name"] for p in item["phases"]] == ["P1", "P2", "P3"]
        for p in item["phases"]:
            assert {"green_s", "yellow_s", "all_red_s", "movements"} <= set(p)
        assert sum(p["green_s"] + p["yellow_s"] + p["all_red_s"] for p in item["phases"]) == item["cycle_s"]
    assert data["intersections"][0]["phases"][0]["movements"] == ["EB_T", "WB_T"]
    assert [[p["coordinated"] for p in item["phases"]] for item in data["intersections"]] == [[True, False, False]] * 3
    assert data["reasons"] and plan_dict(plan)["reasons"][0]["code"] == "flows"


def test_tllogic_parses_back_with_the_plan_durations_offsets_and_states(corridor, plan):
    root = ET.fromstring(sumo_tllogic_xml(corridor, plan))
    logics = root.findall("tlLogic")
    assert [t.get("id") for t in logics] == ["J1", "J2", "J3"]
    for logic in logics:
        timing = plan.timing(logic.get("id"))
        phases = logic.findall("phase")
        assert float(logic.get("offset")) == pytest.approx(timing.offset_s)
        assert logic.get("programID") == f"sunflower-v{plan.version}" and logic.get("type") == "static"
        assert sum(float(p.get("duration")) for p in phases) == pytest.approx(timing.cycle_s)
        assert all(len(p.get("state")) == 7 for p in phases)
    j1 = [(float(p.get("duration")), p.get("state")) for p in logics[0].findall("phase")]
    p1, p2, p3 = plan.timing("J1").phases
    # links: 0,1 EB_T  2,3 WB_T  4 EB_L  5 NB_T  6 SB_T
    assert j1[0] == (p1.green_s, "GGGGgrr")  # through protected, left permitted
    assert j1[1] == (p1.yellow_s, "yyyygrr")  # the left carries on into its own phase
    assert j1[2] == (p1.all_red_s, "rrrrgrr")
    assert j1[3] == (p2.green_s, "rrrrGrr")
    assert j1[4][1] == "rrrryrr" and j1[6] == (p3.green_s, "rrrrrGG")


def test_an_omitted_phase_is_left_out_of_the_program(corridor):
    plan = retime(corridor, flows_for(corridor, {**PEAK, "EB_2": 20.0}), None)
    i = corridor.intersections[0]
    states = [s for _, s in sumo_phases(i, plan.timing("J1"))]
    assert "rrrrGrr" not in states
    assert states[1] == "yyyyyrr"  # the permitted left ends with the through
