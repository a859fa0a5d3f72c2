# CrossFormer++-S: 23.3M params, 4.4G FLOPs, 83.2 top-1 (ImageNet-1K, 224, published)
_base_ = ['./_base_/cls_crossformer_in1k.py']
model = dict(backbone=dict(arch='pp-small', drop_path_rate=0.2), head=dict(in_channels=512))
