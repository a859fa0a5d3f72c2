# CrossFormer-S: 30.7M params, 4.9G FLOPs, 82.5 top-1 (ImageNet-1K, 224, published)
_base_ = ['./_base_/cls_crossformer_in1k.py']
model = dict(backbone=dict(arch='small', drop_path_rate=0.2), head=dict(in_channels=768))
