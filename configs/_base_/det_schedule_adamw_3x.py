# CrossFormer detection recipe, 3x (36 epochs): the 1x recipe with the lr
# steps of mmdet's 3x schedules (epochs 27 and 33). Pair it with the
# multi-scale training data of det_coco_instance_ms-crop.py.
_base_ = './det_schedule_adamw_1x.py'

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1
    ),
]
