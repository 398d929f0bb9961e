"""Input limits: only JPEG/PNG, byte and pixel limits before decoding, clean errors for everything."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from idp.face import FaceInputError, decode_image
from idp.face import reasons as R

from .conftest import to_jpeg, to_png


def _reason(data, **kw):
    with pytest.raises(FaceInputError) as info:
        decode_image(data, **{"max_bytes": 2_000_000, "max_pixels": 1920 * 1080, **kw})
    assert info.value.message
    return info.value.reason


def test_jpeg_and_png_decode_to_rgb():
    arr = (np.arange(30 * 40 * 3) % 251).astype(np.uint8).reshape(30, 40, 3)
    out = decode_image(to_png(Image.fromarray(arr)), 10**6, 10**6)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8 and np.array_equal(out, arr)
    assert decode_image(to_jpeg(arr), 10**6, 10**6).shape == (30, 40, 3)


def test_grayscale_and_rgba_become_rgb():
    grey = Image.fromarray(np.full((20, 20), 77, np.uint8), "L")
    out = decode_image(to_png(grey), 10**6, 10**6)
    assert out.shape == (20, 20, 3) and (out == 77).all()
    rgba = Image.new("RGBA", (20, 20), (10, 20, 30, 255))
    out = decode_image(to_png(rgba), 10**6, 10**6)
    assert out.shape == (20, 20, 3) and tuple(out[0, 0]) == (10, 20, 30)
    grey_jpeg = io.BytesIO()
    grey.save(grey_jpeg, "JPEG")
    assert decode_image(grey_jpeg.getvalue(), 10**6, 10**6).shape == (20, 20, 3)


@pytest.mark.parametrize("data,reason", [
    (b"", R.EMPTY_IMAGE),
    (b"hello, this is not an image at all", R.UNSUPPORTED_FORMAT),
    (b"GIF89a" + b"\0" * 100, R.UNSUPPORTED_FORMAT),
    (b"\xff\xd8\xff\xe0" + b"\0" * 100, R.CORRUPT_IMAGE),  # JPEG magic, garbage after
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, R.CORRUPT_IMAGE),
])
def test_bad_inputs_are_rejected_cleanly(data, reason):
    assert _reason(data) == reason


def test_other_formats_rejected():
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "BMP")
    assert _reason(buf.getvalue()) == R.UNSUPPORTED_FORMAT
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "WEBP")
    assert _reason(buf.getvalue()) == R.UNSUPPORTED_FORMAT


def test_truncated_jpeg_is_corrupt():
    data = to_jpeg(np.random.RandomState(1).randint(0, 255, (200, 200, 3)).astype(np.uint8))
    assert _reason(data[: len(data) // 2]) == R.CORRUPT_IMAGE


def test_oversized_file_rejected_before_decoding():
    data = to_jpeg(np.zeros((100, 100, 3), np.uint8))
    assert _reason(data, max_bytes=len(data) - 1) == R.IMAGE_TOO_LARGE


def test_too_many_pixels():
    data = to_png(Image.new("RGB", (300, 200)))
    assert _reason(data, max_pixels=300 * 200 - 1) == R.TOO_MANY_PIXELS


def test_decompression_bomb_rejected_from_header():
    # A real bomb: 1-bit 30000x30000 PNG, a few KB on disk, 900 Mpx once decoded.
    img = Image.new("1", (30000, 30000))
    bomb = to_png(img)
    assert len(bomb) < 200_000
    assert _reason(bomb) == R.TOO_MANY_PIXELS
    # A forged header claiming 100000x100000 over a tiny body: rejected without decoding either.
    small = to_png(Image.new("RGB", (4, 4)))
    ihdr = struct.pack(">II", 100000, 100000) + small[24:29]
    forged = small[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + small[33:]
    assert _reason(forged) == R.TOO_MANY_PIXELS
