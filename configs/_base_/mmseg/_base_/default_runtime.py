# Copied unchanged from mmsegmentation 1.2.2, inherited by path instead of as
# 'mmseg::_base_/default_runtime.py'
# (onedl-mmengine 0.10.12 resolves 'mmseg::' through a distribution 'mmsegmentation',
# which onedl-mmsegmentation is not). tests/test_stacks.py compares it with the installed mmseg's.
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False

tta_model = dict(type='SegTTAModel')
