# ADE20K data, runtime, test-time augmentation and the CrossFormer backbone
# template (``crossformer_backbone``: CrossFormer-S with G=[7]*4, I=[8,4,2,1],
# drop path 0.2, ImageNet checkpoint, shared with detection and pose) of every
# CrossFormer segmentation config (mmseg 1.x bases, through crossformer_mm).
_base_ = [
    './mmseg/_base_/datasets/ade20k.py',
    './mmseg/_base_/default_runtime.py',
    './crossformer_backbone.py',
]

# Single-scale testing is mmseg's stock pipeline: resize into (2048, 512)
# keeping the aspect ratio, then whole-image inference at that size. The
# original rounded the size up to a multiple of 32 (its AlignResize); the
# CrossFormer backbone here accepts any size, so no alignment is needed.
#
# Multi-scale + flip testing (``tools/test.py --tta``) reproduces mmseg 0.x's
# MultiScaleFlipAug(img_scale=(2048, 512), img_ratios=...) used for the
# published MS numbers: the ratios scale the (2048, 512) target, whereas
# mmseg 1.x's stock ``tta_pipeline`` scales the raw image size instead.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale=(int(2048 * r), int(512 * r)), keep_ratio=True)
                for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ],
    ),
]
