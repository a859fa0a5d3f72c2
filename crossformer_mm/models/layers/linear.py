"""Token-wise linear layers on oneDNN's CPU matmul, bias and GELU in the kernel.

The one CPU-specific optimisation of the package. On CPU ``F.linear`` runs
MKL's sgemm after copying the broadcast bias into the output, and GELU is one
more pass over the (4x wide) MLP hidden tokens; on AMD CPUs MKL's sgemm is
slow as well. oneDNN's matmul (``torch.ops.mkldnn._linear_pointwise``, what
inductor uses for frozen CPU linears) adds the bias and applies the exact
(erf) GELU in its epilogue: CrossFormer-S inference at 800x1216 on 2 AMD EPYC
threads takes 1.6x less time with it (docs/performance.md). The same sums,
summed in another order: outputs agree with ``F.linear`` to float rounding.

The op is private, so it is used only where it is known to work: CPU fp32 /
bf16 (autocast included) in eager inference and training, after a check,
once per process and dtype, that it exists and agrees with ``F.linear``
(:func:`onednn_linear_works`). Under ``torch.compile``, ``torch.export``, JIT
tracing and ONNX export (which must see standard ops), on CUDA, for other
dtypes and with ``use_onednn=False`` it is ``F.linear`` (+ ``F.gelu``).
"""

import functools
import logging
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor
from torch.autograd.function import once_differentiable

ACTIVATIONS = (None, 'gelu')
ONEDNN_DTYPES = (torch.float32, torch.bfloat16)


def tracing() -> bool:
    """Whether the code runs under ``torch.compile`` / ``torch.export``, a JIT
    trace or an ONNX export: these must see standard ops."""
    return (
        torch.compiler.is_compiling()
        or torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
    )


@functools.cache
def onednn_linear_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN's linear exists here and agrees with ``F.linear`` (with
    and without the fused GELU) in ``dtype``; checked once per process and
    dtype, the outcome logged when it does not."""
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (
        torch.randn(shape, generator=generator).to(dtype) for shape in ((37, 24), (40, 24), (40,))
    )
    try:
        with torch.inference_mode(False), torch.no_grad(), torch.autocast('cpu', enabled=False):
            for activation in ACTIVATIONS:
                expected = F.linear(x, weight, bias)
                expected = F.gelu(expected) if activation else expected
                got = _onednn_linear(x, weight, bias, activation)
                if not torch.allclose(got.float(), expected.float(), tolerance, tolerance):
                    raise ValueError(f'results differ from F.linear (activation {activation})')
    except (AttributeError, NotImplementedError, RuntimeError, ValueError) as error:
        print_log(
            f'[crossformer_mm] oneDNN linear not used for {dtype}: {error}',
            logger='current',
            level=logging.INFO,
        )
        return False
    return True


def onednn_applies(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
    """Whether :func:`linear` runs oneDNN's kernel for these operands."""
    if tracing() or x.device.type != 'cpu' or weight.device.type != 'cpu':
        return False
    if torch.is_autocast_enabled('cpu'):
        dtype = torch.get_autocast_dtype('cpu')
    elif x.dtype == weight.dtype and (bias is None or bias.dtype == weight.dtype):
        dtype = x.dtype
    else:
        return False  # F.linear raises its dtype error
    return dtype in ONEDNN_DTYPES and onednn_linear_works(dtype)


def _onednn_linear(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], activation: Optional[str] = None
) -> Tensor:
    """(..., in) -> (..., out); the kernel sees 2-D tokens (inductor's oneDNN
    passes expect that)."""
    tokens = x.reshape(-1, x.shape[-1])
    if activation == 'gelu':
        out = torch.ops.mkldnn._linear_pointwise(tokens, weight, bias, 'gelu', [], 'none')
    else:
        out = torch.ops.mkldnn._linear_pointwise(tokens, weight, bias, 'none', [], '')
    return out.view(*x.shape[:-1], weight.shape[0])


class OneDNNLinearFunction(torch.autograd.Function):
    """``x W^T + b`` with oneDNN forward and input gradient; the weight
    gradient ``dy^T x`` stays on ``torch.mm`` (faster there: its reduction
    runs over all the tokens)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_linear(x, weight, bias)

    @staticmethod
    @once_differentiable  # a second derivative raises instead of being wrong
    def backward(ctx, grad_out: Tensor) -> Tuple[Optional[Tensor], ...]:
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn_linear(grad_out, weight.t().contiguous(), None)
        grad_2d = grad_out.reshape(-1, grad_out.shape[-1])
        if ctx.needs_input_grad[1]:
            grad_weight = grad_2d.t() @ x.reshape(-1, x.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_2d.sum(0)
        return grad_x, grad_weight, grad_bias


def linear(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    activation: Optional[str] = None,
    use_onednn: bool = True,
) -> Tensor:
    """``act(x W^T + b)``: (..., in) -> (..., out); ``activation`` None or 'gelu'
    (exact, as ``nn.GELU()``).

    Without autograd the activation runs inside oneDNN's kernel; with autograd
    it is applied after (its backward needs the pre-activation).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f'activation must be one of {ACTIVATIONS}, got {activation!r}')
    if not (use_onednn and onednn_applies(x, weight, bias)):
        out = F.linear(x, weight, bias)
    else:
        if torch.is_autocast_enabled('cpu'):  # what autocast does for F.linear
            dtype = torch.get_autocast_dtype('cpu')
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        # oneDNN falls back to a reference kernel on some strided operands
        x, weight = x.contiguous(), weight.contiguous()
        needs_grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, weight, bias)
        )
        if not needs_grad:
            return _onednn_linear(x, weight, bias, activation)
        out = OneDNNLinearFunction.apply(x, weight, bias)
    return F.gelu(out) if activation == 'gelu' else out


class Linear(nn.Linear):
    """:class:`torch.nn.Linear` (same parameters and state-dict keys) computed
    by :func:`linear`; ``forward(x, activation='gelu')`` fuses the GELU.

    Args:
        in_features, out_features, bias: as :class:`torch.nn.Linear`.
        use_onednn (bool): oneDNN's kernel on CPU; False: ``F.linear``
            everywhere (the reference path). Default: True.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, use_onednn: bool = True
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.use_onednn = use_onednn

    def forward(self, x: Tensor, activation: Optional[str] = None) -> Tensor:
        """(..., in_features) -> (..., out_features)."""
        return linear(x, self.weight, self.bias, activation, self.use_onednn)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, use_onednn={self.use_onednn}'
