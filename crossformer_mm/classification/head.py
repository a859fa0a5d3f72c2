# Re-implements the classification head of CrossFormer (Wang et al., ICLR 2022 / TPAMI 2023,
# https://github.com/cheerss/CrossFormer, Copyright (c) 2021 cheerss, MIT License).
"""The classification head of the original CrossFormer classifier."""

from typing import List, Optional, Tuple, Union

from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from ..registry import MODELS


@MODELS.register_module()
class CrossFormerClsHead(ClsHead):
    """``norm`` = LayerNorm(C) on the last stage's tokens, the average over
    tokens, then ``head`` = Linear(C, num_classes): the original classifier's
    order, with its parameter names, so a released file's ``norm.*`` and
    ``head.*`` load into it as they are.

    Args:
        num_classes (int): Classes (1000 for ImageNet-1K).
        in_channels (int): Channels of the last stage (8C of the backbone).
        init_cfg (dict | list[dict], optional): Default: truncated normal
            (std 0.02, bias 0) for the linear layer, 1 / 0 for the norm, as
            the original's ``_init_weights``.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of mmpretrain's ``ClsHead``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        init_cfg: Optional[Union[dict, List[dict]]] = (
            dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
        ),
        **kwargs,
    ) -> None:
        if isinstance(init_cfg, tuple):
            init_cfg = list(init_cfg)
        super().__init__(init_cfg=init_cfg, **kwargs)
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.norm = nn.LayerNorm(in_channels)
        self.head = nn.Linear(in_channels, num_classes)

    def pre_logits(self, feats: Tuple[Tensor, ...]) -> Tensor:
        """Last stage (B, C, H, W) -> normed tokens averaged: (B, C)."""
        x = feats[-1]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'CrossFormerClsHead expects the last backbone stage as (B, {self.in_channels}, '
                f'H, W), got {tuple(x.shape)}: set in_channels to 8 x embed_dims of the arch'
            )
        tokens = x.flatten(2).transpose(1, 2)  # (B, H*W, C)
        return self.norm(tokens).mean(dim=1)

    def forward(self, feats: Tuple[Tensor, ...]) -> Tensor:
        """Last stage (B, C, H, W) -> logits (B, num_classes)."""
        return self.head(self.pre_logits(feats))
