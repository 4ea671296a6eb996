"""The two-column discriminator of LBAM (supplement Table 3; official release's
DiscriminatorDoubleColumn): a global column on I·M and a local column on I·(1 − M), each six
4×4/2/1 convs (BN from the second, LeakyReLU 0.2), fused by a conv over the last feature map and
a sigmoid. Layout of tests/data/reference/lbam_official_discriminator_state_dict.tsv (22,316,417
parameters at 256×256, width 1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

COLUMN_CHANNELS = (64, 128, 256, 512, 512, 512)


def column(in_channels: int, width: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    previous = in_channels
    for i, channels in enumerate(COLUMN_CHANNELS):
        channels = max(1, round(channels * width))
        layers.append(nn.Conv2d(previous, channels, 4, 2, 1))
        if i > 0:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(nn.LeakyReLU(0.2))
        previous = channels
    return nn.Sequential(*layers)


class TwoColumnDiscriminator(nn.Module):
    def __init__(self, size: int = 256, width: float = 1.0) -> None:
        super().__init__()
        if size % 64 or size < 64:
            raise ValueError(f"the discriminator needs a size divisible by 64, got {size}")
        self.globalConv = column(3, width)
        self.localConv = column(3, width)
        last = 2 * max(1, round(COLUMN_CHANNELS[-1] * width))
        # the release fuses a 4×4 map (256 / 2^6) with a 4×4 conv; other sizes use their map size
        self.fusionLayer = nn.Sequential(nn.Conv2d(last, 1, size // 64), nn.Sigmoid())

    def forward(self, images: Tensor, masks: Tensor) -> Tensor:
        features = torch.cat((self.globalConv(images * masks), self.localConv(images * (1 - masks))), 1)
        return self.fusionLayer(features).view(images.shape[0], -1)
