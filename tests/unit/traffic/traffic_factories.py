"""Builders for the traffic tests: a small hand-built corridor (no SUMO), its flows and batches."""

from datetime import UTC, datetime, timedelta

from sunflower.traffic.flows import Flows, lane_key
from sunflower.traffic.models import (
    Corridor,
    Detector,
    Intersection,
    Lane,
    Movement,
    Phase,
    SensorBatch,
    SensorReading,
    Turn,
)

NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 08:00 in Harbin


def recent_minutes():
    """k -> an interval start on a whole minute in the recent past (k = 0 is 40 minutes ago), so every
    batch is in time for the corridor's rolling window and none overlaps."""
    from sunflower.common.clock import utc_now

    base = utc_now().replace(second=0, microsecond=0) - timedelta(minutes=40)
    return lambda k: base + timedelta(minutes=k)


def intersection(iid: str, position_m: float) -> Intersection:
    """Two-lane arterial each way with an eastbound left bay; one-lane cross street; three phases."""
    return Intersection(
        id=iid, name=f"Hanan 2nd Ave x {iid}", position_m=position_m,
        movements=(
            Movement(name="EB_T", approach="EB", turn=Turn.THROUGH, arterial="forward", feeds="forward",
                     crossing_m=15.0, link_indices=(0, 1)),
            Movement(name="WB_T", approach="WB", turn=Turn.THROUGH, arterial="reverse", feeds="reverse",
                     crossing_m=15.0, link_indices=(2, 3)),
            Movement(name="EB_L", approach="EB", turn=Turn.LEFT, crossing_m=15.0, link_indices=(4,)),
            Movement(name="NB_T", approach="NB", turn=Turn.THROUGH, speed_kmh=40.0, crossing_m=16.0,
                     link_indices=(5,)),
            Movement(name="SB_T", approach="SB", turn=Turn.THROUGH, speed_kmh=40.0, crossing_m=16.0,
                     link_indices=(6,)),
        ),
        lanes=(
            Lane(id="EB_0", approach="EB", movements=("EB_T",)),
            Lane(id="EB_1", approach="EB", movements=("EB_T",)),
            Lane(id="EB_2", approach="EB", movements=("EB_L",), saturation_flow_vph=1650),
            Lane(id="WB_0", approach="WB", movements=("WB_T",)),
            Lane(id="WB_1", approach="WB", movements=("WB_T",)),
            Lane(id="NB_0", approach="NB", movements=("NB_T",)),
            Lane(id="SB_0", approach="SB", movements=("SB_T",)),
        ),
        phases=(
            Phase(name="P1", movements=("EB_T", "WB_T"), permissive=("EB_L",), ped_crossing_m=7.0),
            Phase(name="P2", movements=("EB_L",), omittable=True),
            Phase(name="P3", movements=("NB_T", "SB_T"), ped_crossing_m=16.0),
        ),
        sumo_tls_id=iid, sumo_link_count=7,
    )


def make_corridor(positions=(0.0, 420.0, 1010.0), **overrides) -> Corridor:
    items = tuple(intersection(f"J{k + 1}", p) for k, p in enumerate(positions))
    detectors = tuple(
        Detector(id=f"d-{i.id}-{lane.id}", intersection_id=i.id, lane_id=lane.id) for i in items for lane in i.lanes
    )
    return Corridor(id="hanan2-test", name="Hanan 2nd Avenue (test)", intersections=items, detectors=detectors,
                    forward_label="EB", reverse_label="WB", **overrides)


PEAK = {"EB_0": 600.0, "EB_1": 600.0, "EB_2": 120.0, "WB_0": 250.0, "WB_1": 250.0, "NB_0": 150.0, "SB_0": 120.0}


def flows_for(corridor: Corridor, per_lane: dict[str, float] | None = None, *, end=NOW) -> Flows:
    per_lane = per_lane or PEAK
    return Flows(
        window_start=end - timedelta(minutes=15), window_end=end,
        lane_flows_vph={lane_key(i.id, lane.id): per_lane[lane.id] for i in corridor.intersections for lane in i.lanes},
        lane_occupancy={}, readings=len(corridor.detectors),
    )


def batch_for(corridor: Corridor, batch_id: str, start: datetime, *, interval_s: float = 60.0,
              per_lane: dict[str, float] | None = None, **overrides) -> SensorBatch:
    per_lane = per_lane or PEAK
    readings = tuple(
        SensorReading(
            detector_id=d.id, interval_start=start, interval_s=interval_s,
            count=round(per_lane[d.lane_id] * interval_s / 3600), occupancy=0.1, mean_speed_kmh=48.0,
        )
        for d in corridor.detectors
    )
    return SensorBatch(batch_id=batch_id, corridor_id=corridor.id, readings=readings, **overrides)
