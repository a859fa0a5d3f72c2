# Re-implements the higher-resolution head (lib/models/pose_higher_hrnet.py) and its test-time
# aggregation (lib/core/inference.py) of HigherHRNet (Cheng et al., CVPR 2020,
# https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation, Copyright (c) Microsoft, MIT License).
"""The higher-resolution associative-embedding head of HigherHRNet."""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS
from mmengine.structures import InstanceData, PixelData
from mmpose.models.backbones.resnet import BasicBlock
from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import KEYPOINT_CODECS
from mmpose.utils.typing import ConfigType, Features, OptConfigType, OptSampleList, Predictions
from torch import Tensor

# ConvTranspose2d padding / output padding that double the size exactly.
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


def keypoint_boxes(keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(P, 4) float32 x1, y1, x2, y2 boxes around each person's found joints
    (score > 0; all zeros for a person without any).

    Bottom-up people have no detector box; this one lets mmpose carry the
    person score: ``BottomupPoseEstimator`` maps ``bboxes`` to the image like
    the keypoints, and ``MMPoseInferencer`` reports ``bbox`` and
    ``bbox_score`` only for instances that have boxes.
    """
    boxes = np.zeros((len(keypoints), 4), dtype=np.float32)
    for i, (kpts, kpt_scores) in enumerate(zip(keypoints, scores)):
        found = kpts[kpt_scores > 0]
        if len(found):
            boxes[i] = (*found.min(0), *found.max(0))
    return boxes


@MODELS.register_module()
class AEHigherResolutionHead(BaseHead):
    """HigherHRNet head: heatmaps + tags at 1/4, deconvolved heatmaps at 1/2.

    ``final_layers.0`` (1x1 conv) predicts K heatmaps and K*L tags from the
    1/4 feature map; each deconv stage ``deconv_layers.i`` (ConvTranspose2d
    x2 + BN + ReLU, then ``num_basic_blocks`` BasicBlocks) upsamples
    ``cat(features, previous output)`` and ``final_layers.i+1`` predicts K
    heatmaps. The module names match the original checkpoints and mmpose 0.x,
    so their weights load as they are. Tags are only predicted (and trained)
    at the first output, as in every released HigherHRNet.

    Shapes (W32, 512 input, K=17, L=1): features (B, 32, 128, 128) ->
    [(B, 34, 128, 128), (B, 17, 256, 256)].

    Args:
        in_channels (int): Channels of the 1/4 feature map (feats[0]).
        num_keypoints (int): K. Defaults to 17.
        tag_dim (int): L, tag dimensions per keypoint. Defaults to 1.
        deconv_out_channels (Sequence[int]): Channels of every deconv stage;
            its length is the number of stages. Defaults to (32, ).
        deconv_kernel_sizes (Sequence[int]): 2, 3 or 4 per stage.
            Defaults to (4, ).
        num_basic_blocks (int): BasicBlocks after each deconv. Defaults to 4.
        cat_output (Sequence[bool]): Per stage, whether the previous output
            is concatenated to its input. Defaults to (True, ).
        final_conv_kernel (int): 1 or 3. Defaults to 1.
        norm_cfg (dict): Norm layers of the deconv stages.
        heatmap_loss (dict): Loss over the heatmaps of every output.
        tag_loss (dict): Associative-embedding loss on the output-0 tags.
        decoder (dict, optional): The codec used to group predictions.
        init_cfg (dict | list, optional): Defaults to the original's
            N(0, 0.001) convolutions and unit BN.
    """

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int = 17,
        tag_dim: int = 1,
        deconv_out_channels: Sequence[int] = (32,),
        deconv_kernel_sizes: Sequence[int] = (4,),
        num_basic_blocks: int = 4,
        cat_output: Sequence[bool] = (True,),
        final_conv_kernel: int = 1,
        norm_cfg: ConfigType = dict(type='BN'),
        heatmap_loss: ConfigType = dict(type='MultiResolutionHeatmapLoss', loss_factors=(1.0, 1.0)),
        tag_loss: ConfigType = dict(type='AssociativeEmbeddingPullPushLoss'),
        decoder: OptConfigType = None,
        init_cfg: OptConfigType = None,
    ) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Normal', layer=['Conv2d', 'ConvTranspose2d'], std=0.001, bias=0),
                dict(type='Constant', layer='BatchNorm2d', val=1, bias=0),
            ]
        super().__init__(init_cfg=init_cfg)
        if not len(deconv_out_channels) == len(deconv_kernel_sizes) == len(cat_output):
            raise ValueError(
                'deconv_out_channels, deconv_kernel_sizes and cat_output '
                'need one entry per deconv stage, got '
                f'{len(deconv_out_channels)}, {len(deconv_kernel_sizes)} and '
                f'{len(cat_output)}'
            )
        if final_conv_kernel not in (1, 3):
            raise ValueError(f'final_conv_kernel must be 1 or 3, got {final_conv_kernel}')
        self.in_channels = in_channels
        self.num_keypoints = num_keypoints
        self.tag_dim = tag_dim
        self.cat_output = tuple(cat_output)

        out_channels = [num_keypoints * (1 + tag_dim)]
        out_channels += [num_keypoints] * len(deconv_out_channels)
        feat_channels = [in_channels, *deconv_out_channels]
        self.final_layers = nn.ModuleList(
            [
                nn.Conv2d(
                    c_in, c_out, kernel_size=final_conv_kernel, padding=final_conv_kernel // 2
                )
                for c_in, c_out in zip(feat_channels, out_channels)
            ]
        )
        self.deconv_layers = nn.ModuleList()
        for i, (channels, kernel) in enumerate(zip(deconv_out_channels, deconv_kernel_sizes)):
            if kernel not in _DECONV_PADDING:
                raise ValueError(f'deconv kernel size must be 2, 3 or 4, got {kernel}')
            padding, output_padding = _DECONV_PADDING[kernel]
            c_in = feat_channels[i] + (out_channels[i] if cat_output[i] else 0)
            layers = [
                nn.Sequential(
                    nn.ConvTranspose2d(
                        c_in,
                        channels,
                        kernel,
                        stride=2,
                        padding=padding,
                        output_padding=output_padding,
                        bias=False,
                    ),
                    build_norm_layer(norm_cfg, channels)[1],
                    nn.ReLU(inplace=True),
                )
            ]
            layers += [
                nn.Sequential(BasicBlock(channels, channels, norm_cfg=norm_cfg))
                for _ in range(num_basic_blocks)
            ]
            self.deconv_layers.append(nn.Sequential(*layers))

        self.heatmap_loss = MODELS.build(heatmap_loss)
        self.tag_loss = MODELS.build(tag_loss)
        self.decoder = KEYPOINT_CODECS.build(decoder) if decoder else None

    def forward(self, feats: Tuple[Tensor]) -> List[Tensor]:
        """
        Args:
            feats (Tuple[Tensor]): feats[0] is the (B, C, H/4, W/4) map.

        Returns:
            List[Tensor]: (B, K*(1+L), H/4, W/4), then (B, K, H/2, W/2) per
            deconv stage.
        """
        x = feats[0]
        y = self.final_layers[0](x)
        outputs = [y]
        for i, deconv in enumerate(self.deconv_layers):
            if self.cat_output[i]:
                x = torch.cat((x, y), 1)
            x = deconv(x)
            y = self.final_layers[i + 1](x)
            outputs.append(y)
        return outputs

    def loss(
        self, feats: Tuple[Tensor], batch_data_samples: OptSampleList, train_cfg: ConfigType = {}
    ) -> Dict[str, Tensor]:
        """Heatmap losses of every output and pull/push of the tags.

        The data samples need ``gt_fields.heatmaps`` / ``heatmap_mask`` (one
        level per output) and ``gt_instance_labels.keypoint_indices``, as
        made by ``GenerateTarget`` with
        :class:`HigherResolutionAssociativeEmbedding` followed by
        ``BottomupGetHeatmapMask`` and ``PackPoseInputs``.
        """
        outputs = self.forward(feats)
        num_outputs = len(outputs)
        fields = [d.gt_fields for d in batch_data_samples]
        if not all(
            'heatmaps' in f and 'heatmap_mask' in f and len(f.heatmaps) == num_outputs
            for f in fields
        ):
            raise ValueError(
                f'{type(self).__name__}.loss needs {num_outputs} levels of '
                'gt_fields.heatmaps and heatmap_mask: the train pipeline must '
                'run GenerateTarget(encoder=HigherResolutionAssociative'
                'Embedding with one stride per output) and '
                'BottomupGetHeatmapMask before PackPoseInputs'
            )
        gt_heatmaps = [torch.stack([f.heatmaps[i] for f in fields]) for i in range(num_outputs)]
        gt_masks = [torch.stack([f.heatmap_mask[i] for f in fields]) for i in range(num_outputs)]
        k = self.num_keypoints
        heatmap_losses = self.heatmap_loss([out[:, :k] for out in outputs], gt_heatmaps, gt_masks)
        keypoint_indices = [d.gt_instance_labels.keypoint_indices for d in batch_data_samples]
        loss_pull, loss_push = self.tag_loss(outputs[0][:, k:], keypoint_indices)
        losses = {f'loss_heatmap{i}': loss for i, loss in enumerate(heatmap_losses)}
        losses.update(loss_pull=loss_pull, loss_push=loss_push)
        return losses

    def _merge_outputs(
        self, outputs: List[Tensor], flip_indices: Optional[List[int]] = None
    ) -> Tuple[Tensor, Tensor]:
        """Average the heatmaps of all outputs at the last (1/2) resolution
        and take the output-0 tags there; for a flipped input, flip back and
        swap the joints.

        Returns:
            tuple: heatmaps (B, K, h, w) and tags (B, L, K, h, w).
        """
        size = outputs[-1].shape[2:]
        k = self.num_keypoints
        heatmaps = 0
        for i, output in enumerate(outputs):
            if i < len(outputs) - 1:
                output = F.interpolate(output, size=size, mode='bilinear', align_corners=False)
            if flip_indices is not None:
                output = torch.flip(output, [3])
            output_heatmaps = output[:, :k]
            if flip_indices is not None:
                output_heatmaps = output_heatmaps[:, flip_indices]
            heatmaps = heatmaps + output_heatmaps
            if i == 0:
                tags = output[:, k:].reshape(output.shape[0], self.tag_dim, k, *size)
                if flip_indices is not None:
                    tags = tags[:, :, flip_indices]
        return heatmaps / len(outputs), tags

    def predict(
        self, feats: Features, batch_data_samples: OptSampleList, test_cfg: ConfigType = {}
    ) -> Predictions:
        """Aggregate, project to the input size and group, as the original.

        Per scale: heatmaps averaged over outputs at 1/2, with flip test also
        over the flipped image; projected (bilinear) to the main-scale input
        size; averaged over scales. Tags come from the main scale only and
        the flipped tags are stacked as extra tag dimensions.

        Args:
            feats: backbone features, a pair (original, flipped) of them with
                ``flip_test``, and a list of those over the scales (main
                scale first, then ``metainfo['aug_scales']``) with
                ``multiscale_test``.
            batch_data_samples (list): need ``img_shape`` (the main-scale
                input size), ``flip_indices`` and ``aug_scales`` as used.
            test_cfg (dict): ``flip_test``, ``multiscale_test``,
                ``output_heatmaps``.

        Returns:
            list[InstanceData] with keypoints (P, K, 2) in input pixels,
            keypoint_scores (P, K), bboxes (P, 4) (the extent of the found
            joints, see :func:`keypoint_boxes`) and bbox_scores (P,) (the
            person scores); with ``output_heatmaps`` also a list of PixelData
            heatmaps.
        """
        if self.decoder is None:
            raise RuntimeError(
                f'{type(self).__name__} needs a decoder (the codec config) to predict'
            )
        flip_test = test_cfg.get('flip_test', False)
        metainfo = batch_data_samples[0].metainfo
        img_shape = tuple(metainfo['img_shape'][:2])
        if any(tuple(d.metainfo['img_shape'][:2]) != img_shape for d in batch_data_samples):
            raise ValueError(
                'all images of a test batch need the same input '
                'size; use batch_size=1 for bottom-up testing'
            )
        if test_cfg.get('multiscale_test', False):
            scales = [1.0, *metainfo['aug_scales']]
            scale_feats = feats
        else:
            scales, scale_feats = [1.0], [feats]
        if len(scales) != len(scale_feats):
            raise ValueError(
                f'got features of {len(scale_feats)} scales for the scale factors {scales}'
            )
        flip_indices = metainfo.get('flip_indices') if flip_test else None
        if flip_test and flip_indices is None:
            raise ValueError(
                'flip_test needs metainfo["flip_indices"] (from '
                'the dataset meta, kept by PackPoseInputs)'
            )

        def project(maps: Tensor) -> Tensor:
            return F.interpolate(maps, size=img_shape, mode='bilinear', align_corners=False)

        scale_heatmaps = {}
        for index, (scale, _feats) in enumerate(zip(scales, scale_feats)):
            views = (
                [(_feats[0], None), (_feats[1], flip_indices)] if flip_test else [(_feats, None)]
            )
            heatmaps, view_tags = [], []
            for view_feats, view_flip in views:
                merged_heatmaps, merged_tags = self._merge_outputs(
                    self.forward(view_feats), view_flip
                )
                heatmaps.append(project(merged_heatmaps))
                if index == 0:
                    b, levels, k, h, w = merged_tags.shape
                    view_tags.append(
                        project(merged_tags.reshape(b, levels * k, h, w))
                        .reshape(b, levels, k, *img_shape)
                        .permute(0, 2, 3, 4, 1)
                    )
            scale_heatmaps[scale] = (heatmaps[0] + heatmaps[1]) / 2.0 if flip_test else heatmaps[0]
            if index == 0:
                tags = torch.cat(view_tags, dim=4)

        ordered = sorted(scale_heatmaps, reverse=True)
        batch_heatmaps = scale_heatmaps[ordered[0]]
        for scale in ordered[1:]:
            batch_heatmaps = batch_heatmaps + scale_heatmaps[scale]
        batch_heatmaps = batch_heatmaps / float(len(ordered))

        keypoints, scores, person_scores = self.decoder.batch_decode(batch_heatmaps, tags)
        preds = [
            InstanceData(
                keypoints=kpts,
                keypoint_scores=kpt_scores,
                bboxes=keypoint_boxes(kpts, kpt_scores),
                bbox_scores=pscore,
            )
            for kpts, kpt_scores, pscore in zip(keypoints, scores, person_scores)
        ]
        if test_cfg.get('output_heatmaps', False):
            return preds, [PixelData(heatmaps=hm) for hm in batch_heatmaps.detach()]
        return preds
