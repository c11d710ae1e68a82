"""Face detection with the UltraFace-style (RFB-320) detector.

The ONNX graph already decodes its 4420 priors: `boxes` are corner-form (x1, y1, x2, y2) in 0..1 of
the 320x240 input and `scores` are softmaxed (background, face). What is left to do here is the
letterbox, a score threshold and non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sunflower.gate.face.imaging import resize_area
from sunflower.gate.face.onnx import session


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels (as the detector saw it)
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def square(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The square crop the landmark model was trained on: side = box height, same centre."""
        side = self.height
        cx, cy = self.center
        x1, y1 = max(cx - side / 2, 0.0), max(cy - side / 2, 0.0)
        x2, y2 = min(cx + side / 2, width - 1.0), min(cy + side / 2, height - 1.0)
        return int(x1), int(y1), round(x2), round(y2)


class FaceDetector:
    def __init__(self, spec: dict, path) -> None:
        self.session = session(path)
        inp = spec["input"]
        self.input_name = inp.get("name", "input")
        _, _, self.in_h, self.in_w = inp["shape"]
        self.bgr = inp.get("channel_order", "RGB").upper() == "BGR"
        self.mean = np.float32(inp["mean"])
        self.scale = np.float32(1.0 / inp["std"])
        self.letterbox = bool(inp.get("letterbox", True))
        self.pad_value = int(inp.get("pad_value", 127))
        self.score_threshold = float(spec.get("score_threshold", 0.7))
        self.nms_iou = float(spec.get("nms_iou", 0.4))
        self.max_faces = int(spec.get("max_faces", 20))
        out = spec.get("outputs", {})
        self.scores_name = out.get("scores", "scores")
        self.boxes_name = out.get("boxes", "boxes")

    def _prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float, float, float]:
        h, w = rgb.shape[:2]
        if self.letterbox:
            # Keep the aspect ratio: the JS reference stretches to 320x240, which squashes faces in
            # portrait photos (a resident's phone) by up to 2.5x and loses them.
            s = min(self.in_w / w, self.in_h / h)
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            canvas = np.full((self.in_h, self.in_w, 3), self.pad_value, np.uint8)
            ox, oy = (self.in_w - nw) // 2, (self.in_h - nh) // 2
            canvas[oy : oy + nh, ox : ox + nw] = resize_area(rgb, (nw, nh))  # box filter down, bilinear up
            sx = sy = s
        else:
            canvas = resize_area(rgb, (self.in_w, self.in_h))
            sx, sy, ox, oy = self.in_w / w, self.in_h / h, 0, 0
        if self.bgr:
            canvas = canvas[:, :, ::-1]
        blob = (canvas.astype(np.float32) - self.mean) * self.scale
        return blob.transpose(2, 0, 1)[None].copy(), sx, sy, ox, oy

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB image, best score first."""
        h, w = rgb.shape[:2]
        blob, sx, sy, ox, oy = self._prepare(rgb)
        scores, boxes = self.session.run([self.scores_name, self.boxes_name], {self.input_name: blob})
        conf = scores[0, :, 1]
        keep = conf >= self.score_threshold
        if not keep.any():
            return []
        conf = conf[keep]
        b = boxes[0, keep].astype(np.float64)
        b[:, [0, 2]] = (b[:, [0, 2]] * self.in_w - ox) / sx
        b[:, [1, 3]] = (b[:, [1, 3]] * self.in_h - oy) / sy
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, w - 1)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, h - 1)
        order = nms(b, conf, self.nms_iou)[: self.max_faces]
        return [Detection(tuple(float(v) for v in b[i]), float(conf[i])) for i in order]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression by score; returns kept indices, best first."""
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return keep
