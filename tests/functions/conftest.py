import json
from pathlib import Path

import pytest

from sunflower.local.lambda_context import LambdaContext

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def lambda_context():
    return LambdaContext.for_invocation("test", region="ap-east-1", timeout_s=30)


@pytest.fixture
def events():
    """Real-shaped Lambda events from tests/events/, by file name."""
    return load_event
