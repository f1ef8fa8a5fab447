from __future__ import annotations

import pytest
import torch

from ratmir.models import RAT

TINY = dict(width=8, enc_blocks=(1, 1), dec_blocks=(1, 1), middle_layers=2, layers_per_group=1, num_heads=2)


def _perturbed(**kwargs) -> RAT:
    """A tiny RAT whose zero-initialised scales are non-zero, so every branch matters."""
    model = RAT(**{**TINY, **kwargs})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _regions(b: int, h: int, w: int, k: int = 5) -> torch.Tensor:
    return torch.randint(0, k, (b, h, w)) * 17 + 3


def test_output_shape_and_residual_at_init() -> None:
    model = RAT(**TINY)
    x = torch.rand(2, 1, 32, 32)
    y = model(x, _regions(2, 32, 32))
    assert y.shape == x.shape
    # with zero-initialised NAFBlock/attention scales the residual is ending(conv stack) only
    assert not torch.equal(y, x)


@pytest.mark.parametrize("size", [(37, 50), (16, 16), (5, 3), (64, 17)])
def test_any_image_size_sparse_equals_dense(size: tuple[int, int]) -> None:
    h, w = size
    sparse = _perturbed(attention_backend="sparse").eval()
    dense = RAT(**TINY, attention_backend="dense").eval()
    dense.load_state_dict(sparse.state_dict())
    x, r = torch.rand(2, 1, h, w), _regions(2, h, w)
    with torch.no_grad():
        ys, yd = sparse(x, r), dense(x, r)
    assert ys.shape == (2, 1, h, w)
    torch.testing.assert_close(ys, yd, atol=1e-5, rtol=1e-5)


def test_sparse_equals_dense_gradients() -> None:
    sparse = _perturbed(attention_backend="sparse")
    dense = RAT(**TINY, attention_backend="dense")
    dense.load_state_dict(sparse.state_dict())
    x, r, t = torch.rand(2, 1, 32, 48), _regions(2, 32, 48), torch.rand(2, 1, 32, 48)
    for m in (sparse, dense):
        (m(x, r) - t).abs().mean().backward()
    for (name, ps), pd in zip(sparse.named_parameters(), dense.parameters()):
        torch.testing.assert_close(ps.grad, pd.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_every_parameter_receives_gradient() -> None:
    model = _perturbed()
    x = torch.rand(2, 1, 32, 32)
    model(x, _regions(2, 32, 32)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_window_mode_equals_region_mode_on_window_blocks() -> None:
    region = _perturbed(attention="region").eval()
    window = RAT(**TINY, attention="window").eval()
    window.load_state_dict(region.state_dict())
    block = region.stride * region.window_size  # a latent window covers 16x16 pixels
    rows = torch.arange(48)[:, None] // block
    cols = torch.arange(32)[None, :] // block
    blocks = (rows * 100 + cols).expand(2, 48, 32)
    x = torch.rand(2, 1, 48, 32)
    with torch.no_grad():
        torch.testing.assert_close(window(x, None), region(x, blocks), atol=1e-5, rtol=1e-5)


def test_global_mode_equals_one_region() -> None:
    region = _perturbed(attention="region").eval()
    glob = RAT(**TINY, attention="global").eval()
    glob.load_state_dict(region.state_dict())
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        y_one = region(x, torch.full((2, 32, 32), 4))
        torch.testing.assert_close(glob(x, _regions(2, 32, 32)), y_one, atol=1e-5, rtol=1e-5)
        assert (region(x, _regions(2, 32, 32)) - y_one).abs().max() > 1e-4  # regions matter


def test_labels_are_names_only() -> None:
    model = _perturbed().eval()
    x, r = torch.rand(1, 1, 32, 32), _regions(1, 32, 32)
    relabelled = r * -1000 + 2**35  # a bijection onto negative / huge values
    with torch.no_grad():
        torch.testing.assert_close(model(x, r), model(x, relabelled))
        torch.testing.assert_close(model(x, r), model(x, r.double()))  # integer-valued floats


def test_rgb_model_and_config_roundtrip() -> None:
    model = RAT(in_channels=3, **TINY)
    assert model(torch.rand(1, 3, 20, 20), _regions(1, 20, 20)).shape == (1, 3, 20, 20)
    assert RAT(**model.config).config == model.config


@pytest.mark.parametrize(
    ("x", "regions", "error", "match"),
    [
        (torch.rand(1, 32, 32), torch.zeros(1, 32, 32), ValueError, r"4 dimensions"),
        (torch.rand(1, 3, 32, 32), torch.zeros(1, 32, 32), ValueError, r"1 channel\(s\), got 3"),
        (torch.rand(1, 1, 32, 32), torch.zeros(1, 32, 31), ValueError, r"\[1, 32, 32\].*got \[1, 32, 31\]"),
        (torch.rand(1, 1, 32, 32), torch.zeros(32, 32), ValueError, r"\[B, H, W\]"),
        (torch.rand(1, 1, 32, 32), torch.full((1, 32, 32), 0.5), ValueError, r"non-integer values such as \[0.5"),
        (torch.full((1, 1, 32, 32), float("nan")), torch.zeros(1, 32, 32), ValueError, r"1024 NaN/Inf"),
        (torch.rand(0, 1, 32, 32), torch.zeros(0, 32, 32), ValueError, r"empty batch"),
        (torch.zeros(1, 1, 32, 32, dtype=torch.long), torch.zeros(1, 32, 32), TypeError, r"floating-point"),
        (torch.rand(1, 1, 32, 32), torch.zeros(1, 32, 32, dtype=torch.bool), TypeError, r"integer labels"),
        (torch.rand(1, 1, 32, 32), None, ValueError, r"needs a region label map"),
        ([[0.0]], torch.zeros(1, 1, 1), TypeError, r"torch.Tensor"),
    ],
)
def test_bad_inputs(x, regions, error, match) -> None:
    with pytest.raises(error, match=match):
        RAT(**TINY)(x, regions)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(attention="swin"), ValueError, r"attention must be one of \('region', 'window', 'global'\), got 'swin'"),
        (dict(attention_backend="cuda"), ValueError, r"attention_backend must be one of .*got 'cuda'"),
        (dict(enc_blocks=(1,)), ValueError, r"same number of levels"),
        (dict(middle_layers=3, layers_per_group=2), ValueError, r"multiple of layers_per_group"),
        (dict(num_heads=3), ValueError, r"divisible by num_heads \(3\)"),
        (dict(width=8.0), TypeError, r"width must be an int"),
        (dict(mlp_ratio=0), ValueError, r"mlp_ratio"),
    ],
)
def test_bad_config(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        RAT(**{**TINY, **kwargs})


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        RAT(1, 64)  # type: ignore[misc]


def test_identity_init_returns_the_input_and_still_learns() -> None:
    model = RAT(**TINY, identity_init=True)
    x = torch.rand(1, 1, 20, 20)
    y = model(x, _regions(1, 20, 20))
    assert torch.equal(y, x)
    y.sum().backward()
    assert model.ending.weight.grad.abs().sum() > 0


def test_bf16_autocast_training_step_close_to_float32() -> None:
    """One training step's loss and gradients (focal region loss, as `ratmir train`) under bf16
    autocast stay within 1% (loss) and 10% (norm of each parameter's gradient error, relative
    to that gradient's norm; 5% over all parameters together) of float32. Measured: 0.05% and
    at most 5.7% (2.6% overall); bf16 keeps 8 significant bits, so a few % is its resolution."""
    from ratmir.losses import FocalRegionLoss

    torch.manual_seed(0)
    model = _perturbed(width=16)
    x, r = torch.rand(2, 1, 32, 32), _regions(2, 32, 32)
    target = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    loss_fn = FocalRegionLoss()

    def step(amp: bool) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            pred = model(x, r)
        loss = loss_fn(pred.float(), target, r)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    loss32, grads32 = step(False)
    loss16, grads16 = step(True)
    assert abs(loss16 - loss32) <= 0.01 * abs(loss32)
    errors = {name: float((g16 - g32).norm() / g32.norm().clamp_min(1e-12))
              for (name, _), g16, g32 in zip(model.named_parameters(), grads16, grads32)}
    worst = max(errors, key=errors.get)
    assert errors[worst] < 0.1, (worst, errors[worst])
    total = torch.cat([(a - b).flatten() for a, b in zip(grads16, grads32)]).norm()
    assert total < 0.05 * torch.cat([g.flatten() for g in grads32]).norm()


@pytest.mark.parametrize("mode", ["none", "unet", "all", False, True])
def test_every_checkpointing_mode_gives_the_same_gradients(mode) -> None:
    plain = _perturbed(checkpointing="none")
    ckpt = RAT(**TINY, checkpointing=mode)
    ckpt.load_state_dict(plain.state_dict())
    x, r = torch.rand(2, 1, 32, 32), _regions(2, 32, 32)
    for m in (plain, ckpt):
        m(x, r).square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    assert ckpt.config["checkpointing"] == {False: "none", True: "all"}.get(mode, mode)


def test_unknown_checkpointing_mode_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"checkpointing must be a bool or one of \('none', 'unet', 'all'\), got 'some'"):
        RAT(**TINY, checkpointing="some")


def test_channels_last_inside_returns_a_contiguous_image() -> None:
    """The U-Net runs channels-last; callers get a plain NCHW tensor, for 1 and 3 channels (a
    size that needs no padding, so no crop view is involved)."""
    for channels in (1, 3):
        model = _perturbed(in_channels=channels).eval()
        x = torch.rand(2, channels, 32, 48)
        with torch.no_grad():
            y = model(x, _regions(2, 32, 48))
        assert y.is_contiguous() and y.shape == x.shape


def test_inference_strips_give_the_same_restoration() -> None:
    """NAFBlocks and the row-local part of every RAT layer run in row strips in inference
    (1-row and one-window strips forced here); the result equals the unstripped model."""
    model = _perturbed().eval()
    x, regions = torch.rand(2, 1, 40, 24), _regions(2, 40, 24)
    parts = [m for m in model.modules() if hasattr(m, "strip_bytes")]
    assert len(parts) == 6  # 4 NAFBlocks + 2 RAT layers
    heights: list[int] = []  # of every input of the first RAT layer's window attention
    model.middle_blks[0].layers[0].wa.register_forward_hook(lambda m, args, out: heights.append(args[0].shape[-2]))
    outs = []
    for strip_bytes in (0, 1):
        for m in parts:
            m.strip_bytes = strip_bytes
        with torch.no_grad():
            outs.append(model(x, regions))
    assert heights == [12, 4, 4, 4]  # 40 rows padded to 48, latent 12: whole, then one window row a strip
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
