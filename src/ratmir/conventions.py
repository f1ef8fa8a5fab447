"""Named evaluation conventions: how PSNR/SSIM/RMSE are computed for each task.

Published numbers differ as much by convention as by method (HU range, display window, Y
channel, border crop, 8-bit rounding), so every result ratmir reports names its convention.
Each convention maps the network's normalised images ([0, 1], the task's
:class:`~ratmir.tasks.base.Normalisation`) to the values it scores, with a data range and a
border crop:

================  ==========================================================================
``ct_full``       HU clipped to [-1024, 3072], data range 4096
``ct_window``     HU clipped to the RED-CNN/CTformer window [-160, 240], data range 400
``pet``           activity clipped to the dataset's declared range [low, high], data range
                  ``high - low`` (the declared peak)
``rgb``           RGB levels [0, 255], 4-pixel border cropped, data range 255
``y``             ITU-R BT.601 luma (16-235) of the RGB image, 4-pixel border cropped, range 255
``reference``     the authors' scoring: images rounded to 8-bit PNG levels, read as RGB, luma
                  channel (a grey level g becomes 16 + 219 g / 255), no crop, range 255 —
                  to compare with the paper's tables
================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .metrics import psnr, rmse, ssim
from .tasks.base import Normalisation

CT_WINDOW_HU = (-160.0, 240.0)  # the RED-CNN/CTformer window of ``ct_window`` (data range 400)
_LUMA = (65.481, 128.553, 24.966)  # BT.601 for RGB in [0, 1] -> Y in [16, 235]


def luma(rgb255: Tensor) -> Tensor:
    """[B, 3, H, W] RGB levels in [0, 255] -> [B, 1, H, W] BT.601 luma in [16, 235]; grey
    images (1 channel) are read as RGB with three equal channels."""
    if rgb255.shape[1] == 1:
        rgb255 = rgb255.expand(-1, 3, -1, -1)
    weights = torch.tensor(_LUMA, dtype=rgb255.dtype, device=rgb255.device).view(1, 3, 1, 1)
    return 16.0 + (rgb255 * weights).sum(1, keepdim=True) / 255.0


@dataclass(frozen=True)
class Convention:
    name: str
    description: str
    transform: Callable[[Tensor, Normalisation], Tensor]  # normalised [0, 1] -> scored values
    data_range: Callable[[Normalisation], float]
    border: int = 0

    def record(self, normalisation: Normalisation) -> dict:
        return {"name": self.name, "description": self.description,
                "data_range": self.data_range(normalisation), "border": self.border}


def _clip_physical(low: float, high: float) -> Callable[[Tensor, Normalisation], Tensor]:
    return lambda x, norm: norm.denormalise(x.clamp(0, 1)).clamp(low, high)


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("ct_full", "HU clipped to [-1024, 3072], data range 4096",
               _clip_physical(-1024.0, 3072.0), lambda n: 4096.0),
    Convention("ct_window", "HU clipped to [-160, 240] (RED-CNN/CTformer window), data range 400",
               _clip_physical(*CT_WINDOW_HU), lambda n: CT_WINDOW_HU[1] - CT_WINDOW_HU[0]),
    Convention("pet", "activity clipped to the declared range [low, high], data range high - low",
               lambda x, n: n.denormalise(x.clamp(0, 1)), lambda n: n.high - n.low),
    Convention("rgb", "RGB levels [0, 255], 4-pixel border crop, data range 255",
               lambda x, n: x.clamp(0, 1) * 255.0, lambda n: 255.0, border=4),
    Convention("y", "BT.601 luma of RGB levels, 4-pixel border crop, data range 255",
               lambda x, n: luma(x.clamp(0, 1) * 255.0), lambda n: 255.0, border=4),
    Convention("reference", "authors' scoring: 8-bit PNG levels read as RGB, luma, no crop, data range 255",
               lambda x, n: luma(torch.round(x.clamp(0, 1) * 255.0)), lambda n: 255.0),
)}

TASK_CONVENTIONS: dict[str, tuple[str, ...]] = {
    "ct": ("ct_full", "ct_window", "reference"),
    "pet": ("pet", "reference"),
    "pathology": ("rgb", "y", "reference"),
}
# the convention of each task's headline number (demo reports, model cards)
MAIN_CONVENTION: dict[str, str] = {"ct": "ct_window", "pet": "pet", "pathology": "y"}


def score(pred: Tensor, target: Tensor, *, convention: str, normalisation: Normalisation) -> dict[str, Tensor]:
    """PSNR, SSIM and RMSE per image ([B] each) of normalised images under ``convention``."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {tuple(CONVENTIONS)}, got {convention!r}")
    conv = CONVENTIONS[convention]
    p, t = conv.transform(pred.double(), normalisation), conv.transform(target.double(), normalisation)
    if conv.border:
        b = conv.border
        p, t = p[..., b:-b, b:-b], t[..., b:-b, b:-b]
    r = conv.data_range(normalisation)
    return {"psnr": psnr(p, t, data_range=r), "ssim": ssim(p, t, data_range=r), "rmse": rmse(p, t)}
