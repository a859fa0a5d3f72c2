# CrossFormer-T: 27.8M params, 2.9G FLOPs, 81.5 top-1 (ImageNet-1K, 224, published)
_base_ = ['./_base_/cls_crossformer_in1k.py']
model = dict(backbone=dict(arch='tiny', drop_path_rate=0.1), head=dict(in_channels=512))
