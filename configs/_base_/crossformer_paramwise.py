# Layer-wise optimizer keys of CrossFormer for the recipes whose Swin versions
# set them (Mask2Former): as Swin's norms and relative position bias table,
# CrossFormer's LayerNorms (patch / merge embeddings, blocks, CrossFormer++'s
# ACL `ex_ln`) and its dynamic position bias (`attn.pos`, the counterpart of
# Swin's bias table) get the backbone's learning-rate multiplier 0.1 and no
# weight decay. MMEngine takes the longest matching key, so every key names its
# block; the keys cover every arch (depths up to (6, 6, 18, 2)).
crossformer_max_depths = [6, 6, 18, 2]
crossformer_norm_multi = dict(lr_mult=0.1, decay_mult=0.0)
crossformer_custom_keys = {'backbone.patch_embed.norm': crossformer_norm_multi}
crossformer_custom_keys.update(
    {
        f'backbone.layers.{stage}.blocks.{block}.{name}': crossformer_norm_multi
        for stage, depth in enumerate(crossformer_max_depths)
        for block in range(depth)
        for name in ('norm', 'attn.pos', 'ex_ln')
    }
)
crossformer_custom_keys.update(
    {
        f'backbone.layers.{stage}.downsample.norm': crossformer_norm_multi
        for stage in range(len(crossformer_max_depths) - 1)
    }
)
# Mask2Former's full set (mmdet's and mmseg's Swin recipes): the backbone at
# lr x0.1, no weight decay on the queries and level embeddings. `_delete_`
# drops the Swin recipe's keys, which name Swin's parameters.
crossformer_mask2former_custom_keys = dict(
    _delete_=True,
    backbone=dict(lr_mult=0.1, decay_mult=1.0),
    query_embed=dict(lr_mult=1.0, decay_mult=0.0),
    query_feat=dict(lr_mult=1.0, decay_mult=0.0),
    level_embed=dict(lr_mult=1.0, decay_mult=0.0),
)
crossformer_mask2former_custom_keys.update(crossformer_custom_keys)
