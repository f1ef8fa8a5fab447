from __future__ import annotations

import pytest
import torch

from ratmir.models import MODELS, build_model, load_pretrained, save_pretrained
from ratmir.models.grouped_attention import grouped_attention
from ratmir.models.swinir import window_groups

SMALL = {
    "rat": dict(width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), middle_layers=1, layers_per_group=1, num_heads=2),
    "redcnn": dict(features=8),
    "dncnn": dict(features=8, depth=4),
    "nafnet": dict(width=8, enc_blocks=(1,), middle_blocks=1, dec_blocks=(1,)),
    "swinir": dict(dim=8, depths=(2,), num_heads=2, window_size=4),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("channels", [1, 3])
def test_interface_odd_sizes_gradients_roundtrip(name: str, channels: int, tmp_path) -> None:
    model = build_model(name, in_channels=channels, **SMALL[name])
    with torch.no_grad():  # make zero-initialised scales non-zero so every parameter matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(2, channels, 27, 30)
    regions = torch.randint(0, 4, (2, 27, 30))
    y = model(x, regions)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    path = save_pretrained(model, tmp_path / f"{name}.safetensors")
    loaded = load_pretrained(path).eval()
    assert type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, regions), model.eval()(x, regions))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_inputs_are_checked_by_every_model(name: str) -> None:
    model = build_model(name, **SMALL[name])
    with pytest.raises(ValueError, match="1 channel"):
        model(torch.rand(1, 3, 32, 32), torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="to match the image"):
        model(torch.rand(1, 1, 32, 32), torch.zeros(1, 31, 32))


@pytest.mark.parametrize("name", ["redcnn", "dncnn"])
def test_cnn_identity_init_returns_the_input_and_still_learns(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, identity_init=True, **SMALL[name])
    x = torch.rand(2, 1, 27, 30)
    y = model(x, None)
    assert torch.equal(y, x)
    (y - x.flip(-1)).square().mean().backward()
    last = model.deconvs[0] if name == "redcnn" else model.body[-1]
    assert last.weight.grad.abs().sum() > 0
    assert not torch.equal(build_model(name, **SMALL[name])(x, None), x)  # the papers' random init


def test_unknown_model() -> None:
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("unet3000")


def test_shifted_windows_equal_swin_cyclic_shift_mask() -> None:
    """Offset windows == Swin's cyclic shift + mask (built here the way Swin does)."""
    h = w = 8
    ws, s = 4, 2
    q, k, v = (torch.randn(1, 2, h * w, 4, dtype=torch.float64) for _ in range(3))
    ours = grouped_attention(q, k, v, window_groups(1, h, w, window=ws, shift=s, device=torch.device("cpu")),
                             scale=0.5, backend="sparse")
    # Swin: roll by -s, attend inside windows, with a mask separating tokens that came from
    # different image areas (slices [0, h-ws), [h-ws, h-s), [h-s, h) per axis), roll back.
    area = torch.zeros(h, w, dtype=torch.long)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
        for wsl in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
            area[hs, wsl] = cnt
            cnt += 1
    win = (torch.arange(h)[:, None] // ws) * (w // ws) + torch.arange(w)[None, :] // ws
    rolled = [t.reshape(1, 2, h, w, 4).roll((-s, -s), (2, 3)).reshape(1, 2, h * w, 4) for t in (q, k, v)]
    key = (win * 100 + area).reshape(-1)
    mask = torch.where(key[:, None] == key[None, :], 0.0, -1e9).double()
    out = ((rolled[0] @ rolled[1].transpose(-1, -2)) * 0.5 + mask).softmax(-1) @ rolled[2]
    out = out.reshape(1, 2, h, w, 4).roll((s, s), (2, 3)).reshape(1, 2, h * w, 4)
    torch.testing.assert_close(ours, out)
