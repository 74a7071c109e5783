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

from .test_modeling import tiny_config
from .test_video_backbones import tiny_clip_rdmf_config, tiny_tokenizer
from .test_video_processing import write_video

QUERY = "a person opens the door"


def tiny_processor() -> RDMFProcessor:
    video_processor = RDMFVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return RDMFProcessor(video_processor=video_processor, tokenizer=tiny_tokenizer())


def predict(model, processor, video) -> tuple[list[dict], list[dict]]:
    """The five lines of docs/inference.md."""
    inputs = processor(videos=str(video), text=QUERY)
    with torch.no_grad():
        outputs = model(**inputs)
    moments = processor.post_process_moment_retrieval(
        outputs, inputs["durations"], top_k=5, nms_threshold=0.7
    )
    return moments[0], processor.post_process_highlights(outputs)[0]


@pytest.fixture(scope="module")
def charades(shared_data):
    return shared_data / "examples" / "charades.mp4"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny random CLIP-backbone model and its processor, in memory and saved to one folder."""
    torch.manual_seed(0)
    model = RDMFForMomentRetrieval(tiny_clip_rdmf_config()).eval()
    processor = tiny_processor()
    folder = tmp_path_factory.mktemp("tiny_rdmf")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor, folder


def test_saved_and_loaded_model_and_processor_give_identical_spans(saved, charades):
    model, processor, folder = saved
    expected_moments, expected_saliency = predict(model, processor, charades)
    assert 1 <= len(expected_moments) <= 5 and len(expected_saliency) == 15
    assert all(0 <= m["start"] <= m["end"] <= 30.698 for m in expected_moments)

    loaded_processor = AutoProcessor.from_pretrained(folder)
    assert type(loaded_processor) is RDMFProcessor
    loaded_model = RDMFForMomentRetrieval.from_pretrained(folder).eval()
    assert predict(loaded_model, loaded_processor, charades) == (expected_moments, expected_saliency)


def test_cli_predict_prints_the_same_spans_and_writes_a_png(saved, charades, tmp_path, capsys):
    model, processor, folder = saved
    expected_moments, expected_saliency = predict(model, processor, charades)
    png, result = tmp_path / "out" / "moments.png", tmp_path / "moments.json"
    argv = ["predict", "--model", str(folder), "--video", str(charades), "--query", QUERY]
    argv += ["--gt", "5.0", "12.5", "--output", str(png), "--json", str(result)]
    assert rdmf_main(argv) == 0
    printed = capsys.readouterr().out
    assert "15 clips of 2 s (30.70 s)" in printed
    saved_result = json.loads(result.read_text())
    assert saved_result["moments"] == expected_moments and saved_result["saliency"] == expected_saliency
    first = expected_moments[0]
    assert f"1. {first['start']:7.2f} - {first['end']:7.2f}  score {first['score']:.4f}" in printed
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
