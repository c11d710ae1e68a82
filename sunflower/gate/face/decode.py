"""Untrusted bytes -> RGB pixels, refusing anything that is not a plain photo of sane size.

Order matters: the byte count, the magic number and the header's dimensions are checked before a
single pixel is decoded, so a decompression bomb costs a header parse, not gigabytes of memory.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sunflower.gate.face.errors import FaceError, Reason

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 25_000_000
# JPEGs at least twice this size on the long side are decoded at 1/2, 1/4 or 1/8 scale straight
# from the DCT (libjpeg's "draft" mode, which never goes below this size): a 12 MP phone photo
# decodes in a fraction of the time and a resident's face is still far larger than the 112 px the
# embedder sees. A 1080p gate frame is decoded whole.
DECODE_LONG_SIDE = 1024

_MAGIC: tuple[tuple[str, bytes, int], ...] = (
    ("JPEG", b"\xff\xd8\xff", 0),
    ("PNG", b"\x89PNG\r\n\x1a\n", 0),
    ("WEBP", b"WEBP", 8),  # RIFF....WEBP
    ("BMP", b"BM", 0),
)


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # H x W x 3, uint8, RGB
    format: str
    original_size: tuple[int, int]  # (width, height) as the header declared it
    scale: float  # decoded size / original size (draft decoding of big JPEGs)


def sniff(data: bytes) -> str | None:
    """The container format from the magic number, or None."""
    for name, magic, offset in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if name == "WEBP" and data[:4] != b"RIFF":
                continue
            return name
    return None


def decode_image(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    decode_long_side: int | None = DECODE_LONG_SIDE,
) -> DecodedImage:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FaceError(Reason.NOT_AN_IMAGE, "expected the image's bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise FaceError(Reason.IMAGE_TOO_LARGE, f"{len(data)} bytes; at most {max_bytes} are accepted")
    fmt = sniff(data)
    if fmt is None:
        raise FaceError(Reason.NOT_AN_IMAGE, "not a JPEG, PNG, WebP or BMP image")
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past 2x its own limit raises) on huge headers; we decide ourselves.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])  # lazy: reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FaceError(Reason.IMAGE_TOO_LARGE, "the header declares too many pixels") from None
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError) as exc:
        if len(data) < 64:
            raise FaceError(Reason.TRUNCATED_IMAGE, "the image ends inside its header") from exc
        raise FaceError(Reason.NOT_AN_IMAGE, f"unreadable {fmt} header") from exc

    width, height = image.size
    if width <= 0 or height <= 0:
        raise FaceError(Reason.NOT_AN_IMAGE, "the header declares an empty image")
    if width * height > max_pixels:
        raise FaceError(
            Reason.IMAGE_TOO_LARGE,
            f"{width}x{height} is {width * height / 1e6:.1f} megapixels; at most {max_pixels / 1e6:.0f}",
        )
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # animated WebP: the first frame is the photo

    if fmt == "JPEG" and decode_long_side and max(width, height) > decode_long_side:
        shrink = max(width, height) / decode_long_side
        image.draft("RGB", (int(width / shrink), int(height / shrink)))

    try:
        image.load()  # LOAD_TRUNCATED_IMAGES stays False: a short file raises here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FaceError(Reason.IMAGE_TOO_LARGE, "the image declares too many pixels") from None
    except EOFError as exc:
        raise FaceError(Reason.TRUNCATED_IMAGE, "the image data ends early") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc).lower():  # Pillow's words for data that stops short
            raise FaceError(Reason.TRUNCATED_IMAGE, "the image data ends early") from exc
        raise FaceError(Reason.NOT_AN_IMAGE, f"the {fmt} data is corrupt") from exc

    scale = image.size[0] / width
    # Phones store the rotation in EXIF; a broken EXIF block must not refuse a good photo.
    with contextlib.suppress(Exception):
        image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        image = _to_rgb(image)
    return DecodedImage(np.asarray(image, dtype=np.uint8), fmt, (width, height), scale)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, as a browser shows them, not black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / top)).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")
