"""Windowed inference on long videos: agreement with the single pass, and a two-hour video in bounded memory."""

import json

import numpy as np
import pytest
import torch

from transformers_rdmf import RDMFForMomentRetrieval
from transformers_rdmf.long_video import merge_moments, plan_windows, predict_long_video, receptive_field
from transformers_rdmf.post_processing import post_process_highlights, post_process_moment_retrieval

from .test_modeling import SPAN_TOLERANCE, assert_same_ranked, tiny_config


def model_for(**overrides):
    torch.manual_seed(0)
    return RDMFForMomentRetrieval(tiny_config(**overrides)).eval()


def query(width=12, tokens=5, seed=1):
    return {"text_features": torch.randn(1, tokens, width, generator=torch.Generator().manual_seed(seed))}


def features(clips, width=24, seed=0):
    rows = torch.randn(clips, width, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.normalize(rows, dim=-1)


def single_pass(model, video, text, clip_length, duration, top_k=10, nms=0.7):
    with torch.no_grad():
        outputs = model(video_features=video.unsqueeze(0), **text)
    moments = post_process_moment_retrieval(outputs, [duration], top_k=top_k, nms_threshold=nms)[0]
    return moments, post_process_highlights(outputs, clip_length)[0]


@pytest.mark.parametrize("num_clips", [75, 76, 200, 3600])
def test_windows_cover_the_video_and_cores_split_it(num_clips):
    windows = plan_windows(num_clips, 75, 30)
    assert all(w.end - w.start == min(75, num_clips) for w in windows)
    assert windows[0].core_start == 0 and windows[-1].core_end == num_clips == windows[-1].end
    for before, after in zip(windows, windows[1:]):
        assert before.core_end == after.core_start
        assert after.core_start - after.start >= 15 and before.end - before.core_end >= 15
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(100, 10, 10)


def test_a_video_that_fits_one_window_is_the_single_pass():
    model, video, text = model_for(), features(40), query()
    moments, saliency = single_pass(model, video, text, 2.0, 79.5)
    result = predict_long_video(model, video, text, clip_length=2.0, duration=79.5, window_clips=75)
    assert len(result.windows) == 1
    # the same model on the same clips through another code path (and batch): float32 rounding only
    assert_same_ranked(result.moments, moments, SPAN_TOLERANCE)
    assert_same_ranked(result.saliency, saliency, SPAN_TOLERANCE)


@pytest.mark.parametrize("fusion_type", ["reaction_diffusion", "cross_attention"])
def test_windowed_saliency_equals_the_single_pass_where_both_fit(fusion_type):
    model, video, text = model_for(fusion_type=fusion_type), features(300), query()
    _, expected = single_pass(model, video, text, 2.0, 600.0)
    result = predict_long_video(model, video, text, clip_length=2.0, window_clips=60, windows_per_batch=3)
    assert len(result.windows) > 5
    # windows see a clip's context up to the receptive field, so float32 rounding only (an overlap below
    # it moves saliency by more than 1e-3, see the next test)
    assert_same_ranked(result.saliency, expected, {**SPAN_TOLERANCE, "saliency": 2e-5})


def test_an_overlap_below_the_receptive_field_breaks_the_agreement():
    model, video, text = model_for(), features(300), query()
    assert receptive_field(model.config) == 15
    _, expected = single_pass(model, video, text, 2.0, 600.0)
    result = predict_long_video(model, video, text, clip_length=2.0, window_clips=60, overlap_clips=4)
    gap = np.abs(np.array([c["saliency"] for c in result.saliency]) - [c["saliency"] for c in expected])
    assert gap.max() > 1e-3


def test_windowed_moments_come_from_window_cores_in_video_time():
    model, video, text = model_for(), features(300), query()
    result = predict_long_video(
        model, video, text, clip_length=2.0, window_clips=60, top_k=None, nms_threshold=None
    )
    scores = [m["score"] for m in result.moments]
    assert scores == sorted(scores, reverse=True)
    assert 0 < len(result.moments) <= len(result.windows) * model.config.num_moment_queries
    assert all(0 <= m["start"] <= m["end"] <= 600 for m in result.moments)


def test_merge_ranks_by_score_and_suppresses_overlaps_across_windows():
    moments = [
        {"start": 10.0, "end": 20.0, "score": 0.5},
        {"start": 11.0, "end": 20.0, "score": 0.9},  # the same event seen from the next window
        {"start": 100.0, "end": 104.0, "score": 0.7},
    ]
    merged = merge_moments(moments, top_k=5, nms_threshold=0.7)
    assert [m["score"] for m in merged] == [0.9, 0.7]  # exact: merging selects the given moments
    assert [m["score"] for m in merge_moments(moments, top_k=2, nms_threshold=None)] == [0.9, 0.7]


class RecordingRows:
    """A feature array on disk that records the largest slice read."""

    def __init__(self, array):
        self.array, self.largest = array, 0

    def __len__(self):
        return len(self.array)

    def __getitem__(self, index):
        rows = self.array[index]
        self.largest = max(self.largest, len(rows))
        return rows


def test_a_two_hour_video_runs_in_windows_of_bounded_size(tmp_path):
    clips = 2 * 3600 // 2  # two hours of 2 s clips
    path = tmp_path / "two_hours.npy"
    on_disk = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(clips, 24))
    on_disk[:] = np.random.default_rng(0).standard_normal((clips, 24), dtype=np.float32)
    on_disk.flush()
    rows = RecordingRows(np.load(path, mmap_mode="r"))
    model, seen = model_for(), []
    model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["video_features"].shape), with_kwargs=True
    )
    result = predict_long_video(model, rows, query(), clip_length=2.0, windows_per_batch=16, normalize=True)
    assert len(result.saliency) == clips and result.saliency[-1]["end"] == 7200.0
    assert max(shape[1] for shape in seen) == 75 and max(shape[0] for shape in seen) == 16
    assert rows.largest == 75  # never more than one window of rows read at a time
    assert 0 < len(result.moments) <= 10 and all(0 <= m["start"] <= m["end"] <= 7200 for m in result.moments)


def test_a_video_file_longer_than_a_window_runs_through_the_models_own_backbone(
    shared_data, tmp_path, capsys
):
    from transformers_rdmf.cli import main as rdmf_main
    from transformers_rdmf.long_video import embed_video_file

    from .test_processing_rdmf import tiny_processor
    from .test_video_backbones import tiny_clip_rdmf_config

    video = shared_data / "examples" / "charades.mp4"
    torch.manual_seed(0)
    model, processor = RDMFForMomentRetrieval(tiny_clip_rdmf_config()).eval(), tiny_processor()
    pixels = processor.video_processor(str(video))
    with torch.no_grad():
        expected, _ = model.rdmf.embed_video(pixels["pixel_values"], pixels["pixel_mask"], None)
    streamed = embed_video_file(model, processor.video_processor, video, clips_per_batch=4)
    torch.testing.assert_close(streamed, expected[0], atol=1e-5, rtol=1e-4)

    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    argv = [
        "predict",
        "--model",
        str(tmp_path / "model"),
        "--video",
        str(video),
        "--query",
        "a man opens the door",
    ]
    argv += ["--window-clips", "8", "--output", str(tmp_path / "p.png"), "--json", str(tmp_path / "p.json")]
    assert rdmf_main(argv) == 0
    assert "overlapping windows of 8 clips" in capsys.readouterr().out
    result = json.loads((tmp_path / "p.json").read_text())
    assert len(result["saliency"]) == 15 and result["duration"] == pytest.approx(30.697, abs=1e-3)
