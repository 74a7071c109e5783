"""Feature readers: synthetic standard layouts (QVHighlights / Charades-STA / ActivityNet), real TVSum and
YouTube Highlights features, length reconciliation, and the errors for bad feature files."""

import logging

import numpy as np
import pytest

from transformers_rdmf.data import (
    DomainQueryEncoder,
    FeatureError,
    FeatureStream,
    MomentFeatureDataset,
    TextFeatureReader,
    VideoFeatureReader,
    load_annotations,
    load_youtube_highlights,
    standard_video_reader,
    tvsum_text_reader,
    tvsum_video_reader,
    youtube_highlights_video_reader,
)

STREAM_DIMS = {"clip": 512, "slowfast": 2304}
ANNOTATION_FILES = {
    "qvhighlights": "qvhighlights/highlight_val_release.jsonl",
    "charades_sta": "charades_sta/charades_test_release.jsonl",
    "activitynet_captions": "activitynet_captions/activitynet_val_release.jsonl",
}


def _l2(array):
    array = np.asarray(array, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def write_standard_layout(folder, annotations, extra_rows=None, num_tokens=7, seed=0):
    """Moment-DETR layout: ``{stream}/{vid}.npz`` (``features``, float16) and ``text/qid{qid}.npz``."""
    rng = np.random.default_rng(seed)
    extra_rows = extra_rows or {}
    for stream in STREAM_DIMS:
        (folder / stream).mkdir(parents=True, exist_ok=True)
    (folder / "text").mkdir(exist_ok=True)
    for row in annotations:
        for stream, dim in STREAM_DIMS.items():
            rows = row["num_clips"] + extra_rows.get(row["vid"], 0)
            features = rng.normal(size=(rows, dim)).astype(np.float16)
            np.savez(folder / stream / f"{row['vid']}.npz", features=features)
        tokens = rng.normal(size=(num_tokens, 512)).astype(np.float32)
        np.savez(folder / "text" / f"qid{row['qid']}.npz", last_hidden_state=tokens, pooler_output=tokens[0])


def standard_dataset(folder, annotations):
    video = standard_video_reader([folder / "clip", folder / "slowfast"], dims=list(STREAM_DIMS.values()))
    return MomentFeatureDataset(annotations, video, TextFeatureReader(folder / "text", dim=512))


@pytest.fixture(scope="module")
def small_annotations(shared_data):
    return {
        name: load_annotations(shared_data / relative, name).select(range(4))
        for name, relative in ANNOTATION_FILES.items()
    }


@pytest.mark.parametrize("name", list(ANNOTATION_FILES))
def test_standard_layout_is_read_normalised_per_stream_and_concatenated(tmp_path, small_annotations, name):
    annotations = small_annotations[name]
    write_standard_layout(tmp_path, annotations)
    dataset = standard_dataset(tmp_path, annotations)
    assert dataset.check_lengths().examples_truncated == 0
    for index, row in enumerate(annotations):
        item = dataset[index]
        clip = np.load(tmp_path / "clip" / f"{row['vid']}.npz")["features"]
        slowfast = np.load(tmp_path / "slowfast" / f"{row['vid']}.npz")["features"]
        assert clip.dtype == np.float16 and item["video_features"].dtype == np.float32
        assert item["video_features"].shape == (row["num_clips"], 2816)
        np.testing.assert_allclose(
            item["video_features"], np.concatenate([_l2(clip), _l2(slowfast)], 1), atol=1e-6
        )
        tokens = np.load(tmp_path / "text" / f"qid{row['qid']}.npz")["last_hidden_state"]
        np.testing.assert_allclose(item["text_features"], _l2(tokens), atol=1e-6)
        np.testing.assert_allclose(item["text_pooled"], _l2(tokens[:1])[0], atol=1e-6)
        np.testing.assert_array_equal(item["saliency_target"], row["saliency_target"])
        np.testing.assert_allclose(item["spans"], np.asarray(row["spans"]).reshape(-1, 2))
        assert item["meta"]["qid"] == row["qid"] and item["meta"]["num_clips"] == row["num_clips"]


def test_npy_streams_are_memory_mapped_and_cast(tmp_path):
    array = np.arange(12, dtype=np.float16).reshape(3, 4) + 1
    np.save(tmp_path / "v_rgb.npy", array)
    stream = FeatureStream(tmp_path, "{vid}_rgb.npy", dim=4, normalize=False)
    assert stream.num_rows("v") == 3
    read = stream.read("v")
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, array.astype(np.float32))


@pytest.mark.parametrize("extra", [1, -1])
def test_one_row_more_or_fewer_is_truncated_to_the_shorter_and_reported(
    tmp_path, small_annotations, extra, caplog
):
    annotations = small_annotations["qvhighlights"]
    vid, labels = annotations[1]["vid"], annotations[1]["num_clips"]
    write_standard_layout(tmp_path, annotations, extra_rows={vid: extra})
    dataset = standard_dataset(tmp_path, annotations)
    report = dataset.check_lengths()
    assert (report.examples_truncated, report.rows_dropped) == (1, 1)
    assert report.truncated == [(vid, labels, (labels + extra, labels + extra))]
    with caplog.at_level(logging.WARNING):
        item = dataset[1]
    shorter = min(labels, labels + extra)
    assert item["video_features"].shape == (shorter, 2816) and item["saliency_target"].shape == (shorter,)
    assert item["saliency_scores"].shape == (shorter, 3)
    assert item["meta"]["num_clips"] == shorter
    assert item["meta"]["label_clips_dropped"] == max(0, -extra)
    assert item["meta"]["feature_rows_dropped"] == max(0, extra)
    assert (
        f"video {vid!r}: labels have {labels} clips, features {labels + extra}/{labels + extra} rows"
        in caplog.text
    )


@pytest.mark.parametrize("extra", [2, -2])
def test_more_than_one_row_difference_is_an_error_naming_video_and_lengths(
    tmp_path, small_annotations, extra
):
    annotations = small_annotations["charades_sta"]
    vid, labels = annotations[2]["vid"], annotations[2]["num_clips"]
    write_standard_layout(tmp_path, annotations, extra_rows={vid: extra})
    dataset = standard_dataset(tmp_path, annotations)
    message = f"video '{vid}': .*has {labels + extra} rows but the labels have {labels} clips"
    with pytest.raises(FeatureError, match=message):
        dataset[2]
    with pytest.raises(FeatureError, match=message):
        dataset.check_lengths()


def test_missing_feature_file_names_the_path_looked_for(tmp_path, small_annotations):
    annotations = small_annotations["activitynet_captions"]
    write_standard_layout(tmp_path, annotations)
    missing = tmp_path / "slowfast" / f"{annotations[0]['vid']}.npz"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=f"feature file not found: {missing}"):
        standard_dataset(tmp_path, annotations)[0]
    write_standard_layout(tmp_path, annotations)
    text = tmp_path / "text" / f"qid{annotations[1]['qid']}.npz"
    text.unlink()
    with pytest.raises(FileNotFoundError, match=f"feature file not found: {text}"):
        standard_dataset(tmp_path, annotations)[1]


def test_wrong_width_is_an_error(tmp_path, small_annotations):
    annotations = small_annotations["qvhighlights"]
    write_standard_layout(tmp_path, annotations)
    vid = annotations[0]["vid"]
    np.savez(tmp_path / "clip" / f"{vid}.npz", features=np.ones((75, 768), dtype=np.float16))
    with pytest.raises(FeatureError, match=f"{tmp_path / 'clip' / vid}.npz: feature width 768, expected 512"):
        standard_dataset(tmp_path, annotations)[0]
    with pytest.raises(FeatureError, match="feature width 768, expected 512"):
        standard_dataset(tmp_path, annotations).check_lengths()
    qid = annotations[1]["qid"]
    np.savez(tmp_path / "text" / f"qid{qid}.npz", last_hidden_state=np.ones((5, 300), dtype=np.float32))
    with pytest.raises(FeatureError, match="text feature width 300, expected 512"):
        standard_dataset(tmp_path, annotations)[1]


def test_missing_array_in_npz_is_an_error_listing_what_is_there(tmp_path, small_annotations):
    annotations = small_annotations["qvhighlights"]
    write_standard_layout(tmp_path, annotations)
    np.savez(tmp_path / "clip" / f"{annotations[0]['vid']}.npz", feats=np.ones((75, 512)))
    with pytest.raises(FeatureError, match="no array 'features' \\(found: feats\\)"):
        standard_dataset(tmp_path, annotations)[0]


def test_real_tvsum_features_with_audio_and_title_tokens(shared_data):
    root = shared_data / "tvsum"
    annotations = load_annotations(root / "tvsum_train_release.jsonl", "tvsum")
    dataset = MomentFeatureDataset(annotations, tvsum_video_reader(root, audio=True), tvsum_text_reader(root))
    report = dataset.check_lengths()
    # One real audio array has one row more than its 64 labelled clips.
    assert report.truncated == [("kLxoNp-UchI", 64, (64, 64, 65))] and report.rows_dropped == 1
    item = dataset[0]
    vid = annotations[0]["vid"]
    rgb = np.load(root / "video_features" / f"{vid}_rgb.npy")
    audio = np.load(root / "audio_features" / f"{vid}.npy")
    assert item["video_features"].shape == (66, 4096) and item["saliency_scores"].shape == (66, 20)
    np.testing.assert_allclose(item["video_features"][:, :1024], _l2(rgb), atol=1e-6)
    np.testing.assert_allclose(item["video_features"][:, 2048:], _l2(audio), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(item["video_features"], axis=1), 3**0.5, rtol=1e-5)
    assert item["text_features"].shape == (8, 512) and item["text_pooled"].shape == (512,)
    truncated = dataset[list(annotations["vid"]).index("kLxoNp-UchI")]
    assert truncated["video_features"].shape == (64, 4096) and truncated["meta"]["feature_rows_dropped"] == 1
    assert dataset.video_reader.dim == 4096 and tvsum_video_reader(root).dim == 2048


def test_real_youtube_highlights_features_with_domain_query(shared_data):
    root = shared_data / "youtube_highlights"
    annotations = load_youtube_highlights(root, "val", domain="surfing")
    dataset = MomentFeatureDataset(
        annotations, youtube_highlights_video_reader(root), DomainQueryEncoder(dim=16)
    )
    report = dataset.check_lengths()
    assert report.num_examples == 43 and report.examples_truncated == 0
    item = dataset[0]
    assert item["video_features"].shape == (annotations[0]["num_clips"], 2048)
    expected = np.zeros((1, 16), dtype=np.float32)
    expected[0, 5] = 1.0  # surfing is the sixth domain
    np.testing.assert_array_equal(item["text_features"], expected)
    np.testing.assert_array_equal(
        item["saliency_target"], (np.asarray(annotations[0]["saliency_scores"])[:, 0] > 0)
    )
    with pytest.raises(FeatureError, match="unknown domain 'cooking'"):
        DomainQueryEncoder().read({"qid": "x", "domain": "cooking"})


def test_youtube_highlights_jsonl_video_without_features_names_the_file(shared_data):
    root = shared_data / "youtube_highlights"
    annotations = load_annotations(root / "youtube_highlight_train_release.jsonl", "youtube_highlights")
    dataset = MomentFeatureDataset(annotations, youtube_highlights_video_reader(root), DomainQueryEncoder())
    missing = root / "video_features" / "1OLM0_Jzt5M_rgb.npy"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        dataset.check_lengths()
    assert isinstance(dataset.video_reader, VideoFeatureReader)


@pytest.mark.parametrize("dtype", [np.complex64, bool, "U3"])
def test_text_features_that_are_not_real_numbers_are_refused_naming_the_file(dtype, tmp_path):
    np.savez(tmp_path / "qid1.npz", last_hidden_state=np.ones((4, 8), dtype=dtype))
    with pytest.raises(
        FeatureError, match=rf"{tmp_path / 'qid1.npz'}: an array of dtype .*; expected real numbers"
    ):
        TextFeatureReader(tmp_path).read({"qid": "1"})


def test_a_feature_set_is_never_written_over_an_existing_folder(tmp_path):
    from transformers_rdmf.data import write_feature_set

    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "mine.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exists; give a new folder"):
        write_feature_set([], tmp_path / "set", layout="moment_detr")
    assert (tmp_path / "set" / "mine.txt").read_text() == "mine"
