"""pipeline("video-moment-retrieval") and the processor from a checkpoint folder: with the package, and in a
fresh process where it cannot be imported (trust_remote_code), equal to the processor + model path."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, pipeline

from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval, RDMFModel, VideoMomentRetrievalPipeline
from transformers_rdmf.long_video import predict_long_video
from transformers_rdmf.post_processing import (
    post_process_highlights,
    post_process_moment_retrieval,
    top_clips,
)

from .test_modeling import SPAN_TOLERANCE, assert_same_ranked
from .test_processing_rdmf import predict as processor_and_model
from .test_processing_rdmf import save_tiny_video_checkpoint

TASK = "video-moment-retrieval"
QUERIES = ["a person opens the door", "someone sits on the sofa"]
FEATURES = dict(
    hidden_size=32, video_feature_dim=24, text_feature_dim=12, num_attention_heads=4,
    num_moment_queries=10, decoder_ffn_dim=64,
)  # fmt: skip


@pytest.fixture(scope="module")
def video_checkpoint(tmp_path_factory):
    """A tiny random CLIP-backbone model and its processor, saved to one folder."""
    return save_tiny_video_checkpoint(tmp_path_factory.mktemp("video_checkpoint"))


@pytest.fixture(scope="module")
def feature_checkpoint(tmp_path_factory):
    torch.manual_seed(1)
    model = RDMFForMomentRetrieval(RDMFConfig(**FEATURES)).eval()
    folder = tmp_path_factory.mktemp("feature_checkpoint")
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture(scope="module")
def charades(shared_data):
    return shared_data / "examples" / "charades.mp4"


def test_a_video_and_several_queries_equal_the_processor_and_model(video_checkpoint, charades):
    model, processor, folder = video_checkpoint
    finder = pipeline(TASK, model=str(folder), trust_remote_code=True)
    assert type(finder.model).__name__ == "RDMFForMomentRetrieval"
    results = finder(str(charades), query=QUERIES, top_k=5)
    assert [r["query"] for r in results] == QUERIES
    for query, result in zip(QUERIES, results):
        moments, saliency = processor_and_model(model, processor, charades, query)
        # another code path (clip features first, then the model) and instance: to a tolerance
        assert_same_ranked(result["moments"], moments, SPAN_TOLERANCE)
        assert_same_ranked(result["saliency"], saliency, SPAN_TOLERANCE)
        assert result["top_clips"] == top_clips(result["saliency"], 5)
        json.dumps(result, allow_nan=False)  # JSON-ready
    single = finder(str(charades), query=QUERIES[0], top_k=5)
    assert isinstance(single, dict) and single["moments"] == results[0]["moments"]  # same path: exact


def test_the_video_is_decoded_once_for_many_queries(video_checkpoint, charades, monkeypatch):
    _, _, folder = video_checkpoint
    finder = pipeline(TASK, model=str(folder), trust_remote_code=True)
    module = sys.modules[type(finder).__module__]  # the checkpoint's own copy of pipeline_rdmf.py
    calls = []
    original = module.embed_video_file
    monkeypatch.setattr(module, "embed_video_file", lambda *a, **k: calls.append(1) or original(*a, **k))
    finder(str(charades), query=QUERIES * 2)
    assert len(calls) == 1


def test_feature_checkpoints_take_features_and_long_videos_run_windowed(feature_checkpoint):
    model, folder = feature_checkpoint
    finder = pipeline(TASK, model=str(folder), trust_remote_code=True)
    rng = np.random.default_rng(0)
    video = rng.standard_normal((200, 24)).astype(np.float32)
    texts = [rng.standard_normal((5, 12)).astype(np.float32) for _ in QUERIES]
    inputs = {"video_features": video, "text_features": texts, "clip_length": 2.0}
    results = finder(inputs, query=QUERIES, top_k=4, window_clips=75)
    for text, result in zip(texts, results):
        direct = predict_long_video(
            model, torch.from_numpy(video), {"text_features": torch.from_numpy(text)[None]}, 2.0,
            window_clips=75, top_k=4, nms_threshold=0.7,
        )  # fmt: skip
        assert len(direct.windows) == 4 and len(result["saliency"]) == 200
        assert_same_ranked(result["moments"], direct.moments, SPAN_TOLERANCE)
        assert_same_ranked(result["saliency"], direct.saliency, SPAN_TOLERANCE)
    short = finder({"video_features": video[:30], "text_features": texts[0]}, query=QUERIES[0], top_k=4)
    with torch.no_grad():
        outputs = model(
            video_features=torch.from_numpy(video[:30])[None], text_features=torch.from_numpy(texts[0])[None]
        )
    assert_same_ranked(short["moments"], post_process_moment_retrieval(outputs, [60.0], top_k=4, nms_threshold=0.7)[0], SPAN_TOLERANCE)  # fmt: skip
    assert_same_ranked(short["saliency"], post_process_highlights(outputs, 2.0)[0], SPAN_TOLERANCE)


def test_a_highlight_only_checkpoint_gives_top_clips_not_moments(tmp_path):
    model = RDMFForMomentRetrieval(RDMFConfig(**FEATURES, trained_heads=["saliency"])).eval()
    model.save_pretrained(tmp_path)
    finder = pipeline(TASK, model=str(tmp_path), trust_remote_code=True)
    rng = np.random.default_rng(2)
    inputs = {"video_features": rng.standard_normal((20, 24)), "text_features": rng.standard_normal((4, 12))}
    result = finder(inputs, query="a dog", top_k=3)
    assert result["moments"] is None and result["trained_heads"] == ["saliency"]
    assert result["top_clips"] == top_clips(result["saliency"], 3) and len(result["top_clips"]) == 3


def test_bad_pipeline_input_is_a_message(feature_checkpoint, charades):
    _, folder = feature_checkpoint
    finder = pipeline(TASK, model=str(folder), trust_remote_code=True)
    with pytest.raises(ValueError, match="this checkpoint reads clip features, not videos"):
        finder(str(charades), query="a dog")
    with pytest.raises(
        ValueError, match=r"video_features: expected a \(rows, 24\) array, got shape \(20, 7\)"
    ):
        finder({"video_features": np.zeros((20, 7)), "text_features": np.zeros((4, 12))}, query="a dog")
    with pytest.raises(ValueError, match="query: give a non-empty string"):
        finder({"video_features": np.zeros((20, 24)), "text_features": np.zeros((4, 12))}, query="  ")


def test_the_package_class_serves_the_pipeline_without_remote_code(feature_checkpoint):
    _, folder = feature_checkpoint
    finder = pipeline(TASK, model=str(folder), pipeline_class=VideoMomentRetrievalPipeline)
    assert type(finder.model) is RDMFForMomentRetrieval  # the head, though AutoModel gives the base
    assert type(RDMFModel.from_pretrained(folder)) is RDMFModel


def test_processor_kwargs_reach_the_tokenizer_and_the_video_processor(video_checkpoint, charades):
    _, processor, folder = video_checkpoint
    loaded = AutoProcessor.from_pretrained(folder)
    short = loaded(text="a person opens the door slowly", max_length=4)
    assert short["input_ids"].shape == (1, 4)
    wide = loaded(videos=str(charades), text="a door", videos_kwargs={"clip_length": 3.0})
    assert wide["pixel_mask"].shape[1] == 10  # 30.7 s in 3 s clips


FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    sys.modules["transformers_rdmf"] = None  # the package must not be importable here
    import torch
    from transformers import AutoProcessor, AutoVideoProcessor, pipeline
    folder, video, out = sys.argv[1:4]
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    video_processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert not type(processor).__module__.startswith("transformers_rdmf")
    assert video_processor.to_dict() == processor.video_processor.to_dict()
    finder = pipeline("video-moment-retrieval", model=folder, trust_remote_code=True)
    inputs = processor(videos=video, text="a person opens the door")
    json.dump({
        "processor": processor.to_dict()["video_processor"],
        "pixel_sum": float(inputs["pixel_values"].double().sum()),
        "input_ids": inputs["input_ids"].tolist(),
        "pipeline": finder(video, query=["a person opens the door", "someone sits on the sofa"], top_k=5),
    }, open(out, "w"))
    """
)


def test_processor_and_pipeline_load_in_a_fresh_process_without_the_package(
    video_checkpoint, charades, tmp_path
):
    model, processor, folder = video_checkpoint
    env = {
        **os.environ,
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": "",
    }
    command = [sys.executable, "-c", FRESH_PROCESS, str(folder), str(charades), str(tmp_path / "out.json")]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    remote = json.loads((tmp_path / "out.json").read_text())
    assert remote["processor"] == json.loads(json.dumps(processor.to_dict()["video_processor"]))  # as saved
    inputs = processor(videos=str(charades), text="a person opens the door")
    assert remote["input_ids"] == inputs["input_ids"].tolist()  # integers: exact
    assert remote["pixel_sum"] == pytest.approx(float(inputs["pixel_values"].double().sum()), rel=1e-9)
    for query, result in zip(QUERIES, remote["pipeline"]):
        moments, saliency = processor_and_model(model, processor, charades, query)
        assert_same_ranked(result["moments"], moments, SPAN_TOLERANCE)
        assert_same_ranked(result["saliency"], saliency, SPAN_TOLERANCE)


def test_a_published_video_checkpoint_serves_the_pipeline_and_processor_from_its_folder(
    video_checkpoint, charades, shared_data, tmp_path
):
    from transformers_rdmf.hub import publish_checkpoint

    from .test_hub_publish import tiny_preset

    model, processor, folder = video_checkpoint
    metrics = shared_data / "conformance" / "qvhighlights" / "qddetr_sf+clip_val_preds_metrics.json"
    preset = tiny_preset(tmp_path, video_feature_dim=16, text_feature_dim=16)
    out = publish_checkpoint(folder, metrics, tmp_path / "repo", preset=preset)
    assert {"pipeline_rdmf.py", "processing_rdmf.py", "video_processing_rdmf.py", "long_video.py"} <= {
        p.name for p in out.glob("*.py")
    }
    saved = json.loads((out / "processor_config.json").read_text())
    assert saved["auto_map"]["AutoProcessor"] == "processing_rdmf.RDMFProcessor"
    config = json.loads((out / "config.json").read_text())
    assert config["custom_pipelines"][TASK]["impl"] == "pipeline_rdmf.VideoMomentRetrievalPipeline"
    card = (out / "README.md").read_text()
    assert 'pipeline("video-moment-retrieval"' in card and "processor.post_process_moment_retrieval" in card
    result = pipeline(TASK, model=str(out), trust_remote_code=True)(str(charades), query=QUERIES[0], top_k=5)
    moments, _ = processor_and_model(model, processor, charades, QUERIES[0])
    assert_same_ranked(result["moments"], moments, SPAN_TOLERANCE)


def test_a_video_decoded_by_the_caller_gives_the_files_moments(video_checkpoint, charades):
    from transformers_rdmf.video_processing_rdmf import decode_frames, read_frame_timestamps

    _, _, folder = video_checkpoint
    finder = pipeline(TASK, model=str(folder), trust_remote_code=True)
    stamps = read_frame_timestamps(charades)
    decoded = decode_frames(charades, stamps.pts)
    frames = np.stack([decoded[int(p)] for p in stamps.pts])
    given = {"frames": frames, "timestamps": stamps.times, "duration": stamps.duration}
    from_arrays = finder(given, query=QUERIES[0], top_k=5)
    from_file = finder(str(charades), query=QUERIES[0], top_k=5)
    # the same pixels, embedded at once rather than a batch of clips at a time: to a tolerance
    assert_same_ranked(from_arrays["moments"], from_file["moments"], SPAN_TOLERANCE)
    assert_same_ranked(from_arrays["saliency"], from_file["saliency"], SPAN_TOLERANCE)
