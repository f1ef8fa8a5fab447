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
        rows_seen = _conv1_rows(block, x)
    assert rows_seen[0] == (2 if strip_bytes == 1 else 4)  # a strip plus its 1-row halo below
    assert len(rows_seen) == (37 if strip_bytes == 1 else 13)
    out = rows_seen.output
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    assert out.is_contiguous(memory_format=layout)


class _Rows(list):
    output: torch.Tensor


def _conv1_rows(block: NAFBlock, x: torch.Tensor) -> _Rows:
    """Run ``block(x)`` and record the height of every input its conv1 saw (one per strip)."""
    seen = _Rows()
    handle = block.conv1.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[-2]))
    try:
        seen.output = block(x)
    finally:
        handle.remove()
    return seen


def test_strips_keep_float64_precision() -> None:
    """The channel mean is accumulated in the input's precision when that is above float32."""
    block = _block().double()
    x = 100 + torch.randn(1, 8, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        block.strip_bytes = 0
        ref = block(x)
        block.strip_bytes = 1
        out = block(x)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)


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
    """With autograd recording the block runs whole (strip_bytes only matters in inference);
    the same block without autograd does take strips."""
    block = _block()
    block.strip_bytes = 1
    x = torch.randn(1, 8, 12, 10, requires_grad=True)
    assert _conv1_rows(block, x) == [12]
    with torch.no_grad():
        assert len(_conv1_rows(block, x)) == 12


def test_empty_batch_runs_whole() -> None:
    block = _block()
    block.strip_bytes = 1
    with torch.no_grad():
        assert block(torch.zeros(0, 8, 6, 5)).shape == (0, 8, 6, 5)
