from __future__ import annotations

import pytest
import torch

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


def test_auto_backend_on_cpu_is_sparse() -> None:
    assert resolve_backend("auto", torch.device("cpu")) == "sparse"
    assert resolve_backend("dense", torch.device("cpu")) == "dense"


@pytest.mark.slow
def test_flex_forward_matches_sparse() -> None:
    """FlexAttention (compiled; forward only on CPU in this torch) on sorted tokens."""
    pytest.importorskip("torch.nn.attention.flex_attention")
    b, h, n, d = 2, 2, 256, 16
    labels = _labels("mixed", b, n)
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    groups = plan_groups(labels)
    with torch.no_grad():
        flex = grouped_attention(q, k, v, groups, scale=SCALE, backend="flex")
        sparse = grouped_attention(q, k, v, groups, scale=SCALE, backend="sparse")
    torch.testing.assert_close(flex, sparse, atol=1e-5, rtol=1e-5)
