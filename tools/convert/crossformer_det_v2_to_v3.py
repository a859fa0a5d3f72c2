"""Convert a released CrossFormer detection checkpoint (mmdet 2.x) to mmdet 3.x.

    python tools/convert/crossformer_det_v2_to_v3.py CONFIG SRC DST

The released Mask R-CNN / Cascade Mask R-CNN / RetinaNet checkpoints were
saved by mmdet 2.8 (mmcv 1.x). mmdet 3.x kept every parameter name of these
detectors (backbone, FPN, RPN, RoI / RetinaNet heads), so the state dict is
copied unchanged; what differs is the metadata: ``meta['CLASSES']`` becomes
``meta['dataset_meta']['classes']``, and the mmcv 1.x config text, hook
messages and optimizer state are dropped. The result is validated against
the model of CONFIG (every key present, no extra key, every shape equal);
any difference is an error, so a checkpoint that needed renaming would be
reported, not silently half-loaded.
"""

import argparse
import os
import os.path as osp

import torch

from crossformer_mm.utils.checkpoint import load_checkpoint_file
from crossformer_mm.utils.convert_mmdet2 import build_model, convert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='mmdet 3.x config of the model')
    parser.add_argument('src', help='released mmdet 2.x checkpoint')
    parser.add_argument('dst', help='output mmdet 3.x checkpoint')
    args = parser.parse_args()
    checkpoint = load_checkpoint_file(args.src)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{args.src}: expected a checkpoint dict, got {type(checkpoint).__name__}')
    converted, dropped = convert(checkpoint, build_model(args.config))
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save(converted, args.dst)
    num = len(converted['state_dict'])
    print(
        f'{num} tensors match the model of {args.config}; no key needed '
        'renaming between mmdet 2.x and 3.x'
    )
    others = [k for k in dropped if k not in ('meta', 'dpb_index_buffers')]
    print(
        f'dropped: {", ".join(others) or "-"}; '
        f'old meta fields: {", ".join(dropped["meta"]) or "-"}; '
        f'DPB index buffers (derived by the backbone): {len(dropped["dpb_index_buffers"])}'
    )
    classes = converted['meta'].get('dataset_meta', {}).get('classes')
    print(f'classes: {len(classes) if classes else "not recorded"}; saved to {args.dst}')


if __name__ == '__main__':
    main()
