# CrossFormer detection recipe, 1x (12 epochs), as the original repo trained it:
# AdamW lr 1e-4, weight decay 1e-4, no gradient clipping, linear warm-up over
# 500 iterations from 0.001 x lr, lr x 0.1 at epochs 8 and 11,
# 2 images/GPU x 8 GPUs. `tools/train.py --auto-scale-lr` rescales the lr for
# another total batch size (base_batch_size below).

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001)
)

auto_scale_lr = dict(enable=False, base_batch_size=16)
