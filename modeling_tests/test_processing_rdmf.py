"""RDMFProcessor and `rdmf predict`: a video file and a sentence to moments, saved and loaded back."""

import json
import re

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

from transformers_rdmf import RDMFForMomentRetrieval, RDMFProcessor, RDMFVideoProcessor
from transformers_rdmf.cli import main as rdmf_main
from transformers_rdmf.post_processing import post_process_highlights, post_process_moment_retrieval

from .test_modeling import SPAN_TOLERANCE, assert_same_ranked, tiny_config
from .test_video_backbones import tiny_clip_rdmf_config, tiny_tokenizer
from .test_video_processing import write_video

QUERY = "a person opens the door"


def tiny_processor() -> RDMFProcessor:
    video_processor = RDMFVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return RDMFProcessor(video_processor=video_processor, tokenizer=tiny_tokenizer())


def predict(model, processor, video, query: str = QUERY) -> tuple[list[dict], list[dict]]:
    """The five lines of docs/inference.md."""
    inputs = processor(videos=str(video), text=query)
    with torch.no_grad():
        outputs = model(**inputs)
    moments = processor.post_process_moment_retrieval(
        outputs, inputs["durations"], top_k=5, nms_threshold=0.7
    )
    return moments[0], processor.post_process_highlights(outputs)[0]


@pytest.fixture(scope="module")
def charades(shared_data):
    return shared_data / "examples" / "charades.mp4"


def save_tiny_video_checkpoint(folder):
    """A tiny random CLIP-backbone model and its processor, in memory and saved to ``folder``."""
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(tiny_clip_rdmf_config()).eval()
    processor = tiny_processor()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor, folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return save_tiny_video_checkpoint(tmp_path_factory.mktemp("tiny_rdmf"))


def test_saved_and_loaded_model_and_processor_give_identical_spans(saved, charades):
    model, processor, folder = saved
    expected_moments, expected_saliency = predict(model, processor, charades)
    assert 1 <= len(expected_moments) <= 5 and len(expected_saliency) == 15
    assert all(0 <= m["start"] <= m["end"] <= 30.698 for m in expected_moments)

    loaded_processor = AutoProcessor.from_pretrained(folder)
    assert type(loaded_processor) is RDMFProcessor
    loaded_model = RDMFForMomentRetrieval.from_pretrained(folder).eval()
    # another model instance: its bit-identical weights may still round differently (1.5e-8 seen)
    moments, saliency = predict(loaded_model, loaded_processor, charades)
    assert_same_ranked(moments, expected_moments, SPAN_TOLERANCE)
    assert_same_ranked(saliency, expected_saliency, SPAN_TOLERANCE)


def test_cli_predict_prints_the_same_spans_and_writes_a_png(saved, charades, tmp_path, capsys):
    model, processor, folder = saved
    expected_moments, expected_saliency = predict(model, processor, charades)
    png, result = tmp_path / "out" / "moments.png", tmp_path / "moments.json"
    argv = ["predict", "--model", str(folder), "--video", str(charades), "--query", QUERY]
    argv += ["--gt", "5.0", "12.5", "--output", str(png), "--json", str(result)]
    assert rdmf_main(argv) == 0
    printed = capsys.readouterr().out
    assert "15 clips of 2 s (30.70 s)" in printed
    # the command loads its own model instance from the folder: the same spans, to SPAN_TOLERANCE
    saved_result = json.loads(result.read_text())
    assert_same_ranked(saved_result["moments"], expected_moments, SPAN_TOLERANCE)
    assert_same_ranked(saved_result["saliency"], expected_saliency, SPAN_TOLERANCE)
    # the printed table, parsed: seconds to 2 decimals and scores to 4, half a printed unit off at most
    # (plus SPAN_TOLERANCE, should the other instance's value lie across a rounding boundary)
    rows = re.findall(r"^\s+(\d+)\.\s+(\S+) -\s+(\S+)  score (\S+)$", printed, flags=re.MULTILINE)
    printed_moments = [{"start": float(s), "end": float(e), "score": float(p)} for _, s, e, p in rows]
    assert [int(rank) for rank, *_ in rows] == list(range(1, len(expected_moments) + 1))
    printed_tolerance = {"start": 0.005 + 1e-4, "end": 0.005 + 1e-4, "score": 5e-5 + 1e-6}
    assert_same_ranked(printed_moments, expected_moments, printed_tolerance)
    printed_saliency = re.search(r"^saliency per clip: (.*)$", printed, flags=re.MULTILINE).group(1).split()
    np.testing.assert_allclose(
        [float(p) for p in printed_saliency],
        [c["saliency"] for c in expected_saliency],
        atol=0.005 + 1e-6,
        rtol=0,
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in png.parent.iterdir()) == ["moments.png"]  # no temporary left behind


def test_cli_predict_on_features_with_text_features(shared_data, tmp_path, capsys):
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(tiny_config(video_feature_dim=512)).eval()
    model.save_pretrained(tmp_path / "model")
    np.savez(tmp_path / "query.npz", last_hidden_state=np.random.default_rng(0).normal(size=(6, 12)))
    features = shared_data / "examples" / "vid.npz"
    argv = ["predict", "--model", str(tmp_path / "model"), "--features", str(features), "--query", QUERY]
    argv += ["--text-features", str(tmp_path / "query.npz"), "--output", str(tmp_path / "f.png")]
    assert rdmf_main(argv) == 0
    assert "15 clips of 2 s (30.00 s)" in capsys.readouterr().out
    assert (tmp_path / "f.png").is_file()


def test_processor_post_processing_delegates_with_the_video_processors_clip_length(saved, charades):
    model, processor, _ = saved
    inputs = processor(videos=str(charades), text=QUERY)
    with torch.no_grad():
        outputs = model(**inputs)
    # exact: the processor delegates, so both sides are one deterministic function on the same outputs
    assert processor.post_process_highlights(outputs) == post_process_highlights(outputs, clip_length=2.0)
    assert processor.post_process_moment_retrieval(
        outputs, [30.0], top_k=None
    ) == post_process_moment_retrieval(outputs, [30.0], top_k=None)
    assert processor.post_process_highlights(outputs)[0][-1]["end"] == 30.0


@pytest.mark.parametrize(
    ("argument", "make", "message"),
    [
        ("--video", lambda tmp: tmp / "missing.mp4", "--video: no file at"),
        (
            "--video",
            lambda tmp: (tmp / "a.mp4").write_text("text") and tmp / "a.mp4",
            "--video: .* is not a readable video",
        ),
        ("--video", lambda tmp: write_video(tmp / "empty.mp4", 0), "--video: .* zero-length video"),
        ("--query", lambda tmp: "   ", "--query: the query is empty"),
        ("--model", lambda tmp: tmp / "no_model", "--model: no saved model"),
    ],
    ids=["missing-video", "not-a-video", "zero-length-video", "empty-query", "missing-model"],
)
def test_cli_bad_input_names_the_argument_and_writes_nothing(
    saved, charades, tmp_path, capsys, argument, make, message
):
    _, _, folder = saved
    values = {"--model": str(folder), "--video": str(charades), "--query": QUERY}
    values[argument] = str(make(tmp_path))
    outputs = tmp_path / "outputs"
    argv = ["predict", *[x for pair in values.items() for x in pair]]
    argv += ["--output", str(outputs / "x.png"), "--json", str(outputs / "x.json")]
    assert rdmf_main(argv) == 2
    error = capsys.readouterr().err
    assert re.search(f"^rdmf predict: error: {message}", error, flags=re.MULTILINE), error
    assert not outputs.exists()


def test_empty_query_in_the_python_api_raises(saved):
    _, processor, _ = saved
    with pytest.raises(ValueError, match="text: every query must be a non-empty string"):
        processor(text="")
    with pytest.raises(ValueError, match="videos, text: pass at least one"):
        processor()
