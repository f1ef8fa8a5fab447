"""What every ratmir model shares: the ``model(x, regions)`` interface, input checks, its
configuration as a dict, and padding to the sizes the architecture needs."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_image, check_label_map


class RestorationModel(nn.Module):
    """Base class: ``forward(x, regions=None)`` with ``x`` [B, C, H, W] -> [B, C, H, W].

    Subclasses set ``architecture`` (the registry name), call ``_set_config(**kwargs)`` with
    their constructor's keyword arguments and implement ``_restore``. Models that ignore
    ``regions`` still validate it, so a wrong label map is caught whatever the model.
    """

    architecture: ClassVar[str]
    uses_regions: ClassVar[bool] = False
    size_multiple: int = 1  # inputs are padded inside to a multiple of this

    def _set_config(self, **config: Any) -> None:
        self._config = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (JSON-serialisable)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._config.items()}

    @property
    def in_channels(self) -> int:
        return int(self._config["in_channels"])

    def forward(self, x: Tensor, regions: Tensor | None = None) -> Tensor:
        """x [B, C, H, W] float, regions [B, H, W] integer labels (or None) -> [B, C, H, W]."""
        check_image(x, channels=self.in_channels)
        if regions is not None:
            regions = check_label_map(regions, like=x)
        return self._restore(x, regions)

    def _restore(self, x: Tensor, regions: Tensor | None) -> Tensor:
        raise NotImplementedError


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, int, int]:
    """Pad [..., H, W] at the bottom/right to multiples of ``multiple``.

    Reflection, or replication where the image is too small to reflect. Returns the padded
    tensor and the padding (pad_h, pad_w).
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, 0, 0
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), pad_h, pad_w
