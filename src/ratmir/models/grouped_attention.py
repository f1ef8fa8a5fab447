"""Exact attention restricted to groups of tokens (regions), without an N x N mask.

R-MSA lets a token attend only to tokens with the same region label. The authors' code adds a
dense [B, N, N] mask of 0 / -1000 to the logits, which costs O(N^2) memory per head and layer.
Here the tokens are sorted by (image, label) once per forward pass and attention runs on each
contiguous segment, so the cost is proportional to sum(segment size^2):

- segments longer than ``loop_min`` tokens: one ``scaled_dot_product_attention`` call each;
- shorter segments: bucketed by length, padded to the bucket's capacity and batched through
  one SDPA call per bucket with a key-padding mask (no padding at all when every segment of a
  bucket has the same length, e.g. W-MSA windows).

The result equals the dense -1000 mask to float tolerance: ``exp(-1000 + ...)`` underflows to
zero in float32 unless a cross-region logit beats the in-region maximum by ~900.

Backends (``attention_backend``):

- ``"sparse"``: the segment computation above, pure PyTorch, forward and backward everywhere.
- ``"dense"``: the reference computation (additive mask), for verification and small inputs.
- ``"varlen"``: flash attention over the segments as packed sequences (CUDA, fp16/bf16).
- ``"flex"``: FlexAttention (compiled on CUDA) with a per-image block mask built from the
  segment offsets (see :mod:`ratmir.models.fused_attention`).
- ``"auto"``: chosen per call: on CUDA ``"varlen"`` for fp16/bf16 inputs (e.g. under bf16
  autocast), else ``"flex"``; ``"sparse"`` on other devices. A fused backend that cannot run
  an input (e.g. flex with a head dimension below 16, as the demo RAT's 8) falls back to
  ``"sparse"`` with one warning. None of them builds an N x N mask.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import fused_attention

BACKENDS = ("auto", "sparse", "dense", "flex", "varlen")

# Padded capacities for short segments: at most ~1.5x padding in length.
_BUCKET_CAPACITIES = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256])


@dataclass(frozen=True)
class _Chunk:
    """A contiguous run of sorted tokens: one long segment or a bucket of short ones."""

    num_tokens: int
    num_segments: int
    capacity: int  # padded segment length (== num_tokens for a single segment)
    gather: Tensor | None = None  # [S, capacity] local token index, None if no padding needed
    valid: Tensor | None = None  # [S, capacity] bool, True for real tokens


@dataclass(frozen=True)
class TokenGroups:
    """A partition of B x N tokens into groups, planned once and reused by every layer.

    Attributes:
        labels: [B, N] int64 group label of every token (any integers).
        perm: [B*N] token order sorted by segment (flat index b * N + n).
        inverse: [B*N] inverse of ``perm``.
        chunks: runs of the sorted order processed by one SDPA call each.
        segment_ids: [B*N] segment index of each token in sorted order (non-decreasing).
    """

    labels: Tensor
    perm: Tensor
    inverse: Tensor
    chunks: tuple[_Chunk, ...]
    segment_ids: Tensor
    num_segments: int
    cache: dict = field(default_factory=dict, compare=False, repr=False)  # per-backend extras

    @property
    def batch_size(self) -> int:
        return self.labels.shape[0]

    @property
    def num_tokens(self) -> int:
        return self.labels.shape[1]

    @property
    def cost(self) -> int:
        """Sum of squared segment sizes: the attention cost in logits."""
        return sum(c.num_segments * c.capacity**2 for c in self.chunks)


def plan_groups(labels: Tensor, *, loop_min: int = 256) -> TokenGroups:
    """Plan the segment computation for labels [B, N] (any int64 values).

    Segments longer than ``loop_min`` get an SDPA call of their own; shorter ones are bucketed.
    """
    if labels.dim() != 2:
        raise ValueError(f"labels must be [B, N], got shape {tuple(labels.shape)}")
    device = labels.device
    b, n = labels.shape
    lab = labels.detach().to("cpu", torch.int64).numpy()
    # Segment key: image index first, so images never share a segment.
    _, label_ids = np.unique(lab, return_inverse=True)
    label_ids = label_ids.reshape(b, n)
    keys = (np.arange(b, dtype=np.int64)[:, None] * (int(label_ids.max()) + 1) + label_ids).ravel()
    _, seg_of_token, counts = np.unique(keys, return_inverse=True, return_counts=True)

    # Order segments: long ones first (each its own chunk), then short ones by capacity.
    long_seg = counts > loop_min
    cap_index = np.searchsorted(_BUCKET_CAPACITIES, counts)  # first capacity >= count
    in_table = cap_index < len(_BUCKET_CAPACITIES)
    capacity = np.where(in_table, _BUCKET_CAPACITIES[np.minimum(cap_index, len(_BUCKET_CAPACITIES) - 1)], counts)
    capacity = np.where(long_seg, counts, capacity)
    group_key = np.where(long_seg, -1, capacity)
    order = np.lexsort((np.arange(len(counts)), group_key))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    perm = np.argsort(rank[seg_of_token], kind="stable")
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)

    chunks: list[_Chunk] = []
    sorted_counts = counts[order]
    sorted_caps = capacity[order]
    sorted_long = long_seg[order]
    start = 0
    while start < len(order):
        if sorted_long[start]:
            size = int(sorted_counts[start])
            chunks.append(_Chunk(num_tokens=size, num_segments=1, capacity=size))
            start += 1
            continue
        cap = sorted_caps[start]
        stop = start
        while stop < len(order) and not sorted_long[stop] and sorted_caps[stop] == cap:
            stop += 1
        chunks.append(_bucket_chunk(sorted_counts[start:stop], int(cap), device))
        start = stop

    segment_ids = torch.from_numpy(np.sort(rank[seg_of_token])).to(device)
    return TokenGroups(
        labels=labels,
        perm=torch.from_numpy(perm).to(device),
        inverse=torch.from_numpy(inverse).to(device),
        chunks=tuple(chunks),
        segment_ids=segment_ids,
        num_segments=len(counts),
    )


def _bucket_chunk(counts: np.ndarray, capacity: int, device: torch.device) -> _Chunk:
    total = int(counts.sum())
    if (counts == capacity).all():
        return _Chunk(num_tokens=total, num_segments=len(counts), capacity=capacity)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(capacity)
    valid = pos[None, :] < counts[:, None]
    gather = starts[:, None] + np.minimum(pos[None, :], counts[:, None] - 1)
    return _Chunk(
        num_tokens=total,
        num_segments=len(counts),
        capacity=capacity,
        gather=torch.from_numpy(gather).to(device),
        valid=torch.from_numpy(valid).to(device),
    )


def grouped_attention(
    q: Tensor, k: Tensor, v: Tensor, groups: TokenGroups, *, scale: float, backend: str = "sparse",
    mask_value: float = -1000.0,
) -> Tensor:
    """Multi-head attention within groups.

    Args:
        q, k, v: [B, heads, N, D].
        groups: from :func:`plan_groups` on labels [B, N].
        scale: logit scale (the reference uses ``num_heads ** -0.5``).
        backend: one of ``BACKENDS`` (``"auto"`` is resolved per call from q's device and
            dtype).
        mask_value: additive logit for cross-group pairs in the ``"dense"`` backend.

    Returns:
        [B, heads, N, D].
    """
    qkv = torch.stack([fused_attention.to_tokens(t) for t in (q, k, v)], dim=1)
    out = grouped_attention_packed(qkv, groups, scale=scale, backend=backend, mask_value=mask_value)
    return fused_attention.from_tokens(out, q.shape[0])


def grouped_attention_packed(
    qkv: Tensor, groups: TokenGroups, *, scale: float, backend: str = "sparse", mask_value: float = -1000.0,
) -> Tensor:
    """:func:`grouped_attention` on token-major input: qkv [B*N, 3, heads, D] -> [B*N, heads, D].

    This is the layout of a channels-last 1x1-conv output ([B, H, W, 3*C] in memory, channels
    ordered (qkv, head, d)), so the sparse path reads it without a transpose.
    """
    if qkv.dim() != 4 or qkv.shape[1] != 3 or qkv.shape[0] != groups.batch_size * groups.num_tokens:
        raise ValueError(f"qkv must be [B*N={groups.batch_size * groups.num_tokens}, 3, heads, D], "
                         f"got {tuple(qkv.shape)}")
    if backend == "auto":
        backend = resolve_backend(backend, qkv.device, dtype=qkv.dtype)
    if backend in ("flex", "varlen"):
        needs_grad = torch.is_grad_enabled() and qkv.requires_grad
        reason = fused_attention.unsupported_reason(backend, device=qkv.device, dtype=qkv.dtype,
                                                    head_dim=qkv.shape[-1], needs_grad=needs_grad)
        if reason is not None:
            _warn_fallback(backend, reason)
            backend = "sparse"
    if backend == "sparse":
        return _sparse(qkv, groups, scale=scale)
    b = groups.batch_size
    q, k, v = (fused_attention.from_tokens(qkv[:, i], b) for i in range(3))
    if backend == "dense":
        out = _dense(q, k, v, groups.labels, scale=scale, mask_value=mask_value)
    elif backend == "flex":
        out = fused_attention.flex_grouped(q, k, v, groups, scale=scale)
    elif backend == "varlen":
        out = fused_attention.varlen_grouped(q, k, v, groups, scale=scale)
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return fused_attention.to_tokens(out)


def resolve_backend(backend: str, device: torch.device, *, dtype: torch.dtype = torch.float32) -> str:
    """Map ``"auto"`` to the exact backend for inputs of ``dtype`` on ``device`` (see the module
    docstring); other names are returned as they are."""
    if backend != "auto":
        return backend
    if device.type != "cuda":
        return "sparse"
    return "varlen" if dtype in (torch.float16, torch.bfloat16) else "flex"


@functools.cache
def _warn_fallback(backend: str, reason: str) -> None:
    """Warn once per process and reason that ``backend`` fell back to the sparse path."""
    warnings.warn(f"attention backend {backend!r} cannot run this input ({reason}); using the exact "
                  "'sparse' backend instead", RuntimeWarning, stacklevel=4)


@contextlib.contextmanager
def attention_dtype(device: torch.device, dtype: torch.dtype) -> Iterator[torch.dtype]:
    """The dtype to run SDPA in for inputs of ``dtype`` on ``device``, with autocast off inside
    on CPU. CPU flash attention is slower in bf16 than in float32 (this 2-core AVX-512 BF16
    machine: forward 2.56 vs 2.35 s, backward 1.24 vs 0.53 s per default-RAT pass), so half
    inputs are computed in float32 there; on CUDA the dtype is kept (flash runs in bf16)."""
    if device.type != "cpu":
        yield dtype
        return
    with torch.autocast("cpu", enabled=False):
        yield torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _sparse(qkv: Tensor, groups: TokenGroups, *, scale: float) -> Tensor:
    """qkv [B*N, 3, H, D] -> [B*N, H, D]: one gather into sorted order, SDPA per chunk, one
    gather back."""
    with attention_dtype(qkv.device, qkv.dtype) as compute:
        part_all = qkv.index_select(0, groups.perm).to(compute)
        outputs = []
        for chunk, part in zip(groups.chunks, torch.split(part_all, [c.num_tokens for c in groups.chunks])):
            outputs.append(_chunk_attention(part, chunk, scale=scale))
        out = torch.cat(outputs, dim=0) if len(outputs) > 1 else outputs[0]
        return out.index_select(0, groups.inverse).to(qkv.dtype)


def _chunk_attention(part: Tensor, chunk: _Chunk, *, scale: float) -> Tensor:
    """part [T, 3, H, D] for one chunk -> [T, H, D]."""
    _, _, h, d = part.shape
    s, cap = chunk.num_segments, chunk.capacity
    if chunk.gather is None:
        x = part.reshape(s, cap, 3, h, d).permute(2, 0, 3, 1, 4)  # [3, S, H, L, D]
        out = F.scaled_dot_product_attention(x[0], x[1], x[2], scale=scale)
        return out.permute(0, 2, 1, 3).reshape(s * cap, h, d)
    x = part[chunk.gather].permute(2, 0, 3, 1, 4)  # [3, S, H, L, D]
    mask = chunk.valid[:, None, None, :]  # key padding
    out = F.scaled_dot_product_attention(x[0], x[1], x[2], attn_mask=mask, scale=scale)
    return out.permute(0, 2, 1, 3)[chunk.valid]  # [T, H, D], rows in sorted order


def _dense(q: Tensor, k: Tensor, v: Tensor, labels: Tensor, *, scale: float, mask_value: float) -> Tensor:
    """The reference computation: logits + (0 inside a group, ``mask_value`` across groups)."""
    same = labels[:, :, None] == labels[:, None, :]  # [B, N, N]
    bias = torch.zeros(same.shape, dtype=q.dtype, device=q.device).masked_fill_(~same, mask_value)
    attn = (q @ k.transpose(-2, -1)) * scale + bias[:, None]
    return attn.softmax(dim=-1) @ v
