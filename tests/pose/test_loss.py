"""HigherHRNet losses against hand-computed values."""

import math

import pytest
import torch

from crossformer_mm.pose.loss import AssociativeEmbeddingPullPushLoss, MultiResolutionHeatmapLoss


def tag_maps(values, num_keypoints=2, size=3):
    """(1, K, size, size) tag maps; ``values`` maps (k, flat index) -> tag."""
    tags = torch.zeros(1, num_keypoints, size * size)
    for (k, index), value in values.items():
        tags[0, k, index] = value
    return tags.view(1, num_keypoints, size, size)


def indices(rows):
    """(N, K, 2) keypoint indices from per-person lists of (index, valid)."""
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), -1, 2)


def test_pull_push_two_people():
    # person 0: joints with tags 1 and 3 (mean 2); person 1: one joint, 1
    tags = tag_maps({(0, 4): 1.0, (1, 7): 3.0, (0, 2): 1.0})
    idx = indices([[[4, 1], [7, 1]], [[2, 1], [0, 0]]])
    pull, push = AssociativeEmbeddingPullPushLoss(1.0, 1.0)(tags, [idx])
    # pull: mean over people of mean squared distance: (1 + 0) / 2
    assert pull.item() == pytest.approx(0.5, rel=1e-6)
    # push: (sum_ij exp(-(m_i - m_j)^2) - N) / (N (N - 1)) * 0.5
    #     = (2 + 2 exp(-1) - 2) / 2 * 0.5
    assert push.item() == pytest.approx(0.5 * math.exp(-1), rel=1e-6)


def test_pull_push_factors_and_batch_mean():
    tags = torch.cat(
        [
            tag_maps({(0, 4): 1.0, (1, 7): 3.0, (0, 2): 1.0}),
            tag_maps({(0, 0): 0.5, (1, 1): 0.5}),
        ]
    )
    idx = [
        indices([[[4, 1], [7, 1]], [[2, 1], [0, 0]]]),
        indices([[[0, 1], [1, 1]]]),  # one person, all tags equal
    ]
    pull, push = AssociativeEmbeddingPullPushLoss()(tags, idx)
    # image means: pull (0.5 + 0) / 2, push (0.5 e^-1 + 0) / 2; factors 1e-3
    assert pull.item() == pytest.approx(0.25e-3, rel=1e-6)
    assert push.item() == pytest.approx(0.25e-3 * math.exp(-1), rel=1e-6)


def test_three_people_push_matches_formula():
    means = [0.0, 0.5, 2.0]
    tags = tag_maps({(0, i): m for i, m in enumerate(means)}, size=2)
    idx = indices([[[i, 1], [0, 0]] for i in range(3)])
    pull, push = AssociativeEmbeddingPullPushLoss(1.0, 1.0)(tags, [idx])
    pairs = sum(math.exp(-((a - b) ** 2)) for a in means for b in means)
    assert pull.item() == 0
    assert push.item() == pytest.approx((pairs - 3) / 6 * 0.5, rel=1e-6)


@pytest.mark.parametrize('rows', [[], [[[0, 0], [5, 0]], [[3, 0], [1, 0]]]])
def test_no_labelled_people_gives_zero(rows):
    tags = tag_maps({(0, 3): 2.0, (1, 5): -2.0})
    idx = indices(rows) if rows else torch.zeros((0, 2, 2), dtype=torch.int64)
    tags.requires_grad_(True)
    pull, push = AssociativeEmbeddingPullPushLoss(1.0, 1.0)(tags, [idx])
    assert pull.item() == 0 and push.item() == 0
    (pull + push).backward()  # still part of the graph
    assert tags.grad is not None and tags.grad.abs().sum() == 0


def test_one_person_has_no_push():
    tags = tag_maps({(0, 0): 1.0, (1, 8): 2.0})
    idx = indices([[[0, 1], [8, 1]]])
    pull, push = AssociativeEmbeddingPullPushLoss(1.0, 1.0)(tags, [idx])
    assert pull.item() == pytest.approx(0.25)  # ((1-1.5)^2 + (2-1.5)^2) / 2
    assert push.item() == 0


def test_pull_gradient_pulls_tags_together():
    tags = tag_maps({(0, 0): 1.0, (1, 8): 2.0}).requires_grad_(True)
    pull, _ = AssociativeEmbeddingPullPushLoss(1.0, 1.0)(tags, [indices([[[0, 1], [8, 1]]])])
    pull.backward()
    grad = tags.grad.view(2, 9)
    # d/dt1 of ((t1 - m)^2 + (t2 - m)^2) / 2 = (t1 - m) = -0.5
    assert grad[0, 0].item() == pytest.approx(-0.5)
    assert grad[1, 8].item() == pytest.approx(0.5)


def test_tag_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match='tag maps'):
        AssociativeEmbeddingPullPushLoss()(torch.zeros(2, 2, 3, 3), [])


def test_masked_heatmap_mse_per_resolution():
    pred = [torch.ones(1, 2, 2, 2), torch.full((1, 2, 4, 4), 2.0)]
    target = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 4, 4)]
    mask0 = torch.tensor([[[1, 0], [0, 0]]], dtype=torch.bool)  # (1, 2, 2)
    mask1 = torch.ones(1, 1, 4, 4)
    losses = MultiResolutionHeatmapLoss((1.0, 0.5))(pred, target, [mask0, mask1])
    # output 0: 1 of 4 pixels supervised, error 1 -> mean 2 / 8
    assert losses[0].item() == pytest.approx(0.25)
    # output 1: error 4 everywhere, factor 0.5
    assert losses[1].item() == pytest.approx(2.0)


def test_heatmap_loss_checks_inputs():
    loss = MultiResolutionHeatmapLoss((1.0, 1.0))
    with pytest.raises(ValueError, match='must all match'):
        loss([torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 2, 2)], [torch.ones(1, 2, 2)])
    with pytest.raises(ValueError, match='shapes differ'):
        loss(
            [torch.zeros(1, 1, 2, 2)] * 2, [torch.zeros(1, 1, 3, 3)] * 2, [torch.ones(1, 2, 2)] * 2
        )
