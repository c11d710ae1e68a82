"""Decoding untrusted bytes: every refusal has its code, and limits are checked before pixels."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from sunflower.gate.face.decode import decode_image, sniff
from sunflower.gate.face.errors import FaceError, Reason


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _photo_like(width=320, height=240) -> Image.Image:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (width + height)], axis=-1)
    noisy = base + rng.normal(0, 12, base.shape)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGB")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with one tiny IDAT: a decompression-bomb shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def no_pixel_decoding(monkeypatch):
    """Fail the test if anything asks Pillow to decode pixel data."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def _code(data: bytes, **kwargs) -> Reason:
    with pytest.raises(FaceError) as caught:
        decode_image(data, **kwargs)
    return caught.value.code


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_each_accepted_format_decodes_to_rgb_uint8(fmt):
    # given a small photo-like image in each accepted format
    data = _encode(_photo_like(), fmt)
    # when it is decoded
    image = decode_image(data)
    # then it is an H x W x 3 uint8 array of the declared size
    assert image.format == fmt
    assert image.rgb.shape == (240, 320, 3)
    assert image.rgb.dtype == np.uint8


def test_a_transparent_png_is_flattened_onto_white():
    rgba = Image.new("RGBA", (40, 30), (10, 20, 30, 0))
    image = decode_image(_encode(rgba, "PNG"))
    assert image.rgb.shape == (30, 40, 3)
    assert (image.rgb == 255).all()


def test_the_exif_rotation_a_phone_writes_is_applied():
    # given a 320x240 JPEG whose EXIF says "rotate 90 degrees"
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(_photo_like(), "JPEG", exif=exif.tobytes())
    # then the decoded pixels are upright: 240 wide, 320 tall
    assert decode_image(data).rgb.shape == (320, 240, 3)


@pytest.mark.parametrize("data", [
    b"",
    b"hello, I am a text file\n" * 20,
    b"%PDF-1.7\n" + b"0" * 200,
    b"GIF89a" + b"\0" * 200,  # a real format, but not one a gate camera sends
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",
])
def test_what_is_not_an_image_is_refused_as_not_an_image(data):
    assert _code(data) is Reason.NOT_AN_IMAGE


def test_a_truncated_jpeg_is_refused_as_truncated():
    # given a real JPEG cut off after 60% of its bytes
    data = _encode(_photo_like(), "JPEG", quality=90)
    # then the decoder reports it truncated instead of returning half a grey picture
    assert _code(data[: int(len(data) * 0.6)]) is Reason.TRUNCATED_IMAGE


def test_a_truncated_png_is_refused_as_truncated():
    data = _encode(_photo_like(), "PNG")
    assert _code(data[: len(data) // 2]) is Reason.TRUNCATED_IMAGE


def test_a_jpeg_cut_inside_its_header_is_refused():
    data = _encode(_photo_like(), "JPEG")
    assert _code(data[:40]) in (Reason.TRUNCATED_IMAGE, Reason.NOT_AN_IMAGE)


def test_a_jpeg_with_garbage_in_place_of_its_scan_is_refused():
    data = bytearray(_encode(_photo_like(), "JPEG"))
    start = data.index(b"\xff\xda")  # start of scan
    data[start + 20:] = bytes(np.random.default_rng(1).integers(0, 256, len(data) - start - 20, dtype=np.uint8))
    assert _code(bytes(data)) in (Reason.TRUNCATED_IMAGE, Reason.NOT_AN_IMAGE)


def test_a_png_with_a_damaged_data_stream_is_refused_as_not_an_image():
    # given a PNG with one byte flipped in the middle of its compressed pixels
    data = bytearray(_encode(_photo_like(), "PNG"))
    data[len(data) // 2] ^= 0xFF
    # then it is corrupt, not merely short
    assert _code(bytes(data)) is Reason.NOT_AN_IMAGE


def test_a_png_claiming_30000_by_30000_pixels_is_refused_from_its_header(no_pixel_decoding):
    # given a 200-byte PNG whose header declares 900 megapixels (a decompression bomb)
    data = _png_header_only(30000, 30000)
    assert len(data) < 200
    # then it is refused as too large, and no pixel is ever decoded (the fixture checks)
    assert _code(data) is Reason.IMAGE_TOO_LARGE


def test_an_image_over_25_megapixels_is_refused_even_below_pillows_own_limit(no_pixel_decoding):
    # 6000 x 5000 = 30 MP: Pillow alone would decode it
    assert _code(_png_header_only(6000, 5000)) is Reason.IMAGE_TOO_LARGE


def test_more_than_10_megabytes_is_refused_before_anything_is_parsed(no_pixel_decoding):
    data = b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024)
    assert _code(data) is Reason.IMAGE_TOO_LARGE


def test_a_big_jpeg_is_decoded_at_a_reduced_scale():
    # given a 4000 x 3000 JPEG (12 MP, a phone photo)
    data = _encode(_photo_like(4000, 3000), "JPEG", quality=80)
    image = decode_image(data)
    # then libjpeg's DCT scaling gives at least 1024 px on the long side, not all 12 MP
    assert image.original_size == (4000, 3000)
    assert 1024 <= image.rgb.shape[1] < 4000
    assert image.scale == image.rgb.shape[1] / 4000


def test_sniffing_reads_only_magic_numbers():
    assert sniff(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ") == "WEBP"
    assert sniff(b"RIFF\0\0\0\0WAVEfmt ") is None
    assert sniff(b"BM") == "BMP"
    assert sniff(b"") is None


def test_a_face_error_carries_a_stable_code_and_a_message():
    error = FaceError("NO_FACE", "no face was found")
    assert error.code is Reason.NO_FACE
    assert str(error) == "NO_FACE: no face was found"
    assert error.message == "no face was found"
