# CrossFormer++-L: 92.0M params, 16.6G FLOPs, 84.7 top-1 (ImageNet-1K, 224, published)
_base_ = ['./_base_/cls_crossformer_in1k.py']
model = dict(backbone=dict(arch='pp-large', drop_path_rate=0.5), head=dict(in_channels=1024))
