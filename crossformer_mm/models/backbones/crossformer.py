# Re-implements the backbone (stages, arch settings, released key names) of CrossFormer
# (Wang et al., ICLR 2022 / TPAMI 2023,
# https://github.com/cheerss/CrossFormer, Copyright (c) 2021 cheerss, MIT License).
"""CrossFormer and CrossFormer++ dense-prediction backbones.

CrossFormer: A Versatile Vision Transformer Hinging on Cross-scale Attention
(ICLR 2022, https://arxiv.org/abs/2108.00154) and CrossFormer++
(TPAMI, https://arxiv.org/abs/2303.06908). Parameter and buffer names follow
the released checkpoints, so they load as they are.
"""

import numbers
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import constant_init, trunc_normal_init
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from crossformer_mm.registry import MODELS

from ...utils.checkpoint import (
    BACKBONE_PREFIX,
    DROPPED_DPB_BUFFER,
    CheckpointMismatchError,
    filter_checkpoint,
    load_backbone_checkpoint,
    unwrap_state_dict,
)
from ..layers import CrossFormerBlock, CrossScaleEmbedding, CrossScalePatchMerging
from ..layers.cross_scale_embed import split_channels
from ..layers.lsda import LDA_MODES

_ICLR_GROUPS = dict(
    group_size=(7, 7, 7, 7), crs_interval=(8, 4, 2, 1), lda_mode='iclr', use_acl=False
)
_PP_GROUPS = dict(
    group_size=(4, 4, 14, 7), crs_interval=(4, 2, 1, 1), lda_mode='windowed', use_acl=True
)

#: Published variants (ImageNet-1K classification settings).
ARCH_SETTINGS: Dict[str, dict] = {
    'tiny': dict(embed_dims=64, depths=(1, 1, 8, 6), num_heads=(2, 4, 8, 16), **_ICLR_GROUPS),
    'small': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), **_ICLR_GROUPS),
    'base': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), **_ICLR_GROUPS),
    'large': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), **_ICLR_GROUPS),
    'pp-small': dict(embed_dims=64, depths=(2, 2, 18, 2), num_heads=(2, 4, 8, 16), **_PP_GROUPS),
    'pp-base': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), **_PP_GROUPS),
    'pp-large': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), **_PP_GROUPS),
    'pp-huge': dict(embed_dims=128, depths=(6, 6, 18, 2), num_heads=(4, 8, 16, 32), **_PP_GROUPS),
}
_REQUIRED_ARCH_KEYS = ('embed_dims', 'depths', 'num_heads')
_OPTIONAL_ARCH_KEYS = ('group_size', 'crs_interval', 'lda_mode', 'use_acl')


def _is_int(value) -> bool:
    """An integer that is not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_arg(ok: bool, name: str, allowed: str, value) -> None:
    """The backbone's argument check: ``ValueError('{name} must be {allowed}, got {value!r}')``."""
    if not ok:
        raise ValueError(f'{name} must be {allowed}, got {value!r}')


def _stage_ints(name: str, values, num_stages: int) -> Tuple[int, ...]:
    """One positive integer per stage (an int is repeated)."""
    if _is_int(values):
        values = (values,) * num_stages
    check_arg(
        isinstance(values, Sequence)
        and len(values) == num_stages
        and all(_is_int(v) and v > 0 for v in values),
        name,
        f'{num_stages} positive integers (one per stage)',
        values,
    )
    return tuple(int(v) for v in values)


def resolve_arch(arch: Union[str, dict], **overrides) -> dict:
    """Settings of a named or explicit arch, with non-None ``overrides`` applied.

    Raises:
        ValueError: naming the setting, what is allowed and what was given.
    """
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise ValueError(
                f'unknown CrossFormer arch {arch!r}; choose one of '
                f'{sorted(ARCH_SETTINGS)} or pass a dict with keys '
                f'{_REQUIRED_ARCH_KEYS} (+ group_size, crs_interval, lda_mode, use_acl)'
            )
        settings = dict(ARCH_SETTINGS[arch])
    elif isinstance(arch, dict):
        missing = [k for k in _REQUIRED_ARCH_KEYS if k not in arch]
        if missing:
            raise ValueError(f'a custom CrossFormer arch needs the keys {missing}')
        unknown = sorted(set(arch) - set(_REQUIRED_ARCH_KEYS) - set(_OPTIONAL_ARCH_KEYS))
        if unknown:
            raise ValueError(
                f'unknown keys {unknown} in a custom CrossFormer arch; allowed: '
                f'{_REQUIRED_ARCH_KEYS + _OPTIONAL_ARCH_KEYS}'
            )
        depths = arch['depths']
        num_stages = len(depths) if isinstance(depths, Sequence) else 1
        settings = dict(
            group_size=7,
            crs_interval=tuple(2 ** (num_stages - 1 - i) for i in range(num_stages)),
            lda_mode='iclr',
            use_acl=False,
        )
        settings.update(arch)
    else:
        raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
    settings.update({k: v for k, v in overrides.items() if v is not None})

    depths = settings['depths']
    check_arg(
        isinstance(depths, Sequence)
        and len(depths) > 0
        and all(_is_int(d) and d > 0 for d in depths),
        'depths',
        'a non-empty sequence of positive integers (blocks per stage)',
        depths,
    )
    settings['depths'] = tuple(int(d) for d in depths)
    num_stages = len(depths)
    embed_dims = settings['embed_dims']
    # DPB width dims // 16 >= 1 (and every stage-1 CEL kernel gets >= 1 channel)
    check_arg(
        _is_int(embed_dims) and embed_dims >= 16,
        'embed_dims',
        'an integer >= 16 (the position bias MLP has embed_dims // 16 channels)',
        embed_dims,
    )
    settings['embed_dims'] = int(embed_dims)
    for key in ('num_heads', 'group_size', 'crs_interval'):
        settings[key] = _stage_ints(key, settings[key], num_stages)
    check_arg(
        settings['lda_mode'] in LDA_MODES, 'lda_mode', f'one of {LDA_MODES}', settings['lda_mode']
    )
    check_arg(
        isinstance(settings['use_acl'], bool), 'use_acl', 'True or False', settings['use_acl']
    )
    for i, heads in enumerate(settings['num_heads']):
        dims = settings['embed_dims'] * 2**i
        if dims % heads:
            raise ValueError(
                f'num_heads: stage {i}: {dims} channels are not divisible by '
                f'{heads} heads (CrossFormer uses channels // 32 heads)'
            )
    return settings


class CrossFormerStage(BaseModule):
    """Blocks of one stage (SDA at even, LDA at odd positions), then the CEL
    that embeds the next stage's input (``downsample``), if any.

    Args:
        embed_dims (int): Channels of the stage.
        depth (int): Number of blocks.
        num_heads (int): Attention heads.
        group_size (int): ``G``.
        interval (int): ``I``.
        lda_mode (str): 'iclr' or 'windowed'.
        use_acl (bool): Cooling layer after blocks ``j`` with ``(j + 1) % 3 == 0``
            and ``j < depth - 1``.
        drop_path_rates (Sequence[float]): One per block.
        merge_kernels (Sequence[int], optional): Kernels of the next stage's CEL;
            None for the last stage.
        with_cp (bool): Gradient checkpointing of every block.
        block_cfg: Other :class:`CrossFormerBlock` arguments.
    """

    def __init__(
        self,
        embed_dims: int,
        depth: int,
        num_heads: int,
        group_size: int,
        interval: int,
        lda_mode: str,
        use_acl: bool,
        drop_path_rates: Sequence[float],
        merge_kernels: Optional[Sequence[int]] = None,
        with_cp: bool = False,
        init_cfg: Optional[dict] = None,
        **block_cfg,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.blocks = ModuleList(
            [
                CrossFormerBlock(
                    embed_dims,
                    num_heads,
                    group_size,
                    interval,
                    attn_type='sda' if j % 2 == 0 else 'lda',
                    lda_mode=lda_mode,
                    drop_path_rate=drop_path_rates[j],
                    use_acl=use_acl and (j + 1) % 3 == 0 and j < depth - 1,
                    **block_cfg,
                )
                for j in range(depth)
            ]
        )
        self.downsample = (
            CrossScalePatchMerging(embed_dims, 2 * embed_dims, merge_kernels)
            if merge_kernels is not None
            else None
        )

    def forward(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """(B, H, W, C) -> stage output (B, H, W, C), next input (B, H/2, W/2, 2C) or None."""
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x, (self.downsample(x) if self.downsample is not None else None)


@MODELS.register_module()
class CrossFormer(BaseModule):
    """CrossFormer / CrossFormer++ backbone for dense prediction.

    Args:
        arch (str | dict): 'tiny', 'small', 'base', 'large' (CrossFormer),
            'pp-small', 'pp-base', 'pp-large', 'pp-huge' (CrossFormer++), or a
            dict with ``embed_dims``, ``depths``, ``num_heads`` and optionally
            ``group_size``, ``crs_interval``, ``lda_mode``, ``use_acl``.
        in_channels (int): Image channels. Default: 3.
        group_size (Sequence[int], optional): ``G`` per stage; None keeps the
            arch's. Detection / segmentation use (7, 7, 7, 7).
        crs_interval (Sequence[int], optional): LDA interval ``I`` per stage;
            None keeps the arch's. Detection / segmentation use (8, 4, 2, 1).
        lda_mode (str, optional): 'iclr' (one dilated group per residue,
            CrossFormer's default and the released det/seg numbers) or
            'windowed' (CrossFormer++'s default). None keeps the arch's.
        use_acl (bool, optional): CrossFormer++ cooling layers. None keeps the arch's.
        patch_kernels (Sequence[int]): Stage-1 CEL kernels. Default: (4, 8, 16, 32).
        merge_kernels (Sequence[int]): Kernels of the CELs of stages 2-4. Default: (2, 4).
        mlp_ratio (float): Default: 4.
        qkv_bias (bool): Default: True.
        drop_rate (float): Dropout after projections. Default: 0.
        attn_drop_rate (float): Attention dropout. Default: 0.
        drop_path_rate (float): Stochastic depth, linear over blocks. Default: 0.1.
        out_indices (Sequence[int]): Stages whose outputs are returned. Default: (0, 1, 2, 3).
        norm_outputs (bool): LayerNorm on each returned stage (not in the
            original backbone). Default: False.
        frozen_stages (int): -1 freezes nothing, 0 the stage-1 CEL, ``k`` also
            the first ``k`` stages (with the CEL at their end). Default: -1.
        norm_eval (bool): Keep batch-norm layers in eval mode while training.
            CrossFormer itself only has LayerNorm, which is unaffected.
            Default: False.
        with_cp (bool): Gradient checkpointing of every block. Default: False.
        use_fused_attn (bool): The fast kernels (fused attention, oneDNN
            linears on CPU); False selects the reference path: ``F.linear`` and
            explicit matmul + softmax. Default: True.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)``
            loads a released classification checkpoint (or a converted / full
            model one); add ``strict=False`` to tolerate missing / unexpected
            keys. Without it, the original initialisation is used.
        pretrained (str, optional): A checkpoint path or URL, the same as
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` (what
            mmseg's ``EncoderDecoder(pretrained=...)`` hands its backbone, as
            to Swin). Give it or ``init_cfg``, not both. Default: None.
    """

    def __init__(
        self,
        arch: Union[str, dict] = 'small',
        in_channels: int = 3,
        group_size: Optional[Sequence[int]] = None,
        crs_interval: Optional[Sequence[int]] = None,
        lda_mode: Optional[str] = None,
        use_acl: Optional[bool] = None,
        patch_kernels: Sequence[int] = (4, 8, 16, 32),
        merge_kernels: Sequence[int] = (2, 4),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        norm_outputs: bool = False,
        frozen_stages: int = -1,
        norm_eval: bool = False,
        with_cp: bool = False,
        use_fused_attn: bool = True,
        init_cfg: Optional[dict] = None,
        pretrained: Optional[str] = None,
    ) -> None:
        if pretrained is not None:
            if not isinstance(pretrained, str) or not pretrained:
                raise TypeError(
                    'CrossFormer: pretrained must be a checkpoint path or URL (str) '
                    f'or None, got {pretrained!r}'
                )
            if init_cfg is not None:
                raise ValueError(
                    f'CrossFormer: give either pretrained={pretrained!r} or '
                    f'init_cfg={init_cfg!r}, not both (e.g. set the model-level '
                    '`pretrained=None` when the backbone has an init_cfg)'
                )
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        if init_cfg is not None and init_cfg.get('type') != 'Pretrained':
            raise ValueError(
                "CrossFormer's init_cfg must be None or "
                f"dict(type='Pretrained', checkpoint=PATH), got {init_cfg}"
            )
        self.arch_settings = resolve_arch(
            arch,
            group_size=group_size,
            crs_interval=crs_interval,
            lda_mode=lda_mode,
            use_acl=use_acl,
        )
        embed_dims = self.arch_settings['embed_dims']
        depths = self.arch_settings['depths']
        self.num_stages = len(depths)
        self.num_features = [embed_dims * 2**i for i in range(self.num_stages)]
        check_arg(
            _is_int(in_channels) and in_channels > 0,
            'in_channels',
            'a positive integer (image channels)',
            in_channels,
        )
        self.in_channels = in_channels
        self.min_input_size = 4 * 2 ** (self.num_stages - 1)
        for name, rate in (
            ('drop_rate', drop_rate),
            ('attn_drop_rate', attn_drop_rate),
            ('drop_path_rate', drop_path_rate),
        ):
            check_arg(
                isinstance(rate, numbers.Real) and not isinstance(rate, bool) and 0 <= rate < 1,
                name,
                'a probability in [0, 1)',
                rate,
            )
        check_arg(
            isinstance(mlp_ratio, numbers.Real)
            and not isinstance(mlp_ratio, bool)
            and mlp_ratio > 0
            and int(embed_dims * mlp_ratio) > 0,
            'mlp_ratio',
            'a positive number (MLP width / channels)',
            mlp_ratio,
        )
        check_arg(
            isinstance(out_indices, Sequence)
            and len(out_indices) > 0
            and all(_is_int(i) and 0 <= i < self.num_stages for i in out_indices)
            and list(out_indices) == sorted(set(out_indices)),
            'out_indices',
            f'distinct stage indices in [0, {self.num_stages}), in increasing order',
            out_indices,
        )
        self.out_indices = tuple(out_indices)
        check_arg(
            _is_int(frozen_stages) and -1 <= frozen_stages <= self.num_stages,
            'frozen_stages',
            f'an integer in [-1, {self.num_stages}]',
            frozen_stages,
        )
        self.frozen_stages = frozen_stages
        for name, kernels in (('patch_kernels', patch_kernels), ('merge_kernels', merge_kernels)):
            check_arg(
                isinstance(kernels, Sequence)
                and len(kernels) > 0
                and all(_is_int(k) and k > 0 for k in kernels),
                name,
                'a non-empty sequence of positive kernel sizes',
                kernels,
            )
        split = split_channels(embed_dims, len(patch_kernels))
        check_arg(
            min(split) > 0,
            'patch_kernels',
            f'at most {embed_dims.bit_length()} kernels '
            f'for embed_dims={embed_dims} (the stage-1 CEL halves the channels per '
            f'kernel: {split})',
            patch_kernels,
        )
        self.norm_eval = norm_eval
        self.norm_outputs = norm_outputs

        self.patch_embed = CrossScaleEmbedding(in_channels, embed_dims, patch_kernels, stride=4)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = ModuleList()
        for i, depth in enumerate(depths):
            self.layers.append(
                CrossFormerStage(
                    embed_dims=self.num_features[i],
                    depth=depth,
                    num_heads=self.arch_settings['num_heads'][i],
                    group_size=self.arch_settings['group_size'][i],
                    interval=self.arch_settings['crs_interval'][i],
                    lda_mode=self.arch_settings['lda_mode'],
                    use_acl=self.arch_settings['use_acl'],
                    drop_path_rates=rates[sum(depths[:i]) : sum(depths[: i + 1])],
                    merge_kernels=merge_kernels if i < self.num_stages - 1 else None,
                    with_cp=with_cp,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    use_fused_attn=use_fused_attn,
                )
            )
        if norm_outputs:
            for i in self.out_indices:
                self.add_module(f'norm{i}', nn.LayerNorm(self.num_features[i]))
        self._freeze_stages()
        self._register_load_state_dict_pre_hook(self._released_file_pre_hook)

    def _released_file_pre_hook(self, state_dict: dict, prefix: str, *args) -> None:
        """Load pre-hook: a checkpoint in any layout of :func:`filter_checkpoint`
        loads into the backbone (``load_checkpoint``, ``load_from``,
        ``load_state_dict``). Loaded into the bare backbone (empty ``prefix``),
        the state dict becomes ``filter_checkpoint(state_dict).state_dict``, what
        the loader loads; inside a model (e.g. ``backbone.``) only the DPB index
        buffers under the prefix are dropped, so whatever else does not fit is
        still reported."""
        own = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        try:
            filtered = filter_checkpoint(own)
        except CheckpointMismatchError:
            return  # no state dict in it: torch reports its keys
        if prefix:
            for key, why in filtered.dropped.items():
                if why == DROPPED_DPB_BUFFER:
                    state_dict.pop(prefix + key, None)
            return
        state_dict.clear()
        state_dict.update(filtered.state_dict)

    def _checkpoint_filter(self, state_dict: dict, prefix: str, *args) -> None:
        """mmpretrain's ``ImageClassifier`` runs this as a load pre-hook of the
        whole classifier: a classification file in the backbone's layout (the
        released files: ``patch_embed.*``, ``layers.*``, ``norm.*``, ``head.*``;
        raw, ``{'model': ...}`` or ``{'state_dict': ...}``) takes the
        classifier's layout through :func:`filter_checkpoint`: ``backbone.`` +
        its ``state_dict``, ``head.`` + its ``classifier`` (``head.norm.*`` /
        ``head.head.*`` of ``CrossFormerClsHead``). A full model (the
        classifier's own files) is only unwrapped; anything else is left to
        torch's report."""
        own = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        try:
            filtered = filter_checkpoint(own)
        except CheckpointMismatchError:
            return  # no state dict in it: torch reports its keys
        if filtered.full_model:
            layout = unwrap_state_dict(own)
        elif any(k.split('.', 1)[0] in self._modules for k in filtered.state_dict):
            layout = OrderedDict((BACKBONE_PREFIX + k, v) for k, v in filtered.state_dict.items())
            layout.update(('head.' + k, v) for k, v in filtered.classifier.items())
        else:
            return  # not the backbone's layout
        for key in own:
            del state_dict[prefix + key]
        state_dict.update((prefix + k, v) for k, v in layout.items())

    def init_weights(self) -> None:
        if self.init_cfg is None:
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    trunc_normal_init(m, std=0.02, bias=0.0)
                elif isinstance(m, nn.LayerNorm):
                    constant_init(m, val=1.0, bias=0.0)
        else:
            checkpoint = self.init_cfg.get('checkpoint')
            if not checkpoint:
                raise ValueError(
                    "init_cfg=dict(type='Pretrained') needs `checkpoint`: the path "
                    'of a released CrossFormer checkpoint (or set init_cfg=None)'
                )
            load_backbone_checkpoint(
                self,
                checkpoint,
                strict=self.init_cfg.get('strict', True),
                allow_nonfinite=self.init_cfg.get('allow_nonfinite'),
            )
        self._is_init = True

    def _freeze_stages(self) -> None:
        frozen: List[nn.Module] = [self.patch_embed] if self.frozen_stages >= 0 else []
        for i in range(self.frozen_stages):
            frozen.append(self.layers[i])
            if self.norm_outputs and i in self.out_indices:
                frozen.append(getattr(self, f'norm{i}'))
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'CrossFormer':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'CrossFormer expects images of shape (B, {self.in_channels}, H, W), '
                f'got {tuple(x.shape)}'
            )
        H, W = x.shape[-2:]
        if min(H, W) < self.min_input_size:
            raise ValueError(
                f'input of {H}x{W} is too small: a {self.num_stages}-stage CrossFormer needs '
                f'at least {self.min_input_size}x{self.min_input_size} (the stride of its last '
                'stage); resize or pad the image'
            )

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, C_in, H, W) -> stage outputs (B, C * 2**i, H / 2**(i+2), W / 2**(i+2))
        for i in ``out_indices`` (floored sizes)."""
        self._check_input(x)
        x = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.layers):
            out, x = stage(x)
            if i in self.out_indices:
                if self.norm_outputs:
                    out = getattr(self, f'norm{i}')(out)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
            if i == max(self.out_indices):
                break
        return tuple(outs)
