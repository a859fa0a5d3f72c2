# Re-implements the cross-scale embedding layers of CrossFormer
# (Wang et al., ICLR 2022 / TPAMI 2023,
# https://github.com/cheerss/CrossFormer, Copyright (c) 2021 cheerss, MIT License).
"""Cross-scale embedding layers (CEL) of CrossFormer.

A CEL samples every position with several kernels of one stride and
concatenates the results, so each embedding mixes several scales. Kernel ``k``
uses padding ``(k - stride) // 2``: every branch yields
``floor(H / stride) x floor(W / stride)``.
"""

from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from crossformer_mm.registry import MODELS


def split_channels(channels: int, num_kernels: int) -> List[int]:
    """Channels per kernel: halve for each kernel, the last takes the remainder.

    ``split_channels(96, 4) == [48, 24, 12, 12]``, ``split_channels(192, 2) == [96, 96]``.
    """
    split = [channels // 2 ** (i + 1) for i in range(num_kernels - 1)]
    return split + [channels - sum(split)]


def multi_kernel_convs(
    in_channels: int, out_channels: int, kernel_sizes: Sequence[int], stride: int
) -> nn.ModuleList:
    """One convolution per kernel size, channels split by :func:`split_channels`."""
    for k in kernel_sizes:
        if k < stride or (k - stride) % 2:
            raise ValueError(
                f'CEL kernel sizes must be >= the stride ({stride}) and differ '
                f'from it by an even number, got {list(kernel_sizes)}'
            )
    return nn.ModuleList(
        nn.Conv2d(in_channels, c, kernel_size=k, stride=stride, padding=(k - stride) // 2)
        for k, c in zip(kernel_sizes, split_channels(out_channels, len(kernel_sizes)))
    )


def concat_branches(convs: nn.ModuleList, x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H', W', out_channels): all branches, channels-last."""
    return torch.cat([conv(x) for conv in convs], dim=1).permute(0, 2, 3, 1)


@MODELS.register_module()
class CrossScaleEmbedding(BaseModule):
    """Stage-1 CEL: multi-kernel convolutions of stride 4, then LayerNorm.

    Args:
        in_channels (int): Image channels. Default: 3.
        out_channels (int): Embedding channels ``C``. Default: 96.
        kernel_sizes (Sequence[int]): Default: (4, 8, 16, 32).
        stride (int): Default: 4.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 96,
        kernel_sizes: Sequence[int] = (4, 8, 16, 32),
        stride: int = 4,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.projs = multi_kernel_convs(in_channels, out_channels, kernel_sizes, stride)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) image -> (B, H/4, W/4, C) tokens."""
        return self.norm(concat_branches(self.projs, x))


@MODELS.register_module()
class CrossScalePatchMerging(BaseModule):
    """CEL between stages: LayerNorm on the stage output first, then
    multi-kernel convolutions of stride 2.

    Args:
        in_channels (int): Channels ``C`` of the stage output.
        out_channels (int, optional): Default: ``2 * C`` (with kernels (2, 4)
            each kernel yields ``C`` channels).
        kernel_sizes (Sequence[int]): Default: (2, 4).
        stride (int): Default: 2.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: Optional[int] = None,
        kernel_sizes: Sequence[int] = (2, 4),
        stride: int = 2,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.norm = nn.LayerNorm(in_channels)
        self.reductions = multi_kernel_convs(
            in_channels, out_channels or 2 * in_channels, kernel_sizes, stride
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) tokens -> (B, H/2, W/2, out_channels) tokens."""
        return concat_branches(self.reductions, self.norm(x).permute(0, 3, 1, 2))
