"""SAM automatic-mask-generator output -> one integer label map, by the reference's rule.

The rule (from the authors' RAT code): sort the masks by area, largest first (a stable sort, so
equal areas keep their order); paint mask ``i`` with label ``i + 1``, so a pixel covered by
several masks ends up with the label of the smallest one painted last; pixels covered by no
mask form one background region, label ``len(masks) + 1``. Labels that a later mask paints over
completely are kept absent, as in the reference (label maps may be non-contiguous).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# Masks are stacked in chunks of this many pixels' worth of memory (bool bytes) at most, so a
# large image with many masks does not need one [N, H, W] array.
_CHUNK_BYTES = 64 * 2**20


def _mask_array(index: int, record: object) -> np.ndarray:
    if not isinstance(record, Mapping) or "segmentation" not in record:
        raise TypeError(
            f"masks[{index}] must be a dict with a 'segmentation' [H, W] bool array (the "
            f"SamAutomaticMaskGenerator output with output_mode='binary_mask'), got "
            f"{type(record).__name__}"
        )
    seg = record["segmentation"]
    if not isinstance(seg, np.ndarray):
        raise TypeError(
            f"masks[{index}]['segmentation'] must be a numpy [H, W] bool array, got "
            f"{type(seg).__name__} (use output_mode='binary_mask')"
        )
    if seg.ndim != 2:
        raise ValueError(f"masks[{index}]['segmentation'] must be 2-D [H, W], got shape {seg.shape}")
    if seg.dtype != np.bool_:
        if not np.isin(seg, (0, 1)).all():
            raise ValueError(f"masks[{index}]['segmentation'] must be binary, got dtype {seg.dtype} "
                             "with values other than 0 and 1")
        seg = seg.astype(bool)
    return seg


def _area(index: int, record: Mapping, seg: np.ndarray) -> float:
    area = record.get("area")
    if area is None:
        return float(seg.sum())
    if isinstance(area, bool) or not isinstance(area, (int, float, np.integer, np.floating)):
        raise TypeError(f"masks[{index}]['area'] must be a number, got {type(area).__name__}")
    return float(area)


def masks_to_label_map(masks: Sequence[Mapping], *, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Turn SAM masks into an int32 label map [H, W] with labels ``1 .. len(masks) + 1``.

    Args:
        masks: SamAutomaticMaskGenerator records, each with ``"segmentation"`` ([H, W] bool) and
            ``"area"`` (pixels; computed from the mask when absent).
        shape: (H, W) of the image; required when ``masks`` is empty (the result is then one
            region, label 1), checked against the masks otherwise.
    """
    if isinstance(masks, (str, bytes, Mapping)) or not isinstance(masks, Sequence):
        raise TypeError(f"masks must be a list of mask dicts, got {type(masks).__name__}")
    segs = [_mask_array(i, m) for i, m in enumerate(masks)]
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be (H, W) with H, W >= 1, got {shape}")
    if not segs:
        if shape is None:
            raise ValueError("masks is empty: pass shape=(H, W) so the one background region has a size")
        return np.ones(shape, dtype=np.int32)
    expected = shape if shape is not None else segs[0].shape
    for i, seg in enumerate(segs):
        if seg.shape != expected:
            raise ValueError(f"masks[{i}]['segmentation'] has shape {seg.shape}, expected {tuple(expected)} "
                             "(all masks must match the image)")
    areas = np.array([_area(i, m, s) for i, (m, s) in enumerate(zip(masks, segs, strict=True))])
    order = np.argsort(-areas, kind="stable")  # largest first; ties keep their input order

    # The label of a pixel is 1 + the position (in painting order) of the LAST mask covering it.
    n = len(segs)
    labels = np.full(expected, n + 1, dtype=np.int32)
    per_chunk = max(1, _CHUNK_BYTES // max(1, segs[0].size))
    for start in range(0, n, per_chunk):
        idx = order[start:start + per_chunk]
        stack = np.stack([segs[i] for i in idx])  # [k, H, W]
        covered = stack.any(axis=0)
        last = len(idx) - 1 - np.argmax(stack[::-1], axis=0)  # last covering mask in this chunk
        labels[covered] = (start + last[covered] + 1).astype(np.int32)
    return labels
