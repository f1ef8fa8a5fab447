"""Training and evaluation engine: configs, trainer, checkpoints, distributed, evaluation, reports."""

from .config import ConfigError, ExperimentConfig, load_config
from .trainer import TrainResult, train

__all__ = ["ConfigError", "ExperimentConfig", "TrainResult", "load_config", "train"]
