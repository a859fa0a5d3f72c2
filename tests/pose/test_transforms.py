"""Test-time resize of the original (``resize_align_multi_scale``), pyramid
packing and batching."""

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmpose.registry import MODELS, TRANSFORMS

import crossformer_mm.pose  # noqa: F401  (registers the modules)


def resize(img_w, img_h, scales=(1.0,), input_size=512):
    init_default_scope('mmpose')
    step = TRANSFORMS.build(
        dict(type='ResizeAlignMultiScale', input_size=input_size, scale_factors=list(scales))
    )
    img = np.random.default_rng(0).integers(0, 255, (img_h, img_w, 3), dtype=np.uint8)
    return step(dict(img=img, ori_shape=(img_h, img_w)))


@pytest.mark.parametrize(
    'img_w, img_h, scales, size, region',
    [
        # w > h: short side 512, long side ceil(682.7 / 64) * 64 = 704;
        # the 704 x 512 input shows 660 x 480 image pixels
        (640, 480, (1.0,), (704, 512), (660.0, 480.0)),
        # multi-scale: sizes on the grid of scale 0.5 (256 -> 384 wide)
        (640, 480, (0.5, 1.0, 2.0), (768, 512), (720.0, 480.0)),
        # portrait
        (427, 640, (1.0,), (512, 768), (427.0, 640.5)),
    ],
)
def test_sizes_and_region_follow_the_original(img_w, img_h, scales, size, region):
    results = resize(img_w, img_h, scales)
    assert results['input_size'] == size
    assert results['img_shape'] == size[::-1]
    np.testing.assert_allclose(results['input_scale'], region)


def test_centre_is_rounded_to_integer_pixels():
    results = resize(641, 479)
    np.testing.assert_array_equal(results['input_center'], [321, 240])


def test_pyramid_is_main_scale_first_and_exact_multiples():
    results = resize(640, 480, (2.0, 1.0, 0.5))
    assert results['aug_scales'] == [2.0, 0.5]
    shapes = [img.shape[:2] for img in results['img']]
    assert shapes == [(512, 768), (1024, 1536), (256, 384)]


def test_warp_matches_the_original_affine():
    """The main-scale image is the original ``get_affine_transform`` warp."""
    import cv2

    results = resize(100, 60, input_size=64)
    img = np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    # the original's three points: centre, centre + (0, -src_w / 2) and its
    # get_3rd_point, in the image (src) and the input (dst)
    (w, h), (sw, _) = results['input_size'], results['input_scale']
    center = results['input_center']
    src = np.float32([center, center + [0, -sw / 2], center + [-sw / 2, -sw / 2]])
    dst = np.float32([[w / 2, h / 2], [w / 2, h / 2 - w / 2], [0, h / 2 - w / 2]])
    expected = cv2.warpAffine(img, cv2.getAffineTransform(src, dst), (w, h))
    assert np.abs(results['img'].astype(int) - expected).max() <= 1


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match='must contain 1.0'):
        resize(64, 64, scales=(0.5, 2.0))
    with pytest.raises(TypeError, match='short-side length'):
        TRANSFORMS.build(dict(type='ResizeAlignMultiScale', input_size=(512, 512)))


def test_pack_and_preprocess_a_pyramid():
    init_default_scope('mmpose')
    results = resize(100, 60, (1.0, 0.5, 2.0), input_size=128)
    results.update(id=[1], img_id=1, flip_indices=[0])
    packed = TRANSFORMS.build(dict(type='PackMultiScalePoseInputs'))(results)
    assert [tuple(t.shape) for t in packed['inputs']] == [
        (3, 128, 256),
        (3, 64, 128),
        (3, 256, 512),
    ]
    assert packed['data_samples'].metainfo['aug_scales'] == [0.5, 2.0]
    preprocessor = MODELS.build(
        dict(type='MultiScalePoseDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1], bgr_to_rgb=True)
    )
    batch = preprocessor(pseudo_collate([packed, packed]))
    assert [tuple(t.shape) for t in batch['inputs']] == [
        (2, 3, 128, 256),
        (2, 3, 64, 128),
        (2, 3, 256, 512),
    ]
    torch.testing.assert_close(batch['inputs'][0][0], packed['inputs'][0].flip(0).float())
    assert batch['data_samples'][0].metainfo['batch_input_shape'] == (128, 256)


def test_single_images_pack_and_batch_as_in_mmpose():
    init_default_scope('mmpose')
    results = resize(100, 60, input_size=64)
    results.update(id=[1], img_id=1)
    packed = TRANSFORMS.build(dict(type='PackMultiScalePoseInputs'))(results)
    assert tuple(packed['inputs'].shape) == (3, 64, 128)
    batch = MODELS.build(dict(type='MultiScalePoseDataPreprocessor'))(pseudo_collate([packed]))
    assert tuple(batch['inputs'].shape) == (1, 3, 64, 128)
