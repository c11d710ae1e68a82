"""Offline Lambda packaging: the app zip and the Lambda layers, all reproducible.

`python -m sunflower.build` writes, at the repo root's `.build/` (where infra/serverless.yml's
`package.artifact` entries point):

- `app.zip`: the `sunflower` and `functions` packages;
- `deps-layer.zip`: `[project].dependencies` for Lambda python3.12 x86_64 (minus what the runtime has);
- one layer per entry of EXTRA_LAYERS, each a pyproject extra minus what the deps layer already has,
  with what its functions never import stripped: `ml-layer.zip` (`[ml]`, without onnxruntime's
  model-conversion tools: InferenceSession needs only `onnxruntime.capi` and numpy),
  `traffic-layer.zip` (`[traffic]`: numpy, scipy's optimizers, matplotlib for Agg/SVG) and
  `office-layer.zip` (`[office]`: SpiffWorkflow, chinesecalendar, jsonschema);
- `models-layer.zip`: the face models the manifest (sunflower/gate/models/manifest.json) enables,
  sha256-checked, and the manifest, under `models/face/` (so /opt/models/face on Lambda).

It prints one JSON line with their sizes and each function's unzipped total (FUNCTIONS), and fails
when a function would exceed Lambda's 250 MB limit. Layers are rebuilt only when their recipe
changes (a stamp beside each zip).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / ".build"
APP_ZIP = "app.zip"
DEPS_ZIP = "deps-layer.zip"
DEPS_STAMP = "deps-layer.stamp"
MODELS_ZIP = "models-layer.zip"
MODELS_STAMP = "models-layer.stamp"
# The face models: checksums and which are enabled in the manifest; the files where
# `python -m sunflower.gate.modelstore fetch` puts them ($SUNFLOWER_MODEL_DIR overrides, as there).
MODELS_MANIFEST = Path("sunflower", "gate", "models", "manifest.json")
MODELS_SOURCE = Path(".models", "face")
# Inside the models layer; Lambda unpacks layers into /opt, so the gate function's
# SUNFLOWER_MODEL_DIR is /opt/models/face.
MODELS_LAYER_DIR = "models/face"
# Lambda's limit for a function's code plus all its layers, unzipped: 262,144,000 bytes = 250 MiB.
LAMBDA_UNZIPPED_LIMIT_MB = 250
# Pins shared with the laptop venv (bin/setup), when the repo has them: the layer gets the same
# versions the tests ran against.
CONSTRAINTS = "constraints.txt"

APP_PACKAGES = ("sunflower", "functions")
# Lambda's python3.12 runtime ships these (and whatever only they need); a layer copy would only
# add ~30 MB and shadow the runtime's own, tested versions.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})
# Files no function reads at run time: type stubs, Cython declarations and sources, C/C++ sources
# and headers (numpy's include/, lxml's includes/), there for building against a package. Glob
# patterns relative to a layer's python/ folder, as every `strip` below.
BUILD_ONLY_FILES = (
    "**/*.pyi",
    "**/*.pyx",
    "**/*.pxd",
    "**/*.pxi",
    "**/*.c",
    "**/*.cpp",
    "**/*.h",
    "**/*.hpp",
)
# Parts of the ml layer's packages that InferenceSession never imports: onnxruntime's model
# conversion, optimisation and quantization tools (python -c "import onnxruntime" loads only
# onnxruntime/__init__.py and onnxruntime/capi).
ML_STRIP = ("onnxruntime/tools", "onnxruntime/transformers", "onnxruntime/quantization")
# Distributions onnxruntime declares but only those stripped tools import (ORT-format conversion,
# symbolic shape inference, calibration tables); left out of the layer (the import names are the values).
ML_TOOLS_ONLY = {
    "flatbuffers": "flatbuffers",
    "protobuf": "google.protobuf",
    "sympy": "sympy",
    "mpmath": "mpmath",
    "coloredlogs": "coloredlogs",
    "humanfriendly": "humanfriendly",
}
# The traffic function solves MILPs/LPs (scipy.optimize.milp/linprog: HiGHS) and draws time-space
# diagrams with matplotlib's Agg and SVG backends (a Figure, no pyplot). Left out of its layer:
# - scipy subpackages that nothing kept imports, not even lazily (the build checks it: scipy.stats
#   stays, as optimize's differential_evolution and shgo import it, and with it interpolate,
#   integrate and ndimage), and scipy.special's table-precomputing scripts;
# - pytest's conftest.py files (no tests/ folder is kept either: see _prune);
# - matplotlib's sample data (its examples' datasets) and toolbar images (GUI backends only);
# - fontTools' Cython accelerators: matplotlib uses fontTools only for glyph names when it draws
#   text as paths (SVG) and to subset fonts for PDF/PS, and every accelerated module is also
#   shipped as the pure-Python source it was compiled from, which fontTools falls back to.
TRAFFIC_SCIPY_UNUSED = (
    "cluster",
    "datasets",
    "differentiate",
    "fftpack",
    "io",
    "misc",
    "odr",
    "signal",
)
TRAFFIC_STRIP = (
    *BUILD_ONLY_FILES,
    *(f"scipy/{unused}" for unused in TRAFFIC_SCIPY_UNUSED),
    "scipy/special/_precompute",
    "**/conftest.py",
    "matplotlib/mpl-data/sample_data",
    "matplotlib/mpl-data/images",
    "fontTools/**/*.so",
    "share",  # fontTools' man page (pip's --target puts data files there)
)
# SpiffWorkflow parses BPMN with lxml.etree only; lxml's objectify, HTML tools and Schematron
# resources, and jsonschema's benchmark data, are never imported by the office code.
OFFICE_STRIP = (
    *BUILD_ONLY_FILES,
    "lxml/objectify*",
    "lxml/html",
    "lxml/isoschematron",
    "jsonschema/benchmarks",
)


@dataclass(frozen=True)
class ExtraLayer:
    """A Lambda layer with one pyproject extra, on top of the deps layer."""

    name: str  # the layer's key in infra/serverless.yml `layers:` and its [project.optional-dependencies] key
    strip: tuple[str, ...] = ()  # glob patterns under python/ that the functions never import
    # Distributions (name -> import name) that pip installs but only stripped parts import.
    left_out: Mapping[str, str] = field(default_factory=dict)
    # Imports of stripped modules that the check finds but the functions never run, as the check
    # words them ("<file> imports <module>"): each must say why where the layer is declared.
    unreached: tuple[str, ...] = ()

    @property
    def extra(self) -> str:
        return self.name

    @property
    def zip_name(self) -> str:
        return f"{self.name}-layer.zip"

    @property
    def stamp(self) -> str:
        """Beside the zip: the fingerprint of the recipe it was built from."""
        return f"{self.name}-layer.stamp"


# Every layer made of an extra; each is pinned to the deps layer's versions while resolving and
# leaves out what that layer (or the runtime) has. The build fails if a module kept in a layer
# imports a module that stripping removed or a left-out distribution.
EXTRA_LAYERS: dict[str, ExtraLayer] = {
    "ml": ExtraLayer(
        name="ml",
        strip=ML_STRIP,
        left_out=ML_TOOLS_ONLY,
        # onnxruntime.print_debug_info() reports CUDA devices with the transformers tools
        unreached=("onnxruntime/__init__.py imports onnxruntime.transformers",),
    ),
    "traffic": ExtraLayer(
        name="traffic",
        strip=TRAFFIC_STRIP,
    ),
    "office": ExtraLayer(
        name="office",
        strip=OFFICE_STRIP,
    ),
}
ML_ZIP = EXTRA_LAYERS["ml"].zip_name
# Each function's code and layers (zip names), as infra/serverless.yml gives them: the build fails
# when one is over Lambda's unzipped limit. The other functions share one of these sets
# (officeTimers: the api's; gateReconcile, auditSeal, registryImport: app + deps alone).
FUNCTIONS = {
    "gate": (APP_ZIP, DEPS_ZIP, ML_ZIP, MODELS_ZIP),  # gateCheck
    "traffic": (APP_ZIP, DEPS_ZIP, EXTRA_LAYERS["traffic"].zip_name),  # trafficBatch
    "api": (APP_ZIP, DEPS_ZIP, EXTRA_LAYERS["office"].zip_name),  # api, officeTimers
}
# Where and for what the layer runs: AWS Lambda python3.12 on x86_64 (Amazon Linux 2023, glibc 2.34).
# pip takes a --platform literally, so every manylinux tag that glibc runs is listed, newest first
# (numpy 2.3+ publishes manylinux_2_28 wheels only); manylinux2014 also admits 2010 and manylinux1.
LAMBDA_GLIBC_MINOR = 34
MANYLINUX_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(LAMBDA_GLIBC_MINOR, 16, -1)),
    "manylinux2014_x86_64",
)
PIP_TARGET = (
    *(arg for platform in MANYLINUX_PLATFORMS for arg in ("--platform", platform)),
    "--implementation", "cp",
    "--python-version", "3.12",
    "--only-binary=:all:",
)  # fmt: skip
# Environment markers (PEP 508) as they evaluate on that runtime.
LAMBDA_MARKER_ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}

# Zip entries get one timestamp and fixed modes so two builds of one tree are byte-identical.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXEC_MODE = 0o755
COMPRESS_LEVEL = 6

_SKIP_DIRS = {"__pycache__", "tests", ".venv", "node_modules"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


class BuildError(RuntimeError):
    """The artifacts cannot be built as asked; the message says why and what to do."""


def _normalize(name: str) -> str:
    """PEP 503 name: 'PyJWT', 'pyjwt', 'py_jwt' all compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"cannot read a distribution name from {requirement!r}")
    return _normalize(match.group(1))


def _depth(path: Path) -> int:
    return len(path.parts)


def _output_path(out: Path, default_name: str) -> Path:
    """`out` may be the build directory or the zip file itself."""
    out = Path(out)
    return out if out.suffix == ".zip" else out / default_name


def _is_packaged(relative: Path) -> bool:
    parts = relative.parts
    for part in parts:
        if part in _SKIP_DIRS or part.startswith(".") or part.endswith(".egg-info"):
            return False
    return relative.suffix not in _SKIP_SUFFIXES


def _write_zip(destination: Path, files: Iterable[tuple[str, Path]]) -> Path:
    """Write (arcname, source) pairs sorted by arcname, with fixed times and modes, atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    entries = sorted(files)
    names = [arcname for arcname, _ in entries]
    if len(names) != len(set(names)):
        raise ValueError(f"{destination.name}: duplicate entries")
    partial = destination.with_name(destination.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as zf:
        for arcname, source in entries:
            info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode
            mode = EXEC_MODE if os.access(source, os.X_OK) else FILE_MODE
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, source.read_bytes(), compresslevel=COMPRESS_LEVEL)
    os.replace(partial, destination)
    return destination


def build_app_zip(root: Path = ROOT, out: Path = BUILD_DIR) -> Path:
    """Zip the `sunflower/` and `functions/` packages (code and data files, no caches or tests)."""
    root = Path(root).resolve()
    if not (root / "sunflower").is_dir():
        raise FileNotFoundError(f"{root} has no sunflower/ package")
    files = []
    for package in APP_PACKAGES:
        base = root / package
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            relative = path.relative_to(root)
            if path.is_file() and _is_packaged(relative):
                files.append((relative.as_posix(), path))
    return _write_zip(_output_path(out, APP_ZIP), files)


def runtime_dependencies(root: Path = ROOT) -> list[str]:
    """`[project].dependencies` minus what the Lambda runtime provides, sorted."""
    dependencies = _project(root).get("dependencies", [])
    return sorted(dep for dep in dependencies if _requirement_name(dep) not in RUNTIME_PROVIDED)


def _project(root: Path) -> dict:
    with (Path(root) / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]


def extra_dependencies(root: Path = ROOT, extra: str = "ml") -> list[str]:
    """The requirements of `[project.optional-dependencies].<extra>` (self-references expanded), sorted."""
    project = _project(root)
    extras = project.get("optional-dependencies", {})
    if extra not in extras:
        raise BuildError(f"pyproject.toml has no [project.optional-dependencies] {extra!r}")
    own = _normalize(project["name"])
    found: set[str] = set()
    pending, seen = [extra], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in extras.get(name, []):
            if _requirement_name(requirement) != own:
                found.add(requirement)
                continue
            # "sunflower[local]": the requirements of that extra
            listed = requirement.partition("[")[2].partition("]")[0]
            pending.extend(re.findall(r"[A-Za-z0-9._-]+", listed))
    return sorted(found)


def _deps_fingerprint(dependencies: list[str], constraints: Path | None) -> str:
    # Pins, target platform and exclusions are part of the recipe: changing them must rebuild too.
    pins = hashlib.sha256(constraints.read_bytes()).hexdigest() if constraints else None
    recipe = {
        "dependencies": dependencies,
        "constraints": pins,
        "pip": list(PIP_TARGET),
        "runtime_provided": sorted(RUNTIME_PROVIDED),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _installed(site: Path) -> dict[str, tuple[Path, list[str]]]:
    """Normalized name -> (dist-info folder, its Requires-Dist lines) for what pip installed."""
    found = {}
    for dist_info in site.glob("*.dist-info"):
        metadata = HeaderParser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
        found[_normalize(metadata["Name"])] = (dist_info, metadata.get_all("Requires-Dist") or [])
    return found


def _needed(requirement: str, extras: frozenset[str]) -> tuple[str, frozenset[str]] | None:
    """(name, extras) a Requires-Dist line asks for on Lambda; None if its marker rules it out."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # no marker evaluation: keep every requirement pip happened to install
        return _requirement_name(requirement), frozenset()
    parsed = Requirement(requirement)
    if parsed.marker is not None:
        env = [{**LAMBDA_MARKER_ENV, "extra": extra} for extra in sorted(extras) or [""]]
        if not any(parsed.marker.evaluate(environment) for environment in env):
            return None
    return _normalize(parsed.name), frozenset(parsed.extras)


def _remove_distribution(site: Path, dist_info: Path) -> None:
    """Delete exactly the files a distribution's RECORD lists (namespace packages stay intact)."""
    site = site.resolve()
    for line in (dist_info / "RECORD").read_text(encoding="utf-8").splitlines():
        relative = line.rsplit(",", 2)[0].strip('"')
        if not relative:
            continue
        path = (site / relative).resolve()
        if path.is_relative_to(site) and path.is_file():
            path.unlink()
    shutil.rmtree(dist_info, ignore_errors=True)
    directories = sorted((p for p in site.rglob("*") if p.is_dir()), key=_depth, reverse=True)
    for directory in directories:
        if not any(directory.iterdir()):
            directory.rmdir()


def _prune(site: Path, wanted: list[str], provided: Iterable[str] = RUNTIME_PROVIDED) -> list[str]:
    """Remove `provided` distributions and anything only they needed; return the removed names.

    `provided`: normalized names available elsewhere at run time (the Lambda runtime, a layer
    below this one) or deliberately left out.
    """
    provided = frozenset(provided)
    installed = _installed(site)
    keep: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [_needed(dep, frozenset()) for dep in wanted]
    while pending:
        item = pending.pop()
        if item is None or item in seen or item[0] in provided or item[0] not in installed:
            continue
        seen.add(item)
        name, extras = item
        keep.add(name)
        pending.extend(_needed(req, extras) for req in installed[name][1])
    removed = sorted(set(installed) - keep)
    for name in removed:
        _remove_distribution(site, installed[name][0])
    # Console scripts are useless in Lambda and carry this machine's interpreter path.
    shutil.rmtree(site / "bin", ignore_errors=True)
    for junk in sorted(site.rglob("*"), key=_depth, reverse=True):
        if junk.is_dir() and junk.name in {"__pycache__", "tests"} and junk.parent != site:
            shutil.rmtree(junk)
        elif junk.is_file() and junk.suffix in _SKIP_SUFFIXES:
            junk.unlink()
    return removed


def build_deps_layer(root: Path = ROOT, out: Path = BUILD_DIR) -> Path:
    """Zip `python/` with the third-party packages for Lambda python3.12 x86_64.

    Skips pip when the stamp beside the zip matches the dependency list and the zip exists.
    """
    destination = _output_path(out, DEPS_ZIP)
    stamp = destination.with_name(DEPS_STAMP)
    dependencies = runtime_dependencies(root)
    constraints = Path(root) / CONSTRAINTS
    constraints = constraints.resolve() if constraints.is_file() else None
    fingerprint = _deps_fingerprint(dependencies, constraints)
    if destination.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return destination
    with tempfile.TemporaryDirectory(prefix="sunflower-deps-") as tmp:
        layer = Path(tmp)
        site = layer / "python"
        _pip_install(site, dependencies, [constraints] if constraints else [], "deps")
        _prune(site, dependencies)
        _write_zip(destination, _tree(layer))
    stamp.write_text(fingerprint + "\n")
    return destination


def _pip_install(site: Path, requirements: list[str], constraints: list[Path], layer: str) -> None:
    """pip install wheels for Lambda python3.12 x86_64 into `site` (nothing compiled, no scripts run)."""
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--no-compile", "--disable-pip-version-check", "--no-input",
        "--target", str(site), *PIP_TARGET,
        *(arg for path in constraints for arg in ("--constraint", str(path))), *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise RuntimeError(f"pip install for the {layer} layer failed ({result.returncode})")


def _tree(base: Path) -> list[tuple[str, Path]]:
    """(arcname, path) for every file under `base`, arcnames relative to it."""
    return [(path.relative_to(base).as_posix(), path) for path in base.rglob("*") if path.is_file()]


def layer_distributions(layer_zip: Path) -> dict[str, str]:
    """Normalized name -> version of every distribution in a python layer zip (from its dist-info)."""
    found = {}
    with zipfile.ZipFile(layer_zip) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if (
                len(parts) == 3
                and parts[0] == "python"
                and parts[1].endswith(".dist-info")
                and parts[2] == "METADATA"
            ):
                metadata = HeaderParser().parsestr(archive.read(name).decode("utf-8"))
                found[_normalize(metadata["Name"])] = metadata["Version"]
    return found


def _extra_fingerprint(
    layer: ExtraLayer, requirements: list[str], constraints: Path | None, below: dict[str, str]
) -> str:
    pins = hashlib.sha256(constraints.read_bytes()).hexdigest() if constraints else None
    recipe = {
        "extra": layer.extra,
        "requirements": requirements,
        "constraints": pins,
        "deps_layer": below,
        "pip": list(PIP_TARGET),
        "runtime_provided": sorted(RUNTIME_PROVIDED),
        "strip": list(layer.strip),
        "left_out": dict(layer.left_out),
        "unreached": list(layer.unreached),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


_EXTENSION = re.compile(r"^(?P<stem>[A-Za-z_][A-Za-z0-9_]*)\.(?:[A-Za-z0-9_-]+\.)?(?:so|pyd)$")


def _module_name(relative: Path) -> str | None:
    """The dotted module a file under python/ is (a .py or an extension module), else None."""
    parts = list(relative.parts)
    if parts[-1].endswith(".py"):
        stem = parts[-1][: -len(".py")]
    elif match := _EXTENSION.match(parts[-1]):
        stem = match["stem"]
    else:
        return None
    parts[-1] = stem
    if stem == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def _modules(site: Path) -> set[str]:
    return {
        name
        for path in site.rglob("*")
        if path.is_file() and (name := _module_name(path.relative_to(site)))
    }


_OPTIONAL_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type
    if kinds is None:
        return True
    names = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    return any(isinstance(n, ast.Name) and n.id in _OPTIONAL_IMPORT_ERRORS for n in names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _required_imports(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Absolute names a module imports, anywhere in it (functions too), except optional ones.

    Optional: inside `try:` with an `except ImportError` (or broader), or `if TYPE_CHECKING:`.
    `from a import b` yields "a" and "a.b" (b may be a submodule).
    """
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> Iterable[str]:
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for child in (*node.handlers, *node.orelse, *node.finalbody):
                yield from visit(child)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from visit(child)
            return
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source:
                yield source
                yield from (f"{source}.{alias.name}" for alias in node.names if alias.name != "*")
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(tree)


def _gone_imports(site: Path, gone: set[str]) -> list[str]:
    """Lines "<file> imports <module>": kept modules that require a module in `gone` (or under it)."""
    offenders = []
    for path in sorted(site.rglob("*.py")):
        relative = path.relative_to(site)
        module = _module_name(relative)
        if module is None:
            continue
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source, filename=str(relative))
        except SyntaxError:  # not Python 3 (a template, a py2 leftover): the plain text must do
            names = re.findall(r"^\s*(?:import|from)\s+([A-Za-z_][\w.]*)", source, re.MULTILINE)
        else:
            names = _required_imports(tree, module, path.name == "__init__.py")
        hits = set()
        for name in names:
            parts = name.split(".")
            hits.update(
                prefix
                for prefix in (".".join(parts[:n]) for n in range(1, len(parts) + 1))
                if prefix in gone
            )
        offenders.extend(f"{relative.as_posix()} imports {hit}" for hit in sorted(_outermost(hits)))
    return offenders


def _outermost(names: set[str]) -> set[str]:
    return {name for name in names if not any(name.startswith(other + ".") for other in names)}


def _strip(site: Path, layer: ExtraLayer) -> None:
    """Delete `layer.strip` from the installed tree; fail if anything kept needs what went.

    What went: every module whose files were deleted, and the left-out distributions' imports.
    """
    before = _modules(site)
    for pattern in layer.strip:
        for path in sorted(site.glob(pattern), key=_depth, reverse=True):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    for directory in sorted((p for p in site.rglob("*") if p.is_dir()), key=_depth, reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    gone = (before - _modules(site)) | set(layer.left_out.values())
    offenders = [line for line in _gone_imports(site, gone) if line not in layer.unreached]
    if offenders:
        raise BuildError(
            f"the {layer.name} layer strips modules or leaves out distributions (EXTRA_LAYERS[{layer.name!r}] "
            "in sunflower/build.py), but kept modules import them:\n  "
            + "\n  ".join(offenders)
            + "\nstrip those modules too or keep what they import"
        )


def _strip_ml(site: Path) -> None:
    _strip(site, EXTRA_LAYERS["ml"])


def build_extra_layer(
    name: str, root: Path = ROOT, out: Path = BUILD_DIR, *, deps_layer: Path | None = None
) -> Path:
    """Zip `python/` with an extra of EXTRA_LAYERS for Lambda python3.12 x86_64, on top of the deps layer.

    What the deps layer already has is pinned to the deps layer's versions and left out, as are
    the runtime-provided distributions and the layer's `left_out`; `strip` is deleted. Skips pip
    when the stamp beside the zip matches the recipe and the zip exists.
    """
    layer = EXTRA_LAYERS[name]
    destination = _output_path(out, layer.zip_name)
    stamp = destination.with_name(layer.stamp)
    deps_layer = Path(deps_layer) if deps_layer else destination.with_name(DEPS_ZIP)
    if not deps_layer.is_file():
        raise BuildError(f"the {name} layer is built on the deps layer: {deps_layer} is missing")
    below = layer_distributions(deps_layer)
    requirements = [
        req for req in extra_dependencies(root, layer.extra)
        if _requirement_name(req) not in below and _requirement_name(req) not in RUNTIME_PROVIDED
    ]  # fmt: skip
    constraints = Path(root) / CONSTRAINTS
    constraints = constraints.resolve() if constraints.is_file() else None
    fingerprint = _extra_fingerprint(layer, requirements, constraints, below)
    if destination.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return destination
    with tempfile.TemporaryDirectory(prefix=f"sunflower-{name}-") as tmp:
        tree = Path(tmp, "layer")
        site = tree / "python"
        # The deps layer's versions as constraints: a shared dependency resolves to the very version
        # the layer below provides (or pip says why it cannot), never silently to another.
        below_pins = Path(tmp, "deps-layer-pins.txt")
        below_pins.write_text(
            "".join(f"{dist}=={version}\n" for dist, version in sorted(below.items()))
        )
        _pip_install(
            site, requirements, [*([constraints] if constraints else []), below_pins], name
        )
        _prune(site, requirements, provided={*RUNTIME_PROVIDED, *below, *layer.left_out})
        _strip(site, layer)
        _write_zip(destination, _tree(tree))
    stamp.write_text(fingerprint + "\n")
    return destination


def build_ml_layer(
    root: Path = ROOT, out: Path = BUILD_DIR, *, deps_layer: Path | None = None
) -> Path:
    """The `[ml]` layer (numpy, onnxruntime, Pillow) for the gate function: build_extra_layer("ml")."""
    return build_extra_layer("ml", root, out, deps_layer=deps_layer)


def _enabled_models(manifest: dict) -> dict[str, str]:
    """File name -> sha256 of the models the gate loads (those not `enabled: false`)."""
    return {
        model["file"]: model["sha256"]
        for model in manifest["models"].values()
        if model.get("enabled", True)
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_models_layer(
    root: Path = ROOT, out: Path = BUILD_DIR, *, source: Path | None = None
) -> Path:
    """Zip the enabled face models and the manifest as `models/face/<file>`, checksums verified.

    `source` defaults to $SUNFLOWER_MODEL_DIR or <root>/.models/face (where
    `python -m sunflower.gate.modelstore fetch` installs them). Skipped when the stamp beside the zip
    matches the manifest (which names every file's sha256) and the zip exists.
    """
    root = Path(root).resolve()
    destination = _output_path(out, MODELS_ZIP)
    stamp = destination.with_name(MODELS_STAMP)
    manifest_path = root / MODELS_MANIFEST
    manifest_bytes = manifest_path.read_bytes()
    wanted = _enabled_models(json.loads(manifest_bytes))
    recipe = {
        "manifest": hashlib.sha256(manifest_bytes).hexdigest(),
        "dir": MODELS_LAYER_DIR,
        "files": wanted,
    }
    fingerprint = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    if destination.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return destination
    env_dir = os.environ.get("SUNFLOWER_MODEL_DIR")
    source = Path(source or env_dir or root / MODELS_SOURCE)
    problems = []
    for name, expected in sorted(wanted.items()):
        path = source / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif (actual := _sha256(path)) != expected:
            problems.append(f"{name}: sha256 {actual}, manifest {expected}")
    if problems:
        raise BuildError(
            f"face models in {source} do not match {MODELS_MANIFEST.as_posix()}:\n  "
            + "\n  ".join(problems)
            + "\nrun: python -m sunflower.gate.modelstore fetch"
        )
    files = [(f"{MODELS_LAYER_DIR}/{name}", source / name) for name in wanted]
    files.append((f"{MODELS_LAYER_DIR}/manifest.json", manifest_path))
    _write_zip(destination, files)
    stamp.write_text(fingerprint + "\n")
    return destination


def unzipped_size_mb(*zips: Path) -> float:
    """Total uncompressed size of the zips' entries, in MiB."""
    total = 0
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            total += sum(info.file_size for info in archive.infolist())
    return total / (1024 * 1024)


def _zip_mb(path: Path) -> float:
    return round(path.stat().st_size / (1024 * 1024), 2)


def check_function_size(function: str, total_mb: float, limit_mb: float | None = None) -> None:
    """Fail when a function (FUNCTIONS) with its layers would not fit Lambda's unzipped limit."""
    limit_mb = LAMBDA_UNZIPPED_LIMIT_MB if limit_mb is None else limit_mb
    if total_mb >= limit_mb:
        parts = " + ".join(_part_name(zip_name) for zip_name in FUNCTIONS[function])
        extras = [layer for layer in EXTRA_LAYERS.values() if layer.zip_name in FUNCTIONS[function]]
        fix = " or ".join(
            f"shrink the [{layer.extra}] extra or strip more from its layer "
            f"(EXTRA_LAYERS[{layer.name!r}] in sunflower/build.py)"
            for layer in extras
        )
        raise BuildError(
            f"the {function} function unzipped ({parts}) is {total_mb:.2f} MB; Lambda allows less "
            f"than {limit_mb} MB for a function and its layers. {fix[:1].upper() + fix[1:]}"
        )


def _part_name(zip_name: str) -> str:
    return zip_name.removesuffix(".zip").removesuffix("-layer")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve() if args else ROOT
    out = root / ".build"
    started = time.perf_counter()
    try:
        built = {APP_ZIP: build_app_zip(root, out), DEPS_ZIP: build_deps_layer(root, out)}
        for name, layer in EXTRA_LAYERS.items():
            built[layer.zip_name] = build_extra_layer(name, root, out, deps_layer=built[DEPS_ZIP])
        built[MODELS_ZIP] = build_models_layer(root, out)
    except BuildError as error:
        print(f"sunflower.build: {error}", file=sys.stderr)
        return 1
    report: dict[str, object] = {}
    for zip_name, path in built.items():
        key = _part_name(zip_name).replace("-", "_") + ("_layer" if zip_name != APP_ZIP else "")
        report[f"{key}_zip"] = str(path)
        report[f"{key}_unzipped_mb"] = round(unzipped_size_mb(path), 2)
        report[f"{key}_zip_mb"] = _zip_mb(path)
    totals = {
        function: unzipped_size_mb(*(built[zip_name] for zip_name in zips))
        for function, zips in FUNCTIONS.items()
    }
    for function, total in totals.items():
        report[f"{function}_function_unzipped_mb"] = round(total, 2)
    report["function_limit_mb"] = LAMBDA_UNZIPPED_LIMIT_MB
    report["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(report))
    failures = []
    for function, total in totals.items():
        try:
            check_function_size(function, total)
        except BuildError as error:
            failures.append(str(error))
    for failure in failures:
        print(f"sunflower.build: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
