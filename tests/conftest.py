"""One embedded moto server per test session, emptied and rebuilt before each test that uses it."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing in the test session may reach real AWS, even by accident before the server starts.
os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_EC2_METADATA_DISABLED="true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SunflowerTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "sunflower")


@pytest.fixture(scope="session")
def local_cloud_session():
    from sunflower.local import cloud

    local = cloud.start()
    local.build()
    yield local
    local.stop()


@pytest.fixture
def local_cloud(local_cloud_session) -> Iterator:
    """A clean embedded cloud with every resource infra/serverless.yml declares."""
    from sunflower.container import services

    local_cloud_session.reset()
    services.cache_clear()
    yield local_cloud_session
    services.cache_clear()


# --- the real face models and photos (python -m sunflower.gate.modelstore fetch --photos) -------


def _missing_message(what: str) -> str:
    return f"{what} not installed: run `python -m sunflower.gate.modelstore fetch --photos`"


@pytest.fixture(scope="session")
def manifest() -> dict:
    from sunflower.gate import modelstore

    return modelstore.load_manifest()


@pytest.fixture(scope="session")
def model_dir(manifest) -> Path:
    from sunflower.gate import modelstore

    directory = modelstore.model_dir()
    if not directory.is_dir() or not any(directory.glob("*.onnx")):
        pytest.skip(_missing_message(f"face models in {directory}"))
    problems = modelstore.verify(directory, None, manifest)
    assert not problems, f"installed models do not match the manifest: {problems}"
    return directory


@pytest.fixture(scope="session")
def photos(manifest) -> dict[str, Path]:
    """File name -> path of every evaluation photo."""
    from sunflower.gate import modelstore

    directory = modelstore.photo_dir()
    found = {}
    for collection, source in manifest["evaluation_photos"].items():
        for name in source["files"]:
            path = directory / collection / name
            if not path.is_file():
                pytest.skip(_missing_message(f"evaluation photo {path}"))
            found[name] = path
    return found


@pytest.fixture(scope="session")
def photo_bytes(photos):
    def read(name: str) -> bytes:
        return photos[name].read_bytes()

    return read
