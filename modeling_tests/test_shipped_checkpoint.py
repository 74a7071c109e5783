"""The committed TVSum checkpoint (the README's main job) reproduces its recorded score through the CLI."""

import json
from pathlib import Path

import pytest

from transformers_rdmf import evaluate_tvsum
from transformers_rdmf.cli import main as rdmf_main
from transformers_rdmf.post_processing import top_clips

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "examples" / "rdmf-tvsum-GA"
FEATURES = REPO / "examples" / "tvsum"
VID = "Bhxk-O1Y7Ho"


def test_readme_command_reproduces_the_recorded_top5_map(shared_data, tmp_path, capsys):
    out = tmp_path / "highlights.json"
    argv = [
        "predict", "--model", str(CHECKPOINT),
        "--features", str(FEATURES / f"{VID}_rgb.npy"), str(FEATURES / f"{VID}_opt.npy"),
        "--text-features", str(FEATURES / f"{VID}_title.npz"),
        "--query", "Vlog #509 I'M A PUPPY DOG GROOMER!", "--clip-length", "2",
        "--output", str(tmp_path / "highlights.png"), "--json", str(out),
    ]  # fmt: skip
    assert rdmf_main(argv) == 0
    assert "warning" not in capsys.readouterr().err  # its config.json has every field: no "lacks" warning
    result = json.loads(out.read_text())
    # a highlight-only checkpoint: top clips by saliency, not moments from its untrained moment head
    assert result["trained_heads"] == ["saliency"] and "moments" not in result
    assert result["top_clips"] == top_clips(result["saliency"], top_k=5)
    saliency = [clip["saliency"] for clip in result["saliency"]]
    assert len(saliency) == 225
    reference = next(
        json.loads(line)
        for line in open(shared_data / "tvsum" / "tvsum_val_release.jsonl")
        if json.loads(line)["vid"] == VID
    )
    prediction = {"qid": reference["qid"], "pred_saliency_scores": saliency}
    score = evaluate_tvsum([prediction], [reference])["top5_mAP"]
    recorded = json.loads((CHECKPOINT / "metrics.json").read_text())["top5_mAP"]
    assert score == pytest.approx(recorded, abs=0.01)


def test_the_shipped_checkpoint_serves_the_pipeline_with_the_package():
    """Its folder holds no code (it ships with the package), so the package's pipeline class serves it."""
    import numpy as np
    from transformers import pipeline

    from transformers_rdmf import VideoMomentRetrievalPipeline

    finder = pipeline(
        "video-moment-retrieval", model=str(CHECKPOINT), pipeline_class=VideoMomentRetrievalPipeline
    )
    examples = CHECKPOINT.parent / "tvsum"
    rows = [np.load(examples / f"Bhxk-O1Y7Ho_{stream}.npy") for stream in ("rgb", "opt")]
    video = np.concatenate([r / np.linalg.norm(r, axis=1, keepdims=True) for r in rows], axis=1)
    text = np.load(examples / "Bhxk-O1Y7Ho_title.npz")["last_hidden_state"]
    text = text / np.linalg.norm(text, axis=-1, keepdims=True)
    result = finder({"video_features": video, "text_features": text}, query="Vlog #509", top_k=5)
    assert result["moments"] is None and result["trained_heads"] == ["saliency"]
    assert [(c["start"], c["end"]) for c in result["top_clips"]][:2] == [(160.0, 162.0), (436.0, 438.0)]
