"""The ``sam`` backend: Segment Anything's automatic mask generator + the reference post-processing.

Uses the official ``segment-anything`` package. Weights come from a local checkpoint (nothing
is downloaded): ``checkpoint=`` / ``--sam-checkpoint PATH``, or the environment variable
``RATMIR_SAM_CHECKPOINT``. The paper used ViT-B (``sam_vit_b_01ec64.pth``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import check_choice, check_number, check_positive_int
from .._files import file_sha256
from .intensity import to_uint8_rgb
from .postprocess import masks_to_label_map
from .unit_image import check_unit_image

SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
CHECKPOINT_ENV = "RATMIR_SAM_CHECKPOINT"
_EMBED_WIDTH = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}
_WIDTH_KEY = "image_encoder.patch_embed.proj.weight"
HOW_TO_PROVIDE = (
    "download an official SAM checkpoint (e.g. sam_vit_b_01ec64.pth for vit_b) and pass "
    f"--sam-checkpoint PATH or set {CHECKPOINT_ENV}=PATH"
)


def configured_checkpoint(checkpoint: str | os.PathLike | None = None) -> Path | None:
    """``checkpoint`` if given, else ``$RATMIR_SAM_CHECKPOINT`` if set, else None."""
    if checkpoint is not None and str(checkpoint) != "":
        return Path(checkpoint).expanduser()
    env = os.environ.get(CHECKPOINT_ENV, "").strip()
    return Path(env).expanduser() if env else None


def default_device() -> torch.device:
    """CUDA (the local rank's GPU under torchrun) when available, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def _read_state_dict(path: Path) -> dict:
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise ValueError(f"cannot read SAM checkpoint {path} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                         f"{HOW_TO_PROVIDE}") from exc
    if isinstance(state, dict) and "model" in state and _WIDTH_KEY not in state:
        state = state["model"]
    if not isinstance(state, dict) or _WIDTH_KEY not in state:
        raise ValueError(f"{path} is not a SAM checkpoint (no {_WIDTH_KEY!r} weight); {HOW_TO_PROVIDE}")
    return state


def _checked_state(checkpoint: str | os.PathLike | None, model_type: str) -> tuple[Path, dict]:
    """The configured checkpoint's path and state dict (memory-mapped when possible), after
    checking that it exists, is a SAM checkpoint and holds ``model_type``."""
    check_choice("sam_model_type", model_type, SAM_MODEL_TYPES)
    path = configured_checkpoint(checkpoint)
    if path is None:
        raise ValueError(f"no SAM checkpoint configured: {HOW_TO_PROVIDE} (or use a weight-free backend: "
                         "--backend felzenszwalb)")
    if not path.is_file():
        raise ValueError(f"SAM checkpoint {path} does not exist: {HOW_TO_PROVIDE}")
    state = _read_state_dict(path)
    width = int(state[_WIDTH_KEY].shape[0])
    found = _EMBED_WIDTH.get(width)
    if found != model_type:
        what = found if found else f"an unknown SAM variant (embedding width {width})"
        hint = f"pass --sam-model-type {found}" if found else HOW_TO_PROVIDE
        raise ValueError(f"SAM checkpoint {path} holds {what}, not {model_type}: {hint}")
    return path, state


def load_sam_model(*, checkpoint: str | os.PathLike | None, model_type: str = "vit_b",
                   device: str | torch.device | None = None) -> torch.nn.Module:
    """Build SAM ``model_type`` and load its weights from a local checkpoint (or the env variable).

    Raises ValueError, in one line saying how to provide a checkpoint, when none is configured,
    the file is missing or unreadable, or it holds another model type.
    """
    from segment_anything import sam_model_registry

    path, state = _checked_state(checkpoint, model_type)
    model = sam_model_registry[model_type]()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"SAM checkpoint {path} does not fit the {model_type} architecture "
                         f"({str(exc).splitlines()[0]}); {HOW_TO_PROVIDE}") from exc
    return model.to(device if device is not None else default_device()).eval()


def _sha256_state(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


class SamBackend:
    """SAM automatic masks -> label map (the reference rule of :func:`masks_to_label_map`).

    Args:
        checkpoint: local checkpoint file; default ``$RATMIR_SAM_CHECKPOINT``.
        model_type: ``vit_b`` (the paper's), ``vit_l`` or ``vit_h``; must match the checkpoint.
        model: a ready ``segment_anything.modeling.Sam`` instead of a checkpoint (e.g. a small
            model for tests); its weights are fingerprinted for the up-to-date check.
        device: where SAM runs; default the (local-rank) GPU if any, else the CPU.
            A checkpoint is checked at once but loaded (and moved to the device) on the first
            image only, so a parent process that hands files to workers never holds a copy.
        points_per_side, pred_iou_thresh, stability_score_thresh, box_nms_thresh,
        crop_n_layers, min_mask_region_area, points_per_batch: passed to
        ``SamAutomaticMaskGenerator`` (its defaults); ``min_mask_region_area > 0`` needs OpenCV.
    """

    name = "sam"

    def __init__(
        self,
        *,
        checkpoint: str | os.PathLike | None = None,
        model_type: str = "vit_b",
        model: torch.nn.Module | None = None,
        device: str | None = None,
        points_per_side: int = 32,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        min_mask_region_area: int = 0,
        points_per_batch: int = 64,
    ) -> None:
        from segment_anything.modeling import Sam

        self.model_type = check_choice("sam_model_type", model_type, SAM_MODEL_TYPES)
        self.points_per_side = check_positive_int("points_per_side", points_per_side)
        self.pred_iou_thresh = check_number("pred_iou_thresh", pred_iou_thresh, low=0.0, high=1.0)
        self.stability_score_thresh = check_number("stability_score_thresh", stability_score_thresh,
                                                   low=0.0, high=1.0)
        self.box_nms_thresh = check_number("box_nms_thresh", box_nms_thresh, low=0.0, high=1.0)
        self.crop_n_layers = check_positive_int("crop_n_layers", crop_n_layers, minimum=0)
        self.min_mask_region_area = check_positive_int("min_mask_region_area", min_mask_region_area, minimum=0)
        check_positive_int("points_per_batch", points_per_batch)
        if self.min_mask_region_area > 0 and importlib.util.find_spec("cv2") is None:
            raise ValueError(f"min_mask_region_area={self.min_mask_region_area} needs OpenCV (SAM's own clean-up "
                             "uses it): pip install opencv-python-headless, or set it to 0")
        if model is not None:
            if checkpoint is not None:
                raise ValueError("pass either checkpoint or model to SamBackend, not both")
            if not isinstance(model, Sam):
                raise TypeError(f"model must be a segment_anything.modeling.Sam, got {type(model).__name__}")
            self._checkpoint: Path | None = None
            self._model: torch.nn.Module | None = model.to(device if device is not None else model.device).eval()
        else:
            self._checkpoint, _ = _checked_state(checkpoint, self.model_type)  # fail fast, load later
            self._model = None
        self._device = device
        self._fingerprint: str | None = None
        self._generator_options = dict(
            points_per_side=self.points_per_side,
            points_per_batch=points_per_batch,
            pred_iou_thresh=self.pred_iou_thresh,
            stability_score_thresh=self.stability_score_thresh,
            box_nms_thresh=self.box_nms_thresh,
            crop_n_layers=self.crop_n_layers,
            min_mask_region_area=self.min_mask_region_area,
            output_mode="binary_mask",
        )
        self._generator = None

    @property
    def model(self) -> torch.nn.Module:
        """The SAM model, loaded from the checkpoint on first use."""
        if self._model is None:
            self._model = load_sam_model(checkpoint=self._checkpoint, model_type=self.model_type, device=self._device)
        return self._model

    def _mask_generator(self):
        if self._generator is None:
            from segment_anything import SamAutomaticMaskGenerator

            self._generator = SamAutomaticMaskGenerator(self.model, **self._generator_options)
        return self._generator

    def _weights_fingerprint(self) -> str:
        if self._fingerprint is None:  # computed once, only when a run needs it
            if self._checkpoint is not None:
                self._fingerprint = "file-sha256:" + file_sha256(self._checkpoint)
            else:
                self._fingerprint = "state-sha256:" + _sha256_state(self.model)
        return self._fingerprint

    def settings(self) -> dict[str, Any]:
        # The weights' hash, not the checkpoint's path: moving the file keeps label maps up to date.
        return {
            "model_type": self.model_type if self._checkpoint is not None else "custom",
            "weights": self._weights_fingerprint(),
            "points_per_side": self.points_per_side,
            "pred_iou_thresh": self.pred_iou_thresh,
            "stability_score_thresh": self.stability_score_thresh,
            "box_nms_thresh": self.box_nms_thresh,
            "crop_n_layers": self.crop_n_layers,
            "min_mask_region_area": self.min_mask_region_area,
        }

    def masks(self, image01: np.ndarray) -> list[dict[str, Any]]:
        """The generator's raw mask records for an image in [0, 1]."""
        return self._mask_generator().generate(to_uint8_rgb(check_unit_image(image01)))

    def segment(self, image01: np.ndarray) -> np.ndarray:
        return masks_to_label_map(self.masks(image01), shape=image01.shape[:2])
