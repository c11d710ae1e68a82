"""MAXBAND on toys whose optimum is known by hand, and the evaluation of given offsets."""

import pytest

from sunflower.traffic.bandwidth import BandProblem, Window, band_s, maxband, two_way_band

C = 60.0


def _check_offsets(problem: BandProblem, solution) -> None:
    """The offsets the MILP returns carry at least the bands it claims (evaluated independently)."""
    fwd = band_s(problem.cycle_s, problem.travel_s, problem.forward, solution.offsets_s, "forward")
    rev = band_s(problem.cycle_s, problem.travel_s, problem.reverse, solution.offsets_s, "reverse")
    assert fwd >= solution.forward_s - 1e-6
    assert rev >= solution.reverse_s - 1e-6


def test_one_way_band_is_the_narrowest_green_and_the_offsets_follow_the_travel_time():
    # Given three signals, greens 30, 20 and 25 s eastbound, 15 s and 40 s apart at the design speed
    problem = BandProblem(cycle_s=C, travel_s=(0.0, 15.0, 40.0),
                          forward=(Window(0, 30), Window(0, 20), Window(0, 25)), reverse=(None, None, None))
    # When only eastbound counts
    solution = maxband(problem)
    # Then the band is the narrowest green, and it rides through every signal
    assert solution.forward_s == pytest.approx(20.0)
    assert solution.reverse_s == 0.0
    _check_offsets(problem, solution)


def test_half_green_signals_half_a_cycle_apart_carry_full_bands_both_ways():
    # Given two signals with half-cycle greens both ways, 30 s (C/2) apart: the "alternate" system
    problem = BandProblem(cycle_s=C, travel_s=(0.0, 30.0), forward=(Window(0, 30), Window(0, 30)),
                          reverse=(Window(0, 30), Window(0, 30)))
    solution = maxband(problem)
    # Then both bands are the whole green: b + b̄ = 60 s
    assert (solution.forward_s, solution.reverse_s) == (pytest.approx(30.0), pytest.approx(30.0))
    assert two_way_band(problem) == pytest.approx((30.0, 30.0), abs=1e-4)
    _check_offsets(problem, solution)


def test_a_quarter_cycle_apart_the_two_bands_share_half_the_cycle():
    # 15 s apart (2t = C/2): whatever the offsets, eastbound plus westbound band is 30 s
    problem = BandProblem(cycle_s=C, travel_s=(0.0, 15.0), forward=(Window(0, 30), Window(0, 30)),
                          reverse=(Window(0, 30), Window(0, 30)), minor_share=True)
    solution = maxband(problem)
    assert solution.forward_s + solution.reverse_s == pytest.approx(30.0)
    assert two_way_band(problem) == pytest.approx((15.0, 15.0), abs=1e-4)
    _check_offsets(problem, solution)


def test_when_no_offset_serves_both_ways_well_the_peak_direction_alone_wins():
    # Given 20 s greens at 60 s with 15 s between the signals, the two bands can share only 10 s
    problem = BandProblem(cycle_s=C, travel_s=(0.0, 15.0), forward=(Window(0, 20), Window(0, 20)),
                          reverse=(Window(0, 20), Window(0, 20)), forward_weight=1.0, reverse_weight=0.5)
    # When the minor direction need not get its share (the default), one-way progression is worth more
    solution = maxband(problem)
    assert (solution.forward_s, solution.reverse_s) == (pytest.approx(20.0), pytest.approx(0.0))
    assert two_way_band(problem) == pytest.approx((20.0, 0.0))
    # When it must (Little's b̄ >= k b), the 10 s split 2:1 by the weights
    shared = BandProblem(**{**problem.__dict__, "minor_share": True})
    solution = maxband(shared)
    assert solution.forward_s + solution.reverse_s == pytest.approx(10.0)
    assert solution.reverse_s == pytest.approx(0.5 * solution.forward_s)
    assert two_way_band(shared) == pytest.approx((solution.forward_s, solution.reverse_s))
    _check_offsets(shared, solution)


def test_queue_clearance_delays_the_band_inside_the_green():
    problem = BandProblem(cycle_s=C, travel_s=(0.0, 20.0), forward=(Window(0, 30), Window(0, 30)),
                          reverse=(None, None), forward_queue_s=(0.0, 6.0))
    solution = maxband(problem)
    assert solution.forward_s == pytest.approx(24.0)


def test_band_evaluation_of_simultaneous_offsets():
    # Green 0-30 s at both; 10 s apart; both start green together: the band is 20 s each way
    windows = (Window(0, 30), Window(0, 30))
    assert band_s(C, (0.0, 10.0), windows, (0.0, 0.0), "forward") == pytest.approx(20.0)
    assert band_s(C, (0.0, 10.0), windows, (0.0, 0.0), "reverse") == pytest.approx(20.0)
    # Shifting the second by the travel time gives eastbound all 30 s and westbound 10 s
    assert band_s(C, (0.0, 10.0), windows, (0.0, 10.0), "forward") == pytest.approx(30.0)
    assert band_s(C, (0.0, 10.0), windows, (0.0, 10.0), "reverse") == pytest.approx(10.0)
