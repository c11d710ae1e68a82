"""5-point similarity alignment onto the ArcFace 112x112 template."""

from __future__ import annotations

import numpy as np

from sunflower.gate.face.imaging import similarity_transform, warp_affine

# The standard ArcFace (insightface) template for a 112x112 crop.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

__all__ = ["ARCFACE_TEMPLATE", "align", "similarity_transform"]


def align(rgb: np.ndarray, points: np.ndarray, template: np.ndarray = ARCFACE_TEMPLATE,
          size: tuple[int, int] = (112, 112)) -> np.ndarray:
    """The face warped so its five points land on the template (least squares), bilinear, black
    where the crop reaches past the picture's edge."""
    matrix = similarity_transform(points, template)
    return warp_affine(rgb, matrix, size)
