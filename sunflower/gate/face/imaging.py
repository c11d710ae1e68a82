"""The few image operations the face pipeline needs, in numpy and Pillow (no OpenCV).

OpenCV's headless wheel alone is ~160 MB unzipped, too much next to numpy and onnxruntime in a
250 MB Lambda; these functions replace the handful of OpenCV calls the pipeline made, keeping
OpenCV's conventions (pixel centres at integer coordinates, 2x3 matrices mapping source to
destination) so the models see the same pixels:

- `similarity_transform`: least-squares rotation + uniform scale + translation between point sets
  (Umeyama's solution, closed form; what OpenCV's estimateAffinePartial2D gives refined on all
  points);
- `warp_affine`: bilinear warp through such a matrix, black outside the image (warpAffine with
  INTER_LINEAR and BORDER_CONSTANT, within 1/32 px);
- `resize_bilinear`: bilinear resampling without anti-aliasing (resize with INTER_LINEAR), what the
  liveness model was trained on;
- `resize_area`: pixel-area averaging when shrinking (INTER_AREA, within one grey level);
- `rgb_to_grey`: ITU-R 601 luma with OpenCV's fixed-point weights (a rare half-way value
  may round the other way);
- `laplacian`: the 4-neighbour 3x3 Laplacian on the interior (Laplacian with ksize 1).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def similarity_transform(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """2x3 float32 matrix [[a, -b, tx], [b, a, ty]] mapping `points` onto `template`, least squares.

    Minimises sum |template_i - (s R points_i + t)|^2 over rotations R, scales s >= 0 and
    translations t. In 2-D that is linear in (a, b) = s (cos, sin) once both sets are centred, so
    the optimum is closed form (it is Umeyama's solution; no reflection can arise). Degenerate input
    (fewer than two distinct points) gives the identity.
    """
    src = np.asarray(points, np.float64).reshape(-1, 2)
    dst = np.asarray(template, np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need two equal sets of at least 2 points, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    p, q = src - src_mean, dst - dst_mean
    energy = float((p * p).sum())
    if not np.isfinite(energy) or energy < 1e-12:
        return np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    a = float((p[:, 0] * q[:, 0] + p[:, 1] * q[:, 1]).sum()) / energy
    b = float((p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]).sum()) / energy
    rotation_scale = np.array([[a, -b], [b, a]])
    translation = dst_mean - rotation_scale @ src_mean
    return np.hstack([rotation_scale, translation[:, None]]).astype(np.float32)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix (as a 2x3 matrix)."""
    full = np.vstack([np.asarray(matrix, np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """N x 2 points through a 2x3 matrix."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    m = np.asarray(matrix, np.float64).reshape(2, 3)
    return pts @ m[:, :2].T + m[:, 2]


def _sample_bilinear(image: np.ndarray, sx: np.ndarray, sy: np.ndarray, *, replicate: bool) -> np.ndarray:
    """Bilinear samples of an H x W (x C) uint8 image at float coordinates (pixel centres at integers).

    `sx` and `sy` broadcast against each other to the output's H' x W'. Outside the image the value
    is 0 (constant border: edge pixels fade into black over one pixel, as OpenCV's BORDER_CONSTANT) or
    the nearest edge pixel (`replicate`).
    """
    h, w = image.shape[:2]
    sx, sy = np.broadcast_arrays(sx.astype(np.float32), sy.astype(np.float32))
    x0f, y0f = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0f, sy - y0f
    x0, y0 = x0f.astype(np.intp), y0f.astype(np.intp)
    x1, y1 = x0 + 1, y0 + 1
    wx = (1.0 - fx, fx)
    wy = (1.0 - fy, fy)
    # Gather from the uint8 source and convert only the samples (converting a whole photo would
    # cost more than the warp); a flat `take` is several times faster than 2-D fancy indexing.
    flat = image.reshape(h * w, -1) if image.flags.c_contiguous else None
    out = None
    for j, yy in enumerate((y0, y1)):
        for i, xx in enumerate((x0, x1)):
            weight = wy[j] * wx[i]
            if not replicate:
                weight = weight * ((xx >= 0) & (xx < w) & (yy >= 0) & (yy < h))
            yc, xc = np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)
            if flat is not None:
                value = np.take(flat, yc * w + xc, axis=0).reshape(yc.shape + image.shape[2:])
            else:
                value = image[yc, xc]
            term = value.astype(np.float32) * (weight[..., None] if image.ndim == 3 else weight)
            out = term if out is None else out + term
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp an H x W (x C) uint8 image by the 2x3 source->destination `matrix` into `size` (w, h).

    Each output pixel (x, y) takes the bilinear value at inverse(matrix) @ (x, y, 1) in the source;
    where that falls outside the source, the output is black.
    """
    out_w, out_h = size
    inverse = invert_affine(matrix)
    xs = np.arange(out_w, dtype=np.float64)[None, :]
    ys = np.arange(out_h, dtype=np.float64)[:, None]
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return _sample_bilinear(image, sx, sy, replicate=False)


def resize_bilinear(image: np.ndarray, size: tuple[int, int],
                    box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Bilinear resize of `image` (or of its region `box` = left, top, right, bottom, exclusive) to
    `size` (w, h), sampling at pixel centres with no anti-aliasing filter.

    This is OpenCV's `resize(image[top:bottom, left:right], size)` (INTER_LINEAR), edge
    pixels of the region repeating, the resize the liveness model's training code uses (Pillow's
    BILINEAR widens its filter when shrinking, which blurs away the fine texture - moire, print
    dots - a presentation-attack model looks at). Passing `box` instead of a slice keeps the fast
    path: the source stays one contiguous array.
    """
    out_w, out_h = size
    h, w = image.shape[:2]
    left, top, right, bottom = box if box is not None else (0, 0, w, h)
    left, top = max(int(left), 0), max(int(top), 0)
    right, bottom = min(int(right), w), min(int(bottom), h)
    rw, rh = right - left, bottom - top
    if rw <= 0 or rh <= 0:
        raise ValueError(f"empty region {box} of a {w}x{h} image")
    # Sample coordinates in the region, clamped to its edge pixels (so its border repeats), then
    # moved into the image.
    sx = np.clip((np.arange(out_w, dtype=np.float64) + 0.5) * (rw / out_w) - 0.5, 0.0, rw - 1) + left
    sy = np.clip((np.arange(out_h, dtype=np.float64) + 0.5) * (rh / out_h) - 0.5, 0.0, rh - 1) + top
    return _sample_bilinear(image, sx[None, :], sy[:, None], replicate=True)


def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the input pixels it covers and the share of each (n_out x k each).

    Shrinking: output pixel i covers [i * s, (i + 1) * s) of the input (s = n_in / n_out) and each
    input pixel counts by the length it overlaps, divided by s - a true pixel-area average.
    Enlarging: the two nearest input pixels, bilinear, pixel centres aligned.
    """
    scale = n_in / n_out
    if scale >= 1.0:
        start = np.arange(n_out, dtype=np.float64) * scale
        first = np.floor(start).astype(np.intp)
        idx = first[:, None] + np.arange(int(np.ceil(scale)) + 1)[None, :]
        weight = np.minimum(start[:, None] + scale, idx + 1) - np.maximum(start[:, None], idx)
        weight = np.clip(weight, 0.0, None) / scale
        weight[idx >= n_in] = 0.0
        idx = np.minimum(idx, n_in - 1)
    else:
        pos = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
        first = np.floor(pos).astype(np.intp)
        frac = pos - first
        idx = np.stack([first, np.minimum(first + 1, n_in - 1)], axis=1)
        weight = np.stack([1.0 - frac, frac], axis=1)
    return idx, weight.astype(np.float32)


def resize_area(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an H x W (x C) uint8 image to `size` (w, h) by pixel-area averaging when shrinking.

    This is OpenCV's INTER_AREA (within 1 grey level): every input pixel contributes by the area it
    shares with the output pixel, so a shrunk photo is averaged, not sampled (no aliasing), and the
    detector and landmark models see what they saw before. Two separable passes, rows first, each
    a few gathers of whole rows or columns; about as fast as OpenCV. Enlarging (a photo smaller
    than the model's input) is bilinear.
    """
    out_w, out_h = size
    h, w = image.shape[:2]
    if (w, h) == (out_w, out_h):
        return image
    if out_w >= w and out_h >= h:  # enlarging only: plain bilinear (Pillow's matches OpenCV's)
        return np.asarray(Image.fromarray(image).resize((out_w, out_h), resample=Image.Resampling.BILINEAR))
    extra = (None,) * (image.ndim - 2)  # broadcast weights over the channels
    rows_idx, rows_w = _area_taps(h, out_h)
    cols_idx, cols_w = _area_taps(w, out_w)
    # Rows: each tap gathers whole (contiguous) rows. Then columns, on the transposed result so
    # that they too are gathered as contiguous rows.
    rows = image[rows_idx[:, 0]] * rows_w[(slice(None), 0, None) + extra]
    for k in range(1, rows_idx.shape[1]):
        rows += image[rows_idx[:, k]] * rows_w[(slice(None), k, None) + extra]
    columns = np.ascontiguousarray(np.swapaxes(rows, 0, 1))  # W x out_h (x C)
    out = columns[cols_idx[:, 0]] * cols_w[(slice(None), 0, None) + extra]
    for k in range(1, cols_idx.shape[1]):
        out += columns[cols_idx[:, k]] * cols_w[(slice(None), k, None) + extra]
    return np.clip(np.rint(np.swapaxes(out, 0, 1)), 0, 255).astype(np.uint8, order="C")


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB -> H x W uint8 luma (0.299 R + 0.587 G + 0.114 B, rounded).

    OpenCV's fixed-point weights (scaled by 2^14), rounded half up, so the values, and the
    sharpness limit calibrated on them, are unchanged (OpenCV's vectorised path rounds a rare
    half-way pixel down: one grey level). In place on one uint32 buffer, ~3x faster than a dot.
    """
    grey = rgb[..., 0].astype(np.uint32)
    grey *= 4899
    grey += rgb[..., 1] * np.uint32(9617)
    grey += rgb[..., 2] * np.uint32(1868)
    grey += 1 << 13
    grey >>= 14
    return grey.astype(np.uint8)


def laplacian(grey: np.ndarray) -> np.ndarray:
    """The 3x3 Laplacian [[0, 1, 0], [1, -4, 1], [0, 1, 0]] on the interior: (H-2) x (W-2) float32."""
    g = np.asarray(grey, np.float32)
    return g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
