"""``ratmir train``: training with crash-safe resume, validation, EMA, bf16 and torchrun.

RUN holds ``config.yaml`` (resolved), ``checkpoints/last.pt`` and ``checkpoints/best.pt``,
``model.safetensors`` (final weights, EMA weights when enabled), ``metrics.jsonl`` and
``tensorboard/``. Running the same command on an existing RUN resumes from ``last.pt``; the
data order and crops are a pure function of (seed, iteration), so a run killed at any moment
and resumed ends with the weights of an uninterrupted run (on CPU).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data import PairedDataset
from ..data.layout import image_shape
from ..errors import RatmirError
from ..losses import FocalRegionLoss
from ..models import build_model, save_pretrained
from ..models.hub import resolve_weights
from ..models.pretrained import load_initial_weights
from ..models.layer_scales import layer_scale_sizes
from ..models.precision import bf16_is_fast
from .checkpoint import atomic_save, load_checkpoint
from .config import ConfigError, ExperimentConfig, _merge, to_dict, validate
from .distributed import DistInfo, all_reduce_sum, barrier, init_distributed, shutdown
from .sampling import ResumableBatchSampler
from .takeoff import TakeoffMonitor, stall_warning
from .validation import validate_model

RUN_FILES = ("config.yaml", "checkpoints", "model.safetensors", "model-best.safetensors", "metrics.jsonl",
             "tensorboard")


class TrainingDivergedError(RatmirError):
    """The training loss, or the weights after a step, became NaN or infinite (exit 1); neither
    was saved, the last checkpoint written before is kept, and the same command resumes from it."""

    exit_code = 1


def build_scheduler(optimizer: torch.optim.Optimizer, *, iterations: int, lr_min: float,
                    warmup: int = 0) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing to ``lr_min`` over ``iterations``; with ``warmup`` > 0, a linear warm-up
    over the first ``warmup`` iterations (from lr/warmup to lr), then the cosine over the rest."""
    if warmup <= 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations, eta_min=lr_min)
    base = optimizer.param_groups[0]["lr"]
    floor = lr_min / base
    span = iterations - warmup

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _say(line: str) -> None:
    """One line on stderr that does not break a progress bar."""
    tqdm.write(line, file=sys.stderr)


@dataclass(frozen=True)
class TrainResult:
    run: Path
    iterations: int
    resumed_from: int
    best: dict[str, float] | None
    seconds: float


def train(config: ExperimentConfig, *, out: str | Path, force: bool = False, progress: bool = True) -> TrainResult:
    """Train ``config`` into the RUN folder ``out`` (resuming if it holds this run).

    The whole config is checked (values, model options, dataset, splits, patch size, device)
    before anything is written into ``out``; a problem raises :class:`ConfigError`."""
    validate(config)
    info, device = init_distributed(config.train.device, timeout_s=config.train.dist_timeout_s)
    try:
        return _Trainer(config, Path(out), info=info, device=device, force=force, progress=progress).run()
    finally:
        shutdown(info)


def _validation_set(config: ExperimentConfig) -> PairedDataset | None:
    """The split that chooses ``best.pt`` (None: no validation). The test split only when asked
    for, with a warning: a model selected on its test images is not an honest result."""
    split = config.data.val_split
    if not split:
        return None
    if split == "test":
        warnings.warn("data.val_split is 'test': best.pt and the validation metrics are chosen on the test images, "
                      "so test scores are optimistic; use the 'val' split that `ratmir prepare` carves from the "
                      "training subjects", UserWarning, stacklevel=3)
    try:
        return _open_split(config, "val_split")
    except ConfigError as err:
        raise ConfigError(f"{err} (datasets prepared before the validation split existed have none: prepare "
                          "again, or set data.val_split to '' for no validation)") from err


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]


def prepare_run_dir(run: Path, config: ExperimentConfig, *, force: bool) -> None:
    """Create RUN, or check that an existing RUN holds the same config (``force``: start over)."""
    saved = run / "config.yaml"
    resolved = to_dict(config)
    if saved.is_file():
        # keys added to the config since that run was written count as their defaults
        old = _merge(to_dict(ExperimentConfig()), yaml.safe_load(saved.read_text()) or {})
        changes = _diff(old, resolved)
        if changes and not force:
            raise ConfigError(
                f"{run} holds a run with a different config ({'; '.join(changes[:5])}); "
                "use another --out, or --force to discard it and start over"
            )
        if changes:
            for name in RUN_FILES:
                target = run / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    elif run.exists() and any(run.iterdir()):
        if not force:
            raise ConfigError(f"{run} exists and is not a ratmir run folder; use another --out or --force")
    run.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(resolved, sort_keys=False))


def _open_split(config: ExperimentConfig, key: str, **options: Any) -> PairedDataset:
    """The dataset split named by ``config.data.<key>``; a missing split is a ConfigError."""
    split = getattr(config.data, key)
    try:
        return PairedDataset(config.data.root, split, **options)
    except ValueError as err:
        raise ConfigError(f"data.{key} is {split!r}: {err}") from err


def _check_patch_size(dataset: PairedDataset, patch: int) -> None:
    for name in dataset.names:
        h, w = image_shape(dataset.paths(name).lq)[:2]
        if h < patch or w < patch:
            raise ConfigError(f"data.patch_size is {patch} but image {name!r} of split {dataset.split!r} is "
                              f"{h}x{w}: expected a patch no larger than every training image")


class _Trainer:
    def __init__(self, config: ExperimentConfig, run: Path, *, info: DistInfo, device: torch.device,
                 force: bool, progress: bool) -> None:
        self.cfg, self.run_dir, self.info, self.device, self.progress = config, run, info, device, progress
        if not config.data.root:
            raise ConfigError("data.root is empty: point it at a dataset made by `ratmir prepare`")
        # Everything is checked before RUN is touched, so a corrected rerun needs no --force.
        d = config.data
        self.train_set = _open_split(config, "train_split", patch_size=d.patch_size, augment=d.augment,
                                     seed=config.train.seed)
        self.val_set = _validation_set(config)
        manifest = self.train_set.manifest
        if manifest["task"] != config.task:
            raise ConfigError(f"task is {config.task!r} but the dataset {d.root} was prepared for {manifest['task']!r}")
        options = dict(config.model.options)
        channels = self.train_set.channels
        if options.setdefault("in_channels", channels) != channels:
            raise ConfigError(f"model.options.in_channels is {options['in_channels']} but the dataset has {channels} channel(s)")
        if d.patch_size is not None:
            _check_patch_size(self.train_set, d.patch_size)
        torch.manual_seed(config.train.seed)
        try:
            model = build_model(config.model.name, **options)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"model.options for {config.model.name!r}: {err}") from err
        resuming = not force and (run / "checkpoints" / "last.pt").is_file()
        if config.model.init and not resuming:  # a resumed run starts from its own checkpoint
            try:  # before RUN is touched: a mismatch leaves nothing behind
                load_initial_weights(model, resolve_weights(config.model.init), task=config.task)
            except (FileNotFoundError, ValueError) as err:
                raise ConfigError(f"model.init: {err}") from err
        if info.is_main:
            prepare_run_dir(run, config, force=force)
        barrier(info)
        self.model = model.to(device)
        self.loss_fn = FocalRegionLoss(gamma=config.loss.gamma if config.loss.name == "focal_region" else 0.0,
                                       delta=config.loss.delta, normalize=config.loss.normalize)
        o = config.optim
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, iterations=config.train.iterations, lr_min=o.lr_min,
                                         warmup=o.warmup)
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.train.ema))
                    if config.train.ema else None)
        self.iteration, self.best = 0, None
        self.resumed_from = self._resume()
        net: torch.nn.Module = self.model
        if info.enabled:
            net = DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
        self.net = torch.compile(net) if config.train.compile else net
        self.takeoff = TakeoffMonitor(iterations=config.train.iterations, warmup=config.optim.warmup)
        if config.train.amp == "bf16" and info.is_main and not bf16_is_fast(device):
            lacks = {"cpu": "no AVX-512 BF16 or AMX", "cuda": "compute capability below 8.0"}.get(device.type,
                                                                                               "no native bf16")
            _say(f"Warning: train.amp is bf16 but {device} does not compute bf16 natively ({lacks}): "
                 "training will be much slower than in fp32; set train.amp: none")

    # -- state -------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration, "best": self.best, "config": to_dict(self.cfg),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        }

    def _resume(self) -> int:
        path = self.run_dir / "checkpoints" / "last.pt"
        if not path.is_file():
            return 0
        state = load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        self.iteration, self.best = int(state["iteration"]), state.get("best")
        return self.iteration

    def _eval_model(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def _log(self, record: dict[str, Any], writer) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key != "iteration" and isinstance(value, (int, float)):
                writer.add_scalar(key, value, record["iteration"])

    # -- loop ----------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, t = self.cfg, self.cfg.train
        sampler = ResumableBatchSampler(num_samples=len(self.train_set), batch_size=cfg.data.batch_size,
                                        seed=t.seed, start_iteration=self.iteration, end_iteration=t.iterations,
                                        rank=self.info.rank, world_size=self.info.world_size)
        loader = DataLoader(self.train_set, batch_sampler=sampler, num_workers=cfg.data.num_workers,
                            pin_memory=self.device.type == "cuda")
        writer = None
        if self.info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        bar = tqdm(total=t.iterations, initial=self.iteration, disable=not (self.progress and self.info.is_main),
                   desc=f"train {cfg.model.name}", unit="it", dynamic_ncols=True)
        autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if t.amp == "bf16" else nullcontext())
        start, window_start, window_its = time.perf_counter(), time.perf_counter(), 0
        self.model.train()
        for batch in loader:
            lq, hq = batch["lq"].to(self.device), batch["hq"].to(self.device)
            regions = batch["regions"].to(self.device)
            with autocast:
                pred = self.net(lq, regions)
            pred = pred.float()  # a non-finite output (NaN weights, bf16 overflow) is refused by the loss: checked here
            loss = self.loss_fn(pred, hq, regions) if bool(torch.isfinite(pred).all()) else None
            self._check_finite(loss, bar, writer)
            with torch.no_grad():  # what returning the input would cost on this batch
                identity = self.loss_fn(lq.float(), hq, regions)
            self.takeoff.add(loss=loss.item(), identity=identity.item())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            self.iteration += 1
            window_its += 1
            bar.update(1)
            last = self.iteration == t.iterations
            validating = self.val_set is not None and (self.iteration % t.val_every == 0 or last)
            checkpointing = self.iteration % t.checkpoint_every == 0 or last
            if validating or checkpointing:
                self._check_weights(bar, writer)
            if self.info.is_main and (self.iteration % t.log_every == 0 or last):
                rate = window_its / max(time.perf_counter() - window_start, 1e-9)
                lr = self.scheduler.get_last_lr()[0]
                bar.set_postfix(loss=f"{loss.item():.4g}", lr=f"{lr:.2e}", its=f"{rate:.2f}")
                scales = {f"scale/{k}": v for k, v in layer_scale_sizes(self.model).items()}
                self._log({"iteration": self.iteration, "loss": loss.item(), **self.takeoff.log_record(), "lr": lr,
                           "it_per_s": rate, **scales}, writer)
                window_start, window_its = time.perf_counter(), 0
            if validating:
                self._validate(writer)
            if self.info.is_main and self.takeoff.stalled(self.iteration):
                line = stall_warning(iteration=self.iteration, iterations=t.iterations,
                                     gain=self.takeoff.gain_db(), config=cfg)
                _say(line)
                self._log({"iteration": self.iteration, "warning": line}, writer)
            if checkpointing:
                if self.info.is_main:
                    atomic_save(self._state(), self.run_dir / "checkpoints" / "last.pt")
                barrier(self.info)
        bar.close()
        if self.info.is_main:
            self._save_final()
            writer.close()
        barrier(self.info)
        return TrainResult(run=self.run_dir, iterations=self.iteration, resumed_from=self.resumed_from,
                           best=self.best, seconds=time.perf_counter() - start)

    def _check_finite(self, loss: torch.Tensor | None, bar: tqdm, writer) -> None:
        """Stop with :class:`TrainingDivergedError` before a non-finite loss (``None``: a
        non-finite model output) touches the weights (every rank stops together under torchrun,
        whichever rank's it was)."""
        mine = loss is None or not bool(torch.isfinite(loss.detach()))
        bad = all_reduce_sum([float(mine)], self.info, device=self.device)[0]
        if bad:
            what = ("the model's output is NaN or infinite" if loss is None else f"the training loss is {loss.item()}"
                    if mine else "the training loss is not finite on another rank")
            self._diverged(f"{what} at iteration {self.iteration + 1} of {self.cfg.train.iterations}; the weights "
                           "were not updated with it", bar, writer)

    def _check_weights(self, bar: tqdm, writer) -> None:
        """Before a validation or a checkpoint: a finite loss can still have had a non-finite
        gradient, and its weights must neither be scored nor replace the last good checkpoint
        (the weights, and so the answer, are the same on every rank under DDP)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            self._diverged(f"the weights became NaN or infinite at iteration {self.iteration} of "
                           f"{self.cfg.train.iterations} (a non-finite gradient); they were not saved", bar, writer)

    def _diverged(self, what: str, bar: tqdm, writer) -> None:
        bar.close()
        if writer is not None:
            writer.close()
        last = self.run_dir / "checkpoints" / "last.pt"
        kept = (f"the last good checkpoint {last} (iteration {int(load_checkpoint(last)['iteration'])}) is kept: "
                "rerun the same command to resume from it" if last.is_file() else "no checkpoint was written yet")
        raise TrainingDivergedError(
            f"{what} and {kept}. A resumed run meets the same batches again; to avoid the divergence, start over "
            "(--force or another --out) with a lower optim.lr, an optim.warmup or an optim.grad_clip")

    def _validate(self, writer) -> None:
        model = self._eval_model()
        metrics = validate_model(model, self.val_set, device=self.device, amp=self.cfg.train.amp,
                                 max_images=self.cfg.data.val_max_images, info=self.info)  # sharded over ranks
        self.model.train()
        if self.info.is_main:
            self._log({"iteration": self.iteration, **{f"val_{k}": v for k, v in metrics.items()}}, writer)
            if self.best is None or metrics["psnr"] > self.best["psnr"]:
                atomic_save({"iteration": self.iteration, "metrics": metrics, "config": to_dict(self.cfg),
                             "model": model.state_dict()}, self.run_dir / "checkpoints" / "best.pt")
        if self.best is None or metrics["psnr"] > self.best["psnr"]:  # every rank keeps the same record
            self.best = {"iteration": self.iteration, **metrics}
        barrier(self.info)

    def _save_final(self) -> None:
        manifest = self.train_set.manifest
        meta = {"task": self.cfg.task, "normalisation": json.dumps(manifest["normalisation"]),
                "units": str(manifest["units"]), "iteration": str(self.iteration),
                "ema": str(self.cfg.train.ema), "run": self.run_dir.name}
        regions = manifest.get("regions") or {}
        if regions.get("backend"):  # what `restore --regions auto` uses with this model
            meta["regions_backend"] = str(regions["backend"])
            meta["regions_window"] = str(regions.get("window") or "auto")
        save_pretrained(self._eval_model(), self.run_dir / "model.safetensors", metadata=meta)
