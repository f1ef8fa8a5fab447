"""Fixtures for the region tests: the reference example (from shared/) and a tiny random SAM."""

from __future__ import annotations

from pathlib import Path

import pytest

# shared/ sits beside the repository root: <root>/../shared (tests/regions/conftest.py -> parents[2]).
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REFERENCE_EXAMPLE = SHARED / "reference" / "reference_example"


@pytest.fixture(scope="session")
def reference_example() -> Path:
    if not (REFERENCE_EXAMPLE / "indexed_mask.nii").is_file() or not (REFERENCE_EXAMPLE / "input_img.png").is_file():
        pytest.skip(f"reference example not found at {REFERENCE_EXAMPLE.resolve()} (needs the shared/ folder "
                    "beside the repository root)")
    return REFERENCE_EXAMPLE


@pytest.fixture(scope="session")
def real_ct_path() -> Path:
    """A real CT slice (128x128, HU) shipped inside pydicom."""
    from pydicom import examples

    return Path(examples.get_path("ct"))


@pytest.fixture
def tiny_sam():
    pytest.importorskip("segment_anything")
    from tiny_sam import build_tiny_sam  # tests/regions is on sys.path (pytest rootdir import mode)

    return build_tiny_sam()
