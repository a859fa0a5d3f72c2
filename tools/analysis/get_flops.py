"""Parameters and FLOPs of a model of a config, for one image of a given size.

    python tools/analysis/get_flops.py configs/mask_rcnn_crossformer_s_fpn_1x_coco.py
        [--shape 1280 800] [--cfg-options k=v ...]

Uses mmengine's jit-based FLOP analysis (one fused multiply-add = 1 FLOP, as
the published numbers count) on the model's ``tensor`` forward of an image of
``--shape H W`` (default 1280 800, the size of the published detection
FLOPs); attention runs the explicit matmul path so that it is counted.
Two-stage detectors count the box heads on the proposals that their RPN keeps
at test time and the mask heads on 100 RoIs, the convention of mmdet 2.x's
``forward_dummy`` behind the published numbers (mmdet 3.x's Cascade R-CNN
``tensor`` forward runs its mask heads on every proposal instead; that part
is rescaled to 100 RoIs, which is exact because it is linear in the RoIs).
"""

import argparse
import importlib
from functools import partial
from typing import List

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from torch.nn import ModuleList

from crossformer_mm.utils.cli import add_cfg_options, toolbox_of

MASK_ROIS = 100  # RoIs of the mask branch in the published FLOPs
DATA_SAMPLES = {
    'mmdet': ('mmdet.structures', 'DetDataSample'),
    'mmseg': ('mmseg.structures', 'SegDataSample'),
    'mmpose': ('mmpose.structures', 'PoseDataSample'),
}


def _use_explicit_attention(node) -> None:
    """Set ``use_fused_attn=False`` on every CrossFormer of a model config."""
    if isinstance(node, dict):
        if node.get('type') == 'CrossFormer':
            node['use_fused_attn'] = False
        for value in node.values():
            _use_explicit_attention(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _use_explicit_attention(value)


def _count_mask_rois(model) -> List[int]:
    """Hook the mask heads; the list fills with the RoIs each one sees."""
    counts: List[int] = []
    roi_head = getattr(model, 'roi_head', None)
    heads = getattr(roi_head, 'mask_head', None)
    if heads is not None:
        for head in heads if isinstance(heads, ModuleList) else [heads]:
            head.register_forward_hook(
                lambda module, inputs, output: counts.append(int(inputs[0].shape[0]))
            )
    return counts


def complexity(cfg: Config, height: int, width: int) -> dict:
    """``{'flops': int, 'params': int, 'input_shape': (H, W)}`` of
    ``cfg.model`` on one image (padded as its data preprocessor pads)."""
    scope = toolbox_of(cfg)
    init_default_scope(scope)
    _use_explicit_attention(cfg.model)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.eval()
    module, name = DATA_SAMPLES[scope]
    sample = getattr(importlib.import_module(module), name)()
    shape = (height, width)
    sample.set_metainfo(
        dict(img_shape=shape, ori_shape=shape, pad_shape=shape, scale_factor=(1.0, 1.0))
    )
    data = model.data_preprocessor(
        dict(
            inputs=[torch.randint(0, 256, (3, height, width), dtype=torch.uint8)],
            data_samples=[sample],
        ),
        False,
    )
    model.forward = partial(model.forward, data_samples=data['data_samples'])
    mask_rois = _count_mask_rois(model)
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, data['inputs'])
        analyzer.unsupported_ops_warnings(False)
        flops = analyzer.total()
    if mask_rois and max(mask_rois) > MASK_ROIS:
        by_module = analyzer.by_module()
        mask_flops = sum(
            by_module.get(f'roi_head.{name}', 0) for name in ('mask_head', 'mask_roi_extractor')
        )
        flops -= round(mask_flops * (1 - MASK_ROIS / max(mask_rois)))
    return dict(
        flops=flops, params=parameter_count(model)[''], input_shape=tuple(data['inputs'].shape[-2:])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[1280, 800],
        metavar=('H', 'W'),
        help='input image size (default: 1280 800)',
    )
    add_cfg_options(parser)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    result = complexity(cfg, *args.shape)
    line = '=' * 30
    print(
        f'{line}\nConfig: {args.config}\n'
        f'Input shape: {args.shape[0]}x{args.shape[1]} '
        f'(padded: {result["input_shape"][0]}x{result["input_shape"][1]})'
        f'\nFLOPs: {result["flops"] / 1e9:.1f} G\n'
        f'Params: {result["params"] / 1e6:.2f} M\n{line}'
    )


if __name__ == '__main__':
    main()
