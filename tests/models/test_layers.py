"""Unit tests of the CrossFormer building blocks (CEL, DPB, LSDA, block)."""

import pytest
import torch

from crossformer_mm.models.layers import (
    LSDA,
    CrossFormerBlock,
    CrossScaleEmbedding,
    CrossScalePatchMerging,
    DynamicPosBias,
    group_layout,
)
from crossformer_mm.models.layers.cross_scale_embed import split_channels
from crossformer_mm.models.layers.dpb import relative_offset_tables


@pytest.mark.parametrize(
    'channels,kernels,expected',
    [
        (96, 4, [48, 24, 12, 12]),
        (64, 4, [32, 16, 8, 8]),
        (128, 4, [64, 32, 16, 16]),
        (192, 2, [96, 96]),
    ],
)
def test_split_channels(channels, kernels, expected):
    assert split_channels(channels, kernels) == expected


@pytest.mark.parametrize('size', [(32, 32), (37, 53), (224, 224), (65, 34)])
def test_cross_scale_embedding_floor_size(size):
    cel = CrossScaleEmbedding(3, 96)
    out = cel(torch.randn(2, 3, *size))
    assert out.shape == (2, size[0] // 4, size[1] // 4, 96)


@pytest.mark.parametrize('size', [(8, 8), (7, 9), (25, 38), (3, 5)])
def test_patch_merging_floor_size(size):
    merge = CrossScalePatchMerging(32)
    assert [c.out_channels for c in merge.reductions] == [32, 32]
    out = merge(torch.randn(1, *size, 32))
    assert out.shape == (1, size[0] // 2, size[1] // 2, 64)


def test_patch_merging_norms_first():
    """The merging CEL normalises its input: a per-token affine input change is invisible."""
    merge = CrossScalePatchMerging(16).eval()
    x = torch.randn(1, 6, 6, 16)
    shifted = x * 3.0 + 5.0
    torch.testing.assert_close(merge(x), merge(shifted), atol=1e-4, rtol=1e-4)


def test_cel_rejects_bad_kernels():
    with pytest.raises(ValueError, match='kernel sizes'):
        CrossScaleEmbedding(3, 96, kernel_sizes=(4, 7))


def test_dpb_offsets_and_index():
    offsets, index = relative_offset_tables(2, 3, torch.device('cpu'))
    assert offsets.shape == (3 * 5, 2)
    assert offsets.min().item() == -2 and offsets.max().item() == 2  # raw, not normalised
    coords = [(h, w) for h in range(2) for w in range(3)]
    for i, (hi, wi) in enumerate(coords):
        for j, (hj, wj) in enumerate(coords):
            dy, dx = offsets[index[i, j]].tolist()
            assert (dy, dx) == (hi - hj, wi - wj)
            assert index[i, j] == (hi - hj + 1) * 5 + (wi - wj + 2)


def test_dpb_group_bias_shape_and_values():
    dpb = DynamicPosBias(6, 3)
    bias = dpb.group_bias(*relative_offset_tables(4, 5, torch.device('cpu')))
    assert bias.shape == (3, 20, 20)
    # token 7 = (1, 2), token 0 = (0, 0): offset (1, 2)
    expected = dpb(torch.tensor([[1.0, 2.0]]))[0]
    torch.testing.assert_close(bias[:, 7, 0], expected)


def test_group_layouts():
    sda = group_layout(25, 38, 'sda', 7, 8, 'iclr')
    assert (sda.group_h, sda.group_w, sda.interval) == (7, 7, 1)
    assert (sda.padded_h, sda.padded_w, sda.num_groups) == (28, 42, 24)
    iclr = group_layout(25, 38, 'lda', 7, 8, 'iclr')
    assert (iclr.group_h, iclr.group_w, iclr.interval) == (4, 5, 8)
    assert (iclr.padded_h, iclr.padded_w, iclr.num_groups) == (32, 40, 64)
    windowed = group_layout(25, 38, 'lda', 7, 2, 'windowed')
    assert (windowed.group_h, windowed.group_w, windowed.interval) == (7, 7, 2)
    assert (windowed.padded_h, windowed.padded_w, windowed.num_groups) == (28, 42, 24)
    # min(H, W) <= G: SDA for both block kinds, min side (iclr) or whole map (windowed:
    # one group of exactly H x W tokens, unpadded)
    for attn_type in ('sda', 'lda'):
        small = group_layout(5, 9, attn_type, 7, 2, 'iclr')
        assert (small.group_h, small.group_w, small.interval) == (5, 5, 1)
        whole = group_layout(5, 9, attn_type, 7, 2, 'windowed')
        assert (whole.group_h, whole.group_w, whole.interval, whole.num_groups) == (5, 9, 1, 1)
        assert not whole.is_padded


def _group_ids(layout):
    """Group index of every position of the padded map, via group()."""
    ids = (
        torch.arange(layout.num_groups)
        .view(1, -1, 1, 1)
        .expand(1, layout.num_groups, layout.group_tokens, 1)
        .float()
    )
    return layout.ungroup(ids)[0, :, :, 0].long()


def test_group_membership_iclr_and_windowed():
    iclr = group_layout(20, 28, 'lda', 7, 4, 'iclr')
    ids = _group_ids(iclr)
    for h in range(20):
        for w in range(28):
            # same group  <=>  same residues mod I
            assert ids[h, w] == ids[h % 4, w % 4]
    windowed = group_layout(20, 28, 'lda', 3, 2, 'windowed')
    ids = _group_ids(windowed)
    for h in range(20):
        for w in range(28):
            window_origin = (h // 6 * 6 + h % 2, w // 6 * 6 + w % 2)
            assert ids[h, w] == ids[window_origin]
    assert len(ids.unique()) == windowed.num_groups


def test_group_ungroup_roundtrip():
    layout = group_layout(13, 17, 'lda', 3, 2, 'windowed')
    x = torch.randn(2, layout.padded_h, layout.padded_w, 5)
    assert torch.equal(layout.ungroup(layout.group(x)), x)


def test_key_padding_mask_masks_exactly_padded_keys():
    layout = group_layout(10, 11, 'sda', 4, 1, 'iclr')
    mask = layout.key_padding_mask(torch.device('cpu'))
    assert mask.shape == (layout.num_groups, 1, 16)
    padded = layout.padded_h * layout.padded_w - 10 * 11
    assert int((mask < 0).sum()) == padded
    assert group_layout(14, 21, 'sda', 7, 1, 'iclr').key_padding_mask(torch.device('cpu')) is None


def naive_lsda(attn: LSDA, x: torch.Tensor) -> torch.Tensor:
    """Brute force LSDA: one group at a time, only real tokens, DPB on offsets.

    Written from the definitions (not from the grouping code): the group of a
    token and its position inside the group follow from its coordinates.
    """
    B, H, W, C = x.shape
    layout = attn.layout(H, W)
    G, step = (layout.group_h, layout.interval)

    def group_and_position(h, w):
        if layout.interval == 1:  # SDA
            return (h // layout.group_h, w // layout.group_w), (
                h % layout.group_h,
                w % layout.group_w,
            )
        if attn.lda_mode == 'iclr':
            return (h % step, w % step), (h // step, w // step)
        span = G * step
        return (h // span, w // span, h % step, w % step), (
            (h % span) // step,
            (w % span) // step,
        )

    members = {}
    for h in range(H):
        for w in range(W):
            gid, pos = group_and_position(h, w)
            members.setdefault(gid, []).append(((h, w), pos))
    qkv = attn.qkv(x)
    out = torch.zeros(B, H, W, C)
    heads, d = attn.num_heads, attn.head_dims
    for tokens in members.values():
        hw = [t[0] for t in tokens]
        pos = torch.tensor([t[1] for t in tokens], dtype=torch.float32)
        feats = torch.stack([qkv[:, h, w] for h, w in hw], dim=1)  # B, n, 3C
        q, k, v = feats.view(B, len(hw), 3, heads, d).permute(2, 0, 3, 1, 4)
        rel = pos[:, None, :] - pos[None, :, :]
        bias = attn.pos(rel.view(-1, 2)).view(len(hw), len(hw), heads).permute(2, 0, 1)
        weights = ((q * attn.scale) @ k.transpose(-2, -1) + bias).softmax(-1)
        res = (weights @ v).transpose(1, 2).reshape(B, len(hw), C)
        for i, (h, w) in enumerate(hw):
            out[:, h, w] = res[:, i]
    return attn.proj(out)


@pytest.mark.parametrize(
    'attn_type,lda_mode,group_size,interval,size',
    [
        ('sda', 'iclr', 4, 1, (10, 11)),  # padded SDA
        ('lda', 'iclr', 4, 3, (10, 11)),  # dilated global groups, padded
        ('lda', 'windowed', 2, 3, (10, 13)),  # windowed, with fully padded groups
        ('lda', 'iclr', 7, 2, (5, 9)),  # small map: SDA with min side
        ('sda', 'windowed', 7, 2, (6, 9)),  # small map: one group over the whole map
    ],
)
@pytest.mark.parametrize('fused', [True, False])
def test_lsda_matches_brute_force(attn_type, lda_mode, group_size, interval, size, fused):
    torch.manual_seed(0)
    attn = LSDA(
        64, 2, group_size, interval, attn_type=attn_type, lda_mode=lda_mode, use_fused_attn=fused
    ).eval()
    x = torch.randn(2, *size, 64)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), naive_lsda(attn, x), atol=1e-5, rtol=1e-4)


def test_lsda_is_batch_independent_and_stateless():
    torch.manual_seed(0)
    attn = LSDA(64, 2, 7, 4, attn_type='lda').eval()
    big = torch.randn(2, 30, 23, 64)
    with torch.no_grad():
        before = attn(big)
        attn(torch.randn(1, 5, 6, 64))  # a small input must not change later outputs
        after = attn(big)
        single = attn(big[1:])
    assert torch.equal(before, after)
    torch.testing.assert_close(before[1:], single, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('fused', [True, False])
def test_lsda_autocast_is_finite(dtype, fused):
    torch.manual_seed(0)
    # windowed, G=2, I=3 on 10x13: windows of 6x6, several groups entirely padding
    attn = LSDA(64, 2, 2, 3, attn_type='lda', lda_mode='windowed', use_fused_attn=fused).eval()
    x = torch.randn(1, 10, 13, 64)
    with torch.no_grad():
        ref = attn(x)
        with torch.autocast('cpu', dtype=dtype):
            out = attn(x)
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_lsda_rejects_bad_arguments():
    with pytest.raises(ValueError, match='attn_type'):
        LSDA(64, 2, 7, 2, attn_type='global')
    with pytest.raises(ValueError, match='lda_mode'):
        LSDA(64, 2, 7, 2, lda_mode='dilated')
    with pytest.raises(ValueError, match='divisible'):
        LSDA(64, 3, 7, 2)
    with pytest.raises(ValueError, match='group_size'):
        LSDA(64, 2, 0, 2)


def test_block_residuals_and_acl():
    torch.manual_seed(0)
    block = CrossFormerBlock(64, 2, 4, 2, attn_type='lda', use_acl=True).eval()
    assert {'ex_conv.weight', 'ex_ln.weight'} <= set(block.state_dict())
    x = torch.randn(1, 9, 10, 64)
    with torch.no_grad():
        y = x + block.attn(block.norm1(x))
        y = y + block.mlp(block.norm2(y))
        expected = block.ex_ln(block.ex_conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        torch.testing.assert_close(block(x), expected)
    plain = CrossFormerBlock(64, 2, 4, 2)
    assert not any(k.startswith('ex_') for k in plain.state_dict())
