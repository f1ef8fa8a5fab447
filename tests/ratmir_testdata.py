"""Test data builders shared by tests and benchmarks (importable: tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path


def write_tiny_dataset(root: Path, *, size: int = 32, train: int = 4, test: int = 2, channels: int = 1,
                       seed: int = 0, val: int = 1) -> Path:
    """A tiny prepared CT-like dataset in the `ratmir prepare` layout (HU values, noisy LQ)."""
    import json

    import numpy as np

    from ratmir.data import pair_paths
    from ratmir.data.layout import write_image
    from ratmir.regions import save_label_map
    from ratmir.tasks import get_task

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for split, count in (("train", train), ("test", test), ("val", val)):  # val last: same train/test as before
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


def write_tiny_ct_model(path: Path, *, seed: int = 0) -> Path:
    """A small random DnCNN saved as a CT model (with the task's normalisation in its metadata)."""
    import json

    import torch

    from ratmir.models import DnCNN, save_pretrained
    from ratmir.tasks import get_task

    torch.manual_seed(seed)
    meta = {"task": "ct", "normalisation": json.dumps(get_task("ct").normalisation.record())}
    return save_pretrained(DnCNN(features=4, depth=3), path, metadata=meta)
