"""sunflower.build without pip or the network: the recipes, the models layer and the size gate."""

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import yaml

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


def test_the_build_reports_every_size_and_fails_when_a_function_would_not_fit(tmp_path, monkeypatch, capsys):
    # given builders that produce zips of known sizes (MiB), and a 3.5 MB limit
    mib = 1024 * 1024
    out = tmp_path / ".build"
    out.mkdir()
    sizes = {"app.zip": 1, "deps-layer.zip": 1, "ml-layer.zip": 1, "models-layer.zip": 1,
             "traffic-layer.zip": 2, "office-layer.zip": 0.5}  # fmt: skip
    paths = {name: _zip_of_size(out / name, int(size * mib)) for name, size in sizes.items()}
    monkeypatch.setattr(build, "build_app_zip", lambda *a, **k: paths["app.zip"])
    monkeypatch.setattr(build, "build_deps_layer", lambda *a, **k: paths["deps-layer.zip"])
    monkeypatch.setattr(build, "build_models_layer", lambda *a, **k: paths["models-layer.zip"])
    built = []

    def extra_layer(name, root, out, *, deps_layer):
        assert deps_layer == paths["deps-layer.zip"]  # each extra layer is built on the deps layer
        built.append(name)
        return paths[build.EXTRA_LAYERS[name].zip_name]

    monkeypatch.setattr(build, "build_extra_layer", extra_layer)
    monkeypatch.setattr(build, "LAMBDA_UNZIPPED_LIMIT_MB", 3.5)

    # when
    code = build.main([str(tmp_path)])

    # then one JSON line with every layer's size and every function's total
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert built == ["ml", "traffic", "office"]
    for key, size in (("app", 1), ("deps_layer", 1), ("ml_layer", 1), ("models_layer", 1),
                      ("traffic_layer", 2), ("office_layer", 0.5)):  # fmt: skip
        assert report[f"{key}_unzipped_mb"] == size
        assert report[f"{key}_zip"].endswith(".zip") and f"{key}_zip_mb" in report
    assert report["gate_function_unzipped_mb"] == 4.0
    assert report["traffic_function_unzipped_mb"] == 4.0
    assert report["api_function_unzipped_mb"] == 2.5
    assert report["function_limit_mb"] == 3.5
    # and a failure for each function over the limit that says what to shrink
    assert code == 1
    assert "gate function unzipped (app + deps + ml + models)" in captured.err
    assert "traffic function unzipped (app + deps + traffic)" in captured.err
    assert "EXTRA_LAYERS['traffic']" in captured.err and "less than 3.5 MB" in captured.err
    assert "api function" not in captured.err

    monkeypatch.setattr(build, "LAMBDA_UNZIPPED_LIMIT_MB", 250)
    assert build.main([str(tmp_path)]) == 0


def test_the_layer_recipes_are_the_pyproject_extras_and_sim_builds_on_traffic():
    assert build.extra_dependencies(build.ROOT, "traffic") == ["matplotlib>=3.8", "numpy>=1.26", "scipy>=1.11"]
    sim = build.extra_dependencies(build.ROOT, "sim")
    assert set(build.extra_dependencies(build.ROOT, "traffic")) <= set(sim)
    assert {build._requirement_name(r) for r in sim} >= {"eclipse-sumo", "sumolib", "traci"}
    assert {build._requirement_name(r) for r in build.extra_dependencies(build.ROOT, "office")} == {
        "spiffworkflow", "chinesecalendar", "jsonschema",
    }  # fmt: skip
    # every layer's requirements are pinned for the laptop and the layer alike
    pinned = {
        build._requirement_name(line)
        for line in (build.ROOT / build.CONSTRAINTS).read_text().splitlines()
        if line and not line.startswith("#")
    }
    for layer in build.EXTRA_LAYERS.values():
        assert layer.name == layer.extra and layer.zip_name == f"{layer.name}-layer.zip"
        assert {build._requirement_name(r) for r in build.extra_dependencies(build.ROOT, layer.extra)} <= pinned


def test_the_functions_the_build_measures_are_the_ones_serverless_yml_deploys():
    # given the layers and functions of infra/serverless.yml
    from sunflower.local import catalog

    raw = yaml.load(catalog.SERVERLESS_YML.read_text(), Loader=catalog._CfnLoader)
    artifacts = {
        f"{name[0].upper()}{name[1:]}LambdaLayer": Path(layer["package"]["artifact"]).name
        for name, layer in raw["layers"].items()
    }
    functions = catalog.load(stage="local").functions

    # then every layer zip comes from the build, and each measured function has those layers
    assert set(artifacts.values()) == {
        build.DEPS_ZIP, build.MODELS_ZIP, *(layer.zip_name for layer in build.EXTRA_LAYERS.values())
    }  # fmt: skip
    deploys = {name: (build.APP_ZIP, *(artifacts[layer] for layer in f.layers)) for name, f in functions.items()}
    assert build.FUNCTIONS == {
        "gate": deploys["gateCheck"],
        "traffic": deploys["trafficBatch"],
        "api": deploys["api"],
    }
    # and any other function's layers are a subset of a measured one
    for name, zips in deploys.items():
        assert any(set(zips) <= set(measured) for measured in build.FUNCTIONS.values()), name


def _layer(**overrides) -> build.ExtraLayer:
    return build.ExtraLayer(**{"name": "traffic", **overrides})


def _files(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())


def _write(site: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)


def test_stripping_deletes_what_the_patterns_match_and_keeps_the_rest(tmp_path):
    # given an installed tree with stubs, headers, an unused subpackage and an accelerated module
    site = tmp_path / "python"
    _write(site, {
        "numpy/__init__.py": "", "numpy/__init__.pyi": "", "numpy/_core/include/numpy/ndarraytypes.h": "",
        "scipy/__init__.py": "", "scipy/io/__init__.py": "", "scipy/io/matlab/_mio.py": "",
        "scipy/optimize/__init__.py": "from ._milp import milp\n", "scipy/optimize/_milp.py": "import numpy\n",
        "fontTools/misc/bezierTools.py": "", "fontTools/misc/bezierTools.cpython-312-x86_64-linux-gnu.so": "",
        "matplotlib/mpl-data/sample_data/goog.npz": "", "matplotlib/mpl-data/matplotlibrc": "",
    })  # fmt: skip
    layer = _layer(strip=(*build.BUILD_ONLY_FILES, "scipy/io", "fontTools/**/*.so", "matplotlib/mpl-data/sample_data"))

    # when
    build._strip(site, layer)

    # then (the pure-Python bezierTools stays, so nothing that imports it loses it)
    assert _files(site) == [
        "fontTools/misc/bezierTools.py",
        "matplotlib/mpl-data/matplotlibrc",
        "numpy/__init__.py",
        "scipy/__init__.py",
        "scipy/optimize/__init__.py",
        "scipy/optimize/_milp.py",
    ]
    assert not (site / "numpy" / "_core").exists() and not (site / "scipy" / "io").exists()


@pytest.mark.parametrize(
    "source",
    [
        "def qmc_init():\n    from scipy.stats import qmc\n",  # lazily, in a function
        "from ..stats import qmc\n",  # relatively
        "from scipy import stats\n",  # a submodule by name
        "import scipy.stats._qmc as q\n",
    ],
)
def test_stripping_fails_when_a_kept_module_imports_a_stripped_one_however_it_does(tmp_path, source):
    site = tmp_path / "python"
    _write(site, {"scipy/__init__.py": "", "scipy/stats/__init__.py": "", "scipy/stats/_qmc.py": "",
                  "scipy/optimize/__init__.py": "", "scipy/optimize/_de.py": source})  # fmt: skip
    with pytest.raises(build.BuildError, match=r"scipy/optimize/_de.py imports scipy.stats\b"):
        build._strip(site, _layer(strip=("scipy/stats",)))


def test_optional_and_declared_unreached_imports_of_stripped_modules_do_not_fail_the_build(tmp_path):
    site = tmp_path / "python"
    _write(site, {
        "scipy/__init__.py": "", "scipy/stats/__init__.py": "",
        "scipy/optimize/__init__.py": "",
        "scipy/optimize/_a.py": "try:\n    from scipy import stats\nexcept ImportError:\n    stats = None\n",
        "scipy/optimize/_b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import scipy.stats\n",
        "scipy/optimize/_c.py": "def debug():\n    import scipy.stats\n",
    })  # fmt: skip
    build._strip(site, _layer(strip=("scipy/stats",), unreached=("scipy/optimize/_c.py imports scipy.stats",)))
    assert "scipy/optimize/_c.py" in _files(site)


def _fake_pip(calls: list):
    """Instead of pip: install numpy (with a stub), scipy (with an unused subpackage) and packaging."""

    def install(site, requirements, constraints, layer):
        calls.append((list(requirements), [Path(c).read_text() for c in constraints]))
        _dist(site, "numpy", "2.4.6", [], {"numpy/__init__.py": "", "numpy/__init__.pyi": ""})
        _dist(site, "scipy", "1.17.1", ["numpy>=1.26"],
              {"scipy/__init__.py": "", "scipy/optimize/__init__.py": "", "scipy/io/__init__.py": ""})  # fmt: skip
        _dist(site, "matplotlib", "3.11.2", ["numpy>=1.23", "packaging>=20"], {"matplotlib/__init__.py": ""})
        _dist(site, "packaging", "26.3", [], {"packaging/__init__.py": ""})

    return install


def _repo_with_traffic_extra(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "sunflower"\ndependencies = ["packaging>=24"]\n'
        '[project.optional-dependencies]\ntraffic = ["numpy>=1.26", "scipy>=1.11", "matplotlib>=3.8", "packaging>=24"]\n'
    )
    deps = tmp_path / "deps-layer.zip"
    with zipfile.ZipFile(deps, "w") as archive:
        archive.writestr("python/packaging-26.3.dist-info/METADATA", "Name: packaging\nVersion: 26.3\n")
    return root, deps


def test_an_extra_layer_is_pinned_to_the_deps_layer_stripped_cached_and_reproducible(tmp_path, monkeypatch):
    # given a repo whose [traffic] extra shares packaging with the deps layer
    root, deps = _repo_with_traffic_extra(tmp_path)
    calls: list = []
    monkeypatch.setattr(build, "_pip_install", _fake_pip(calls))
    monkeypatch.setitem(build.EXTRA_LAYERS, "traffic", _layer(strip=("**/*.pyi", "scipy/io")))

    # when the layer is built
    layer = build.build_extra_layer("traffic", root, tmp_path / "one", deps_layer=deps)

    # then pip resolved against the deps layer's versions, and the zip has neither what that layer
    # has nor what was stripped
    [(requirements, constraints)] = calls
    assert requirements == ["matplotlib>=3.8", "numpy>=1.26", "scipy>=1.11"]
    assert constraints == ["packaging==26.3\n"]
    names = zipfile.ZipFile(layer).namelist()
    assert "python/numpy/__init__.py" in names and "python/scipy/optimize/__init__.py" in names
    assert not [n for n in names if n.startswith(("python/packaging", "python/scipy/io")) or n.endswith(".pyi")]
    assert (tmp_path / "one" / "traffic-layer.stamp").is_file()

    # the stamp matches: no pip, the same zip
    built = layer.stat().st_mtime_ns
    assert build.build_extra_layer("traffic", root, tmp_path / "one", deps_layer=deps).stat().st_mtime_ns == built
    assert len(calls) == 1

    # another build of the same recipe is byte for byte the same
    again = build.build_extra_layer("traffic", root, tmp_path / "two", deps_layer=deps)
    assert again.read_bytes() == layer.read_bytes()

    # a changed recipe (what is stripped) builds again
    monkeypatch.setitem(build.EXTRA_LAYERS, "traffic", _layer(strip=("**/*.pyi",)))
    rebuilt = build.build_extra_layer("traffic", root, tmp_path / "one", deps_layer=deps)
    assert "python/scipy/io/__init__.py" in zipfile.ZipFile(rebuilt).namelist()
    assert len(calls) == 3


def test_an_extra_layer_needs_the_deps_layer(tmp_path):
    root, _ = _repo_with_traffic_extra(tmp_path)
    with pytest.raises(build.BuildError, match="built on the deps layer"):
        build.build_extra_layer("traffic", root, tmp_path / "out", deps_layer=tmp_path / "missing.zip")
