"""Fused-kernel backends of grouped attention for CUDA: FlexAttention and variable-length flash.

Both are exact (no -1000 mask: cross-region pairs are simply skipped) and their memory follows
the tokens, never (B*N)^2:

- ``"varlen"``: ``torch.nn.attention.varlen.varlen_attn`` (flash attention over packed
  sequences, forward and backward). The B*N tokens sorted by segment (the plan's order) are
  packed sequences, one per segment, delimited by cumulative offsets. Flash runs in fp16 / bf16
  only, so this is the CUDA kernel under bf16 autocast.
- ``"flex"``: ``flex_attention`` (compiled on CUDA) with a block mask built from the segment
  offsets, per image: each image's tokens are sorted by segment, and a query block lists only
  the key blocks whose segment range overlaps its own (an interval, since both are sorted).
  Blocks inside one segment on both sides are "full" (no mask evaluation); the others compare a
  per-token segment id. The metadata is B x (N/128)^2 block indices: 16 MB for one image of
  2^18 tokens, where a dense mask would be 2^36 booleans (68 GB). Inductor's kernel needs a head
  dimension of at least 16. On CPU flex runs eagerly (it materialises the scores and has no
  backward): for verification only.

:func:`unsupported_reason` says why a backend cannot run an input; the dispatcher in
:mod:`ratmir.models.grouped_attention` then falls back to the sparse path with one warning.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

FLEX_BLOCK = 128  # FlexAttention's default sparse block size
_HALF = (torch.float16, torch.bfloat16)


@functools.cache
def _flex_api():
    """(flex_attention, BlockMask) or None when this torch has no FlexAttention."""
    try:
        from torch.nn.attention.flex_attention import BlockMask, flex_attention
    except ImportError:  # pragma: no cover - torch without FlexAttention
        return None
    return flex_attention, BlockMask


@functools.cache
def _compiled_flex():
    # dynamic=None: after a shape change, recompile once with dynamic shapes instead of per size
    return torch.compile(_flex_api()[0])


@functools.cache
def _varlen_api():
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:  # pragma: no cover - torch < 2.9
        return None
    return varlen_attn


def unsupported_reason(backend: str, *, device: torch.device, dtype: torch.dtype, head_dim: int,
                       needs_grad: bool) -> str | None:
    """Why ``backend`` ("flex" or "varlen") cannot run attention on such inputs, or None."""
    if backend == "flex":
        if _flex_api() is None:
            return "this torch has no torch.nn.attention.flex_attention"
        if device.type == "cuda" and head_dim < 16:
            return f"FlexAttention's CUDA kernel needs a head dimension >= 16, got {head_dim}"
        if device.type == "cpu" and needs_grad:
            return "FlexAttention has no backward on CPU in this torch"
        return None
    if backend == "varlen":
        if _varlen_api() is None:
            return "this torch has no torch.nn.attention.varlen"
        if device.type != "cuda" or not torch.cuda.is_available():
            return f"varlen attention (flash) runs on CUDA only, got {device.type}"
        if dtype not in _HALF:
            return f"varlen attention (flash) needs float16 or bfloat16, got {dtype}"
        if head_dim % 8 or head_dim > 256:
            return f"varlen attention (flash) needs a head dimension that is a multiple of 8 and <= 256, got {head_dim}"
        if not torch.backends.cuda.is_flash_attention_available() or torch.cuda.get_device_capability(device)[0] < 8:
            return "flash attention is not available on this GPU (needs compute capability >= 8.0)"
        return None
    raise ValueError(f"backend must be 'flex' or 'varlen', got {backend!r}")


def to_tokens(t: Tensor) -> Tensor:
    """[B, H, N, D] -> [B*N, H, D] (token-major, as the plan's ``perm`` indexes them)."""
    b, h, n, d = t.shape
    return t.permute(0, 2, 1, 3).reshape(b * n, h, d)


def from_tokens(t: Tensor, b: int) -> Tensor:
    """[B*N, H, D] -> [B, H, N, D] (inverse of :func:`to_tokens`)."""
    _, h, d = t.shape
    return t.reshape(b, -1, h, d).permute(0, 2, 1, 3)


# -- varlen ------------------------------------------------------------------------------------
def _varlen_offsets(groups) -> tuple[Tensor, int]:
    """Cumulative segment offsets (int32) of the plan's sorted order, and the longest segment."""
    cached = groups.cache.get("varlen_offsets")
    if cached is None:
        _, counts = torch.unique_consecutive(groups.segment_ids, return_counts=True)
        offsets = torch.zeros(counts.numel() + 1, dtype=torch.int32, device=counts.device)
        offsets[1:] = counts.cumsum(0)
        cached = (offsets, int(counts.max()))
        groups.cache["varlen_offsets"] = cached
    return cached


def varlen_grouped(q: Tensor, k: Tensor, v: Tensor, groups, *, scale: float) -> Tensor:
    """Grouped attention as one flash call over packed segments; q, k, v [B, H, N, D]."""
    offsets, longest = _varlen_offsets(groups)
    xs = [to_tokens(t).index_select(0, groups.perm) for t in (q, k, v)]  # [B*N, H, D] sorted
    out = _varlen_api()(*xs, offsets, offsets, longest, longest, scale=scale)
    return from_tokens(out.index_select(0, groups.inverse), q.shape[0])


# -- flex --------------------------------------------------------------------------------------
def image_layout(groups) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image sorted layout of the plan: (perm [B*N] flat token indices, image by image,
    each image's tokens sorted by segment; its inverse; segment id [B, N] per sorted token,
    non-decreasing along each row)."""
    cached = groups.cache.get("image_layout")
    if cached is None:
        b, n = groups.batch_size, groups.num_tokens
        # The plan's order keeps segments contiguous; a stable sort by image keeps that per image.
        order = torch.argsort(torch.div(groups.perm, n, rounding_mode="floor"), stable=True)
        perm = groups.perm.index_select(0, order)
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(perm.numel(), device=perm.device)
        cached = (perm, inverse, groups.segment_ids.index_select(0, order).reshape(b, n))
        groups.cache["image_layout"] = cached
    return cached


def segment_block_lists(seg: Tensor, *, block: int = FLEX_BLOCK) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Block-sparse lists of same-segment attention for sorted segment ids ``seg`` [B, N].

    Returns (partial_num [B, 1, nb], partial_idx [B, 1, nb, nb], full_num, full_idx) in the
    ordered format of ``BlockMask.from_kv_blocks``: for query block i, the key blocks j whose
    segment range overlaps i's, split into "full" ones (i and j inside one and the same
    segment) and "partial" ones (the mask function decides per token). Both are intervals
    of j (the full one inside the overlapping one), so the lists are written from the interval
    ends, without sorting. Memory: a few B x nb x nb int32 tensors, nb = ceil(N / block).
    """
    b, n = seg.shape
    nb = -(-n // block)
    starts = torch.arange(nb, device=seg.device) * block
    first = seg[:, starts].contiguous()  # [B, nb] segment of each block's first / last token,
    last = seg[:, torch.clamp(starts + block, max=n) - 1].contiguous()  # non-decreasing

    def find(sorted_ends: Tensor, values: Tensor, right: bool) -> Tensor:
        return torch.searchsorted(sorted_ends, values, right=right).to(torch.int32)

    lo, hi = find(last, first, False), find(first, last, True)  # j overlaps i iff lo[i] <= j < hi[i]
    # For a block i inside one segment s = first[i] == last[i], the full key blocks are those
    # inside s too: first[j] == s and last[j] == s, the intersection of two intervals (holding i).
    # Other blocks have no full key blocks (an empty run at lo).
    pure = first == last
    full_lo = torch.where(pure, torch.maximum(find(first, first, False), find(last, first, False)), lo)
    full_hi = torch.where(pure, torch.minimum(find(first, first, True), find(last, first, True)), lo)
    k = torch.arange(nb, dtype=torch.int32, device=seg.device)
    before = (full_lo - lo)[..., None]  # partial blocks left of the full run, then those right of it
    partial_idx = torch.where(k < before, lo[..., None] + k, full_hi[..., None] + (k - before))
    full_idx = full_lo[..., None] + k
    partial_num = (hi - lo) - (full_hi - full_lo)
    return (partial_num[:, None], partial_idx.clamp_(max=nb - 1)[:, None],
            (full_hi - full_lo)[:, None], full_idx.clamp_(max=nb - 1)[:, None])


def segment_block_mask(seg: Tensor, *, block: int = FLEX_BLOCK):
    """A FlexAttention ``BlockMask`` for sorted per-image segment ids ``seg`` [B, N]:
    token q attends to token k of the same image iff ``seg[b, q] == seg[b, k]``. The mask
    function runs only inside the partial blocks of :func:`segment_block_lists`."""
    partial_num, partial_idx, full_num, full_idx = segment_block_lists(seg, block=block)
    n = seg.shape[1]

    def same_segment(b, _h, q_idx, kv_idx):
        return seg[b, q_idx] == seg[b, kv_idx]

    return _flex_api()[1].from_kv_blocks(partial_num, partial_idx, full_num, full_idx, BLOCK_SIZE=block,
                                         mask_mod=same_segment, seq_lengths=(n, n))


def flex_grouped(q: Tensor, k: Tensor, v: Tensor, groups, *, scale: float) -> Tensor:
    """Grouped attention with FlexAttention, image by image; q, k, v [B, H, N, D]."""
    b, h, n, d = q.shape
    perm, inverse, seg = image_layout(groups)
    block_mask = groups.cache.get("flex_block_mask")
    if block_mask is None:  # built once per forward pass, shared by every layer
        block_mask = groups.cache["flex_block_mask"] = segment_block_mask(seg)
    xs = [from_tokens(to_tokens(t).index_select(0, perm), b) for t in (q, k, v)]  # [B, H, N, D] sorted
    flex = _compiled_flex() if q.device.type == "cuda" else _flex_api()[0]
    out = flex(*xs, block_mask=block_mask, scale=scale)
    return from_tokens(to_tokens(out).index_select(0, inverse), b)
