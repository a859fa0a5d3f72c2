"""Export-time replacements for code whose traced graph is wrong, and the names that
mmdeploy's ``FUNCTION_REWRITER`` replaces with them (registered by
:mod:`crossformer_mm.deployment.mmdeploy_rewrites`, which only the deploy configs of
``configs/deploy`` import). Both problems convert without an error and give wrong numbers:

* ``LSDA._sdpa`` -> the explicit attention: mmdeploy's default rewrite of
  ``F.scaled_dot_product_attention`` (``mmdeploy/pytorch/functions/
  multi_head_attention_forward.py``, onedl-mmdeploy 1.5.0) divides the logits by ``scale``
  where torch multiplies, so CrossFormer's logits come out ``d`` times too large.
* mmseg's ``Upsample.forward`` -> interpolation by its scale factor: mmseg computes the
  output size as Python integers, which tracing bakes into the graph, so a dynamic graph
  (Semantic FPN's head) is right only at the traced size. Equal to mmseg's for integer
  scale factors (mmseg's heads use 2).
"""

import contextlib
from typing import Callable, Dict, Iterator, Optional, Type

import torch.nn.functional as F
from torch import Tensor, nn


def lsda_attention_for_export(
    self: nn.Module, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, per_group: bool
) -> Tensor:
    """``LSDA._sdpa`` through the block's explicit reference attention:
    (B, nG, heads, N, d) -> (B, nG, heads, N, d)."""
    return self._explicit_attention(q, k, v, mask)


def upsample_forward_for_export(self: nn.Module, x: Tensor) -> Tensor:
    """mmseg's ``Upsample.forward`` with a traceable size: (B, C, H, W) ->
    (B, C, H * s, W * s), or the module's fixed ``size``."""
    if self.size:
        return F.interpolate(x, self.size, None, self.mode, self.align_corners)
    return F.interpolate(x, None, self.scale_factor, self.mode, self.align_corners)


def exact_for_export(module: nn.Module) -> bool:
    """Whether :func:`upsample_forward_for_export` gives mmseg ``Upsample`` ``module``'s
    numbers: a fixed size, or integer scale factors."""
    if module.size:
        return True
    factors = module.scale_factor
    factors = factors if isinstance(factors, tuple) else (factors,)
    return all(float(f).is_integer() for f in factors)


def mmseg_upsample() -> Optional[Type[nn.Module]]:
    """mmseg's ``Upsample`` class, or None without mmseg."""
    try:
        from mmseg.models.utils.wrappers import Upsample
    except ImportError:
        return None
    return Upsample


@contextlib.contextmanager
def traceable_upsampling() -> Iterator[None]:
    """Within the context, mmseg's ``Upsample.forward`` is
    :func:`upsample_forward_for_export` (nothing changes without mmseg)."""
    Upsample = mmseg_upsample()
    if Upsample is None:
        yield
        return
    original = Upsample.forward
    Upsample.forward = upsample_forward_for_export
    try:
        yield
    finally:
        Upsample.forward = original


#: mmdeploy's ``func_name`` of each replaced function -> its replacement.
MMDEPLOY_REWRITES: Dict[str, Callable] = {
    'crossformer_mm.models.layers.lsda.LSDA._sdpa': lsda_attention_for_export,
    'mmseg.models.utils.wrappers.Upsample.forward': upsample_forward_for_export,
}
