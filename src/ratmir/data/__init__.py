"""Prepared paired datasets: on-disk layout and the PyTorch dataset."""

from .layout import pair_paths, read_manifest
from .paired import PairedDataset, dihedral

__all__ = ["PairedDataset", "dihedral", "pair_paths", "read_manifest"]
