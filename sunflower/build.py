"""Offline Lambda packaging: the app zip and the third-party deps layer, both reproducible.

`python -m sunflower.build` writes `.build/app.zip` and `.build/deps-layer.zip` at the repo
root (where infra/serverless.yml's `package.artifact` entries point) and prints one JSON line
with their unzipped sizes.
"""

from __future__ import annotations

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
from collections.abc import Iterable
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / ".build"
APP_ZIP = "app.zip"
DEPS_ZIP = "deps-layer.zip"
DEPS_STAMP = "deps-layer.stamp"
# Pins shared with the laptop venv (bin/setup), when the repo has them: the layer gets the same
# versions the tests ran against.
CONSTRAINTS = "constraints.txt"

APP_PACKAGES = ("sunflower", "functions")
# Lambda's python3.12 runtime ships these (and whatever only they need); a layer copy would only
# add ~30 MB and shadow the runtime's own, tested versions.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})
# Where and for what the layer runs: AWS Lambda python3.12 on x86_64 (Amazon Linux 2023).
PIP_TARGET = (
    "--platform", "manylinux2014_x86_64",
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
    with (Path(root) / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    dependencies = project.get("dependencies", [])
    return sorted(dep for dep in dependencies if _requirement_name(dep) not in RUNTIME_PROVIDED)


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


def _prune(site: Path, wanted: list[str]) -> list[str]:
    """Remove runtime-provided distributions and anything only they needed; return their names."""
    installed = _installed(site)
    keep: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [_needed(dep, frozenset()) for dep in wanted]
    while pending:
        item = pending.pop()
        if item is None or item in seen or item[0] in RUNTIME_PROVIDED or item[0] not in installed:
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
        command = [
            sys.executable, "-m", "pip", "install",
            "--quiet", "--no-compile", "--disable-pip-version-check", "--no-input",
            "--target", str(site), *PIP_TARGET,
            *(["--constraint", str(constraints)] if constraints else []), *dependencies,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise RuntimeError(f"pip install for the deps layer failed ({result.returncode})")
        _prune(site, dependencies)
        files = [
            (path.relative_to(layer).as_posix(), path) for path in site.rglob("*") if path.is_file()
        ]
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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve() if args else ROOT
    out = root / ".build"
    started = time.perf_counter()
    app = build_app_zip(root, out)
    deps = build_deps_layer(root, out)
    report = {
        "app_zip": str(app),
        "deps_layer_zip": str(deps),
        "app_unzipped_mb": round(unzipped_size_mb(app), 2),
        "deps_layer_unzipped_mb": round(unzipped_size_mb(deps), 2),
        "api_package_unzipped_mb": round(unzipped_size_mb(app, deps), 2),
        "app_zip_mb": round(app.stat().st_size / (1024 * 1024), 2),
        "deps_layer_zip_mb": round(deps.stat().st_size / (1024 * 1024), 2),
        "seconds": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
