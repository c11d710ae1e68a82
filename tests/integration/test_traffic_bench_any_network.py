"""`sunflower bench traffic` on a SUMO network the project did not ship: netgenerate builds it, randomTrips
fills it, and the bench imports its corridor, runs every variant and prints one JSON line each."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sumo", reason="the SUMO bench needs the [sim] extra (eclipse-sumo)")
pytest.importorskip("scipy", reason="traffic retiming needs the [sim] extra (numpy, scipy)")

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"variant", "mean_time_loss_s", "mean_travel_time_s", "stops_per_vehicle", "arterial_stops_per_vehicle",
        "bandwidth_s"}


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> tuple[Path, Path]:
    """A five-signal avenue (250 m blocks, two lanes, 55 km/h) with side streets, signals by netconvert's guess."""
    import sumo

    home = Path(sumo.SUMO_HOME)
    work = tmp_path_factory.mktemp("grid")
    net, routes = work / "avenue.net.xml", work / "avenue.rou.xml"
    subprocess.run([str(home / "bin" / "netgenerate"), "--grid", "--grid.x-number", "5", "--grid.y-number", "1",
                    "--grid.x-length", "250", "--grid.attach-length", "150", "--default.lanenumber", "2",
                    "--default.speed", "15.28", "--default-junction-type", "traffic_light", "-o", str(net)],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, str(home / "tools" / "randomTrips.py"), "-n", str(net), "-e", "900", "-p", "1.5",
                    "--fringe-factor", "20", "--seed", "3", "-o", str(work / "trips.xml"), "-r", str(routes)],
                   check=True, capture_output=True, cwd=work)
    return net, routes


def test_the_bench_runs_every_variant_on_a_generated_network(network, tmp_path):
    net, routes = network
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "traffic.py"), "--net", str(net), "--routes", str(routes),
         "--seeds", "1", "--warmup-s", "120", "--batch-s", "120", "--on-batch", "pure", "--jobs", "2",
         "--work-dir", str(tmp_path)],
        check=True, capture_output=True, text=True, cwd=ROOT, timeout=600,
    ).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    rows = {row["variant"]: row for row in lines if "variant" in row}
    corridor = next(line for line in out.splitlines() if line.startswith("corridor "))

    assert corridor.split(":")[1].split()[0] == "5", corridor  # the avenue's five signals, in order
    assert set(rows) == {"static", "actuated", "sumo_coordinated", "sunflower"}
    for row in rows.values():
        assert set(row) == KEYS
        assert row["mean_travel_time_s"] > row["mean_time_loss_s"] >= 0
    assert rows["sunflower"]["bandwidth_s"] > 0  # Sunflower's plans reached the signals and made a green band
    assert "retime_ms_10" in lines[-1]


def _bench(net: Path, routes: Path, work: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "traffic.py"), "--net", str(net), "--routes", str(routes),
         "--seeds", "1", "--warmup-s", "120", "--on-batch", "pure", "--work-dir", str(work), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )


def _vehicles(out: str, variant: str) -> int:
    row = next(line for line in out.splitlines() if line.startswith(variant + " "))
    return int(row.split()[-2])


def test_scale_changes_the_demand_every_variant_sees(network, tmp_path):
    net, routes = network
    full = _bench(net, routes, tmp_path / "full", "--variants", "static,sumo_coordinated")
    half = _bench(net, routes, tmp_path / "half", "--variants", "static,sumo_coordinated", "--scale", "0.5")
    assert full.returncode == half.returncode == 0, half.stderr
    assert "demand x0.5" in half.stdout
    for variant in ("static", "sumo_coordinated"):
        assert 0.35 < _vehicles(half.stdout, variant) / _vehicles(full.stdout, variant) < 0.65
    # SUMO's tools timed the signals for the demand they were given, too
    assert (tmp_path / "half" / "sumo_cycle.add.xml").read_text() != (tmp_path / "full" / "sumo_cycle.add.xml").read_text()


def test_scale_must_be_positive(network, tmp_path):
    net, routes = network
    out = _bench(net, routes, tmp_path, "--scale", "0")
    assert out.returncode == 2
    assert "--scale: must be above 0, got 0" in out.stderr
