"""The drop-in promise: CrossFormer replaces ``SwinTransformer`` in the stock configs.

Every stock mmdet / mmseg / mmpose config whose model uses ``SwinTransformer`` (itself or
through its ``_base_`` files) is found by reading the installed toolboxes' ``.mim/configs``.
Each gets a CrossFormer of the same stage widths (Swin's ``embed_dims``; heads of 32
channels, as in every CrossFormer) with Swin's ``out_indices`` / ``in_channels`` /
``frozen_stages`` / ``with_cp`` kept, and one block per stage to stay fast. What the test does
not test shrinks: images of :data:`IMAGE_SIZE`, batch augments that pad to the training size
(LSJ's 1024x1024) pad to that size instead, class counts above :data:`HUGE_CLASSES` (V3Det)
become :data:`MAX_CLASSES`, query counts above :data:`MAX_QUERIES` (more than the tokens of a
small image) become :data:`MAX_QUERIES`, sliding-window test crops fit the image. Then one
training step through the model's own ``train_step`` (finite loss, a finite non-zero gradient
for every backbone parameter) and one prediction. A model-level ``pretrained`` (mmseg's K-Net)
is handed a CrossFormer checkpoint, as mmseg hands it to the backbone.
"""

import ast
import functools
import glob
import importlib
import math
import os
import os.path as osp
import time
from typing import Dict, List, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, init_default_scope

import crossformer_mm  # noqa: F401  registers CrossFormer
from _helpers import ONEDL, one_per_family

TOOLBOXES = ('mmdet', 'mmseg', 'mmpose')
#: Language-grounded detectors: they need a text encoder (BERT weights from the network).
GROUNDING_FOLDERS = ('glip', 'grounding_dino', 'mm_grounding_dino')
#: Other configs left out, with the reason.
EXCLUDED: Dict[str, str] = {
    'mmdet/v3det/fcos_swinb_fpn_8x4_sample1e-3_mstrain_v3det_2x': (
        'the stock config does not build in mmdet 3.3.0, with Swin either: it gives FPN '
        '`force_grad_on_level`, an argument no mmdet module has'
    ),
}
if ONEDL:
    EXCLUDED['mmseg/swin/swin-tiny-patch4-window7_upernet_1xb8-20k_levir-256x256'] = (
        'the stock config does not build on onedl-mmsegmentation 1.4.2 / onedl-mmengine '
        '0.10.12, with Swin either: its data preprocessor has 6 mean / std values (two '
        'images), and mmengine now asserts 1 or 3'
    )
#: Image side (mmdet / mmseg); mmpose keeps its 4:3 top-down aspect (H x W, multiples of 32
#: as 256 x 192).
IMAGE_SIZE = 64
POSE_IMAGE = (128, 96)
#: Class counts above HUGE_CLASSES (V3Det's 13204) become MAX_CLASSES; batches use MAX_CLASSES.
HUGE_CLASSES = 1000
MAX_CLASSES = 8
#: Query-based detectors pick their queries among the encoder's tokens (85 at 64x64 with
#: strides 8-64): at most this many queries.
MAX_QUERIES = 50
BATCH = 2


def _configs_root(toolbox: str) -> str:
    return osp.join(osp.dirname(importlib.util.find_spec(toolbox).origin), '.mim', 'configs')


def _base_files(path: str) -> List[str]:
    """The local ``_base_`` files of a config (``pkg::`` bases are other toolboxes')."""
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(target, 'id', None) == '_base_' for target in node.targets
        ):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else list(bases)
            return [osp.normpath(osp.join(osp.dirname(path), b)) for b in bases if '::' not in b]
    return []


@functools.cache
def _uses_swin(path: str) -> bool:
    """The config or one of its bases names ``SwinTransformer``."""
    if not osp.exists(path):
        return False
    if 'SwinTransformer' in open(path).read():
        return True
    return any(_uses_swin(base) for base in _base_files(path))


def discover() -> List[Tuple[str, str]]:
    """(id, path) of every stock config of the toolboxes whose model uses Swin, but the
    language-grounded ones; ids are ``toolbox/folder/name`` without ``.py``."""
    found = []
    for toolbox in TOOLBOXES:
        root = _configs_root(toolbox)
        for path in sorted(glob.glob(osp.join(root, '**', '*.py'), recursive=True)):
            rel = osp.relpath(path, root)
            parts = rel.split(os.sep)
            if '_base_' in parts or parts[0] in GROUNDING_FOLDERS or not _uses_swin(path):
                continue
            found.append((f'{toolbox}/{rel[:-3]}', path))
    return found


CONFIGS = discover()


def test_discovery_finds_the_swin_families():
    ids = [config_id for config_id, _ in CONFIGS]
    families = {config_id.rsplit('/', 1)[0] for config_id in ids}
    # the families the README names; a toolbox update that drops one shows up here
    for family in (
        'mmdet/dino',
        'mmdet/ddq',
        'mmdet/dyhead',
        'mmdet/mask2former',
        'mmdet/maskformer',
        'mmdet/rtmdet',
        'mmdet/v3det',
        'mmdet/swin',
        'mmseg/mask2former',
        'mmseg/maskformer',
        'mmseg/knet',
        'mmseg/swin',
        'mmpose/body_2d_keypoint/topdown_heatmap/coco',
    ):
        assert family in families, (family, sorted(families))
    assert not any(config_id.split('/')[1] in GROUNDING_FOLDERS for config_id in ids)
    assert set(EXCLUDED) <= set(ids), 'an exclusion names a config that no longer exists'


@pytest.mark.parametrize('config_id', sorted(EXCLUDED))
def test_each_exclusion_does_not_build_with_swin_either(config_id):
    """The reason of an exclusion still holds: the stock config, Swin and all, fails."""
    path = dict(CONFIGS)[config_id]
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    with pytest.raises((TypeError, AssertionError, KeyError)):
        MODELS.build(cfg.model)


# the swap ---------------------------------------------------------------------------------
def _walk(node, visit) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, visit)


def crossformer_for(swin: dict) -> dict:
    """A CrossFormer with the stage widths and outputs of a Swin backbone config."""
    assert swin['type'] in (
        'SwinTransformer',
        'mmdet.SwinTransformer',
        'mmseg.SwinTransformer',
        'mmpose.SwinTransformer',
        'mmpretrain.SwinTransformer',
    ), swin
    width = swin.get('embed_dims', 96)
    stages = len(swin.get('depths', (2, 2, 6, 2)))  # RTMDet-P6's Swin has 5
    backbone = dict(
        type='CrossFormer',
        arch=dict(
            embed_dims=width,
            depths=(1,) * stages,
            num_heads=tuple(width * 2**i // 32 for i in range(stages)),
        ),
        out_indices=tuple(swin.get('out_indices', (0, 1, 2, 3))),
        drop_path_rate=0.0,
        init_cfg=None,
    )
    for key in ('in_channels', 'frozen_stages', 'with_cp'):
        if key in swin:
            backbone[key] = swin[key]
    return backbone


def _shrink(cfg: Config, toolbox: str, image: Tuple[int, int]) -> None:
    """What the test does not test: pretrained weights of other parts, batch padding to
    the training size, huge class counts, test crops larger than the image."""
    model = cfg.model

    def visit(node: dict) -> None:
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for key in ('num_classes', 'num_things_classes', 'num_stuff_classes'):
            if isinstance(node.get(key), int) and node[key] > HUGE_CLASSES:
                node[key] = MAX_CLASSES
        if isinstance(node.get('num_queries'), int) and node['num_queries'] > MAX_QUERIES:
            node['num_queries'] = MAX_QUERIES
        if node.get('type') == 'BatchFixedSizePad':
            node['size'] = image
        if toolbox == 'mmseg' and 'crop_size' in node and node.get('mode') == 'slide':
            node['crop_size'] = image
            node['stride'] = tuple(s // 2 for s in image)

    _walk(model, visit)
    preprocessor = model.get('data_preprocessor') or {}
    if toolbox == 'mmseg' and preprocessor.get('size') is not None:
        preprocessor['size'] = image


def build_swapped(path: str, tmp_path) -> Tuple[torch.nn.Module, str, dict]:
    cfg = Config.fromfile(path)
    toolbox = cfg.default_scope
    init_default_scope(toolbox)
    image = POSE_IMAGE if toolbox == 'mmpose' else (IMAGE_SIZE, IMAGE_SIZE)
    swin = cfg.model.backbone
    cfg.model.backbone = crossformer_for(swin)
    if len(cfg.model.backbone.arch.depths) > 4:  # a 2x2 map in stage 5 (1x1 holds no position)
        image = (2 * IMAGE_SIZE, 2 * IMAGE_SIZE)
    _shrink(cfg, toolbox, image)
    if cfg.model.get('pretrained'):  # mmseg hands it to the backbone (K-Net)
        source = MODELS.build(dict(cfg.model.backbone))
        checkpoint = str(tmp_path / 'crossformer.pth')
        torch.save({'state_dict': source.state_dict()}, checkpoint)
        cfg.model.pretrained = checkpoint
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    if cfg.model.get('pretrained'):
        for key, value in source.state_dict().items():
            assert torch.equal(model.backbone.state_dict()[key], value), key
    return model, toolbox, dict(cfg.model.backbone, image=image)


# inputs -----------------------------------------------------------------------------------
def _num_classes(model_cfg) -> int:
    counts = []
    _walk(
        model_cfg,
        lambda node: (
            counts.append(node['num_classes']) if isinstance(node.get('num_classes'), int) else None
        ),
    )
    return min(counts) if counts else MAX_CLASSES


def make_batch(
    model: torch.nn.Module, toolbox: str, image: Tuple[int, int], in_channels: int
) -> dict:
    torch.manual_seed(0)
    if toolbox == 'mmdet' and type(model).__name__ == 'Mask2FormerVideo':
        # one clip of 2 frames (the video model takes one clip per process)
        from mmdet.testing import demo_track_inputs

        return demo_track_inputs(
            1,
            num_frames=2,
            image_shapes=[(in_channels, *image)],
            num_items=[2],
            num_classes=MAX_CLASSES,
            with_mask=True,
        )
    if toolbox == 'mmdet':
        from mmdet.testing import demo_mm_inputs

        head = getattr(model, 'panoptic_head', None)
        panoptic = head is not None and getattr(head, 'num_stuff_classes', 0) > 0
        num_classes = (
            head.num_things_classes + head.num_stuff_classes
            if head is not None
            else getattr(getattr(model, 'bbox_head', None), 'num_classes', None) or MAX_CLASSES
        )
        with_mask = (
            head is not None
            or getattr(getattr(model, 'roi_head', None), 'with_mask', False)
            or 'Ins' in type(getattr(model, 'bbox_head', None)).__name__
        )
        return demo_mm_inputs(
            BATCH,
            [(in_channels, *image)] * BATCH,
            num_items=[2] * BATCH,
            num_classes=min(num_classes, MAX_CLASSES),
            with_mask=with_mask,
            with_semantic=panoptic,
        )
    if toolbox == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample

        num_classes = model.decode_head.num_classes
        inputs, samples = [], []
        for _ in range(BATCH):
            inputs.append(torch.randint(0, 256, (in_channels, *image), dtype=torch.uint8))
            sample = SegDataSample(metainfo=dict(img_shape=image, ori_shape=image, pad_shape=image))
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, num_classes, (1, *image), dtype=torch.long)
            )
            samples.append(sample)
        return dict(inputs=inputs, data_samples=samples)
    from mmpose.testing import get_packed_inputs

    heatmap = (image[1] // 4, image[0] // 4)  # (w, h) at stride 4
    return get_packed_inputs(
        BATCH,
        num_keypoints=model.head.out_channels,
        img_shape=image,
        input_size=(image[1], image[0]),
        heatmap_size=heatmap,
        with_reg_label=False,
        with_simcc_label=False,
    )


# the test ---------------------------------------------------------------------------------
TESTED = [(config_id, path) for config_id, path in CONFIGS if config_id not in EXCLUDED]


@pytest.mark.slow
@pytest.mark.parametrize(
    'path',
    # a family: the toolbox's config folder (mmdet/dino, mmseg/swin, ...)
    one_per_family(
        [config_id for config_id, _ in TESTED],
        lambda config_id: config_id.rsplit('/', 1)[0],
        [path for _, path in TESTED],
    ),
)
def test_crossformer_replaces_swin(path, tmp_path, record_property):
    start = time.process_time()
    model, toolbox, backbone = build_swapped(path, tmp_path)
    assert type(model.backbone).__name__ == 'CrossFormer'
    batch = make_batch(model, toolbox, backbone['image'], backbone.get('in_channels', 3))

    grads = {}  # backbone parameter -> (gradient is finite, gradient is non-zero)
    for name, param in model.backbone.named_parameters():
        if param.requires_grad:
            param.register_hook(
                lambda grad, name=name: grads.__setitem__(
                    name, (bool(torch.isfinite(grad).all()), bool(grad.any()))
                )
            )
    assert grads == {} and any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-2))
    log_vars = model.train_step(batch, optim_wrapper)
    loss = float(log_vars['loss'])
    assert math.isfinite(loss), log_vars
    trainable = [name for name, p in model.backbone.named_parameters() if p.requires_grad]
    missing = [name for name in trainable if not grads.get(name, (True, False))[1]]
    assert not missing, f'no gradient reached these backbone parameters: {missing}'
    assert all(finite for finite, _ in grads.values()), grads

    model.eval()
    with torch.no_grad():
        predictions = model.test_step(batch)
    assert len(predictions) == len(batch['inputs'])
    field = {'mmdet': 'pred_instances', 'mmseg': 'pred_sem_seg', 'mmpose': 'pred_instances'}[
        toolbox
    ]
    if toolbox == 'mmdet' and 'pred_panoptic_seg' in predictions[0]:
        field = 'pred_panoptic_seg'
    if hasattr(predictions[0], 'video_data_samples'):  # video: one prediction per frame
        predictions = [frame for clip in predictions for frame in clip.video_data_samples]
        field = 'pred_track_instances'
    assert all(field in prediction for prediction in predictions), predictions[0].keys()
    record_property('cpu_seconds', round(time.process_time() - start, 2))  # (--junitxml)
