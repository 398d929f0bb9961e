"""Per-frame quality measures and the checks that turn them into reason codes."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from . import settings
from .reasons import (BLURRY, FACE_CUT_OFF, FACE_TOO_SMALL, HEAD_TILTED, HEAD_TURNED, TOO_BRIGHT, TOO_DARK)

_LUMA = np.asarray([0.299, 0.587, 0.114], np.float32)


def _clip_box(box, width, height):
    x, y, w, h = box
    x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
    x1, y1 = min(width, int(math.ceil(x + w))), min(height, int(math.ceil(y + h)))
    return x0, y0, x1, y1


def crop_face(image_rgb: np.ndarray, box, margin: float = settings.CROP_MARGIN,
              size: int = settings.INPUT_SIZE) -> np.ndarray:
    """The model input: box grown by ``margin`` of its size on each side, clipped, resized to size x size."""
    h, w = image_rgb.shape[:2]
    x, y, bw, bh = box
    grown = (x - margin * bw, y - margin * bh, bw * (1 + 2 * margin), bh * (1 + 2 * margin))
    x0, y0, x1, y1 = _clip_box(grown, w, h)
    if x1 <= x0 or y1 <= y0:
        x0, y0, x1, y1 = 0, 0, w, h
    crop = Image.fromarray(image_rgb[y0:y1, x0:x1])
    return np.asarray(crop.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def _laplacian_variance(grey: np.ndarray) -> float:
    g = grey.astype(np.float32)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.var())


def measure(image_rgb: np.ndarray, box, landmarks) -> dict:
    """Quality metrics of one face: brightness, sharpness, size, position and pose."""
    h, w = image_rgb.shape[:2]
    x, y, bw, bh = box
    x0, y0, x1, y1 = _clip_box(box, w, h)
    face = image_rgb[y0:y1, x0:x1] if (x1 > x0 and y1 > y0) else image_rgb
    grey = face.astype(np.float32) @ _LUMA
    brightness = float(grey.mean())
    grey96 = np.asarray(Image.fromarray(grey.clip(0, 255).astype(np.uint8)).resize((96, 96), Image.BILINEAR))
    sharpness = _laplacian_variance(grey96)
    overflow_x = (max(0.0, -x) + max(0.0, x + bw - w)) / max(bw, 1e-6)
    overflow_y = (max(0.0, -y) + max(0.0, y + bh - h)) / max(bh, 1e-6)
    landmarks_inside = all(0 <= px < w and 0 <= py < h for px, py in (landmarks or {}).values())
    yaw = roll = 0.0
    if landmarks and {"left_eye", "right_eye", "nose"} <= set(landmarks):
        le, re_, nose = (np.asarray(landmarks[k], np.float64) for k in ("left_eye", "right_eye", "nose"))
        eye = re_ - le
        dist = float(np.hypot(*eye))
        if dist > 1e-6:
            u = eye / dist
            yaw = float(np.dot(nose - (le + re_) / 2.0, u) / dist)
            roll = float(math.degrees(math.atan2(eye[1], eye[0])))
    return {
        "brightness": round(brightness, 2),
        "sharpness": round(sharpness, 2),
        "face_px": round(float(min(bw, bh)), 1),
        "face_ratio": round(float(bw / max(w, 1)), 4),
        "out_of_frame": round(float(max(overflow_x, overflow_y)), 4),
        "landmarks_inside": landmarks_inside,
        "yaw": round(yaw, 4),
        "roll": round(roll, 2),
    }


def fully_in_frame(box, landmarks, width: int, height: int) -> bool:
    """The same rule as the FACE_CUT_OFF check: box overflow within MAX_OUT_OF_FRAME, every landmark inside."""
    x, y, bw, bh = box
    overflow_x = (max(0.0, -x) + max(0.0, x + bw - width)) / max(bw, 1e-6)
    overflow_y = (max(0.0, -y) + max(0.0, y + bh - height)) / max(bh, 1e-6)
    inside = all(0 <= px < width and 0 <= py < height for px, py in (landmarks or {}).values())
    return max(overflow_x, overflow_y) <= settings.MAX_OUT_OF_FRAME and inside


def check(metrics: dict) -> list[str]:
    """Reason codes for the metrics that fail their threshold (settings.py), most actionable first."""
    reasons = []
    if metrics["out_of_frame"] > settings.MAX_OUT_OF_FRAME or not metrics["landmarks_inside"]:
        reasons.append(FACE_CUT_OFF)
    if metrics["face_px"] < settings.MIN_FACE_PX or metrics["face_ratio"] < settings.MIN_FACE_RATIO:
        reasons.append(FACE_TOO_SMALL)
    if metrics["brightness"] < settings.MIN_BRIGHTNESS:
        reasons.append(TOO_DARK)
    elif metrics["brightness"] > settings.MAX_BRIGHTNESS:
        reasons.append(TOO_BRIGHT)
    if abs(metrics["yaw"]) > settings.MAX_ABS_YAW:
        reasons.append(HEAD_TURNED)
    if abs(metrics["roll"]) > settings.MAX_ABS_ROLL:
        reasons.append(HEAD_TILTED)
    if metrics["sharpness"] < settings.MIN_SHARPNESS:
        reasons.append(BLURRY)
    return reasons
