"""The face pipeline on real photos with the real models: matches, refusals and their reason codes."""

import copy
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sunflower.gate.face import FaceError, FacePipeline, Gallery, Reason


def _jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def _shrink(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (w, h) averaging pixel areas (Pillow's box filter)."""
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def _perspective(image: np.ndarray, corners_to: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` drawn with its corners (top-left, top-right, bottom-right, bottom-left) at
    `corners_to` on a black canvas of `size` (w, h)."""
    h, w = image.shape[:2]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(corners_to, [(0, 0), (w, 0), (w, h), (0, h)]):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    coeffs = np.linalg.solve(np.array(rows, np.float64), np.array(rhs, np.float64))
    return np.asarray(Image.fromarray(image).transform(size, Image.Transform.PERSPECTIVE, tuple(coeffs),
                                                       resample=Image.Resampling.BILINEAR))


def _refusal(pipeline, data: bytes) -> Reason:
    with pytest.raises(FaceError) as caught:
        pipeline.analyse(data)
    return caught.value.code


@pytest.fixture(scope="module")
def embeddings(pipeline, photo_bytes):
    names = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png", "grace_hopper.jpg"]
    return {name: pipeline.analyse(photo_bytes(name)).embedding for name in names}


def test_two_different_photos_of_the_same_person_match_above_the_threshold(pipeline, embeddings):
    for a, b in [("obama.jpg", "obama2.jpg"), ("obama.jpg", "obama3.jpg"), ("obama2.jpg", "obama3.jpg")]:
        score = float(embeddings[a] @ embeddings[b])
        assert score >= pipeline.threshold + 0.15, (a, b, score)


def test_different_people_stay_well_below_the_threshold(pipeline, embeddings):
    people = {"obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama", "biden.jpg": "biden",
              "astronaut.png": "collins", "grace_hopper.jpg": "hopper"}
    for a, person_a in people.items():
        for b, person_b in people.items():
            if person_a != person_b:
                score = float(embeddings[a] @ embeddings[b])
                assert score < pipeline.threshold - 0.15, (a, b, score)


def test_an_analysis_reports_box_landmarks_quality_and_liveness(pipeline, photo_bytes):
    analysis = pipeline.analyse(photo_bytes("obama.jpg"))
    assert analysis.embedding.shape == (512,) and analysis.embedding.dtype == np.float32
    assert np.linalg.norm(analysis.embedding) == pytest.approx(1.0, abs=1e-5)
    x1, y1, x2, y2 = analysis.box
    left_eye, right_eye, nose, left_mouth, right_mouth = analysis.landmarks
    # the landmarks sit inside the box, eyes above the nose above the mouth, left left of right
    assert x1 < left_eye[0] < right_eye[0] < x2 and left_mouth[0] < right_mouth[0]
    assert y1 < left_eye[1] < nose[1] < left_mouth[1] < y2
    assert analysis.quality.face_px > 200 and abs(analysis.quality.yaw_deg) < 10
    assert analysis.liveness is not None and analysis.liveness.live and analysis.liveness.score > 0.9
    assert analysis.faces_found == 1


def test_a_32_bit_png_with_alpha_is_analysed_like_its_jpeg(pipeline, photo_bytes, embeddings):
    analysis = pipeline.analyse(photo_bytes("32bit.png"))
    assert float(analysis.embedding @ embeddings["obama2.jpg"]) > 0.95


def test_the_gate_decision_names_the_resident_and_refuses_a_stranger(pipeline, embeddings):
    # given a community with three enrolled residents among 2000 other templates
    rng = np.random.default_rng(3)
    others = rng.standard_normal((2000, 512)).astype(np.float32)
    gallery = Gallery(others, [f"resident-{i}" for i in range(2000)])
    gallery = gallery.with_templates("obama", [embeddings["obama.jpg"]])
    gallery = gallery.with_templates("biden", [embeddings["biden.jpg"]])
    gallery = gallery.with_templates("collins", [embeddings["astronaut.png"]])
    # when Obama comes back in another photo, the gate opens for him
    decision = pipeline.decide(embeddings["obama3.jpg"], gallery)
    assert (decision.decision, decision.person_id, decision.reason) == ("accept", "obama", "MATCH")
    # and Grace Hopper, who is not enrolled, is refused without naming anyone
    stranger = pipeline.decide(embeddings["grace_hopper.jpg"], gallery)
    assert (stranger.decision, stranger.person_id, stranger.reason) == ("reject", None, "NO_MATCH")


def test_a_flat_colour_image_has_no_face(pipeline):
    assert _refusal(pipeline, _jpeg(np.full((480, 640, 3), (120, 140, 160), np.uint8))) is Reason.NO_FACE


def test_a_generated_landscape_has_no_face(pipeline):
    rng = np.random.default_rng(5)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    sky = np.stack([90 + yy * 0.2, 150 + yy * 0.1, 230 - yy * 0.1], -1)
    ground = np.stack([60 + 0 * yy, 120 + 0 * yy, 40 + 0 * yy], -1)
    ridge = (300 + 40 * np.sin(xx / 70.0) + 15 * np.sin(xx / 13.0))
    image = np.where((yy > ridge)[..., None], ground, sky) + rng.normal(0, 8, (h, w, 3))
    assert _refusal(pipeline, _jpeg(image.clip(0, 255).astype(np.uint8))) is Reason.NO_FACE


def test_a_real_photo_without_a_person_has_no_face(pipeline, photo_bytes):
    assert _refusal(pipeline, photo_bytes("coffee.png")) is Reason.NO_FACE
    assert _refusal(pipeline, photo_bytes("rocket.jpg")) is Reason.NO_FACE


def test_a_heavily_blurred_face_is_refused_as_blurred(pipeline, photo_bytes):
    # given Obama's photo blurred by sigma 12 px (the face is ~330 px tall: ~4 px at 112 px)
    blurred = _blur(_rgb(photo_bytes("obama.jpg")), 12)
    assert _refusal(pipeline, _jpeg(blurred)) is Reason.FACE_BLURRED


def test_a_slightly_soft_face_is_still_accepted(pipeline, photo_bytes, embeddings):
    soft = _blur(_rgb(photo_bytes("obama.jpg")), 2)
    analysis = pipeline.analyse(_jpeg(soft))
    assert float(analysis.embedding @ embeddings["obama2.jpg"]) >= pipeline.threshold


def test_a_tiny_face_is_refused_as_too_small(pipeline, photo_bytes):
    # given Obama's photo shrunk until his face is ~36 px tall (it is found, but too small to trust)
    rgb = _rgb(photo_bytes("obama.jpg"))
    scale = 36 / 331
    tiny = _shrink(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)))
    assert _refusal(pipeline, _jpeg(tiny)) is Reason.FACE_TOO_SMALL


def test_a_turned_head_is_refused_for_its_pose(pipeline, photo_bytes):
    # the cameraman looks through his camera, head turned ~45 degrees
    assert _refusal(pipeline, photo_bytes("camera.png")) is Reason.POSE_TOO_WIDE


def _head(pipeline, rgb: np.ndarray, height: int) -> np.ndarray:
    """The head and shoulders around the detected face, scaled to `height` pixels."""
    box = pipeline.detector.detect(rgb)[0].box
    x1, y1, x2, y2 = box
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, (y2 - y1) * 1.6
    top, left = int(max(cy - side / 2, 0)), int(max(cx - side / 2, 0))
    crop = rgb[top:int(cy + side / 2), left:int(cx + side / 2)]
    return _shrink(crop, (round(crop.shape[1] * height / crop.shape[0]), height))


def test_two_people_side_by_side_are_refused_as_multiple_faces(pipeline, photo_bytes):
    # given Obama and Biden side by side, equally large
    left = _head(pipeline, _rgb(photo_bytes("obama2.jpg")), 300)
    right = _head(pipeline, _rgb(photo_bytes("biden.jpg")), 300)
    canvas = np.hstack([left, right])
    assert _refusal(pipeline, _jpeg(canvas)) is Reason.MULTIPLE_FACES


def test_a_small_passer_by_behind_the_resident_does_not_block_the_check(pipeline, photo_bytes, embeddings):
    # given Biden large in the middle and Obama small in a corner behind him
    canvas = np.full((600, 800, 3), 90, np.uint8)
    big = _head(pipeline, _rgb(photo_bytes("biden.jpg")), 420)
    small = _head(pipeline, _rgb(photo_bytes("obama2.jpg")), 150)
    top, left = 120, (800 - big.shape[1]) // 2
    canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
    canvas[10:10 + small.shape[0], 10:10 + small.shape[1]] = small
    # then the check goes on with the most prominent face, Biden's
    analysis = pipeline.analyse(_jpeg(canvas))
    assert analysis.faces_found == 2
    assert float(analysis.embedding @ embeddings["biden.jpg"]) > 0.8


@pytest.fixture(scope="module")
def enforcing_pipeline(model_dir, manifest):
    strict = copy.deepcopy(manifest)
    strict["models"]["liveness"]["enforce"] = True
    return FacePipeline.from_manifest(model_dir, strict)


def test_with_liveness_enforced_a_printed_photo_held_to_the_camera_is_refused(enforcing_pipeline, photo_bytes):
    # given Grace Hopper's portrait as a print with a white border, held at an angle in a room:
    # an attack this single-frame model does catch (it sees the print's edges in its 2.7x crop).
    # It is an example, not a guarantee: screen replays and borderless prints pass (see manifest).
    photo = _rgb(photo_bytes("grace_hopper.jpg"))
    h, w = photo.shape[:2]
    rng = np.random.default_rng(0)
    room = (np.full((h * 2, w * 2, 3), (90, 80, 70)) + rng.integers(0, 20, (h * 2, w * 2, 3))).astype(np.uint8)
    printed = np.pad(photo, ((20, 20), (20, 20), (0, 0)), constant_values=245)  # a white border
    ph, pw = printed.shape[:2]
    held = np.array([[w * 0.5, h * 0.45], [w * 1.45, h * 0.5], [w * 1.5, h * 1.55], [w * 0.45, h * 1.5]])
    warped = _perspective(printed, held, (w * 2, h * 2))
    mask = _perspective(np.full((ph, pw), 255, np.uint8), held, (w * 2, h * 2)) >= 128
    room[mask] = warped[mask]
    scene = _shrink(_blur(room, 0.8), (w, h))
    assert _refusal(enforcing_pipeline, _jpeg(scene)) is Reason.SPOOF_SUSPECTED


def test_with_liveness_enforced_a_live_photo_still_passes(enforcing_pipeline, photo_bytes):
    assert enforcing_pipeline.analyse(photo_bytes("obama.jpg")).liveness.live


def test_bad_bytes_never_crash_the_pipeline(pipeline):
    for data in [b"", b"not an image", b"\xff\xd8\xff" + b"\0" * 100, b"\x89PNG\r\n\x1a\n" + b"\0" * 50]:
        with pytest.raises(FaceError):
            pipeline.analyse(data)


def test_damaged_photos_get_a_reason_code_or_an_analysis_never_a_crash(pipeline, photo_bytes):
    rng = np.random.default_rng(11)
    for i in range(60):
        data = bytearray(photo_bytes("grace_hopper.jpg" if i % 2 else "astronaut.png"))
        for _ in range(int(rng.integers(1, 20))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if i % 3 == 0:
            data = data[: int(rng.integers(1, len(data)))]
        try:
            pipeline.analyse(bytes(data))
        except FaceError:
            pass


def test_a_pipeline_without_models_says_how_to_get_them(tmp_path, manifest):
    with pytest.raises(FileNotFoundError, match="modelstore fetch"):
        FacePipeline.from_manifest(tmp_path, manifest)
