"""Your own videos end to end: synthetic videos -> rdmf extract-features -> rdmf-train -> rdmf-evaluate -> rdmf predict."""

import json

import numpy as np
import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from transformers_rdmf.cli import main as rdmf_main
from transformers_rdmf.data import AnnotationError, load_annotations
from transformers_rdmf.training import evaluate_main, train_main

from .test_video_backbones import tiny_clip_config, tiny_tokenizer
from .test_video_processing import write_video

VIDEOS = {"kitchen": 70, "garden": 60, "office": 80, "street": 64}  # frames at 5 fps: 6 to 8 clips of 2 s
QUERIES = ["a man opens the door", "a woman sits", "a person turns on the light", "the man holds a cup"]


def annotation_rows() -> list[dict]:
    rows = []
    for qid, ((vid, frames), query) in enumerate(zip(VIDEOS.items(), QUERIES)):
        duration = frames / 5
        row = {"qid": qid, "query": query, "vid": vid, "duration": duration, "relevant_windows": [[2.0, 6.0]]}
        if qid % 2:
            row["saliency_scores"] = [
                1.0 if 2 <= 2 * i < 6 else 0.0 for i in range(int(np.ceil(duration / 2)))
            ]
        rows.append(row)
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Videos, annotations, a tiny random CLIP checkpoint (with tokenizer) and the extracted features."""
    root = tmp_path_factory.mktemp("custom")
    (root / "videos").mkdir()
    for vid, frames in VIDEOS.items():
        write_video(root / "videos" / f"{vid}.mp4", frames, fps=5)
    annotations = write_jsonl(root / "train.jsonl", annotation_rows())
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(**tiny_clip_config())).save_pretrained(root / "clip")
    tiny_tokenizer().save_pretrained(root / "clip")
    argv = ["extract-features", "--videos", str(root / "videos"), "--out", str(root / "features")]
    argv += ["--backbones", "clip", "--clip-model", str(root / "clip"), "--queries", str(annotations)]
    argv += ["--batch-size", "4"]
    assert rdmf_main(argv) == 0
    return root


def write_preset(root, **training) -> str:
    preset = {
        "config": {
            "video_feature_dim": 16,
            "text_feature_dim": 16,
            "hidden_size": 16,
            "num_attention_heads": 2,
            "num_moment_queries": 4,
            "decoder_ffn_dim": 32,
        },
        "features": {"layout": "moment_detr", "clip_length": 2.0, "video_streams": {"clip": 16}},
        "training": {
            "dataset": "custom",
            "train_annotations": str(root / "train.jsonl"),
            "eval_annotations": str(root / "train.jsonl"),
            "video_feature_dirs": [str(root / "features" / "clip")],
            "text_feature_dir": str(root / "features" / "text"),
            "batch_size": 2,
            "num_epochs": 2,
            "learning_rate": 0.001,
            **training,
        },
    }
    path = root / "my_preset.json"
    path.write_text(json.dumps(preset))
    return str(path)


def test_extraction_writes_every_video_and_query(project, capsys):
    features = project / "features"
    for vid, frames in VIDEOS.items():
        assert np.load(features / "clip" / f"{vid}.npz")["features"].shape == (frames // 10, 16)
    assert sorted(p.name for p in (features / "text").glob("qid*.npz")) == [f"qid{i}.npz" for i in range(4)]
    argv = ["extract-features", "--videos", str(project / "videos"), "--out", str(features)]
    assert rdmf_main([*argv, "--clip-model", str(project / "clip")]) == 0
    assert "0 written (0 of them redone: incomplete files), 4 already complete" in capsys.readouterr().out


def test_train_evaluate_and_predict_on_the_custom_dataset(project, tmp_path, capsys):
    preset = write_preset(project)
    assert (
        train_main(["--output_dir", str(tmp_path / "run"), "--preset", preset, "--disable_progress_bar"]) == 0
    )
    best = tmp_path / "run" / "best"
    trained_on = json.loads((best / "feature_manifest.json").read_text())
    assert trained_on["video_streams"][0]["backbone"] == "clip" and trained_on["text"]["feature_dim"] == 16
    metrics = json.loads((best / "metrics.json").read_text())
    assert {"MR-full-mAP", "R1@0.5", "mIoU"} <= set(metrics)

    argv = ["--checkpoint", str(best), "--preset", preset, "--output_dir", str(tmp_path / "eval")]
    assert evaluate_main(argv) == 0
    # the checkpoint loaded again scores the same. Another instance may round its float32 outputs
    # differently, which can move the percentage (2 decimals) by one unit where it sits on a rounding
    # boundary; a different checkpoint or evaluation moves it by whole ranks or IoU hits
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["MR-full-mAP"] == pytest.approx(metrics["MR-full-mAP"], abs=0.01 + 1e-9)
    capsys.readouterr()
    assert evaluate_main(argv) == 2  # the evaluation is there: replaced only when asked
    assert "preds.jsonl exists; pass --overwrite_output_dir" in capsys.readouterr().err
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == evaluated
    assert evaluate_main([*argv, "--overwrite_output_dir"]) == 0

    features = project / "features"
    argv = ["predict", "--model", str(best), "--features", str(features / "clip" / "office.npz")]
    argv += ["--text-features", str(features / "text" / "qid2.npz"), "--query", QUERIES[2]]
    argv += ["--output", str(tmp_path / "p.png"), "--json", str(tmp_path / "p.json")]
    capsys.readouterr()
    assert rdmf_main(argv) == 0
    printed = capsys.readouterr().out
    assert "8 clips of 2 s (16.00 s)" in printed and "sigmoid probability" in printed
    result = json.loads((tmp_path / "p.json").read_text())
    assert len(result["saliency"]) == 8 and all(0 <= c["saliency"] <= 1 for c in result["saliency"])

    assert rdmf_main([*argv, "--window-clips", "4", "--overwrite"]) == 0  # longer than a window: windowed
    assert "overlapping windows of 4 clips, predictions merged" in capsys.readouterr().out


def test_features_that_disagree_with_the_model_are_refused_naming_both(project, tmp_path, capsys):
    argv = ["extract-features", "--videos", str(project / "videos" / "office.mp4"), "--out", str(tmp_path)]
    assert rdmf_main([*argv, "--clip-model", str(project / "clip"), "--clip-length", "1"]) == 0
    preset = write_preset(project, video_feature_dirs=[str(tmp_path / "clip")])
    assert train_main(["--output_dir", str(tmp_path / "run"), "--preset", preset, "--clip_length", "2"]) == 2
    assert "clip_length: 1.0 in the features, 2.0 expected by the model" in capsys.readouterr().err

    torch.manual_seed(0)
    from transformers_rdmf import RDMFConfig, RDMFForMomentRetrieval

    RDMFForMomentRetrieval(RDMFConfig.from_preset(preset)).save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "feature_manifest.json").write_text(
        json.dumps({"video_streams": [{"backbone": "timm:resnet50", "clip_length": 2.0}], "text": None})
    )
    argv = [
        "predict",
        "--model",
        str(tmp_path / "model"),
        "--features",
        str(tmp_path / "clip" / "office.npz"),
    ]
    argv += ["--text-features", str(project / "features" / "text" / "qid2.npz"), "--query", "a man"]
    assert rdmf_main([*argv, "--output", str(tmp_path / "x.png")]) == 2
    error = capsys.readouterr().err
    assert "backbone: 'clip' in the features, 'timm:resnet50' expected" in error
    assert "clip_length: 1.0 in the features, 2.0 expected" in error
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"saliency_scores": [1, 0]}, r"line 1, field 'saliency_scores': 2 rows for 7 clips"),
        (
            {"relevant_windows": [[4, 2]]},
            r"line 1, field 'relevant_windows': window 0 \[4, 2\] has start > end",
        ),
        ({"duration": "long"}, r"line 1, field 'duration': expected int or float, got str"),
        (
            {"relevant_clip_ids": [9], "saliency_scores": [[3]]},
            r"field 'relevant_clip_ids': clip id 9 outside 0..6",
        ),
    ],
)
def test_custom_annotations_are_validated_naming_file_line_and_field(tmp_path, change, message):
    row = {"qid": 1, "query": "q", "vid": "v", "duration": 14.0, "relevant_windows": [[2, 6]], **change}
    with pytest.raises(AnnotationError, match=message):
        load_annotations(write_jsonl(tmp_path / "bad.jsonl", [row]), "custom")


def test_custom_annotations_with_their_own_clip_length_and_scores(tmp_path):
    rows = [
        {"qid": 1, "query": "q", "vid": "v", "duration": 6.0, "relevant_windows": [[1, 3]]},
        {
            "qid": 2,
            "query": "q",
            "vid": "v",
            "duration": 6.0,
            "relevant_windows": [[1, 3]],
            "saliency_scores": [0, 2, 4, 1, 0, 0],
        },
    ]
    dataset = load_annotations(write_jsonl(tmp_path / "a.jsonl", rows), "custom", clip_length=1.0)
    assert list(dataset["num_clips"]) == [6, 6] and dataset["saliency_target"][0] == [0, 1, 1, 0, 0, 0]
    assert dataset["saliency_scores"][1] == [[0], [2], [4], [1], [0], [0]]
