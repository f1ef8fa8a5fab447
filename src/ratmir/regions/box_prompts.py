"""Automatic mask generation for a box-prompted segmenter: proposals, mask quality, selection.

SAM's automatic generator prompts with a grid of points; a model trained with box prompts only
(LiteMedSAM) needs boxes. This module holds the model-independent parts:

- :func:`oversegment_boxes`: bounding boxes of the segments of a cheap over-segmentation
  (felzenszwalb, at one or more scales): boxes that already sit around structures.
- :func:`grid_boxes`: boxes of regular multi-scale grids (cells of 1/n of each side).
- :func:`dedupe_boxes`: drop near-duplicate proposals before the costly decoding.
- :func:`stability_score`: SAM's stability of a mask logit map under threshold shifts.
- :func:`select_masks`: keep masks by predicted IoU, stability and area, then box NMS.

All boxes are float ``[x0, y0, x1, y1]`` in pixel coordinates of the image they came from
(``x1``/``y1`` exclusive), as torch tensors [N, 4].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def _as_boxes(rows: list[list[float]]) -> Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def grid_boxes(*, height: int, width: int, divisions: Sequence[int]) -> Tensor:
    """Cells of an n x n grid over an image, for each n in ``divisions`` (n = 1: the whole image)."""
    rows = []
    for n in divisions:
        ys = np.linspace(0, height, n + 1)
        xs = np.linspace(0, width, n + 1)
        rows += [[xs[j], ys[i], xs[j + 1], ys[i + 1]] for i in range(n) for j in range(n)]
    return _as_boxes(rows)


def label_boxes(labels: np.ndarray, *, min_area: int, max_area: int | None = None) -> Tensor:
    """Bounding boxes of the labels (>= 1) of ``labels`` with ``min_area`` to ``max_area`` pixels."""
    from scipy import ndimage

    areas = np.bincount(labels.ravel())
    rows = []
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is not None and areas[index] >= min_area and (max_area is None or areas[index] <= max_area):
            ys, xs = found
            rows.append([xs.start, ys.start, xs.stop, ys.stop])
    return _as_boxes(rows)


def oversegment_boxes(image01: np.ndarray, *, scales: Sequence[float], sigma: float, min_area: int,
                      max_area: int | None = None) -> Tensor:
    """Boxes of the felzenszwalb segments of ``image01`` ([H, W] or [H, W, 3] in [0, 1]) at each scale.

    ``min_area`` (pixels) is both felzenszwalb's minimum segment size and the smallest segment
    kept; segments above ``max_area`` pixels give no box.
    """
    from skimage.segmentation import felzenszwalb

    channel_axis = -1 if image01.ndim == 3 else None
    boxes = [label_boxes(felzenszwalb(image01, scale=s, sigma=sigma, min_size=min_area, channel_axis=channel_axis) + 1,
                         min_area=min_area, max_area=max_area) for s in scales]
    return torch.cat(boxes) if boxes else _as_boxes([])


def dedupe_boxes(boxes: Tensor, *, iou_thresh: float) -> Tensor:
    """Drop boxes whose IoU with an earlier kept box exceeds ``iou_thresh`` (keeps the input order)."""
    from torchvision.ops import box_iou

    if boxes.shape[0] <= 1:
        return boxes
    overlap = box_iou(boxes, boxes)
    keep: list[int] = []
    for i in range(boxes.shape[0]):
        if not keep or overlap[i, keep].max() <= iou_thresh:
            keep.append(i)
    return boxes[keep]


def stability_score(logits: Tensor, *, threshold: float = 0.0, offset: float = 1.0) -> Tensor:
    """IoU between the masks ``logits > threshold + offset`` and ``logits > threshold - offset``.

    A mask whose area barely changes when its logit threshold shifts is stable (SAM's score).
    ``logits`` [N, H, W] -> [N].
    """
    inner = (logits > threshold + offset).flatten(1).sum(1, dtype=torch.int64)
    outer = (logits > threshold - offset).flatten(1).sum(1, dtype=torch.int64)
    return torch.where(outer > 0, inner.float() / outer.clamp(min=1).float(), torch.zeros(inner.shape))


def mask_boxes(masks: Tensor) -> Tensor:
    """Tight boxes [N, 4] (x1/y1 exclusive) of bool masks [N, H, W]; an empty mask gives zeros."""
    n, h, w = masks.shape
    rows, cols = masks.any(2), masks.any(1)
    ar_h = torch.arange(h, dtype=torch.float32)
    ar_w = torch.arange(w, dtype=torch.float32)
    big = torch.tensor(float(max(h, w) + 1))
    y0 = torch.where(rows, ar_h, big).amin(1)
    y1 = torch.where(rows, ar_h, -1.0).amax(1) + 1
    x0 = torch.where(cols, ar_w, big).amin(1)
    x1 = torch.where(cols, ar_w, -1.0).amax(1) + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    return torch.where(masks.flatten(1).any(1)[:, None], boxes, torch.zeros_like(boxes))


def select_masks(logits: Tensor, iou_pred: Tensor, *, pred_iou_thresh: float, stability_thresh: float,
                 min_area: int, max_area_fraction: float, nms_thresh: float) -> Tensor:
    """Indices of the masks to keep, best first.

    Args:
        logits: mask logits [N, H, W] (mask = logits > 0).
        iou_pred: the model's predicted IoU per mask [N].
        pred_iou_thresh, stability_thresh: minimum predicted IoU / :func:`stability_score`.
        min_area: minimum mask area in pixels of ``logits``.
        max_area_fraction: masks covering more of the image than this are dropped (they would
            only repaint the background region).
        nms_thresh: box IoU above which the lower-scored of two masks is suppressed.
    """
    from torchvision.ops import nms

    masks = logits > 0
    area = masks.flatten(1).sum(1)
    stability = stability_score(logits)
    keep = ((iou_pred >= pred_iou_thresh) & (stability >= stability_thresh) & (area >= min_area)
            & (area <= max_area_fraction * masks[0].numel())).nonzero().flatten()
    if keep.numel() == 0:
        return keep
    score = iou_pred[keep] * stability[keep]
    return keep[nms(mask_boxes(masks[keep]), score, nms_thresh)]
