# HigherHRNet schedule (mmpose 0.x recipe): Adam without weight decay,
# lr 1.5e-3 for 8 GPUs x 24 images with a 500-iteration linear warm-up,
# 300 epochs, x0.1 at epochs 200 and 260; on top of mmpose's default runtime.
_base_ = ['mmpose::_base_/default_runtime.py']

train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=50)

optim_wrapper = dict(optimizer=dict(type='Adam', lr=1.5e-3))

param_scheduler = [
    dict(type='LinearLR', begin=0, end=500, start_factor=0.001, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=300, milestones=[200, 260], gamma=0.1, by_epoch=True),
]

# `tools/train.py --auto-scale-lr` scales lr by (GPUs x batch_size) / 192.
auto_scale_lr = dict(base_batch_size=192)

# save_best='auto' keeps the best of the metric's first value: the keypoint AP
# ('coco/AP' or 'crowdpose/AP', whichever dataset the config evaluates).
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=50, save_best='auto', rule='greater')
)
