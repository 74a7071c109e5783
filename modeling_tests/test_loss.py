"""Hungarian matcher against brute force, and the loss terms against hand-computed values."""

import itertools
import math

import pytest
import torch

from transformers_rdmf import RDMFConfig
from transformers_rdmf.loss_rdmf import RDMFHungarianMatcher, RDMFLoss, saliency_loss, saliency_rank_loss
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


def pairwise_rank_reference(logits, targets, mask) -> float:
    """RankNet loss of ``saliency_rank_loss``, as a float64 loop over videos and clip pairs."""
    losses = []
    for z, y, m in zip(logits.double().tolist(), targets.double().tolist(), mask.tolist()):
        clips = [i for i, valid in enumerate(m) if valid]
        pairs = [(i, j) for i in clips for j in clips if y[i] > y[j]]
        if not pairs:
            continue
        weighted = sum((y[i] - y[j]) * math.log1p(math.exp(-(z[i] - z[j]))) for i, j in pairs)
        losses.append(weighted / sum(y[i] - y[j] for i, j in pairs))
    return sum(losses) / len(losses)


def listwise_rank_reference(logits, targets, mask, temperature) -> float:
    """ListNet loss of ``saliency_rank_loss`` (cross-entropy minus the target entropy), float64 loop."""
    losses = []
    for z, y, m in zip(logits.double().tolist(), targets.double().tolist(), mask.tolist()):
        clips = [i for i, valid in enumerate(m) if valid]
        if len({y[i] for i in clips}) < 2:
            continue
        target_norm = sum(math.exp(y[i] / temperature) for i in clips)
        pred_norm = sum(math.exp(z[i]) for i in clips)
        loss = 0.0
        for i in clips:
            p = math.exp(y[i] / temperature) / target_norm
            loss += p * (math.log(p) - (z[i] - math.log(pred_norm)))
        losses.append(loss)
    return sum(losses) / len(losses)


@pytest.mark.parametrize("seed", range(4))
def test_rank_losses_equal_float64_loop_references(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 7, generator=g) * 2
    targets = torch.randint(0, 5, (4, 7), generator=g).float() / 4
    mask = torch.ones(4, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 3:] = 0
    targets[3] = 0.5  # nothing to rank: left out of the mean
    pairwise = saliency_rank_loss(logits, targets, mask, "pairwise")
    assert float(pairwise) == pytest.approx(pairwise_rank_reference(logits, targets, mask), rel=1e-5)
    listwise = saliency_rank_loss(logits, targets, mask, "listwise", temperature=0.25)
    expected = listwise_rank_reference(logits, targets, mask, 0.25)
    assert float(listwise) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind", ["pairwise", "listwise"])
def test_rank_losses_ignore_a_per_video_shift_and_padding(kind):
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 6, generator=g), torch.rand(2, 6, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    loss = saliency_rank_loss(logits, targets, mask, kind)
    shifted = logits + torch.tensor([[3.0], [-7.0]])
    garbage = torch.where(mask.bool(), logits, torch.full_like(logits, 1e4))
    assert float(saliency_rank_loss(shifted, targets, mask, kind)) == pytest.approx(float(loss), rel=1e-5)
    assert float(saliency_rank_loss(garbage, targets, mask, kind)) == pytest.approx(float(loss), rel=1e-6)
    # the right order scores lower than the reversed one
    assert saliency_rank_loss(targets * 10, targets, mask, kind) < saliency_rank_loss(
        -targets * 10, targets, mask, kind
    )


def test_rank_loss_enters_the_total_only_with_a_weight():
    base = dict(video_feature_dim=4, text_feature_dim=4, hidden_size=8, num_attention_heads=2)
    logits = torch.tensor([[0.3, -0.2, 1.0, 0.0]])
    mask = torch.ones(1, 4)
    labels = [{"spans": torch.zeros(0, 2), "saliency": torch.tensor([0.0, 1.0, 0.5, 0.25])}]
    layers = [(torch.zeros(1, 3, 2), torch.rand(1, 3, 2), None)]
    plain, terms = RDMFLoss(RDMFConfig(**base))(layers, logits, mask, labels)
    assert "loss_saliency_rank" not in terms
    weighted, terms = RDMFLoss(RDMFConfig(**base, saliency_rank_loss_weight=2.0))(
        layers, logits, mask, labels
    )
    expected = saliency_rank_loss(logits, labels[0]["saliency"][None], mask)
    # the loss builds its own target batch: float32 rounding at most
    assert float(terms["loss_saliency_rank"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(weighted) == pytest.approx(float(plain) + 2 * float(expected), rel=1e-6)
