"""Sensor batches: every kind of bad input is refused clearly, and the plan in force stays."""

from datetime import timedelta

import pytest
from traffic_factories import NOW, PEAK, batch_for

from sunflower.common.errors import InvalidState, ValidationFailed
from sunflower.traffic import engine
from sunflower.traffic.errors import (
    DuplicateBatch,
    FutureInterval,
    ImpossibleReading,
    MalformedBatch,
    OverlappingInterval,
    UnknownDetector,
    WrongCorridor,
)
from sunflower.traffic.flows import lane_key, parse_batch, rolling_flows
from sunflower.traffic.models import SensorReading

T0 = NOW - timedelta(minutes=30)


def _reading(batch, k=0, **changes) -> SensorReading:
    return batch.readings[k].model_copy(update=changes)


def _with(batch, *readings):
    return batch.model_copy(update={"readings": readings + batch.readings[len(readings):]})


@pytest.fixture
def state(corridor):
    """A corridor that has already taken one batch and runs a plan."""
    start = engine.CorridorState(corridor=corridor)
    result = engine.ingest(start, batch_for(corridor, "b1", T0), now=T0 + timedelta(minutes=1))
    assert result.plan is not None and result.state.plan == result.plan
    return result.state


def _refused(state, batch, error, now=T0 + timedelta(minutes=2)):
    with pytest.raises(error) as raised:
        engine.ingest(state, batch, now=now)
    assert raised.value.message
    return raised.value


def test_a_good_batch_updates_flows_and_may_bring_a_new_plan(state, corridor):
    result = engine.ingest(state, batch_for(corridor, "b2", T0 + timedelta(minutes=1)), now=T0 + timedelta(minutes=2))
    assert result.flows.lane_flows_vph[lane_key("J1", "EB_0")] == pytest.approx(600.0)
    assert result.state.seen_batch_ids[-1] == "b2"
    assert result.state.plan is not None


def test_unknown_detector(state, corridor):
    batch = batch_for(corridor, "b2", T0 + timedelta(minutes=1))
    bad = _with(batch, _reading(batch, detector_id="nowhere"))
    error = _refused(state, bad, UnknownDetector)
    assert isinstance(error, ValidationFailed) and error.code == "UNKNOWN_DETECTOR"
    assert error.problems[0].field == "readings[0].detector_id"


@pytest.mark.parametrize("changes, field", [
    ({"count": -1}, "count"),
    ({"count": 52}, "count"),  # 60 s at 3000 veh/h: 50, and one on the loop at each end
    ({"occupancy": 1.5}, "occupancy"),
    ({"mean_speed_kmh": -3.0}, "mean_speed_kmh"),
    ({"interval_s": 0.0}, "interval_s"),
])
def test_impossible_readings(state, corridor, changes, field):
    batch = batch_for(corridor, "b2", T0 + timedelta(minutes=1))
    error = _refused(state, _with(batch, _reading(batch, **changes)), ImpossibleReading)
    assert error.problems[0].field == f"readings[0].{field}"


def test_a_lane_can_carry_its_physical_maximum(state, corridor):
    batch = batch_for(corridor, "b2", T0 + timedelta(minutes=1))
    engine.ingest(state, _with(batch, _reading(batch, count=51)), now=T0 + timedelta(minutes=2))


def test_overlapping_intervals_in_one_batch(state, corridor):
    batch = batch_for(corridor, "b2", T0 + timedelta(minutes=1))
    twin = _reading(batch, 0, interval_start=batch.readings[0].interval_start + timedelta(seconds=30))
    error = _refused(state, batch.model_copy(update={"readings": (*batch.readings, twin)}), OverlappingInterval,
                     now=T0 + timedelta(minutes=3))
    assert "overlapping" in error.problems[0].message


def test_intervals_already_reported(state, corridor):
    _refused(state, batch_for(corridor, "b2", T0 + timedelta(seconds=30)), OverlappingInterval)


def test_a_late_batch_that_fills_a_gap_is_taken(state, corridor):
    later = engine.ingest(state, batch_for(corridor, "b3", T0 + timedelta(minutes=2)), now=T0 + timedelta(minutes=3))
    late = engine.ingest(later.state, batch_for(corridor, "b2", T0 + timedelta(minutes=1), per_lane={**PEAK, "EB_0": 1200.0}),
                         now=T0 + timedelta(minutes=4))
    assert late.flows.readings == later.flows.readings + len(corridor.detectors)
    # 600, 1200 and 600 veh/h over three minutes
    assert late.flows.lane_flows_vph[lane_key("J1", "EB_0")] == pytest.approx(800.0)
    assert late.state.last_interval_end == later.state.last_interval_end
    _refused(late.state, batch_for(corridor, "b2-again", T0 + timedelta(minutes=1)), OverlappingInterval,
             now=T0 + timedelta(minutes=4))


def test_a_late_reading_older_than_the_rolling_window_is_refused(state, corridor):
    now = T0 + timedelta(minutes=25)
    later = engine.ingest(state, batch_for(corridor, "b3", now - timedelta(minutes=1)), now=now)
    error = _refused(later.state, batch_for(corridor, "b2", T0 + timedelta(minutes=2)), OverlappingInterval, now=now)
    assert "rolling window" in error.problems[0].message


def test_future_intervals(state, corridor):
    _refused(state, batch_for(corridor, "b2", T0 + timedelta(minutes=5)), FutureInterval,
             now=T0 + timedelta(minutes=2))


def test_a_duplicate_batch(state, corridor):
    error = _refused(state, batch_for(corridor, "b1", T0 + timedelta(minutes=1)), DuplicateBatch)
    assert isinstance(error, InvalidState) and error.code == "DUPLICATE_BATCH"


def test_a_batch_for_another_corridor(state, corridor):
    batch = batch_for(corridor, "b2", T0 + timedelta(minutes=1)).model_copy(update={"corridor_id": "elsewhere"})
    _refused(state, batch, WrongCorridor)


def test_malformed_json_is_a_domain_error_naming_the_fields():
    with pytest.raises(MalformedBatch) as raised:
        parse_batch(b'{"batch_id": "x", "corridor_id": "c", "readings": [{"detector_id": "d", "count": "many"}]}')
    fields = {p.field for p in raised.value.problems}
    assert "readings.0.count" in fields and "readings.0.interval_start" in fields


def test_every_problem_of_a_batch_is_listed(state, corridor):
    batch = batch_for(corridor, "b2", T0 + timedelta(minutes=1))
    bad = _with(batch, _reading(batch, 0, count=-5), _reading(batch, 1, detector_id="ghost"))
    error = _refused(state, bad, ImpossibleReading)
    assert {p.field for p in error.problems} == {"readings[0].count", "readings[1].detector_id"}


def test_after_a_refused_batch_nothing_changed_and_the_plan_stays(state, corridor):
    before = state.model_copy(deep=True)
    bad = batch_for(corridor, "b2", T0 + timedelta(minutes=1))
    bad = _with(bad, _reading(bad, count=-1))
    with pytest.raises(ImpossibleReading):
        engine.ingest(state, bad, now=T0 + timedelta(minutes=2))
    assert state == before
    # and the same readings, corrected, are still welcome
    good = batch_for(corridor, "b2", T0 + timedelta(minutes=1))
    assert engine.ingest(state, good, now=T0 + timedelta(minutes=2)).state.plan is not None


def test_no_feasible_cycle_leaves_the_state_untouched(corridor):
    tight = corridor.model_copy(update={"cycle_min_s": 30.0, "cycle_max_s": 42.0})
    state = engine.CorridorState(corridor=tight)
    from sunflower.traffic.errors import NoFeasibleCycle

    with pytest.raises(NoFeasibleCycle):
        engine.ingest(state, batch_for(tight, "b1", T0), now=T0 + timedelta(minutes=1))
    assert state.readings == () and state.plan is None


def test_rolling_flows_are_hourly_rates_over_the_window(corridor):
    readings = batch_for(corridor, "b", T0, interval_s=300.0, per_lane={**PEAK, "EB_0": 720.0}).readings
    flows = rolling_flows(corridor, readings, window_end=T0 + timedelta(minutes=5), window_s=900)
    assert flows.lane_flows_vph[lane_key("J1", "EB_0")] == pytest.approx(720.0)
    assert flows.movement_flows(corridor)["J1"]["EB_T"] == pytest.approx(720.0 + 600.0)


def test_an_unchanged_demand_does_not_switch_plans(state, corridor):
    result = state
    plans = []
    for k in range(1, 5):
        out = engine.ingest(result, batch_for(corridor, f"b{k + 1}", T0 + timedelta(minutes=k)),
                            now=T0 + timedelta(minutes=k + 1))
        result = out.state
        plans.append(out.plan)
    assert plans[-1] is None
