from __future__ import annotations

import torch
import torch.nn.functional as F

from ratmir.models.layers import LayerNorm2d, _LayerNorm2dFunction, by_row_strips, strip_rows


def test_layernorm2d_matches_layer_norm_and_gradcheck() -> None:
    ln = LayerNorm2d(5, eps=1e-6).double()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 2)
        ln.bias.uniform_(-1, 1)
    x = torch.randn(2, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (5,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref)
    assert torch.autograd.gradcheck(lambda a, w, b: _LayerNorm2dFunction.apply(a, w, b, 1e-6), (x, ln.weight, ln.bias))


def test_layernorm2d_computes_in_float32_for_bf16_inputs() -> None:
    """A bf16 input far from zero mean: statistics in bf16 would be off by a quarter of the std
    (bf16's step at 100 is 0.5); computed in float32 the result is the float32 one, rounded."""
    ln = LayerNorm2d(16)
    x = (100 + torch.randn(2, 16, 5, 5)).to(torch.bfloat16).requires_grad_()
    x32 = x.detach().float().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ln(x)
    ref = ln(x32)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=1e-2)
    grad = torch.randn_like(ref)
    (gx,) = torch.autograd.grad(out, x, grad.to(torch.bfloat16))
    (gx_ref,) = torch.autograd.grad(ref, x32, grad)
    assert gx.dtype == torch.bfloat16
    torch.testing.assert_close(gx.float(), gx_ref, atol=2e-2, rtol=2e-2)


def test_layernorm2d_channels_last_path_equals_the_nchw_path() -> None:
    """Channels-last inputs take the fused F.layer_norm kernel: same values and gradients as
    the custom NCHW function, in float32 and under bf16 autocast (where both return bf16)."""
    torch.manual_seed(0)
    norm = LayerNorm2d(16)
    with torch.no_grad():
        norm.weight.add_(torch.randn(16))
        norm.bias.add_(torch.randn(16))
    base = 3 + torch.randn(2, 16, 5, 7)
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        x = base.clone().contiguous(memory_format=layout).requires_grad_()
        out = norm(x)
        (gx,) = torch.autograd.grad((out * base).sum(), x)
        results.append((out, gx))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-4, rtol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb = base.to(torch.bfloat16)
        a, b = norm(xb), norm(xb.contiguous(memory_format=torch.channels_last))
    assert a.dtype == b.dtype == torch.bfloat16
    torch.testing.assert_close(a.float(), b.float(), atol=2e-2, rtol=1e-2)


def test_strip_rows_respects_grad_mode_multiples_and_height() -> None:
    x = torch.zeros(2, 4, 40, 10)  # a row of a 16-channel intermediate: 2 * 16 * 10 * 4 = 1280 B
    with torch.no_grad():
        assert strip_rows(x, channels=16, strip_bytes=1280 * 7) == 7
        assert strip_rows(x, channels=16, strip_bytes=1280 * 7, multiple=4) == 4
        assert strip_rows(x, channels=16, strip_bytes=1, multiple=4) == 4  # at least one multiple
        assert strip_rows(x, channels=16, strip_bytes=10**9) == 40  # capped at the height
        assert strip_rows(x, channels=16, strip_bytes=0) == 40  # off
    assert strip_rows(x, channels=16, strip_bytes=1) == 40  # autograd recording: whole image
    with torch.no_grad():  # not on the CPU (meta stands for a GPU here): whole image
        assert strip_rows(x.to("meta"), channels=16, strip_bytes=1) == 40


def test_by_row_strips_assembles_rows_in_the_input_layout() -> None:
    x = torch.arange(2 * 3 * 7 * 5, dtype=torch.float32).reshape(2, 3, 7, 5).contiguous(memory_format=torch.channels_last)
    calls = []

    def fn(rs: slice) -> torch.Tensor:
        calls.append((rs.start, rs.stop))
        return torch.cat([x[:, :, rs], 2 * x[:, :, rs]], dim=1).to(torch.float64)

    out = by_row_strips(fn, x, rows=3)
    assert calls == [(0, 3), (3, 6), (6, 7)]
    assert out.dtype == torch.float64 and out.shape == (2, 6, 7, 5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, torch.cat([x, 2 * x], dim=1).double())
    assert by_row_strips(fn, x, rows=7).shape == (2, 6, 7, 5) and calls[-1] == (0, 7)  # one piece
