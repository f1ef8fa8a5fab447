"""Models by name: RAT and the comparison baselines, all called as ``model(x, regions)``."""

from __future__ import annotations

from typing import Any

from .base import RestorationModel
from .cnn import DnCNN, REDCNN
from .nafnet import NAFNet
from .rat import RAT
from .swinir import SwinIRLite

MODELS: dict[str, type[RestorationModel]] = {
    cls.architecture: cls for cls in (RAT, REDCNN, DnCNN, NAFNet, SwinIRLite)
}


def build_model(name: str, **config: Any) -> RestorationModel:
    """Instantiate a registered model: ``build_model("rat", width=32)``."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {tuple(MODELS)}, got {name!r}")
    return MODELS[name](**config)
