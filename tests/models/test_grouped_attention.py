from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ratmir.models import fused_attention
from ratmir.models.grouped_attention import _warn_fallback
from ratmir.models.grouped_attention import grouped_attention, plan_groups, resolve_backend

SCALE = 8**-0.5


def _reference(q, k, v, labels):
    """The authors' computation: logits * scale + (0 in-region, -1000 across), softmax."""
    mask = (labels[:, :, None] != labels[:, None, :]).float() * -1000.0
    return ((q @ k.transpose(-2, -1)) * SCALE + mask[:, None]).softmax(-1) @ v


def _labels(kind: str, b: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    if kind == "mixed":  # a few large regions, many small ones, 1-token regions
        lab = torch.randint(0, 5, (b, n), generator=g) * 1000
        lab[:, ::7] = torch.randint(0, 40, (b, (n + 6) // 7), generator=g)
        lab[:, 3] = -987654321  # a single-token region with a negative label
        lab[:, 5] = 2**40  # large label
        return lab
    if kind == "single":
        return torch.full((b, n), 7)
    if kind == "singletons":
        return torch.arange(b * n).reshape(b, n)
    if kind == "equal":  # all segments of length 16: the unpadded bucket path
        return torch.arange(n).repeat(b, 1) // 16
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["mixed", "single", "singletons", "equal"])
@pytest.mark.parametrize("loop_min", [4, 256])
def test_sparse_equals_dense_mask(kind: str, loop_min: int) -> None:
    b, h, n, d = 2, 3, 96, 8
    labels = _labels(kind, b, n)
    qkv = [torch.randn(b, h, n, d, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    groups = plan_groups(labels, loop_min=loop_min)
    out = grouped_attention(*qkv, groups, scale=SCALE, backend="sparse")
    ref = _reference(*qkv, labels)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, qkv, grad_out)
    ref_grads = torch.autograd.grad(ref, qkv, grad_out)
    for g1, g2 in zip(grads, ref_grads):
        torch.testing.assert_close(g1, g2, atol=1e-10, rtol=1e-10)


def test_dense_backend_matches_reference_float32() -> None:
    b, h, n, d = 2, 4, 64, 16
    labels = _labels("mixed", b, n)
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    groups = plan_groups(labels)
    dense = grouped_attention(q, k, v, groups, scale=SCALE, backend="dense")
    sparse = grouped_attention(q, k, v, groups, scale=SCALE, backend="sparse")
    torch.testing.assert_close(dense, _reference(q, k, v, labels), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)


def test_single_token_region_returns_its_value() -> None:
    labels = torch.tensor([[0, 0, 1, 0]])
    q, k, v = (torch.randn(1, 2, 4, 4) for _ in range(3))
    out = grouped_attention(q, k, v, plan_groups(labels), scale=SCALE, backend="sparse")
    torch.testing.assert_close(out[:, :, 2], v[:, :, 2])


def test_plan_covers_every_token_once_and_costs_sum_of_squares() -> None:
    labels = _labels("mixed", 3, 200)
    groups = plan_groups(labels, loop_min=16)
    assert sorted(groups.perm.tolist()) == list(range(600))
    assert torch.equal(groups.perm[groups.inverse], torch.arange(600))
    assert sum(c.num_tokens for c in groups.chunks) == 600
    sizes = torch.cat([torch.unique(row, return_counts=True)[1] for row in labels])
    exact = int((sizes**2).sum())
    assert groups.num_segments == len(sizes)
    assert exact <= groups.cost <= int(2.25 * exact)  # bucket padding is at most 1.5x in length
    # images never share a segment, even with equal labels
    same = plan_groups(torch.zeros(2, 10, dtype=torch.long))
    assert same.num_segments == 2


def test_plan_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        plan_groups(torch.zeros(2, 3, 4, dtype=torch.long))


def test_unknown_backend() -> None:
    q = torch.randn(1, 1, 2, 2)
    with pytest.raises(ValueError, match="backend must be one of"):
        grouped_attention(q, q, q, plan_groups(torch.zeros(1, 2, dtype=torch.long)), scale=1.0, backend="magic")


def test_auto_backend_choice() -> None:
    assert resolve_backend("auto", torch.device("cpu")) == "sparse"
    assert resolve_backend("auto", torch.device("cpu"), dtype=torch.bfloat16) == "sparse"
    assert resolve_backend("dense", torch.device("cpu")) == "dense"
    assert resolve_backend("auto", torch.device("cuda")) == "flex"
    assert resolve_backend("auto", torch.device("cuda"), dtype=torch.bfloat16) == "varlen"


def test_fused_backends_say_when_they_cannot_run() -> None:
    cuda = torch.device("cuda", 0)
    common = dict(device=cuda, dtype=torch.float32, needs_grad=True)
    assert "head dimension >= 16, got 8" in fused_attention.unsupported_reason("flex", head_dim=8, **common)
    assert fused_attention.unsupported_reason("flex", head_dim=16, **common) is None
    cpu = dict(device=torch.device("cpu"), dtype=torch.float32, head_dim=32)
    assert "no backward on CPU" in fused_attention.unsupported_reason("flex", needs_grad=True, **cpu)
    assert fused_attention.unsupported_reason("flex", needs_grad=False, **cpu) is None
    assert "CUDA only" in fused_attention.unsupported_reason("varlen", needs_grad=False, **cpu)
    with pytest.raises(ValueError, match="'flex' or 'varlen'"):
        fused_attention.unsupported_reason("dense", needs_grad=False, **cpu)


def test_unsupported_fused_backend_falls_back_to_sparse_with_one_warning() -> None:
    _warn_fallback.cache_clear()
    labels = _labels("mixed", 2, 64)
    groups = plan_groups(labels)
    qkv = [torch.randn(2, 2, 64, 8, requires_grad=True) for _ in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [grouped_attention(*qkv, groups, scale=SCALE, backend=name) for name in ("flex", "flex", "varlen")]
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 2 and "'flex' cannot run" in messages[0] and "'varlen' cannot run" in messages[1]
    sparse = grouped_attention(*qkv, groups, scale=SCALE, backend="sparse")
    for out in outs:
        torch.testing.assert_close(out, sparse, atol=0, rtol=0)


def _brute_force_blocks(seg: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(any same-segment pair, all pairs same-segment) per (query block, key block), [B, nb, nb]."""
    b, n = seg.shape
    nb = -(-n // block)
    same = seg[:, :, None] == seg[:, None, :]
    padded = torch.zeros(b, nb * block, nb * block, dtype=torch.bool)
    valid = torch.zeros_like(padded)
    padded[:, :n, :n], valid[:, :n, :n] = same, True
    tiles = padded.reshape(b, nb, block, nb, block)
    valid_tiles = valid.reshape(b, nb, block, nb, block)
    return tiles.any((2, 4)), (tiles | ~valid_tiles).all((2, 4))


@pytest.mark.parametrize("kind", ["mixed", "single", "singletons", "equal"])
def test_flex_block_lists_are_exactly_the_overlapping_blocks(kind: str) -> None:
    b, n, block = 3, 200, 16
    groups = plan_groups(_labels(kind, b, n))
    perm, inverse, seg = fused_attention.image_layout(groups)
    assert torch.equal(perm[inverse], torch.arange(b * n))
    assert torch.equal(perm.reshape(b, n) // n, torch.arange(b)[:, None].expand(b, n))  # image by image
    assert bool((seg[:, 1:] >= seg[:, :-1]).all())
    any_pair, all_pairs = _brute_force_blocks(seg, block)
    partial_num, partial_idx, full_num, full_idx = fused_attention.segment_block_lists(seg, block=block)

    def dense(num, idx):
        out = torch.zeros_like(any_pair)
        for bi, qi in np.ndindex(*num.shape[::2]):
            out[bi, qi, idx[bi, 0, qi, : num[bi, 0, qi]].long()] = True
        return out

    partial, full = dense(partial_num, partial_idx), dense(full_num, full_idx)
    assert not (partial & full).any()
    assert torch.equal(partial | full, any_pair)  # every same-segment pair is visited, nothing else
    assert torch.equal(full, any_pair & all_pairs)  # mask-free blocks hold same-segment pairs only


def test_flex_output_and_gradients_equal_sparse(monkeypatch) -> None:
    """FlexAttention run eagerly on CPU (its math path) with our block mask, forward and backward.

    torch refuses flex backward on CPU at the public entry point (its compiled CPU kernel has
    none); the eager math implementation underneath has one, so the check is lifted here."""
    flex_module = pytest.importorskip("torch.nn.attention.flex_attention")
    monkeypatch.setattr(flex_module, "_validate_device", lambda *tensors: None)
    b, h, n, d = 2, 2, 300, 8  # 300: the last block is partial
    groups = plan_groups(_labels("mixed", b, n))
    qkv = [torch.randn(b, h, n, d, requires_grad=True) for _ in range(3)]
    flex = fused_attention.flex_grouped(*qkv, groups, scale=SCALE)
    sparse = grouped_attention(*qkv, groups, scale=SCALE, backend="sparse")
    torch.testing.assert_close(flex, sparse, atol=1e-5, rtol=1e-5)
    grad_out = torch.randn_like(flex)
    for g1, g2 in zip(torch.autograd.grad(flex, qkv, grad_out), torch.autograd.grad(sparse, qkv, grad_out)):
        torch.testing.assert_close(g1, g2, atol=1e-5, rtol=1e-5)


_MEMORY_SCRIPT = """
import resource, sys, torch
from ratmir.models import fused_attention
from ratmir.models.grouped_attention import plan_groups
n = 2 ** 18
labels = (torch.arange(n) * 20 // n).reshape(1, n)  # 20 regions
labels = labels[:, torch.randperm(n, generator=torch.Generator().manual_seed(0))]  # scattered in the image
small = plan_groups(labels[:, :4096])
fused_attention.image_layout(small); fused_attention.segment_block_mask(fused_attention.image_layout(small)[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
groups = plan_groups(labels)
mask = fused_attention.segment_block_mask(fused_attention.image_layout(groups)[2])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024, mask.kv_num_blocks.shape[-1])
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's convention")
def test_flex_block_mask_for_2_18_tokens_stays_small() -> None:
    """Planning + block mask for one image of 2^18 tokens in 20 regions: peak resident memory
    grows by < 256 MB (a dense boolean mask would be 2^36 bytes = 68.7 GB)."""
    pytest.importorskip("torch.nn.attention.flex_attention")
    src = str(Path(fused_attention.__file__).parents[2])
    result = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    grown, blocks = map(int, result.stdout.split())
    assert blocks == 2**18 // 128
    assert grown < 256 * 2**20, f"block mask construction grew resident memory by {grown / 2**20:.0f} MB"


def test_packed_tokens_equal_the_head_layout_and_reject_wrong_shapes() -> None:
    from ratmir.models.grouped_attention import grouped_attention_packed

    torch.manual_seed(0)
    b, h, n, d = 2, 3, 40, 8
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    groups = plan_groups(_labels("mixed", b, n), loop_min=4)
    packed = torch.stack([fused_attention.to_tokens(t) for t in (q, k, v)], dim=1)
    out = grouped_attention_packed(packed, groups, scale=SCALE)
    torch.testing.assert_close(fused_attention.from_tokens(out, b), _reference(q, k, v, groups.labels),
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"qkv must be \[B\*N=80, 3, heads, D\], got \(80, 2, 3, 8\)"):
        grouped_attention_packed(packed[:, :2], groups, scale=SCALE)


def test_cpu_attention_runs_in_float32_under_bf16_autocast() -> None:
    """CPU flash attention is slower in bf16, so half inputs are computed in float32 (autocast
    off inside): the result equals float32 attention on the same bf16 values, cast back."""
    from ratmir.models.grouped_attention import grouped_attention_packed

    torch.manual_seed(0)
    b, h, n, d = 1, 2, 64, 8
    qkv = torch.randn(b * n, 3, h, d).to(torch.bfloat16)
    groups = plan_groups(_labels("mixed", b, n), loop_min=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = grouped_attention_packed(qkv, groups, scale=SCALE)
    assert out.dtype == torch.bfloat16
    expected = grouped_attention_packed(qkv.float(), groups, scale=SCALE).to(torch.bfloat16)
    assert torch.equal(out, expected)
