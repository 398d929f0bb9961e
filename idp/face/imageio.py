"""Safe image decoding: JPEG/PNG only, size limits checked before any pixel is decoded."""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from . import settings
from .reasons import (CORRUPT_IMAGE, EMPTY_IMAGE, IMAGE_TOO_LARGE, TOO_MANY_PIXELS, UNSUPPORTED_FORMAT,
                      FaceInputError)

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sniff_format(data: bytes) -> str | None:
    """'JPEG', 'PNG' or None, from the magic bytes only."""
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    return None


def decode_image(data: bytes, max_bytes: int = settings.MAX_IMAGE_BYTES,
                 max_pixels: int = settings.MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode JPEG/PNG bytes into an RGB uint8 array of shape (h, w, 3).

    Every rejection raises :class:`FaceInputError` with a reason code; nothing
    else escapes. The byte and pixel limits are checked before decoding, from
    the header alone, so a decompression bomb is never expanded.
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
