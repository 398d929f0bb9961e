"""A face frame's decoding work is bounded before decoding: JPEG scan bombs are refused in milliseconds.

A progressive JPEG may repeat refinement scans without limit; each scan makes the decoder walk every
block of the image again. 12 bytes per scan give 148,000 scans in 1.78 MB (under the 2 MB limit),
which kept a worker busy for minutes. The generator below builds such files from a real progressive
JPEG made by Pillow, as the attack did.
"""
from __future__ import annotations

import io
import re
import struct
import time

import numpy as np
import pytest
from PIL import Image

from idp.face import FaceInputError, decode_image
from idp.face import reasons as R

LIMIT_S = 0.050  # refused in under 50 ms (the decoder is never run)
_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")  # next marker after entropy-coded data


def _segments(data: bytes):
    """(marker, start, end) of each JPEG segment; a scan (SOS) includes its entropy-coded data."""
    out, pos = [], 2
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append((marker, pos, pos + 2))
            break
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xDA:
            end = _MARKER.search(data, end).start()
        out.append((marker, pos, end))
        pos = end
    return out


def progressive_base(size=(1920, 1080)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(buf, "JPEG", progressive=True, quality=75)
    return buf.getvalue()


def scan_bomb(scans: int, size=(1920, 1080)) -> bytes:
    """A valid progressive JPEG whose luma AC refinement scan (12 bytes) is repeated ``scans`` times."""
    data = progressive_base(size)
    segs = _segments(data)
    # The costliest cheap scan: one component (luma), AC band, successive-approximation refinement (Ah > 0).
    refinement = [data[s:e] for m, s, e in segs
                  if m == 0xDA and data[s + 4] == 1 and data[s + 5] == 1 and data[s + 7] > 0 and data[s + 9] >> 4]
    scan = min(refinement, key=len)
    eoi = segs[-1][1]
    return data[:eoi] + scan * scans + data[eoi:]


def _refused_fast(data: bytes) -> FaceInputError:
    t0 = time.perf_counter()
    with pytest.raises(FaceInputError) as info:
        decode_image(data, 2 * 1024 * 1024, 1920 * 1080)
    elapsed = time.perf_counter() - t0
    assert elapsed < LIMIT_S, f"took {elapsed * 1000:.0f} ms"
    return info.value


@pytest.mark.parametrize("scans", [1_000, 20_000, 148_000])
def test_scan_bombs_are_refused_before_decoding(scans):
    bomb = scan_bomb(scans)
    assert len(bomb) < 2 * 1024 * 1024  # 12 bytes a scan: 20,000 in 252 KB, 148,000 in 1.79 MB
    err = _refused_fast(bomb)
    assert err.reason == R.IMAGE_TOO_COMPLEX and "scans" in err.message


def test_a_few_extra_scans_are_refused_and_ordinary_progressive_jpegs_still_decode():
    from idp.face.imageio import MAX_PROGRESSIVE_SCANS
    ordinary = progressive_base((640, 480))
    assert decode_image(ordinary, 2 * 1024 * 1024, 1920 * 1080).shape == (480, 640, 3)
    base_scans = sum(1 for m, _, _ in _segments(ordinary) if m == 0xDA)
    assert base_scans <= MAX_PROGRESSIVE_SCANS  # libjpeg's default progression (10 scans) fits
    err = _refused_fast(scan_bomb(MAX_PROGRESSIVE_SCANS - base_scans + 1, (640, 480)))
    assert err.reason == R.IMAGE_TOO_COMPLEX


def test_jpeg_processes_other_than_baseline_extended_and_progressive_are_refused():
    base = bytearray(progressive_base((64, 64)))
    sof = base.index(b"\xff\xc2")
    for marker in (0xC3, 0xC5, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):  # lossless, hierarchical, arithmetic
        data = bytes(base[:sof + 1]) + bytes([marker]) + bytes(base[sof + 2:])
        assert _refused_fast(data).reason == R.UNSUPPORTED_FORMAT


def test_a_flood_of_header_segments_is_refused():
    base = progressive_base((64, 64))
    comment = b"\xff\xfe\x00\x04hi"  # an 6-byte COM segment
    data = base[:2] + comment * 300_000 + base[2:]
    assert len(data) < 2 * 1024 * 1024
    assert _refused_fast(data).reason == R.IMAGE_TOO_COMPLEX


def test_a_png_split_into_very_many_chunks_is_refused():
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "PNG")
    png = buf.getvalue()
    ihdr_end = 8 + 25
    chunk = struct.pack(">I", 0) + b"tEXt" + struct.pack(">I", __import__("zlib").crc32(b"tEXt"))
    data = png[:ihdr_end] + chunk * 150_000 + png[ihdr_end:]
    assert len(data) < 2 * 1024 * 1024
    assert _refused_fast(data).reason == R.IMAGE_TOO_COMPLEX


def _png_with_chunks(*chunks: tuple[bytes, bytes]) -> bytes:
    import zlib
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "PNG")
    png, ihdr_end = buf.getvalue(), 8 + 25
    body = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in chunks)
    return png[:ihdr_end] + body + png[ihdr_end:]


@pytest.mark.parametrize("kind", [b"zTXt", b"iTXt"])
def test_compressed_text_that_inflates_a_thousandfold_is_refused(kind):
    """About 1 KB of zlib per MB of text: 900 such chunks asked the decoder to inflate 64 MB (about 0.2 s)."""
    import zlib
    header = b"k\0\0" if kind == b"zTXt" else b"k\0\1\0\0\0"
    data = _png_with_chunks(*[(kind, header + zlib.compress(b"\0" * 1_000_000, 9))] * 900)
    assert len(data) < 2 * 1024 * 1024
    assert _refused_fast(data).reason == R.IMAGE_TOO_COMPLEX


def test_itxt_with_any_compression_flag_counts_as_compressed():
    """The decoder inflates an iTXt whose compression flag is anything but 0 (2, 255: not only the 1 the spec
    names), so the limit counts them all: with flag 2 the 900 chunks were inflated up to the decoder's own limit."""
    import zlib
    data = _png_with_chunks(*[(b"iTXt", b"k\0\2\0\0\0" + zlib.compress(b"\0" * 1_000_000, 9))] * 900)
    assert _refused_fast(data).reason == R.IMAGE_TOO_COMPLEX


def test_more_than_one_icc_profile_is_refused():
    """An ICC profile (``iCCP``) is compressed too, and the decoder inflates every one it meets (up to 1 MB
    each, no limit in all): 1000 profiles of 1 KB of zlib each (1 MB) kept a thread busy for seconds, then
    decoded. The PNG specification allows one; one (the decoder inflates at most 1 MB of it) still decodes."""
    import zlib
    bomb = (b"iCCP", b"icc\0\0" + zlib.compress(b"\0" * (1024 * 1024 - 1), 9))
    assert _refused_fast(_png_with_chunks(*[bomb] * 1000)).reason == R.IMAGE_TOO_COMPLEX
    assert _refused_fast(_png_with_chunks(bomb, bomb)).reason == R.IMAGE_TOO_COMPLEX
    buf = io.BytesIO()
    from PIL import ImageCms
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buf, "PNG", icc_profile=profile)
    assert decode_image(buf.getvalue()).shape == (48, 64, 3)


def test_a_png_with_ordinary_metadata_still_decodes():
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "x" * 4000, zip=True)
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta/>" * 300, zip=True)
    info.add_text("Software", "camera")
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buf, "PNG", pnginfo=info)
    assert decode_image(buf.getvalue()).shape == (48, 64, 3)


def test_a_compressed_text_chunk_that_is_not_zlib_is_refused_as_corrupt():
    data = _png_with_chunks((b"zTXt", b"k\0\0" + b"not zlib at all"))
    assert _refused_fast(data).reason == R.CORRUPT_IMAGE


# --- through the real frame endpoint ---------------------------------------------------------------

def test_frame_endpoint_refuses_scan_bombs_with_a_clear_400(make_app, new_user):
    from faceweb.conftest import Browser
    app = make_app()
    new_user("mallory")
    b = Browser(app)
    b.login("mallory")
    b.consent()
    cap = b.start("enroll").get_json()
    for scans in (20_000, 148_000):
        bomb = scan_bomb(scans)
        t0 = time.perf_counter()
        r = b.frame(cap, bomb)
        elapsed = time.perf_counter() - t0
        assert r.status_code == 400, (r.status_code, r.get_data()[:300])
        body = r.get_json()
        assert body["error"] == R.IMAGE_TOO_COMPLEX and body["message"]
        assert elapsed < 1.0, f"the request took {elapsed * 1000:.0f} ms"  # DB round trips included
    from idp import get_db
    assert get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})["count"] == 0


from faceweb.conftest import (app, cheap_password_hashing, engine, make_app,  # noqa: F401, E402
                              new_user)
