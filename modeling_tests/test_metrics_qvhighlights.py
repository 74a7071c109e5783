"""QVHighlights metrics: conformance with the official output on real predictions, the official
behaviours on hand-made cases, agreement with the plain loop, and the command line."""

import json

import numpy as np
import pytest

from transformers_rdmf.metrics import evaluate_qvhighlights, read_jsonl
from transformers_rdmf.metrics.qvhighlights import main

from .oracles.qvhighlights_loop import evaluate_qvhighlights_loop

CONFORMANCE = {
    "cgdetr_val_preds.jsonl": "cgdetr_val_preds_metrics.json",
    "momentdetr_sample_val_preds.jsonl": "momentdetr_sample_val_preds_metrics_raw.json",
    "qddetr_sf+clip_val_preds.jsonl": "qddetr_sf+clip_val_preds_metrics.json",
}


def flatten(metrics: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@pytest.fixture(scope="module")
def val_ground_truth(shared_data):
    return read_jsonl(shared_data / "qvhighlights" / "highlight_val_release.jsonl")


@pytest.mark.parametrize("predictions_file", sorted(CONFORMANCE))
def test_every_official_key_matches(shared_data, val_ground_truth, predictions_file):
    folder = shared_data / "conformance" / "qvhighlights"
    expected = flatten(json.loads((folder / CONFORMANCE[predictions_file]).read_text()))
    ours = flatten(evaluate_qvhighlights(folder / predictions_file, val_ground_truth))
    assert len(expected) in (104, 126)  # Moment-DETR / QD-DETR keys, CG-DETR keys
    # exact: the official output's percentages, to the 2 decimals it reports
    assert {key: ours.get(key) for key in expected} == expected
    assert len(ours) == 126  # the superset: CG-DETR's keys (R1 from 0.3, mIoU)


def test_output_layout_is_the_official_one(shared_data, val_ground_truth):
    folder = shared_data / "conformance" / "qvhighlights"
    expected = json.loads((folder / "cgdetr_val_preds_metrics.json").read_text())
    ours = evaluate_qvhighlights(folder / "cgdetr_val_preds.jsonl", val_ground_truth)
    assert ours == expected
    assert list(ours) == list(expected)
    assert list(ours["brief"]) == list(expected["brief"])


def test_agrees_with_plain_loop_on_real_predictions(shared_data, val_ground_truth):
    predictions = read_jsonl(
        shared_data / "conformance" / "qvhighlights" / "momentdetr_sample_val_preds.jsonl"
    )
    # exact: both compute in float64 numpy or Python (no threaded kernels) from the same rows and report
    # percentages rounded to 2 decimals, whole hundredths that a tolerance below 0.005 would test the same
    assert evaluate_qvhighlights_loop(predictions.rows, val_ground_truth.rows) == evaluate_qvhighlights(
        predictions, val_ground_truth
    )


def random_case(seed: int, num_queries: int = 150):
    """Coarse windows and rounded scores, so that IoU and score ties are frequent."""
    rng = np.random.default_rng(seed)
    predictions, references = [], []
    for qid in range(num_queries):
        duration = float(rng.choice([20, 40, 150, 151, 9]))
        num_clips = int(duration / 2)
        starts = rng.integers(0, max(1, int(duration) // 2 - 1), size=rng.integers(1, 6)) * 2
        lengths = rng.choice([2, 4, 8, 12, 20, 40], size=len(starts))
        windows = [[float(s), float(min(s + length, duration))] for s, length in zip(starts, lengths)]
        windows = [w for w in windows if w[1] > w[0]] or [[0.0, 2.0]]
        clip_ids = sorted(set(rng.integers(0, num_clips, size=rng.integers(1, num_clips + 1)).tolist()))
        references.append(
            {
                "qid": qid,
                "duration": duration,
                "relevant_windows": windows,
                "relevant_clip_ids": clip_ids,
                "saliency_scores": rng.integers(0, 5, size=(len(clip_ids), 3)).tolist(),
            }
        )
        pred_starts = rng.integers(0, int(duration) // 2 + 5, size=rng.integers(1, 14)) * 2.0
        predictions.append(
            {
                "qid": qid,
                "pred_relevant_windows": [
                    [s, s + float(rng.choice([2, 4, 8, 12, 20])), float(rng.integers(0, 4)) / 4]
                    for s in pred_starts
                ],
                "pred_saliency_scores": np.round(
                    rng.random(max(1, num_clips + int(rng.integers(-4, 4)))), 1
                ).tolist(),
            }
        )
    rng.shuffle(predictions)
    return predictions, references


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_plain_loop_on_tie_heavy_random_cases(seed):
    predictions, references = random_case(seed)
    # exact, as above: rounded percentages of two float64 implementations on the same rows
    assert evaluate_qvhighlights(predictions, references) == evaluate_qvhighlights_loop(
        predictions, references
    )


# Hand-made cases. Moment retrieval only unless saliency is given.


def query(qid, gt_windows, pred_windows, duration=150):
    reference = {"qid": qid, "duration": duration, "relevant_windows": gt_windows}
    return {"qid": qid, "pred_relevant_windows": pred_windows}, reference


def evaluate_queries(*pairs):
    return evaluate_qvhighlights([p for p, _ in pairs], [r for _, r in pairs])


def test_r1_takes_the_first_window_in_list_order_not_the_top_scored():
    metrics = evaluate_queries(query(1, [[0, 10]], [[20, 30, 0.1], [0, 10, 0.9]]))
    # R1 looks at [20, 30] (IoU 0); mAP sorts by score, so [0, 10] is a hit at rank 1 (AP 1).
    assert metrics["full"]["MR-R1"]["0.5"] == 0.0
    assert metrics["full"]["MR-mIoU"] == 0.0
    assert metrics["full"]["MR-mAP"]["0.95"] == 100.0
    assert "HL-min-Fair" not in metrics


def test_r1_uses_the_best_ground_truth_window():
    metrics = evaluate_queries(query(1, [[0, 10], [20, 30]], [[20, 28, 1.0]]))
    assert metrics["full"]["MR-mIoU"] == 80.0  # 8 / 10 with the second window
    assert metrics["full"]["MR-R1"]["0.8"] == 100.0
    assert metrics["full"]["MR-R1"]["0.85"] == 0.0


def test_map_keeps_the_first_ten_windows_then_sorts_them_stably():
    ignored_eleventh = query(1, [[0, 10]], [[50, 60, 0.5]] * 10 + [[0, 10, 1.0]])
    assert evaluate_queries(ignored_eleventh)["full"]["MR-mAP"]["average"] == 0.0
    # Equal scores keep list order: a miss at rank 1, the hit at rank 2 -> precision 1/2 at recall 1.
    tie = query(1, [[0, 10]], [[50, 60, 0.5], [0, 10, 0.5]])
    assert evaluate_queries(tie)["full"]["MR-mAP"]["0.5"] == 50.0


def test_map_interpolates_precision_and_averages_queries_then_thresholds():
    # Two ground-truth windows: hit, miss, hit -> precision 1 at recall 1/2, 2/3 at recall 1:
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6 at every threshold; the second query scores 0.
    first = query(1, [[0, 10], [20, 30]], [[0, 10, 0.9], [50, 60, 0.8], [20, 30, 0.7]])
    second = query(2, [[0, 10]], [[40, 50, 0.9]])
    metrics = evaluate_queries(first, second)
    assert metrics["full"]["MR-mAP"]["0.7"] == round(100 * (5 / 6 + 0) / 2, 2) == 41.67
    assert metrics["brief"]["MR-full-mAP"] == 41.67


def test_windows_past_the_duration_are_not_clipped():
    metrics = evaluate_queries(query(1, [[10, 20]], [[10, 30, 1.0]], duration=20))
    assert metrics["full"]["MR-mIoU"] == 50.0  # 10 / 20; clipped to [10, 20] it would be 100
    assert metrics["full"]["MR-R1"]["0.5"] == 100.0
    assert metrics["full"]["MR-R1"]["0.55"] == 0.0


def test_length_ranges_without_queries_report_zero():
    metrics = evaluate_queries(query(1, [[0, 20]], [[0, 20, 1.0]]))
    assert metrics["middle"]["MR-mAP"]["average"] == 100.0
    assert metrics["short"]["MR-mAP"] == {
        **{str(t): 0.0 for t in np.round(np.arange(0.5, 0.96, 0.05), 2)},
        "average": 0.0,
    }
    assert metrics["long"]["MR-mIoU"] == 0.0
    assert metrics["brief"]["MR-short-mAP"] == metrics["brief"]["MR-long-mAP"] == 0.0


def test_length_ranges_keep_only_windows_in_range():
    # The 4 s window is "short"; the 40 s one "long": each range scores only its own window.
    metrics = evaluate_queries(query(1, [[0, 4], [50, 90]], [[0, 4, 0.9], [0, 40, 0.8]]))
    assert metrics["short"]["MR-mAP"]["average"] == 100.0
    assert metrics["long"]["MR-mAP"]["average"] == 0.0
    assert metrics["long"]["MR-mIoU"] == 0.0  # first window [0, 4] against [50, 90]
    assert metrics["full"]["MR-mAP"]["0.5"] == 50.0  # one of two windows found, at rank 1


def highlight_query(saliency, relevant_clip_ids, duration=10):
    """A 10 s video has int(10 / 2) = 5 clips; the relevant clips score 4 for all annotators."""
    prediction = {"qid": 7, "pred_saliency_scores": saliency}
    reference = {
        "qid": 7,
        "duration": duration,
        "relevant_windows": [[0, 2]],
        "relevant_clip_ids": relevant_clip_ids,
        "saliency_scores": [[4, 4, 4]] * len(relevant_clip_ids),
    }
    return evaluate_qvhighlights([prediction], [reference])


def test_short_saliency_is_zero_padded():
    # Scored as [0.1, 0.5, 0, 0, 0] against positives {0, 3}: thresholds 0.5 (0/1), 0.1 (1/2),
    # 0 (2/5); recall rises at 0.1 and 0 with interpolated precision 1/2 and 2/5: AP 0.45.
    metrics = highlight_query([0.1, 0.5], [0, 3])
    assert metrics["brief"]["HL-min-VeryGood-mAP"] == 45.0
    assert metrics["brief"]["HL-min-Fair-Hit1"] == 0.0  # top clip 1 is negative
    assert "full" not in metrics


def test_long_saliency_is_cut_but_hit1_reads_the_whole_list():
    metrics = highlight_query([0.9, 0.1, 0.2, 0.3, 0.0, 5.0], [0, 3])
    assert metrics["HL-min-Good"]["HL-mAP"] == 100.0  # clips 0 and 3 rank first among the 5
    assert metrics["HL-min-Good"]["HL-Hit1"] == 0.0  # argmax is index 5, past the 5 clips


def test_saliency_ties_first_index_wins_hit1_and_tied_clips_rank_together():
    assert highlight_query([0.7, 0.7, 0.1, 0.1, 0.1], [1])["brief"]["HL-min-Fair-Hit1"] == 0.0
    assert highlight_query([0.7, 0.7, 0.1, 0.1, 0.1], [0])["brief"]["HL-min-Fair-Hit1"] == 100.0
    # Positives {0, 3}: the tied group {0, 1, 2} gives precision 1/3, then {3, 4} 2/5; both
    # recall levels take the interpolated 2/5 -> AP 0.4 (0.75 if ties were ranked one by one).
    assert highlight_query([0.7, 0.7, 0.7, 0.1, 0.1], [0, 3])["brief"]["HL-min-Fair-mAP"] == 40.0


def test_saliency_levels_binarise_each_annotator():
    prediction = {"qid": 1, "pred_saliency_scores": [0.9, 0.8, 0.1]}
    reference = {
        "qid": 1,
        "duration": 6,
        "relevant_windows": [[0, 4]],
        "relevant_clip_ids": [0, 1],
        "saliency_scores": [[2, 2, 1], [3, 4, 4]],
    }
    metrics = evaluate_qvhighlights([prediction], [reference])
    # Fair (>= 2): annotators see {0, 1}, {0, 1}, {1} -> AP 1, 1, (1/2 precision) 0.5.
    assert metrics["HL-min-Fair"]["HL-mAP"] == round(100 * 2.5 / 3, 2)
    # VeryGood (>= 4): {}, {1}, {1} -> AP 0, 0.5, 0.5; the top clip 0 is no annotator's positive.
    assert metrics["HL-min-VeryGood"] == {"HL-mAP": round(100 / 3, 2), "HL-Hit1": 0.0}
    assert metrics["HL-min-Fair"]["HL-Hit1"] == 100.0


def test_command_line_writes_the_official_json(shared_data, tmp_path, capsys):
    folder = shared_data / "conformance" / "qvhighlights"
    save_path = tmp_path / "metrics.json"
    main(
        [
            "--submission_path",
            str(folder / "qddetr_sf+clip_val_preds.jsonl"),
            "--gt_path",
            str(shared_data / "qvhighlights" / "highlight_val_release.jsonl"),
            "--save_path",
            str(save_path),
        ]
    )
    written = flatten(json.loads(save_path.read_text()))
    expected = flatten(json.loads((folder / "qddetr_sf+clip_val_preds_metrics.json").read_text()))
    assert {key: written[key] for key in expected} == expected
    assert json.loads(capsys.readouterr().out)["MR-full-mAP"] == 41.24


def test_command_line_reports_bad_input_and_exits_2(tmp_path, capsys):
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text('{"qid": 1, "pred_relevant_windows": [[5, 2, 1.0]]}\n')
    ground_truth = tmp_path / "gt.jsonl"
    ground_truth.write_text('{"qid": 1, "duration": 10, "relevant_windows": [[0, 4]]}\n')
    argv = ["--submission_path", str(predictions), "--gt_path", str(ground_truth), "--save_path", "x.json"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "preds.jsonl, line 1, field 'pred_relevant_windows'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "window, expect",
    [
        ([-2, 4], "window 0 [-2.0, 4.0] starts before 0 s"),
        ([4, 12], "window 0 [4.0, 12.0] ends past the duration 10 s by more than 0.05 s"),
    ],
)
def test_ground_truth_outside_its_video_is_refused_in_one_line(window, expect, tmp_path, capsys):
    """The official script scores such windows as they are; a window the video cannot hold is a broken
    ground-truth file, named by line and field (ends within 0.05 s past are accepted, unclipped)."""
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text('{"qid": 1, "pred_relevant_windows": [[0, 4, 1.0]]}\n')
    ground_truth = tmp_path / "gt.jsonl"
    ground_truth.write_text(json.dumps({"qid": 1, "duration": 10, "relevant_windows": [window]}) + "\n")
    argv = ["--submission_path", str(predictions), "--gt_path", str(ground_truth)]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--save_path", str(tmp_path / "metrics.json")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"gt.jsonl, line 1, field 'relevant_windows': {expect}" in err
    assert not (tmp_path / "metrics.json").exists()
    prediction = [{"qid": 1, "pred_relevant_windows": [[0, 10.05, 1.0]]}]
    hair_past = evaluate_qvhighlights(
        prediction, [{"qid": 1, "duration": 10, "relevant_windows": [[0, 10.05]]}]
    )
    assert hair_past["brief"]["MR-full-R1@0.7"] == 100.0  # 10 + 0.05, as annotations are checked
    no_duration = evaluate_qvhighlights(prediction, [{"qid": 1, "relevant_windows": [[0, 10.05]]}])
    assert no_duration["brief"] == hair_past["brief"]  # the moment metrics never read the duration
