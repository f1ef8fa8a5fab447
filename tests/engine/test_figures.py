from __future__ import annotations

import numpy as np
import pytest
import torch

from ratmir.engine.figures import choose_inset, comparison_figure
from ratmir.tasks import get_task


def test_inset_goes_to_the_detail() -> None:
    img = np.zeros((64, 64))
    img[40:56, 8:24] = np.indices((16, 16)).sum(0) % 2  # a checkerboard patch
    top, left, size = choose_inset(img, size=16)
    assert size == 16 and abs(top - 40) <= 2 and abs(left - 8) <= 2
    assert choose_inset(img, size=100)[2] == 64  # clipped to the image


def test_comparison_figure(tmp_path) -> None:
    norm = get_task("ct").normalisation
    hq = torch.rand(1, 1, 32, 32)
    outputs = {"a": hq + 0.01, "b": hq - 0.02}
    path = comparison_figure(tmp_path / "f" / "x.png", lq=hq + 0.05 * torch.randn_like(hq), outputs=outputs, hq=hq,
                             task="ct", norm=norm, regions=torch.ones(1, 32, 32, dtype=torch.long), dpi=40)
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="outputs is empty"):
        comparison_figure(tmp_path / "y.png", lq=hq, outputs={}, hq=hq, task="ct", norm=norm)
