from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference beside the repository (present on developer machines and in CI),
    or the folder named by RATMIR_REFERENCE_DIR. Missing in CI is a failure, not a skip."""
    path = Path(os.environ.get("RATMIR_REFERENCE_DIR", SHARED / "reference"))
    if not (path / "rat_reference_vector.pt").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"reference material not found at {path} (CI must have ../shared beside the clone)")
        pytest.skip(f"reference material not found at {path}")
    return path


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


def write_tiny_dataset(root: Path, *, size: int = 32, train: int = 4, test: int = 2, channels: int = 1,
                       seed: int = 0) -> Path:
    """A tiny prepared CT-like dataset in the `ratmir prepare` layout (HU values, noisy LQ)."""
    import json

    import numpy as np

    from ratmir.data import pair_paths
    from ratmir.data.layout import write_image
    from ratmir.regions import save_label_map
    from ratmir.tasks import get_task

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    splits: dict[str, list[str]] = {"train": [], "test": []}
    for split, count in (("train", train), ("test", test)):
        for i in range(count):
            name = f"{split}{i:02d}"
            fx, fy = rng.uniform(1, 3, 2)
            hq = 600 * np.sin(2 * np.pi * fx * xx) * np.cos(2 * np.pi * fy * yy) - 100
            hq = np.repeat(hq[..., None], channels, -1) if channels > 1 else hq
            lq = hq + rng.normal(0, 80, hq.shape)
            p = pair_paths(root, split, name)
            write_image(p.hq, hq)
            write_image(p.lq, lq)
            save_label_map(p.regions, ((hq if channels == 1 else hq[..., 0]) > -100).astype(np.int16))
            splits[split].append(name)
    task = get_task("ct")
    manifest = {"task": "ct", "channels": channels, "units": "HU", "splits": splits,
                "normalisation": task.normalisation.record(), "sources": ["synthetic test pattern"], "seed": seed}
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "data")
