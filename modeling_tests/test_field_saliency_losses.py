"""The peers' saliency losses (QD-DETR / CG-DETR) against float64 loops written from their definitions,
the negative query pairs through the model, and input dropout."""

import math

import pytest
import torch

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval
from transformers_rdmf.loss_rdmf import (
    negative_query_loss,
    saliency_margin_loss,
    saliency_rank_contrastive_loss,
)


def batch(seed: int, ties: bool = False):
    """Logits, targets on TVSum's label grid (k/5, k/12-style levels) and a mask with padded tails; one video
    of equal targets (nothing to rank)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 9, generator=generator) * 2
    levels = torch.randint(0, 6, (4, 9), generator=generator).float() / 5
    lengths = [9, 7, 5, 6]
    mask = torch.zeros(4, 9, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    levels[3, :6] = 0.4  # all equal
    if ties:
        levels[0, 2] = levels[0, 5] = levels[0].max()
    return logits, levels * mask, mask, lengths


def margin_reference(logits, targets, lengths, margin):
    losses = []
    for z, y, n in zip(logits.double().tolist(), targets.double().tolist(), lengths):
        z, y = z[:n], y[:n]
        if max(y) == min(y):
            continue
        pos, neg = y.index(max(y)), y.index(min(y))  # the first of each on ties
        losses.append(max(0.0, margin + z[neg] - z[pos]))
    return sum(losses) / len(losses)


def rank_contrastive_reference(logits, targets, lengths, levels, temperature):
    losses = []
    for z, y, n in zip(logits.double().tolist(), targets.double().tolist(), lengths):
        z, y = z[:n], y[:n]
        normaliser = math.log(sum(math.exp(v / temperature) for v in z))
        for k in range(1, levels + 1):
            positives = [j for j in range(n) if y[j] >= k / levels - 1e-6]
            if positives:
                losses.append(-sum(z[j] / temperature - normaliser for j in positives) / len(positives))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_margin_hinge_equals_a_float64_loop(seed, margin):
    logits, targets, mask, lengths = batch(seed, ties=True)
    got = saliency_margin_loss(logits, targets, mask, margin)
    assert got.item() == pytest.approx(margin_reference(logits, targets, lengths, margin), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("levels", "temperature"), [(12, 0.5), (5, 1.0)])
def test_rank_contrastive_equals_a_float64_loop(seed, levels, temperature):
    logits, targets, mask, lengths = batch(seed)
    got = saliency_rank_contrastive_loss(logits, targets, mask, levels, temperature)
    expected = rank_contrastive_reference(logits, targets, lengths, levels, temperature)
    assert got.item() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_negative_query_loss_equals_a_float64_loop():
    logits, _, mask, lengths = batch(0)
    pairs = torch.tensor([True, False, True, True])
    per_pair = [
        sum(-math.log(1 - 1 / (1 + math.exp(-z))) for z in z_row[:n])
        for z_row, n, keep in zip(logits.double().tolist(), lengths, pairs.tolist())
        if keep
    ]  # QD-DETR: the sum over a video's clips, the mean over the pairs
    got = negative_query_loss(logits, mask, pairs)
    assert got.item() == pytest.approx(sum(per_pair) / len(per_pair), rel=1e-6)


TINY = dict(
    video_feature_dim=8, text_feature_dim=6, hidden_size=16, num_attention_heads=2, num_moment_queries=4,
    decoder_ffn_dim=16, dropout=0.0,
)  # fmt: skip


def model_inputs(same_query: bool):
    generator = torch.Generator().manual_seed(0)
    video = torch.randn(3, 10, 8, generator=generator)
    text = torch.randn(1 if same_query else 3, 4, 6, generator=generator).expand(3, -1, -1).contiguous()
    labels = [
        {"spans": torch.tensor([[0.5, 0.2]]), "saliency": torch.rand(10, generator=generator)}
        for _ in range(3)
    ]
    return video, text, labels


def test_negative_pairs_run_the_model_with_the_previous_query_and_skip_identical_queries():
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(RDMFConfig(**TINY, saliency_negative_query_weight=1.0)).eval()
    video, text, labels = model_inputs(same_query=False)
    out = model(video_features=video, text_features=text, labels=labels)
    with torch.no_grad():
        rolled = model.rdmf(video, text.roll(1, dims=0)).saliency_logits
    expected = torch.nn.functional.softplus(rolled).sum(1).mean()  # every row a real pair, every clip valid
    torch.testing.assert_close(out.loss_dict["loss_negative_query"], expected, atol=1e-6, rtol=1e-5)
    plain = RDMFForMomentRetrieval(RDMFConfig(**TINY))
    plain.load_state_dict(model.state_dict())
    base = plain.eval()(video_features=video, text_features=text, labels=labels).loss
    torch.testing.assert_close(out.loss, base + expected, atol=1e-5, rtol=1e-5)
    # YouTube Highlights: one query word for the whole domain -> no negative pair at all
    video, text, labels = model_inputs(same_query=True)
    out = model(video_features=video, text_features=text, labels=labels)
    assert out.loss_dict["loss_negative_query"].item() == 0.0


def test_the_losses_reach_the_total_with_their_weights():
    torch.manual_seed(0)
    video, text, labels = model_inputs(same_query=False)
    config = RDMFConfig(**TINY, saliency_margin_loss_weight=0.5, saliency_rank_contrastive_weight=2.0)
    model = RDMFForMomentRetrieval(config).eval()
    plain = RDMFForMomentRetrieval(RDMFConfig(**TINY)).eval()
    plain.load_state_dict(model.state_dict())
    out = model(video_features=video, text_features=text, labels=labels)
    base = plain(video_features=video, text_features=text, labels=labels).loss
    terms = out.loss_dict
    expected = base + 0.5 * terms["loss_saliency_margin"] + 2.0 * terms["loss_saliency_rank_contrastive"]
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=1e-5)
    assert terms["loss_saliency_margin"] > 0 and terms["loss_saliency_rank_contrastive"] > 0


def test_input_dropout_replaces_dropout_on_the_projections_only():
    model = RDMFForMomentRetrieval(RDMFConfig(**{**TINY, "dropout": 0.1}, input_dropout=0.5))
    assert model.rdmf.dropout.p == 0.5
    assert all(layer.dropout.p == 0.1 for layer in model.decoder.layers)
    assert RDMFForMomentRetrieval(RDMFConfig(**{**TINY, "dropout": 0.1})).rdmf.dropout.p == 0.1
    with pytest.raises(ValueError, match="input_dropout"):
        RDMFConfig(**TINY, input_dropout=1.0)
