"""Hungarian matcher against brute force, and the loss terms against hand-computed values."""

import itertools

import pytest
import torch

from transformers_rdmf import RDMFConfig
from transformers_rdmf.loss_rdmf import RDMFHungarianMatcher, RDMFLoss, saliency_loss
from transformers_rdmf.span_utils import generalized_temporal_iou


def brute_force_cost(cost: torch.Tensor) -> float:
    """Smallest total cost of a one-to-one assignment of all targets (columns) to distinct queries (rows)."""
    queries, targets = cost.shape
    return min(
        sum(float(cost[q, t]) for t, q in enumerate(chosen))
        for chosen in itertools.permutations(range(queries), targets)
    )


@pytest.mark.parametrize("seed", range(12))
def test_matcher_equals_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    queries = 2 + seed % 4
    num_targets = [int(torch.randint(0, queries + 1, (1,), generator=g)) for _ in range(3)]
    logits = torch.randn(3, queries, 2, generator=g)
    spans = torch.rand(3, queries, 2, generator=g) * torch.tensor([1.0, 0.5])
    targets = [
        torch.rand(n, 2, generator=g) * torch.tensor([1.0, 0.5]) + torch.tensor([0.0, 0.01])
        for n in num_targets
    ]
    matcher = RDMFHungarianMatcher(class_cost=4.0, span_cost=10.0, giou_cost=1.0)
    matches = matcher(logits, spans, targets)
    for cost, (rows, cols), target in zip(matcher.cost_matrices(logits, spans, targets), matches, targets):
        assert len(rows) == len(target) and len(set(rows.tolist())) == len(rows)
        assert sorted(cols.tolist()) == list(range(len(target)))
        if len(target):
            assert float(cost[rows, cols].sum()) == pytest.approx(brute_force_cost(cost), abs=1e-5)


def test_matcher_cost_is_class_plus_l1_plus_giou():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])
    spans = torch.tensor([[[0.5, 0.2], [0.3, 0.4]]])
    targets = [torch.tensor([[0.45, 0.3]])]
    cost = RDMFHungarianMatcher(4.0, 10.0, 1.0).cost_matrices(logits, spans, targets)[0]
    p0 = torch.softmax(torch.tensor([2.0, 0.0]), 0)[0]
    # query 0: (0.4, 0.6) vs target (0.3, 0.6): IoU 0.2/0.3, hull 0.3 = union -> GIoU = IoU
    expected = -4 * p0 + 10 * (0.05 + 0.1) - (0.2 / 0.3)
    assert float(cost[0, 0]) == pytest.approx(float(expected), abs=1e-6)


def test_generalized_iou_of_disjoint_spans_is_negative():
    giou = generalized_temporal_iou(torch.tensor([[0.0, 0.2]]), torch.tensor([[0.6, 1.0]]))
    assert float(giou) == pytest.approx(0 - (1.0 - 0.6) / 1.0)


def test_saliency_loss_is_the_mean_bce_over_valid_clips():
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, 5.0, 5.0]])
    targets = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])

    def bce(z, y):
        return -(
            y * torch.log(torch.sigmoid(torch.tensor(z)))
            + (1 - y) * torch.log(1 - torch.sigmoid(torch.tensor(z)))
        )

    expected = (bce(0.0, 1.0) + bce(2.0, 0.0) + bce(-1.0, 0.5) + bce(1.0, 0.0)) / 4
    assert float(saliency_loss(logits, targets, mask)) == pytest.approx(float(expected), rel=1e-6)


def test_set_loss_terms_on_a_perfect_and_a_wrong_prediction():
    config = RDMFConfig(
        video_feature_dim=4, text_feature_dim=4, hidden_size=8, num_attention_heads=2, span_loss_type="l1"
    )
    criterion = RDMFLoss(config)
    target = [torch.tensor([[0.5, 0.2]])]
    logits = torch.tensor([[[10.0, -10.0], [-10.0, 10.0]]])  # query 0 foreground, query 1 background
    spans = torch.tensor([[[0.5, 0.2], [0.1, 0.1]]])
    ious = torch.tensor([[1.0, 0.0]])
    terms = criterion.set_loss(logits, spans, ious, target)
    assert float(terms["loss_span"]) == pytest.approx(0.0, abs=1e-7)
    assert float(terms["loss_giou"]) == pytest.approx(0.0, abs=1e-6)
    assert float(terms["loss_iou"]) == pytest.approx(0.0, abs=1e-6)
    assert float(terms["loss_class"]) < 1e-6

    wrong = torch.tensor([[[0.6, 0.2], [0.1, 0.1]]])  # shifted by 0.1: IoU 0.1/0.3
    terms = criterion.set_loss(logits, wrong, torch.tensor([[0.5, 0.0]]), target)
    assert float(terms["loss_span"]) == pytest.approx(0.1, abs=1e-6)  # L1 over (center, width)
    assert float(terms["loss_giou"]) == pytest.approx(1 - 1 / 3, abs=1e-6)
    assert float(terms["loss_iou"]) == pytest.approx(abs(0.5 - 1 / 3), abs=1e-6)


def test_videos_without_windows_train_every_query_as_background():
    config = RDMFConfig(video_feature_dim=4, text_feature_dim=4, hidden_size=8, num_attention_heads=2)
    criterion = RDMFLoss(config)
    logits = torch.zeros(1, 3, 2)
    terms = criterion.set_loss(logits, torch.rand(1, 3, 2), torch.rand(1, 3), [torch.zeros(0, 2)])
    assert float(terms["loss_span"]) == 0 and float(terms["loss_iou"]) == 0
    assert float(terms["loss_class"]) == pytest.approx(float(torch.log(torch.tensor(2.0))), rel=1e-6)
