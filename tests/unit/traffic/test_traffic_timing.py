"""Timing formulas against hand calculations."""

import math

import pytest
from traffic_factories import intersection

from sunflower.traffic import timing


def test_ite_yellow_for_55_kmh_matches_the_hand_calculation():
    # t + v / (2a + 2Gg) = 1 + 15.278 / (2 * 3.05) = 3.505 s on the level
    assert timing.ite_yellow_s(55) == pytest.approx(1 + (55 / 3.6) / 6.1, abs=1e-9)
    assert timing.ite_yellow_s(55) == pytest.approx(3.505, abs=1e-3)


def test_ite_yellow_is_shorter_uphill_and_longer_downhill():
    assert timing.ite_yellow_s(55, grade=0.04) < timing.ite_yellow_s(55) < timing.ite_yellow_s(55, grade=-0.04)


def test_ite_all_red_is_width_plus_vehicle_over_speed():
    # (W + L) / v = (20 + 6.1) / 15.278 = 1.708 s
    assert timing.ite_all_red_s(55, 20.0) == pytest.approx(26.1 / (55 / 3.6))


def test_pedestrian_minimum_green_is_walk_plus_crossing_time_beyond_the_clearance():
    assert timing.pedestrian_min_green_s(18.0) == pytest.approx(7 + 18 / 1.2)
    assert timing.pedestrian_min_green_s(18.0, clearance_s=6.0) == pytest.approx(7 + 15 - 6)
    assert timing.pedestrian_min_green_s(6.0, clearance_s=6.0) == pytest.approx(7.0)
    assert timing.pedestrian_min_green_s(0.0) == 0.0


def test_webster_cycle_matches_the_hand_calculation_and_is_infinite_when_saturated():
    # (1.5 * 12 + 5) / (1 - 0.6) = 57.5 s
    assert timing.webster_cycle_s(12.0, 0.6) == pytest.approx(57.5)
    assert timing.webster_cycle_s(12.0, 1.0) == math.inf


def test_resolve_takes_ite_clearances_rounded_up_and_pedestrian_minimums():
    model = timing.resolve(intersection("J1", 0.0))
    p1, p2, p3 = model.phases
    assert (p1.yellow_s, p1.all_red_s) == (4.0, 2.0)  # 3.50 s and 1.38 s, rounded up to whole seconds
    assert (p3.yellow_s, p3.all_red_s) == (3.0, 2.0)  # 2.82 s -> the 3 s minimum; (16 + 6.1) / 11.1 = 1.99 s
    assert p3.min_green_s == math.ceil(7 + 16 / 1.2 - 5)  # pedestrians cross the arterial, partly in the clearance
    assert p2.min_green_s == 5.0
    assert model.lost_time_s == sum(p.yellow_s + p.all_red_s for p in model.phases)


def test_critical_ratio_sum_is_the_sum_of_each_phase_largest_lane_ratio():
    model = timing.resolve(intersection("J1", 0.0))
    ratios = timing.lane_ratios(model, {"EB_0": 540, "EB_1": 720, "EB_2": 165, "WB_0": 360, "WB_1": 180,
                                        "NB_0": 180, "SB_0": 270})
    y, per_phase = timing.critical_ratios(model, ratios)
    assert per_phase == pytest.approx((720 / 1800, 165 / 1650, 270 / 1800))
    assert y == pytest.approx(0.4 + 0.1 + 0.15)


def test_balanced_splits_are_proportional_to_critical_ratios_with_minimums_pinned():
    model = timing.resolve(intersection("J1", 0.0))  # L = 6 + 6 + 5 = 17 s
    ratios = timing.lane_ratios(model, {"EB_0": 720, "EB_1": 720, "EB_2": 330, "WB_0": 0, "WB_1": 0,
                                        "NB_0": 360, "SB_0": 0})
    split = timing.balanced_splits(model, ratios, 117.0)  # 100 s of green for y = 0.4, 0.2, 0.2
    assert split.greens_s == pytest.approx((50.0, 25.0, 25.0), abs=1e-6)
    assert split.max_degree_of_saturation == pytest.approx(0.4 * 117 / 50)
    short = timing.balanced_splits(model, {"EB_0": 0.4, "EB_2": 0.01, "NB_0": 0.01}, 90.0)
    assert short.greens_s[1] == pytest.approx(model.phases[1].min_green_s)
    assert short.greens_s[2] == pytest.approx(model.phases[2].min_green_s)
    assert sum(short.greens_s) == pytest.approx(90.0 - model.lost_time_s)


def test_coordinated_splits_give_the_spare_green_to_the_arterial_phase():
    model = timing.resolve(intersection("J1", 0.0))
    ratios = {"EB_0": 0.2, "EB_2": 0.05, "NB_0": 0.1}
    balanced = timing.balanced_splits(model, ratios, 90.0)
    coordinated = timing.coordinated_splits(model, ratios, 90.0, 0.8, [1.0, 0.0, 0.0], balanced)
    assert coordinated.greens_s[0] > balanced.greens_s[0]
    assert coordinated.max_degree_of_saturation <= 0.8 + 1e-9
    assert sum(coordinated.greens_s) == pytest.approx(sum(balanced.greens_s))


def test_round_greens_keeps_the_total_and_the_minimums():
    greens = timing.round_greens([30.4, 5.2, 20.4], 56.0, [5.0, 5.0, 14.0], 1.0)
    assert sum(greens) == 56.0
    assert all(g == int(g) for g in greens)
    assert greens[1] >= 5.0
    assert timing.round_greens([4.6, 40.4], 45.0, [5.0, 5.0], 1.0) == [5.0, 40.0]


def test_capacity_cycle_is_the_shortest_cycle_that_serves_the_demand():
    model = timing.resolve(intersection("J1", 0.0))
    c = timing.capacity_cycle_s(model, (0.4, 0.1, 0.15), 0.9, 40.0, 150.0)
    mins = [p.min_green_s for p in model.phases]
    need = sum(max(m, z * c / 0.9) for m, z in zip(mins, (0.4, 0.1, 0.15), strict=True))
    assert need == pytest.approx(c - model.lost_time_s, abs=1e-6)
    assert timing.capacity_cycle_s(model, (0.6, 0.2, 0.15), 0.9, 40.0, 150.0) == math.inf
