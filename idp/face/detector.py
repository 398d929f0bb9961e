"""Face detection with MTCNN (mtcnn 1.0.0), with its ``min_face_size`` bug fixed.

mtcnn 1.0.0 computes the number of pyramid levels as if ``min_face_size`` were
20 and then starts the pyramid at 12 / min_face_size. With any other value the
extra levels shrink the image below PNet's 12x12 input and ``detect_faces``
returns nothing. :func:`scale_pyramid` is the original MTCNN rule (keep
shrinking while ``min(h, w) * scale >= 12``); :class:`FixedStagePNet` uses it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import settings

PNET_INPUT = 12


def scale_pyramid(width: int, height: int, min_face_size: float, scale_factor: float = 0.709,
                  min_size: int = PNET_INPUT) -> np.ndarray:
    """Scales for PNet: start at min_size/min_face_size, stop once min(h, w) * scale < min_size."""
    scales = []
    scale = min_size / float(min_face_size)
    min_dim = min(width, height)
    while min_dim * scale >= min_size:
        scales.append(scale)
        scale *= scale_factor
    return np.asarray(scales, dtype=np.float64)


def _fixed_pnet_class():
    from mtcnn.stages import StagePNet
    from mtcnn.utils.bboxes import (generate_bounding_box, resize_to_square, smart_nms_from_bboxes,
                                    upscale_bboxes)
    from mtcnn.utils.images import apply_scales

    class FixedStagePNet(StagePNet):
        """StagePNet whose pyramid follows the original MTCNN stopping rule.

        The body is mtcnn 1.0.0's ``StagePNet.__call__`` (MIT licence, Iván de Paz Centeno) with
        :func:`scale_pyramid` in place of its module's ``build_scale_pyramid``. Nothing global is
        swapped, so any number of threads may detect at once with one detector."""

        def __call__(self, images_normalized, images_oshapes, min_face_size=20, min_size=PNET_INPUT,
                     scale_factor=0.709, threshold_pnet=0.6, nms_pnet1=0.5, nms_pnet2=0.7, **kwargs):
            scales_groups = [scale_pyramid(shape[1], shape[0], min_face_size, scale_factor, min_size)
                             for shape in images_oshapes]
            scales_result, scales_index = apply_scales(images_normalized, scales_groups)
            batch_size = images_normalized.shape[0]
            pnet_result = [self._model(scaled) for scaled in scales_result]
            proposals = [generate_bounding_box(r[0], r[1], threshold_pnet) for r in pnet_result]
            upscaled = [upscale_bboxes(b, np.asarray([scale] * batch_size))
                        for b, scale in zip(proposals, scales_index)]
            per_scale = [smart_nms_from_bboxes(b, threshold=nms_pnet1, method="union", initial_sort=False)
                         for b in upscaled]
            boxes = np.concatenate(per_scale, axis=0) if per_scale else np.empty((0, 6))
            boxes = smart_nms_from_bboxes(boxes, threshold=nms_pnet2, method="union", initial_sort=True)
            return resize_to_square(boxes)

    return FixedStagePNet


def _skip_when_empty(stage_cls):
    """``stage_cls`` (RNet or ONet) that does not run its network on zero candidate boxes.

    mtcnn 1.0.0 feeds an empty batch on, TensorFlow fails it (logging "Local rendezvous is
    aborting ... Incompatible shapes") and mtcnn reads that error as "no face". Raising the same
    error without calling the network keeps that outcome and the log quiet."""
    import tensorflow as tf

    class SkipEmpty(stage_cls):
        def __call__(self, images_normalized, bboxes_batch, **kwargs):
            if bboxes_batch is not None and len(bboxes_batch) == 0:
                raise tf.errors.InvalidArgumentError(None, None, "no candidate boxes")
            return super().__call__(images_normalized, bboxes_batch, **kwargs)

    SkipEmpty.__name__ = SkipEmpty.__qualname__ = stage_cls.__name__
    return SkipEmpty


def _compile_stages(mtcnn) -> None:
    """Run the three MTCNN networks through tf.function instead of eager Keras calls.

    PNet is fully convolutional (any input size; one trace per pyramid shape,
    which is constant for a given camera resolution); RNet and ONet take a
    variable number of fixed-size patches.
    """
    import tensorflow as tf

    shapes = [[None, None, None, 3], [None, 24, 24, 3], [None, 48, 48, 3]]
    for stage, shape in zip(mtcnn.stages, shapes):
        model = stage.model
        fn = tf.function(lambda x, _m=model: _m(x, training=False),
                         input_signature=[tf.TensorSpec(shape, tf.float32)], reduce_retracing=True)
        stage._model = fn


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # x, y, w, h in original-frame pixels (may extend past the frame)
    confidence: float
    landmarks: dict[str, tuple[float, float]]

    @property
    def area(self) -> float:
        return max(self.box[2], 0.0) * max(self.box[3], 0.0)


class FaceDetector:
    """MTCNN on a downscaled copy of the frame; results mapped back to the frame's pixels."""

    # Thread-safe: the stages keep no per-call state and the PNet fix is in the stage instance, so
    # one detector (one set of models per worker) serves every thread without a lock.

    def __init__(self, max_side: int = settings.DETECT_MAX_SIDE, min_face: int = settings.DETECT_MIN_FACE,
                 compiled: bool = True):
        from mtcnn import MTCNN
        from mtcnn.stages import StageONet, StageRNet

        self.max_side = max_side
        self.min_face = min_face
        self.mtcnn = MTCNN(stages=[_fixed_pnet_class(), _skip_when_empty(StageRNet), _skip_when_empty(StageONet)])
        if compiled:
            _compile_stages(self.mtcnn)

    def detect(self, image_rgb: np.ndarray, max_side: int | None = None,
               min_face: int | None = None) -> list[Detection]:
        """All faces, largest first. ``max_side=0`` detects on the full frame."""
        from PIL import Image

        max_side = self.max_side if max_side is None else max_side
        min_face = self.min_face if min_face is None else min_face
        h, w = image_rgb.shape[:2]
        scale = 1.0
        small = image_rgb
        if max_side and max(h, w) > max_side:
            scale = max_side / float(max(h, w))
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.asarray(Image.fromarray(image_rgb).resize(size, Image.BILINEAR))
        sh, sw = small.shape[:2]
        if min(sh, sw) < PNET_INPUT:
            return []
        min_face = max(PNET_INPUT, min(min_face, min(sh, sw)))
        raw = self.mtcnn.detect_faces(small, min_face_size=min_face, fit_to_image=False, box_format="xywh")
        sx = w / float(sw)
        sy = h / float(sh)
        out = []
        for face in raw or []:
            x, y, bw, bh = (float(v) for v in face["box"])
            lm = {k: (float(v[0]) * sx, float(v[1]) * sy) for k, v in face.get("keypoints", {}).items()}
            out.append(Detection(box=(x * sx, y * sy, bw * sx, bh * sy),
                                 confidence=float(face["confidence"]), landmarks=lm))
        out.sort(key=lambda d: d.area, reverse=True)
        return out
