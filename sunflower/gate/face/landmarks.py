"""68-point landmarks from a 64x64 grey crop, and the 5 points the aligner uses."""

from __future__ import annotations

import numpy as np

from sunflower.gate.face.detector import Detection
from sunflower.gate.face.imaging import resize_area, rgb_to_grey
from sunflower.gate.face.onnx import session

# 68-point (iBUG 300-W) indices, 0-based. Eye centres average the four eyelid points, mouth
# corners average the outer and inner lip corners, as the model's reference code does.
LEFT_EYE = (37, 38, 40, 41)  # the subject's right eye, on the image's left
RIGHT_EYE = (43, 44, 46, 47)
NOSE_TIP = (30,)
LEFT_MOUTH = (48, 60)
RIGHT_MOUTH = (54, 64)
FIVE_POINTS = (LEFT_EYE, RIGHT_EYE, NOSE_TIP, LEFT_MOUTH, RIGHT_MOUTH)


def five_points(points68: np.ndarray) -> np.ndarray:
    """68 x 2 -> 5 x 2: left eye, right eye, nose tip, left mouth corner, right mouth corner."""
    return np.stack([points68[list(idx)].mean(axis=0) for idx in FIVE_POINTS]).astype(np.float32)


class LandmarkModel:
    def __init__(self, spec: dict, path) -> None:
        self.session = session(path)
        inp = spec["input"]
        self.input_name = inp.get("name", "input")
        _, _, self.in_h, self.in_w = inp["shape"]
        self.scale = np.float32(inp.get("scale", 1.0 / 256.0))
        self.output_name = spec.get("output", "output")

    def predict(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """68 x 2 landmark coordinates in image pixels."""
        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = detection.square(w, h)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return np.zeros((68, 2), np.float32)
        crop = rgb[y1:y2, x1:x2]
        grey = resize_area(rgb_to_grey(crop), (self.in_w, self.in_h))
        blob = (grey.astype(np.float32) * self.scale)[None, None]
        out = self.session.run([self.output_name], {self.input_name: blob})[0].reshape(-1, 2)
        # Outputs are fractions of the crop.
        return (out * np.float32([x2 - x1, y2 - y1]) + np.float32([x1, y1])).astype(np.float32)
