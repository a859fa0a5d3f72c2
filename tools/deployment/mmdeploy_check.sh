#!/usr/bin/env bash
# mmdeploy check of a CrossFormer RetinaNet on the toy shapes set: train a toy-width
# model (about 10 minutes on 2 CPU cores), convert it with mmdeploy's tools/deploy.py
# and configs/deploy/detection_onnxruntime_dynamic.py, and print the box AP of
# PyTorch (tools/test.py) and of ONNX Runtime (mmdeploy's tools/test.py).
#
#   bash tools/deployment/mmdeploy_check.sh MMDEPLOY_SRC [WORK_DIR]
#
# MMDEPLOY_SRC: a checkout of onedl-mmdeploy installed into the running Python
# (pip install --no-deps MMDEPLOY_SRC, plus aenum and multiprocess). PYTHON picks
# the interpreter (default: python). Evaluated at 256x256 (the toy images are
# 128x128, upscaled): a dynamic CrossFormer graph is right from 256 per side up.
set -euo pipefail
MMDEPLOY_SRC=${1:?usage: mmdeploy_check.sh MMDEPLOY_SRC [WORK_DIR]}
WORK=$(realpath -m "${2:-work_dirs/mmdeploy_check}")
PY=${PYTHON:-python}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$WORK" && cd "$WORK"
[ -f toy_coco/annotations/instances_val.json ] ||
    "$PY" "$REPO/tools/misc/make_toy_data.py" coco toy_coco
cat > retinanet_toy.py <<CFG
# Toy-width CrossFormer RetinaNet on the toy shapes set (written by mmdeploy_check.sh).
_base_ = ['$REPO/configs/retinanet_crossformer_s_fpn_1x_coco.py']
data_root = '$WORK/toy_coco/'
metainfo = dict(classes=('square', 'circle', 'triangle'))
width = 64
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8)),
        drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    bbox_head=dict(in_channels=width, feat_channels=width, stacked_convs=2, num_classes=3),
    test_cfg=dict(nms_pre=500, max_per_img=100))
train_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True), dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[5], gamma=0.1)]
optim_wrapper = dict(optimizer=dict(lr=0.001), clip_grad=dict(max_norm=10, norm_type=2))
randomness = dict(seed=0)
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
CFG
CKPT=train/epoch_6.pth
[ -f "$CKPT" ] || "$PY" "$REPO/tools/train.py" retinanet_toy.py --work-dir train
DEPLOY_CFG=${DEPLOY_CFG:-$REPO/configs/deploy/detection_onnxruntime_dynamic.py}
"$PY" "$MMDEPLOY_SRC/tools/deploy.py" "$DEPLOY_CFG" retinanet_toy.py "$CKPT" \
    toy_coco/val/000001.png --work-dir onnx --device cpu
"$PY" "$REPO/tools/test.py" retinanet_toy.py "$CKPT" --work-dir test_pytorch | tee pytorch.log
"$PY" "$MMDEPLOY_SRC/tools/test.py" "$DEPLOY_CFG" retinanet_toy.py --model onnx/end2end.onnx \
    --device cpu --work-dir test_onnxruntime | tee onnxruntime.log
echo "PyTorch:      $(grep -o 'bbox_mAP_copypaste: .*' pytorch.log | tail -1)"
echo "ONNX Runtime: $(grep -o 'bbox_mAP_copypaste: .*' onnxruntime.log | tail -1)"
