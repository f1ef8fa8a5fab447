"""NAFNet-style U-Net (Chen et al., ECCV 2022): RAT's encoder/decoder with NAFBlocks in the
middle instead of RAT layers — the "no attention" baseline. Ignores ``regions``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .._checks import check_positive_int
from .base import RestorationModel, pad_to_multiple
from .nafblock import NAFBlock
from .unet import build_decoder, build_encoder, run_unet


class NAFNet(RestorationModel):
    architecture = "nafnet"

    def __init__(self, *, in_channels: int = 1, width: int = 32, enc_blocks: Sequence[int] = (2, 2),
                 middle_blocks: int = 2, dec_blocks: Sequence[int] = (2, 2)) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("width", width)
        check_positive_int("middle_blocks", middle_blocks, minimum=0)
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(f"enc_blocks and dec_blocks must have the same number of levels, got {enc_blocks} and {dec_blocks}")
        self._set_config(in_channels=in_channels, width=width, enc_blocks=tuple(enc_blocks),
                         middle_blocks=middle_blocks, dec_blocks=tuple(dec_blocks))
        self.size_multiple = 2 ** len(enc_blocks)
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, in_channels, 3, padding=1)
        self.encoders, self.downs, chan = build_encoder(width, enc_blocks)
        self.middle = nn.Sequential(*(NAFBlock(chan) for _ in range(middle_blocks)))
        self.ups, self.decoders = build_decoder(chan, dec_blocks)

    def _restore(self, x: Tensor, regions: Tensor | None) -> Tensor:
        h, w = x.shape[-2:]
        inp, _, _ = pad_to_multiple(x, self.size_multiple)
        return (run_unet(self, inp, self.middle) + inp)[..., :h, :w]
