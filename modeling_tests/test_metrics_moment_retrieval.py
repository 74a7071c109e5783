"""Charades-STA / ActivityNet Captions metrics: R1, R5, mIoU by hand, and the duration tolerance."""

import warnings

import pytest

from transformers_rdmf.metrics import MetricInputError, evaluate_moment_retrieval, read_jsonl


def test_r1_r5_miou_by_hand():
    references = [
        {"qid": 1, "duration": 30, "relevant_windows": [[0, 10]]},
        {"qid": 2, "duration": 30, "relevant_windows": [[10, 20]]},
    ]
    predictions = [
        # First window IoU 5 / 15 = 1/3; the second is exact.
        {"qid": 1, "pred_relevant_windows": [[5, 15, 0.9], [0, 10, 0.8]]},
        # First window IoU 8 / 10; the sixth window (exact) is outside the top 5.
        {"qid": 2, "pred_relevant_windows": [[10, 18, 0.9]] + [[25, 30, 0.5]] * 4 + [[10, 20, 0.1]]},
    ]
    assert evaluate_moment_retrieval(predictions, references) == {
        "R1@0.3": 100.0,
        "R1@0.5": 50.0,
        "R1@0.7": 50.0,
        "R5@0.5": 100.0,
        "R5@0.7": 100.0,
        "mIoU": round(100 * (1 / 3 + 0.8) / 2, 2),
    }


def test_ends_a_hair_past_the_duration_are_clipped_with_a_count():
    references = [{"qid": 1, "duration": 10, "relevant_windows": [[2, 10.01]]}]
    with pytest.warns(UserWarning, match="clipped 1 ground-truth window"):
        result = evaluate_moment_retrieval([{"qid": 1, "pred_relevant_windows": [[2, 10]]}], references)
    assert result["mIoU"] == 100.0
    references[0]["relevant_windows"] = [[2, 10.5]]
    with pytest.raises(
        MetricInputError,
        match=r"ground truth, item 0, field 'relevant_windows': window 0 \[2.0, 10.5\] ends past the "
        r"duration 10 s by more than 0.05 s",
    ):
        evaluate_moment_retrieval([{"qid": 1, "pred_relevant_windows": [[2, 10]]}], references)
    references[0]["relevant_windows"] = [[4, 6], [-1, 3]]
    with pytest.raises(
        MetricInputError, match=r"item 0, field 'relevant_windows': window 1 \[-1.0, 3.0\] starts before 0 s"
    ):
        evaluate_moment_retrieval([{"qid": 1, "pred_relevant_windows": [[2, 10]]}], references)


def test_real_activitynet_annotations_have_five_such_windows(shared_data):
    references = read_jsonl(shared_data / "activitynet_captions" / "activitynet_val_release.jsonl")
    predictions = [
        {"qid": row["qid"], "pred_relevant_windows": row["relevant_windows"]} for row in references.rows
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_moment_retrieval(predictions, references)
    assert [str(w.message).split(": ")[1] for w in caught] == [
        "clipped 5 ground-truth window(s) ending at most 0.05 s past the video's duration"
    ]
    assert result["R1@0.7"] == 100.0
    assert result["mIoU"] == 100.0  # each clipped window still overlaps its unclipped prediction by > 99.9%
