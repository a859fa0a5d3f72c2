"""A neck that fuses a pyramid of backbone stages into one 1/4 map."""

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class UpsampleConcatNeck(BaseModule):
    """Upsample every stage to the first stage's size, concatenate, fuse.

    The HRNetV2 representation head applied to a plain pyramid: stages at
    strides (4, 8, 16, 32) are resized (bilinear) to the stride-4 size,
    concatenated and fused by a 1x1 ConvModule (conv + norm + ReLU), giving
    the single 1/4 map that :class:`AEHigherResolutionHead` expects.

    Shapes: (B, C_i, H/s_i, W/s_i) for each stage -> ((B, out_channels,
    H/4, W/4), ).

    Args:
        in_channels (Sequence[int]): Channels of the stages, e.g. CrossFormer-S
            (96, 192, 384, 768).
        out_channels (int): Channels of the fused map.
        norm_cfg (dict): Defaults to BN.
        init_cfg (dict, optional): Initialisation config; by default the
            ConvModule's own (Kaiming conv, unit norm).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        norm_cfg: dict = dict(type='BN'),
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = tuple(in_channels)
        self.fuse = ConvModule(sum(self.in_channels), out_channels, 1, norm_cfg=norm_cfg)

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor]:
        if len(feats) != len(self.in_channels) or any(
            f.shape[1] != c for f, c in zip(feats, self.in_channels)
        ):
            raise ValueError(
                f'{type(self).__name__} expects stages with channels '
                f'{self.in_channels}, got '
                f'{tuple(f.shape[1] for f in feats)}'
            )
        size = feats[0].shape[2:]
        resized = [feats[0]] + [
            F.interpolate(f, size=size, mode='bilinear', align_corners=False) for f in feats[1:]
        ]
        return (self.fuse(torch.cat(resized, dim=1)),)
