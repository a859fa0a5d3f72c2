# UPerNet + CrossFormer-S, ADE20K 160k: 47.6 mIoU (MS 48.4), 62.3M params.
_base_ = './_base_/seg_upernet_crossformer_160k_ade20k.py'
