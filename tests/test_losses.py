from __future__ import annotations

import pytest
import torch

from ratmir.losses import FocalRegionLoss


def _direct(pred, target, regions, gamma, delta, normalize):
    """A per-image, per-region loop straight from the definition."""
    l1 = (pred - target).abs()
    weight = torch.zeros_like(l1[:, 0])
    for b in range(pred.shape[0]):
        for label in regions[b].unique():
            region = regions[b] == label
            weight[b][region] = l1[b][:, region].mean() ** delta
    if normalize == "batch":
        weight = weight / weight.max()
    else:
        weight = weight / weight.flatten(1).amax(1)[:, None, None]
    return (l1 * (1 + gamma * weight[:, None])).mean()


@pytest.mark.parametrize("key,gamma", [("focal_region_loss_gamma_1e-3", 1e-3), ("focal_region_loss_gamma_1", 1.0)])
def test_matches_reference_vector(reference_vector, key, gamma) -> None:
    loss = FocalRegionLoss(gamma=gamma)(reference_vector["output"], reference_vector["target"], reference_vector["label_map"])
    assert abs(loss.item() / reference_vector[key].item() - 1) < 1e-5


@pytest.mark.parametrize("normalize", ["batch", "image"])
@pytest.mark.parametrize("delta", [1.0, 2.0])
def test_matches_direct_loop(normalize, delta) -> None:
    pred, target = torch.rand(3, 2, 16, 12, dtype=torch.float64), torch.rand(3, 2, 16, 12, dtype=torch.float64)
    regions = torch.randint(-3, 40, (3, 16, 12)) * 1000
    regions[1] = 5  # an image with one region
    loss = FocalRegionLoss(gamma=0.7, delta=delta, normalize=normalize)(pred, target, regions)
    torch.testing.assert_close(loss, _direct(pred, target, regions, 0.7, delta, normalize))


def test_gamma_zero_is_l1_and_weights_carry_no_gradient() -> None:
    pred = torch.rand(2, 1, 8, 8, requires_grad=True)
    target, regions = torch.rand(2, 1, 8, 8), torch.randint(0, 4, (2, 8, 8))
    assert FocalRegionLoss(gamma=0)(pred, target, regions).item() == torch.nn.functional.l1_loss(pred, target).item()
    loss = FocalRegionLoss(gamma=1.0)(pred, target, regions)
    (grad,) = torch.autograd.grad(loss, pred)
    # d/dpred of mean(|e| * (1 + w)) with w held constant: sign(e) * (1 + w) / numel
    assert ((grad.abs() * pred.numel() - 1) >= -1e-6).all() and ((grad.abs() * pred.numel() - 2) <= 1e-6).all()


def test_perfect_prediction_is_zero_not_nan() -> None:
    x = torch.rand(1, 1, 8, 8)
    assert FocalRegionLoss(gamma=1.0)(x, x.clone(), torch.zeros(1, 8, 8, dtype=torch.long)).item() == 0.0


def test_bad_inputs() -> None:
    loss = FocalRegionLoss()
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"shape \[B, H, W\] = \[1, 8, 8\]"):
        loss(x, x, torch.zeros(1, 8, 7))
    with pytest.raises(ValueError, match="1 channel"):
        loss(x, torch.rand(1, 2, 8, 8), torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="target must have the shape"):
        loss(x, torch.rand(1, 1, 8, 9), torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="normalize must be one of"):
        FocalRegionLoss(normalize="global")
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        FocalRegionLoss(gamma=-1)
