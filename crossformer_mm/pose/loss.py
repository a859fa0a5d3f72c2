# Re-implements the losses (lib/core/loss.py) of HigherHRNet (Cheng et al., CVPR 2020,
# https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation, Copyright (c) Microsoft, MIT License).
"""Losses of HigherHRNet: masked multi-resolution heatmap MSE and the
associative-embedding pull/push loss of the original ``lib/core/loss.py``."""

from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class MultiResolutionHeatmapLoss(nn.Module):
    """Masked heatmap MSE at every output resolution.

    Per resolution r: ``factor_r * mean_{b,k,h,w}((pred - gt)^2 * mask)``,
    i.e. the original per-image mean over (k, h, w) averaged over the batch.

    Args:
        loss_factors (Sequence[float]): One factor per resolution.
            Defaults to (1.0, 1.0).
    """

    def __init__(self, loss_factors: Sequence[float] = (1.0, 1.0)) -> None:
        super().__init__()
        self.loss_factors = tuple(loss_factors)

    def forward(
        self, preds: Sequence[Tensor], targets: Sequence[Tensor], masks: Sequence[Tensor]
    ) -> List[Tensor]:
        """
        Args:
            preds (Sequence[Tensor]): per resolution (B, K, H_r, W_r).
            targets (Sequence[Tensor]): same shapes as ``preds``.
            masks (Sequence[Tensor]): per resolution (B, 1, H_r, W_r) or
                (B, H_r, W_r); 1 = supervised pixel.

        Returns:
            List[Tensor]: one scalar loss per resolution.
        """
        if not len(preds) == len(targets) == len(masks) == len(self.loss_factors):
            raise ValueError(
                f'got {len(preds)} predictions, {len(targets)} targets and '
                f'{len(masks)} masks for {len(self.loss_factors)} loss '
                'factors; they must all match'
            )
        losses = []
        for pred, target, mask, factor in zip(preds, targets, masks, self.loss_factors):
            if pred.shape != target.shape:
                raise ValueError(
                    f'prediction {tuple(pred.shape)} and target {tuple(target.shape)} shapes differ'
                )
            mask = mask.to(pred.dtype).reshape(pred.shape[0], 1, *pred.shape[2:])
            losses.append(((pred - target) ** 2 * mask).mean() * factor)
        return losses


@MODELS.register_module()
class AssociativeEmbeddingPullPushLoss(nn.Module):
    """Associative-embedding loss of HigherHRNet (``AELoss`` with 'exp').

    Per image, over the N people with at least one labelled joint (mean tag
    ``m_n`` of their joint tags ``t_nk``):

        - pull = mean_n mean_k ||t_nk - m_n||^2 / L  (mean over tag dims)
        - push = (sum_{i,j} exp(-||m_i - m_j||^2) - N) / (N (N - 1)) * 0.5

    N = 0 gives 0 for both, N = 1 a push of 0. Both are multiplied by their
    factor and averaged over the batch. (The original has L = 1; for L > 1 the
    squared distance sums over tag dimensions.)

    Args:
        pull_loss_factor (float): Defaults to 1e-3.
        push_loss_factor (float): Defaults to 1e-3.
    """

    def __init__(self, pull_loss_factor: float = 1e-3, push_loss_factor: float = 1e-3) -> None:
        super().__init__()
        self.pull_loss_factor = pull_loss_factor
        self.push_loss_factor = push_loss_factor

    @staticmethod
    def _per_image(tags: Tensor, keypoint_indices: Tensor) -> Tuple:
        """(pull, push) of one image: tags (L*K, H, W) laid out as (L, K),
        keypoint_indices (N, K, 2) of ``[y * W + x, valid]``."""
        num_keypoints = keypoint_indices.shape[1]
        tag_dim = tags.shape[0] // num_keypoints
        flat = tags.reshape(tag_dim, num_keypoints, -1)
        index = keypoint_indices[..., 0].long().t()  # (K, N)
        valid = keypoint_indices[..., 1] > 0  # (N, K)
        joint_tags = torch.gather(flat, 2, index[None].expand(tag_dim, -1, -1)).permute(2, 1, 0)
        people = valid.any(dim=1)
        joint_tags, valid = joint_tags[people], valid[people]  # (N, K, L)
        num_people = joint_tags.shape[0]
        zero = tags.sum() * 0
        if num_people == 0:
            return zero, zero
        weights = valid.to(tags.dtype)[..., None]
        counts = weights.sum(dim=1)  # (N, 1)
        means = (joint_tags * weights).sum(dim=1) / counts  # (N, L)
        pull = (
            ((joint_tags - means[:, None]) ** 2 * weights).sum(dim=(1, 2))
            / (counts[:, 0] * tag_dim)
        ).mean()
        if num_people == 1:
            return pull, zero
        sq_dist = ((means[:, None] - means[None]) ** 2).sum(dim=2)
        push = (torch.exp(-sq_dist).sum() - num_people) / ((num_people - 1) * num_people) * 0.5
        return pull, push

    def forward(self, tags: Tensor, keypoint_indices: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """
        Args:
            tags (Tensor): (B, L*K, H, W) tag maps, channel = l * K + k.
            keypoint_indices (Sequence[Tensor]): per image (N_b, K, 2).

        Returns:
            tuple: batch-mean pull loss and push loss, factors applied.
        """
        if tags.shape[0] != len(keypoint_indices):
            raise ValueError(
                f'{tags.shape[0]} tag maps but {len(keypoint_indices)} keypoint index sets'
            )
        pulls, pushes = zip(
            *(self._per_image(t, idx.to(tags.device)) for t, idx in zip(tags, keypoint_indices))
        )
        pull = torch.stack(pulls).mean() * self.pull_loss_factor
        push = torch.stack(pushes).mean() * self.push_loss_factor
        return pull, push
