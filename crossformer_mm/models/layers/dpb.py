# Re-implements the dynamic position bias of CrossFormer
# (Wang et al., ICLR 2022 / TPAMI 2023,
# https://github.com/cheerss/CrossFormer, Copyright (c) 2021 cheerss, MIT License).
"""Dynamic position bias (DPB) of CrossFormer."""

from typing import Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from crossformer_mm.registry import MODELS


def relative_offset_tables(
    group_h: int, group_w: int, device: torch.device
) -> Tuple[Tensor, Tensor]:
    """Relative offsets and the pair index of a ``group_h x group_w`` group.

    Returns:
        offsets: ((2Gh-1)*(2Gw-1), 2) float tensor of raw integer offsets ``(dy, dx)``.
        index: (Gh*Gw, Gh*Gw) long tensor; ``offsets[index[i, j]]`` is the offset
            of token ``i`` relative to token ``j``, indexed Swin-style as
            ``(dy + Gh - 1) * (2Gw - 1) + (dx + Gw - 1)``.
    """
    dy = torch.arange(1 - group_h, group_h, device=device)
    dx = torch.arange(1 - group_w, group_w, device=device)
    offsets = torch.stack(torch.meshgrid(dy, dx, indexing='ij'), dim=-1)
    offsets = offsets.reshape(-1, 2).float()

    coords = torch.stack(
        torch.meshgrid(
            torch.arange(group_h, device=device),
            torch.arange(group_w, device=device),
            indexing='ij',
        )
    ).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]  # 2, N, N
    index = (rel[0] + group_h - 1) * (2 * group_w - 1) + (rel[1] + group_w - 1)
    return offsets, index


@MODELS.register_module()
class DynamicPosBias(BaseModule):
    """Dynamic position bias: an MLP from a relative offset to one bias per head.

    ``pos_proj -> pos1 -> pos2 -> pos3`` (no residual), each of ``pos1..3`` being
    ``LayerNorm, ReLU, Linear``. Inputs are the raw integer offsets (not
    normalised), so one module serves every group shape.

    Args:
        pos_dims (int): Hidden width of the MLP (``dim // 16`` in CrossFormer).
        num_heads (int): Number of attention heads (output width).
    """

    def __init__(self, pos_dims: int, num_heads: int, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if pos_dims < 1:
            raise ValueError(
                f'DynamicPosBias needs pos_dims >= 1, got {pos_dims}: '
                'the attention width must be at least 16 channels'
            )
        self.num_heads = num_heads
        self.pos_proj = nn.Linear(2, pos_dims)
        self.pos1 = self._hidden_layer(pos_dims, pos_dims)
        self.pos2 = self._hidden_layer(pos_dims, pos_dims)
        self.pos3 = self._hidden_layer(pos_dims, num_heads)

    @staticmethod
    def _hidden_layer(in_dims: int, out_dims: int) -> nn.Sequential:
        return nn.Sequential(
            nn.LayerNorm(in_dims), nn.ReLU(inplace=True), nn.Linear(in_dims, out_dims)
        )

    def forward(self, offsets: Tensor) -> Tensor:
        """(M, 2) relative offsets -> (M, num_heads) biases."""
        return self.pos3(self.pos2(self.pos1(self.pos_proj(offsets))))

    def group_bias(self, offsets: Tensor, index: Tensor) -> Tensor:
        """The bias of every token pair of a group.

        Args:
            offsets: (M, 2) relative offsets and index: (N, N) pair index of
                the group, from :func:`relative_offset_tables`.

        Returns:
            Tensor: (num_heads, N, N), contiguous.
        """
        table = self(offsets.to(self.pos_proj.weight.dtype))  # M, heads
        # Gather from the (heads, M) table: the result is (heads, N, N) contiguous.
        return table.t()[:, index]
