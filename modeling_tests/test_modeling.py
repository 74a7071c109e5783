"""RDMFModel and RDMFForMomentRetrieval: values against references, ablation switches, learning, bad input."""

import numpy as np
import pytest
import torch

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval, RDMFModel
from transformers_rdmf.modeling_rdmf import normalized_position_embedding
from transformers_rdmf.reaction_diffusion import gray_scott_fusion
from transformers_rdmf.span_utils import span_cxw_to_xx, span_xx_to_cxw, temporal_iou

from .test_reaction_diffusion import reference_diffusion


def tiny_config(**overrides) -> RDMFConfig:
    settings = dict(
        video_feature_dim=24,
        text_feature_dim=12,
        hidden_size=32,
        num_attention_heads=4,
        num_moment_queries=8,
        decoder_ffn_dim=64,
        dropout=0.0,
    )
    return RDMFConfig(**{**settings, **overrides})


def tiny_batch(seed=0, batch=4, clips=24, tokens=5, config=None):
    config = config or tiny_config()
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(batch, clips, config.video_feature_dim, generator=g)
    text = torch.randn(batch, tokens, config.text_feature_dim, generator=g)
    video_mask = torch.ones(batch, clips, dtype=torch.long)
    text_mask = torch.ones(batch, tokens, dtype=torch.long)
    if batch > 2:
        video_mask[2, clips * 3 // 4 :] = 0
        text_mask[2, 3:] = 0
    if batch > 3:
        video_mask[3, clips // 2 :] = 0
    return video, text, video_mask, text_mask


# ---- comparing two runs ------------------------------------------------------------------------
# Bit-equality is kept for serialised bytes, parameters loaded from a file against the saved ones, and
# one deterministic call repeated on the same objects. Two model instances with bit-identical float32
# weights and inputs (a model and its from_pretrained copy, another process) can still round differently
# in a kernel (the loaded weights sit at other memory alignments; 1.5e-8 was seen at one thread), as can
# two thread counts or two code paths, so their outputs are compared to a stated tolerance.


def assert_outputs_close(got, expected, keys, *, atol=1e-6, rtol=1e-5):
    """``got[key]`` and ``expected[key]`` to ``atol + rtol * |expected|``.

    The defaults, for float32 outputs of two instances with the same weights, are far above the rounding
    seen (1.5e-8) and far below what a weight that was not restored moves (a trained kill rate left at the
    config's value moves the scores by 1.5e-4 and the logits by 1.3e-3).
    """
    for key in keys:
        torch.testing.assert_close(
            got[key], expected[key], atol=atol, rtol=rtol, msg=lambda m, k=key: f"{k}: {m}"
        )


def assert_same_parameters(model, loaded):
    """The loaded copy's parameters and buffers are the saved ones, bit for bit (read back from a file)."""
    expected, got = model.state_dict(), loaded.state_dict()
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(got[name], value), name


def assert_same_ranked(got: list[dict], expected: list[dict], atol: dict[str, float]):
    """Two ranked lists of moments (or per-clip saliency) from two runs: the same length and keys, rank by
    rank, each float field ``key`` within ``atol[key]``, any other field equal."""
    assert len(got) == len(expected), (len(got), len(expected))
    for rank, (ours, theirs) in enumerate(zip(got, expected), start=1):
        assert ours.keys() == theirs.keys(), (rank, ours, theirs)
        for key, value in theirs.items():
            if key in atol:
                assert ours[key] == pytest.approx(value, rel=0, abs=atol[key]), (rank, key, ours, theirs)
            else:
                assert ours[key] == value, (rank, key, ours, theirs)


# Moments and clips of two instances or code paths in float32: start and end in seconds (spans are a
# fraction of durations of up to minutes, float32 rounding ~1e-5 s), score and saliency in [0, 1].
SPAN_TOLERANCE = {"start": 1e-4, "end": 1e-4, "score": 1e-6, "saliency": 1e-6}


def labels_for(spans, video_mask):
    """Labels with saliency 1 on clips inside the window."""
    labels = []
    for span, row in zip(spans, video_mask):
        centers = (torch.arange(row.numel()) + 0.5) / row.sum()
        saliency = torch.zeros(row.numel())
        for start, end in span_cxw_to_xx(span).tolist():
            saliency[(centers >= start) & (centers <= end) & row.bool()] = 1.0
        labels.append({"spans": span, "saliency": saliency})
    return labels


def test_model_equals_float64_reference_of_the_equations():
    """Diffusion after the projection equals eq. 3 on the raw features; fusion equals eqs. 5-8."""
    config = tiny_config(diffusion_coefficient=0.3)
    model = RDMFModel(config).double().eval()
    video, text, video_mask, text_mask = (t.double() if t.is_floating_point() else t for t in tiny_batch())
    out = model(video, text, video_mask, text_mask)
    weight = model.video_projection.weight.detach().numpy()
    bias = model.video_projection.bias.detach().numpy()
    coefficient = float(
        model.temporal_diffusion.coefficient.detach()
    )  # 0.3 up to the float32 init of its raw value
    assert coefficient == pytest.approx(0.3, rel=1e-6)
    for b in range(video.shape[0]):
        n = int(video_mask[b].sum())
        diffused_raw = reference_diffusion(video[b, :n].numpy(), coefficient, 1.0, 10)
        np.testing.assert_allclose(
            out.diffused_features[b, :n].detach().numpy(), diffused_raw @ weight.T + bias, atol=1e-10
        )
        tokens = text[b, text_mask[b].bool()].numpy()
        sentence = tokens.mean(0) @ model.text_projection.weight.detach().numpy().T
        sentence += model.text_projection.bias.detach().numpy()
        np.testing.assert_allclose(out.sentence_embedding[b].detach().numpy(), sentence, atol=1e-10)

    fusion = model.fusion
    u0 = torch.sigmoid(fusion.activator_norm(out.diffused_features))
    v0 = torch.sigmoid(fusion.inhibitor_norm(out.sentence_embedding)).unsqueeze(1).expand_as(u0)
    rates = {name: float(value.detach()) for name, value in fusion.rates().items()}
    u, v = gray_scott_fusion(u0, v0, video_mask, **rates, dt=1.0, steps=5)
    torch.testing.assert_close(out.activator, u, atol=1e-12, rtol=0)
    torch.testing.assert_close(out.inhibitor, v, atol=1e-12, rtol=0)
    expected_logits = model.saliency_head(out.last_hidden_state).squeeze(-1)
    valid = video_mask.bool()
    torch.testing.assert_close(out.saliency_logits[valid], expected_logits[valid])


def test_padded_batch_gives_each_video_its_own_result():
    config = tiny_config()
    model = RDMFForMomentRetrieval(config).eval()
    video, text, video_mask, text_mask = tiny_batch()
    batched = model(video, text, video_mask, text_mask)
    for b in range(video.shape[0]):
        n, m = int(video_mask[b].sum()), int(text_mask[b].sum())
        alone = model(video[b : b + 1, :n], text[b : b + 1, :m])
        torch.testing.assert_close(batched.pred_spans[b], alone.pred_spans[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(batched.scores[b], alone.scores[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(
            batched.saliency_logits[b, :n], alone.saliency_logits[0], atol=1e-5, rtol=0
        )


def test_closed_form_and_euler_implementations_give_the_same_model_output():
    torch.manual_seed(0)
    closed = RDMFForMomentRetrieval(tiny_config()).eval()
    euler = RDMFForMomentRetrieval(tiny_config(diffusion_implementation="euler")).eval()
    euler.load_state_dict(closed.state_dict())
    batch = tiny_batch()
    torch.testing.assert_close(euler(*batch).pred_spans, closed(*batch).pred_spans, atol=1e-5, rtol=0)


def test_reaction_parameters_start_at_the_config_and_keep_their_constraints():
    model = RDMFModel(tiny_config())
    rates = {name: value.detach() for name, value in model.fusion.rates().items()}
    for name, value in {"d_u": 0.2, "d_v": 0.1, "feed": 0.04, "kill": 0.06}.items():
        assert float(rates[name]) == pytest.approx(value, rel=1e-6)
    assert float(model.temporal_diffusion.coefficient.detach()) == pytest.approx(0.2, rel=1e-6)
    with torch.no_grad():  # whatever values the optimiser reaches
        for raw_u, raw_v in [(5.0, 5.0), (-3.0, 8.0), (0.0, 20.0)]:
            model.fusion.raw_activator_diffusion.fill_(raw_u)
            model.fusion.raw_inhibitor_diffusion.fill_(raw_v)
            model.temporal_diffusion.raw_coefficient.fill_(raw_v)
            rates = model.fusion.rates()
            assert 0 < float(rates["d_v"]) < float(rates["d_u"]) <= 0.5
            assert 0 < float(model.temporal_diffusion.coefficient) <= 0.5


def test_reaction_parameters_are_frozen_when_not_learnable():
    model = RDMFModel(tiny_config(learnable_reaction_parameters=False))
    assert all(not p.requires_grad for p in model.fusion.reaction_parameters())


def test_eq13_score_combines_probability_and_predicted_iou():
    model = RDMFForMomentRetrieval(tiny_config(score_alpha=0.3)).eval()
    out = model(*tiny_batch())
    probability = out.logits.softmax(-1)[..., 0]
    torch.testing.assert_close(out.scores, probability**0.7 * out.pred_ious**0.3)
    assert out.pred_spans.min() >= 0 and out.pred_spans.max() <= 1


def test_saliency_head_is_eq12_and_padded_clips_score_zero():
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    video, text, video_mask, text_mask = tiny_batch()
    out = model(video, text, video_mask, text_mask)
    probabilities = out.saliency_logits.sigmoid()
    assert torch.all(probabilities[~video_mask.bool()] == 0)
    assert torch.all(out.last_hidden_state[~video_mask.bool()] == 0)


def test_position_embedding_is_relative_to_each_videos_length():
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])
    pos = normalized_position_embedding(mask, 8)
    torch.testing.assert_close(pos[0, 1], pos[1, 0])  # clip 1 of 6 and clip 0 of 2 both sit at 1/4
    assert float(pos[1, 0, 0]) == pytest.approx(0.70710677)  # sin(pi * 1/4) at the lowest frequency
    assert not torch.allclose(pos[0, 0], pos[1, 0])


# ---- ablation switches -------------------------------------------------------------------------


def test_without_temporal_diffusion_the_features_are_not_smoothed():
    torch.manual_seed(0)
    full = RDMFModel(tiny_config()).eval()
    ablated = RDMFModel(tiny_config(use_temporal_diffusion=False)).eval()
    ablated.load_state_dict(full.state_dict(), strict=False)
    assert ablated.temporal_diffusion is None
    batch = tiny_batch()
    projected = ablated.video_projection(batch[0]) * batch[2].unsqueeze(-1)
    torch.testing.assert_close(ablated(*batch).diffused_features, projected)
    assert not torch.allclose(full(*batch).diffused_features, projected, atol=1e-3)


def test_zero_diffusion_steps_is_the_model_without_temporal_diffusion():
    """K = 0 and "w/o temporal diffusion" are one ablation: the same weights from the same seed, the same
    outputs and the same random stream afterwards (the sweeps run it once, as no_temporal_diffusion)."""
    results = []
    for overrides in ({"use_temporal_diffusion": False}, {"diffusion_steps": 0}):
        torch.manual_seed(0)
        model = RDMFForMomentRetrieval(tiny_config(**overrides)).train()  # dropout on
        torch.manual_seed(1)
        outputs = model(*tiny_batch())
        results.append((outputs, torch.rand(4), dict(model.named_parameters())))
    (a, after_a, weights_a), (b, after_b, weights_b) = results
    assert set(weights_b) - set(weights_a) == {"rdmf.temporal_diffusion.raw_coefficient"}
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)
    for name in ("saliency_logits", "pred_spans", "logits", "pred_ious", "last_hidden_state"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(after_a, after_b)


def test_cross_attention_fusion_attends_to_tokens_where_rd_sees_their_mean():
    """Changing the tokens but not their mean changes cross-attention output, never RD's."""
    video, text, video_mask, _ = tiny_batch(batch=2)
    shuffled = text.clone()
    shuffled[:, 0] += 1.0
    shuffled[:, 1] -= 1.0  # same mean over tokens
    torch.manual_seed(0)
    rd = RDMFModel(tiny_config()).eval()
    torch.testing.assert_close(
        rd(video, text, video_mask).last_hidden_state, rd(video, shuffled, video_mask).last_hidden_state
    )
    attention = RDMFModel(tiny_config(fusion_type="cross_attention")).eval()
    calls = []
    attention.fusion.attention.register_forward_hook(lambda mod, args, out: calls.append(args[1].shape))
    a = attention(video, text, video_mask).last_hidden_state
    b = attention(video, shuffled, video_mask).last_hidden_state
    assert calls[0] == (2, text.shape[1], 32)  # keys are the projected query tokens
    assert not torch.allclose(a, b, atol=1e-4)
    assert attention(video, text, video_mask).activator is None


def test_without_iou_head_the_score_is_the_class_probability():
    model = RDMFForMomentRetrieval(tiny_config(use_iou_head=False)).eval()
    video, text, video_mask, text_mask = tiny_batch()
    spans = [torch.tensor([[0.5, 0.2]])] * 4
    out = model(video, text, video_mask, text_mask, labels=labels_for(spans, video_mask))
    assert model.iou_head is None and out.pred_ious is None
    torch.testing.assert_close(out.scores, out.logits.softmax(-1)[..., 0])
    assert "loss_iou" not in out.loss_dict


# ---- loss and learning -------------------------------------------------------------------------


def test_loss_is_the_weighted_sum_of_its_terms():
    config = tiny_config(
        auxiliary_loss=False, saliency_loss_weight=2.0, moment_loss_weight=0.5, iou_loss_weight=3.0
    )
    model = RDMFForMomentRetrieval(config).eval()
    video, text, video_mask, text_mask = tiny_batch()
    spans = [
        torch.tensor([[0.3, 0.2]]),
        torch.tensor([[0.7, 0.3], [0.2, 0.1]]),
        torch.zeros(0, 2),
        torch.tensor([[0.5, 0.4]]),
    ]
    out = model(video, text, video_mask, text_mask, labels=labels_for(spans, video_mask))
    t = out.loss_dict
    expected = 2.0 * t["loss_saliency"] + 0.5 * t["loss_moment"] + 3.0 * t["loss_iou"]
    torch.testing.assert_close(out.loss, expected)
    moment = 10 * t["loss_span"] + 1 * t["loss_giou"] + 4 * t["loss_class"]
    torch.testing.assert_close(t["loss_moment"], moment)


def test_overfitting_one_batch():
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(tiny_config())
    video, text, video_mask, text_mask = tiny_batch()
    spans = [
        torch.tensor([[0.3, 0.2]]),
        torch.tensor([[0.7, 0.3]]),
        torch.tensor([[0.5, 0.4]]),
        torch.tensor([[0.25, 0.5]]),
    ]
    labels = labels_for(spans, video_mask)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    start = None
    for _ in range(300):
        loss = model(video, text, video_mask, text_mask, labels=labels).loss
        start = float(loss.detach()) if start is None else start
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(video, text, video_mask, text_mask, labels=labels)
    assert float(out.loss) < 0.1 * start
    for b, span in enumerate(spans):
        top = out.scores[b].argmax()
        iou = temporal_iou(span_cxw_to_xx(out.pred_spans[b, top : top + 1]), span_cxw_to_xx(span))
        assert float(iou) > 0.9
        saliency = out.saliency_logits[b].sigmoid()
        inside = labels[b]["saliency"].bool()
        assert saliency[inside].min() > saliency[~inside & video_mask[b].bool()].max()


def test_gradients_reach_the_reaction_parameters():
    model = RDMFForMomentRetrieval(tiny_config())
    video, text, video_mask, text_mask = tiny_batch()
    labels = labels_for([torch.tensor([[0.5, 0.2]])] * 4, video_mask)
    model(video, text, video_mask, text_mask, labels=labels).loss.backward()
    for parameter in [
        *model.rdmf.fusion.reaction_parameters(),
        model.rdmf.temporal_diffusion.raw_coefficient,
    ]:
        assert parameter.grad is not None and parameter.grad.abs() > 0


def test_span_conversions_round_trip():
    spans = torch.tensor([[0.1, 0.5], [0.0, 1.0]])
    torch.testing.assert_close(span_xx_to_cxw(span_cxw_to_xx(spans)), spans)
    torch.testing.assert_close(temporal_iou(spans, torch.tensor([[0.3, 0.5]])), torch.tensor([[0.5], [0.2]]))


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda v, t, vm, tm: (v[..., :10], t, vm, tm), "video_features: expected feature width 24"),
        (lambda v, t, vm, tm: (v, t[..., :3], vm, tm), "text_features: expected feature width 12"),
        (lambda v, t, vm, tm: (v[:, :0], t, vm[:, :0], tm), "video_features: has zero clips"),
        (lambda v, t, vm, tm: (v, t[:, :0], vm, tm[:, :0]), "text_features: has zero tokens"),
        (
            lambda v, t, vm, tm: (v.index_fill(1, torch.tensor([3]), float("nan")), t, vm, tm),
            "video_features: contains NaN",
        ),
        (
            lambda v, t, vm, tm: (v, t.index_fill(1, torch.tensor([1]), float("inf")), vm, tm),
            "text_features: contains NaN or inf",
        ),
        (
            lambda v, t, vm, tm: (v, t, vm * torch.tensor([[1], [0], [1], [1]]), tm),
            r"video_mask: rows \[1\] have no valid",
        ),
        (lambda v, t, vm, tm: (v, t, vm, tm * 0), r"text_mask: rows \[0, 1, 2, 3\] have no valid"),
        (lambda v, t, vm, tm: (v, t, vm[:, :5], tm), "video_mask: expected shape"),
        (lambda v, t, vm, tm: (v, t, vm.flip(1), tm), "video_mask: valid clips must come first"),
        (lambda v, t, vm, tm: (v[0], t, vm, tm), "video_features: expected a tensor"),
    ],
)
def test_bad_input_raises_a_clear_error(mutate, message):
    model = RDMFForMomentRetrieval(tiny_config()).eval()
    with pytest.raises(ValueError, match=message):
        model(*mutate(*tiny_batch()))


def test_bad_labels_raise_a_clear_error():
    model = RDMFForMomentRetrieval(tiny_config())
    video, text, video_mask, text_mask = tiny_batch()
    with pytest.raises(ValueError, match="labels: expected 4 dicts"):
        model(
            video,
            text,
            video_mask,
            text_mask,
            labels=[{"spans": torch.zeros(0, 2), "saliency": torch.zeros(24)}],
        )
    with pytest.raises(ValueError, match=r"labels\[0\] lacks \['saliency'\]"):
        model(video, text, video_mask, text_mask, labels=[{"spans": torch.zeros(0, 2)}] * 4)
    with pytest.raises(ValueError, match=r"labels\[0\]\['saliency'\] has shape \(5,\)"):
        model(
            video,
            text,
            video_mask,
            text_mask,
            labels=[{"spans": torch.zeros(0, 2), "saliency": torch.zeros(5)}] * 4,
        )
