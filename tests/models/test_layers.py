from __future__ import annotations

import torch
import torch.nn.functional as F

from ratmir.models.layers import LayerNorm2d, _LayerNorm2dFunction


def test_layernorm2d_matches_layer_norm_and_gradcheck() -> None:
    ln = LayerNorm2d(5, eps=1e-6).double()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 2)
        ln.bias.uniform_(-1, 1)
    x = torch.randn(2, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (5,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref)
    assert torch.autograd.gradcheck(lambda a, w, b: _LayerNorm2dFunction.apply(a, w, b, 1e-6), (x, ln.weight, ln.bias))
