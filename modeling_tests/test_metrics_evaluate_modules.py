"""The ``evaluate`` modules load offline from the installed package and give the plain functions' numbers."""

import json

import evaluate
import pytest

from transformers_rdmf.metrics import EVALUATE_MODULES, metric_path, read_jsonl


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_every_module_loads_from_its_folder():
    for name in EVALUATE_MODULES:
        module = evaluate.load(metric_path(name))
        assert module.name == name
    with pytest.raises(ValueError, match="unknown metric"):
        metric_path("bleu")


def test_qvhighlights_module_matches_the_official_output(shared_data):
    folder = shared_data / "conformance" / "qvhighlights"
    predictions = read_jsonl(folder / "cgdetr_val_preds.jsonl").rows
    references = read_jsonl(shared_data / "qvhighlights" / "highlight_val_release.jsonl").rows
    fields = ("qid", "duration", "relevant_windows", "relevant_clip_ids", "saliency_scores")
    result = evaluate.load(metric_path("qvhighlights")).compute(
        predictions=[
            {key: row[key] for key in ("qid", "pred_relevant_windows", "pred_saliency_scores")}
            for row in predictions
        ],
        references=[{key: row[key] for key in fields} for row in references],
    )
    assert result == json.loads((folder / "cgdetr_val_preds_metrics.json").read_text())


def test_qvhighlights_module_takes_the_rows_as_released(shared_data):
    """Release rows carry ``query`` and ``vid`` beside the schema's fields (they used to raise a bare
    ``KeyError: 'query'``); a row missing a field names it."""
    from transformers_rdmf.metrics import MetricInputError

    folder = shared_data / "conformance" / "qvhighlights"
    predictions = read_jsonl(folder / "cgdetr_val_preds.jsonl").rows  # with query and vid too
    references = read_jsonl(shared_data / "qvhighlights" / "highlight_val_release.jsonl").rows
    assert {"query", "vid"} <= set(references[0]) and {"query", "vid"} <= set(predictions[0])
    module = evaluate.load(metric_path("qvhighlights"))
    result = module.compute(predictions=predictions, references=references)
    assert result == json.loads((folder / "cgdetr_val_preds_metrics.json").read_text())
    broken = [dict(row) for row in references[:2]]
    del broken[1]["duration"]
    with pytest.raises(MetricInputError, match=r"references\[1\] \(qid \d+\): missing \['duration'\]"):
        module.compute(predictions=predictions[:2], references=broken)


def test_qvhighlights_module_accumulates_batches_without_saliency():
    module = evaluate.load(metric_path("qvhighlights"))
    for qid, window in [(1, [0.0, 10.0, 0.9]), (2, [40.0, 50.0, 0.9])]:
        module.add_batch(
            predictions=[{"qid": qid, "pred_relevant_windows": [window], "pred_saliency_scores": []}],
            references=[
                {
                    "qid": qid,
                    "duration": 150.0,
                    "relevant_windows": [[0.0, 10.0]],
                    "relevant_clip_ids": [],
                    "saliency_scores": [],
                }
            ],
        )
    result = module.compute()
    assert result["brief"]["MR-full-R1@0.5"] == 50.0
    assert "HL-min-Fair" not in result


def test_moment_retrieval_module():
    result = evaluate.load(metric_path("moment_retrieval")).compute(
        predictions=[{"qid": 1, "pred_relevant_windows": [[5.0, 15.0], [0.0, 10.0]]}],
        references=[{"qid": 1, "duration": 30.0, "relevant_windows": [[0.0, 10.0]]}],
    )
    assert result == {
        "R1@0.3": 100.0,
        "R1@0.5": 0.0,
        "R1@0.7": 0.0,
        "R5@0.5": 100.0,
        "R5@0.7": 100.0,
        "mIoU": 33.33,
    }


def test_tvsum_and_youtube_modules_with_string_qids(shared_data):
    tvsum_val = read_jsonl(shared_data / "tvsum" / "tvsum_val_release.jsonl").rows
    result = evaluate.load(metric_path("tvsum")).compute(
        predictions=[
            {"qid": row["qid"], "pred_saliency_scores": [sum(s) for s in row["label"]]} for row in tvsum_val
        ],
        references=[{key: row[key] for key in ("qid", "domain", "label")} for row in tvsum_val],
    )
    assert result["top5_mAP"] == 84.35
    youtube = evaluate.load(metric_path("youtube_highlights")).compute(
        predictions=[{"qid": "v", "pred_saliency_scores": [0.1, 0.9, 0.2, 0.8]}],
        references=[{"qid": "v", "domain": "dog", "label": [[0], [1], [1], [0]]}],
    )
    assert youtube == {"mAP": round(100 * 19 / 24, 2), "per_domain": {"dog": round(100 * 19 / 24, 2)}}
