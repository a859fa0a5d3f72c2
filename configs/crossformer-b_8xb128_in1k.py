# CrossFormer-B: 52.0M params, 9.2G FLOPs, 83.4 top-1 (ImageNet-1K, 224, published)
_base_ = ['./_base_/cls_crossformer_in1k.py']
model = dict(backbone=dict(arch='base', drop_path_rate=0.3), head=dict(in_channels=768))
