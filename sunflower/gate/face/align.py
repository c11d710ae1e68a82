"""5-point similarity alignment onto the ArcFace 112x112 template."""

from __future__ import annotations

import cv2
import numpy as np

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


def similarity_transform(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """2x3 rotation + uniform scale + translation mapping `points` onto `template`, least squares."""
    # A huge reprojection threshold makes RANSAC keep all five points, and the Levenberg-Marquardt
    # refinement then gives the least-squares similarity (what insightface's umeyama computes).
    matrix, _ = cv2.estimateAffinePartial2D(
        points.astype(np.float32),
        template.astype(np.float32),
        method=cv2.RANSAC,
        ransacReprojThreshold=1e4,
        refineIters=20,
    )
    if matrix is None:  # degenerate points (all equal): fall back to the identity
        matrix = np.float32([[1, 0, 0], [0, 1, 0]])
    return matrix


def align(rgb: np.ndarray, points: np.ndarray, template: np.ndarray = ARCFACE_TEMPLATE,
          size: tuple[int, int] = (112, 112)) -> np.ndarray:
    matrix = similarity_transform(points, template)
    return cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))
