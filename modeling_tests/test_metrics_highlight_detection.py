"""TVSum top-5 mAP and YouTube Highlights mAP: hand-computed AP and the figures of the data README."""

import numpy as np
import pytest

from transformers_rdmf.metrics import (
    MetricInputError,
    evaluate_tvsum,
    evaluate_youtube_highlights,
    read_jsonl,
)
from transformers_rdmf.metrics.highlight_detection import (
    trapezoid_average_precision,
    tvsum_video_ap,
    youtube_video_ap,
)


def test_trapezoid_ap_by_hand():
    # Ranked labels [1, 0, 1, 0], 2 positives: precision 1, 1/2, 2/3, 1/2; recall 1/2, 1/2, 1, 1.
    # AP = 1/2 * (1 + 1) / 2 + 1/2 * (1/2 + 2/3) / 2 = 1/2 + 7/24 = 19/24.
    assert trapezoid_average_precision(np.array([1, 0, 1, 0])) == pytest.approx(19 / 24, abs=1e-15)
    assert trapezoid_average_precision(np.array([0, 0, 0])) == 0.0
    assert trapezoid_average_precision(np.array([1, 1])) == 1.0


def test_tvsum_top5_ap_by_hand():
    annotators = np.array([[5, 1], [1, 1], [4, 1], [2, 5], [3, 5], [1, 1]])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    # Annotator 1: median 2.5 -> positives {0, 2, 4}; the top 5 rank [1, 0, 1, 0, 1], 3 positives:
    # AP = 1/3 * (1 + 1)/2 + 1/3 * (1/2 + 2/3)/2 + 1/3 * (2/4 + 3/5)/2 = 128 / 180.
    # Annotator 2: median 1 -> positives {3, 4}; the top 5 rank [0, 0, 0, 1, 1]:
    # AP = 1/2 * (0 + 1/4)/2 + 1/2 * (1/4 + 2/5)/2 = 18 / 80.
    assert tvsum_video_ap(scores, annotators) == pytest.approx((128 / 180 + 18 / 80) / 2, abs=1e-15)


def test_youtube_ap_by_hand_and_ties_keep_clip_order():
    assert youtube_video_ap(np.array([0.1, 0.9, 0.2, 0.8]), np.array([0, 1, 1, 0])) == pytest.approx(19 / 24)
    # Constant scores rank clips in order: [0, 1] -> precision 0, 1/2 -> AP (0 + 1/2) / 2.
    assert youtube_video_ap(np.zeros(2), np.array([[0], [1]])) == 0.25
    assert youtube_video_ap(np.zeros(3), np.array([-1, 0, -1])) == 0.0


def test_domains_weigh_equally_and_lengths_truncate_to_the_shorter():
    references = [
        {"qid": "a", "domain": "dog", "label": [[0], [1], [1], [0]]},
        {"qid": "b", "domain": "dog", "label": [[1], [0]]},
        {"qid": "c", "domain": "surfing", "label": [[0], [1]]},
    ]
    predictions = [
        {"qid": "a", "pred_saliency_scores": [0.1, 0.9, 0.2, 0.8]},
        {"qid": "b", "pred_saliency_scores": [0.0, 1.0, 5.0]},  # one score too many: cut to 2
        {"qid": "c", "pred_saliency_scores": [0.0, 0.0]},
    ]
    result = evaluate_youtube_highlights(predictions, references)
    dog = (19 / 24 + 0.25) / 2
    assert result == {
        "mAP": round(100 * (dog + 0.25) / 2, 2),
        "per_domain": {"dog": round(100 * dog, 2), "surfing": 25.0},
    }
    predictions[1]["pred_saliency_scores"] = [0.0, 1.0, 5.0, 6.0]
    with pytest.raises(
        MetricInputError, match=r"predictions, item 1, field 'pred_saliency_scores': 4 scores for 2"
    ):
        evaluate_youtube_highlights(predictions, references)


@pytest.fixture(scope="module")
def tvsum_val(shared_data):
    return read_jsonl(shared_data / "tvsum" / "tvsum_val_release.jsonl")


def predictions_from(rows, score):
    return [{"qid": row["qid"], "pred_saliency_scores": list(score(np.array(row["label"])))} for row in rows]


def test_tvsum_reference_rankings_reproduce_the_readme(tvsum_val):
    mean_score = evaluate_tvsum(predictions_from(tvsum_val.rows, lambda label: label.mean(axis=1)), tvsum_val)
    assert mean_score["top5_mAP"] == 84.35
    assert sorted(mean_score["per_domain"]) == ["BK", "BT", "DS", "FM", "GA", "MS", "PK", "PR", "VT", "VU"]
    above_median = evaluate_tvsum(
        predictions_from(tvsum_val.rows, lambda label: (label > np.median(label, axis=0)).mean(axis=1)),
        tvsum_val,
    )
    assert above_median["top5_mAP"] == 87.34


def test_tvsum_random_scores_land_near_chance(tvsum_val):
    results = [
        evaluate_tvsum(
            predictions_from(
                tvsum_val.rows, lambda label, seed=seed: np.random.default_rng(seed).random(len(label))
            ),
            tvsum_val,
        )["top5_mAP"]
        for seed in range(20)
    ]
    assert abs(np.mean(results) - 44) < 4  # the README's chance level, over 20 seeds
    assert max(results) < 62  # below ridge regression


def test_youtube_constant_and_random_scores(shared_data):
    youtube_val = read_jsonl(shared_data / "youtube_highlights" / "youtube_highlight_val_release.jsonl")
    constant = evaluate_youtube_highlights(
        predictions_from(youtube_val.rows, lambda label: np.zeros(len(label))), youtube_val
    )
    assert len(constant["per_domain"]) == 6
    assert 50 < constant["mAP"] < 55
    random = [
        evaluate_youtube_highlights(
            predictions_from(
                youtube_val.rows, lambda label, seed=seed: np.random.default_rng(seed).random(len(label))
            ),
            youtube_val,
        )["mAP"]
        for seed in range(5)
    ]
    assert abs(np.mean(random) - 50.7) < 2
