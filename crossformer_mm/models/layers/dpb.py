"""Dynamic position bias (DPB) of CrossFormer."""
import functools
from functools import lru_cache
from typing import Callable, Tuple, TypeVar

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from crossformer_mm.registry import MODELS
from torch import Tensor

T = TypeVar('T')


def relative_offset_tables(group_h: int, group_w: int,
                           device: torch.device) -> Tuple[Tensor, Tensor]:
    """Relative offsets and the pair index of a ``group_h x group_w`` group.

    Computed from scratch on every call (what the original does in every block).

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

    coords = torch.stack(torch.meshgrid(
        torch.arange(group_h, device=device), torch.arange(group_w, device=device),
        indexing='ij')).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]  # 2, N, N
    index = (rel[0] + group_h - 1) * (2 * group_w - 1) + (rel[1] + group_w - 1)
    return offsets, index


def outside_inference_mode(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` run with inference mode and autograd off, so that the tensors it
    returns are normal ones: a cache may then hand them to inference, no-grad
    and training computations alike (an inference tensor cannot be saved for
    backward, so one cached during ``torch.inference_mode()`` would break the
    next training step)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.inference_mode(False), torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper


@lru_cache(maxsize=16)
@outside_inference_mode
def offset_tables(group_h: int, group_w: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """:func:`relative_offset_tables`, cached per (group shape, device): the
    last 16; the index of an N-token group takes 8 * N * N bytes (7 MB for the
    950-token groups at 800x1216). Never inference tensors. The returned
    tensors are shared: do not modify them in place."""
    return relative_offset_tables(group_h, group_w, device)


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
            raise ValueError(f'DynamicPosBias needs pos_dims >= 1, got {pos_dims}: '
                             'the attention width must be at least 16 channels')
        self.num_heads = num_heads
        self.pos_proj = nn.Linear(2, pos_dims)
        self.pos1 = self._hidden_layer(pos_dims, pos_dims)
        self.pos2 = self._hidden_layer(pos_dims, pos_dims)
        self.pos3 = self._hidden_layer(pos_dims, num_heads)

    @staticmethod
    def _hidden_layer(in_dims: int, out_dims: int) -> nn.Sequential:
        return nn.Sequential(
            nn.LayerNorm(in_dims), nn.ReLU(inplace=True), nn.Linear(in_dims, out_dims))

    def forward(self, offsets: Tensor) -> Tensor:
        """(M, 2) relative offsets -> (M, num_heads) biases."""
        return self.pos3(self.pos2(self.pos1(self.pos_proj(offsets))))

    def weights_version(self) -> Tuple[Tuple[int, int], ...]:
        """Changes whenever a weight is modified in place (optimizer step,
        ``load_state_dict``) or replaced (``.to()``, ``param.data = ...``)."""
        return tuple((p.data_ptr(), p._version) for p in self.parameters())

    def group_bias(self, group_h: int, group_w: int, cached_tables: bool = True) -> Tensor:
        """The bias of every token pair of a ``group_h x group_w`` group.

        Args:
            group_h, group_w: Group shape.
            cached_tables (bool): Reuse the offset / index tables of this group
                shape (:func:`offset_tables`); False recomputes them (so does
                code traced by ``torch.compile``, which folds them itself).

        Returns:
            Tensor: (num_heads, Gh*Gw, Gh*Gw), contiguous.
        """
        device = self.pos_proj.weight.device
        cached_tables = cached_tables and not torch.compiler.is_compiling()
        tables = offset_tables if cached_tables else relative_offset_tables
        offsets, index = tables(group_h, group_w, device)
        table = self(offsets.to(self.pos_proj.weight.dtype))  # M, heads
        # Gather from the (heads, M) table: the result is (heads, N, N) contiguous.
        return table.t()[:, index]
