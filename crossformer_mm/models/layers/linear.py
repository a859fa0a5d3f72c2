"""Token-wise linear layers on oneDNN's CPU matmul, bias and GELU in the kernel.

``F.linear`` on CPU runs MKL's sgemm after copying the broadcast bias into
the output, and GELU is one more pass over the (4x wide) MLP hidden tokens.
oneDNN's matmul (``torch.ops.mkldnn._linear_pointwise``, what inductor uses
for frozen CPU linears) adds the bias and applies the exact (erf) GELU in its
epilogue, and on the skinny token-major shapes of CrossFormer it is also the
faster GEMM (e.g. 60800 x 384 -> 96: 26 vs 42 ms on 2 cores). The same sums,
summed in another order: outputs agree with ``F.linear`` to float rounding.

Used on CPU in fp32 / bf16 (autocast included), also in compiled inference
(inductor takes the op as it is). Everywhere else (CUDA, other dtypes,
compiled training and JIT tracing, which must see standard ops, and
``use_onednn=False``) it is ``F.linear`` (+ ``F.gelu``).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

ACTIVATIONS = (None, 'gelu')
ONEDNN_DTYPES = (torch.float32, torch.bfloat16)
#: A build constant, read once (dynamo does not trace torch.backends).
ONEDNN_AVAILABLE = torch.backends.mkldnn.is_available()


def onednn_applies(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                   needs_grad: bool) -> bool:
    """Whether :func:`linear` runs oneDNN's kernel for these operands."""
    if torch.jit.is_tracing() or (needs_grad and torch.compiler.is_compiling()):
        # JIT traces (mmengine's FLOP counter) must see aten::linear; compiled
        # training differentiates the standard op itself
        return False
    if torch.is_autocast_enabled('cpu'):
        dtype = torch.get_autocast_dtype('cpu')
    elif x.dtype == weight.dtype and (bias is None or bias.dtype == weight.dtype):
        dtype = x.dtype
    else:
        return False  # F.linear raises its dtype error
    return (x.device.type == 'cpu' and weight.device.type == 'cpu'
            and ONEDNN_AVAILABLE and dtype in ONEDNN_DTYPES)


def _onednn_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                   activation: Optional[str] = None) -> Tensor:
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


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
           activation: Optional[str] = None, use_onednn: bool = True) -> Tensor:
    """``act(x W^T + b)``: (..., in) -> (..., out); ``activation`` None or 'gelu'
    (exact, as ``nn.GELU()``).

    Without autograd the activation runs inside oneDNN's kernel; with autograd
    it is applied after (its backward needs the pre-activation).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f'activation must be one of {ACTIVATIONS}, got {activation!r}')
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, weight, bias))
    if not (use_onednn and onednn_applies(x, weight, bias, needs_grad)):
        out = F.linear(x, weight, bias)
    else:
        if torch.is_autocast_enabled('cpu'):  # what autocast does for F.linear
            dtype = torch.get_autocast_dtype('cpu')
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
        # oneDNN falls back to a reference kernel on some strided operands
        x, weight = x.contiguous(), weight.contiguous()
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

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 use_onednn: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.use_onednn = use_onednn

    def forward(self, x: Tensor, activation: Optional[str] = None) -> Tensor:
        """(..., in_features) -> (..., out_features)."""
        return linear(x, self.weight, self.bias, activation, self.use_onednn)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, use_onednn={self.use_onednn}'
