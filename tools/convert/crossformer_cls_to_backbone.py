"""Convert a released CrossFormer classification checkpoint to backbone weights.

    python tools/convert/crossformer_cls_to_backbone.py crossformer-s.pth \
        backbone-crossformer-s.pth [--arch small]

Keeps ``ckpt['model']`` (or any layout the backbone's loader accepts) without
the classifier, the final norm and the DPB index buffers, filtered exactly as
the loader filters (``crossformer_mm.utils.checkpoint.filter_checkpoint``),
prints every dropped key and why, and with ``--arch`` checks that the result
loads into that backbone without any missing or unexpected key. The output is
a plain state dict (``{'state_dict': ...}``) that
``init_cfg=dict(type='Pretrained', checkpoint=...)`` loads. Configs can also
point at the released file directly; converting once saves the yacs config
object and the classifier.
"""

import argparse
import os
import os.path as osp

import torch

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.utils.checkpoint import (
    filter_checkpoint,
    load_backbone_state_dict,
    load_checkpoint_file,
)


def convert(src: str, dst: str, arch: str = None) -> dict:
    """Write the backbone weights of ``src`` to ``dst``; return the dropped
    keys with why (:func:`~crossformer_mm.utils.checkpoint.filter_checkpoint`)."""
    filtered = filter_checkpoint(load_checkpoint_file(src))
    if arch is not None:
        load_backbone_state_dict(
            CrossFormer(arch=arch), filtered.state_dict, strict=True, source=f'converted {src!r}'
        )
    if osp.dirname(dst):
        os.makedirs(osp.dirname(dst), exist_ok=True)
    torch.save({'state_dict': filtered.state_dict}, dst)
    return dict(filtered.dropped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released classification checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument(
        '--arch',
        help='check that the weights fit this CrossFormer arch (small, base, pp-small, ...)',
    )
    args = parser.parse_args()
    dropped = convert(args.src, args.dst, args.arch)
    print(f'dropped {len(dropped)} keys not used by the backbone:')
    for key in sorted(dropped):
        print(f'  {key}: {dropped[key]}')
    print(f'saved backbone weights to {args.dst}')


if __name__ == '__main__':
    main()
