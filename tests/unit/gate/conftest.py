"""Real models and real photos, fetched and checksummed by `python -m sunflower.gate.modelstore fetch --photos`."""

from pathlib import Path

import pytest

from sunflower.gate import modelstore


def _missing_message(what: str) -> str:
    return f"{what} not installed: run `python -m sunflower.gate.modelstore fetch --photos`"


@pytest.fixture(scope="session")
def manifest() -> dict:
    return modelstore.load_manifest()


@pytest.fixture(scope="session")
def model_dir(manifest) -> Path:
    directory = modelstore.model_dir()
    if not directory.is_dir() or not any(directory.glob("*.onnx")):
        pytest.skip(_missing_message(f"face models in {directory}"))
    problems = modelstore.verify(directory, None, manifest)
    assert not problems, f"installed models do not match the manifest: {problems}"
    return directory


@pytest.fixture(scope="session")
def photos(manifest) -> dict[str, Path]:
    """File name -> path of every evaluation photo."""
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
def pipeline(model_dir, manifest):
    from sunflower.gate.face import FacePipeline

    return FacePipeline.from_manifest(model_dir, manifest)


@pytest.fixture(scope="session")
def photo_bytes(photos):
    def read(name: str) -> bytes:
        return photos[name].read_bytes()

    return read
