"""benchmarks/relu_activity.py's measure on a network whose ReLUs are known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "relu_activity.py"


def _module():
    spec = importlib.util.spec_from_file_location("relu_activity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Twice(nn.Module):
    """One ReLU module applied twice (as RED-CNN's): reported per call."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1)
        self.relu = nn.ReLU()
        with torch.no_grad():  # channel 0 = x (on where x > 0), 1 = always off, 2 = always on
            self.conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor([0.0, -1.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.conv(x))
        return self.relu(h - 2.0)  # second call: everything off


def test_active_share_and_dead_channels_per_call() -> None:
    x = torch.tensor([[1.0, -1.0], [2.0, -2.0]]).view(1, 2, 2)  # half the pixels positive
    rows = _module().relu_activity(Twice(), [x, x])
    assert rows[0]["active"] == pytest.approx((2 + 0 + 4) / 12) and rows[0]["dead_channels"] == pytest.approx(1 / 3)
    assert rows[1] == {"active": 0.0, "dead_channels": 1.0}


def test_a_model_without_relu_is_refused() -> None:
    with pytest.raises(ValueError, match="no nn.ReLU"):
        _module().relu_activity(nn.Conv2d(1, 1, 1), [torch.zeros(1, 2, 2)])
