"""Face accuracy on real photos: genuine and impostor scores, FAR/FRR at the shipped threshold, rank-1.

Run: python bench/gate_accuracy.py [--no-augment]      (bench/gate.py imports it for the full figures)

The photos are the ones the manifest names (fetched by `python -m sunflower.gate.modelstore fetch
--photos`): five people, one of them (Obama) in three distinct photos. That is enough to show
the pipeline separating real faces, far too little to certify a false-accept rate: zero false
accepts among ~2,000 impostor pairs bounds the 1:1 FAR only to about 1.5e-3 (95%, rule of three).

Pairs are built between *samples*: each photo, and (unless --no-augment) nine variations of it a
gate camera produces - mirror, dark, bright, +-10 degree roll, JPEG quality 30, sensor noise, a
slightly soft focus, a face of ~80 px. A genuine pair is the same person in two samples from
different source photos (crops and format conversions of one photo count as one source); same-
photo pairs are reported apart, as robustness, because they flatter. An impostor pair is any two
samples of different people.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sunflower.gate import modelstore
from sunflower.gate.face import FaceError, FacePipeline, Gallery, decide
from sunflower.gate.face.imaging import resize_area, resize_bilinear, warp_affine


@dataclass(frozen=True)
class Photo:
    name: str
    person: str | None
    source_photo: str
    data: bytes


@dataclass(frozen=True)
class Sample:
    name: str  # photo name + variation
    person: str
    source_photo: str
    embedding: np.ndarray


@dataclass
class AccuracyReport:
    threshold: float
    margin: float
    samples: list[Sample]
    refused: dict[str, str]  # sample name -> reason code
    genuine: np.ndarray  # cross-photo genuine scores
    genuine_same_photo: np.ndarray
    impostor: np.ndarray
    rank1_hits: int = 0
    rank1_probes: int = 0
    strangers_rejected: int = 0
    strangers: int = 0
    false_accepts_1n: int = 0
    accepts_correct_1n: int = 0
    distractors: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def far(self) -> float:
        return float((self.impostor >= self.threshold).mean()) if self.impostor.size else float("nan")

    @property
    def frr(self) -> float:
        return float((self.genuine < self.threshold).mean()) if self.genuine.size else float("nan")

    @property
    def rank1_rate(self) -> float:
        return self.rank1_hits / self.rank1_probes if self.rank1_probes else float("nan")


def load_photos(manifest: dict | None = None, photo_dir: Path | None = None) -> list[Photo]:
    manifest = manifest or modelstore.load_manifest()
    photo_dir = Path(photo_dir or modelstore.photo_dir())
    photos = []
    for collection, source in manifest["evaluation_photos"].items():
        for name, spec in source["files"].items():
            path = photo_dir / collection / name
            if not path.is_file():
                raise FileNotFoundError(f"{path} missing: run python -m sunflower.gate.modelstore fetch --photos")
            photos.append(Photo(name, spec.get("person"), spec.get("source_photo", name), path.read_bytes()))
    return photos


def _jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation `sigma` pixels (Pillow's)."""
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def _rotation(center: tuple[float, float], degrees: float) -> np.ndarray:
    """2x3 matrix turning the picture `degrees` counter-clockwise about `center` (pixel coordinates)."""
    a = np.radians(degrees)
    cos, sin = np.cos(a), np.sin(a)
    cx, cy = center
    return np.array([[cos, sin, (1 - cos) * cx - sin * cy], [-sin, cos, sin * cx + (1 - cos) * cy]])


def _perspective(image: np.ndarray, corners_to: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` (H x W or H x W x 3 uint8) drawn with its corners at `corners_to` (top-left, top-right,
    bottom-right, bottom-left) on a black canvas of `size` (w, h), bilinear."""
    h, w = image.shape[:2]
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    # Pillow wants the map from output to input: (a x + b y + c, d x + e y + f) / (g x + h y + 1).
    rows, rhs = [], []
    for (x, y), (u, v) in zip(np.asarray(corners_to, np.float64), source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    coeffs = np.linalg.solve(np.array(rows), np.array(rhs))
    warped = Image.fromarray(image).transform(size, Image.Transform.PERSPECTIVE, tuple(coeffs),
                                              resample=Image.Resampling.BILINEAR)
    return np.asarray(warped)


def variations(rgb: np.ndarray, face_px: float, rng: np.random.Generator) -> dict[str, bytes]:
    """Nine camera-like variations of one photo, as JPEG bytes (the pipeline decodes them)."""
    h, w = rgb.shape[:2]
    out: dict[str, np.ndarray | bytes] = {}
    out["mirror"] = np.ascontiguousarray(rgb[:, ::-1])
    lut_dark = (255 * (np.arange(256) / 255) ** 1.8).astype(np.uint8)
    lut_bright = (255 * (np.arange(256) / 255) ** 0.6).astype(np.uint8)
    out["dark"] = lut_dark[rgb]
    out["bright"] = lut_bright[rgb]
    for angle in (10, -10):
        out[f"roll{angle:+d}"] = warp_affine(rgb, _rotation((w / 2, h / 2), angle), (w, h))  # black corners
    out["noise"] = np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
    out["soft"] = _blur(rgb, max(face_px / 112, 0.5))
    scale = 80 / face_px
    if scale < 1:
        out["face80px"] = resize_area(rgb, (max(1, round(w * scale)), max(1, round(h * scale))))
    encoded = {name: _jpeg(img) for name, img in out.items()}
    encoded["jpeg30"] = _jpeg(rgb, quality=30)
    return encoded


def collect_samples(pipeline: FacePipeline, photos: list[Photo], *, augment: bool = True,
                    seed: int = 0) -> tuple[list[Sample], dict[str, str]]:
    rng = np.random.default_rng(seed)
    samples: list[Sample] = []
    refused: dict[str, str] = {}
    for photo in photos:
        if photo.person is None:
            continue
        try:
            analysis = pipeline.analyse(photo.data)
        except FaceError as exc:
            refused[photo.name] = exc.code.value
            continue
        samples.append(Sample(photo.name, photo.person, photo.source_photo, analysis.embedding))
        if not augment:
            continue
        rgb = np.asarray(Image.open(io.BytesIO(photo.data)).convert("RGB"))
        for variant, data in variations(rgb, analysis.quality.face_px, rng).items():
            name = f"{photo.name}~{variant}"
            try:
                samples.append(Sample(name, photo.person, photo.source_photo, pipeline.analyse(data).embedding))
            except FaceError as exc:
                refused[name] = exc.code.value
    return samples, refused


def pair_scores(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cross-photo genuine, same-photo genuine, impostor) cosine scores over all sample pairs."""
    if not samples:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    matrix = np.stack([s.embedding for s in samples])
    scores = matrix @ matrix.T
    person = np.array([s.person for s in samples])
    source = np.array([s.source_photo for s in samples])
    upper = np.triu(np.ones_like(scores, dtype=bool), k=1)
    same_person = person[:, None] == person[None, :]
    same_source = source[:, None] == source[None, :]
    return (scores[upper & same_person & ~same_source], scores[upper & same_person & same_source],
            scores[upper & ~same_person])


def identification(samples: list[Sample], threshold: float, margin: float, distractors: np.ndarray,
                   report: AccuracyReport) -> None:
    """Leave-one-photo-out 1:N: for each source photo, the gallery holds every *other* photo's samples
    (plus the synthetic distractors). A probe whose person is still in the gallery counts for rank-1
    and should be accepted as that person; one whose person is not (their only photo is out) is a
    stranger and must be rejected."""
    sources = sorted({s.source_photo for s in samples})
    ids = [f"distractor-{i}" for i in range(len(distractors))]
    for held_out in sources:
        enrolled = [s for s in samples if s.source_photo != held_out]
        gallery = Gallery(np.concatenate([distractors, np.stack([s.embedding for s in enrolled])]) if enrolled
                          else distractors, ids + [s.person for s in enrolled])
        known = {s.person for s in enrolled}
        for probe in (s for s in samples if s.source_photo == held_out):
            match = gallery.search(probe.embedding)
            decision = decide(probe.embedding, gallery, threshold, margin)
            if probe.person in known:
                report.rank1_probes += 1
                report.rank1_hits += int(match.person_id == probe.person)
                report.accepts_correct_1n += int(decision.accepted and decision.person_id == probe.person)
            else:
                report.strangers += 1
                report.strangers_rejected += int(not decision.accepted)
            if decision.accepted and decision.person_id != probe.person:
                report.false_accepts_1n += 1


def evaluate(pipeline: FacePipeline, photos: list[Photo] | None = None, *, augment: bool = True,
             threshold: float | None = None, margin: float | None = None, distractors: int = 10_000,
             seed: int = 0) -> AccuracyReport:
    photos = photos if photos is not None else load_photos(pipeline.manifest)
    threshold = pipeline.threshold if threshold is None else threshold
    margin = pipeline.margin if margin is None else margin
    samples, refused = collect_samples(pipeline, photos, augment=augment, seed=seed)
    genuine, same_photo, impostor = pair_scores(samples)
    report = AccuracyReport(threshold, margin, samples, refused, genuine, same_photo, impostor,
                            distractors=distractors)
    rng = np.random.default_rng(seed + 1)
    random = rng.standard_normal((distractors, pipeline.embedding_size)).astype(np.float32)
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    identification(samples, threshold, margin, random, report)
    return report


def suggest_threshold(genuine: np.ndarray, impostor: np.ndarray, step: float = 0.05) -> float:
    """Midway between the highest impostor and the lowest cross-photo genuine score, on a 0.05 grid,
    and always strictly above every impostor score (zero false accepts on the data)."""
    top, bottom = float(impostor.max()), float(genuine.min())
    value = round(((top + bottom) / 2) / step) * step
    while value <= top:
        value += step
    return round(value, 4)


def _spread(scores: np.ndarray) -> dict[str, float]:
    if not scores.size:
        return {"n": 0}
    return {"n": int(scores.size), "min": float(scores.min()), "p01": float(np.percentile(scores, 1)),
            "median": float(np.median(scores)), "p99": float(np.percentile(scores, 99)),
            "max": float(scores.max()), "mean": float(scores.mean()), "std": float(scores.std())}


def simulated_attacks(rgb: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Crude stand-ins for presentation attacks, made from a real photo. They are simulations:
    a real attack (a print, a phone screen held to the camera) must be tested on the device."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    # a screen: coarse pixels, moire, raised black level
    small = resize_area(rgb, (max(w // 3, 1), max(h // 3, 1)))
    sh, sw = small.shape[:2]  # blown up again by pixel replication, each screen pixel ~3x3
    rows = np.minimum(np.arange(h) * sh // h, sh - 1)
    cols = np.minimum(np.arange(w) * sw // w, sw - 1)
    coarse = small[rows][:, cols].astype(np.float32)
    moire = (0.85 + 0.15 * np.sin(xx * 0.9 + yy * 0.35))[..., None]
    screen = np.clip(coarse * moire * 1.1 + 15, 0, 255).astype(np.uint8)
    # a print with a white border, held at an angle in a room
    room = (np.full((h * 2, w * 2, 3), (90, 80, 70)) + rng.integers(0, 20, (h * 2, w * 2, 3))).astype(np.uint8)
    printed = np.pad(rgb, ((20, 20), (20, 20), (0, 0)), constant_values=245)
    ph, pw = printed.shape[:2]
    corners = np.array([[w * 0.5, h * 0.45], [w * 1.45, h * 0.5], [w * 1.5, h * 1.55], [w * 0.45, h * 1.5]])
    warped = _perspective(printed, corners, (w * 2, h * 2))
    mask = _perspective(np.full((ph, pw), 255, np.uint8), corners, (w * 2, h * 2)) >= 128
    room[mask] = warped[mask]
    held = resize_area(_blur(room, 0.8), (w, h))  # a 3x3 Gaussian (sigma 0.8), then half size
    # a halftone print filling the frame
    bayer = (((xx % 4) * 4 + (yy % 4)) / 16.0)[..., None]
    halftone = _blur(np.where(rgb / 255.0 > bayer, 235, 25).astype(np.uint8), 1.1)  # ~ a 5x5 Gaussian
    # a small, heavily compressed photo blown up again (a re-shared picture)
    thumbnail = resize_bilinear(rgb, (max(w // 4, 1), max(h // 4, 1)))  # sampled, as a quick resize aliases
    reshared_jpeg = Image.open(io.BytesIO(_jpeg(thumbnail, quality=20))).convert("RGB")
    reshared = np.asarray(reshared_jpeg.resize((w, h), Image.Resampling.BILINEAR))
    return {"screen": screen, "held_print": held, "halftone_print": halftone, "reshared": reshared}


def liveness_table(pipeline: FacePipeline, photos: list[Photo], seed: int = 0) -> dict[str, dict[str, float | str]]:
    """Live score of each real photo and of each simulated attack on it (photo -> kind -> score)."""
    if pipeline.liveness is None:
        return {}
    rng = np.random.default_rng(seed)
    table: dict[str, dict[str, float | str]] = {}
    for photo in photos:
        if photo.person is None or photo.source_photo != photo.name:
            continue
        rgb = np.asarray(Image.open(io.BytesIO(photo.data)).convert("RGB"))
        row: dict[str, float | str] = {}
        for kind, image in {"real": rgb, **simulated_attacks(rgb, rng)}.items():
            try:
                row[kind] = pipeline.analyse(_jpeg(image)).liveness.score
            except FaceError as exc:
                row[kind] = exc.code.value
        table[photo.name] = row
    return table


def format_liveness(table: dict[str, dict[str, float | str]], threshold: float) -> str:
    if not table:
        return "liveness: disabled in the manifest"
    kinds = list(next(iter(table.values())))
    lines = [f"liveness (probability of 'live'; < {threshold} would be refused if enforced):",
             "  " + f"{'photo':22s}" + "".join(f"{k:>15s}" for k in kinds)]
    for name, row in table.items():
        cells = "".join(f"{v:15.3f}" if isinstance(v, float) else f"{v:>15s}" for v in row.values())
        lines.append(f"  {name:22s}{cells}")
    return "\n".join(lines)


def figures(report: AccuracyReport) -> dict:
    """Unit-carrying keys for the JSON line."""
    g, s, i = _spread(report.genuine), _spread(report.genuine_same_photo), _spread(report.impostor)
    return {
        "threshold_cosine": report.threshold,
        "margin_cosine": report.margin,
        "samples": len(report.samples),
        "samples_refused": len(report.refused),
        "genuine_pairs": g["n"], "genuine_same_photo_pairs": s["n"], "impostor_pairs": i["n"],
        "genuine_min_cosine": g.get("min"), "genuine_p01_cosine": g.get("p01"),
        "genuine_median_cosine": g.get("median"), "genuine_max_cosine": g.get("max"),
        "impostor_min_cosine": i.get("min"), "impostor_median_cosine": i.get("median"),
        "impostor_p99_cosine": i.get("p99"), "impostor_max_cosine": i.get("max"),
        "far_at_threshold_ratio": report.far, "frr_at_threshold_ratio": report.frr,
        "false_accepts_pairs": int((report.impostor >= report.threshold).sum()),
        "false_rejects_pairs": int((report.genuine < report.threshold).sum()),
        "rank1_identification_ratio": report.rank1_rate,
        "rank1_hits": report.rank1_hits,
        "rank1_probes": report.rank1_probes,
        "open_set_strangers_rejected_ratio": (report.strangers_rejected / report.strangers
                                              if report.strangers else None),
        "open_set_false_accepts": report.false_accepts_1n,
        "suggested_threshold_cosine": (suggest_threshold(report.genuine, report.impostor)
                                       if report.genuine.size and report.impostor.size else None),
    }


def format_report(report: AccuracyReport) -> str:
    lines = [(f"accuracy on real photos ({len(report.samples)} samples of "
              f"{len({s.person for s in report.samples})} people, "
              f"{len({s.source_photo for s in report.samples})} distinct photos)")]
    if report.refused:
        codes: dict[str, int] = {}
        for code in report.refused.values():
            codes[code] = codes.get(code, 0) + 1
        counts = ", ".join(f"{c} {n}" for c, n in sorted(codes.items()))
        lines.append(f"  refused by the pipeline: {len(report.refused)} ({counts})")
    for label, scores in (("genuine, different photos", report.genuine),
                          ("genuine, same photo varied", report.genuine_same_photo),
                          ("impostor", report.impostor)):
        sp = _spread(scores)
        if sp["n"]:
            lines.append(f"  {label:28s} n={sp['n']:5d}  min {sp['min']:.3f}  p01 {sp['p01']:.3f}  "
                         f"median {sp['median']:.3f}  p99 {sp['p99']:.3f}  max {sp['max']:.3f}")
    false_accepts = int((report.impostor >= report.threshold).sum())
    false_rejects = int((report.genuine < report.threshold).sum())
    lines.append(f"  at threshold {report.threshold:.2f}: FAR {report.far:.4%} "
                 f"({false_accepts}/{report.impostor.size} impostor pairs), "
                 f"FRR {report.frr:.4%} ({false_rejects}/{report.genuine.size} genuine pairs)")
    lines.append(f"  1:N leave-one-photo-out with {report.distractors} synthetic distractors: rank-1 "
                 f"{report.rank1_hits}/{report.rank1_probes} = {report.rank1_rate:.1%}; accepted as themselves "
                 f"{report.accepts_correct_1n}/{report.rank1_probes}; strangers rejected "
                 f"{report.strangers_rejected}/{report.strangers}; false accepts {report.false_accepts_1n}")
    if report.genuine.size and report.impostor.size:
        lines.append(f"  threshold the data suggests (midway, above every impostor): "
                     f"{suggest_threshold(report.genuine, report.impostor):.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-augment", action="store_true", help="only the photos themselves")
    parser.add_argument("--distractors", type=int, default=10_000)
    args = parser.parse_args(argv)
    pipeline = FacePipeline.from_manifest()
    report = evaluate(pipeline, augment=not args.no_augment, distractors=args.distractors)
    print(format_report(report))
    print(json.dumps(figures(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
