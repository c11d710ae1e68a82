"""Presentation-attack ("is this a live face?") score from the package's fr_liveness model.

What the model is, as far as its reference code and its behaviour show: a MiniFASNet-style
3-class classifier over a 128x128 crop 2.7x the face box (so it sees the face's surroundings:
the edge of a printed photo, a phone's bezel), raw 0-255 BGR input, softmax; class 0 is "live",
classes 1 and 2 are attack types. It is a single-frame RGB model: it cannot see depth, so a good
screen replay or a high-quality print with no visible edge can pass, and greyscale (infra-red)
cameras look "not live" to it. See docs in the manifest's liveness.notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sunflower.gate.face.imaging import resize_bilinear
from sunflower.gate.face.onnx import session


@dataclass(frozen=True)
class Liveness:
    score: float  # probability of the live class, 0..1
    live: bool  # score >= threshold
    enforced: bool  # whether a low score refuses the check (SPOOF_SUSPECTED)


class LivenessModel:
    def __init__(self, spec: dict, path) -> None:
        self.session = session(path)
        inp = spec["input"]
        self.input_name = inp.get("name", "input")
        _, _, self.in_h, self.in_w = inp["shape"]
        self.bgr = inp.get("channel_order", "BGR").upper() == "BGR"
        self.mean = np.float32(inp.get("mean", 0.0))
        self.scale = np.float32(1.0 / inp.get("std", 1.0))
        self.crop_scale = float(spec.get("crop_scale", 2.7))
        self.live_class = int(spec.get("live_class", 0))
        self.threshold = float(spec.get("threshold", 0.5))
        self.enforce = bool(spec.get("enforce", False))
        self.output_name = spec.get("output", "output")

    def crop(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The face box grown by crop_scale around its centre, shifted (not cut) at the borders."""
        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = box
        bw, bh = max(x2 - x1, 1), max(y2 - y1, 1)
        s = min((h - 1) / bh, (w - 1) / bw, self.crop_scale)
        nw, nh = bw * s, bh * s
        cx, cy = x1 + bw / 2, y1 + bh / 2
        left, top = cx - nw / 2, cy - nh / 2
        left = min(max(left, 0.0), w - 1 - nw)
        top = min(max(top, 0.0), h - 1 - nh)
        l, t = int(max(left, 0)), int(max(top, 0))
        r, b = int(left + nw) + 1, int(top + nh) + 1
        # = resize(rgb[t:b, l:r]) with plain (not anti-aliased) bilinear sampling, as in training
        return resize_bilinear(rgb, (self.in_w, self.in_h), (l, t, r, b))

    def predict(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> Liveness:
        patch = self.crop(rgb, box)
        if self.bgr:
            patch = patch[:, :, ::-1]
        blob = ((patch.astype(np.float32) - self.mean) * self.scale).transpose(2, 0, 1)[None].copy()
        logits = self.session.run([self.output_name], {self.input_name: blob})[0][0].astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        score = float(probs[self.live_class])
        return Liveness(score=score, live=score >= self.threshold, enforced=self.enforce)
