# CrossFormer-L: 92.0M params, 16.1G FLOPs, 84.0 top-1 (ImageNet-1K, 224, published)
_base_ = ['./_base_/cls_crossformer_in1k.py']
model = dict(backbone=dict(arch='large', drop_path_rate=0.5), head=dict(in_channels=1024))
