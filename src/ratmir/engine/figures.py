"""Comparison figures: LQ | each method | HQ with a zoomed inset of the same region, and the
absolute-error maps of every image on one shared scale (used by ``ratmir evaluate`` and
``ratmir study``). Images are shown as a radiologist would read them: CT in the
[-160, 240] HU window, PET over its declared range, pathology as RGB.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..conventions import CONVENTIONS, CT_WINDOW_HU

DISPLAY = {"ct": "ct_window", "pet": "pet", "pathology": "rgb"}  # convention used for figures


def display_image(t: torch.Tensor, *, task: str, norm) -> np.ndarray:
    """A normalised [1, C, H, W] image as [H, W] or [H, W, 3] in [0, 1] for figures: CT in the
    [-160, 240] HU window, PET over the declared range, pathology RGB."""
    conv = CONVENTIONS[DISPLAY[task]]
    lo, hi = {"ct": CT_WINDOW_HU, "pathology": (0.0, 255.0)}.get(task, (norm.low, norm.high))
    img = ((conv.transform(t.double().cpu(), norm)[0] - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0).numpy()
    return img[..., 0] if img.shape[-1] == 1 else img


def choose_inset(reference: np.ndarray, *, size: int) -> tuple[int, int, int]:
    """(top, left, size) of the ``size``-square of ``reference`` with the most detail (largest
    summed gradient magnitude): a method-independent choice, the same for every panel."""
    grey = reference.mean(-1) if reference.ndim == 3 else reference
    h, w = grey.shape
    size = int(min(size, h, w))
    gy, gx = np.gradient(grey.astype(np.float64))
    energy = np.hypot(gy, gx)
    c = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), size


def comparison_figure(path: str | Path, *, lq: torch.Tensor, outputs: Mapping[str, torch.Tensor], hq: torch.Tensor,
                      task: str, norm, regions: torch.Tensor | None = None,
                      inset: tuple[int, int, int] | None = None, title: str | None = None, dpi: int = 100) -> Path:
    """Write a figure: top row LQ | each of ``outputs`` | HQ, each with the same zoomed inset;
    bottom row |image - HQ| for LQ and each output on one shared colour scale (display units),
    and the region boundaries over the LQ image when ``regions`` ([1, H, W]) is given.

    ``inset``: (top, left, size) in pixels; default: the most detailed quarter-size square of HQ.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if not outputs:
        raise ValueError("outputs is empty: give at least one method's image")
    ref = display_image(hq, task=task, norm=norm)
    images = {"LQ": display_image(lq, task=task, norm=norm),
              **{name: display_image(t, task=task, norm=norm) for name, t in outputs.items()}, "HQ": ref}
    errors = {name: np.abs(img - ref).mean(-1) if img.ndim == 3 else np.abs(img - ref)
              for name, img in images.items() if name != "HQ"}
    vmax = float(np.percentile(np.concatenate([e.ravel() for e in errors.values()]), 99.5)) or 1e-6
    h, w = ref.shape[:2]
    top, left, size = inset or choose_inset(ref, size=max(8, min(h, w) // 4))
    cols = len(images)
    fig, axes = plt.subplots(2, cols, figsize=(2.6 * cols + 0.8, 5.6), squeeze=False, layout="constrained")
    for ax, (name, img) in zip(axes[0], images.items()):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, edgecolor="yellow", linewidth=1))
        zoom = ax.inset_axes([0.6, 0.0, 0.4, 0.4])
        zoom.imshow(img[top:top + size, left:left + size], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        zoom.set_xticks([])
        zoom.set_yticks([])
        for spine in zoom.spines.values():
            spine.set_edgecolor("yellow")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    shown = None
    for ax, (name, err) in zip(axes[1], errors.items()):
        shown = ax.imshow(err, cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"|{name} - HQ|", fontsize=9)
    for ax in axes[1]:
        ax.axis("off")
    if regions is not None:
        from ..regions.overlay import boundary_overlay

        axes[1, -1].imshow(boundary_overlay(images["LQ"], regions[0].cpu().numpy()))
        axes[1, -1].set_title("regions", fontsize=9)
    fig.colorbar(shown, ax=list(axes[1]), shrink=0.9, label="abs. error (display scale)")
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
