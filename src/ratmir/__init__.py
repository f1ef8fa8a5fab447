"""ratmir: the Region Attention Transformer (RAT) for medical image restoration.

RAT (MICCAI 2024) restores low-dose CT, low-count PET and low-resolution pathology images
with attention restricted to regions that a segmenter (SAM or a weight-free backend) finds
in the degraded input.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ratmir")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
