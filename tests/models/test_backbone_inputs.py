"""Bad CrossFormer arguments are clear ValueErrors that name the argument."""

import numpy as np
import pytest

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.models.layers import LSDA

SMALL = dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))


def arch(**changes) -> dict:
    return dict(arch=dict(SMALL, **changes))


@pytest.mark.parametrize(
    'kwargs,message',
    [
        # embed_dims: positive int (not bool), wide enough for the DPB (dims // 16) and the
        # CEL split
        (arch(embed_dims=0), r'embed_dims must be an integer >= 16.*got 0'),
        (arch(embed_dims=-96), r'embed_dims must be an integer >= 16'),
        (arch(embed_dims=8), r'embed_dims must be an integer >= 16.*got 8'),
        (arch(embed_dims=96.0), r'embed_dims must be an integer >= 16.*got 96\.0'),
        (arch(embed_dims=True), r'embed_dims must be an integer >= 16.*got True'),
        # depths: non-empty, positive ints, one per stage
        (arch(depths=()), r'depths must be a non-empty sequence of positive integers'),
        (arch(depths=4), r'depths must be a non-empty sequence'),
        (arch(depths=(2, 2, 0, 2)), r'depths must be .*got \(2, 2, 0, 2\)'),
        (arch(depths=(2, True, 6, 2)), r'depths must be .*positive integers'),
        (arch(depths=(2, 2, 6.0, 2)), r'depths must be .*positive integers'),
        # num_heads: one positive int per stage, dividing the stage's channels
        (arch(num_heads=(3, 6, 12)), r'num_heads must be 4 positive integers \(one per stage\)'),
        (arch(num_heads=(3, 6, 12, 0)), r'num_heads must be 4 positive integers'),
        (arch(num_heads=(3, 6, 12, True)), r'num_heads must be 4 positive integers'),
        (arch(depths=(2, 2), num_heads=(3, 6, 12, 24)), r'num_heads must be 2 positive integers'),
        (arch(num_heads=(5, 6, 12, 24)), r'num_heads: stage 0: 96 channels are not divisible by 5'),
        (arch(num_heads=(3, 6, 12, 25)), r'num_heads: stage 3: 768 channels are not divisible'),
        # group_size / crs_interval: one positive int per stage (an int is repeated); no bools
        (dict(group_size=[True, 7, 7, 7]), r'group_size must be 4 positive integers.*True'),
        (dict(group_size=[7, 7, 0, 7]), r'group_size must be 4 positive integers'),
        (dict(group_size=[-7] * 4), r'group_size must be 4 positive integers'),
        (dict(group_size=[7.0] * 4), r'group_size must be 4 positive integers'),
        (dict(group_size=7.5), r'group_size must be 4 positive integers'),
        (dict(group_size=0), r'group_size must be 4 positive integers'),
        (dict(group_size=[7, 7, 7]), r'group_size must be 4 positive integers'),
        (dict(group_size=True), r'group_size must be 4 positive integers'),
        (arch(group_size=(7, 7)), r'group_size must be 4 positive integers'),
        (dict(crs_interval=[8, 4, 2, False]), r'crs_interval must be 4 positive integers'),
        (dict(crs_interval=[8, 4, 2]), r'crs_interval must be 4 positive integers'),
        (dict(crs_interval=-1), r'crs_interval must be 4 positive integers'),
        # modes and flags
        (dict(lda_mode='global'), r"lda_mode must be one of \('iclr', 'windowed'\), got 'global'"),
        (arch(lda_mode=None), r'lda_mode must be one of'),
        (arch(use_acl='yes'), r"use_acl must be True or False, got 'yes'"),
        (arch(window_size=7), r"unknown keys \['window_size'\] in a custom CrossFormer arch"),
        (dict(arch='medium'), r"unknown CrossFormer arch 'medium'"),
        # rates and widths
        (dict(drop_path_rate=1.0), r'drop_path_rate must be a probability in \[0, 1\), got 1\.0'),
        (dict(drop_path_rate=-0.1), r'drop_path_rate must be a probability in \[0, 1\)'),
        (dict(drop_path_rate=True), r'drop_path_rate must be a probability'),
        (dict(drop_rate=1.5), r'drop_rate must be a probability in \[0, 1\)'),
        (dict(attn_drop_rate=-0.5), r'attn_drop_rate must be a probability in \[0, 1\)'),
        (dict(mlp_ratio=0), r'mlp_ratio must be a positive number'),
        (dict(in_channels=0), r'in_channels must be a positive integer'),
        # output stages, frozen stages
        (dict(out_indices=(0, 4)), r'out_indices must be distinct stage indices in \[0, 4\)'),
        (dict(out_indices=(-1,)), r'out_indices must be distinct stage indices in \[0, 4\)'),
        (dict(out_indices=()), r'out_indices must be'),
        (dict(out_indices=(1, 1)), r'out_indices must be distinct'),
        (dict(out_indices=(3, 0)), r'out_indices must be .*in increasing order'),
        (dict(out_indices=(True, 2)), r'out_indices must be'),
        (dict(out_indices=3), r'out_indices must be'),
        (dict(frozen_stages=5), r'frozen_stages must be an integer in \[-1, 4\], got 5'),
        (dict(frozen_stages=-2), r'frozen_stages must be an integer in \[-1, 4\]'),
        (dict(frozen_stages=True), r'frozen_stages must be an integer'),
        # CEL kernels
        (
            dict(
                arch=dict(embed_dims=16, depths=(1, 1), num_heads=(1, 1)),
                out_indices=(0, 1),
                patch_kernels=(4, 8, 12, 16, 20, 24),
            ),
            r'patch_kernels must be at most 5 kernels for '
            r'embed_dims=16 .*\[8, 4, 2, 1, 0, 1\]',
        ),
        (dict(patch_kernels=()), r'patch_kernels must be a non-empty sequence'),
        (dict(merge_kernels=(2, 0)), r'merge_kernels must be a non-empty sequence of positive'),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CrossFormer(**kwargs)


def test_integer_like_values_are_accepted():
    model = CrossFormer(
        arch=dict(embed_dims=np.int64(32), depths=[1, 1, 1, 1], num_heads=(1, 2, 4, np.int64(8))),
        group_size=np.int64(7),
        crs_interval=[8, 4, 2, 1],
        out_indices=[0, 2],
    )
    settings = model.arch_settings
    assert settings['group_size'] == (7, 7, 7, 7)
    assert all(type(v) is int for v in settings['num_heads'] + settings['group_size'])
    assert settings['depths'] == (1, 1, 1, 1) and settings['embed_dims'] == 32
    assert model.out_indices == (0, 2)


@pytest.mark.parametrize(
    'kwargs', [dict(group_size=True), dict(interval=False), dict(group_size=7.0), dict(interval=0)]
)
def test_lsda_rejects_bools_and_non_integers(kwargs):
    args = dict(embed_dims=64, num_heads=2, group_size=7, interval=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match='group_size and interval must be positive integers'):
        LSDA(**args)
