"""Post-processing against hand-worked examples, and the `rdmf demo` command."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from transformers_rdmf.cli import main as rdmf_main
from transformers_rdmf.post_processing import (
    post_process_highlights,
    post_process_moment_retrieval,
    temporal_nms,
)


def outputs(spans, scores, saliency_logits=None, video_mask=None):
    return SimpleNamespace(
        pred_spans=torch.tensor(spans),
        scores=torch.tensor(scores),
        saliency_logits=saliency_logits,
        video_mask=video_mask,
    )


def test_spans_become_sorted_seconds_clipped_to_the_duration():
    out = outputs([[[0.5, 0.2], [0.95, 0.3], [0.1, 0.1]]], [[0.2, 0.9, 0.5]])
    moments = post_process_moment_retrieval(out, [30.0], top_k=None)[0]
    assert [m["score"] for m in moments] == pytest.approx([0.9, 0.5, 0.2])
    # (0.95, 0.3) -> [0.8, 1.1] of 30 s -> [24, 33] clipped to [24, 30]
    assert moments[0]["start"] == pytest.approx(24.0) and moments[0]["end"] == pytest.approx(30.0)
    assert moments[1]["start"] == pytest.approx(1.5) and moments[1]["end"] == pytest.approx(4.5)
    assert moments[2]["start"] == pytest.approx(12.0) and moments[2]["end"] == pytest.approx(18.0)
    assert len(post_process_moment_retrieval(out, [30.0], top_k=2)[0]) == 2


def test_nms_drops_overlapping_lower_scored_moments():
    spans = torch.tensor([[0.0, 10.0], [1.0, 10.0], [20.0, 30.0], [0.0, 5.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # IoU([0,10],[1,10]) = 0.9 > 0.5 -> dropped; IoU([0,10],[0,5]) = 0.5, not above 0.5 -> kept
    assert temporal_nms(spans, scores, 0.5).tolist() == [0, 2, 3]
    assert temporal_nms(spans, scores, 0.4).tolist() == [0, 2]


def test_highlights_are_sigmoid_probabilities_with_clip_times():
    out = outputs([[[0.5, 0.2]]], [[0.5]], torch.tensor([[0.0, 2.0, -50.0]]), torch.tensor([[1, 1, 0]]))
    clips = post_process_highlights(out, clip_length=2.0)[0]
    assert len(clips) == 2
    assert clips[1]["start"] == 2.0 and clips[1]["end"] == 4.0
    assert clips[0]["saliency"] == pytest.approx(0.5) and clips[1]["saliency"] == pytest.approx(
        1 / (1 + 2.718281828**-2)
    )


def test_bad_durations_raise():
    out = outputs([[[0.5, 0.2]]], [[0.5]])
    with pytest.raises(ValueError, match="durations: expected 1"):
        post_process_moment_retrieval(out, [1.0, 2.0])
    with pytest.raises(ValueError, match="durations: each must be a positive"):
        post_process_moment_retrieval(out, [0.0])


def test_demo_runs_on_the_example_features(capsys):
    assert rdmf_main(["demo", "--top-k", "3"]) == 0
    printed = capsys.readouterr().out
    assert "15 clips x 512 (30.0 s)" in printed
    saliency = printed.split("saliency per clip: ")[1].split()
    assert len(saliency) == 15 and all(0 <= float(s) <= 1 for s in saliency)


def test_demo_bad_input_names_the_argument(tmp_path, capsys):
    assert rdmf_main(["demo", "--features", str(tmp_path / "missing.npz")]) == 2
    assert "--features: no file at" in capsys.readouterr().err
    assert rdmf_main(["demo", "--preset", "qvhighlights_clip_slowfast"]) == 2
    assert "has width 512, preset 'qvhighlights_clip_slowfast' expects 2816" in capsys.readouterr().err


def test_cli_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "transformers_rdmf.cli", "demo", "--top-k", "1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "top moments (seconds):" in result.stdout
