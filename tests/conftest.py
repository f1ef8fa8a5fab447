from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHIPPED = Path(__file__).resolve().parent / "fixtures" / "reference"
SHARED = REPO.parent / "shared"


def reference_candidates() -> list[Path]:
    """Where the authors' test vector is looked for, in order: tests/fixtures/reference (shipped
    with the repository), $RATMIR_REFERENCE_DIR, ../shared/reference beside the repository."""
    env = os.environ.get("RATMIR_REFERENCE_DIR")
    return [SHIPPED, *([Path(env)] if env else []), SHARED / "reference"]


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The first folder of :func:`reference_candidates` holding the vector. It ships with the
    repository, so missing everywhere is a failure, not a skip."""
    for path in reference_candidates():
        if (path / "rat_reference_vector.pt").is_file():
            return path
    pytest.fail(f"reference material not found in {[str(p) for p in reference_candidates()]}")


@pytest.fixture(scope="session")
def reference_vector(reference_dir: Path) -> dict:
    return torch.load(reference_dir / "rat_reference_vector.pt", weights_only=False)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def reference_example(reference_dir: Path) -> Path:
    """The authors' example: a 512x512 chest CT PNG and its SAM label map."""
    path = reference_dir / "reference_example"
    if not (path / "indexed_mask.nii").is_file() or not (path / "input_img.png").is_file():
        pytest.fail(f"reference example incomplete at {path}")
    return path


@pytest.fixture(scope="session")
def real_ct_path() -> Path:
    """A real CT slice (128x128, HU) shipped inside pydicom."""
    from pydicom import examples

    return Path(examples.get_path("ct"))


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> Path:
    from ratmir_testdata import write_tiny_dataset

    return write_tiny_dataset(tmp_path / "data")
