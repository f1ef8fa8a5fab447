"""Experiment configuration: YAML files mapped onto typed dataclasses.

Unknown keys are rejected with a "did you mean" hint, values are type-checked (an int is
accepted where a float is expected), and ``--set a.b=value`` overrides are parsed as YAML
scalars (``--set train.iterations=40 --set model.options.width=16``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from ..errors import UsageError

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass
class ModelConfig:
    name: str = "rat"  # a name in ratmir.models.MODELS
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of that model
    # weights to start from (fine-tuning): a packaged model's name (`ratmir models`), a RUN folder or a
    # .safetensors file; its architecture and options must be these. A resumed run ignores it.
    init: str | None = None


@dataclass
class DataConfig:
    root: str = ""  # a folder written by `ratmir prepare` (relative paths: to the config file)
    train_split: str = "train"
    val_split: str = "val"  # chooses best.pt; carved from the training subjects ("test" only with a warning)
    patch_size: int | None = 256
    batch_size: int = 8
    augment: bool = True
    num_workers: int = 0
    val_max_images: int | None = None  # validate on the first N images only


@dataclass
class LossConfig:
    name: str = "focal_region"  # "focal_region" or "l1"
    gamma: float = 1e-3
    delta: float = 1.0
    normalize: str = "batch"


@dataclass
class OptimConfig:
    lr: float = 2e-4
    lr_min: float = 1e-6  # cosine annealing to this over train.iterations (after the warm-up)
    warmup: int = 0  # iterations of linear warm-up from lr/warmup to lr before the cosine
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = None  # max gradient norm


@dataclass
class TrainConfig:
    iterations: int = 200_000
    seed: int = 0
    log_every: int = 100
    val_every: int = 5000
    checkpoint_every: int = 5000
    amp: str = "none"  # "none" or "bf16"
    ema: float | None = None  # decay of an exponential moving average of the weights
    compile: bool = False
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ... (under torchrun: cuda:LOCAL_RANK)
    dist_timeout_s: float = 1800.0  # torchrun: a collective waiting longer than this fails


@dataclass
class ExperimentConfig:
    task: str = "ct"
    name: str = ""  # label in reports; defaults to the RUN folder's name
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class ConfigError(UsageError):
    """A configuration that cannot be used; the message names the key and the problem
    (a ``ValueError``; the command line exits 2 with its message)."""


def from_dict(cls: type, data: Any, *, where: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, recursively, checking keys and types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__} ({data!r})")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (expected one of {names})"
            raise ConfigError(f"unknown key '{path}'{hint}")
        kwargs[key] = _convert(hints[key], value, path)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=path)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except ConfigError as err:
                errors.append(str(err))
        raise errors[0] if len(errors) == 1 else ConfigError(f"{path}: {value!r} matches none of {args}")
    if tp is Any:
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path} must be a mapping, got {type(value).__name__} ({value!r})")
        return dict(value)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{path} must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
    if tp in (int, float, str, bool):
        if type(value) is not tp:
            raise ConfigError(f"{path} must be {tp.__name__}, got {type(value).__name__} ({value!r})")
        return value
    raise ConfigError(f"{path}: unsupported type {tp}")  # pragma: no cover - a bug in the schema


def to_dict(config: Any) -> dict[str, Any]:
    """The plain-data form of a config (tuples as lists, as YAML writes them)."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override must look like 'section.key=value', got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override key must look like 'section.key', got {key!r}")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: the value {raw!r} is not valid YAML "
                              f"({' '.join(str(err).split())})") from err
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_yaml_mapping(path: Path, *, what: str = "config file") -> dict[str, Any]:
    """The YAML mapping in ``path`` (empty file: {}); a missing file, a YAML error or another
    top-level type is a ConfigError naming the file."""
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping, got {type(data).__name__}")
    return data


def read_yaml(path: Path, *, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML experiment as a dict; a top-level ``base: other.yaml`` (relative to this file) is
    read first and this file's keys are merged over it, section by section."""
    path = path.resolve()
    if path in _seen:
        raise ConfigError(f"config 'base' chain loops: {' -> '.join(map(str, (*_seen, path)))}")
    data = read_yaml_mapping(path)
    root = (data.get("data") or {}).get("root") if isinstance(data.get("data"), dict) else None
    if root and not Path(root).is_absolute():  # relative to the file that names it
        data["data"]["root"] = str((path.parent / root).resolve())
    base = data.pop("base", None)
    if base is not None:
        data = _merge(read_yaml(path.parent / str(base), _seen=(*_seen, path)), data)
    return data


def load_config(path: str | os.PathLike | None, *, overrides: list[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment (or the defaults when ``path`` is None) and apply overrides.

    A relative ``data.root`` is resolved against the folder of the config file that sets it
    (or the current folder for an override).
    """
    data: dict[str, Any] = read_yaml(Path(path)) if path is not None else {}
    base = Path.cwd()
    data = apply_overrides(data, list(overrides))
    config = from_dict(ExperimentConfig, data)
    if config.data.root and not Path(config.data.root).is_absolute():
        config.data.root = str((base / config.data.root).resolve())
    validate(config)
    return config


def validate(config: ExperimentConfig) -> None:
    """Value checks that types alone cannot express."""
    from ..tasks import TASK_NAMES

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(config.task in TASK_NAMES, f"task must be one of {TASK_NAMES}, got {config.task!r}")
    need(config.loss.name in ("focal_region", "l1"), f"loss.name must be 'focal_region' or 'l1', got {config.loss.name!r}")
    need(config.train.amp in ("none", "bf16"), f"train.amp must be 'none' or 'bf16', got {config.train.amp!r}")
    for key in ("iterations", "log_every", "val_every", "checkpoint_every"):
        need(getattr(config.train, key) >= 1, f"train.{key} must be >= 1, got {getattr(config.train, key)}")
    need(config.data.batch_size >= 1, f"data.batch_size must be >= 1, got {config.data.batch_size}")
    need(config.optim.lr > 0, f"optim.lr must be > 0, got {config.optim.lr}")
    need(config.optim.lr_min >= 0, f"optim.lr_min must be >= 0, got {config.optim.lr_min}")
    need(0 <= config.optim.warmup < config.train.iterations,
         f"optim.warmup must be >= 0 and below train.iterations ({config.train.iterations}), got {config.optim.warmup}")
    betas = list(config.optim.betas)
    need(len(betas) == 2 and all(0 <= b < 1 for b in betas), f"optim.betas must be two values in [0, 1), got {betas}")
    clip = config.optim.grad_clip
    need(clip is None or clip > 0, f"optim.grad_clip must be > 0 or null, got {clip}")
    need(config.train.dist_timeout_s > 0, f"train.dist_timeout_s must be > 0, got {config.train.dist_timeout_s}")
    ema = config.train.ema
    need(ema is None or 0 < ema < 1, f"train.ema must be in (0, 1) or null, got {ema}")
    d = config.data
    need(d.patch_size is None or d.patch_size >= 1, f"data.patch_size must be >= 1 or null, got {d.patch_size}")
    need(d.num_workers >= 0, f"data.num_workers must be >= 0, got {d.num_workers}")
    need(d.val_max_images is None or d.val_max_images >= 1,
         f"data.val_max_images must be >= 1 or null, got {d.val_max_images}")
    need(bool(d.train_split), "data.train_split must name a split of the dataset, got ''")
    if config.train.device != "auto":
        from .._checks import parse_device  # imports torch: only when a device is named

        try:
            parse_device("train.device", config.train.device)
        except ValueError:
            raise ConfigError(f"train.device must be 'auto' or a torch device such as 'cpu', 'cuda', 'cuda:1', "
                              f"got {config.train.device!r}") from None
    validate_model_options(config.model)


def validate_model_options(model: ModelConfig) -> None:
    """``model.name`` is a registered model and every key of ``model.options`` is one of its
    keyword arguments (values are checked by the model itself when the trainer builds it)."""
    import inspect

    from ..models import MODELS

    if model.name not in MODELS:
        close = difflib.get_close_matches(model.name, list(MODELS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"model.name must be one of {tuple(MODELS)}, got {model.name!r}{hint}")
    params = inspect.signature(MODELS[model.name].__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in model.options:
        if key not in accepted:
            close = difflib.get_close_matches(str(key), accepted, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of {accepted}"
            raise ConfigError(f"unknown key 'model.options.{key}' for model {model.name!r} ({hint})")
