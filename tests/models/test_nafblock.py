from __future__ import annotations

import pytest
import torch

from ratmir.models.nafblock import NAFBlock


def _block(channels: int = 8) -> NAFBlock:
    torch.manual_seed(0)
    block = NAFBlock(channels).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(std=0.3)  # non-zero beta/gamma: both halves matter
    return block


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("strip_bytes", [1, 3 * 16 * 21 * 4 * 2])  # 1 row, 3 rows per strip
def test_inference_strips_equal_the_plain_block(layout, strip_bytes) -> None:
    """Row strips (1-row halo for the depthwise conv, a two-pass channel mean) give the plain
    block's output, in the input's layout, for an odd height that no strip size divides."""
    block = _block()
    x = torch.randn(2, 8, 37, 21).contiguous(memory_format=layout)
    with torch.no_grad():
        block.strip_bytes = 0
        ref = block(x)
        block.strip_bytes = strip_bytes
        out = block(x)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    assert out.is_contiguous(memory_format=layout)


def test_strips_under_bf16_autocast_match_the_plain_block() -> None:
    block = _block()
    x = torch.randn(1, 8, 19, 16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        block.strip_bytes = 0
        ref = block(x)
        block.strip_bytes = 1
        out = block(x)
    assert out.dtype == ref.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=2e-2, rtol=2e-2)


def test_training_never_uses_strips() -> None:
    """With autograd recording the block runs whole (strip_bytes only matters in inference):
    same gradients whatever strip_bytes says."""
    block = _block()
    x = torch.randn(1, 8, 12, 10, requires_grad=True)
    grads = []
    for strip_bytes in (0, 1):
        block.strip_bytes = strip_bytes
        (g,) = torch.autograd.grad(block(x).square().sum(), x)
        grads.append(g)
    torch.testing.assert_close(grads[0], grads[1], atol=0, rtol=0)
