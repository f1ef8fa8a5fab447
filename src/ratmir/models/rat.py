"""The Region Attention Transformer (RAT), numerically identical to the authors' code.

U-shape: 3x3 conv in -> encoder levels (NAFBlocks, then a 2x2 stride-2 conv) -> middle groups
of RAT layers (each group closes with a 3x3 conv and a residual; a residual around the whole
middle) -> decoder levels (1x1 conv + PixelShuffle(2), skip sum, NAFBlocks) -> 3x3 conv out;
output = input + residual. Module names follow the reference so its state dicts load as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int
from .attention import RegionAttention, WindowAttention
from .base import RestorationModel, pad_to_multiple
from .grouped_attention import BACKENDS, TokenGroups, plan_groups
from .layers import STRIP_BYTES, ConvMLP, LayerNorm2d, by_row_strips, strip_rows, zero_init
from .unet import build_decoder, build_encoder, checkpoint_mode, maybe_checkpoint, run_unet

ATTENTION_MODES = ("region", "window", "global")


class RATLayer(nn.Module):
    """LN -> grouped MSA -> LN -> MLP, then LN -> W-MSA -> LN -> MLP, on [B, C, H, W].

    Both attention branches are scaled by per-channel layer scales that start at zero.
    """

    def __init__(self, channels: int, *, num_heads: int, window_size: int, mlp_ratio: float,
                 mask_value: float) -> None:
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.norm_ra = LayerNorm2d(channels)
        self.ra = RegionAttention(channels, num_heads=num_heads, mask_value=mask_value)
        self.lambda_ra = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.norm_ra_mlp = LayerNorm2d(channels)
        self.mlp_ra = ConvMLP(channels, hidden=hidden)
        self.norm_wa = LayerNorm2d(channels)
        self.wa = WindowAttention(channels, num_heads=num_heads, window_size=window_size)
        self.lambda_wa = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.norm_wa_mlp = LayerNorm2d(channels)
        self.mlp_wa = ConvMLP(channels, hidden=hidden)
        self.strip_bytes = STRIP_BYTES  # inference strips (ratmir.models.layers.strip_rows); 0: off

    def forward(self, x: Tensor, groups: TokenGroups, *, backend: str) -> Tensor:
        # addcmul: x + scale * branch in one pass over memory
        x = torch.addcmul(x, self.ra(self.norm_ra(x), groups, backend=backend), self.lambda_ra)
        # the rest is local to bands of window rows: in inference, run it strip by strip
        rows = strip_rows(x, channels=self.mlp_ra.fc1.out_channels, strip_bytes=self.strip_bytes,
                          multiple=self.wa.window_size)
        return by_row_strips(lambda rs: self._local(x[:, :, rs]), x, rows=rows)

    def _local(self, x: Tensor) -> Tensor:
        """MLP, then LN -> W-MSA and MLP: row-local (windows never straddle a strip)."""
        x = x + self.mlp_ra(self.norm_ra_mlp(x))
        x = torch.addcmul(x, self.wa(self.norm_wa(x)), self.lambda_wa)
        return x + self.mlp_wa(self.norm_wa_mlp(x))


class RATGroup(nn.Module):
    """``n`` RAT layers, a 3x3 conv and a residual around them."""

    def __init__(self, channels: int, *, num_layers: int, **layer_kwargs: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(RATLayer(channels, **layer_kwargs) for _ in range(num_layers))
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor, groups: TokenGroups, *, backend: str, checkpointing: bool = False) -> Tensor:
        shortcut = x
        for layer in self.layers:
            x = maybe_checkpoint(layer, x, groups, backend=backend, enabled=checkpointing)
        return self.conv(x) + shortcut


class RAT(RestorationModel):
    """Region Attention Transformer.

    Args:
        in_channels: image channels (1 for CT/PET, 3 for pathology).
        width: channels after the input conv; doubled at each encoder level.
        enc_blocks / dec_blocks: NAFBlocks per encoder / decoder level (same number of levels).
        middle_layers: RAT layers at the bottleneck, in groups of ``layers_per_group``.
        num_heads, window_size, mlp_ratio: of every RAT layer.
        mask_value: additive logit across regions in the dense backend (the reference's -1000).
        attention: first sub-layer of each RAT layer: ``"region"`` (R-MSA), ``"window"``
            (W-MSA) or ``"global"`` (full MSA) -- the paper's Table 4 ablation.
        attention_backend: ``"auto"``, ``"sparse"``, ``"dense"``, ``"flex"`` or ``"varlen"`` (see
            :mod:`ratmir.models.grouped_attention`).
        checkpointing: activation checkpointing in training (recompute in backward instead of
            storing activations; no effect on results or in inference): ``"none"`` (or False),
            ``"unet"`` (the NAFBlocks of the encoder and decoder) or ``"all"`` (or True: NAFBlocks
            and RAT layers; the default: at 256², about a third of the memory of ``"none"`` for
            ~1.14x the time, so the paper's batch of 8 trains in 4 GB). Measured in README
            "Training".
        identity_init: zero-initialise the output convolution, so the untrained model returns
            its input and training starts from "no change" (useful when the degradation is
            mild). The reference initialises it randomly (False).

    Call ``model(x, regions)`` with ``x`` float [B, C, H, W] and ``regions`` an integer label
    map [B, H, W] (any integer values; ignored, and optional, unless ``attention="region"``).
    Any H, W work: the input is padded to a multiple of ``size_multiple`` inside and the
    output cropped back; padded pixels form groups of their own in the first sub-layer.
    """

    architecture = "rat"
    uses_regions = True

    def __init__(
        self,
        *,
        in_channels: int = 1,
        width: int = 64,
        enc_blocks: Sequence[int] = (2, 2),
        dec_blocks: Sequence[int] = (2, 2),
        middle_layers: int = 12,
        layers_per_group: int = 3,
        num_heads: int = 8,
        window_size: int = 4,
        mlp_ratio: float = 2.0,
        mask_value: float = -1000.0,
        attention: str = "region",
        attention_backend: str = "auto",
        checkpointing: bool | str = "all",
        identity_init: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("width", width), ("num_heads", num_heads),
                            ("window_size", window_size), ("layers_per_group", layers_per_group)):
            check_positive_int(name, value)
        check_positive_int("middle_layers", middle_layers, minimum=0)
        enc_blocks, dec_blocks = tuple(enc_blocks), tuple(dec_blocks)
        for name, blocks in (("enc_blocks", enc_blocks), ("dec_blocks", dec_blocks)):
            for i, n in enumerate(blocks):
                check_positive_int(f"{name}[{i}]", n, minimum=0)
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(
                f"enc_blocks and dec_blocks must have the same number of levels, got "
                f"{len(enc_blocks)} ({enc_blocks}) and {len(dec_blocks)} ({dec_blocks})"
            )
        if middle_layers % layers_per_group:
            raise ValueError(
                f"middle_layers ({middle_layers}) must be a multiple of layers_per_group ({layers_per_group})"
            )
        latent = width * 2 ** len(enc_blocks)
        if latent % num_heads:
            raise ValueError(f"latent channels width*2**levels = {latent} must be divisible by num_heads ({num_heads})")
        if not mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be > 0, got {mlp_ratio}")
        check_choice("attention", attention, ATTENTION_MODES)
        check_choice("attention_backend", attention_backend, BACKENDS)
        self._set_config(
            in_channels=in_channels, width=width, enc_blocks=enc_blocks, dec_blocks=dec_blocks,
            middle_layers=middle_layers, layers_per_group=layers_per_group, num_heads=num_heads,
            window_size=window_size, mlp_ratio=float(mlp_ratio), mask_value=float(mask_value),
            attention=attention, attention_backend=attention_backend, checkpointing=checkpoint_mode(checkpointing),
            identity_init=bool(identity_init),
        )
        self.attention = attention
        self.attention_backend = attention_backend
        self.checkpointing = checkpoint_mode(checkpointing)
        self.window_size = window_size
        self.stride = 2 ** len(enc_blocks)
        self.size_multiple = self.stride * window_size

        self.intro = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        self.ending = nn.Conv2d(width, in_channels, kernel_size=3, padding=1)
        self.encoders, self.downs, chan = build_encoder(width, enc_blocks)
        self.middle_blks = nn.ModuleList(
            RATGroup(chan, num_layers=layers_per_group, num_heads=num_heads, window_size=window_size,
                     mlp_ratio=mlp_ratio, mask_value=mask_value)
            for _ in range(middle_layers // layers_per_group)
        )
        self.ups, self.decoders = build_decoder(chan, dec_blocks)
        if identity_init:
            zero_init(self.ending)

    def _restore(self, x: Tensor, regions: Tensor | None) -> Tensor:
        if regions is None and self.attention == "region":
            raise ValueError("attention='region' needs a region label map `regions` [B, H, W], got None")
        h, w = x.shape[-2:]
        inp, pad_h, pad_w = pad_to_multiple(x, self.size_multiple)
        groups = self._groups(regions, x.shape[0], h, w, pad_h, pad_w)
        backend = self.attention_backend  # "auto": chosen per call from the device and dtype

        def middle(z: Tensor) -> Tensor:
            shortcut = z
            for blk in self.middle_blks:
                z = blk(z, groups, backend=backend, checkpointing=self.checkpointing == "all")
            return z + shortcut

        x = run_unet(self, inp, middle, checkpointing=self.checkpointing != "none") + inp
        return x[..., :h, :w]

    def _groups(self, regions: Tensor | None, b: int, h: int, w: int, pad_h: int, pad_w: int) -> TokenGroups:
        """Group label of every latent token, [B, Hl*Wl], planned for attention.

        Region labels are sampled at the top-left pixel of each stride x stride block (what
        ``F.interpolate(mode="nearest", scale_factor=1/stride)`` does); tokens whose sample
        lies in the padding form a group of their own.
        """
        s = self.stride
        hl, wl = (h + pad_h) // s, (w + pad_w) // s
        device = self.intro.weight.device
        rows = torch.arange(hl, device=device)[:, None]
        cols = torch.arange(wl, device=device)[None, :]
        padded = ((rows * s >= h) | (cols * s >= w)).expand(b, hl, wl)
        if self.attention == "region":
            sampled = F.pad(regions, (0, pad_w, 0, pad_h))[:, ::s, ::s]
            _, group = torch.unique(sampled, return_inverse=True)
        elif self.attention == "window":
            ws = self.window_size
            group = ((rows // ws) * (wl // ws) + cols // ws).expand(b, hl, wl)
        else:
            group = torch.zeros(b, hl, wl, dtype=torch.int64, device=device)
        labels = group * 2 + padded.long()
        return plan_groups(labels.reshape(b, hl * wl))

