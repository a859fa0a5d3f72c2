# Re-implements the transformer block and the ACL of CrossFormer
# (Wang et al., ICLR 2022 / TPAMI 2023,
# https://github.com/cheerss/CrossFormer, Copyright (c) 2021 cheerss, MIT License).
"""The CrossFormer transformer block (SDA or LDA, optional CrossFormer++ ACL)."""

from typing import Optional

import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch import Tensor

from crossformer_mm.registry import MODELS

from .linear import Linear
from .lsda import LSDA


class Mlp(nn.Module):
    """Token-wise ``fc1 -> GELU -> fc2`` with dropout (key names of the original).

    The GELU is exact (erf), computed in ``fc1``'s kernel on the oneDNN path
    (:mod:`.linear`).
    """

    def __init__(
        self, embed_dims: int, hidden_dims: int, drop: float = 0.0, use_onednn: bool = True
    ) -> None:
        super().__init__()
        self.fc1 = Linear(embed_dims, hidden_dims, use_onednn=use_onednn)
        self.fc2 = Linear(hidden_dims, embed_dims, use_onednn=use_onednn)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        """(..., C) -> (..., C)."""
        return self.drop(self.fc2(self.drop(self.fc1(x, activation='gelu'))))


@MODELS.register_module()
class CrossFormerBlock(BaseModule):
    """Pre-norm transformer block with long-short distance attention.

    ``x = x + DropPath(LSDA(norm1(x)))``, ``x = x + DropPath(MLP(norm2(x)))``;
    with ``use_acl`` (CrossFormer++ adaptive cooling layer) the stream is then
    replaced by ``LayerNorm(depthwise 3x3 conv(x))``, without a skip.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Attention heads.
        group_size (int): ``G``.
        interval (int): ``I`` (LDA only).
        attn_type (str): 'sda' or 'lda'.
        lda_mode (str): 'iclr' or 'windowed' (see :mod:`.lsda`).
        mlp_ratio (float): MLP hidden width / C. Default: 4.
        qkv_bias (bool): Default: True.
        drop_rate (float): Dropout after projections. Default: 0.
        attn_drop_rate (float): Attention dropout. Default: 0.
        drop_path_rate (float): Stochastic depth of this block. Default: 0.
        use_acl (bool): Append the cooling layer. Default: False.
        use_fused_attn (bool): The fast kernels: fused attention (see
            :class:`LSDA`) and oneDNN linears (see :mod:`.linear`); False
            gives the reference path. Default: True.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        group_size: int,
        interval: int,
        attn_type: str = 'sda',
        lda_mode: str = 'iclr',
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        use_acl: bool = False,
        use_fused_attn: bool = True,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = LSDA(
            embed_dims,
            num_heads,
            group_size,
            interval,
            attn_type=attn_type,
            lda_mode=lda_mode,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop_rate,
            proj_drop=drop_rate,
            use_fused_attn=use_fused_attn,
        )
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(
            embed_dims, int(embed_dims * mlp_ratio), drop_rate, use_onednn=use_fused_attn
        )
        self.use_acl = use_acl
        if use_acl:
            self.ex_conv = nn.Conv2d(embed_dims, embed_dims, 3, padding=1, groups=embed_dims)
            self.ex_ln = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        if self.use_acl:
            x = self.ex_ln(self.ex_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        return x
