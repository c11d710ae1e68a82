"""Real models and real photos (fixtures `manifest`, `model_dir`, `photos`, `photo_bytes` in tests/conftest.py)."""

import pytest


@pytest.fixture(scope="session")
def pipeline(model_dir, manifest):
    from sunflower.gate.face import FacePipeline

    return FacePipeline.from_manifest(model_dir, manifest)
