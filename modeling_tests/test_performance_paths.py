"""Fast paths (fused and compiled Gray-Scott steps, closed-form diffusion) against their references, and
long videos in one pass."""

import shutil

import pytest
import torch

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval
from transformers_rdmf.post_processing import post_process_highlights, post_process_moment_retrieval
from transformers_rdmf.reaction_diffusion import (
    gray_scott_fusion,
    gray_scott_fusion_compiled,
    gray_scott_fusion_fused,
    laplacian,
)

from .test_modeling import tiny_batch, tiny_config
from .test_reaction_diffusion import padded_batch

PAPER_RATES = dict(d_u=0.2, d_v=0.1, feed=0.04, kill=0.06)


def concentrations(lengths, dim, dtype, seed=0):
    """Activator and inhibitor in [0, 1] with padding, as the model feeds them, plus the mask."""
    _, u, mask = padded_batch(lengths, dim=dim, seed=seed, low=0)
    _, v, _ = padded_batch(lengths, dim=dim, seed=seed + 1, low=0)
    return u.to(dtype), v.to(dtype), mask


@pytest.mark.parametrize("lengths", [[75, 60, 3, 1], [40]])
def test_fused_gray_scott_equals_the_euler_reference_in_float32_to_1e5(lengths):
    u, v, mask = concentrations(lengths, dim=256, dtype=torch.float32)
    expected = gray_scott_fusion(u, v, mask, **PAPER_RATES, dt=1.0, steps=5)
    with torch.no_grad():  # the in-place branch
        in_place = gray_scott_fusion_fused(u, v, mask, **PAPER_RATES, dt=1.0, steps=5)
    rates = {k: torch.tensor(r, requires_grad=True) for k, r in PAPER_RATES.items()}
    out_of_place = gray_scott_fusion_fused(u, v, mask, **rates, dt=1.0, steps=5)
    for got in (in_place, out_of_place):
        torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=0)


def test_fused_gray_scott_equals_the_reference_in_float64_with_zero_padding():
    u, v, mask = concentrations([17, 9, 4, 1], dim=6, dtype=torch.float64, seed=4)
    garbage = 100 * (1 - mask.unsqueeze(-1).double())  # padded clips must not leak
    expected = gray_scott_fusion(u, v, mask, **PAPER_RATES, dt=0.8, steps=7)
    got = gray_scott_fusion_fused(u + garbage, v + garbage, mask, **PAPER_RATES, dt=0.8, steps=7)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-12, rtol=0)
        assert torch.all(g[mask == 0] == 0)


def test_fused_gray_scott_gradients_equal_the_references():
    u, v, mask = concentrations([12, 7, 1], dim=5, dtype=torch.float64, seed=2)

    def gradients(fn):
        inputs = [u.clone().requires_grad_(), v.clone().requires_grad_()]
        rates = [torch.tensor(r, dtype=torch.float64, requires_grad=True) for r in PAPER_RATES.values()]
        out_u, out_v = fn(*inputs, mask, *rates, 1.0, 4)
        (out_u.square().sum() + (out_u * out_v).sum()).backward()
        return [t.grad for t in inputs + rates]

    for got, expected in zip(gradients(gray_scott_fusion_fused), gradients(gray_scott_fusion)):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)


def test_edge_laplacian_equals_the_masked_laplacian():
    from transformers_rdmf.reaction_diffusion import _edge_laplacian, _edge_weights

    _, x, mask = padded_batch([9, 4, 1, 2])
    expected = laplacian(x, mask)
    got = _edge_laplacian(x.unsqueeze(2), _edge_weights(mask, x.dtype)).squeeze(2)
    torch.testing.assert_close(got * mask.unsqueeze(-1), expected, atol=1e-12, rtol=0)
    assert torch.all(got[mask == 0] == 0)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("cc") is None, reason="no C++ compiler")
def test_compiled_gray_scott_equals_the_euler_reference_to_1e5():
    u, v, mask = concentrations([30, 11, 1], dim=16, dtype=torch.float32, seed=5)
    with torch.no_grad():
        expected = gray_scott_fusion(u, v, mask, **PAPER_RATES, dt=1.0, steps=5)
        got = gray_scott_fusion_compiled(u, v, mask, **PAPER_RATES, dt=1.0, steps=5)
    torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=0)


def test_model_outputs_and_gradients_agree_across_reaction_implementations():
    torch.manual_seed(0)
    fused = RDMFForMomentRetrieval(tiny_config())
    euler = RDMFForMomentRetrieval(tiny_config(reaction_implementation="euler"))
    euler.load_state_dict(fused.state_dict())
    batch = tiny_batch()
    outputs = [model(*batch) for model in (fused, euler)]
    torch.testing.assert_close(outputs[0].pred_spans, outputs[1].pred_spans, atol=1e-5, rtol=0)
    torch.testing.assert_close(outputs[0].saliency_logits, outputs[1].saliency_logits, atol=1e-5, rtol=0)
    for out in outputs:
        (out.scores.sum() + out.saliency_logits[batch[2].bool()].sum()).backward()
    for (name, a), b in zip(fused.named_parameters(), euler.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_reaction_implementation_is_validated_and_defaults_for_old_configs():
    with pytest.raises(ValueError, match="reaction_implementation"):
        RDMFConfig(reaction_implementation="cuda")
    old = RDMFConfig().to_dict()
    old.pop("reaction_implementation")
    assert RDMFConfig.from_dict(old).reaction_implementation == "fused"


def test_a_ten_hour_video_runs_in_one_pass_and_long_moments_post_process():
    """18,000 clips (10 h at 2 s) in one forward; the decoder and post-processing take them whole."""
    config = tiny_config()
    model = RDMFForMomentRetrieval(config).eval()
    clips = 18_000
    video = torch.randn(2, clips, config.video_feature_dim)
    text = torch.randn(2, 5, config.text_feature_dim)
    video_mask = torch.ones(2, clips, dtype=torch.long)
    video_mask[1, 500:] = 0  # a short video padded to the long one
    with torch.no_grad():
        out = model(video, text, video_mask)
        alone = model(video[1:, :500], text[1:])
    assert out.saliency_logits.shape == (2, clips)
    torch.testing.assert_close(out.pred_spans[1], alone.pred_spans[0], atol=1e-5, rtol=0)
    out.pred_spans[0, 0] = torch.tensor([0.5, 0.1])  # a moment 1,800 clips long
    moments = post_process_moment_retrieval(out, [2.0 * clips, 1000.0], top_k=None)
    highlights = post_process_highlights(out, clip_length=2.0)
    assert [len(h) for h in highlights] == [clips, 500]
    assert len(moments[0]) == config.num_moment_queries
    spans = [(m["start"], m["end"]) for m in moments[0]]
    assert any(s == pytest.approx(16_200, abs=0.1) and e == pytest.approx(19_800, abs=0.1) for s, e in spans)


def test_finite_check_in_one_reduction_is_exact():
    from transformers_rdmf.modeling_rdmf import all_finite

    x = torch.randn(3, 40, 8)
    assert all_finite(x)
    assert all_finite(torch.full((10,), 3e38))  # the sum overflows; the values are finite
    for bad in (float("nan"), float("inf")):
        y = x.clone()
        y[1, 7, 2] = bad
        assert not all_finite(y)
    y = x.clone()
    y[0, 0, 0], y[2, 3, 1] = float("inf"), -float("inf")  # sum is NaN
    assert not all_finite(y)
