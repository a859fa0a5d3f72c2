# Re-implements the long / short distance attention of CrossFormer
# (Wang et al., ICLR 2022 / TPAMI 2023,
# https://github.com/cheerss/CrossFormer, Copyright (c) 2021 cheerss, MIT License).
"""Long-short distance attention (LSDA): SDA / LDA grouping, padding and masks.

Every grouping used by CrossFormer is one layout: the zero-padded map
``(Hp, Wp)`` is cut into windows of ``(Gh * I) x (Gw * I)`` tokens, and inside a
window the tokens with the same ``(h % I, w % I)`` form one group of
``Gh x Gw`` tokens. Hence

* SDA: ``I = 1``, groups of ``G x G`` adjacent tokens;
* LDA, ``lda_mode='iclr'`` (ICLR 2022 code, used for the released det/seg
  numbers): one window covering the whole map, ``I x I`` dilated groups of
  ``ceil(H/I) x ceil(W/I)`` tokens (``G`` is not used);
* LDA, ``lda_mode='windowed'`` (CrossFormer++ code): windows of
  ``(G*I) x (G*I)`` tokens, each holding ``I x I`` groups of ``G x G`` tokens.

When ``min(H, W) <= G`` a block of either kind falls back to SDA, with square
groups of side ``min(H, W)`` ('iclr', as the ICLR code) or one group of
exactly ``H x W`` tokens ('windowed'). The CrossFormer++ code uses one square
group of side ``max(H, W)`` there; since its padded keys are masked, every real
token gets the same output from the ``H x W`` group, which needs no padding and
``(H*W)**2`` instead of ``max(H, W)**4`` scores (a 168x4 map: 672 tokens
instead of 28224). Unlike the original code this decision is made per call: a
small input never changes how later inputs are processed.

Padded positions are zeros on the right / bottom; they are masked as keys and
cropped from the output.

The layout is integer arithmetic on the map size (:func:`group_layout`), so it
also holds for symbolic sizes: those of ``torch.export`` / the dynamo ONNX
exporter, dynamic ``torch.compile`` and the TorchScript ONNX exporter, whose
traced sizes are 0-dim tensors. With symbolic sizes the code does not ask
whether the map needs padding: it always pads and always folds the padding
mask; a zero-width pad and an all-zero mask change nothing, so one exported
graph serves every size above the small-map limit. With Python ints (eager) it
pads and masks only where needed.
"""

from dataclasses import dataclass
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from crossformer_mm.registry import MODELS

from .dpb import DynamicPosBias, relative_offset_tables
from .linear import Linear

#: Additive score of a padded key. Finite and representable in fp16/bf16, so
#: masked scores neither overflow under autocast nor turn a fully padded group
#: into NaN (its softmax is uniform, and its outputs are cropped). Any real
#: score minus 1e4 underflows to exactly 0 after ``exp``, as with the
#: original's -1e6.
MASK_VALUE = -1e4

ATTN_TYPES = ('sda', 'lda')
LDA_MODES = ('iclr', 'windowed')


#: A size: a Python int, a symbolic size (``torch.SymInt``) or, under the
#: TorchScript ONNX exporter, a traced 0-dim integer tensor.
Size = Union[int, torch.SymInt, Tensor]


def ceil_div(a: Size, b: Size) -> Size:
    """``ceil(a / b)`` of positive sizes in integer arithmetic: exact for any
    int, and traceable (``-(-a // b)`` is not: ONNX's integer ``Div``, which the
    exporters emit for ``//``, truncates instead of flooring negatives)."""
    return (a + b - 1) // b


def is_symbolic(*sizes: Size) -> bool:
    """Whether any size is symbolic (not a Python int)."""
    return not all(isinstance(s, int) for s in sizes)


@dataclass(frozen=True)
class GroupLayout:
    """Grouping of an ``height x width`` map into attention groups.

    Attributes:
        height, width: size of the (unpadded) map.
        group_h, group_w: group shape ``Gh x Gw`` (tokens per group = Gh * Gw).
        interval: dilation ``I`` of the groups inside a window (1 for SDA).
        symbolic: the sizes are symbolic (export, dynamic compile), so that
            the layout cannot tell whether the map is padded: it pads and masks
            always (see :attr:`is_padded`). :func:`group_layout` sets it.
    """

    height: Size
    width: Size
    group_h: Size
    group_w: Size
    interval: Size
    symbolic: bool = False

    @property
    def windows_h(self) -> Size:
        return ceil_div(self.height, self.group_h * self.interval)

    @property
    def windows_w(self) -> Size:
        return ceil_div(self.width, self.group_w * self.interval)

    @property
    def padded_h(self) -> Size:
        return self.windows_h * self.group_h * self.interval

    @property
    def padded_w(self) -> Size:
        return self.windows_w * self.group_w * self.interval

    @property
    def is_padded(self) -> bool:
        """Whether the map is padded (and its padded keys masked); always True
        for a symbolic layout, where zero-width padding and an all-zero mask
        give the same numbers."""
        if self.symbolic:
            return True
        return self.padded_h != self.height or self.padded_w != self.width

    @property
    def num_groups(self) -> Size:
        """Groups per image."""
        return self.windows_h * self.windows_w * self.interval**2

    @property
    def group_tokens(self) -> Size:
        return self.group_h * self.group_w

    def pad(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, Hp, Wp, C), zeros on the right / bottom."""
        if not self.is_padded:
            return x
        return F.pad(x, (0, 0, 0, self.padded_w - self.width, 0, self.padded_h - self.height))

    def group(self, x: Tensor) -> Tensor:
        """(B, Hp, Wp, C) -> (B, num_groups, Gh*Gw, C)."""
        B, C = x.shape[0], x.shape[-1]
        step = self.interval
        x = x.view(B, self.windows_h, self.group_h, step, self.windows_w, self.group_w, step, C)
        x = x.permute(0, 1, 4, 3, 6, 2, 5, 7)
        return x.reshape(B, self.num_groups, self.group_tokens, C)

    def ungroup(self, x: Tensor) -> Tensor:
        """(B, num_groups, Gh*Gw, C) -> (B, Hp, Wp, C); inverse of :meth:`group`."""
        B, C = x.shape[0], x.shape[-1]
        step = self.interval
        x = x.view(B, self.windows_h, self.windows_w, step, step, self.group_h, self.group_w, C)
        x = x.permute(0, 1, 5, 3, 2, 6, 4, 7)
        return x.reshape(B, self.padded_h, self.padded_w, C)

    def key_padding_mask(self, device: torch.device) -> Optional[Tensor]:
        """Additive mask of padded keys, (num_groups, 1, Gh*Gw), or None."""
        if not self.is_padded:
            return None
        rows = torch.arange(self.padded_h, device=device) < self.height
        cols = torch.arange(self.padded_w, device=device) < self.width
        valid = (rows[:, None] & cols[None, :])[None, :, :, None]  # 1, Hp, Wp, 1
        valid = self.group(valid)[0, :, :, 0]  # num_groups, N
        mask = torch.zeros(valid.shape, device=device).masked_fill(~valid, MASK_VALUE)
        return mask.unsqueeze(1)


def group_layout(
    height: Size, width: Size, attn_type: str, group_size: int, interval: int, lda_mode: str
) -> GroupLayout:
    """The :class:`GroupLayout` a block of ``attn_type`` uses on an H x W map.

    With symbolic sizes the small-map test ``min(H, W) <= G`` is the one
    decision taken at trace time: ``torch.export`` resolves it from the
    declared size range (see :mod:`crossformer_mm.deployment`).
    """
    symbolic = is_symbolic(height, width)
    if min(height, width) <= group_size:
        if lda_mode == 'iclr':  # SDA with square groups of the short side
            side = min(height, width)
            return GroupLayout(height, width, side, side, 1, symbolic)
        # SDA over the whole map: one group of exactly H x W tokens (the
        # original's square group of side max(H, W) gives the same outputs on
        # every real token, its extra tokens being masked padding)
        return GroupLayout(height, width, height, width, 1, symbolic)
    if attn_type == 'sda':
        return GroupLayout(height, width, group_size, group_size, 1, symbolic)
    if lda_mode == 'iclr':
        return GroupLayout(
            height,
            width,
            ceil_div(height, interval),
            ceil_div(width, interval),
            interval,
            symbolic,
        )
    return GroupLayout(height, width, group_size, group_size, interval, symbolic)


@MODELS.register_module()
class LSDA(BaseModule):
    """Long-short distance attention with dynamic position bias.

    ``softmax(q k^T * scale + B + mask) v`` inside each group, then ``proj``.
    Tokens are grouped first (padded with zeros where needed, as the original
    does), so ``qkv`` and ``proj`` act on grouped tokens: the grouping costs
    one copy in (plus the padding) and one copy out.

    The DPB bias ``B`` and the padding mask are folded into one additive mask:
    ``(1, heads, N, N)``, shared by every group, or ``(nG, heads, N, N)`` when
    the layout is padded. Two attention paths compute the same function
    (``use_fused_attn``, as in timm):

    * fused (default): :func:`torch.nn.functional.scaled_dot_product_attention`
      with that mask, on 4-D ``(B * nG, heads, N, d)`` tensors, or
      ``(B, nG * heads, N, d)`` when the mask is per group, so that it
      broadcasts over the batch alone (PyTorch's fused kernels need 4-D
      inputs; the mask is never copied per image). On CPU ``qkv`` and ``proj``
      then run oneDNN's linear (:mod:`.linear`).
    * reference (``use_fused_attn=False``): explicit ``matmul + softmax`` and
      ``F.linear``, as the original.

    The relative offsets and pair index of the block's own ``G x G`` group
    (SDA, windowed LDA) are non-persistent buffers; the group shapes that
    depend on the input (ICLR LDA, small maps) get theirs computed per call.

    Args:
        embed_dims (int): Channels ``C`` of the tokens.
        num_heads (int): Attention heads (CrossFormer uses ``C // 32``).
        group_size (int): ``G``, side of an SDA group (and of a windowed LDA group).
        interval (int): ``I``, the LDA dilation.
        attn_type (str): 'sda' or 'lda'.
        lda_mode (str): 'iclr' or 'windowed', see the module docstring.
        qkv_bias (bool): Bias in the qkv projection. Default: True.
        attn_drop (float): Dropout on attention weights. Default: 0.
        proj_drop (float): Dropout after the output projection. Default: 0.
        use_fused_attn (bool): The fused path (SDPA, and oneDNN's linear for
            ``qkv`` / ``proj`` on CPU); False: the reference path. Default: True.
    """

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        group_size: int,
        interval: int,
        attn_type: str = 'sda',
        lda_mode: str = 'iclr',
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        use_fused_attn: bool = True,
        init_cfg=None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if attn_type not in ATTN_TYPES:
            raise ValueError(f'attn_type must be one of {ATTN_TYPES}, got {attn_type!r}')
        if lda_mode not in LDA_MODES:
            raise ValueError(f'lda_mode must be one of {LDA_MODES}, got {lda_mode!r}')
        if embed_dims % num_heads:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})'
            )
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1
            for v in (group_size, interval)
        ):
            raise ValueError(
                'group_size and interval must be positive integers, got '
                f'group_size={group_size}, interval={interval}'
            )
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = self.head_dims**-0.5
        self.group_size = group_size
        self.interval = interval
        self.attn_type = attn_type
        self.lda_mode = lda_mode

        self.pos = DynamicPosBias(embed_dims // 16, num_heads)
        self.qkv = Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.use_fused_attn = use_fused_attn
        offsets, index = relative_offset_tables(group_size, group_size, torch.device('cpu'))
        self.register_buffer('relative_offsets', offsets, persistent=False)
        self.register_buffer('relative_position_index', index, persistent=False)

    def extra_repr(self) -> str:
        return (
            f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
            f'attn_type={self.attn_type}, group_size={self.group_size}, '
            f'interval={self.interval}, lda_mode={self.lda_mode}, '
            f'use_fused_attn={self.use_fused_attn}'
        )

    @property
    def use_fused_attn(self) -> bool:
        """The fused path; setting it also sets ``use_onednn`` of ``qkv`` and ``proj``."""
        return self._use_fused_attn

    @use_fused_attn.setter
    def use_fused_attn(self, fused: bool) -> None:
        self._use_fused_attn = fused
        self.qkv.use_onednn = self.proj.use_onednn = fused

    def layout(self, height: int, width: int) -> GroupLayout:
        return group_layout(
            height, width, self.attn_type, self.group_size, self.interval, self.lda_mode
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) normalised tokens -> (B, H, W, C)."""
        return self.attend(x, self.layout(*x.shape[1:3]))

    def attend(self, x: Tensor, layout: GroupLayout) -> Tensor:
        """(B, H, W, C) normalised tokens -> (B, H, W, C), grouped by ``layout``."""
        B, H, W, C = x.shape
        nG, N = layout.num_groups, layout.group_tokens
        x = layout.group(layout.pad(x))  # B, nG, N, C
        qkv = self.qkv(x).view(B, nG, N, 3, self.num_heads, self.head_dims)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # B, nG, heads, N, d (views)
        mask = self.attn_mask(layout).to(q.dtype)  # 1 or nG, heads, N, N
        if self.use_fused_attn:
            out = self._sdpa(q, k, v, mask, per_group=layout.is_padded)
        else:
            out = self._explicit_attention(q, k, v, mask)
        # (B, nG, N, heads, d) -> (B, nG, N, C): a copy either way (``reshape``
        # copies too); spelt out, the exporters' symbolic strides accept it
        out = out.transpose(2, 3).contiguous().view(B, nG, N, C)
        return layout.ungroup(self.proj_drop(self.proj(out)))[:, :H, :W]

    def attn_mask(self, layout: GroupLayout) -> Tensor:
        """DPB bias + padding mask: (1, heads, N, N), or (nG, heads, N, N) if padded."""
        if not layout.symbolic and (layout.group_h, layout.group_w) == (
            self.group_size,
            self.group_size,
        ):
            offsets, index = self.relative_offsets, self.relative_position_index
        else:
            offsets, index = relative_offset_tables(
                layout.group_h, layout.group_w, self.relative_offsets.device
            )
        mask = self.pos.group_bias(offsets, index).unsqueeze(0)
        padding = layout.key_padding_mask(mask.device)  # nG, 1, N or None
        if padding is not None:
            mask = mask + padding.unsqueeze(1)
        return mask

    def _sdpa(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, per_group: bool) -> Tensor:
        """Fused attention: (B, nG, heads, N, d) -> (B, nG, heads, N, d); ``mask``
        is (nG, heads, N, N) if ``per_group``, else (1, heads, N, N)."""
        B, nG, heads, N, d = q.shape
        if per_group:  # a mask per group: groups join the heads, the mask broadcasts over B
            shape, mask_shape = (B, nG * heads, N, d), (1, nG * heads, N, N)
        else:  # one mask for every group: groups join the batch
            shape, mask_shape = (B * nG, heads, N, d), (1, heads, N, N)
        out = F.scaled_dot_product_attention(
            q.reshape(shape),
            k.reshape(shape),
            v.reshape(shape),
            attn_mask=mask.reshape(mask_shape),
            dropout_p=self.attn_drop.p if self.training else 0.0,
            scale=self.scale,
        )
        return out.view(B, nG, heads, N, d)

    def _explicit_attention(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Reference attention: (B, nG, heads, N, d) -> (B, nG, heads, N, d)."""
        attn = (q * self.scale) @ k.transpose(-2, -1) + mask  # B, nG, heads, N, N
        attn = self.attn_drop(attn.softmax(dim=-1))
        return attn @ v
