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
"""
import functools
import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from crossformer_mm.registry import MODELS
from torch import Tensor

from . import cpu_attention
from .dpb import DynamicPosBias, outside_inference_mode
from .linear import Linear

#: Additive score of a padded key. Finite and representable in fp16/bf16, so
#: masked scores neither overflow under autocast nor turn a fully padded group
#: into NaN (its softmax is uniform, and its outputs are cropped). Any real
#: score minus 1e4 underflows to exactly 0 after ``exp``, as with the
#: original's -1e6.
MASK_VALUE = -1e4

ATTN_TYPES = ('sda', 'lda')
LDA_MODES = ('iclr', 'windowed')


@dataclass(frozen=True)
class GroupLayout:
    """Grouping of an ``height x width`` map into attention groups.

    Attributes:
        height, width: size of the (unpadded) map.
        group_h, group_w: group shape ``Gh x Gw`` (tokens per group = Gh * Gw).
        interval: dilation ``I`` of the groups inside a window (1 for SDA).
    """
    height: int
    width: int
    group_h: int
    group_w: int
    interval: int

    @property
    def windows_h(self) -> int:
        return math.ceil(self.height / (self.group_h * self.interval))

    @property
    def windows_w(self) -> int:
        return math.ceil(self.width / (self.group_w * self.interval))

    @property
    def padded_h(self) -> int:
        return self.windows_h * self.group_h * self.interval

    @property
    def padded_w(self) -> int:
        return self.windows_w * self.group_w * self.interval

    @property
    def is_padded(self) -> bool:
        return self.padded_h != self.height or self.padded_w != self.width

    @property
    def num_groups(self) -> int:
        """Groups per image."""
        return self.windows_h * self.windows_w * self.interval ** 2

    @property
    def group_tokens(self) -> int:
        return self.group_h * self.group_w

    def pad(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, Hp, Wp, C), zeros on the right / bottom."""
        if not self.is_padded:
            return x
        return F.pad(x, (0, 0, 0, self.padded_w - self.width,
                         0, self.padded_h - self.height))

    def group(self, x: Tensor) -> Tensor:
        """(B, Hp, Wp, C) -> (B, num_groups, Gh*Gw, C)."""
        B, C = x.shape[0], x.shape[-1]
        I = self.interval
        x = x.view(B, self.windows_h, self.group_h, I, self.windows_w, self.group_w, I, C)
        x = x.permute(0, 1, 4, 3, 6, 2, 5, 7)
        return x.reshape(B, self.num_groups, self.group_tokens, C)

    def ungroup(self, x: Tensor) -> Tensor:
        """(B, num_groups, Gh*Gw, C) -> (B, Hp, Wp, C); inverse of :meth:`group`."""
        B, C = x.shape[0], x.shape[-1]
        I = self.interval
        x = x.view(B, self.windows_h, self.windows_w, I, I, self.group_h, self.group_w, C)
        x = x.permute(0, 1, 5, 3, 2, 6, 4, 7)
        return x.reshape(B, self.padded_h, self.padded_w, C)

    def key_padding_mask(self, device: torch.device) -> Optional[Tensor]:
        """Additive mask of padded keys, (num_groups, 1, Gh*Gw), or None."""
        if not self.is_padded:
            return None
        valid = torch.zeros(1, self.padded_h, self.padded_w, 1, device=device)
        valid[:, :self.height, :self.width] = 1
        valid = self.group(valid)[0, :, :, 0]  # num_groups, N
        mask = torch.zeros_like(valid).masked_fill_(valid == 0, MASK_VALUE)
        return mask.unsqueeze(1)


def group_layout(height: int, width: int, attn_type: str, group_size: int,
                 interval: int, lda_mode: str) -> GroupLayout:
    """The :class:`GroupLayout` a block of ``attn_type`` uses on an H x W map."""
    if min(height, width) <= group_size:
        if lda_mode == 'iclr':  # SDA with square groups of the short side
            side = min(height, width)
            return GroupLayout(height, width, side, side, 1)
        # SDA over the whole map: one group of exactly H x W tokens (the
        # original's square group of side max(H, W) gives the same outputs on
        # every real token, its extra tokens being masked padding)
        return GroupLayout(height, width, height, width, 1)
    if attn_type == 'sda':
        return GroupLayout(height, width, group_size, group_size, 1)
    if lda_mode == 'iclr':
        return GroupLayout(height, width, math.ceil(height / interval),
                           math.ceil(width / interval), interval)
    return GroupLayout(height, width, group_size, group_size, interval)


@lru_cache(maxsize=64)
@outside_inference_mode
def cached_key_padding_mask(layout: GroupLayout, device: torch.device) -> Optional[Tensor]:
    """:meth:`GroupLayout.key_padding_mask`, cached per (layout, device).

    Never an inference tensor. The returned tensor is shared: do not modify it
    in place.
    """
    return layout.key_padding_mask(device)


def _flash_cpu(q: Tensor, k: Tensor, v: Tensor, bias: Tensor,
               scale: float) -> Tuple[Tensor, Tensor]:
    """PyTorch's CPU flash kernel: output (BG, heads, N, d) and the log-sum-exp
    of each score row (BG, heads, N). ``bias``: (1 or BG, heads, N, N)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, attn_mask=bias, scale=scale)


def attention_with_lse(q: Tensor, k: Tensor, v: Tensor, mask: Tensor,
                       scale: float) -> Tuple[Tensor, Tensor]:
    """Output (B * nG, heads, N, d) and row log-sum-exp (B * nG, heads, N) of
    ``softmax(q k^T * scale + mask) v``, mask (1 or nG, heads, N, N): the
    compiled kernel of :mod:`.cpu_attention` where it applies, else PyTorch's
    CPU flash kernel."""
    if cpu_attention.kernel_applies(q, k, v, mask):
        return cpu_attention.biased_attention(q, k, v, mask, scale, return_lse=True)
    return attend_per_image(functools.partial(_flash_cpu, scale=scale), q, k, v, mask)


def attend_per_image(attend: Callable, q: Tensor, k: Tensor, v: Tensor, mask: Tensor):
    """``attend(q, k, v, mask)`` for q, k, v of (B * nG, heads, N, d) and a mask
    of (1 or nG, heads, N, N): one call, or one per image where a per-group
    mask does not broadcast over B * nG (outputs, or each output, concatenated)."""
    groups = mask.shape[0]
    if groups in (1, q.shape[0]):
        return attend(q, k, v, mask)
    parts = [attend(q[i:i + groups], k[i:i + groups], v[i:i + groups], mask)
             for i in range(0, q.shape[0], groups)]
    if isinstance(parts[0], Tensor):
        return torch.cat(parts)
    return tuple(torch.cat(outputs) for outputs in zip(*parts))


class BiasedFlashAttention(torch.autograd.Function):
    """``O = softmax(q k^T * scale + M) v`` on CPU, with the gradients of q, k,
    v **and** of the additive mask ``M``.

    PyTorch's CPU flash kernel gives no gradient for ``attn_mask``. Where it
    applies (fp32 or bf16, head_dims 32, AVX-512), the compiled kernel of
    :mod:`.cpu_attention` runs both passes. Otherwise the forward is the flash
    kernel (it also returns the row log-sum-exp ``L``), and the backward
    recomputes the probabilities ``P = exp(q k^T * scale + M - L)`` for one
    head and a chunk of groups at a time (at most :attr:`chunk_scores`
    scores: 4 MB in fp32, cache-sized). Either way no ``(B * nG, heads, N, N)``
    tensor is stored, and the backward forms, with
    ``dS = P * (dO v^T - rowsum(dO * O))``::

        dv = P^T dO,  dq = dS k * scale,  dk = dS^T q * scale,
        dM = dS (summed over the groups that share a mask entry).

    Accumulation is in fp32 whatever the input dtype.

    Inputs: ``q, k, v``: (B * nG, heads, N, d); ``mask``: (1, heads, N, N)
    shared by every group, or (nG, heads, N, N), one per group of each image.
    """

    #: Scores per chunk of the Python backward.
    chunk_scores = 1 << 20

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float) -> Tensor:
        out, lse = attention_with_lse(q, k, v, mask, scale)
        ctx.save_for_backward(q, k, v, mask, out, lse)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        saved = ctx.saved_tensors
        if cpu_attention.kernel_applies(*saved[:4]):
            return (*cpu_attention.biased_attention_backward(*saved, grad_out, ctx.scale), None)
        q, k, v, mask, out, lse = (t.float() for t in saved)
        grad_out = grad_out.float()
        groups, heads, N, d = q.shape
        neg_delta = (grad_out * out).sum(-1, keepdim=True).neg_()  # -rowsum(dO * O)
        # head-major, so that every (head, chunk) slice is contiguous for bmm(out=)
        grad_q, grad_k, grad_v = (q.new_empty(heads, groups, N, d) for _ in range(3))
        grad_mask = torch.zeros_like(mask)
        shared = mask.shape[0] == 1
        span = groups if shared else mask.shape[0]  # chunks never cross an image
        step = min(span, max(1, BiasedFlashAttention.chunk_scores // (N * N)))
        # P and dS of a chunk, reused: a fresh multi-MB tensor per chunk costs
        # its page faults every time (the CPU allocator does not cache them)
        probs_buf, scores_grad_buf = q.new_empty(step, N, N), q.new_empty(step, N, N)
        for h in range(heads):
            for start in range(0, groups, span):
                for g0 in range(start, start + span, step):
                    g = slice(g0, min(start + span, g0 + step))
                    rows = slice(None) if shared else slice(g0 - start, g.stop - start)
                    q_g, k_g, v_g, grad_g = q[g, h], k[g, h], v[g, h], grad_out[g, h]
                    size = g.stop - g.start
                    # P = exp(q k^T * scale + M - L)
                    probs = torch.sub(mask[rows, h], lse[g, h].unsqueeze(-1), out=probs_buf[:size])
                    probs.baddbmm_(q_g, k_g.transpose(1, 2), alpha=ctx.scale).exp_()
                    torch.bmm(probs.transpose(1, 2), grad_g, out=grad_v[h, g])
                    # dS = P * (dO v^T - rowsum(dO * O))
                    scores_grad = torch.bmm(grad_g, v_g.transpose(1, 2), out=scores_grad_buf[:size])
                    scores_grad.add_(neg_delta[g, h]).mul_(probs)
                    torch.bmm(scores_grad, k_g, out=grad_q[h, g])
                    torch.bmm(scores_grad.transpose(1, 2), q_g, out=grad_k[h, g])
                    if not shared:
                        grad_mask[rows, h] += scores_grad
                    elif size == 1:
                        grad_mask[0, h] += scores_grad[0]
                    else:
                        grad_mask[0, h] += scores_grad.sum(0)
        grad_q, grad_k = grad_q.mul_(ctx.scale), grad_k.mul_(ctx.scale)
        return (*(t.transpose(0, 1).to(saved[0].dtype) for t in (grad_q, grad_k, grad_v)),
                grad_mask.to(saved[3].dtype), None)


@MODELS.register_module()
class LSDA(BaseModule):
    """Long-short distance attention with dynamic position bias.

    ``softmax(q k^T * scale + B + mask) v`` inside each group, then ``proj``.
    Tokens are grouped first (padded with zeros where needed, as the original
    does), so ``qkv`` and ``proj`` act on grouped tokens: the grouping costs
    one copy in (plus the padding) and one copy out.

    Two implementations of the same function:

    * fast (``use_fused_attn=True``, default):
      :func:`torch.nn.functional.scaled_dot_product_attention` on 4-D
      ``(B * groups, heads, N, head_dims)`` views of ``qkv`` with one additive
      4-D mask, which on CPU selects PyTorch's flash kernel (it needs 4-D
      inputs and a 4-D mask). The mask is the DPB bias, ``(1, heads, N, N)``
      broadcast over the groups, with the padding mask folded in only when the
      layout is padded (``(groups, heads, N, N)``; then one kernel call per
      image). Offset / index tables and padding masks are cached per (group
      shape, padded size, device); when no autograd graph is needed (inference,
      frozen DPB) the folded mask is cached per (layout, device, dtype) until
      the DPB weights change (at most :attr:`mask_cache_size` sizes per module,
      none above :attr:`mask_cache_max_bytes`).
      On AVX-512 CPUs with head_dims 32 (every CrossFormer) the attention is
      the compiled kernel of :mod:`.cpu_attention` instead, forward and
      backward. In training the DPB runs once per forward; on CPU
      :class:`BiasedFlashAttention` back-propagates into it from the
      kernel's outputs. Without the compiled kernel, small groups
      (:attr:`explicit_group_factor`) use explicit kernels with the folded
      mask instead.
    * reference (``use_fused_attn=False``): the original's computation,
      everything rebuilt on every call (offsets, index, DPB table, padding
      mask) and explicit ``matmul + softmax``.

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
        use_fused_attn (bool): Use the fast path, with oneDNN's kernel for
            ``qkv`` and ``proj`` (their ``use_onednn``). Default: True.
    """

    #: Folded masks kept per module (input sizes seen without autograd). One
    #: mask is ``heads * N * N`` floats (``groups`` times that if padded), e.g.
    #: 3.6 MB per head for the 25x38 groups of an 800x1216 image.
    mask_cache_size = 2
    #: Larger folded masks are rebuilt on every call instead of cached: for
    #: them (e.g. one whole-map group of 3500 tokens: 49 MB per head) the
    #: rebuild costs little next to the attention itself, and caching would
    #: keep ``mask_cache_size`` of them alive in every block. The limit holds
    #: the stage-4 masks of every arch at 800x1216 (CrossFormer-S: 24 heads of
    #: 950 x 950, 87 MB), whose rebuild takes longer than their attention.
    mask_cache_max_bytes = 128 << 20
    #: In CPU training (DPB gradient needed) without the compiled kernel,
    #: groups of at most ``explicit_group_factor * head_dims`` tokens run
    #: explicit kernels that keep the probabilities (``N * N`` per head, then
    #: no more than q, k and v hold), e.g. the 49-token SDA groups; larger
    #: ones run the flash kernel and :class:`BiasedFlashAttention`.
    explicit_group_factor = 3

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 group_size: int,
                 interval: int,
                 attn_type: str = 'sda',
                 lda_mode: str = 'iclr',
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 use_fused_attn: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if attn_type not in ATTN_TYPES:
            raise ValueError(f'attn_type must be one of {ATTN_TYPES}, got {attn_type!r}')
        if lda_mode not in LDA_MODES:
            raise ValueError(f'lda_mode must be one of {LDA_MODES}, got {lda_mode!r}')
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by '
                             f'num_heads ({num_heads})')
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                   for v in (group_size, interval)):
            raise ValueError('group_size and interval must be positive integers, got '
                             f'group_size={group_size}, interval={interval}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = self.head_dims ** -0.5
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
        # (layout, device, dtype, inference mode) -> (DPB weights version, mask)
        self._mask_cache: 'OrderedDict[Tuple, Tuple[Tuple, Tensor]]' = OrderedDict()

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'attn_type={self.attn_type}, group_size={self.group_size}, '
                f'interval={self.interval}, lda_mode={self.lda_mode}, '
                f'use_fused_attn={self.use_fused_attn}')

    @property
    def use_fused_attn(self) -> bool:
        """The fast path; setting it also sets ``use_onednn`` of ``qkv`` and ``proj``."""
        return self._use_fused_attn

    @use_fused_attn.setter
    def use_fused_attn(self, fast: bool) -> None:
        self._use_fused_attn = fast
        self.qkv.use_onednn = self.proj.use_onednn = fast

    def layout(self, height: int, width: int) -> GroupLayout:
        return group_layout(height, width, self.attn_type, self.group_size,
                            self.interval, self.lda_mode)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) normalised tokens -> (B, H, W, C)."""
        B, H, W, C = x.shape
        layout = self.layout(H, W)
        nG, N = layout.num_groups, layout.group_tokens
        x = layout.group(layout.pad(x))  # B, nG, N, C
        qkv = self.qkv(x).view(B * nG, N, 3, self.num_heads, self.head_dims)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # B*nG, heads, N, d (views)
        if self.use_fused_attn:
            out = self._fused_attention(q, k, v, layout)
        else:
            out = self._reference_attention(q, k, v, layout)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, nG, N, C)))
        return layout.ungroup(out)[:, :H, :W]

    def _reference_attention(self, q: Tensor, k: Tensor, v: Tensor,
                             layout: GroupLayout) -> Tensor:
        """Explicit matmul + softmax, every table rebuilt (as the original)."""
        attn = (q * self.scale) @ k.transpose(-2, -1)  # B*nG, heads, N, N
        attn = attn + self.pos.group_bias(layout.group_h, layout.group_w, cached_tables=False)
        mask = layout.key_padding_mask(q.device)  # nG, 1, N or None
        if mask is not None:
            shape = attn.shape
            attn = (attn.view(-1, layout.num_groups, *shape[1:]) + mask.unsqueeze(1)).view(shape)
        attn = self.attn_drop(attn.softmax(dim=-1))
        return attn @ v

    def _fused_attention(self, q: Tensor, k: Tensor, v: Tensor,
                         layout: GroupLayout) -> Tensor:
        """SDPA with the bias (and padding mask) folded into one 4-D mask."""
        mask = self._attn_mask(layout, q.dtype, q.device)  # 1 or nG, heads, N, N
        dropout_p = self.attn_drop.p if self.training else 0.
        # On CPU a mask that needs a gradient sends SDPA to its slow math
        # kernel. Small groups use explicit kernels instead; larger ones run
        # the flash kernel with BiasedFlashAttention's backward, which also
        # gives d(mask). (CUDA kernels handle it themselves; attention dropout
        # runs on the math kernel anyway.)
        if torch.compiler.is_compiling():
            # traced by torch.compile: its attention kernels differentiate the
            # mask themselves, and no Python-side chunk loop is unrolled
            return self._sdpa(q, k, v, mask, dropout_p)
        mask_grad_here = mask.requires_grad and q.device.type == 'cpu' and dropout_p == 0.
        if (mask_grad_here and layout.group_tokens <= self.explicit_group_factor * self.head_dims
                and not cpu_attention.kernel_supports(q, k, v, mask)):
            return self._masked_attention(q, k, v, mask)
        if mask_grad_here:
            return BiasedFlashAttention.apply(q, k, v, mask, self.scale)
        if dropout_p == 0. and cpu_attention.kernel_applies(q, k, v, mask):  # no autograd
            return cpu_attention.biased_attention(q, k, v, mask, self.scale)[0]
        return self._sdpa(q, k, v, mask, dropout_p)

    def _sdpa(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, dropout_p: float) -> Tensor:
        """:func:`F.scaled_dot_product_attention` with a (1 or nG, heads, N, N) mask."""
        return attend_per_image(functools.partial(
            F.scaled_dot_product_attention, dropout_p=dropout_p, scale=self.scale), q, k, v, mask)

    def _masked_attention(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Explicit ``softmax(q k^T * scale + mask) v`` with the folded mask
        (broadcast over the images), for small groups in training."""
        scores = torch.matmul(q, k.transpose(-2, -1)).mul_(self.scale)  # B*nG, heads, N, N
        shape = scores.shape
        scores = scores.view(-1, mask.shape[0], *shape[1:]).add_(mask).view(shape)
        return torch.matmul(scores.softmax(dim=-1), v)

    def _attn_mask(self, layout: GroupLayout, dtype: torch.dtype,
                   device: torch.device) -> Tensor:
        """The folded mask, cached when it needs no autograd graph."""
        needs_graph = torch.is_grad_enabled() and any(
            p.requires_grad for p in self.pos.parameters())
        if needs_graph or torch.compiler.is_compiling():  # compiled: part of the graph
            return self._fold_mask(layout, dtype, device)
        # Inference tensors cannot be saved for a later backward: keep apart.
        key = (layout, device, dtype, torch.is_inference_mode_enabled())
        version = self.pos.weights_version()
        entry = self._mask_cache.get(key)
        if entry is None or entry[0] != version:
            mask = self._fold_mask(layout, dtype, device)
            if mask.numel() * mask.element_size() > self.mask_cache_max_bytes:
                self._mask_cache.pop(key, None)
                return mask
            entry = (version, mask)
            self._mask_cache[key] = entry
            if len(self._mask_cache) > self.mask_cache_size:
                self._mask_cache.popitem(last=False)
        self._mask_cache.move_to_end(key)
        return entry[1]

    def _fold_mask(self, layout: GroupLayout, dtype: torch.dtype,
                   device: torch.device) -> Tensor:
        """DPB bias + padding mask: (1, heads, N, N), or (nG, heads, N, N) if padded."""
        bias = self.pos.group_bias(layout.group_h, layout.group_w).unsqueeze(0)
        padding = (layout.key_padding_mask(device) if torch.compiler.is_compiling() else
                   cached_key_padding_mask(layout, device))  # nG, 1, N or None
        if padding is not None:
            bias = bias + padding.unsqueeze(1)
        return bias.to(dtype)
