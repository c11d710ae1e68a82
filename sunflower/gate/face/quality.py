"""Quality gates: which detected face to use, and whether it is big, frontal and sharp enough.

The pose is read from the five landmarks (no extra model): roll from the eye line, yaw from how far
the nose tip sits off the eye-mouth midline, pitch from where the nose tip falls between the eye
line and the mouth line. On the evaluation photos the yaw magnitude agrees with the package's
HopeNet-style pose model (fr_pose.onnx) within 4 degrees for near-frontal faces (42 against 52 for
the turned cameraman), for no extra inference. Yaw is positive when the nose points to the image's
right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sunflower.gate.face.detector import Detection
from sunflower.gate.face.errors import FaceError, Reason
from sunflower.gate.face.imaging import laplacian, rgb_to_grey

# Nose-tip depth in front of the eye plane, in inter-ocular distances (adult average ~0.6):
# converts the nose's sideways offset into an approximate yaw angle.
_NOSE_DEPTH_IOD = 0.6


@dataclass(frozen=True)
class QualityLimits:
    min_face_px: float = 64.0  # detector box height in decoded pixels
    max_yaw_deg: float = 35.0
    max_roll_deg: float = 35.0  # alignment removes roll; a very tilted head is still suspicious
    pitch_range: tuple[float, float] = (0.15, 0.90)  # nose position between eye and mouth lines
    min_sharpness: float = 0.012  # var(Laplacian) / var(intensity) on the aligned face
    ambiguity_ratio: float = 0.7  # second face's prominence / first's at or above this: ambiguous
    min_edge_aspect: float = 0.5  # a box at the frame's edge narrower than this (w/h) is cut off

    @classmethod
    def from_manifest(cls, spec: dict) -> QualityLimits:
        known = {k: v for k, v in spec.items() if k in cls.__dataclass_fields__}
        if "pitch_range" in known:
            known["pitch_range"] = tuple(known["pitch_range"])
        return cls(**known)


@dataclass(frozen=True)
class Pose:
    yaw_deg: float
    roll_deg: float
    pitch_ratio: float  # 0 = nose on the eye line, 1 = on the mouth line; ~0.55 when frontal


@dataclass(frozen=True)
class Quality:
    face_px: float
    detector_score: float
    yaw_deg: float
    roll_deg: float
    pitch_ratio: float
    sharpness: float


def prominence(detection: Detection, width: int, height: int) -> float:
    """How much a face looks like the one presenting itself: area, discounted off-centre.

    A face at the centre counts fully, one in a corner counts half. The resident at the gate is the
    largest, most central face; a passer-by behind them is smaller and off to the side.
    """
    cx, cy = detection.center
    dx = (cx - width / 2) / (width / 2)
    dy = (cy - height / 2) / (height / 2)
    off_centre = min(math.hypot(dx, dy) / math.sqrt(2), 1.0)
    return detection.width * detection.height * (1.0 - 0.5 * off_centre)


def choose_face(detections: list[Detection], width: int, height: int, limits: QualityLimits) -> Detection:
    """The most prominent face; MULTIPLE_FACES when a second one is comparably prominent."""
    if not detections:
        raise FaceError(Reason.NO_FACE, "no face was found in the image")
    ranked = sorted(detections, key=lambda d: prominence(d, width, height), reverse=True)
    best = ranked[0]
    if len(ranked) > 1:
        ratio = prominence(ranked[1], width, height) / max(prominence(best, width, height), 1e-9)
        if ratio >= limits.ambiguity_ratio:
            raise FaceError(
                Reason.MULTIPLE_FACES,
                f"{len(ranked)} faces, two of them comparably large and central; one person at a time",
            )
    return best


def pose_from_points(points: np.ndarray) -> Pose:
    left_eye, right_eye, nose, left_mouth, right_mouth = points.astype(np.float64)
    dx, dy = right_eye - left_eye
    iod = math.hypot(dx, dy)
    roll = math.degrees(math.atan2(dy, dx))
    eyes = (left_eye + right_eye) / 2
    mouth = (left_mouth + right_mouth) / 2
    axis = mouth - eyes
    length = float(np.linalg.norm(axis))
    if iod < 1e-6 or length < 1e-6:
        return Pose(90.0, roll, 0.0)  # collapsed landmarks: treat as a profile
    axis /= length
    across = np.array([axis[1], -axis[0]])
    offset = float((nose - eyes) @ across) / iod
    yaw = math.degrees(math.atan(offset / _NOSE_DEPTH_IOD))
    pitch_ratio = float((nose - eyes) @ axis) / length
    return Pose(yaw, roll, pitch_ratio)


def sharpness(aligned_rgb: np.ndarray) -> float:
    """Contrast-normalised focus measure on the central face region of the aligned 112x112 crop.

    var(Laplacian) / var(intensity): a dim but sharp face is not "blurred". On the evaluation
    photos sharp faces score 0.17-1.4; a Gaussian blur of sigma 2 px at 112 px (where the
    embedding starts to lose its genuine scores) brings them to 0.007-0.022.
    """
    grey = rgb_to_grey(aligned_rgb[24:104, 20:92]).astype(np.float32)
    lap = laplacian(grey)  # 3x3, 4-neighbour, interior only (no border effects)
    return float(lap.var() / (grey.var() + 1e-6))


def check_framing(detection: Detection, width: int, height: int, limits: QualityLimits) -> None:
    """A face cut by the picture's edge: the detector's box, clipped to the image, turns narrow.

    Whole faces give boxes 0.66-0.93 as wide as tall on the evaluation photos; half a face at the
    edge gives 0.33-0.5, and its landmarks and embedding are then guesses (a genuine score of 0.06
    was seen), so such a face is refused rather than matched.
    """
    x1, y1, x2, y2 = detection.box
    at_edge = x1 <= 2 or y1 <= 2 or x2 >= width - 3 or y2 >= height - 3
    if at_edge and detection.width < limits.min_edge_aspect * detection.height:
        raise FaceError(Reason.FACE_CUT_OFF, "the face is cut off by the edge of the picture; step into the middle")


def check_size(detection: Detection, limits: QualityLimits) -> None:
    if detection.height < limits.min_face_px:
        raise FaceError(
            Reason.FACE_TOO_SMALL,
            f"the face is {detection.height:.0f} px tall; at least {limits.min_face_px:.0f} px are needed",
        )


def check_pose(pose: Pose, limits: QualityLimits) -> None:
    low, high = limits.pitch_range
    if abs(pose.yaw_deg) > limits.max_yaw_deg:
        raise FaceError(Reason.POSE_TOO_WIDE,
                        f"the head is turned about {abs(pose.yaw_deg):.0f} degrees; face the camera")
    if abs(pose.roll_deg) > limits.max_roll_deg:
        raise FaceError(Reason.POSE_TOO_WIDE, f"the head is tilted about {abs(pose.roll_deg):.0f} degrees")
    if not low <= pose.pitch_ratio <= high:
        raise FaceError(Reason.POSE_TOO_WIDE, "the head is tipped too far up or down; face the camera")


def check_sharpness(value: float, limits: QualityLimits) -> None:
    if value < limits.min_sharpness:
        raise FaceError(Reason.FACE_BLURRED, "the face is out of focus or moving; hold still")
