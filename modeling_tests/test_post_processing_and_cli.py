"""Post-processing against hand-worked examples, and what `rdmf predict` shows for each kind of checkpoint."""

import json
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval
from transformers_rdmf.cli import build_parser
from transformers_rdmf.cli import main as rdmf_main
from transformers_rdmf.post_processing import (
    post_process_highlights,
    post_process_moment_retrieval,
    temporal_nms,
    top_clips,
)

TINY_CONFIG = dict(
    video_feature_dim=16, text_feature_dim=8, hidden_size=16, num_attention_heads=2, num_moment_queries=6,
    num_decoder_layers=1, decoder_ffn_dim=32,
)  # fmt: skip


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


def test_top_clips_rank_by_saliency_and_ties_keep_clip_order():
    saliency = [
        {"start": 2.0 * i, "end": 2.0 * (i + 1), "saliency": p}
        for i, p in enumerate([0.1, 0.7, 0.3, 0.7, 0.9])
    ]
    assert top_clips(saliency, top_k=3) == [
        {"rank": 1, "start": 8.0, "end": 10.0, "saliency": 0.9},
        {"rank": 2, "start": 2.0, "end": 4.0, "saliency": 0.7},
        {"rank": 3, "start": 6.0, "end": 8.0, "saliency": 0.7},
    ]
    assert [clip["rank"] for clip in top_clips(saliency, top_k=None)] == [1, 2, 3, 4, 5]


def test_moments_of_an_untrained_moment_head_come_with_a_warning():
    out = outputs([[[0.5, 0.2]]], [[0.5]])
    expected = {"start": 4.0, "end": 6.0, "score": 0.5}  # (0.5, 0.2) of 10 s: 4 to 6 s
    for recorded, warned in ((None, 0), (["saliency", "moments", "iou"], 0), (["saliency"], 1)):
        out.trained_heads = recorded
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            moments = post_process_moment_retrieval(out, [10.0])
        assert len(moments) == 1 and len(moments[0]) == 1
        assert moments[0][0] == pytest.approx(expected)  # the moments themselves do not change
        assert len(caught) == warned, (recorded, [str(w.message) for w in caught])
    assert caught[0].category is UserWarning
    assert "moment head was not trained (config.trained_heads=['saliency'])" in str(caught[0].message)


def test_the_model_passes_its_trained_heads_to_its_outputs():
    config = RDMFConfig(**TINY_CONFIG, trained_heads=["saliency"])
    model = RDMFForMomentRetrieval(config).eval()
    with torch.no_grad():
        out = model(video_features=torch.randn(1, 6, 16), text_features=torch.randn(1, 3, 8))
    assert out.trained_heads == ["saliency"]
    assert len(out.to_tuple()) == len(
        RDMFForMomentRetrieval(RDMFConfig(**TINY_CONFIG))(
            video_features=torch.randn(1, 6, 16), text_features=torch.randn(1, 3, 8)
        ).to_tuple()
    )  # an attribute, not a field: tuples hold the same tensors
    with pytest.warns(UserWarning, match="moment head was not trained"):
        post_process_moment_retrieval(out, [12.0])


def write_checkpoint(folder, trained_heads):
    torch.manual_seed(0)
    RDMFForMomentRetrieval(RDMFConfig(**TINY_CONFIG, trained_heads=trained_heads)).save_pretrained(folder)
    return folder


def predict_argv(tmp_path, model):
    np.save(tmp_path / "video.npy", np.random.default_rng(0).normal(size=(12, 16)).astype(np.float32))
    np.savez(tmp_path / "text.npz", last_hidden_state=np.random.default_rng(1).normal(size=(4, 8)))
    return [
        "predict", "--model", str(model), "--features", str(tmp_path / "video.npy"),
        "--text-features", str(tmp_path / "text.npz"), "--query", "a dog", "--clip-length", "2",
        "--top-k", "3", "--output", str(tmp_path / "out.png"), "--json", str(tmp_path / "out.json"),
    ]  # fmt: skip


def test_predict_shows_top_clips_for_a_highlight_only_checkpoint(tmp_path, capsys):
    model = write_checkpoint(tmp_path / "model", ["saliency"])
    assert rdmf_main(predict_argv(tmp_path, model)) == 0
    printed = capsys.readouterr()
    assert "trained heads: saliency" in printed.out
    assert "top clips by saliency (seconds):" in printed.out and "top moments" not in printed.out
    assert "moment head was not trained" not in printed.err  # the CLI shows no moments, so no warning
    result = json.loads((tmp_path / "out.json").read_text())
    assert "moments" not in result and result["trained_heads"] == ["saliency"]
    assert result["top_clips"] == top_clips(result["saliency"], top_k=3)
    lines = [line.split() for line in printed.out.splitlines() if line.startswith("  ")]
    assert len(lines) == 3
    for line, clip in zip(lines, result["top_clips"]):  # "  1.   16.00 -   18.00  saliency 0.5123"
        assert (
            line[0] == f"{clip['rank']}."
            and float(line[1]) == clip["start"]
            and float(line[3]) == clip["end"]
        )
        assert float(line[5]) == pytest.approx(clip["saliency"], abs=5e-5)  # printed with 4 decimals
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("recorded", [None, ["saliency", "moments", "iou"]])
def test_predict_shows_moments_when_the_moment_head_is_trained_or_not_recorded(tmp_path, capsys, recorded):
    model = write_checkpoint(tmp_path / "model", recorded)
    assert rdmf_main(predict_argv(tmp_path, model)) == 0
    printed = capsys.readouterr().out
    assert "top moments (seconds):" in printed and "top clips" not in printed
    assert ("does not record which heads were trained" in printed) == (recorded is None)
    result = json.loads((tmp_path / "out.json").read_text())
    assert (
        1 <= len(result["moments"]) <= 3 and "top_clips" not in result and result["trained_heads"] == recorded
    )


@pytest.mark.parametrize(
    "name, magic", [("out.pdf", b"%PDF"), ("out.svg", b"<?xml"), ("out", b"\x89PNG\r\n\x1a\n")]
)
def test_predict_writes_the_plot_in_the_format_its_suffix_names(tmp_path, name, magic):
    model = write_checkpoint(tmp_path / "model", ["saliency"])
    argv = predict_argv(tmp_path, model)
    argv[argv.index("--output") + 1] = str(tmp_path / name)
    assert rdmf_main(argv) == 0
    assert (tmp_path / name).read_bytes().startswith(magic)


def test_predict_refuses_a_plot_suffix_that_names_no_image_format(tmp_path, capsys):
    argv = predict_argv(tmp_path, write_checkpoint(tmp_path / "model", ["saliency"]))
    argv[argv.index("--output") + 1] = str(tmp_path / "out.txt")
    capsys.readouterr()  # save_pretrained's progress bar
    assert rdmf_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--output" in err and "out.txt" in err and ".pdf" in err
    assert not (tmp_path / "out.txt").exists() and not (tmp_path / "out.json").exists()


def test_cli_runs_as_a_module(tmp_path):
    model = write_checkpoint(tmp_path / "model", ["saliency"])
    result = subprocess.run(
        [sys.executable, "-m", "transformers_rdmf.cli", *predict_argv(tmp_path, model)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "top clips by saliency (seconds):" in result.stdout
    assert json.loads((tmp_path / "out.json").read_text())["top_clips"][0]["rank"] == 1


def test_flags_answer_to_dashes_and_underscores_as_rdmf_train_does():
    parser = build_parser()
    base = ["predict", "--model", "m", "--features", "f.npy", "--query", "q"]
    dashed = parser.parse_args([*base, "--top-k", "3", "--clip-length", "2", "--window-clips", "9"])
    underscored = parser.parse_args([*base, "--top_k", "3", "--clip_length", "2", "--window_clips", "9"])
    assert vars(dashed) == vars(underscored)
    assert (underscored.top_k, underscored.clip_length, underscored.window_clips) == (3, 2.0, 9)
