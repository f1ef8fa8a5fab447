"""CNN baselines: RED-CNN (Chen et al., IEEE TMI 2017) and DnCNN (Zhang et al., IEEE TIP 2017).

Written from the papers' descriptions; both ignore ``regions``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_positive_int
from .base import RestorationModel
from .layers import zero_init


class REDCNN(RestorationModel):
    """Residual encoder-decoder CNN for low-dose CT.

    Five 5x5 convolutions without padding (the image shrinks by 4 pixels per layer), five
    mirrored transposed convolutions, ReLUs, and three shortcuts: around the middle pair, the
    middle four, and the whole network (the input). Any H, W >= 21 work.

    ``identity_init`` zero-initialises the last transposed convolution, so the untrained model
    returns its (non-negative) input and training starts from "no change", as RAT's option of
    that name; the paper initialises it randomly (False).
    """

    architecture = "redcnn"

    def __init__(self, *, in_channels: int = 1, features: int = 96, kernel_size: int = 5,
                 identity_init: bool = False) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("features", features)
        check_positive_int("kernel_size", kernel_size)
        self._set_config(in_channels=in_channels, features=features, kernel_size=kernel_size,
                         identity_init=bool(identity_init))
        chans = [in_channels] + [features] * 5
        self.convs = nn.ModuleList(nn.Conv2d(a, b, kernel_size) for a, b in zip(chans[:-1], chans[1:]))
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(b, a, kernel_size) for a, b in zip(chans[:-1], chans[1:]))
        self.relu = nn.ReLU()
        self.min_size = 5 * (kernel_size - 1) + 1
        if identity_init:
            zero_init(self.deconvs[0])

    def _restore(self, x: Tensor, regions: Tensor | None) -> Tensor:
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"REDCNN needs images of at least {self.min_size}x{self.min_size}, got {list(x.shape[-2:])}")
        c = self.convs
        d = self.deconvs
        skip0 = x
        h = self.relu(c[1](self.relu(c[0](x))))
        skip1 = h
        h = self.relu(c[3](self.relu(c[2](h))))
        skip2 = h
        h = self.relu(c[4](h))
        h = d[4](h) + skip2
        h = d[2](self.relu(d[3](self.relu(h)))) + skip1
        h = d[0](self.relu(d[1](self.relu(h)))) + skip0
        return self.relu(h)


class DnCNN(RestorationModel):
    """Deep CNN predicting the noise: 3x3 conv+ReLU, (depth-2) x (conv+BN+ReLU), conv; output =
    input - predicted noise. ``identity_init`` zero-initialises the last convolution (the untrained
    model returns its input); the paper initialises it randomly (False)."""

    architecture = "dncnn"

    def __init__(self, *, in_channels: int = 1, features: int = 64, depth: int = 17,
                 identity_init: bool = False) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("features", features)
        check_positive_int("depth", depth, minimum=3)
        self._set_config(in_channels=in_channels, features=features, depth=depth, identity_init=bool(identity_init))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features), nn.ReLU()]
        layers.append(nn.Conv2d(features, in_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        if identity_init:
            zero_init(layers[-1])

    def _restore(self, x: Tensor, regions: Tensor | None) -> Tensor:
        return x - self.body(x)
