"""Enhanced (multi-frame) DICOM: the functional groups that say how each frame's stored values
become physical units, and how a derived multi-frame instance records its rescale and type.

An Enhanced IOD (Enhanced CT, MR, PET, their Legacy Converted forms, ...) keeps per-frame
attributes in functional groups: one item of ``SharedFunctionalGroupsSequence`` holds those
that apply to every frame, ``PerFrameFunctionalGroupsSequence`` one item per frame for the
others, and a functional group is in one of the two, never in both. The rescale is the Pixel
Value Transformation group (``PixelValueTransformationSequence``: RescaleSlope / Intercept /
Type); the frame's type is ``FrameType`` inside the IOD's frame-type group (e.g.
``CTImageFrameTypeSequence``, ``MRImageFrameTypeSequence``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# Enhanced SOP classes that may come without functional groups in a damaged or anonymised file
ENHANCED_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET Image Storage
})


def is_enhanced(ds: object) -> bool:
    """True for an Enhanced (functional-group) multi-frame instance."""
    return ("PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
            or str(getattr(ds, "SOPClassUID", "")) in ENHANCED_SOP_CLASSES)


def number_of_frames(ds: object) -> int:
    """NumberOfFrames (1 when absent or empty)."""
    return int(getattr(ds, "NumberOfFrames", 1) or 1)


def _shared(ds: object) -> object | None:
    seq = ds.get("SharedFunctionalGroupsSequence")
    return seq[0] if seq else None


def _per_frame(ds: object) -> list:
    return list(ds.get("PerFrameFunctionalGroupsSequence") or [])


def _group(item: object | None, keyword: str) -> object | None:
    """The first item of functional group ``keyword`` in a functional-groups item, or None."""
    seq = item.get(keyword) if item is not None else None
    return seq[0] if seq else None


def frame_rescale(ds: object) -> tuple[np.ndarray, np.ndarray, str | None] | None:
    """Per-frame (slopes [F], intercepts [F], RescaleType) from the Pixel Value Transformation
    group (per-frame items first, then the shared item), or None when no frame has one."""
    frames = number_of_frames(ds)
    per_frame, shared = _per_frame(ds), _group(_shared(ds), "PixelValueTransformationSequence")
    groups = [_group(per_frame[i] if i < len(per_frame) else None, "PixelValueTransformationSequence") or shared
              for i in range(frames)]
    if all(g is None for g in groups):
        return None
    slopes = np.array([float(g.get("RescaleSlope", 1) if g else 1) for g in groups])
    intercepts = np.array([float(g.get("RescaleIntercept", 0) if g else 0) for g in groups])
    kind = next((str(g.RescaleType) for g in groups if g is not None and "RescaleType" in g), None)
    return slopes, intercepts, kind


def ds_number(value: float) -> str:
    """``value`` as a Decimal String (at most 16 characters) that reads back as the same number:
    integers below 1e15 exactly (a ``.6g`` intercept of 1234567 would read back as 1234570), other
    values with as many significant digits as fit."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return next(text for digits in range(15, 0, -1) if len(text := f"{value:.{digits}g}") <= 16)


def set_frame_rescale(ds: object, *, slope: float, intercept: float, rescale_type: str) -> None:
    """Write one rescale for every frame where the source kept it: in each per-frame item when
    the source had per-frame Pixel Value Transformation items, else in the shared item (made if
    absent)."""
    from pydicom import Dataset, Sequence

    item = Dataset()
    item.RescaleIntercept, item.RescaleSlope = ds_number(intercept), ds_number(slope)
    item.RescaleType = rescale_type
    per_frame = _per_frame(ds)
    if any("PixelValueTransformationSequence" in f for f in per_frame):
        for frame in per_frame:
            frame.PixelValueTransformationSequence = Sequence([_copy(item)])
        shared = _shared(ds)
        if shared is not None and "PixelValueTransformationSequence" in shared:  # one place only
            del shared.PixelValueTransformationSequence
        return
    shared_item(ds).PixelValueTransformationSequence = Sequence([item])


def shared_item(ds: object) -> object:
    """The shared functional-groups item of ``ds``, created when absent."""
    from pydicom import Dataset, Sequence

    if not ds.get("SharedFunctionalGroupsSequence"):
        ds.SharedFunctionalGroupsSequence = Sequence([Dataset()])
    return ds.SharedFunctionalGroupsSequence[0]


def set_shared_group(ds: object, keyword: str, item: object) -> None:
    """Put functional group ``keyword`` (one item) in the shared item and remove it from every
    per-frame item, so the group is in one place only."""
    from pydicom import Sequence

    for frame in _per_frame(ds):
        if keyword in frame:
            delattr(frame, keyword)
    setattr(shared_item(ds), keyword, Sequence([item]))


def group_items(ds: object) -> Iterator[object]:
    """Every item of every functional group, shared and per-frame (e.g. to edit FrameType)."""
    for container in [c for c in (_shared(ds),) if c is not None] + _per_frame(ds):
        for elem in container:
            if elem.VR == "SQ":
                yield from elem.value


def _copy(item: object) -> object:
    import copy

    return copy.deepcopy(item)
