"""Safe image decoding: JPEG/PNG only; size and decoding-cost limits checked before any pixel is decoded.

Bytes and pixels alone do not bound the work of a decoder: a progressive JPEG may repeat scans
without limit (12 bytes each, every one a pass over all blocks of the image), and a file of
thousands of tiny segments or chunks is walked one by one. So the file's structure is read first
(:func:`check_structure`, a few milliseconds even for a hostile 2 MB file) and refused unless it is
one of the shapes real encoders produce:

- JPEG: baseline, extended-sequential or progressive Huffman coding only (what browsers, cameras and
  Pillow write; arithmetic, lossless and hierarchical JPEG are refused). A sequential file has at
  most one scan per component; a progressive one at most ``MAX_PROGRESSIVE_SCANS`` scans.
- PNG: at most ``MAX_PNG_CHUNKS`` chunks, compressed text (``zTXt``, compressed ``iTXt``) inflating to at
  most ``MAX_PNG_TEXT`` bytes in all (checked by inflating at most that much) and at most one ICC profile
  (``iCCP``, as the PNG specification says: the decoder inflates each up to 1 MB, with no limit in all);
  inflating the image data and unfiltering are then linear in the bytes and the (already limited) pixels.
"""
from __future__ import annotations

import io
import re
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps

from . import settings
from .reasons import (CORRUPT_IMAGE, EMPTY_IMAGE, IMAGE_TOO_COMPLEX, IMAGE_TOO_LARGE, TOO_MANY_PIXELS,
                      UNSUPPORTED_FORMAT, FaceInputError)

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Scans a progressive JPEG may have. libjpeg's (and so Pillow's) default progression has 10 scans for
# colour and 6 for grey; mozjpeg's optimised scripts and camera firmware stay near 10. Each extra scan
# can cost a full pass over the image (about 1.3 ms at 1920x1080 here), so 16 keeps the worst case
# within tens of milliseconds while every real progressive file fits. Canvas frames are baseline.
MAX_PROGRESSIVE_SCANS = 16
# Marker segments of one JPEG (tables, APPn/COM, SOF, scans...). A canvas frame has about 8, a camera
# photo with EXIF/XMP/ICC and a progressive script about 40.
MAX_JPEG_SEGMENTS = 128
# Chunks of one PNG. Encoders split the image data into 8-64 KB IDAT chunks: a 2 MB file has at most a
# few hundred; each chunk costs Pillow a Python round.
MAX_PNG_CHUNKS = 1024
# Inflated bytes of a PNG's compressed text chunks, all together. zlib expands about 1000:1, so a 2 MB file of
# zTXt chunks asks the decoder to inflate up to its own 64 MB text limit (about 0.2 s of a thread, for a file
# that then fails). Real files carry a few KB (XMP, an EXIF profile); a camera frame carries none.
MAX_PNG_TEXT = 256 * 1024

_SOF_ALLOWED = {0xC0, 0xC1, 0xC2}  # baseline, extended sequential, progressive (Huffman)
_SOF_REFUSED = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # lossless, hierarchical, arithmetic
_STANDALONE = set(range(0xD0, 0xD8)) | {0x01}  # RSTn, TEM: markers without a length
# The marker that ends a scan's entropy-coded data (0xFF00 is a stuffed byte, RSTn stay inside the scan).
_SCAN_END = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def sniff_format(data: bytes) -> str | None:
    """'JPEG', 'PNG' or None, from the magic bytes only."""
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    return None


def check_structure(data: bytes, fmt: str) -> None:
    """Refuse (FaceInputError) a JPEG/PNG whose decoding cost is not bounded by its bytes and pixels.

    Reads markers/chunk headers only and stops at the first limit crossed, so its own cost is a few
    milliseconds whatever the file. A truncated file passes here and is judged by the decoder."""
    if fmt == "JPEG":
        _check_jpeg(data)
    elif fmt == "PNG":
        _check_png(data)


def _check_jpeg(data: bytes) -> None:
    n, pos = len(data), 2
    segments = scans = 0
    components = progressive = None
    while pos < n:
        if data[pos] != 0xFF:
            # libjpeg would skip the garbage looking for a marker; nothing a real encoder writes.
            raise FaceInputError(CORRUPT_IMAGE, "The image could not be read (bytes outside any JPEG segment).")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return
        marker = data[pos]
        pos += 1
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise FaceInputError(IMAGE_TOO_COMPLEX, f"The image has too many JPEG segments "
                                                    f"(limit {MAX_JPEG_SEGMENTS}). Send an ordinary JPEG or PNG.")
        if marker == 0xD9:  # EOI: the decoder stops here
            return
        if marker == 0xD8 or marker == 0x00:
            raise FaceInputError(CORRUPT_IMAGE)
        if marker in _STANDALONE:
            continue
        if marker in _SOF_REFUSED:
            raise FaceInputError(UNSUPPORTED_FORMAT, "Only baseline and progressive JPEG images are accepted.")
        if pos + 2 > n:
            return
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2:
            raise FaceInputError(CORRUPT_IMAGE)
        if marker in _SOF_ALLOWED:
            if components is not None or pos + 8 > n:
                raise FaceInputError(CORRUPT_IMAGE)
            components, progressive = data[pos + 7], marker == 0xC2
        elif marker == 0xDA:  # SOS: a scan, followed by its entropy-coded data
            scans += 1
            if components is None:
                raise FaceInputError(CORRUPT_IMAGE)
            limit = MAX_PROGRESSIVE_SCANS if progressive else components
            if scans > limit:
                kind = "progressive" if progressive else "sequential"
                raise FaceInputError(IMAGE_TOO_COMPLEX, f"The image has too many JPEG scans for a {kind} JPEG "
                                                        f"(limit {limit}). Send an ordinary JPEG or PNG.")
            end = _SCAN_END.search(data, pos + length)
            if end is None:
                return
            pos = end.start()
            continue
        pos += length


def _check_png(data: bytes) -> None:
    n, pos, chunks, text_budget, profiles = len(data), len(_PNG_MAGIC), 0, MAX_PNG_TEXT, 0
    while pos + 8 <= n:
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise FaceInputError(IMAGE_TOO_COMPLEX, f"The image has too many PNG chunks (limit {MAX_PNG_CHUNKS}). "
                                                    "Send an ordinary JPEG or PNG.")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IEND":
            return
        if kind == b"iCCP":
            profiles += 1
            if profiles > 1:
                raise FaceInputError(IMAGE_TOO_COMPLEX, "The image carries more than one colour profile. "
                                                        "Send an ordinary JPEG or PNG.")
        elif kind in (b"zTXt", b"iTXt"):
            text_budget -= _inflated_text(kind, data[pos + 8:pos + 8 + length], text_budget)
            if text_budget < 0:
                raise FaceInputError(IMAGE_TOO_COMPLEX, "The image carries too much compressed text. "
                                                        "Send an ordinary JPEG or PNG.")
        pos += 12 + length


def _inflated_text(kind: bytes, body: bytes, budget: int) -> int:
    """Bytes one text chunk inflates to, counted up to ``budget + 1`` (so never more work than that); 0 for
    uncompressed text (an iTXt whose compression flag is 0: the decoder inflates one with any other flag, not
    only 1). A chunk the decoder could not read either is refused as corrupt."""
    keyword_end = body.find(b"\0")
    if keyword_end < 0:
        raise FaceInputError(CORRUPT_IMAGE)
    if kind == b"zTXt":
        compressed = body[keyword_end + 2:]
    else:  # iTXt: keyword, compression flag and method, language tag, translated keyword, text
        if body[keyword_end + 1:keyword_end + 2] in (b"", b"\0"):
            return 0
        language_end = body.find(b"\0", keyword_end + 3)
        translated_end = body.find(b"\0", language_end + 1) if language_end >= 0 else -1
        if translated_end < 0:
            raise FaceInputError(CORRUPT_IMAGE)
        compressed = body[translated_end + 1:]
    try:
        return len(zlib.decompressobj().decompress(compressed, budget + 1))
    except zlib.error:
        raise FaceInputError(CORRUPT_IMAGE) from None


def decode_image(data: bytes, max_bytes: int = settings.MAX_IMAGE_BYTES,
                 max_pixels: int = settings.MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode JPEG/PNG bytes into an RGB uint8 array of shape (h, w, 3).

    Every rejection raises :class:`FaceInputError` with a reason code; nothing
    else escapes. The byte and pixel limits are checked before decoding, from
    the header alone, so a decompression bomb is never expanded, and the file's structure is
    checked first (:func:`check_structure`), so its decoding work is bounded too.
    """
    if not data:
        raise FaceInputError(EMPTY_IMAGE)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FaceInputError(UNSUPPORTED_FORMAT, "The image must be given as bytes.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise FaceInputError(IMAGE_TOO_LARGE, f"The image file is too large (limit {max_bytes} bytes).")
    fmt = sniff_format(data)
    if fmt is None:
        raise FaceInputError(UNSUPPORTED_FORMAT)
    check_structure(data, fmt)
    try:
        with warnings.catch_warnings():
            # PIL's own bomb check warns/raises on its global limit; ours is stricter and comes first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])  # reads the header only
            width, height = img.size
            if width <= 0 or height <= 0:
                raise FaceInputError(CORRUPT_IMAGE)
            if width * height > max_pixels:
                raise FaceInputError(TOO_MANY_PIXELS,
                                     f"The image has too many pixels ({width}x{height}; limit {max_pixels}).")
            if getattr(img, "n_frames", 1) > 1:  # animated PNG: only the first frame is used
                img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img) if fmt == "JPEG" else img
            if img.mode != "RGB":
                if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                    # Flatten transparency onto white rather than onto whatever the hidden pixels hold.
                    rgba = img.convert("RGBA")
                    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(background, rgba)
                elif img.mode.startswith("I;16") or img.mode == "I":
                    arr16 = np.asarray(img, dtype=np.float64)
                    img = Image.fromarray((arr16 / max(arr16.max(), 1.0) * 255.0).astype(np.uint8))
                img = img.convert("RGB")
            arr = np.asarray(img, dtype=np.uint8)
    except FaceInputError:
        raise
    except (Image.DecompressionBombError, MemoryError):
        raise FaceInputError(TOO_MANY_PIXELS) from None
    except Exception:  # noqa: BLE001 - any decoder failure is a corrupt image, never a crash
        raise FaceInputError(CORRUPT_IMAGE) from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] * arr.shape[1] > max_pixels:
        raise FaceInputError(CORRUPT_IMAGE)
    return np.ascontiguousarray(arr)


def ensure_rgb(image) -> np.ndarray:
    """Accept an RGB/grey/RGBA array (or bytes) and return an RGB uint8 array."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise FaceInputError(CORRUPT_IMAGE, "The image array must have shape (h, w, 3).")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)
