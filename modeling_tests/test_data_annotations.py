"""Annotation loaders: the real files load completely, with exact counts and targets; bad input is named."""

import json
import logging
import re

import numpy as np
import pytest

from transformers_rdmf.data import (
    ANNOTATION_FEATURES,
    YOUTUBE_HIGHLIGHTS_DOMAINS,
    AnnotationError,
    load_annotations,
    load_youtube_highlights,
)

REAL_FILES = {
    ("qvhighlights", "train"): ("qvhighlights/highlight_train_release.jsonl", 7218),
    ("qvhighlights", "val"): ("qvhighlights/highlight_val_release.jsonl", 1550),
    ("charades_sta", "train"): ("charades_sta/charades_train_release.jsonl", 12404),
    ("charades_sta", "test"): ("charades_sta/charades_test_release.jsonl", 3720),
    ("activitynet_captions", "val"): ("activitynet_captions/activitynet_val_release.jsonl", 17505),
    ("tvsum", "train"): ("tvsum/tvsum_train_release.jsonl", 40),
    ("tvsum", "val"): ("tvsum/tvsum_val_release.jsonl", 10),
    ("youtube_highlights", "train"): ("youtube_highlights/youtube_highlight_train_release.jsonl", 233),
    ("youtube_highlights", "val"): ("youtube_highlights/youtube_highlight_val_release.jsonl", 152),
}


@pytest.fixture(scope="module")
def real(shared_data):
    loaded = {}
    for (name, split), (relative, _) in REAL_FILES.items():
        loaded[name, split] = load_annotations(shared_data / relative, name)
    return loaded


@pytest.mark.parametrize("key", list(REAL_FILES), ids=lambda key: "-".join(key))
def test_real_file_loads_completely_with_windows_inside_duration(real, key):
    dataset = real[key]
    assert len(dataset) == REAL_FILES[key][1]
    assert dataset.features == ANNOTATION_FEATURES
    assert all(dataset["has_labels"])
    durations = np.asarray(dataset["duration"])
    for windows, spans, duration in zip(dataset["windows"], dataset["spans"], durations):
        windows = np.asarray(windows).reshape(-1, 2)
        assert np.all(windows[:, 0] >= 0) and np.all(windows[:, 0] <= windows[:, 1])
        assert np.all(windows[:, 1] <= duration)
        expected = np.stack([windows.mean(axis=1) / duration, (windows[:, 1] - windows[:, 0]) / duration], 1)
        np.testing.assert_allclose(np.asarray(spans).reshape(-1, 2), expected, atol=1e-6)
    if key[0] in ("qvhighlights", "charades_sta", "activitynet_captions"):
        assert all(len(windows) >= 1 for windows in dataset["windows"])


def test_every_qvhighlights_window_lies_in_its_clip_ids_and_scores_are_the_annotators(real, shared_data):
    dataset = real["qvhighlights", "train"]
    first = json.loads((shared_data / REAL_FILES["qvhighlights", "train"][0]).open().readline())
    row = dataset[0]
    assert row["qid"] == str(first["qid"]) and row["num_clips"] == 75 and row["clip_length"] == 2.0
    scores = np.asarray(row["saliency_scores"])
    assert scores.shape == (75, 3)
    np.testing.assert_array_equal(scores[first["relevant_clip_ids"]], first["saliency_scores"])
    assert np.flatnonzero(row["saliency_target"]).tolist() == first["relevant_clip_ids"]
    assert scores.sum() == np.sum(first["saliency_scores"])


def test_charades_and_activitynet_targets_are_one_inside_a_window(real):
    row = real["charades_sta", "train"][0]  # duration 33.67 s, window [0.0, 6.9], 1 s clips
    assert row["num_clips"] == 34
    assert np.flatnonzero(row["saliency_target"]).tolist() == list(range(7))  # centers 0.5 .. 6.5
    np.testing.assert_array_equal(np.asarray(row["saliency_scores"])[:, 0], row["saliency_target"])
    row = real["activitynet_captions", "val"][0]  # 55.15 s, window [0.28, 55.15], 2 s clips
    assert row["num_clips"] == 28 and sum(row["saliency_target"]) == 28


def test_activitynet_windows_a_hundredth_past_the_duration_are_clipped_and_counted(shared_data, caplog):
    with caplog.at_level(logging.WARNING):
        dataset = load_annotations(
            shared_data / REAL_FILES["activitynet_captions", "val"][0], "activitynet_captions"
        )
    clipped = dataset.filter(lambda row: row["num_windows_clipped"] > 0)
    assert sorted(clipped["qid"]) == ["40848", "42731", "45717", "45956", "49106"]
    assert all(
        windows[0][1] == duration for windows, duration in zip(clipped["windows"], clipped["duration"])
    )
    assert "clipped 5 window(s)" in caplog.text


def test_tvsum_scores_are_the_twenty_annotators_and_target_the_share_above_their_median(real, shared_data):
    dataset = real["tvsum", "train"]
    record = json.loads((shared_data / REAL_FILES["tvsum", "train"][0]).open().readline())
    row = dataset[0]
    scores = np.asarray(record["label"])
    assert row["num_clips"] == scores.shape[0] and row["duration"] == 2.0 * scores.shape[0]
    np.testing.assert_array_equal(row["saliency_scores"], scores)
    expected = (scores > np.median(scores, axis=0)).mean(axis=1)
    np.testing.assert_allclose(row["saliency_target"], expected, atol=1e-6)
    domains = list(real["tvsum", "train"]["domain"]) + list(real["tvsum", "val"]["domain"])
    assert len(set(real["tvsum", "train"]["vid"]) | set(real["tvsum", "val"]["vid"])) == 50
    assert {domain: domains.count(domain) for domain in set(domains)} == dict.fromkeys(set(domains), 5)


def test_youtube_highlights_target_is_match_above_zero(real):
    row = real["youtube_highlights", "train"][0]  # qid 6bS6-GVLBeM: 16 clips, match ... 0, 1, 1, 1, 0
    assert row["query"] == row["domain"] == "dog" and row["num_clips"] == 16
    assert np.asarray(row["saliency_scores"])[:, 0].tolist() == [-1] * 11 + [0, 1, 1, 1, 0]
    assert np.flatnonzero(row["saliency_target"]).tolist() == [12, 13, 14]
    assert row["clip_length"] == pytest.approx(row["duration"] / 16)


def test_youtube_highlights_splits_load_as_listed(shared_data):
    splits = json.loads((shared_data / "youtube_highlights" / "splits.json").read_text())
    for split, total in (("train", 234), ("val", 157)):
        dataset = load_youtube_highlights(shared_data / "youtube_highlights", split)
        assert len(dataset) == total
        for domain in YOUTUBE_HIGHLIGHTS_DOMAINS:
            assert list(dataset["domain"]).count(domain) == len(splits[domain][split])
    skiing = load_youtube_highlights(shared_data / "youtube_highlights", "val", domain="skiing")
    assert len(skiing) == 50 and set(skiing["query"]) == {"skiing"}


def test_test_release_without_labels_loads_with_empty_targets(shared_data):
    dataset = load_annotations(
        shared_data / "qvhighlights" / "highlight_test_release.jsonl", "qvhighlights", with_labels=False
    )
    assert len(dataset) == 1542
    row = dataset[0]
    assert not row["has_labels"] and row["windows"] == [] and row["saliency_scores"] == []
    assert row["saliency_target"] == [0.0] * row["num_clips"]


GOOD = {"qid": 1, "query": "a dog runs", "vid": "v1", "duration": 20.0, "relevant_windows": [[2.0, 6.0]]}


def _write(tmp_path, lines):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ('{"qid": 2, "query": "x",', None, "malformed JSON"),
        ({k: v for k, v in GOOD.items() if k != "vid"}, "vid", "missing field"),
        ({k: v for k, v in GOOD.items() if k != "relevant_windows"}, "relevant_windows", "missing field"),
        ({**GOOD, "duration": "20"}, "duration", "expected int or float"),
        ({**GOOD, "relevant_windows": [[6.0, 2.0]]}, "relevant_windows", "start > end"),
        ({**GOOD, "relevant_windows": [[2.0, 20.5]]}, "relevant_windows", "ends past the duration 20.0 s"),
        ({**GOOD, "relevant_windows": [[2.0]]}, "relevant_windows", "expected [start, end]"),
        ({**GOOD, "duration": float("inf")}, "duration", "expected a positive, finite number of seconds"),
        (
            {**GOOD, "duration": 1e9},
            "duration",
            "1000000000.0 s is 1000000000 clips of 1.0 s; at most 1000000",
        ),
        ({**GOOD, "qid": 10}, "qid", "qid '10' repeated (first at line 1)"),
    ],
    ids=[
        "malformed-json",
        "missing-vid",
        "missing-windows",
        "bad-type",
        "start-after-end",
        "past-duration",
        "bad-pair",
        "infinite-duration",
        "huge-duration",
        "repeated-qid",
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path, line, field, message):
    path = _write(tmp_path, [{**GOOD, "qid": 10}, {**GOOD, "qid": 11}, line])
    with pytest.raises(AnnotationError) as raised:
        load_annotations(path, "charades_sta")
    error = raised.value
    assert error.path == str(path) and error.line == 3 and error.field == field
    assert message in str(error) and f"{path}, line 3" in str(error)


def test_window_within_tolerance_is_clipped_and_beyond_is_an_error(tmp_path):
    path = _write(tmp_path, [{**GOOD, "relevant_windows": [[2.0, 20.01]]}])
    row = load_annotations(path, "activitynet_captions")[0]
    assert row["windows"] == [[2.0, 20.0]] and row["num_windows_clipped"] == 1
    with pytest.raises(AnnotationError, match="ends past the duration"):
        load_annotations(path, "activitynet_captions", window_tolerance=0.0)


def test_qvhighlights_scores_must_match_clip_ids(tmp_path):
    record = {**GOOD, "relevant_clip_ids": [1, 2], "saliency_scores": [[1, 2, 3]]}
    with pytest.raises(AnnotationError, match="field 'saliency_scores'.*1 score rows for 2"):
        load_annotations(_write(tmp_path, [record]), "qvhighlights")


@pytest.mark.parametrize("score", [float("nan"), 9, -1, "4", None])
def test_qvhighlights_scores_are_numbers_from_0_to_4(tmp_path, score):
    record = {**GOOD, "relevant_clip_ids": [1, 2], "saliency_scores": [[1, 2, 3], [4, score, 0]]}
    with pytest.raises(
        AnnotationError, match=r"line 1, field 'saliency_scores': row .* for clip 2: expected scores in 0..4"
    ):
        load_annotations(_write(tmp_path, [record]), "qvhighlights")


def test_custom_scores_must_be_finite(tmp_path):
    record = {**GOOD, "relevant_clip_ids": [1, 2], "saliency_scores": [0.5, float("nan")]}
    with pytest.raises(AnnotationError, match=r"field 'saliency_scores': expected finite numbers, got NaN"):
        load_annotations(_write(tmp_path, [record]), "custom")


def test_missing_annotation_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.jsonl")):
        load_annotations(tmp_path / "nope.jsonl", "qvhighlights")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", 'expected {"domain": {"train": [vid, ...], "val": [vid, ...]}, ...}, got list'),
        ("{not json", "not valid JSON"),
        ('{"dog": [1, 2]}', "field 'dog': expected"),
        ('{"dog": {"train": []}}', "field 'dog': no 'val' list of video ids"),
    ],
    ids=["a-list", "not-json", "a-domain-of-a-list", "no-val-split"],
)
def test_a_bad_youtube_highlights_splits_file_is_named(tmp_path, text, message):
    from transformers_rdmf.data import load_youtube_highlights

    splits = tmp_path / "splits.json"
    splits.write_text(text)
    (tmp_path / "youtube_anno.json").write_text("{}")
    with pytest.raises(AnnotationError) as raised:
        load_youtube_highlights(tmp_path, "val", splits_file=splits)
    assert str(raised.value).startswith(str(splits)) and message in str(raised.value)


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ("{not json", "youtube_anno.json: not valid JSON"),
        ("[1]", "youtube_anno.json: expected {vid: {frames, fps, match}}, got list"),
        (
            '{"v1": {"fps": 30, "match": [1, 0]}}',
            "youtube_anno.json, field 'v1': frames: expected a positive number",
        ),
        (
            '{"v1": {"frames": 90, "fps": 0, "match": [1, 0]}}',
            "field 'v1': fps: expected a positive number, got 0",
        ),
    ],
    ids=["not-json", "a-list", "no-frames", "zero-fps"],
)
def test_a_bad_youtube_highlights_annotation_file_is_named(tmp_path, annotations, message):
    from transformers_rdmf.data import load_youtube_highlights

    (tmp_path / "splits.json").write_text('{"dog": {"train": [], "val": ["v1"]}}')
    (tmp_path / "youtube_anno.json").write_text(annotations)
    with pytest.raises(AnnotationError, match=re.escape(message)):
        load_youtube_highlights(tmp_path, "val")


def test_a_splits_file_whose_video_ids_are_not_strings_is_named(tmp_path):
    from transformers_rdmf.data import load_youtube_highlights

    (tmp_path / "splits.json").write_text('{"dog": {"val": [[1]]}}')
    (tmp_path / "youtube_anno.json").write_text("{}")
    with pytest.raises(AnnotationError, match=r"field 'dog': expected .* \(video ids are strings\)"):
        load_youtube_highlights(tmp_path, "val")
