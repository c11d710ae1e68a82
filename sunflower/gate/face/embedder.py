"""512-d face embedding of an aligned 112x112 crop, L2-normalised."""

from __future__ import annotations

import numpy as np

from sunflower.gate.face.onnx import session


class Embedder:
    def __init__(self, spec: dict, path) -> None:
        self.session = session(path)
        inp = spec["input"]
        self.input_name = inp.get("name", "input")
        _, _, self.in_h, self.in_w = inp["shape"]
        self.bgr = inp.get("channel_order", "RGB").upper() == "BGR"
        self.mean = np.float32(inp["mean"])
        self.scale = np.float32(1.0 / inp["std"])
        self.output_name = spec.get("output", "output")
        self.size = int(spec["embedding_size"])
        self.flip_average = bool(spec.get("flip_average", False))

    def _blob(self, face: np.ndarray) -> np.ndarray:
        if self.bgr:
            face = face[:, :, ::-1]
        return ((face.astype(np.float32) - self.mean) * self.scale).transpose(2, 0, 1)

    def embed(self, aligned_rgb: np.ndarray) -> np.ndarray:
        blob = self._blob(aligned_rgb)[None]
        vec = self.session.run([self.output_name], {self.input_name: blob})[0][0]
        if self.flip_average:
            flipped = self._blob(np.ascontiguousarray(aligned_rgb[:, ::-1]))[None]
            vec = vec + self.session.run([self.output_name], {self.input_name: flipped})[0][0]
        return l2_normalise(vec.astype(np.float32))


def l2_normalise(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec
