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


def test_readme_command_reproduces_the_recorded_top5_map(shared_data, tmp_path):
    out = tmp_path / "highlights.json"
    argv = [
        "predict", "--model", str(CHECKPOINT),
        "--features", str(FEATURES / f"{VID}_rgb.npy"), str(FEATURES / f"{VID}_opt.npy"),
        "--text-features", str(FEATURES / f"{VID}_title.npz"),
        "--query", "Vlog #509 I'M A PUPPY DOG GROOMER!", "--clip-length", "2",
        "--output", str(tmp_path / "highlights.png"), "--json", str(out),
    ]  # fmt: skip
    assert rdmf_main(argv) == 0
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
