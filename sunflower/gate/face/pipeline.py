"""Decode -> detect -> choose the face -> quality -> align -> (liveness) -> embed; and the decision.

Build one `FacePipeline` per process (per Lambda container): it opens the onnxruntime sessions
once, one intra-op thread each. `analyse` raises `FaceError` with a stable reason code for every
photo it will not match; `decide` turns an embedding and a gallery into accept or reject.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sunflower.gate.face.align import align
from sunflower.gate.face.decode import MAX_BYTES, MAX_PIXELS, decode_image
from sunflower.gate.face.detector import Detection, FaceDetector
from sunflower.gate.face.embedder import Embedder
from sunflower.gate.face.errors import FaceError, Reason
from sunflower.gate.face.gallery import Gallery
from sunflower.gate.face.landmarks import LandmarkModel, five_points
from sunflower.gate.face.liveness import Liveness, LivenessModel
from sunflower.gate.face.quality import (
    Quality,
    QualityLimits,
    check_framing,
    check_pose,
    check_sharpness,
    check_size,
    choose_face,
    pose_from_points,
    sharpness,
)


@dataclass(frozen=True)
class FaceAnalysis:
    embedding: np.ndarray  # (D,) float32, unit length
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in decoded-image pixels
    landmarks: np.ndarray  # (5, 2): eyes, nose tip, mouth corners, decoded-image pixels
    quality: Quality
    liveness: Liveness | None  # None when the manifest disables the liveness model
    faces_found: int
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Decision:
    decision: str  # "accept" | "reject"
    person_id: str | None  # only when accepted
    score: float  # best cosine similarity in the gallery (0.0 for an empty gallery)
    reason: str  # MATCH | NO_MATCH | AMBIGUOUS | EMPTY_GALLERY
    margin: float | None = None  # best person's score minus the best other person's

    @property
    def accepted(self) -> bool:
        return self.decision == "accept"


ACCEPT, REJECT = "accept", "reject"


class FacePipeline:
    def __init__(self, manifest: dict, model_dir: Path | str, *, limits: QualityLimits | None = None,
                 max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> None:
        model_dir = Path(model_dir)
        models = manifest["models"]
        missing = [m["file"] for m in models.values()
                   if m.get("enabled", True) and not (model_dir / m["file"]).is_file()]
        if missing:
            raise FileNotFoundError(
                f"face models missing from {model_dir}: {', '.join(missing)} "
                "(run: python -m sunflower.gate.modelstore fetch)"
            )
        self.manifest = manifest
        self.detector = FaceDetector(models["detector"], model_dir / models["detector"]["file"])
        self.landmarks = LandmarkModel(models["landmarks"], model_dir / models["landmarks"]["file"])
        self.embedder = Embedder(models["embedder"], model_dir / models["embedder"]["file"])
        live = models.get("liveness")
        self.liveness = (LivenessModel(live, model_dir / live["file"])
                         if live and live.get("enabled", False) else None)
        self.template = np.asarray(models["embedder"]["alignment_template"], np.float32)
        self.limits = limits or QualityLimits.from_manifest(manifest.get("quality", {}))
        self.threshold = float(models["embedder"]["threshold"])
        self.margin = float(models["embedder"].get("margin", 0.0))
        self.max_bytes, self.max_pixels = max_bytes, max_pixels

    @classmethod
    def from_manifest(cls, model_dir: Path | str | None = None, manifest: dict | str | Path | None = None,
                      **kwargs) -> FacePipeline:
        from sunflower.gate import modelstore

        if not isinstance(manifest, dict):
            manifest = modelstore.load_manifest(manifest)
        return cls(manifest, model_dir or modelstore.model_dir(), **kwargs)

    @property
    def embedding_size(self) -> int:
        return self.embedder.size

    # -- analyse --------------------------------------------------------------------------------

    def analyse(self, image_bytes: bytes) -> FaceAnalysis:
        started = time.perf_counter()
        image = decode_image(image_bytes, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        return self.analyse_array(image.rgb, _started=started)

    def analyse_array(self, rgb: np.ndarray, *, _started: float | None = None) -> FaceAnalysis:
        """The same pipeline from an already decoded H x W x 3 uint8 RGB array."""
        clock = _Clock(_started)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise FaceError(Reason.NOT_AN_IMAGE, "expected an H x W x 3 uint8 RGB array")
        clock.lap("decode")
        height, width = rgb.shape[:2]
        detections = self.detector.detect(rgb)
        face = choose_face(detections, width, height, self.limits)
        clock.lap("detect")
        check_framing(face, width, height, self.limits)
        check_size(face, self.limits)
        points68 = self.landmarks.predict(rgb, face)
        points = five_points(points68)
        clock.lap("landmarks")
        pose = pose_from_points(points)
        check_pose(pose, self.limits)
        aligned = align(rgb, points, self.template, (self.embedder.in_w, self.embedder.in_h))
        sharp = sharpness(aligned)
        check_sharpness(sharp, self.limits)
        clock.lap("align_quality")
        liveness = self._liveness(rgb, face)
        clock.lap("liveness")
        embedding = self.embedder.embed(aligned)
        clock.lap("embed")
        quality = Quality(face_px=face.height, detector_score=face.score, yaw_deg=pose.yaw_deg,
                          roll_deg=pose.roll_deg, pitch_ratio=pose.pitch_ratio, sharpness=sharp)
        return FaceAnalysis(embedding, face.box, points, quality, liveness, len(detections), clock.laps)

    def _liveness(self, rgb: np.ndarray, face: Detection) -> Liveness | None:
        if self.liveness is None:
            return None
        height, width = rgb.shape[:2]
        result = self.liveness.predict(rgb, face.square(width, height))
        if result.enforced and not result.live:
            raise FaceError(Reason.SPOOF_SUSPECTED, "the camera may be looking at a photo or a screen")
        return result

    # -- decide ---------------------------------------------------------------------------------

    def decide(self, embedding: np.ndarray, gallery: Gallery, threshold: float | None = None,
               margin: float | None = None) -> Decision:
        return decide(embedding, gallery, self.threshold if threshold is None else threshold,
                      self.margin if margin is None else margin)


def decide(embedding: np.ndarray, gallery: Gallery, threshold: float, margin: float = 0.0) -> Decision:
    """Accept the best person only if their score clears the threshold AND beats everyone else by margin."""
    match = gallery.search(embedding)
    if match is None:
        return Decision(REJECT, None, 0.0, "EMPTY_GALLERY")
    if match.score < threshold:
        return Decision(REJECT, None, match.score, "NO_MATCH", match.margin)
    if match.runner_up_score is not None and match.margin < margin:
        # Two residents both look like the visitor (twins, a poor photo): open for neither.
        return Decision(REJECT, None, match.score, "AMBIGUOUS", match.margin)
    return Decision(ACCEPT, match.person_id, match.score, "MATCH", match.margin)


class _Clock:
    def __init__(self, started: float | None) -> None:
        self.last = started if started is not None else time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = (now - self.last) * 1000.0
        self.last = now
