"""sunflower.build without pip or the network: the recipes, the models layer and the size gate."""

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from sunflower import build


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _models_root(tmp_path: Path) -> tuple[Path, Path]:
    """A repo with a manifest of three models (one disabled) and their files in .models/face."""
    root = tmp_path / "repo"
    source = root / ".models" / "face"
    source.mkdir(parents=True)
    blobs = {"detect.onnx": b"detector", "embed.onnx": b"embedder", "live.onnx": b"liveness"}
    for name, data in blobs.items():
        (source / name).write_bytes(data)
    manifest = {
        "models": {
            "detector": {"file": "detect.onnx", "sha256": _sha(blobs["detect.onnx"])},
            "embedder": {"file": "embed.onnx", "sha256": _sha(blobs["embed.onnx"])},
            "liveness": {"file": "live.onnx", "sha256": _sha(blobs["live.onnx"]), "enabled": False},
        }
    }
    manifest_path = root / build.MODELS_MANIFEST
    manifest_path.parent.mkdir(parents=True)
    manifest_path.write_text(json.dumps(manifest))
    return root, source


@pytest.fixture(autouse=True)
def _no_model_dir_override(monkeypatch):
    monkeypatch.delenv("SUNFLOWER_MODEL_DIR", raising=False)


def test_the_models_layer_puts_the_enabled_models_and_the_manifest_under_models_face(tmp_path):
    # given a manifest that disables the liveness model
    root, _ = _models_root(tmp_path)

    # when the models layer is built
    layer = build.build_models_layer(root, tmp_path / "out")

    # then Lambda finds the enabled models and the manifest at /opt/models/face, nothing else
    with zipfile.ZipFile(layer) as archive:
        assert sorted(archive.namelist()) == [
            "models/face/detect.onnx",
            "models/face/embed.onnx",
            "models/face/manifest.json",
        ]
        assert archive.read("models/face/embed.onnx") == b"embedder"


def test_the_models_layer_is_byte_for_byte_reproducible(tmp_path):
    root, _ = _models_root(tmp_path)
    first = build.build_models_layer(root, tmp_path / "one")
    second = build.build_models_layer(root, tmp_path / "two")
    assert first.read_bytes() == second.read_bytes()


def test_a_model_that_does_not_match_its_checksum_fails_the_build_and_names_the_fix(tmp_path):
    # given an altered embedder and a missing detector
    root, source = _models_root(tmp_path)
    (source / "embed.onnx").write_bytes(b"tampered")
    (source / "detect.onnx").unlink()

    # when / then
    with pytest.raises(build.BuildError) as failure:
        build.build_models_layer(root, tmp_path / "out")
    message = str(failure.value)
    assert "embed.onnx: sha256" in message and "detect.onnx: missing" in message
    assert "python -m sunflower.gate.modelstore fetch" in message
    assert not (tmp_path / "out" / build.MODELS_ZIP).exists()


def test_the_models_layer_is_rebuilt_only_when_the_manifest_changes(tmp_path):
    root, source = _models_root(tmp_path)
    out = tmp_path / "out"
    layer = build.build_models_layer(root, out)
    built = layer.stat().st_mtime_ns

    # the stamp matches: the verified zip stays (even though the source files have gone)
    for path in source.iterdir():
        path.unlink()
    assert build.build_models_layer(root, out).stat().st_mtime_ns == built

    # a new manifest: the build verifies again (and fails, the files being gone)
    manifest = root / build.MODELS_MANIFEST
    manifest.write_text(manifest.read_text().replace('"enabled": false', '"enabled": true'))
    with pytest.raises(build.BuildError):
        build.build_models_layer(root, out)


def test_the_ml_recipe_is_the_pyproject_extra_with_self_references_expanded(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        """
[project]
name = "sunflower"
dependencies = ["boto3>=1", "pydantic>=2"]
[project.optional-dependencies]
ml = ["numpy>=2.0", "onnxruntime>=1.17", "sunflower[imaging]"]
imaging = ["pillow>=10.3"]
"""
    )
    assert build.extra_dependencies(tmp_path, "ml") == ["numpy>=2.0", "onnxruntime>=1.17", "pillow>=10.3"]
    assert build.runtime_dependencies(tmp_path) == ["pydantic>=2"]
    with pytest.raises(build.BuildError):
        build.extra_dependencies(tmp_path, "video")


def _dist(site: Path, name: str, version: str, requires: list[str], files: dict[str, str]) -> None:
    """A minimal installed distribution: its files, METADATA and RECORD."""
    dist_info = site / f"{name}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    metadata = [f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
    (dist_info / "METADATA").write_text("\n".join(metadata) + "\n")
    record = []
    for relative, text in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        record.append(f"{relative},,")
    record.append(f"{dist_info.name}/METADATA,,")
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")


def test_the_ml_layer_leaves_out_what_the_deps_layer_has_and_what_only_onnxruntime_tools_need(tmp_path):
    # given what pip installed for the [ml] extra
    site = tmp_path / "python"
    _dist(
        site,
        "onnxruntime",
        "1.32.0",
        ["numpy>=1.21", "packaging", "protobuf", "flatbuffers"],
        {
            "onnxruntime/__init__.py": "from onnxruntime.capi import _pybind_state\n",
            "onnxruntime/capi/_pybind_state.py": "import os\n",
            "onnxruntime/tools/convert.py": "import flatbuffers\nfrom google.protobuf import message\n",
            "onnxruntime/quantization/quant.py": "import google.protobuf\n",
        },
    )
    _dist(site, "numpy", "2.4.6", [], {"numpy/__init__.py": "", "numpy/tests/test_x.py": ""})
    _dist(site, "packaging", "26.3", [], {"packaging/__init__.py": ""})
    _dist(site, "protobuf", "7.36.2", [], {"google/protobuf/__init__.py": ""})
    _dist(site, "flatbuffers", "25.12.19", [], {"flatbuffers/__init__.py": ""})
    wanted = ["numpy>=2.0", "onnxruntime>=1.17"]

    # when pruned on top of a deps layer that has packaging, and stripped
    removed = build._prune(site, wanted, provided={*build.RUNTIME_PROVIDED, "packaging", *build.ML_TOOLS_ONLY})
    build._strip_ml(site)

    # then only onnxruntime's runtime and numpy remain
    assert removed == ["flatbuffers", "packaging", "protobuf"]
    kept = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert [k for k in kept if ".dist-info/" not in k] == [
        "numpy/__init__.py",
        "onnxruntime/__init__.py",
        "onnxruntime/capi/_pybind_state.py",
    ]


def test_stripping_fails_when_a_kept_module_imports_a_left_out_distribution(tmp_path):
    site = tmp_path / "python"
    (site / "onnxruntime" / "capi").mkdir(parents=True)
    (site / "onnxruntime" / "capi" / "_pybind_state.py").write_text("import os\nfrom google.protobuf import json_format\n")
    with pytest.raises(build.BuildError, match=r"onnxruntime/capi/_pybind_state.py imports google.protobuf"):
        build._strip_ml(site)


def test_layer_distributions_reads_names_and_versions_from_a_layer_zip(tmp_path):
    layer = tmp_path / "deps-layer.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("python/PyJWT-2.15.1.dist-info/METADATA", "Name: PyJWT\nVersion: 2.15.1\n")
        archive.writestr("python/typing_extensions-4.16.0.dist-info/METADATA", "Name: typing_extensions\nVersion: 4.16.0\n")
        archive.writestr("python/jwt/__init__.py", "")
    assert build.layer_distributions(layer) == {"pyjwt": "2.15.1", "typing-extensions": "4.16.0"}


def test_lambda_manylinux_platforms_cover_glibc_2_17_to_2_34():
    assert build.MANYLINUX_PLATFORMS[0] == "manylinux_2_34_x86_64"
    assert "manylinux_2_28_x86_64" in build.MANYLINUX_PLATFORMS
    assert build.MANYLINUX_PLATFORMS[-1] == "manylinux2014_x86_64"


def _zip_of_size(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("python/blob", b"\0" * size)
    return path


def test_the_build_reports_every_size_and_fails_when_the_gate_function_would_not_fit(tmp_path, monkeypatch, capsys):
    # given builders that produce 1 MiB each, and a 3 MB limit
    mib = 1024 * 1024
    out = tmp_path / ".build"
    out.mkdir()
    for name, zip_name in (
        ("build_app_zip", build.APP_ZIP),
        ("build_deps_layer", build.DEPS_ZIP),
        ("build_ml_layer", build.ML_ZIP),
        ("build_models_layer", build.MODELS_ZIP),
    ):
        path = _zip_of_size(out / zip_name, mib)
        monkeypatch.setattr(build, name, lambda *args, _path=path, **kwargs: _path)
    monkeypatch.setattr(build, "LAMBDA_UNZIPPED_LIMIT_MB", 3)

    # when
    code = build.main([str(tmp_path)])

    # then one JSON line with every size, and a failure that says why
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["gate_function_unzipped_mb"] == 4.0
    for key in ("app", "deps_layer", "ml_layer", "models_layer"):
        assert report[f"{key}_unzipped_mb"] == 1.0
    assert code == 1
    assert "gate function unzipped" in captured.err and "less than 3 MB" in captured.err

    monkeypatch.setattr(build, "LAMBDA_UNZIPPED_LIMIT_MB", 250)
    assert build.main([str(tmp_path)]) == 0
