"""Bad metric input: each error names the file, the line and the field."""

import json

import pytest

from transformers_rdmf.metrics import MetricInputError, evaluate_qvhighlights

GROUND_TRUTH = [
    {
        "qid": 1,
        "duration": 10,
        "relevant_windows": [[0, 4]],
        "relevant_clip_ids": [0, 1],
        "saliency_scores": [[4, 4, 4], [2, 2, 2]],
    },
    {
        "qid": 2,
        "duration": 10,
        "relevant_windows": [[2, 6]],
        "relevant_clip_ids": [1],
        "saliency_scores": [[3, 3, 3]],
    },
]
PREDICTIONS = [
    {"qid": 1, "pred_relevant_windows": [[0, 4, 0.9]], "pred_saliency_scores": [1.0, 0.5, 0.1, 0.1, 0.1]},
    {"qid": 2, "pred_relevant_windows": [[2, 6, 0.8]], "pred_saliency_scores": [0.1, 0.9, 0.1, 0.1, 0.1]},
]


def write_jsonl(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def evaluate_files(tmp_path, predictions, ground_truth=GROUND_TRUTH):
    return evaluate_qvhighlights(
        write_jsonl(tmp_path / "preds.jsonl", predictions), write_jsonl(tmp_path / "gt.jsonl", ground_truth)
    )


def test_good_files_evaluate(tmp_path):
    assert evaluate_files(tmp_path, PREDICTIONS)["brief"]["MR-full-mAP"] == 100.0


def test_window_with_start_after_end(tmp_path):
    bad = [PREDICTIONS[0], {**PREDICTIONS[1], "pred_relevant_windows": [[2, 6, 0.8], [9, 3, 0.1]]}]
    with pytest.raises(
        MetricInputError,
        match=r"preds\.jsonl, line 2, field 'pred_relevant_windows': window 1 \[9\.0, 3\.0\] has start > end",
    ):
        evaluate_files(tmp_path, bad)


def test_ground_truth_window_without_length(tmp_path):
    ground_truth = [GROUND_TRUTH[0], {**GROUND_TRUTH[1], "relevant_windows": [[6, 6]]}]
    with pytest.raises(
        MetricInputError, match=r"gt\.jsonl, line 2, field 'relevant_windows': window 0 .* start >= end"
    ):
        evaluate_files(tmp_path, PREDICTIONS, ground_truth)


def test_missing_qid(tmp_path):
    bad = [PREDICTIONS[0], {key: value for key, value in PREDICTIONS[1].items() if key != "qid"}]
    with pytest.raises(MetricInputError, match=r"preds\.jsonl, line 2, field 'qid': missing"):
        evaluate_files(tmp_path, bad)


@pytest.mark.parametrize("qid", [[1], {"id": 1}, 1.5, True])
def test_a_qid_that_is_not_an_integer_or_a_string(qid, tmp_path):
    bad = [PREDICTIONS[0], {**PREDICTIONS[1], "qid": qid}]
    with pytest.raises(
        MetricInputError, match=r"preds\.jsonl, line 2, field 'qid': expected an integer or a string"
    ):
        evaluate_files(tmp_path, bad)


def test_duplicated_qid(tmp_path):
    with pytest.raises(
        MetricInputError, match=r"preds\.jsonl, line 3, field 'qid': qid 1 duplicated \(first at line 1\)"
    ):
        evaluate_files(tmp_path, [PREDICTIONS[0], PREDICTIONS[1], PREDICTIONS[0]])
    with pytest.raises(MetricInputError, match=r"gt\.jsonl, line 2, field 'qid': qid 1 duplicated"):
        evaluate_files(tmp_path, PREDICTIONS, [GROUND_TRUTH[0], GROUND_TRUTH[0]])


def test_prediction_for_unknown_qid(tmp_path):
    bad = [PREDICTIONS[0], PREDICTIONS[1], {**PREDICTIONS[1], "qid": 99}]
    with pytest.raises(
        MetricInputError, match=r"preds\.jsonl, line 3, field 'qid': qid 99 is not in the ground truth"
    ):
        evaluate_files(tmp_path, bad)


def test_ground_truth_qid_without_prediction(tmp_path):
    with pytest.raises(
        MetricInputError, match=r"gt\.jsonl, line 2, field 'qid': qid 2 has no prediction in .*preds\.jsonl"
    ):
        evaluate_files(tmp_path, [PREDICTIONS[0]])


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_saliency_score(tmp_path, token):
    line = json.dumps(PREDICTIONS[1]).replace("[0.1, 0.9,", f"[0.1, {token},")
    with pytest.raises(
        MetricInputError,
        match=r"preds\.jsonl, line 2, field 'pred_saliency_scores': item 1 holds .*not a finite number",
    ):
        evaluate_files(tmp_path, [PREDICTIONS[0], line])


def test_non_finite_window_score(tmp_path):
    line = json.dumps(PREDICTIONS[0]).replace("0.9]]", "NaN]]")
    with pytest.raises(
        MetricInputError,
        match=r"line 1, field 'pred_relevant_windows': item 0 holds nan, not a finite number",
    ):
        evaluate_files(tmp_path, [line, PREDICTIONS[1]])


def test_malformed_json_line(tmp_path):
    with pytest.raises(MetricInputError, match=r"preds\.jsonl, line 2: malformed JSON line"):
        evaluate_files(tmp_path, [PREDICTIONS[0], '{"qid": 2, "pred_relevant_windows": [[2, 6, 0.8]'])


def test_blank_lines_are_skipped_but_counted(tmp_path):
    bad = [PREDICTIONS[0], "", {**PREDICTIONS[1], "pred_relevant_windows": [[2, 6]]}]
    with pytest.raises(
        MetricInputError,
        match=r"line 3, field 'pred_relevant_windows': item 0 is \[2, 6\], expected \[start, end, score\]",
    ):
        evaluate_files(tmp_path, bad)


def test_non_number_and_missing_fields(tmp_path):
    with pytest.raises(
        MetricInputError, match=r"line 1, field 'pred_saliency_scores': item 2 holds '0.1', not a number"
    ):
        evaluate_files(
            tmp_path, [{**PREDICTIONS[0], "pred_saliency_scores": [1.0, 0.5, "0.1"]}, PREDICTIONS[1]]
        )
    with pytest.raises(MetricInputError, match=r"line 2, field 'pred_relevant_windows': missing"):
        evaluate_files(tmp_path, [PREDICTIONS[0], {"qid": 2, "pred_saliency_scores": [0.1]}])
    with pytest.raises(
        MetricInputError, match=r"line 1, field 'pred_relevant_windows': expected at least 1 item"
    ):
        evaluate_files(tmp_path, [{**PREDICTIONS[0], "pred_relevant_windows": []}, PREDICTIONS[1]])


def test_clip_ids_outside_the_video(tmp_path):
    ground_truth = [GROUND_TRUTH[0], {**GROUND_TRUTH[1], "relevant_clip_ids": [5]}]
    with pytest.raises(
        MetricInputError,
        match=r"gt\.jsonl, line 2, field 'relevant_clip_ids': clip id 5 is not an integer in \[0, 5\)",
    ):
        evaluate_files(tmp_path, PREDICTIONS, ground_truth)


def test_in_memory_rows_are_named_by_item():
    bad = [PREDICTIONS[0], {**PREDICTIONS[1], "pred_relevant_windows": [[7, 6, 0.8]]}]
    with pytest.raises(MetricInputError, match=r"^predictions, item 1, field 'pred_relevant_windows'"):
        evaluate_qvhighlights(bad, GROUND_TRUTH)
