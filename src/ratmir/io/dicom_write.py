"""Writing a derived DICOM instance that keeps every tag of its source and conforms as a
processed image: DERIVED\\SECONDARY, what derived it and from which instance, one modality
transform (RescaleSlope / Intercept), little-endian encoding, written atomically.

Grey pixels are stored as 16-bit unsigned integers with the finest power-of-ten slope that fits
(:func:`rescale_slope`); colour pixels (a PALETTE COLOR, RGB or YBR source read as RGB) as RGB
without any rescale. Enhanced multi-frame sources keep their SOP class and functional groups;
their rescale goes to the Pixel Value Transformation group, their frame types become DERIVED.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from .._files import atomic_path
from .dicom_frames import (
    ds_number, frame_rescale, group_items, is_enhanced, number_of_frames, set_frame_rescale, set_shared_group,
)

# Codes of DICOM CID 7203 "Image Derivation" (extensible) for ``derivation_code``
SMOOTHING = ("113087", "DCM", "Smoothing")  # noise reduction (CT / PET restoration)
SPATIAL_RESAMPLING = ("113085", "DCM", "Spatial resampling")  # super-resolution
_SOURCE_FOR_PROCESSING = ("121322", "DCM", "Source image for image processing operation")  # CID 7202

_PALETTE = tuple(f"{prefix}{colour}PaletteColorLookupTable{part}" for prefix in ("", "Segmented")
                 for colour in ("Red", "Green", "Blue", "Alpha") for part in ("Descriptor", "Data")
                 if not (prefix and part == "Descriptor")) + ("PaletteColorLookupTableUID",)
# stored-value attributes that the new pixel encoding invalidates, and pixel data of other kinds
_STALE = ("ModalityLUTSequence", "RescaleSlope", "RescaleIntercept", "RescaleType", "LargestImagePixelValue",
          "SmallestImagePixelValue", "PixelPaddingValue", "PixelPaddingRangeLimit", "SmallestPixelValueInSeries",
          "LargestPixelValueInSeries", "FloatPixelData", "DoubleFloatPixelData", "PlanarConfiguration",
          "ExtendedOffsetTable", "ExtendedOffsetTableLengths") + _PALETTE
# grey-only display attributes, removed from a colour output
_GREY_DISPLAY = ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTSequence", "VOILUTFunction",
                 "PresentationLUTShape")
# byte sizes of the values of binary VRs that a big-endian source stores byte-swapped
_SWAPPED_VR = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def rescale_slope(span: float) -> float:
    """The finest power-of-ten slope (down to 0.001) at which ``span`` fits in 16 bits.

    A CT slice spanning 4095 HU gets 0.1 HU steps; PET activities spanning 1e6 get 100.
    """
    slope = 1e-3
    while span / slope > 65535:
        slope *= 10
    return float(f"{slope:.0e}")


def is_colour(ds: object) -> bool:
    """True when ``ds``'s pixels read as RGB (SamplesPerPixel 3 or PALETTE COLOR)."""
    return int(getattr(ds, "SamplesPerPixel", 1)) == 3 or str(getattr(ds, "PhotometricInterpretation", "")) == "PALETTE COLOR"


def write_dicom_like(
    source: object, pixels: np.ndarray, path: str | os.PathLike, *, series_uid: str | None = None,
    series_description: str | None = None, derivation: str | None = None,
    derivation_code: tuple[str, str, str] = SMOOTHING, sop_instance_uid: str | None = None,
) -> Path:
    """Write ``pixels`` (physical units) as a new instance derived from dataset ``source``.

    ``pixels``: [H, W] for a single-frame source, [frames, H, W] for a multi-frame one (same
    number of frames); with a trailing RGB axis ([..., 3]) when the source is colour
    (:func:`is_colour`, as :func:`~ratmir.io.read_dicom` returns it).

    Every tag of ``source`` is kept except the pixel module and what depends on the stored
    values (modality LUT, palettes, padding, min/max; real-world value maps are re-expressed).
    ImageType (and every FrameType) becomes DERIVED\\SECONDARY followed by the source's other
    values; DerivationDescription ``derivation``, DerivationCodeSequence ``derivation_code`` (a
    CID 7203 code: :data:`SMOOTHING`, :data:`SPATIAL_RESAMPLING`, ...) and a SourceImageSequence
    naming ``source`` are written at the top level, or for an Enhanced source in the shared
    Derivation Image functional group. New SOPInstanceUID (``sop_instance_uid`` if given),
    SeriesInstanceUID ``series_uid`` (a new one if None), SeriesDescription as given. Written
    uncompressed as Explicit VR Little Endian (big-endian sources are converted), through a
    temporary file in the same folder, so ``path`` is never half-written.
    """
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if not isinstance(source, pydicom.Dataset):
        raise TypeError(f"source must be a pydicom.Dataset, got {type(source).__name__}")
    colour = is_colour(source)
    pixels = _check_pixels(np.asarray(pixels, dtype=np.float64), frames=number_of_frames(source), colour=colour)
    ds = copy.deepcopy(source)  # Dataset.copy() is shallow: edits would reach the source
    if _is_big_endian(source):
        _swap_binary_values(ds)
    for keyword in _STALE + (_GREY_DISPLAY if colour else ()):
        _remove(ds, keyword)
    if colour:
        _set_colour_pixels(ds, pixels, bits=_colour_bits(source))
    else:
        _set_grey_pixels(ds, source, pixels)
    _mark_derived(ds, source, derivation=derivation, code=derivation_code)
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    if series_description is not None:
        ds.SeriesDescription = series_description[:64]
    ds.file_meta = pydicom.dataset.FileMetaDataset()  # this implementation's, not the source's
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = Path(path)
    with atomic_path(path, suffix=".dcm") as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    return path


def _check_pixels(pixels: np.ndarray, *, frames: int, colour: bool) -> np.ndarray:
    expected = ("[H, W]" if frames == 1 else f"[{frames}, H, W]") + (" x 3 (RGB)" if colour else "")
    ndim = (2 if frames == 1 else 3) + colour
    ok = pixels.ndim == ndim and (frames == 1 or pixels.shape[0] == frames) and (not colour or pixels.shape[-1] == 3)
    if not ok:
        kind = f"{'colour' if colour else 'grey'} source with {frames} frame(s)"
        raise ValueError(f"pixels for a {kind} must be {expected}, got shape {pixels.shape}")
    if not np.isfinite(pixels).all():
        raise ValueError(f"pixels must be finite, got {int((~np.isfinite(pixels)).sum())} NaN/inf value(s)")
    return pixels


def _is_big_endian(ds: object) -> bool:
    syntax = getattr(getattr(ds, "file_meta", None), "get", lambda _: None)("TransferSyntaxUID")
    try:
        return not syntax.is_little_endian
    except (AttributeError, ValueError):  # no or private transfer syntax: how it was read
        return getattr(ds, "original_encoding", (None, None))[1] is False


def _swap_binary_values(ds: object) -> None:
    """Byte-swap every OW/OF/OL/OD/OV value (pydicom re-encodes the numbers of other VRs itself)."""
    def swap(dataset, elem) -> None:
        size = _SWAPPED_VR.get(elem.VR)
        if size and isinstance(elem.value, bytes) and elem.keyword != "PixelData" and len(elem.value) % size == 0:
            elem.value = np.frombuffer(elem.value, dtype=f">u{size}").astype(f"<u{size}").tobytes()

    ds.walk(swap)


def _remove(ds: object, keyword: str) -> None:
    if keyword in ds:
        delattr(ds, keyword)


def _colour_bits(source: object) -> int:
    """8 for a palette (read as levels 0-255) or an 8-bit colour source, else 16."""
    palette = str(getattr(source, "PhotometricInterpretation", "")) == "PALETTE COLOR"
    return 8 if palette or int(getattr(source, "BitsAllocated", 8)) <= 8 else 16


def _set_pixel_module(ds: object, stored: np.ndarray, *, samples: int, bits: int) -> None:
    ds.Rows, ds.Columns = stored.shape[-3:-1] if samples == 3 else stored.shape[-2:]
    if "NumberOfFrames" in ds:
        ds.NumberOfFrames = stored.shape[0] if stored.ndim == 3 + (samples == 3) else 1
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = stored.astype(f"<u{bits // 8}").tobytes()
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    if bits == 8 and len(ds.PixelData) % 2:
        ds.PixelData += b"\0"


def _set_colour_pixels(ds: object, pixels: np.ndarray, *, bits: int) -> None:
    stored = np.clip(np.round(pixels), 0, 2**bits - 1)
    _set_pixel_module(ds, stored, samples=3, bits=bits)
    if str(getattr(ds, "PixelPresentation", "")) in ("MONOCHROME", "COLOR", "MIXED"):
        ds.PixelPresentation = "TRUE_COLOR"


def _set_grey_pixels(ds: object, source: object, pixels: np.ndarray) -> None:
    """16-bit stored values with one slope/intercept for every frame: in the Pixel Value
    Transformation group for an Enhanced source, else RescaleSlope/Intercept (and RescaleType)."""
    intercept = float(np.floor(pixels.min()))
    slope = rescale_slope(float(pixels.max()) - intercept)
    _set_pixel_module(ds, np.round((pixels - intercept) / slope), samples=1, bits=16)
    if str(getattr(source, "PhotometricInterpretation", "")) == "MONOCHROME1":  # same values, same display
        ds.PhotometricInterpretation = "MONOCHROME1"
    kind = _rescale_type(source)
    if is_enhanced(source):
        set_frame_rescale(ds, slope=slope, intercept=intercept, rescale_type=kind)
    else:
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = ds_number(intercept), ds_number(slope), kind
    _rewrite_real_world_maps(ds, _source_rescale(source), (slope, intercept))
    for item in [ds, *group_items(ds)]:  # supplemental palettes are gone: grey presentation
        if str(item.get("PixelPresentation", "")) in ("COLOR", "MIXED"):
            item.PixelPresentation = "MONOCHROME"


def _rescale_type(source: object) -> str:
    """The source's RescaleType (or ModalityLUTType); else HU for CT, US (unspecified) otherwise."""
    enhanced = frame_rescale(source) if is_enhanced(source) else None
    lut = source.get("ModalityLUTSequence")
    for kind in (enhanced[2] if enhanced else None, source.get("RescaleType"),
                 lut[0].get("ModalityLUTType") if lut else None):
        if kind:
            return str(kind)
    return "HU" if str(getattr(source, "Modality", "")) == "CT" else "US"


def _source_rescale(source: object) -> tuple[float, float] | None:
    """The source's one linear stored-to-physical map (slope, intercept), or None when it has a
    LUT or frames that differ."""
    if source.get("ModalityLUTSequence"):
        return None
    enhanced = frame_rescale(source) if is_enhanced(source) else None
    if enhanced is not None:
        slopes, intercepts, _ = enhanced
        same = np.all(slopes == slopes[0]) and np.all(intercepts == intercepts[0])
        return (float(slopes[0]), float(intercepts[0])) if same else None
    return float(source.get("RescaleSlope", 1) or 1), float(source.get("RescaleIntercept", 0) or 0)


def _rewrite_real_world_maps(ds: object, old: tuple[float, float] | None, new: tuple[float, float]) -> None:
    """Re-express linear Real World Value Mapping items (stored value -> real-world units) for the
    new stored values; LUT-based items, or any item when the old map is not linear, are removed."""
    from pydicom import Sequence

    for holder in [ds, *(item for item in [(ds.get("SharedFunctionalGroupsSequence") or [None])[0],
                                           *ds.get("PerFrameFunctionalGroupsSequence", [])] if item is not None)]:
        maps = holder.get("RealWorldValueMappingSequence")
        if not maps:
            continue
        kept = []
        for item in maps:
            if old is None or "RealWorldValueLUTData" in item or "RealWorldValueSlope" not in item:
                continue
            (m0, b0), (m1, b1) = old, new
            rws, rwi = float(item.RealWorldValueSlope), float(item.get("RealWorldValueIntercept", 0))
            item.RealWorldValueSlope, item.RealWorldValueIntercept = m1 * rws / m0, (b1 - b0) * rws / m0 + rwi
            item.RealWorldValueFirstValueMapped, item.RealWorldValueLastValueMapped = 0, 65535
            for keyword in ("DoubleFloatRealWorldValueFirstValueMapped", "DoubleFloatRealWorldValueLastValueMapped"):
                _remove(item, keyword)
            kept.append(item)
        if kept:
            holder.RealWorldValueMappingSequence = Sequence(kept)
        else:
            delattr(holder, "RealWorldValueMappingSequence")


def _derived(values: object, *, enhanced: bool) -> list[str]:
    """DERIVED\\SECONDARY followed by values 3... of an ImageType / FrameType; DERIVED\\PRIMARY
    for an Enhanced IOD, whose value 2 has the one enumerated value PRIMARY (PS3.3 C.8.16.1)."""
    rest = [] if values is None else ([values] if isinstance(values, str) else list(values))[2:]
    return ["DERIVED", "PRIMARY" if enhanced else "SECONDARY", *map(str, rest)]


def _mark_derived(ds: object, source: object, *, derivation: str | None, code: tuple[str, str, str]) -> None:
    from pydicom import Dataset, Sequence

    def coded(value: str, scheme: str, meaning: str) -> Dataset:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        return item

    enhanced = is_enhanced(source)
    ds.ImageType = _derived(source.get("ImageType"), enhanced=enhanced)
    for item in group_items(ds):
        if "FrameType" in item:
            item.FrameType = _derived(item.FrameType, enhanced=enhanced)
    reference = Dataset()
    reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
    reference.PurposeOfReferenceCodeSequence = Sequence([coded(*_SOURCE_FOR_PROCESSING)])
    target = Dataset() if enhanced else ds
    if derivation is not None:
        target.DerivationDescription = derivation[:1024]
    target.DerivationCodeSequence = Sequence([coded(*code)])
    target.SourceImageSequence = Sequence([reference])
    if enhanced:
        set_shared_group(ds, "DerivationImageSequence", target)
        ds.SourceImageEvidenceSequence = Sequence([_evidence(source)])


def _evidence(source: object) -> object:
    """A Hierarchical SOP Instance Reference item (study > series > instance) naming ``source``."""
    from pydicom import Dataset, Sequence

    instance, series, study = Dataset(), Dataset(), Dataset()
    instance.ReferencedSOPClassUID, instance.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
    series.SeriesInstanceUID, series.ReferencedSOPSequence = source.SeriesInstanceUID, Sequence([instance])
    study.StudyInstanceUID, study.ReferencedSeriesSequence = source.StudyInstanceUID, Sequence([series])
    return study
