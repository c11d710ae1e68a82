"""Traffic tests need numpy and scipy (the [sim] extra); SUMO-specific tests skip on their own."""

import pytest

pytest.importorskip("scipy", reason="traffic retiming needs the [sim] extra (numpy, scipy)")

from traffic_factories import make_corridor

from sunflower.traffic.models import Corridor


@pytest.fixture
def corridor() -> Corridor:
    return make_corridor()
