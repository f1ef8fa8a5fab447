"""Models: RAT and its parts, baselines, reference-checkpoint import, safetensors save/load."""

from .base import RestorationModel
from .cnn import DnCNN, REDCNN
from .nafnet import NAFNet
from .registry import MODELS, build_model
from .swinir import SwinIRLite
from .grouped_attention import TokenGroups, grouped_attention, plan_groups
from .nafblock import NAFBlock
from .pretrained import load_pretrained, read_metadata, save_pretrained
from .rat import RAT, RATGroup, RATLayer
from .reference import from_reference, infer_reference_config

__all__ = [
    "RestorationModel", "MODELS", "build_model", "REDCNN", "DnCNN", "NAFNet", "SwinIRLite",
    "RAT", "RATGroup", "RATLayer", "NAFBlock", "TokenGroups", "grouped_attention", "plan_groups",
    "from_reference", "infer_reference_config", "save_pretrained", "load_pretrained", "read_metadata",
]
