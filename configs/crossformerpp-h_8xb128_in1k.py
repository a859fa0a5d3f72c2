# CrossFormer++-H: 96.0M params, 21.8G FLOPs, 84.9 top-1 (ImageNet-1K, 224, published)
_base_ = ['./_base_/cls_crossformer_in1k.py']
model = dict(backbone=dict(arch='pp-huge', drop_path_rate=0.5), head=dict(in_channels=1024))
