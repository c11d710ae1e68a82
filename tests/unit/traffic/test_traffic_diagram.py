"""The time-space diagram renders as PNG and SVG (matplotlib, the [sim] extra)."""

import pytest
from traffic_factories import flows_for

pytest.importorskip("matplotlib", reason="diagrams need the [sim] extra")

from sunflower.traffic.diagram import time_space_diagram
from sunflower.traffic.retiming import retime


def test_png_and_svg(corridor):
    plan = retime(corridor, flows_for(corridor), None)
    png = time_space_diagram(corridor, plan, fmt="png", dpi=40)
    svg = time_space_diagram(corridor, plan, fmt="svg")
    assert png.startswith(b"\x89PNG")
    assert b"<svg" in svg[:400] and b"EB band" in svg
