"""The numpy/Pillow image operations that replaced OpenCV in the face pipeline (no models needed)."""

import math
import subprocess
import sys

import numpy as np
import pytest

from sunflower.gate.face.align import ARCFACE_TEMPLATE, align
from sunflower.gate.face.imaging import (
    apply_affine,
    invert_affine,
    laplacian,
    resize_area,
    resize_bilinear,
    rgb_to_grey,
    similarity_transform,
    warp_affine,
)


def _similarity(degrees: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


# -- similarity transform ---------------------------------------------------------------------------


def test_the_similarity_transform_recovers_a_known_rotation_scale_and_translation():
    # given five face-like points, and the same points turned 23 degrees, scaled 0.37x and moved
    points = np.array([[310.0, 260.0], [420.0, 255.0], [365.0, 330.0], [318.0, 395.0], [412.0, 390.0]])
    truth = _similarity(23.0, 0.37, -41.5, 17.25)
    moved = apply_affine(truth, points)
    # when the transform is estimated from the two sets
    matrix = similarity_transform(points, moved)
    # then it is the one that was applied, and it maps the points onto their images
    assert matrix.shape == (2, 3) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, truth, atol=1e-4)
    np.testing.assert_allclose(apply_affine(matrix, points), moved, atol=1e-3)
    recovered_scale = math.hypot(matrix[0, 0], matrix[1, 0])
    recovered_angle = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    assert recovered_scale == pytest.approx(0.37, abs=1e-6)
    assert recovered_angle == pytest.approx(23.0, abs=1e-4)


def test_the_similarity_transform_is_the_least_squares_fit_with_noisy_points():
    rng = np.random.default_rng(7)
    points = rng.uniform(0, 500, (5, 2))
    truth = _similarity(-12.0, 1.8, 30.0, -5.0)
    noisy = apply_affine(truth, points) + rng.normal(0, 2.0, (5, 2))
    matrix = similarity_transform(points, noisy).astype(np.float64)

    def cost(m: np.ndarray) -> float:
        return float(((apply_affine(m, points) - noisy) ** 2).sum())

    # close to the truth, and no nearby similarity fits better (it is the minimum)
    np.testing.assert_allclose(matrix[:, :2], truth[:, :2], atol=0.02)
    np.testing.assert_allclose(matrix[:, 2], truth[:, 2], atol=6.0)  # 2 px of noise on 5 points
    a, b, tx, ty = matrix[0, 0], matrix[1, 0], matrix[0, 2], matrix[1, 2]
    for delta in np.eye(4) * 1e-3:
        for sign in (1, -1):
            da, db, dtx, dty = sign * delta
            other = np.array([[a + da, -(b + db), tx + dtx], [b + db, a + da, ty + dty]])
            assert cost(other) >= cost(matrix) - 1e-6


def test_a_mirror_image_is_never_fitted_by_a_reflection():
    points = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 8.0]])
    mirrored = points * np.array([-1.0, 1.0])
    matrix = similarity_transform(points, mirrored)
    # a similarity keeps its orientation: determinant >= 0, [[a, -b], [b, a]]
    assert matrix[0, 0] == pytest.approx(matrix[1, 1]) and matrix[0, 1] == pytest.approx(-matrix[1, 0])
    assert np.linalg.det(matrix[:, :2]) >= 0


def test_degenerate_points_give_the_identity():
    same = np.full((5, 2), 42.0)
    np.testing.assert_array_equal(similarity_transform(same, ARCFACE_TEMPLATE), [[1, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((5, 2)), np.zeros((4, 2)))


# -- warp -------------------------------------------------------------------------------------------


def test_the_warp_puts_a_known_point_where_the_matrix_sends_it():
    # given a dark image with one bright pixel at (x=70, y=40)
    image = np.zeros((100, 120, 3), np.uint8)
    image[40, 70] = (200, 100, 50)
    matrix = _similarity(30.0, 1.5, 10.0, -20.0)
    # when it is warped
    out = warp_affine(image, matrix, (160, 140))
    # then the brightest output pixel is where the matrix maps (70, 40), within a pixel
    expected = apply_affine(matrix, [[70.0, 40.0]])[0]
    y, x = np.unravel_index(out[:, :, 0].argmax(), out.shape[:2])
    assert abs(x - expected[0]) <= 1 and abs(y - expected[1]) <= 1
    assert out.dtype == np.uint8 and out.shape == (140, 160, 3)


def test_an_integer_translation_is_an_exact_shift_with_black_outside():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    out = warp_affine(image, np.array([[1.0, 0, 5], [0, 1.0, -3]]), (60, 50))
    np.testing.assert_array_equal(out[0:47, 5:60], image[3:50, 0:55])
    assert not out[:, :5].any() and not out[47:].any()


def test_a_half_pixel_shift_averages_neighbours():
    image = np.zeros((4, 4), np.uint8)
    image[:, 2:] = 200
    out = warp_affine(image, np.array([[1.0, 0, -0.5], [0, 1.0, 0]]), (4, 4))
    # output x samples input x + 0.5: column 1 lies halfway between 0 and 200, and column 3 halfway
    # between the last pixel and the black outside the image
    np.testing.assert_array_equal(out[1], [0, 100, 200, 100])


def test_the_inverse_of_an_affine_matrix_undoes_it():
    matrix = _similarity(-40.0, 0.6, 7.0, 3.0)
    points = np.array([[1.0, 2.0], [30.0, -4.0]])
    np.testing.assert_allclose(apply_affine(invert_affine(matrix), apply_affine(matrix, points)), points)


def test_align_lands_the_five_points_on_the_template():
    # given a synthetic picture with a bright dot at each of five face points
    image = np.zeros((400, 400, 3), np.uint8)
    points = np.array([[150.0, 160.0], [250.0, 150.0], [205.0, 215.0], [160.0, 270.0], [245.0, 262.0]],
                      np.float32)
    for x, y in points.round().astype(int):
        image[y - 1:y + 2, x - 1:x + 2] = 255
    aligned = align(image, points)
    assert aligned.shape == (112, 112, 3)
    # then each dot ends up near its template position (the fit is least squares, not exact)
    matrix = similarity_transform(points, ARCFACE_TEMPLATE)
    for landed, target in zip(apply_affine(matrix, points), ARCFACE_TEMPLATE):
        assert np.linalg.norm(landed - target) < 3.0
        x, y = np.round(landed).astype(int)
        assert aligned[y, x].max() > 100


# -- resizing, grey, Laplacian ------------------------------------------------------------------------


def test_shrinking_by_an_integer_factor_averages_blocks():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    out = resize_area(image, (20, 15))
    expected = image.reshape(15, 4, 20, 4, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(out - expected).max() <= 0.5 + 1e-6


def test_shrinking_by_a_fractional_factor_keeps_the_mean_and_flat_areas():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (97, 131), dtype=np.uint8)
    out = resize_area(image, (40, 30))
    assert out.shape == (30, 40)
    assert abs(float(out.mean()) - float(image.mean())) < 1.0
    flat = np.full((97, 131, 3), 77, np.uint8)
    assert (resize_area(flat, (40, 30)) == 77).all()
    assert (resize_area(flat[:20, :20], (64, 64)) == 77).all()  # enlarging


def test_the_bilinear_resize_of_a_region_equals_resizing_its_slice():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)
    box = (20, 10, 130, 115)
    np.testing.assert_array_equal(resize_bilinear(image, (64, 48), box),
                                  resize_bilinear(np.ascontiguousarray(image[10:115, 20:130]), (64, 48)))
    # halving samples between pixel pairs: 2x2 means of a smooth ramp
    ramp = np.tile(np.arange(0, 200, 2, dtype=np.uint8), (4, 1))
    np.testing.assert_array_equal(resize_bilinear(ramp, (50, 2))[0], np.arange(1, 200, 4))


def test_grey_uses_the_601_luma_weights():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]]], np.uint8)
    np.testing.assert_array_equal(rgb_to_grey(rgb)[0], [76, 150, 29, 255, 18])


def test_the_laplacian_is_zero_on_a_ramp_and_constant_on_a_bowl():
    yy, xx = np.mgrid[0:20, 0:30].astype(np.float32)
    assert np.abs(laplacian(3 * xx + 2 * yy)).max() == 0
    bowl = laplacian(xx**2 + yy**2)
    assert bowl.shape == (18, 28) and np.allclose(bowl, 4.0)


# Run in a fresh interpreter in which every module an OpenCV distribution provides (if one is
# installed) is made unimportable: importing it would raise ImportError.
_BLOCK_OPENCV = """
import sys
from importlib.metadata import packages_distributions
blocked = [m for m, dists in packages_distributions().items() if any(d.lower().startswith("opencv") for d in dists)]
for name in blocked:
    sys.modules[name] = None
"""


def _run_without_opencv(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK_OPENCV + code], capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_face_package_works_with_opencv_unimportable():
    # OpenCV does not fit the Lambda layer: the whole package must load and its image operations run
    result = _run_without_opencv(
        "import numpy as np\n"
        "from sunflower.gate.face import align, decode, detector, embedder, gallery, imaging, landmarks\n"
        "from sunflower.gate.face import liveness, pipeline, quality\n"
        "img = np.zeros((200, 200, 3), np.uint8)\n"
        "align.align(img, np.array(align.ARCFACE_TEMPLATE) * 1.5)\n"
        "imaging.resize_area(img, (64, 48)); imaging.resize_bilinear(img, (128, 128), (10, 10, 150, 150))\n"
        "quality.sharpness(np.zeros((112, 112, 3), np.uint8))\n"
    )
    assert result.returncode == 0, result.stderr


def test_a_real_check_runs_with_opencv_unimportable(model_dir, photos):
    result = _run_without_opencv(
        "from pathlib import Path\n"
        "from sunflower.gate.face import FacePipeline, Gallery\n"
        f"pipeline = FacePipeline.from_manifest({str(model_dir)!r})\n"
        f"enrolled = pipeline.analyse(Path({str(photos['obama.jpg'])!r}).read_bytes()).embedding\n"
        f"probe = pipeline.analyse(Path({str(photos['obama2.jpg'])!r}).read_bytes()).embedding\n"
        "decision = pipeline.decide(probe, Gallery.build([('obama', enrolled)]))\n"
        "assert decision.accepted and decision.person_id == 'obama', decision\n"
    )
    assert result.returncode == 0, result.stderr
